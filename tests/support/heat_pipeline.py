"""The real pipeline for integration tests: recorded inputs into Kafka with ``heat ingest
replay``, ``heat process`` and ``heat sink`` as child processes, and the database that
``heat replay --to-db`` of the same files writes, to compare with."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from heatmap.db import tables
from heatmap.schema import rfc3339_to_ms
from heatmap.settings.database import WRITER_ROLE
from heatmap.settings.kafka import KafkaConnection, TopicSettings
from heatmap.stack import kafka as kafka_broker
from heatmap.stack.services import HEAT, HeatService
from heatmap.topics import Topics, topic_specs
from support.api_tokens import ApiTokens, api_tokens
from support.heat_services import alive, service_env
from support.waiting import wait_until

ROOT = Path(__file__).parents[2]
BAR = "5m"
TIMEFRAMES = "1h,4h,1d"
# The pipeline tests' inputs end here: a day and a half of the real bars, warm-up, 17
# position changes, three desks, about 7,000 frames and 175 alert transitions.
PIPELINE_END = "2018-01-12T12"
# Four days of the real bars and the books: the restart tests' inputs.
RESTART_END = "2018-01-14T05"
# What the pipeline must reproduce: the engine's outputs (inputs are compared elsewhere).
OUTPUT_TABLES = [tables.FRAMES, tables.FRAME_POSITIONS, tables.FRAME_CLUSTERS, tables.ALERTS,
                 tables.CORRELATIONS]


@dataclass(frozen=True)
class RecordedInputs:
    """Recorded bars, positions and accounts up to ``end`` (an RFC 3339 prefix)."""

    prices: list[Path]
    positions: Path
    accounts: Path
    last_input_ms: int

    def args(self) -> list[str]:
        return ["--prices", *map(str, self.prices), "--positions", str(self.positions),
                "--accounts", str(self.accounts)]


def recorded_inputs(folder: Path, end: str, start: str = "") -> RecordedInputs:
    """The repository's real 5-minute bars and test books, rows from ``start`` (an RFC 3339
    prefix; from the first row by default) and before ``end``."""
    (folder / "prices").mkdir(parents=True, exist_ok=True)
    last = ""

    def truncate(source: Path, target: Path) -> Path:
        nonlocal last
        lines = source.read_text().splitlines(keepends=True)
        kept = [line for line in lines[1:] if start <= line < end]
        target.write_text("".join([lines[0], *kept]))
        last = max([last, *(line.split(",", 1)[0] for line in kept)])
        return target

    prices = [truncate(path, folder / "prices" / path.name)
              for path in sorted((ROOT / "data" / "binance-5m").glob("*.csv"))]
    positions = truncate(ROOT / "tests" / "data" / "replay" / "positions.csv",
                         folder / "positions.csv")
    accounts = truncate(ROOT / "tests" / "data" / "replay" / "accounts.csv",
                        folder / "accounts.csv")
    return RecordedInputs(prices, positions, accounts, rfc3339_to_ms(last))


def fresh_topics(bootstrap: str) -> Topics:
    """The product topics under a prefix of their own."""
    settings = TopicSettings(prefix=f"p{uuid.uuid4().hex[:8]}.")
    kafka_broker.ensure_topics(KafkaConnection(bootstrap_servers=bootstrap), topic_specs(settings))
    return Topics.from_settings(settings)


def prefix_of(topics: Topics) -> str:
    return topics.prices.removesuffix("prices")


def database_env(settings: Any) -> dict[str, str]:
    return {"HEAT_DATABASE_URL": settings.admin_url(),
            "HEAT_WRITER_PASSWORD": settings.role_password(WRITER_ROLE) or ""}


def replay_to_db(inputs: RecordedInputs, settings: Any, bootstrap: str, *extra: str) -> None:
    """``heat replay --to-db`` of ``inputs`` into the database of ``settings`` (``extra``:
    more options)."""
    env = service_env(bootstrap, "unused.", **database_env(settings))
    subprocess.run([*HEAT, "replay", *inputs.args(), "--bar", BAR, "--timeframes", TIMEFRAMES,
                    "--to-db", *extra], env=env, check=True, capture_output=True, timeout=600)


def ingest(inputs: RecordedInputs, topics: Topics, bootstrap: str, log_path: Path,
           speed: float = 0) -> HeatService:
    """``heat ingest replay --speed <speed>`` of ``inputs`` (running; wait on its process);
    0 sends as fast as possible."""
    env = service_env(bootstrap, prefix_of(topics))
    return HeatService(["ingest", "replay", *inputs.args(), "--speed", f"{speed:g}"], env,
                       log_path)


@dataclass
class Pipeline:
    """Processor and sink workers started for one test; all killed at the end. The
    processors accept the tokens of ``tokens`` (:data:`support.api_tokens.STANDARD`:
    ``tokens["all"]`` reads every desk and asks what-ifs)."""

    bootstrap: str
    topics: Topics
    database: Any
    folder: Path
    started: list[HeatService] = field(default_factory=list)
    _tokens: ApiTokens | None = None

    @property
    def tokens(self) -> ApiTokens:
        if self._tokens is None:
            self._tokens = api_tokens(self.folder / "api-tokens")
        return self._tokens

    def _start(self, command: list[str], name: str, **extra: str) -> HeatService:
        env = service_env(self.bootstrap, prefix_of(self.topics), HEAT_BAR_INTERVAL=BAR,
                          HEAT_TIMEFRAMES=TIMEFRAMES, **extra)
        service = HeatService(command, env, self.folder / f"{name}-{len(self.started)}.log")
        self.started.append(service)
        return service

    def process(self, **extra: str) -> HeatService:
        return self._start(["process"], "process", HEAT_WEB_PORT="0",
                           HEAT_API_TOKENS_FILE=str(self.tokens.path), **extra)

    def sink(self, **extra: str) -> HeatService:
        return self._start(["sink"], "sink", HEAT_SINK_WEB_PORT="0",
                           **database_env(self.database), **extra)

    def close(self) -> None:
        for service in self.started:
            if service.process.poll() is None:
                service.kill()


def pipeline(bootstrap: str, database: Any, folder: Path) -> Iterator[Pipeline]:
    running = Pipeline(bootstrap, fresh_topics(bootstrap), database, folder)
    try:
        yield running
    finally:
        running.close()


def output_rows(url: str, before_ms: int) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the output tables with ts before ``before_ms``, by natural key."""
    rows = {}
    with psycopg.connect(url) as connection:
        for table in OUTPUT_TABLES:
            query = sql.SQL("SELECT {} FROM {} WHERE ts < to_timestamp({} / 1000.0) "
                            "ORDER BY {}").format(
                sql.SQL(", ").join(map(sql.Identifier, table.column_names)),
                sql.Identifier("heat", table.name), sql.Literal(before_ms),
                sql.SQL(", ").join(map(sql.Identifier, table.key)))
            rows[table.name] = connection.execute(query).fetchall()
    return rows


