"""Names (symbols, accounts, desks, strategies, sources) are any printable text of any
script up to a bound, kept verbatim; invisible and ambiguous characters are refused."""

from __future__ import annotations

import sys
import unicodedata

import msgspec
import pytest

from heatmap.schema import (
    NAME_MAX_CHARS,
    NAME_RULE,
    Account,
    InvalidMessageError,
    Position,
    Price,
    decode,
    encode,
    valid_name,
)

TS = "2026-01-02T03:04:05.678Z"

REAL_NAMES = [
    "o'brien fund",
    'desk "α"; DROP TABLE x; --',
    "50% $ \\ back",
    "币安人生USDT",
    "ΔELTA-Ω",
    "صندوق الخليج",          # Arabic, right to left, with an inner space
    "🚀USDT",
    "\U0001fae8USDT",         # shaking face: Unicode 15, newer than many interpreters' tables
    "café",                   # e + combining acute accent (a mark, kept as sent)
    "x'); drop table frames; --",
    "a{b}[c](d)<e>|f^g~h`i=j?k!l#m&n*o,p",
    "BTC/USDT:USDT-250328",
    "acct_a1.x@y+z",
    "1000PEPEUSDT",
    "x",
    "名" * NAME_MAX_CHARS,     # the bound counts characters, not UTF-8 bytes
]

REFUSED_NAMES = [
    "",
    " lead",
    "trail ",
    " ",
    "a\tb",
    "a\nb",
    "a\rb",
    "a\u0000b",      # NUL (Cc): PostgreSQL text cannot even hold it
    "a\u007fb",      # DEL (Cc)
    "a\u0085b",      # next line (Cc)
    "a\u200bb",      # zero-width space (Cf)
    "a\u200db",      # zero-width joiner (Cf)
    "a\u202eb",      # right-to-left override (Cf)
    "\ufeffabc",     # byte-order mark (Cf)
    "a\u00a0b",      # no-break space (Zs): looks like a plain space
    "a\u3000b",      # ideographic space (Zs)
    "a\u2028b",      # line separator (Zl)
    "a\u2029b",      # paragraph separator (Zp)
    "a\ue000b",      # private use (Co)
    "a\U000e0fffb",  # unassigned (Cn)
    "a\ud800b",      # lone surrogate (Cs)
    "x" * (NAME_MAX_CHARS + 1),
]


def _payload(**fields: object) -> bytes:
    return msgspec.json.encode(fields)


def _position(**names: str) -> bytes:
    fields = {"account": "a1", "symbol": "BTCUSDT", "ts": TS, "qty": 1.5, **names}
    return _payload(**fields)


def _price(**names: str) -> bytes:
    return _payload(**{"symbol": "BTCUSDT", "ts": TS, "price": 10.0, "source": "s", **names})


def _account(**names: str) -> bytes:
    return _payload(**{"account": "a1", "ts": TS, "equity": 1000.0, **names})


FIELDS = [  # (message kind, payload maker, name field)
    (Position, _position, "account"),
    (Position, _position, "symbol"),
    (Position, _position, "desk"),
    (Position, _position, "strategy"),
    (Position, _position, "source"),
    (Price, _price, "symbol"),
    (Price, _price, "source"),
    (Account, _account, "account"),
    (Account, _account, "desk"),
]


@pytest.mark.parametrize("name", REAL_NAMES)
@pytest.mark.parametrize(("kind", "payload", "field"), FIELDS)
def test_real_names_decode_verbatim_in_every_field(kind, payload, field, name: str) -> None:
    message = decode(kind, payload(**{field: name}))
    assert getattr(message, field) == name
    # ... and encode back verbatim, as UTF-8 (JSON escapes only quotes and backslashes).
    assert msgspec.json.decode(encode(message))[field] == name
    assert valid_name(name)


@pytest.mark.parametrize("name", REFUSED_NAMES)
@pytest.mark.parametrize(("kind", "payload", "field"), FIELDS)
def test_refused_names_are_rejected_with_a_reason(kind, payload, field, name: str) -> None:
    assert not valid_name(name)
    try:
        raw = payload(**{field: name})
    except UnicodeEncodeError:  # a lone surrogate has no UTF-8: send its JSON escape
        raw = payload(**{field: "PLACEHOLDER"}).replace(b"PLACEHOLDER", b"a\\ud800b")
    with pytest.raises(InvalidMessageError) as error:
        decode(kind, raw)
    if name and len(name) <= NAME_MAX_CHARS and "\ud800" not in name:
        assert str(error.value) == f"{field} must be {NAME_RULE}"


@pytest.mark.parametrize("name", ["a\ud800b", "\udcff"])
def test_surrogates_are_refused_however_they_arrive(name: str) -> None:
    # As a JSON escape, as the UTF-8-like bytes of a surrogate (invalid UTF-8), or in code.
    json_escape = "".join(c if c.isascii() else f"\\u{ord(c):04x}" for c in name)
    with pytest.raises(InvalidMessageError):
        decode(Position, _position(account="X").replace(b'"X"', f'"{json_escape}"'.encode()))
    raw_bytes = name.encode("utf-8", "surrogatepass")
    with pytest.raises(InvalidMessageError, match="UTF-8"):
        decode(Position, _position(account="X").replace(b'"X"', b'"' + raw_bytes + b'"'))
    ts = decode(Price, _price()).ts
    with pytest.raises(ValueError, match="account must be"):
        Position(account=name, symbol="BTCUSDT", ts=ts, qty=1.0)


def test_constructing_messages_in_code_checks_names_too() -> None:
    ts = decode(Price, _price()).ts
    with pytest.raises(ValueError, match="symbol must be"):
        Price(symbol="BTC\u200bUSDT", ts=ts, price=1.0, source="s")
    with pytest.raises(ValueError, match="desk must be"):
        Account(account="a1", ts=ts, equity=1.0, desk="d\u0000")
    position = Position(account="o'brien fund", symbol="币安人生USDT", ts=ts, qty=2.0,
                        desk='desk "α"; DROP TABLE x; --')
    assert position.account == "o'brien fund" and position.symbol == "币安人生USDT"


def test_required_names_may_not_be_missing_or_null() -> None:
    for kind, payload in ((Position, _payload(account="a1", ts=TS, qty=1)),
                          (Position, _position(symbol=None)),
                          (Price, _price(source=None)),
                          (Price, _payload(symbol="BTCUSDT", ts=TS, price=1.0))):
        with pytest.raises(InvalidMessageError):
            decode(kind, payload)


def test_the_rule_is_the_interpreters_printable_where_both_know_the_character() -> None:
    # Python calls a character printable unless it is "Other" (C*) or "Separator" (Z*),
    # the ASCII space excepted: the same rule. Where the interpreter's older Unicode
    # table knows a character, the two must agree.
    disagree = [hex(code) for code in range(sys.maxunicode + 1)
                if unicodedata.category(chr(code)) != "Cn"
                and valid_name(f"a{chr(code)}b") != chr(code).isprintable()]
    assert disagree == []


def test_names_assigned_after_the_interpreters_unicode_are_accepted() -> None:
    # U+1FAE8 (Unicode 15): unassigned in older interpreters' tables, a symbol today.
    assert valid_name("\U0001fae8")
    assert not valid_name("\U000e0fff")  # still unassigned
