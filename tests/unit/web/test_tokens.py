"""The token store: create, list and revoke; only hashes on disk, mode 0600, atomic
replacement; the server's view re-reads the file when it changed (at most once per
interval) and fails closed when it becomes unusable."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from heatmap.web.tokens import (
    TOKEN_PREFIX,
    TokensFileError,
    TokenStore,
    create_token,
    list_tokens,
    parse_scopes,
    read_tokens,
    revoke_token,
    token_hash,
)


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


def test_create_list_revoke(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    first = create_token(path, "bot-1", ["alpha", "beta", "alpha"], ("whatif", "read"))
    second = create_token(path, "grafana@desk", None, ("read",))
    assert first.startswith(TOKEN_PREFIX) and len(first) >= len(TOKEN_PREFIX) + 43
    assert first != second
    records = list_tokens(path)
    assert [(r.name, r.desks, r.scopes) for r in records] == [
        ("bot-1", ("alpha", "beta"), ("read", "whatif")),
        ("grafana@desk", None, ("read",))]
    assert records[0].created.endswith("Z")
    with pytest.raises(ValueError, match="exists"):
        create_token(path, "bot-1", None, ("read",))
    assert revoke_token(path, "bot-1")
    assert not revoke_token(path, "bot-1")
    assert [r.name for r in list_tokens(path)] == ["grafana@desk"]
    assert list_tokens(tmp_path / "missing.json") == []


def test_only_hashes_are_stored_in_a_private_file(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    token = create_token(path, "bot", ["alpha"], ("read",))
    text = path.read_text()
    assert token not in text and token[len(TOKEN_PREFIX):] not in text
    assert json.loads(text)["tokens"][0]["sha256"] == token_hash(token)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    create_token(path, "other", ["beta"], ("read",))  # replaced, not rewritten in place
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == [".tokens.json.lock", "tokens.json"]


@pytest.mark.parametrize(("name", "desks", "scopes", "says"), [
    ("", None, ("read",), "1 to 64"),
    ("a b", None, ("read",), "letters, digits"),
    ("x" * 65, None, ("read",), "1 to 64"),
    ("bot", [], ("read",), "at least one desk"),
])
def test_bad_requests_are_refused(tmp_path: Path, name: str, desks: list[str] | None,
                                  scopes: tuple[str, ...], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        create_token(tmp_path / "tokens.json", name, desks, scopes)  # type: ignore[arg-type]


def test_scopes_parse() -> None:
    assert parse_scopes("whatif,read") == ("read", "whatif")
    assert parse_scopes(" read ") == ("read",)
    for bad in ("", "write", "read,admin"):
        with pytest.raises(ValueError, match="comma-separated"):
            parse_scopes(bad)


@pytest.mark.parametrize("body", ["not json", '{"version": 2, "tokens": []}',
                                  '{"version": 1, "tokens": [{"name": "x"}]}'])
def test_a_file_that_is_not_a_tokens_file_is_refused(tmp_path: Path, body: str) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(body)
    path.chmod(0o600)
    with pytest.raises(TokensFileError, match="not a tokens file"):
        read_tokens(path)


def test_a_file_others_may_write_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    create_token(path, "bot", None, ("read",))
    path.chmod(0o622)
    with pytest.raises(TokensFileError, match="chmod 600"):
        read_tokens(path)


def test_the_store_finds_tokens_and_rereads_the_file_when_it_changed(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    first = create_token(path, "first", ["alpha"], ("read",))
    clock = Clock()
    store = TokenStore(path, check_interval_s=1.0, clock=clock)
    store.load()
    found = store.find(first)
    assert found is not None and found.name == "first" and found.sees("alpha")
    assert not found.sees("beta") and not found.sees(None) and not found.allows("whatif")
    assert store.find(first + "x") is None and store.find("") is None

    second = create_token(path, "second", None, ("read", "whatif"))
    assert store.find(second) is None  # not looked at again within the interval
    clock.now_s += 1.0
    assert store.find(second) is not None and store.current(found)

    revoke_token(path, "first")
    clock.now_s += 1.0
    assert store.find(first) is None and not store.current(found)


def test_a_broken_or_missing_file_accepts_no_token_until_fixed(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    token = create_token(path, "bot", None, ("read",))
    good = path.read_text()
    clock = Clock()
    store = TokenStore(path, clock=clock)
    store.load()
    path.write_text(good[: len(good) // 2])  # a hand edit gone wrong
    clock.now_s += 1.0
    assert store.find(token) is None
    path.write_text(good)
    clock.now_s += 1.0
    assert store.find(token) is not None
    os.unlink(path)
    clock.now_s += 1.0
    assert store.find(token) is None


def test_loading_a_missing_file_fails(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        TokenStore(tmp_path / "missing.json").load()
