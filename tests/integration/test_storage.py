"""Storage on a real PostgreSQL: migrations, idempotent writes, restarts, roles, hostile names."""

from __future__ import annotations

import itertools
import threading
from datetime import datetime
from pathlib import Path

import psycopg
import pytest

from heatmap.db import migrations
from heatmap.db.writer import HeatBatch, HeatWriter
from heatmap.schema import Position, Price, ms_to_datetime
from heatmap.settings.database import READER_ROLE, WRITER_ROLE
from support.sample_frames import engine_frames
from support.waiting import wait_until

TABLES = ("prices", "positions", "account_equity", "frames", "frame_positions",
          "frame_clusters", "correlations", "alerts", "deadletters")
HOSTILE = "x'); drop table frames; --"


def _counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as connection:
        return {t: connection.execute(f"SELECT count(*) FROM heat.{t}").fetchone()[0]  # noqa: S608
                for t in TABLES}


def test_migrate_on_empty_database_then_again_is_a_no_op(database_server, db_settings) -> None:
    applied = migrations.migrate(db_settings)
    assert [m.label for m in applied][:3] == ["core/0001_storage", "core/0002_api",
                                              "core/0003_roles"]
    assert migrations.migrate(db_settings) == []
    rows, timescale = migrations.status(db_settings)
    # The TimescaleDB layer is applied exactly where the server has the extension.
    assert timescale.usable == (database_server.kind == "timescaledb")
    expected_series = {"core", "timescale"} if timescale.usable else {"core"}
    assert {row.migration.series for row in rows if row.applied_at is not None} \
        == expected_series
    assert all(row.applied_at is not None and row.checksum_matches
               for row in rows if row.migration.series in expected_series)


def test_the_same_batch_twice_leaves_the_same_rows(migrated) -> None:
    frames = engine_frames()
    batch = HeatBatch(frames=frames, prices=[Price(symbol="BTCUSDT", ts=_dt(0), price=1.0,
                                                   source="t")])
    with HeatWriter(migrated.role_url(WRITER_ROLE), migrated) as writer:
        first = writer.write(batch)
        before = _counts(migrated.admin_url())
        second = writer.write(batch)
    assert first["frames"] == len(frames) and first["frame_positions"] > 0
    assert set(second.values()) == {0}
    assert _counts(migrated.admin_url()) == before


def _dt(ts_ms: int) -> datetime:
    return ms_to_datetime(ts_ms)


def _row(table, **values: object) -> tuple:
    """A row of ``table`` in its column order; columns not given are NULL."""
    return tuple(values.pop(name, None) for name in table.column_names)


def test_postgres_restart_mid_stream_loses_and_duplicates_nothing(database_server,
                                                                   migrated) -> None:
    frames = engine_frames(n_bars=300)
    batches = [frames[i:i + 5] for i in range(0, len(frames), 5)]
    errors: list[BaseException] = []
    written: list[int] = []
    writer = HeatWriter(migrated.role_url(WRITER_ROLE), migrated)
    restarted = threading.Event()

    def stream() -> None:
        try:
            for batch in batches:
                writer.write(HeatBatch(frames=batch))
                written.append(len(batch))
                if len(written) >= 10:  # the rest is written across the restart
                    restarted.wait(timeout=120)
        except BaseException as error:
            errors.append(error)

    writer_thread = threading.Thread(target=stream)
    writer_thread.start()
    wait_until(lambda: len(written) >= 10 or not writer_thread.is_alive(), timeout_s=60)
    written_before_stop = len(written)
    database_server.stop()
    restarted.set()  # the writer now meets a stopped server and retries
    database_server.start()
    writer_thread.join(timeout=120)
    writer.close()
    assert not errors, errors
    assert 0 < written_before_stop < len(batches)  # the restart hit the stream mid-way
    counts = _counts(migrated.admin_url())
    assert counts["frames"] == len(frames)
    assert counts["frame_positions"] == sum(len(f.positions) for f in frames)
    assert counts["frame_clusters"] == sum(len(f.clusters) for f in frames)


