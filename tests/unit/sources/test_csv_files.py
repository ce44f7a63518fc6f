"""The CSV readers' validation: every rejection rule, on small files written per test."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from heatmap.schema import Account, Position, Price
from heatmap.sources.csv_files import (
    KIND_ORDER,
    ReadStats,
    ReplayInputError,
    price_files,
    read_accounts,
    read_positions,
    read_prices,
)

T0 = "2026-01-01T00:00:00Z"
T1 = "2026-01-01T00:01:00Z"
T2 = "2026-01-01T00:02:00Z"


class Rejections:
    """Records what ``ReadStats.on_reject`` is told: (kind, reason, original bytes)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, bytes]] = []
        self.stats = ReadStats(on_reject=lambda *rejected: self.seen.append(rejected))

    @property
    def reasons(self) -> list[str]:
        return [reason for _, reason, _ in self.seen]


def write(path: Path, content: bytes | str) -> Path:
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def messages(items) -> list:
    return [message for _, _, message in items]


# -- headers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("reader", "header", "missing"), [
    (read_prices, "timestamp,open,high,low\n", "close"),
    (read_prices, "time,close\n", "timestamp"),
    (read_positions, "timestamp,account,qty\n", "symbol"),
    (read_positions, "account,symbol\n", "timestamp, qty"),
    (read_accounts, "timestamp,account\n", "equity"),
])
def test_missing_required_columns_refuse_the_file(tmp_path: Path, reader, header: str,
                                                  missing: str) -> None:
    path = write(tmp_path / "BTCUSDT.csv", header + f"{T0},x,1\n")
    # Refused when the reader is made, before any row is read.
    with pytest.raises(ReplayInputError, match=f"missing column\\(s\\) {missing}$") as caught:
        reader(path, ReadStats())
    assert str(path) in str(caught.value)


def test_a_byte_order_mark_is_not_part_of_the_first_column(tmp_path: Path) -> None:
    path = write(tmp_path / "ETHUSDT.csv",
                 b"\xef\xbb\xbftimestamp,close\n" + f"{T0},3000\n".encode())
    stats = ReadStats()
    assert messages(read_prices(path, stats)) == [
        Price(symbol="ETHUSDT", ts=datetime(2026, 1, 1, tzinfo=UTC), price=3000.0,
              source="replay")]
    assert not stats.rejected


def test_header_names_and_values_are_stripped(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", " timestamp , account , equity \n"
                                     f" {T0} , acct-1 ,  250.5 \n")
    (account,) = messages(read_accounts(path, ReadStats()))
    assert (account.account, account.equity) == ("acct-1", 250.5)


# -- rows that are rejected, and the reading that goes on ---------------------------------------


def test_a_line_that_is_not_utf8_is_rejected_with_its_bytes(tmp_path: Path) -> None:
    bad_line = b"2026-01-01T00:01:00Z,caf\xe9\n"
    path = write(tmp_path / "BTCUSDT.csv",
                 f"timestamp,close\n{T0},1\n".encode() + bad_line + f"{T2},2\n".encode())
    rejections = Rejections()
    assert [p.price for p in messages(read_prices(path, rejections.stats))] == [1.0, 2.0]
    assert rejections.seen == [("price", "not valid UTF-8", bad_line)]
    assert rejections.stats.rejected == {"price: not valid UTF-8": 1}


def test_a_field_over_the_csv_size_limit_is_rejected_and_reading_goes_on(
        tmp_path: Path) -> None:
    huge = b'2026-01-01T00:01:00Z,"' + b"9" * 200_000 + b'"\n'
    path = write(tmp_path / "BTCUSDT.csv",
                 f"timestamp,close\n{T0},1\n".encode() + huge + f"{T2},2\n".encode())
    rejections = Rejections()
    assert [p.price for p in messages(read_prices(path, rejections.stats))] == [1.0, 2.0]
    ((kind, reason, raw),) = rejections.seen
    assert kind == "price" and "field larger than field limit" in reason
    assert raw.startswith(b"2026-01-01T00:01:00Z,") and len(raw) > 200_000


def test_naive_timestamps_are_taken_as_utc(tmp_path: Path) -> None:
    path = write(tmp_path / "BTCUSDT.csv",
                 "timestamp,close\n2026-01-01 00:00:00,1\n2026-01-01T01:00:00+01:00,2\n")
    first, second = read_prices(path, ReadStats())
    assert first[2].ts == datetime(2026, 1, 1, tzinfo=UTC)
    assert first[0] == second[0] == 1767225600000  # same instant, offset or not


@pytest.mark.parametrize("value", ["abc", "nan", "-1", "0", "", "inf", "1e999"])
def test_bad_prices_are_rejected(tmp_path: Path, value: str) -> None:
    path = write(tmp_path / "BTCUSDT.csv", f"timestamp,close\n{T0},{value}\n{T1},5\n")
    rejections = Rejections()
    assert [p.price for p in messages(read_prices(path, rejections.stats))] == [5.0]
    assert [kind for kind, _, _ in rejections.seen] == ["price"]
    assert rejections.seen[0][2] == f"{T0},{value}\n".encode()


@pytest.mark.parametrize(("column", "value"), [
    ("qty", "nan"), ("qty", "many"), ("qty", ""), ("conviction", "1.5"),
    ("entry_price", "-3"), ("timestamp", "yesterday")])
def test_bad_position_values_are_rejected(tmp_path: Path, column: str, value: str) -> None:
    row = {"timestamp": T0, "account": "acct-1", "symbol": "BTCUSDT", "qty": "1",
           "conviction": "0.5", "entry_price": "100"}
    row[column] = value
    path = write(tmp_path / "positions.csv",
                 ",".join(row) + "\n" + ",".join(row.values()) + "\n")
    rejections = Rejections()
    assert messages(read_positions(path, rejections.stats)) == []
    assert [kind for kind, _, _ in rejections.seen] == ["position"]
    assert rejections.stats.rows["position"] == 0


