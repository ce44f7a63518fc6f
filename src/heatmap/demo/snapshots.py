"""PNG heat snapshots every N minutes of event time, drawn from the database by
``heatmap.snapshot`` (one picture per account), in a thread of their own so the
terminal keeps moving while matplotlib draws.

A moment is drawn once the sink has stored that account's frame at or after it, so
the picture shows what the database holds, as ``heat snapshot`` would later.
"""

from __future__ import annotations

import hashlib
import queue
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from heatmap.schema import ms_to_datetime, ms_to_rfc3339

STORED = """
    SELECT EXISTS (SELECT 1 FROM heat.frames
                   WHERE book_kind = 'account' AND book = %(account)s
                     AND timeframe = %(timeframe)s AND ts >= %(at)s)
"""


def due_moment(event_ms: int, first_event_ms: int, every_ms: int,
               last_ms: int | None) -> int | None:
    """The newest multiple of ``every_ms`` (UTC-aligned) reached by ``event_ms`` and not
    drawn yet; None when there is none. Moments before the first frame have nothing to
    draw; moments skipped over by a fast replay are not drawn late."""
    moment = event_ms // every_ms * every_ms
    if moment < first_event_ms or (last_ms is not None and moment <= last_ms):
        return None
    return moment


def file_name(moment_ms: int, account: str) -> str:
    """``20180116T1200Z-acct-a1.png``: any account name becomes a safe file name (other
    characters replaced, with a short hash of the name when anything was replaced)."""
    safe = re.sub(r"[^\w.-]", "_", account).strip(".") or "_"
    if safe != account:
        safe += "-" + hashlib.sha256(account.encode()).hexdigest()[:6]
    stamp = ms_to_rfc3339(moment_ms)[:16].replace("-", "").replace(":", "")
    return f"{stamp}Z-{safe}.png"


@dataclass
class SnapshotWriter:
    """Draws requested moments for the given accounts into ``out_dir``."""

    url: str
    timeframe: str
    out_dir: Path
    written: list[Path] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    _requests: queue.Queue[tuple[int, tuple[str, ...], bool] | None] = field(
        default_factory=queue.Queue)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name="demo-snapshots", daemon=True)
        self._thread.start()

    def request(self, moment_ms: int, accounts: tuple[str, ...], wait_stored: bool = True
                ) -> None:
        self._requests.put((moment_ms, accounts, wait_stored))

    def pending(self) -> int:
        """Requests not yet taken up by the drawing thread."""
        return self._requests.qsize()

    def finish(self, timeout_s: float = 60.0) -> None:
        """Draw what was requested (no more waiting for the sink), then end the thread."""
        self._stopping.set()
        self._requests.put(None)
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)

    def _run(self) -> None:
        from heatmap.snapshot.render import NothingToDraw, Snapshot, render

        while True:
            item = self._requests.get()
            if item is None:
                return
            moment_ms, accounts, wait_stored = item
            for account in accounts:
                if wait_stored and not self._wait_stored(account, moment_ms):
                    continue
                target = self.out_dir / file_name(moment_ms, account)
                try:
                    render(self.url, Snapshot(account, self.timeframe,
                                              ms_to_datetime(moment_ms)), target)
                except NothingToDraw:
                    continue  # e.g. an account that holds nothing yet
                except (psycopg.Error, OSError) as error:
                    self.failures.append(f"{target.name}: {error}")
                    continue
                if target not in self.written:  # a moment asked again redraws its file
                    self.written.append(target)

    def _wait_stored(self, account: str, moment_ms: int) -> bool:
        """Whether the sink stored the account's frame at or after the moment (polling
        until it does, or until the run stops: then the newest stored frame is drawn)."""
        params = {"account": account, "timeframe": self.timeframe,
                  "at": ms_to_datetime(moment_ms)}
        while True:
            try:
                with psycopg.connect(self.url, connect_timeout=5) as connection:
                    row = connection.execute(STORED, params).fetchone()
            except psycopg.Error as error:
                self.failures.append(f"{account}: {error}")
                return False
            if (row is not None and row[0]) or self._stopping.is_set():
                return True
            time.sleep(0.5)
