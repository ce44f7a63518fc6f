"""Configuration of the stream processor (``heat process``), from ``HEAT_*`` environment
variables; Kafka itself is the shared :class:`heatmap.settings.kafka.KafkaSettings`."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from heatmap.engine.params import EngineParams, parse_duration_s
from heatmap.engine.share import BookShare
from heatmap.process.alert_config import AlertConfig, AlertConfigError, parse_alert_config
from heatmap.settings.kafka import KafkaSettings

# Kafka brokers refuse shorter consumer-group sessions (group.min.session.timeout.ms,
# 6 s by default on Kafka 4.0), and a worker asking for less hangs instead of failing.
MIN_SESSION_TIMEOUT_S = 6.0


class ProcessSettings(BaseSettings):
    """What the processor adds to the shared Kafka settings.

    Parameters
    ----------
    bar_interval : str
        ``HEAT_BAR_INTERVAL``: bar length, e.g. ``1m``; bars close on UTC multiples of it.
    timeframes : str
        ``HEAT_TIMEFRAMES``: correlation horizons, comma-separated, e.g. ``1h,4h,1d``.
    web_host, web_port : str, int
        ``HEAT_WEB_HOST`` / ``HEAT_WEB_PORT``: where the web server listens; port 0
        takes a free port.
    web_advertised_url : str or None
        ``HEAT_WEB_ADVERTISED_URL``: the URL other workers send clients to (a standby
        redirects book requests to the active worker's). Unset: ``http://HOST:PORT``
        with the listening host, or this machine's host name when it listens on every
        interface (a container's name on its network).
    session_timeout_s : float
        ``HEAT_SESSION_TIMEOUT_S``: a worker silent this long loses its group
        membership, and the engine moves to a standby; at least 6 s (Kafka's minimum).
    heartbeat_interval_s : float
        ``HEAT_HEARTBEAT_INTERVAL_S``: group heartbeats; below the session timeout.
    epoch_max_ms, epoch_max_events : int
        ``HEAT_EPOCH_MAX_MS`` / ``HEAT_EPOCH_MAX_EVENTS``: an epoch (one transaction)
        closes after this long or this many events, whichever comes first.
    align_ms : int
        ``HEAT_ALIGN_MS``: an input partition more than this ahead (event time)
        of the slowest one is paused while catching up.
    checkpoint_every_s : float
        ``HEAT_CHECKPOINT_EVERY_S``: engine state is checkpointed at least this
        often; a takeover replays the epochs since the last checkpoint, so this
        bounds its work.
    watchdog_s : float
        ``HEAT_WATCHDOG_S``: a worker whose engine made no progress this long
        exits, so a hung engine gives up the lease.
    idle_after_ms : int
        ``HEAT_IDLE_AFTER_MS``: how far producers may reorder partitions. An input
        partition read to its end stops holding the watermark back, but a record
        passes it only once it was seen at its end this long after the record
        arrived (so every event waits at least this long). Longer tolerates burstier
        producers (a record arriving later, behind the watermark, is applied after
        later events of other keys); shorter releases frames sooner.
    input_stall_s : float
        ``HEAT_INPUT_STALL_S``: an input partition whose records wait unapplied, its
        applied offset unchanged this long although it is not paused, is checked: if
        records are there, the engine restarts from its committed state.
    stall_report_s : float
        ``HEAT_STALL_REPORT_S``: a live engine that made no progress this long logs
        where it waits and ``/health`` answers 503 (the watchdog ends it later).
    health_max_delay_s : float
        ``HEAT_HEALTH_MAX_DELAY_S``: ``/health`` answers 503 while the active engine's
        input lag (wall clock minus the append time of the newest applied record)
        exceeds this.
    engine_name : str
        ``HEAT_ENGINE_NAME``: names this engine's transactional id and checkpoint key;
        one active engine per name.
    engine_desks : dict of str to list of str
        ``HEAT_ENGINE_DESKS``: when several engines share the desks, the desks each
        engine name frames (with their accounts), as JSON, e.g. ``{"engine-a":
        ["alpha"], "engine-b": ["beta", "gamma"]}``; the same value for every engine.
        The first engine listed frames the books no engine names (accounts without a
        desk, desks not listed) and alone publishes correlations and thresholds.
        Empty (the default): this engine frames every book.
    log_level : str
        ``HEAT_LOG_LEVEL``.
    alert_config : Path or None
        ``HEAT_ALERT_CONFIG``: alert thresholds per desk and the timeframes that alert,
        a TOML file (docs/alerts.md), checked at start; the active engine reads it
        again every second and applies a changed, valid file from the next bar
        boundary. Unset: the built-in thresholds for every desk.
    """

    model_config = SettingsConfigDict(env_prefix="HEAT_", frozen=True, extra="ignore")

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    bar_interval: str = "1m"
    timeframes: str = "1h,4h,1d"
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=0, ge=0, le=65535)
    web_advertised_url: str | None = None
    session_timeout_s: float = MIN_SESSION_TIMEOUT_S
    heartbeat_interval_s: float = Field(default=1.0, gt=0)
    epoch_max_ms: int = Field(default=250, gt=0)
    epoch_max_events: int = Field(default=5000, gt=0)
    align_ms: int = Field(default=1000, ge=0)
    checkpoint_every_s: float = Field(default=10.0, gt=0)
    watchdog_s: float = Field(default=60.0, gt=0)
    idle_after_ms: int = Field(default=100, ge=0)
    input_stall_s: float = Field(default=30.0, gt=0)
    stall_report_s: float = Field(default=10.0, gt=0)
    health_max_delay_s: float = Field(default=10.0, gt=0)
    engine_name: str = Field(default="engine", pattern=r"^[A-Za-z0-9._-]{1,64}$")
    engine_desks: dict[str, list[str]] = Field(default_factory=dict)
    log_level: str = "INFO"
    alert_config: Path | None = None

    @field_validator("session_timeout_s")
    @classmethod
    def _kafka_minimum(cls, value: float) -> float:
        if value < MIN_SESSION_TIMEOUT_S:
            raise ValueError(f"must be at least {MIN_SESSION_TIMEOUT_S:g} s: Kafka brokers "
                             "refuse shorter consumer sessions")
        return value

    @field_validator("bar_interval")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration_s(value)  # a bad interval fails here, at start-up
        return value

    @field_validator("timeframes")
    @classmethod
    def _durations(cls, value: str) -> str:
        names = [name.strip() for name in value.split(",") if name.strip()]
        if not names:
            raise ValueError("give at least one timeframe, e.g. 1h,4h,1d")
        for name in names:
            parse_duration_s(name)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ProcessSettings:
        if self.heartbeat_interval_s >= self.session_timeout_s:
            raise ValueError("heartbeat_interval_s must be below session_timeout_s")
        self.engine_params()  # e.g. timeframes shorter than the bar fail here, at start-up
        self.book_share()
        return self

    def book_share(self) -> BookShare | None:
        """This engine's share of the books (``HEAT_ENGINE_DESKS``); None: every book.
        Raises ValueError when the map does not name this engine or names a desk twice."""
        if not self.engine_desks:
            return None
        if self.engine_name not in self.engine_desks:
            raise ValueError(f"HEAT_ENGINE_DESKS names no desks for this engine "
                             f"({self.engine_name!r}); list it, or set HEAT_ENGINE_NAME to "
                             f"one of {sorted(self.engine_desks)}")
        claimed: dict[str, str] = {}
        for engine, desks in self.engine_desks.items():
            for desk in desks:
                if desk in claimed:
                    raise ValueError(f"HEAT_ENGINE_DESKS gives desk {desk!r} to both "
                                     f"{claimed[desk]!r} and {engine!r}; a desk has one engine")
                claimed[desk] = engine
        return BookShare(desks=frozenset(self.engine_desks[self.engine_name]),
                         claimed=frozenset(claimed),
                         home=next(iter(self.engine_desks)) == self.engine_name)

    @property
    def app_id(self) -> str:
        """The Faust app id: the consumer group whose leader runs the engine."""
        return f"{self.kafka.topics.prefix}process-{self.engine_name}"

    @property
    def transactional_id(self) -> str:
        """Fixed per engine: a new owner's producer fences the previous one."""
        return self.app_id

    def alert_thresholds(self) -> AlertConfig:
        """The alert configuration ``HEAT_ALERT_CONFIG`` names, read now (the built-in
        thresholds when unset). Raises AlertConfigError, one line per problem."""
        return parse_alert_config(self.alert_config_bytes(), self.engine_params().timeframes,
                                  str(self.alert_config))

    def alert_config_bytes(self) -> bytes:
        """The bytes of the ``HEAT_ALERT_CONFIG`` file now (empty when unset: the built-in
        thresholds). Raises AlertConfigError when it cannot be read."""
        if self.alert_config is None:
            return b""
        try:
            return self.alert_config.read_bytes()
        except OSError as error:
            raise AlertConfigError([f"{self.alert_config}: cannot read the alert "
                                    f"configuration ({error.strerror or error})"]) from error

    def engine_params(self) -> EngineParams:
        """The engine parameters: bar interval and timeframes from here, the rest defaults."""
        timeframes_s = {name.strip(): parse_duration_s(name)
                        for name in self.timeframes.split(",") if name.strip()}
        return EngineParams(bar_interval_s=parse_duration_s(self.bar_interval),
                            timeframes=timeframes_s)