def test_reader_reads_the_api_only_and_writes_nothing(migrated) -> None:
    with HeatWriter(migrated.role_url(WRITER_ROLE), migrated) as writer:
        writer.write(HeatBatch(frames=engine_frames()))
    with psycopg.connect(migrated.role_url(READER_ROLE), autocommit=True) as reader:
        assert reader.execute("SELECT count(*) FROM heat_api.frames").fetchone()[0] > 0
        for statement in ("SELECT * FROM heat.frames LIMIT 1",
                          "INSERT INTO heat.alerts (ts, book_kind, book, timeframe, kind, "
                          "subject, severity, state, threshold, message) VALUES (now(), "
                          "'account', 'a', '1h', 'k', 's', 'warning', 'firing', 1, 'm')",
                          "DELETE FROM heat_api.frames",
                          "CREATE TABLE heat_api.mine (id int)",
                          "DROP VIEW heat_api.frames"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                reader.execute(statement)
    with psycopg.connect(migrated.role_url(WRITER_ROLE), autocommit=True) as writer:
        for statement in ("DROP TABLE heat.frames", "TRUNCATE heat.frames"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                writer.execute(statement)


def _row(table, **values: object) -> tuple:
    """A row of ``table`` in its column order; columns not given are NULL."""
    return tuple(values.pop(name, None) for name in table.column_names)


def test_hostile_names_are_stored_verbatim(migrated) -> None:
    # Written straight to the tables, bypassing the message schema: whatever reaches the
    # database is stored verbatim and harmlessly.
    from heatmap.db import tables

    frames = engine_frames(account=HOSTILE)
    position = _row(tables.POSITIONS, ts=_dt(5), account=HOSTILE, symbol=HOSTILE,
                    strategy="'; --", qty=1.0)
    account = _row(tables.ACCOUNT_EQUITY, ts=_dt(0), account=HOSTILE, equity=1.0)
    with HeatWriter(migrated.role_url(WRITER_ROLE), migrated) as writer:
        writer.write(HeatBatch(frames=frames))
        writer.write_rows([(tables.POSITIONS, [position]), (tables.ACCOUNT_EQUITY, [account])])
    with psycopg.connect(migrated.role_url(READER_ROLE)) as reader:
        books = {row[0] for row in reader.execute("SELECT DISTINCT book FROM heat_api.frames")}
        symbol = reader.execute("SELECT symbol, strategy FROM heat_api.positions").fetchone()
    assert HOSTILE in books
    assert symbol == (HOSTILE, "'; --")
    assert _counts(migrated.admin_url())["frames"] == len(frames)


def test_replay_to_db_is_idempotent(migrated, tmp_path: Path, subprocess_env) -> None:
    import subprocess
    import sys

    root = Path(__file__).parents[2]
    env = {**subprocess_env, "HEAT_DATABASE_URL": migrated.admin_url(),
           "HEAT_WRITER_PASSWORD": migrated.role_password(WRITER_ROLE)}
    prices = tmp_path / "prices.csv"
    with open(prices, "w") as out:
        out.write("timestamp,symbol,price\n")
        for path in sorted((root / "data" / "binance-5m").glob("*.csv"))[:4]:
            rows = itertools.islice(path.open(), 1, 600)
            for line in rows:
                ts, *_, close, _ = line.strip().split(",")
                out.write(f"{ts},{path.stem},{close}\n")
    lines = sorted(prices.read_text().splitlines()[1:])
    prices.write_text("timestamp,symbol,price\n" + "\n".join(lines) + "\n")
    positions = tmp_path / "positions.csv"
    positions.write_text("timestamp,account,symbol,qty\n"
                         f"{lines[0].split(',')[0]},acct-1,ETHBTC,3\n")
    command = [sys.executable, "-m", "heatmap.cli.main", "replay", "--prices", str(prices),
               "--positions", str(positions), "--bar", "5m", "--timeframes", "1h,4h",
               "--to-db"]
    for _ in range(2):
        completed = subprocess.run(command, env=env, capture_output=True, text=True,
                                   timeout=300)
        assert completed.returncode == 0, completed.stderr
    counts = _counts(migrated.admin_url())
    assert counts["prices"] == len(lines)
    assert counts["frames"] > 0 and counts["correlations"] > 0


# Names as desks and exchanges write them; the long price CSV holds the symbols that
# cannot be file names (a slash) or need CSV quoting (a comma and quotes).
OBRIEN = "o'brien fund"
GULF = "صندوق الخليج"
DESK = 'desk "α"; DROP TABLE x; --'
FILE_SYMBOLS = {"币安人生USDT": "ETHBTC", "ΔELTA-Ω": "LTCBTC"}
LONG_SYMBOLS = {"🚀USDT": "ETCBTC", "ذهب/USDT": "XMRBTC", 'o\'brien "coin", ltd': "DASHBTC",
                "\U0001fae8 50% $ \\ back": "ZECBTC"}
HELD = [  # account, symbol, qty, strategy, entry price
    (OBRIEN, "币安人生USDT", 100, "50% $ \\ back", 0.09),
    (OBRIEN, "🚀USDT", 500, DESK, 0.003),
    (OBRIEN, 'o\'brien "coin", ltd', -10, "$1; SELECT pg_sleep(10); --", 0.07),
    (GULF, "ذهب/USDT", 50, "العربية", 0.03),
    (GULF, "ΔELTA-Ω", 200, "", 0.02),
    (GULF, "\U0001fae8 50% $ \\ back", 30, "%s %% {} \\x00", 0.05),
]


def _names_replay_files(root: Path, tmp_path: Path, bars: int = 600) -> list[Path]:
    """Price files of real bars under names of many scripts; positions and accounts."""
    import csv

    def bars_of(pair: str) -> list[list[str]]:
        with open(root / "data" / "binance-5m" / f"{pair}.csv", newline="") as handle:
            return list(itertools.islice(csv.reader(handle), 1, bars + 1))

    files = []
    for symbol, pair in FILE_SYMBOLS.items():
        path = tmp_path / f"{symbol}.csv"
        with open(path, "w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(["timestamp", "open", "high", "low", "close", "volume"])
            writer.writerows(bars_of(pair))
        files.append(path)
    long_rows = sorted(((row[0], symbol, row[4]) for symbol, pair in LONG_SYMBOLS.items()
                        for row in bars_of(pair)), key=lambda row: row[0])
    files.append(tmp_path / "long prices.csv")
    with open(files[-1], "w", newline="", encoding="utf-8") as out:
        csv.writer(out).writerows([("timestamp", "symbol", "price"), *long_rows])
    with open(tmp_path / "positions.csv", "w", newline="", encoding="utf-8") as out:
        csv.writer(out).writerows(
            [("timestamp", "account", "symbol", "qty", "strategy", "conviction",
              "entry_price")]
            + [("2018-01-11T02:00:00Z", account, symbol, qty, strategy, 0.7, entry)
               for account, symbol, qty, strategy, entry in HELD])
    with open(tmp_path / "accounts.csv", "w", newline="", encoding="utf-8") as out:
        csv.writer(out).writerows([("timestamp", "account", "equity", "desk"),
                                   ("2018-01-11T00:00:00Z", OBRIEN, 40, DESK),
                                   ("2018-01-11T00:00:00Z", GULF, 30, DESK)])
    return files


def test_replay_to_db_keeps_names_of_any_script_verbatim(migrated, tmp_path: Path,
                                                         subprocess_env) -> None:
    import subprocess
    import sys

    import msgspec

    from heatmap.schema import Frame

    root = Path(__file__).parents[2]
    prices = _names_replay_files(root, tmp_path)
    env = {**subprocess_env, "HEAT_DATABASE_URL": migrated.admin_url(),
           "HEAT_WRITER_PASSWORD": migrated.role_password(WRITER_ROLE)}
    out = tmp_path / "frames.jsonl"
    completed = subprocess.run(
        [sys.executable, "-m", "heatmap.cli.main", "replay", "--prices", *map(str, prices),
         "--positions", str(tmp_path / "positions.csv"), "--accounts",
         str(tmp_path / "accounts.csv"), "--bar", "5m", "--timeframes", "1h,4h",
         "--out", str(out), "--to-db"], env=env, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    assert "rejected" not in completed.stderr, completed.stderr

    symbols = {*FILE_SYMBOLS, *LONG_SYMBOLS}
    held = {account: {symbol for a, symbol, *_ in HELD if a == account}
            for account in (OBRIEN, GULF)}
    # heat replay's JSON lines: the names as UTF-8, unescaped and unchanged.
    raw = out.read_bytes()
    assert "币安人生USDT".encode() in raw and GULF.encode() in raw
    frames = [msgspec.json.decode(line, type=Frame) for line in raw.splitlines()]
    last = {(f.account or f.desk, f.timeframe): f for f in frames}
    assert {book for book, _ in last} == {OBRIEN, GULF, DESK}
    assert last[(DESK, "1h")].account is None
    for account, symbols_held in held.items():
        frame = last[(account, "1h")]
        assert (frame.account, frame.desk) == (account, DESK)
        assert {p.symbol for p in frame.positions} == symbols_held
        assert {c.cluster for c in frame.clusters} <= symbols_held
        assert {m for c in frame.clusters for m in c.members} == symbols_held
    strategies = {p.strategy for p in last[(OBRIEN, "1h")].positions}
    assert strategies == {"50% $ \\ back", DESK, "$1; SELECT pg_sleep(10); --"}

    with psycopg.connect(migrated.role_url(READER_ROLE)) as reader:
        def rows(query: str, *params: object) -> list[tuple]:
            return reader.execute(query, params).fetchall()

        assert {r[0] for r in rows("SELECT DISTINCT symbol FROM heat_api.prices")} == symbols
        assert set(rows("SELECT account, symbol, strategy FROM heat_api.positions")) == {
            (account, symbol, strategy) for account, symbol, _, strategy, _ in HELD}
        assert set(rows("SELECT account, desk FROM heat_api.account_equity")) == {
            (OBRIEN, DESK), (GULF, DESK)}
        assert set(rows("SELECT DISTINCT book_kind, book FROM heat_api.frames")) == {
            ("account", OBRIEN), ("account", GULF), ("desk", DESK)}
        for account, symbols_held in held.items():
            assert {r[0] for r in rows("SELECT symbol FROM heat_api.latest_heat WHERE "
                                       "book = %s AND timeframe = '1h'", account)
                    } == symbols_held
            clusters = rows("SELECT DISTINCT cluster, members FROM heat_api.frame_clusters "
                            "WHERE book = %s", account)
            assert clusters and all(c in m and set(m) <= symbols_held for c, m in clusters)
            assert {r[0] for r in rows("SELECT DISTINCT cluster FROM "
                                       "heat_api.cluster_metrics_1h WHERE book = %s",
                                       account)} == {c for c, _ in clusters}
        history = rows("SELECT symbol, frames FROM heat_api.heat_history(%s, '1h', "
                       "'-infinity', 'infinity', '1 day', %s)", OBRIEN, "币安人生USDT")
        assert history and {symbol for symbol, _ in history} == {"币安人生USDT"}
        desk_history = rows("SELECT DISTINCT symbol FROM heat_api.heat_history(%s, '1h', "
                            "'-infinity', 'infinity', '1 day', NULL, 'desk')", DESK)
        assert {r[0] for r in desk_history} == held[OBRIEN] | held[GULF]
        pnl = rows("SELECT symbol, unrealized_pnl FROM heat_api.heat_with_pnl WHERE "
                   "book = %s AND timeframe = '1h' AND unrealized_pnl IS NOT NULL", GULF)
        assert {symbol for symbol, _ in pnl} == held[GULF]
        books = rows("SELECT book_kind, book FROM heat_api.strategy_comparison("
                     "'-infinity', 'infinity', '1h')")
        assert set(books) == {("account", OBRIEN), ("account", GULF), ("desk", DESK)}
        concentrated = rows("SELECT book, holdings FROM heat_api.most_concentrated("
                            "'-infinity', 'infinity', 50, '1h')")
        assert {h["symbol"] for _, holdings in concentrated for h in holdings} <= symbols
        matrix = rows("SELECT DISTINCT symbol_a FROM heat_api.correlation_matrix("
                      "'infinity', '1h')")
        assert {r[0] for r in matrix} == symbols


def test_small_storage_benchmark_runs(database_server) -> None:
    from benchmarks import storage as storage_bench

    result = storage_bench.run(database_server.admin_url, "small")
    assert result.writer_rows_per_s > 0 and result.raw_copy_rows_per_s > 0
    assert result.history_rows == 24  # one day of hourly buckets
    if database_server.kind == "timescaledb":
        assert result.history_plain_query_ms > 0  # the plain-schema baseline, same server
        assert result.compression and all(
            0 < figures.ratio < 1 for figures in result.compression.values())


def test_no_transaction_migrations_run_statement_by_statement(migrated) -> None:
    # CREATE INDEX CONCURRENTLY cannot run in a transaction block, like the TimescaleDB
    # statements of the continuous-aggregate file.
    migration = migrations.Migration("core", 9999, "probe", (
        f"{migrations.NO_TRANSACTION_MARKER}\n"
        "CREATE TABLE heat.probe (id int);\n"
        "CREATE INDEX CONCURRENTLY probe_idx ON heat.probe (id);\n"))
    with psycopg.connect(migrated.admin_url(), autocommit=True) as connection:
        migrations._run(connection, migration, {"heat.compress_after": "7 days"})
        assert connection.execute(
            "SELECT count(*) FROM pg_indexes WHERE indexname = 'probe_idx'").fetchone() == (1,)



def test_params_are_json_objects_and_the_latest_input_wins(migrated) -> None:
    frames = engine_frames()
    first = Position(account="a1", symbol="BTCUSDT", ts=_dt(7), qty=1.0, strategy="s")
    second = Position(account="a1", symbol="BTCUSDT", ts=_dt(7), qty=2.0, strategy="s")
    with HeatWriter(migrated.role_url(WRITER_ROLE), migrated) as writer:
        writer.write(HeatBatch(frames=frames[:3], positions=[first, second]))
        assert writer.write(HeatBatch(positions=[second])) == {"positions": 0}
        writer.write(HeatBatch(positions=[Position(account="a1", symbol="BTCUSDT", ts=_dt(7),
                                                   qty=3.0, strategy="s")]))
    with psycopg.connect(migrated.role_url(READER_ROLE)) as reader:
        kinds = reader.execute("SELECT DISTINCT jsonb_typeof(params), "
                               "params->>'bar_interval_s' FROM heat_api.frames").fetchall()
        qty = reader.execute("SELECT qty FROM heat_api.positions").fetchall()
    assert kinds == [("object", "60")]
    assert qty == [(3.0,)]


def test_pnl_sums_strategies_and_api_keeps_parameter_sets_apart(migrated) -> None:
    import msgspec

    frames = engine_frames()
    rerun = [msgspec.structs.replace(f, params_hash="other-params") for f in frames]
    legs = [Position(account="acct-1", symbol="BTCUSDT", ts=_dt(0), qty=3.0, strategy="x",
                     entry_price=100.0),
            Position(account="acct-1", symbol="BTCUSDT", ts=_dt(0), qty=-1.0, strategy="y",
                     entry_price=120.0)]
    with HeatWriter(migrated.role_url(WRITER_ROLE), migrated) as writer:
        writer.write(HeatBatch(frames=frames, positions=legs))
        writer.write(HeatBatch(frames=rerun))
    with psycopg.connect(migrated.role_url(READER_ROLE)) as reader:
        price, pnl, entry = reader.execute(
            "SELECT price, unrealized_pnl, entry_price FROM heat_api.heat_with_pnl "
            "WHERE symbol = 'BTCUSDT' AND params_hash <> 'other-params' "
            "ORDER BY ts DESC LIMIT 1").fetchone()
        history = reader.execute(
            "SELECT sum(frames) FROM heat_api.heat_history('acct-1', '1h', '-infinity', "
            "'infinity', '1 day')").fetchone()[0]
        explicit = reader.execute(
            "SELECT sum(frames) FROM heat_api.heat_history('acct-1', '1h', '-infinity', "
            "'infinity', '1 day', NULL, 'account', %s)", (frames[0].params_hash,)).fetchone()[0]
    assert pnl == pytest.approx(3 * (price - 100) - 1 * (price - 120))
    assert entry == pytest.approx((3 * 100 - 120) / 2)
    rows = sum(len(f.positions) for f in frames if f.account == "acct-1")
    assert history == explicit == rows  # one parameter set, not both
