"""One representation of time inside (epoch ms), converted only at the edges."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from heatmap.schema import (
    InvalidMessageError,
    Position,
    Price,
    datetime_to_ms,
    decode,
    ms_to_datetime,
    ms_to_rfc3339,
    rfc3339_to_ms,
)

# Year 1 to year 9999, the range of datetime.
MS = st.integers(min_value=-62_135_596_800_000 + 86_400_000, max_value=253_402_300_799_999)


@given(MS)
def test_both_pairs_round_trip(ts_ms: int) -> None:
    assert datetime_to_ms(ms_to_datetime(ts_ms)) == ts_ms
    if ms_to_datetime(ts_ms).year >= 1000:  # RFC 3339 years have four digits
        assert rfc3339_to_ms(ms_to_rfc3339(ts_ms)) == ts_ms


def test_text_is_rfc3339_utc_with_milliseconds() -> None:
    assert ms_to_rfc3339(1_767_323_045_678) == "2026-01-02T03:04:05.678Z"
    assert ms_to_datetime(1_767_323_045_678) == datetime(2026, 1, 2, 3, 4, 5, 678_000,
                                                         tzinfo=UTC)
    assert rfc3339_to_ms("2026-01-02T04:04:05.678+01:00") == 1_767_323_045_678
    assert rfc3339_to_ms("2026-01-02 03:04:05.678") == 1_767_323_045_678  # no offset: UTC
    with pytest.raises(InvalidMessageError):
        rfc3339_to_ms("yesterday")


def test_decode_returns_the_kind_asked_for() -> None:
    price = decode(Price, b'{"symbol": "BTCUSDT", "ts": "2026-01-02T03:04:05.678Z", '
                          b'"price": 1.5, "source": "x"}')
    assert isinstance(price, Price) and datetime_to_ms(price.ts) == 1_767_323_045_678
    with pytest.raises(InvalidMessageError, match="UTC offset"):
        decode(Position, b'{"account": "a", "symbol": "BTCUSDT", '
                         b'"ts": "2026-01-02T03:04:05", "qty": 1}')