def test_a_non_finite_quantity_says_so(tmp_path: Path) -> None:
    path = write(tmp_path / "positions.csv",
                 f"timestamp,account,symbol,qty\n{T0},acct-1,BTCUSDT,nan\n")
    rejections = Rejections()
    list(read_positions(path, rejections.stats))
    assert rejections.reasons == ["qty must be a finite number"]


def test_rows_out_of_time_order_are_rejected_against_the_last_accepted_row(
        tmp_path: Path) -> None:
    path = write(tmp_path / "BTCUSDT.csv",
                 f"timestamp,close\n{T1},1\n{T0},2\n{T1},3\n{T2},4\n")
    rejections = Rejections()
    # An equal timestamp is in order; only a step back is not.
    assert [p.price for p in messages(read_prices(path, rejections.stats))] == [1.0, 3.0, 4.0]
    assert rejections.seen == [("price", "out of time order", f"{T0},2\n".encode())]


def test_a_row_more_than_a_year_after_the_previous_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path / "BTCUSDT.csv", f"timestamp,close\n{T0},1\n"
                 "2027-01-02T00:00:01Z,2\n"  # a mistyped year: 366 days and a second later
                 "2027-01-01T00:00:00Z,3\n")  # 365 days later: a long gap, but accepted
    rejections = Rejections()
    assert [p.price for p in messages(read_prices(path, rejections.stats))] == [1.0, 3.0]
    assert rejections.reasons == ["more than a year after the previous row"]


def test_empty_optional_values_become_none(tmp_path: Path) -> None:
    positions = write(tmp_path / "positions.csv",
                      "timestamp,account,symbol,qty,strategy,conviction,entry_price\n"
                      f"{T0},acct-1,BTCUSDT,-0.5,,,\n"
                      f"{T1},acct-1,ETHUSDT,2,trend,0.7,3000\n")
    flat, full = messages(read_positions(positions, ReadStats()))
    assert (flat.strategy, flat.conviction, flat.entry_price) == (None, None, None)
    assert (full.strategy, full.conviction, full.entry_price) == ("trend", 0.7, 3000.0)
    accounts = write(tmp_path / "accounts.csv",
                     f"timestamp,account,equity,desk,maintenance_rate\n{T0},acct-1,100,,\n")
    (account,) = messages(read_accounts(accounts, ReadStats()))
    assert account == Account(account="acct-1", ts=datetime(2026, 1, 1, tzinfo=UTC),
                              equity=100.0)


def test_optional_columns_may_be_absent(tmp_path: Path) -> None:
    path = write(tmp_path / "positions.csv", f"timestamp,account,symbol,qty\n{T0},a,BTCUSDT,1\n")
    ((ts_ms, order, position),) = read_positions(path, ReadStats())
    assert position == Position(account="a", symbol="BTCUSDT",
                                ts=datetime(2026, 1, 1, tzinfo=UTC), qty=1.0)
    assert (ts_ms, order) == (1767225600000, KIND_ORDER[Position])


# -- price file shapes ------------------------------------------------------------------------


def test_a_file_per_symbol_takes_its_symbol_from_the_file_name(tmp_path: Path) -> None:
    bars = write(tmp_path / "SOLUSDT.csv", f"timestamp,open,close\n{T0},1,2\n")
    trades = write(tmp_path / "ETHBTC.csv", f"timestamp,price,close\n{T0},0.05,9\n")
    (bar,) = messages(read_prices(bars, ReadStats()))
    (trade,) = messages(read_prices(trades, ReadStats()))
    assert (bar.symbol, bar.price) == ("SOLUSDT", 2.0)  # bars: the close
    assert (trade.symbol, trade.price) == ("ETHBTC", 0.05)  # trades: price wins over close


def test_a_long_csv_takes_the_symbol_of_each_row(tmp_path: Path) -> None:
    path = write(tmp_path / "prices.csv",
                 f"timestamp,symbol,price\n{T0},BTCUSDT,60000\n{T0},ETHUSDT,3000\n"
                 f"{T1},BTCUSDT,60010\n{T1},BTC\u200bUSDT,1\n")  # a zero-width space: no name
    rejections = Rejections()
    prices = messages(read_prices(path, rejections.stats))
    assert [(p.symbol, p.price) for p in prices] == [
        ("BTCUSDT", 60000.0), ("ETHUSDT", 3000.0), ("BTCUSDT", 60010.0)]
    assert [kind for kind, _, _ in rejections.seen] == ["price"]
    assert rejections.stats.rows == {"price": 3}


def test_price_files_expands_directories_in_name_order(tmp_path: Path) -> None:
    folder = tmp_path / "bars"
    folder.mkdir()
    for name in ("b.csv", "a.csv", "notes.txt"):
        write(folder / name, "")
    single = write(tmp_path / "z.csv", "")
    assert price_files([single, folder]) == [single, folder / "a.csv", folder / "b.csv"]


def test_stats_count_rows_and_bytes_read(tmp_path: Path) -> None:
    content = f"timestamp,close\n{T0},1\n{T1},x\n{T2},2\n"
    path = write(tmp_path / "BTCUSDT.csv", content)
    stats = ReadStats()  # no on_reject: rejections are counted only
    list(read_prices(path, stats))
    assert stats.rows == {"price": 2}
    assert sum(stats.rejected.values()) == 1
    assert stats.bytes_read == len(content)
