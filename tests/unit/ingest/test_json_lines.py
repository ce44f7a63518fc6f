"""The stdin line reader of ``heat ingest positions --stdin``: one line, one verdict."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from heatmap.ingest.json_lines import json_lines, parse_line
from heatmap.ingest.rejected import Rejected
from heatmap.schema import Account, Position

POSITIONS, ACCOUNTS = "positions", "accounts"
POSITION_LINE = (b'{"account":"acct-1","symbol":"BTCUSDT","ts":"2026-01-01T00:00:00Z",'
                 b'"qty":-0.5,"strategy":"trend"}')
ACCOUNT_LINE = b'{"account":"acct-1","ts":"2026-01-01T00:00:00Z","equity":1000.0,"desk":"d"}'
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def parse(raw: bytes):
    return parse_line(raw, POSITIONS, ACCOUNTS)


def test_a_line_with_qty_is_a_position() -> None:
    assert parse(POSITION_LINE + b"\n") == Position(
        account="acct-1", symbol="BTCUSDT", ts=T0, qty=-0.5, strategy="trend")


def test_a_line_with_equity_is_an_account() -> None:
    assert parse(ACCOUNT_LINE + b"\n") == Account(account="acct-1", ts=T0, equity=1000.0,
                                                  desk="d")


@pytest.mark.parametrize("raw", [
    b'{"account":"acct-1","ts":"2026-01-01T00:00:00Z"}',  # neither
    b'{"account":"acct-1","ts":"2026-01-01T00:00:00Z","qty":1,"equity":2}',  # both
    b"[1, 2]", b'"qty"', b"42", b"null",  # JSON, but not an object
])
def test_neither_or_both_of_qty_and_equity_is_rejected(raw: bytes) -> None:
    assert parse(raw + b"\n") == Rejected(
        POSITIONS, "neither a position (qty) nor an account (equity)", raw)


def test_invalid_utf8_is_rejected_with_the_bytes_as_sent() -> None:
    inside_a_string = POSITION_LINE.replace(b"acct-1", b"caf\xe9")
    assert parse(inside_a_string + b"\n") == Rejected(POSITIONS, "not valid UTF-8",
                                                      inside_a_string)
    rejected = parse(b"\xff\xfe\n")
    assert isinstance(rejected, Rejected) and rejected.payload == b"\xff\xfe"
    assert rejected.reason.startswith("not JSON: ")


def test_text_that_is_not_json_is_rejected() -> None:
    rejected = parse(b"acct-1,BTCUSDT,1\n")
    assert isinstance(rejected, Rejected) and rejected.topic == POSITIONS
    assert rejected.reason.startswith("not JSON: ") and rejected.payload == b"acct-1,BTCUSDT,1"


def test_a_contract_violation_goes_to_the_topic_the_line_was_headed_for() -> None:
    naive = ACCOUNT_LINE.replace(b"00:00:00Z", b"00:00:00")
    assert parse(naive) == Rejected(ACCOUNTS, "ts must carry a UTC offset (RFC 3339, e.g. ...Z)",
                                    naive)
    not_a_number = POSITION_LINE.replace(b"-0.5", b'"lots"')
    rejected = parse(not_a_number)
    assert isinstance(rejected, Rejected) and rejected.topic == POSITIONS
    assert "qty" in rejected.reason


def test_an_oversized_line_is_rejected_whole() -> None:
    """The reader keeps every byte; the producer truncates dead letters too large to send."""
    huge = b'{"account":"acct-1","qty":' + b"1" * 2_000_000
    rejected = parse(huge + b"\n")
    assert isinstance(rejected, Rejected) and rejected.reason.startswith("not JSON: ")
    assert rejected.payload == huge


def test_newline_rules() -> None:
    # The last line of a stream may lack its newline; a CRLF line parses alike.
    assert parse(POSITION_LINE) == parse(POSITION_LINE + b"\n") == parse(POSITION_LINE + b"\r\n")
    # Surrounding blanks are not part of the JSON.
    assert parse(b"  " + ACCOUNT_LINE + b" \t\n") == parse(ACCOUNT_LINE)
    # A dead letter keeps the line as sent without its \n (a \r stays: it was sent).
    assert parse(b"nope\r\n").payload == b"nope\r"
    assert parse(b" nope \n").payload == b" nope "
    # Blank lines carry nothing: no message, no rejection.
    for blank in (b"\n", b"\r\n", b"   \n", b""):
        assert parse(blank) is None


def test_json_lines_keeps_order_and_skips_blank_lines() -> None:
    lines = [ACCOUNT_LINE + b"\n", b"\n", b"nope\n", POSITION_LINE]
    kinds = [type(item).__name__ for item in json_lines(lines, POSITIONS, ACCOUNTS)]
    assert kinds == ["Account", "Rejected", "Position"]