def output_counts(url: str, before_ms: int) -> dict[str, int]:
    with psycopg.connect(url) as connection:
        return {table.name: connection.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE ts < to_timestamp({} / 1000.0)").format(
                sql.Identifier("heat", table.name), sql.Literal(before_ms))).fetchone()[0]
            for table in OUTPUT_TABLES}


def wait_for_outputs(running: Pipeline, expected: dict[str, list[tuple[Any, ...]]],
                     last_input_ms: int, timeout_s: float = 240
                     ) -> dict[str, list[tuple[Any, ...]]]:
    """The pipeline's output rows once it stored as many as expected (or the deadline);
    every worker still started must stay alive meanwhile."""
    url = running.database.admin_url()
    want = {name: len(rows) for name, rows in expected.items()}

    def complete() -> bool:
        assert all(alive(service) for service in running.started if not service.ended_on_purpose)
        return output_counts(url, last_input_ms) == want

    def progress() -> str:
        health = {service.log_path.name: service.health_response()
                  for service in running.started if not service.ended_on_purpose}
        return (f"after {timeout_s:.0f} s stored {output_counts(url, last_input_ms)}, "
                f"expected {want}; workers: {health}; "
                f"{row_differences(output_rows(url, last_input_ms), expected)}")

    wait_until(complete, timeout_s=timeout_s, interval_s=0.5, message=progress)
    return output_rows(url, last_input_ms)


def row_differences(got: dict[str, list[tuple[Any, ...]]],
                    expected: dict[str, list[tuple[Any, ...]]], shown: int = 5) -> str:
    """Per table that differs, the first rows only the pipeline stored and only
    ``heat replay`` stored (what a failure needs to be diagnosed)."""
    parts = []
    for table, rows in expected.items():
        if got[table] == rows:
            continue
        stored, replayed = set(map(_hashable, got[table])), set(map(_hashable, rows))
        extra = sorted(stored - replayed, key=repr)[:shown]
        missing = sorted(replayed - stored, key=repr)[:shown]
        parts.append(f"{table}: only stored by the pipeline {extra}; "
                     f"only by heat replay {missing}")
    return "; ".join(parts) or "every table equal"


def _hashable(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """The row with its JSON columns (dicts, lists) as text, so rows can be in a set."""
    return tuple(json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else value
                 for value in row)


def assert_same_rows(got: dict[str, list[tuple[Any, ...]]],
                     expected: dict[str, list[tuple[Any, ...]]]) -> None:
    assert all(got[table] == rows for table, rows in expected.items()), \
        f"differs from heat replay: {row_differences(got, expected)}"
