"""Table columns are derived from the message Structs; only documented columns differ."""

from __future__ import annotations

import msgspec
import pytest

from heatmap.db import tables
from heatmap.schema import (
    Account,
    Alert,
    ClusterRow,
    Frame,
    Position,
    PositionRow,
    Price,
    ms_to_datetime,
)

BOOK = {"book_kind", "book"}
FRAME_KEY = {"ts", *BOOK, "timeframe", "trigger", "params_hash"}


def _fields(struct: type[msgspec.Struct]) -> set[str]:
    return {field.name for field in msgspec.structs.fields(struct)}


@pytest.mark.parametrize(("table", "struct", "extra", "elsewhere"), [
    (tables.PRICES, Price, set(), set()),
    (tables.POSITIONS, Position, set(), set()),
    (tables.ACCOUNT_EQUITY, Account, set(), set()),
    (tables.FRAMES, Frame, BOOK, {"positions", "clusters"}),
    (tables.FRAME_POSITIONS, PositionRow, FRAME_KEY, set()),
    (tables.FRAME_CLUSTERS, ClusterRow, FRAME_KEY, set()),
    (tables.ALERTS, Alert, BOOK, set()),
])
def test_a_table_holds_every_field_of_its_message(table: tables.Table,
                                                  struct: type[msgspec.Struct],
                                                  extra: set[str], elsewhere: set[str]) -> None:
    assert set(table.column_names) == (_fields(struct) - elsewhere) | extra
    assert len(table.column_names) == len(set(table.column_names))
    assert set(table.key) <= set(table.column_names)


def test_column_types_follow_the_annotations() -> None:
    types = dict(tables.FRAME_POSITIONS.columns)
    assert (types["qty"], types["heat_share"], types["quadrant"], types["stale"]) == (
        "float8", "float8", "text", "bool")
    assert dict(tables.FRAME_CLUSTERS.columns)["members"] == "text[]"
    assert dict(tables.PRICES.columns)["ts"] == "timestamptz"
    # Frames carry ts as RFC 3339 text; the table stores a timestamptz.
    assert dict(tables.FRAMES.columns)["ts"] == "timestamptz"


def test_a_misnamed_field_or_an_unmapped_type_is_an_error() -> None:
    with pytest.raises(ValueError, match="no field"):
        tables.field_columns(Price, exclude={"close"})
    with pytest.raises(TypeError, match=r"Frame\.params"):
        tables.field_columns(Frame, ("params",))


def test_rows_follow_the_column_order() -> None:
    position = Position(account="a1", symbol="BTCUSDT", ts=ms_to_datetime(5), qty=2.0,
                        desk="d1")
    [row] = tables.position_rows([position])
    stored = dict(zip(tables.POSITIONS.column_names, row, strict=True))
    assert stored == {"strategy": "", "account": "a1", "symbol": "BTCUSDT",
                      "ts": ms_to_datetime(5), "qty": 2.0, "conviction": None,
                      "entry_price": None, "leverage": None, "desk": "d1", "source": None}
