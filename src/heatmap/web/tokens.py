"""Bearer tokens of the bot API: who may read which desks' books and ask what-ifs.

A token is ``heat_`` followed by 32 random bytes (URL-safe base64): the prefix makes a
leaked token recognisable (in a log, a paste, a repository scan). The tokens file
(``HEAT_API_TOKENS_FILE``) keeps, per token, its name, the desks it may see (or all of
them), its scopes and when it was created, and only the SHA-256 of the token: the
token itself is printed once, by ``heat token create``, and stored nowhere.

A plain SHA-256 is enough here, where a password would need a slow hash: a password
is guessable, so its hash must make each guess expensive; a token carries 256 random
bits, so even a stolen tokens file leaves nothing to guess (2^256 tries), and a fast
hash keeps checking every request cheap.

The file is JSON, written whole into a temporary file of mode 0600 beside it and
renamed over it (a reader sees the old file or the new one, never half of one), under
an advisory lock so two ``heat token`` commands do not lose each other's change. The
server re-reads it when its modification time, size or inode changed, looking at most
once per ``check_interval_s``: a token created or revoked takes effect within a second,
no restart.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import logging
import os
import secrets
import stat
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, cast

log = logging.getLogger("heatmap.web.tokens")

Scope = Literal["read", "whatif"]
SCOPES: tuple[Scope, ...] = ("read", "whatif")
TOKEN_PREFIX = "heat_"  # noqa: S105 - a prefix, not a secret
TOKEN_BYTES = 32  # 256 bits of entropy
FILE_MODE = 0o600
FILE_VERSION = 1
NAME_MAX = 64
_NAME_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-@")


class TokensFileError(Exception):
    """The tokens file cannot be used; ``str()`` says why and what to do."""


@dataclass(frozen=True)
class TokenRecord:
    """One stored token: never the token, only its SHA-256 (hex).

    Parameters
    ----------
    name : str
        Unique; names the token in ``heat token list`` and ``revoke`` and in logs.
    desks : tuple of str, or None
        The desks whose books the token sees; None: every desk (and accounts of none).
    scopes : tuple of {"read", "whatif"}
    created : str
        RFC 3339 UTC time of ``heat token create``.
    sha256 : str
        Hex SHA-256 of the token.
    """

    name: str
    desks: tuple[str, ...] | None
    scopes: tuple[Scope, ...]
    created: str
    sha256: str

    def sees(self, desk: str | None) -> bool:
        """Whether books of ``desk`` (None: an account of no desk) are visible."""
        return self.desks is None or (desk is not None and desk in self.desks)

    def allows(self, scope: Scope) -> bool:
        return scope in self.scopes

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "desks": None if self.desks is None else list(self.desks),
                "scopes": list(self.scopes), "created": self.created, "sha256": self.sha256}


def new_token() -> str:
    """A fresh token: the prefix and 32 random bytes."""
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    """Hex SHA-256 of a token (see the module docstring for why no slow hash)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_name(name: str) -> str:
    """``name`` when it is a valid token name; ValueError saying why otherwise."""
    if not 1 <= len(name) <= NAME_MAX or not set(name) <= _NAME_CHARACTERS:
        raise ValueError(f"a token name is 1 to {NAME_MAX} letters, digits, '.', '_', '-' "
                         f"or '@' (got {name!r})")
    return name


def parse_scopes(text: str) -> tuple[Scope, ...]:
    """``read`` or ``read,whatif`` (any order, no repeats) as a tuple in canonical order."""
    given = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [part for part in given if part not in SCOPES]
    if not given or unknown:
        raise ValueError(f"scopes are a comma-separated list of {', '.join(SCOPES)} "
                         f"(got {text!r})")
    return tuple(scope for scope in SCOPES if scope in given)


# -- the file ----------------------------------------------------------------------------


def _record(entry: object) -> TokenRecord:
    if not isinstance(entry, dict):
        raise ValueError("a token entry is not an object")
    desks = entry.get("desks")
    scopes = entry.get("scopes")
    digest = entry.get("sha256")
    name, created = entry.get("name"), entry.get("created")
    if not isinstance(name, str) or not isinstance(created, str):
        raise ValueError("a token entry lacks its name or creation time")
    if desks is not None and not (isinstance(desks, list)
                                  and all(isinstance(desk, str) for desk in desks)):
        raise ValueError(f"token {name!r}: desks must be a list of names or null")
    if not isinstance(scopes, list) or not scopes or not set(scopes) <= set(SCOPES):
        raise ValueError(f"token {name!r}: scopes must be a list of {', '.join(SCOPES)}")
    if not isinstance(digest, str) or len(digest) != 64:
        raise ValueError(f"token {name!r}: sha256 must be 64 hex digits")
    return TokenRecord(name, None if desks is None else tuple(desks),
                       cast(tuple[Scope, ...], tuple(scopes)), created, digest.lower())


