"""Storage on a real PostgreSQL: migrations, idempotent writes, restarts, roles, hostile names."""

from __future__ import annotations

import itertools
import threading
import time
from datetime import datetime
from pathlib import Path

import psycopg
import pytest

from heatmap.db import migrations
from heatmap.db.writer import HeatBatch, HeatWriter
from heatmap.engine.engine import HeatEngine
from heatmap.engine.params import EngineParams
from heatmap.schema import Position, Price, ms_to_datetime
from heatmap.settings.database import READER_ROLE, WRITER_ROLE
from heatmap.stack import postgres

TABLES = ("prices", "positions", "account_equity", "frames", "frame_positions",
          "frame_clusters", "correlations", "alerts", "deadletters")
HOSTILE = "x'); drop table frames; --"


def _counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as connection:
        return {t: connection.execute(f"SELECT count(*) FROM heat.{t}").fetchone()[0]  # noqa: S608
                for t in TABLES}


def _frames(n_bars: int = 40, account: str = "acct-1") -> list:
    """Real engine frames for a small synthetic book (bars of 1 minute)."""
    engine = HeatEngine(EngineParams(bar_interval_s=60, timeframes={"1h": 3600}, min_periods=3))
    frames = engine.on_account(account, 0, 1000.0, desk="desk-1")
    for bar in range(n_bars):
        for i, symbol in enumerate(("BTCUSDT", "ETHUSDT", "SOLUSDT")):
            price = 100.0 * (1 + 0.01 * ((bar * (i + 1)) % 7))
            frames += engine.on_price(symbol, bar * 60_000, price)
        if bar == 2:
            frames += engine.on_position(account, "BTCUSDT", bar * 60_000 + 1, 2.0)
            frames += engine.on_position(account, "ETHUSDT", bar * 60_000 + 1, -1.0)
    return frames + engine.finish()


def test_migrate_on_empty_database_then_again_is_a_no_op(db_settings) -> None:
    applied = migrations.migrate(db_settings)
    assert [m.label for m in applied][:3] == ["core/0001_storage", "core/0002_api",
                                              "core/0003_roles"]
    assert migrations.migrate(db_settings) == []
    rows, _ = migrations.status(db_settings)
    assert all(row.applied_at is not None and row.checksum_matches
               for row in rows if row.migration.series == "core")


def test_the_same_batch_twice_leaves_the_same_rows(migrated) -> None:
    frames = _frames()
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


def test_postgres_restart_mid_stream_loses_and_duplicates_nothing(local_stack, migrated) -> None:
    frames = _frames(n_bars=300)
    batches = [frames[i:i + 5] for i in range(0, len(frames), 5)]
    state = local_stack.load_state()
    config = local_stack._postgres_config(state.postgres_port)
    errors: list[BaseException] = []
    written: list[int] = []
    writer = HeatWriter(migrated.role_url(WRITER_ROLE), migrated)

    def stream() -> None:
        try:
            for batch in batches:
                writer.write(HeatBatch(frames=batch))
                written.append(len(batch))
                time.sleep(0.02)
        except BaseException as error:
            errors.append(error)

    writer_thread = threading.Thread(target=stream)
    writer_thread.start()
    time.sleep(0.4)
    written_before_stop = len(written)
    postgres.stop(config, timeout_s=30)  # fast shutdown: open sessions are cut off
    time.sleep(1.0)
    postgres.start(config, timeout_s=60)
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
        writer.write(HeatBatch(frames=_frames()))
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


def test_hostile_names_are_stored_verbatim(migrated) -> None:
    # The message schema refuses such names at the edge; the database must still store
    # whatever reaches it verbatim and harmlessly, so these rows bypass the schema.
    from heatmap.db import tables

    frames = _frames(account=HOSTILE)
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


def test_small_storage_benchmark_runs(stack) -> None:
    from heatmap.bench import storage as storage_bench

    result = storage_bench.run(stack.database_url, "small")
    assert result.writer_rows_per_s > 0 and result.raw_copy_rows_per_s > 0
    assert result.history_rows == 24  # one day of hourly buckets


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
    frames = _frames()
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

    frames = _frames()
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
