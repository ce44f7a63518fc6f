"""``heat demo``: the whole pipeline on one machine, watched from the terminal.

Order of a run: the stack (reused or started), migrations, the run's own topics, sink,
processor and source as child processes; then, until ``duration_s`` or Ctrl-C, frames
and alerts are read from Kafka into the board, drawn in the terminal (or as status
lines when output is not a terminal) and snapshotted to PNG every N minutes of event
time. Stopping: the source first, the processor and sink once they caught up, a last
snapshot, the run's topics, and the stack if the run started it; the database keeps
everything.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import psycopg
from psycopg import sql
from rich.console import Console
from rich.live import Live

from heatmap.db import migrations
from heatmap.demo.board import Board
from heatmap.demo.feed import OutputFeed
from heatmap.demo.options import DemoOptions
from heatmap.demo.services import (
    DemoPipeline,
    ServiceFailed,
    StackUse,
    bring_up_stack,
    database_settings,
)
from heatmap.demo.snapshots import SnapshotWriter, due_moment
from heatmap.demo.view import RunView, screen, status_line
from heatmap.schema import ms_to_datetime
from heatmap.settings.kafka import KafkaConnection
from heatmap.web.tokens import TokensFileError, create_token, revoke_token

REFRESH_EVERY_S = 0.25
STATUS_EVERY_S = 5.0
CATCH_UP_TIMEOUT_S = 60.0
# The name of the run's own API token in its tokens file (a name, not a secret).
DEMO_TOKEN_NAME = "demo"  # noqa: S105
# The --duration clock starts at the first frame; a pipeline that shows none this long
# after it started has failed (a loaded machine takes well under a minute).
FIRST_FRAME_LIMIT_S = 240.0
SNAPSHOTS_PENDING_MAX = 2


@dataclass(frozen=True)
class Endpoints:
    """Where the children's web servers listen (the processor's serves the live page)."""

    web_host: str
    web_port: int


@dataclass
class DemoSummary:
    """What a run left behind."""

    frames: int
    clusters: int
    alerts: int
    first_event: str
    last_event: str
    snapshots: list[Path]
    logs: Path
    stack: str


@contextlib.contextmanager
def _stop_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP stop the demo as Ctrl-C does."""
    def interrupt(_signal: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = {number: signal.signal(number, interrupt)
                for number in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def run_demo(options: DemoOptions, endpoints: Endpoints, logs: Path,
             passthrough: dict[str, str], console: Console,
             step: Callable[[str], None]) -> DemoSummary:
    """One demo run from start to a stopped pipeline; see the module docstring."""
    with _stop_signals():
        stack = bring_up_stack(step)
        summary: DemoSummary | None = None
        try:
            summary = _with_stack(options, endpoints, logs, passthrough, console, step, stack)
        finally:
            note = stack.stop_started(step)
        summary.stack = note
        return summary


def _with_stack(options: DemoOptions, endpoints: Endpoints, logs: Path,
                passthrough: dict[str, str], console: Console, step: Callable[[str], None],
                stack: StackUse) -> DemoSummary:
    admin_url = stack.state.database_url
    step("Migrating the database")
    migrations.migrate(database_settings(admin_url))
    tokens_file = options.snapshot_dir / "api-tokens.json"
    token = demo_token(tokens_file)
    pipeline = DemoPipeline(options, stack.state.kafka_bootstrap, admin_url, logs,
                            endpoints.web_host, endpoints.web_port, passthrough, tokens_file)
    pipeline.create_topics()
    board = Board(options.timeframe)
    snapshots = SnapshotWriter(admin_url, options.timeframe, options.snapshot_dir)
    feed: OutputFeed | None = None
    try:
        step(f"Starting sink, processor and {options.source} (logs in {logs})")
        pipeline.start()
        feed = OutputFeed(KafkaConnection(bootstrap_servers=stack.state.kafka_bootstrap),
                          pipeline.topic_settings)
        snapshots.start()
        console.print(f"Live heat page: {pipeline.live_url} (it asks for an API token: "
                      f"{token}, made for this run, read and what-if on every desk; "
                      f"revoked when the demo stops)", markup=False, highlight=False,
                      soft_wrap=True)
        _watch(options, pipeline, feed, board, snapshots, console, token)
        console.print("Stopping: the source first, then processor and sink once they caught "
                      "up (Ctrl-C again: stop now)", soft_wrap=True)
        with contextlib.suppress(KeyboardInterrupt):
            pipeline.stop_input()
            if not pipeline.wait_caught_up(CATCH_UP_TIMEOUT_S):
                console.print(f"The pipeline had not caught up after {CATCH_UP_TIMEOUT_S:.0f} s:"
                              " stopping it anyway; the newest frames may be missing from the "
                              "database", soft_wrap=True, style="yellow")
            _drain(feed, board)
        pipeline.stop()
        _final_snapshot(board, snapshots)
    finally:
        pipeline.stop()
        with contextlib.suppress(OSError, ValueError, TokensFileError):
            revoke_token(tokens_file, DEMO_TOKEN_NAME)
        snapshots.finish()
        if feed is not None:
            feed.close()
        with contextlib.suppress(Exception):
            pipeline.delete_topics()
    return DemoSummary(*_stored(admin_url, board), first_event=_iso(board.first_event_ms),
                       last_event=_iso(board.event_ms), snapshots=snapshots.written,
                       logs=logs, stack="")


def demo_token(path: Path) -> str:
    """A fresh token of the run for the processor's API and live page (the previous
    run's, if left behind, is replaced)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    revoke_token(path, DEMO_TOKEN_NAME)
    return create_token(path, DEMO_TOKEN_NAME, None, ("read", "whatif"))


def _watch(options: DemoOptions, pipeline: DemoPipeline, feed: OutputFeed, board: Board,
           snapshots: SnapshotWriter, console: Console, token: str = "") -> None:
    """Read, draw and snapshot until the duration is over (counted from the first frame,
    so a slow start-up never shortens what is shown) or Ctrl-C."""
    started = time.monotonic()
    first_frame_s: float | None = None
    last_snapshot_ms: int | None = None

    def run_view() -> RunView:
        return RunView(options.source, options.speed, pipeline.live_url,
                       str(options.snapshot_dir), len(snapshots.written),
                       time.monotonic() - started, options.duration_s, pipeline.input_done(),
                       api_token=token)

    live = Live(console=console, auto_refresh=False, vertical_overflow="crop") \
        if console.is_terminal else None
    next_status_s = started
    with live if live is not None else contextlib.nullcontext():
        try:
            while (options.duration_s is None or first_frame_s is None
                   or time.monotonic() - first_frame_s < options.duration_s):
                pipeline.check()
                feed.read_into(board, timeout_ms=int(REFRESH_EVERY_S * 1000))
                if first_frame_s is None and board.event_ms is not None:
                    first_frame_s = time.monotonic()
                elif first_frame_s is None and time.monotonic() - started > FIRST_FRAME_LIMIT_S:
                    raise ServiceFailed(f"no heat frame {FIRST_FRAME_LIMIT_S:.0f} s after the "
                                        f"pipeline started: see the logs in {pipeline.logs}")
                last_snapshot_ms = _maybe_snapshot(options, board, snapshots, last_snapshot_ms)
                if live is not None:
                    live.update(screen(board, run_view(), pipeline.views(),
                                       height=console.size.height), refresh=True)
                elif time.monotonic() >= next_status_s:
                    console.print(status_line(board, run_view(), pipeline.views()),
                                  markup=False, highlight=False, soft_wrap=True)
                    next_status_s = time.monotonic() + STATUS_EVERY_S
        except KeyboardInterrupt:
            pass
        if live is not None:
            live.update(screen(board, run_view(), pipeline.views(),
                               height=console.size.height), refresh=True)


def _maybe_snapshot(options: DemoOptions, board: Board, snapshots: SnapshotWriter,
                    last_ms: int | None) -> int | None:
    if board.event_ms is None or board.first_event_ms is None:
        return last_ms
    moment = due_moment(board.event_ms, board.first_event_ms, options.snapshot_every_ms,
                        last_ms)
    if moment is None or snapshots.pending() >= SNAPSHOTS_PENDING_MAX:
        return last_ms
    snapshots.request(moment, _accounts(board))
    return moment


def _accounts(board: Board) -> tuple[str, ...]:
    return tuple(name for (kind, name), _ in board.books() if kind == "account")


def _final_snapshot(board: Board, snapshots: SnapshotWriter) -> None:
    """The last moment of the run, drawn from what the sink stored."""
    if board.event_ms is not None:
        snapshots.request(board.event_ms, _accounts(board), wait_stored=False)


def _drain(feed: OutputFeed, board: Board) -> None:
    """Read what the processor committed before it stopped."""
    while feed.read_into(board, timeout_ms=500):
        pass


def _iso(ts_ms: int | None) -> str:
    return "-" if ts_ms is None else f"{ms_to_datetime(ts_ms):%Y-%m-%d %H:%M:%S} UTC"


def _stored(url: str, board: Board) -> tuple[int, int, int]:
    """Frames, cluster rows and alert transitions in the database over the run's event
    time, of the books the run saw."""
    if board.first_event_ms is None or board.event_ms is None:
        return 0, 0, 0
    books = sorted({name for _, name in board.frames} | {
        alert.account or alert.desk or "" for alert in board.firing.values()})
    params = {"start": ms_to_datetime(board.first_event_ms),
              "end": ms_to_datetime(board.event_ms), "books": books}
    counts = []
    with psycopg.connect(url) as connection:
        for table in ("frames", "frame_clusters", "alerts"):
            query = sql.SQL("SELECT count(*) FROM {} WHERE ts BETWEEN %(start)s AND %(end)s "
                            "AND book = ANY(%(books)s)").format(sql.Identifier("heat", table))
            row = connection.execute(query, params).fetchone()
            counts.append(int(row[0]) if row else 0)
    return counts[0], counts[1], counts[2]