def parse_tokens(text: str) -> list[TokenRecord]:
    """The records of a tokens file's text; ValueError when it is not one."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"not JSON ({error})") from error
    if not isinstance(data, dict) or data.get("version") != FILE_VERSION \
            or not isinstance(data.get("tokens"), list):
        raise ValueError(f"not a version {FILE_VERSION} tokens file")
    records = [_record(entry) for entry in data["tokens"]]
    names = [record.name for record in records]
    if len(set(names)) != len(names):
        raise ValueError("a token name appears twice")
    return records


def check_permissions(path: Path, mode: int) -> None:
    """Refuse a file others may write: anyone who can write it can add a token."""
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise TokensFileError(f"{path} is writable by others (mode {stat.S_IMODE(mode):04o}): "
                              f"chmod 600 {path}")


def read_tokens(path: Path) -> list[TokenRecord]:
    """The records of the tokens file at ``path``; TokensFileError when it is unusable
    (a missing file is FileNotFoundError)."""
    with path.open("rb") as handle:
        check_permissions(path, os.fstat(handle.fileno()).st_mode)
        text = handle.read().decode("utf-8", errors="replace")
    try:
        return parse_tokens(text)
    except ValueError as error:
        raise TokensFileError(f"{path} is not a tokens file: {error}") from error


def write_tokens(path: Path, records: Sequence[TokenRecord]) -> None:
    """Replace the file at ``path`` with ``records``, atomically, mode 0600."""
    body = json.dumps({"version": FILE_VERSION,
                       "tokens": [record.to_json() for record in records]},
                      indent=1, ensure_ascii=False).encode("utf-8") + b"\n"
    directory = path.parent
    # mkstemp creates the file with mode 0600 before a byte is written.
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(body)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, FILE_MODE)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    directory_handle = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(directory_handle)  # the rename itself survives a crash
    finally:
        os.close(directory_handle)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive advisory lock for a read-modify-write of ``path`` (a lock file beside
    it: the tokens file itself is replaced, so it cannot carry the lock)."""
    lock_path = path.with_name(f".{path.name}.lock")
    handle = os.open(lock_path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)


def _existing(path: Path) -> list[TokenRecord]:
    try:
        return read_tokens(path)
    except FileNotFoundError:
        return []


def create_token(path: Path, name: str, desks: Sequence[str] | None,
                 scopes: Sequence[Scope], now: datetime | None = None) -> str:
    """Store a new token named ``name`` in the file at ``path`` (created when missing);
    returns the token, which is stored nowhere. ValueError when the name is taken."""
    check_name(name)
    if desks is not None and not desks:
        raise ValueError("give at least one desk, or all desks")
    with _locked(path):
        records = _existing(path)
        if any(record.name == name for record in records):
            raise ValueError(f"a token named {name!r} exists; revoke it first or choose "
                             "another name")
        token = new_token()
        created = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
        record = TokenRecord(name, None if desks is None else tuple(dict.fromkeys(desks)),
                             tuple(scope for scope in SCOPES if scope in scopes), created,
                             token_hash(token))
        write_tokens(path, [*records, record])
    return token


def revoke_token(path: Path, name: str) -> bool:
    """Remove the token named ``name``; False when there was none."""
    with _locked(path):
        records = _existing(path)
        kept = [record for record in records if record.name != name]
        if len(kept) == len(records):
            return False
        write_tokens(path, kept)
    return True


def list_tokens(path: Path) -> list[TokenRecord]:
    """The stored tokens (a missing file holds none)."""
    return _existing(path)


# -- the server's view -------------------------------------------------------------------


@dataclass(frozen=True)
class _Seen:
    """What identifies one version of the file: inode, size, modification time."""

    inode: int
    size: int
    mtime_ns: int


class TokenStore:
    """The tokens a server accepts, re-read from the file when it changed.

    A file that disappears or becomes unreadable accepts no token until it is fixed
    (an error is logged once per change): failing closed means a revocation is never
    undone by a broken edit.

    Parameters
    ----------
    path : Path
        The tokens file.
    check_interval_s : float
        The file is looked at (one ``stat``) at most this often.
    clock : callable
        Monotonic seconds (tests pass their own).
    """

    def __init__(self, path: Path, check_interval_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self.check_interval_s = check_interval_s
        self._clock = clock
        self._records: list[TokenRecord] = []
        self._seen: _Seen | None = None
        self._checked_s: float | None = None
        self._problem: str | None = None

    def load(self) -> None:
        """Read the file now; TokensFileError (or OSError) when it cannot be used, so a
        server refuses to start on a bad file rather than lock everyone out silently."""
        info = self.path.stat()
        self._records = read_tokens(self.path)
        self._seen = _Seen(info.st_ino, info.st_size, info.st_mtime_ns)
        self._checked_s = self._clock()
        self._problem = None

    @property
    def records(self) -> list[TokenRecord]:
        self._refresh()
        return list(self._records)

    def _refresh(self) -> None:
        now = self._clock()
        if self._checked_s is not None and now - self._checked_s < self.check_interval_s:
            return
        self._checked_s = now
        try:
            info = self.path.stat()
        except OSError as error:
            self._fail(f"{self.path}: {error.strerror or error}")
            return
        seen = _Seen(info.st_ino, info.st_size, info.st_mtime_ns)
        if seen == self._seen:
            return
        try:
            records = read_tokens(self.path)
        except (OSError, TokensFileError) as error:
            self._fail(str(error))
            return
        self._seen, self._records, self._problem = seen, records, None
        log.info("API tokens re-read", extra={"tokens": len(records)})

    def _fail(self, problem: str) -> None:
        self._records, self._seen = [], None
        if problem != self._problem:
            log.error("API tokens file unusable, no token is accepted: %s", problem)
        self._problem = problem

    def find(self, token: str) -> TokenRecord | None:
        """The record of ``token``, or None.

        Compares the token's hash with every stored hash in constant time and never
        stops early, so the time taken says nothing about which hash matched, or how
        much of one did.
        """
        digest = token_hash(token).encode()
        found = None
        for record in self.records:
            if hmac.compare_digest(digest, record.sha256.encode()):
                found = record
        return found

    def current(self, record: TokenRecord) -> bool:
        """Whether ``record`` is still stored as it was (not revoked nor replaced)."""
        return any(hmac.compare_digest(record.sha256.encode(), stored.sha256.encode())
                   and stored == record for stored in self.records)
