"""What the demo's terminal shows, built from the frames, alerts and alert levels read
off Kafka.

Pure: the board is fed decoded messages and answers what is hottest now. A book is an
account or a desk; its newest frame of the board's timeframe stands for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from heatmap.schema import Alert, AlertLevels, ClusterRow, Frame, PositionRow, rfc3339_to_ms

# SPEC's cluster concentration lines (warning, critical), while no levels are published.
DEFAULT_LINES = (0.20, 0.25)
BookKey = tuple[str, str]  # (kind: "account" | "desk", name)
AlertKey = tuple[str, str, str, str, str]  # (book kind, book, timeframe, kind, subject)


def book_of(message: Frame | Alert) -> BookKey:
    """The book a frame or alert belongs to: its account, else its desk."""
    if message.account is not None:
        return "account", message.account
    return "desk", message.desk or ""


@dataclass
class Board:
    """The newest frame per book (of ``timeframe``) and the alerts firing now."""

    timeframe: str
    frames: dict[BookKey, Frame] = field(default_factory=dict)
    firing: dict[AlertKey, Alert] = field(default_factory=dict)
    # The alert levels in effect per desk (None: the defaults), as the processor applies them.
    levels: dict[str | None, AlertLevels] = field(default_factory=dict)
    frames_read: int = 0
    alerts_read: int = 0
    undecodable: int = 0
    first_event_ms: int | None = None
    event_ms: int | None = None  # the newest frame's time, any timeframe

    def add_frame(self, frame: Frame) -> None:
        self.frames_read += 1
        ts_ms = rfc3339_to_ms(frame.ts)
        if self.first_event_ms is None:
            self.first_event_ms = ts_ms
        self.event_ms = ts_ms if self.event_ms is None else max(self.event_ms, ts_ms)
        if frame.timeframe == self.timeframe:
            self.frames[book_of(frame)] = frame

    def add_levels(self, levels: AlertLevels) -> None:
        self.levels[levels.desk] = levels

    def concentration_lines(self, book: BookKey) -> tuple[float, float]:
        """The warning and critical concentration lines of ``book``'s desk (fractions of
        equity): its own, else the defaults, else SPEC's until the processor publishes."""
        frame = self.frames.get(book)
        levels = self.levels.get(frame.desk if frame is not None else None,
                                 self.levels.get(None))
        if levels is None:
            return DEFAULT_LINES
        return levels.cluster_concentration_warning, levels.cluster_concentration_critical

    def add_alert(self, alert: Alert) -> None:
        self.alerts_read += 1
        key = (*book_of(alert), alert.timeframe, alert.kind, alert.subject)
        if alert.state == "firing":
            self.firing[key] = alert
        else:
            self.firing.pop(key, None)

    def books(self) -> list[tuple[BookKey, Frame]]:
        """Every book with its newest frame: desks first, then accounts, by name."""
        return sorted(self.frames.items(), key=lambda item: (item[0][0] != "desk", item[0][1]))

    def positions(self) -> list[tuple[BookKey, PositionRow]]:
        """Every held position of every account, hottest first (hedges last)."""
        rows = [(book, row) for book, frame in self.frames.items() if book[0] == "account"
                for row in frame.positions]
        return sorted(rows, key=lambda item: (-item[1].heat, item[0][1], item[1].symbol))

    def clusters(self) -> list[tuple[BookKey, ClusterRow]]:
        """Every cluster of every book, the most concentrated first."""
        rows = [(book, row) for book, frame in self.frames.items() for row in frame.clusters]
        return sorted(rows, key=lambda item: (-item[1].concentration, item[0], item[1].cluster))

    def alerts(self) -> list[Alert]:
        """Alerts firing now: critical first, then the newest."""
        return sorted(self.firing.values(),
                      key=lambda alert: (alert.severity != "critical", -rfc3339_to_ms(alert.ts)))

    def stale_books(self) -> list[BookKey]:
        return [book for book, frame in self.books() if frame.stale]
