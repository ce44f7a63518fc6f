"""Consumed Kafka records into one :class:`HeatBatch`: decode by topic, thin the prices,
and turn every record that breaks its contract into a dead-letter row.

Dead letters: a record of the ``deadletter`` topic (written by ingest and the
processor, with the ``heat-reason``, ``heat-source-topic`` and ``heat-service``
headers) is stored where it sits, under the deadletter topic's own partition and
offset, its reason prefixed with its source topic and service. An output record
(frame, alert, correlation) that fails to decode is stored under its own topic,
partition and offset. Either way the row's time is the record's Kafka timestamp, so
re-reading a record writes the same key (idempotent). An input record (price,
position, account) that fails to decode is only counted: the processor applies the
same contract to it and dead-letters it with its reason, and one bad record should
be one row.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec

from heatmap.db.tables import CorrelationSnapshot, DeadLetter
from heatmap.db.writer import HeatBatch
from heatmap.schema import (
    Account,
    Alert,
    AlertLevels,
    Correlation,
    Frame,
    InvalidMessageError,
    Position,
    Price,
    decode,
    rfc3339_to_ms,
)
from heatmap.sink.price_sampling import PriceSampler
from heatmap.topics import Topics

REASON_MAX_CHARS = 4096
_INPUTS = frozenset({"prices", "positions", "accounts"})


class ConsumedRecord(Protocol):
    """What the batcher reads of a consumed record (aiokafka's ``ConsumerRecord`` fits).

    ``timestamp`` is the Kafka timestamp in epoch milliseconds.
    """

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...


_frame_decoder = msgspec.json.Decoder(Frame)
_alert_decoder = msgspec.json.Decoder(Alert)
_correlation_decoder = msgspec.json.Decoder(Correlation)
_alert_levels_decoder = msgspec.json.Decoder(AlertLevels)


def _text(raw: bytes | str) -> str:
    """Header or error text as PostgreSQL text can hold it (no NUL, bounded)."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    return text.replace("\x00", "\ufffd")[:REASON_MAX_CHARS]


def _frame(payload: bytes) -> Frame:
    frame = _frame_decoder.decode(payload)
    rfc3339_to_ms(frame.ts)  # the writer stores ts as timestamptz: refuse bad text here
    return frame


def _alert(payload: bytes) -> Alert:
    alert = _alert_decoder.decode(payload)
    rfc3339_to_ms(alert.ts)
    return alert


def _alert_levels(payload: bytes) -> AlertLevels:
    levels = _alert_levels_decoder.decode(payload)
    rfc3339_to_ms(levels.ts)
    return levels


def _correlation(payload: bytes) -> CorrelationSnapshot:
    message = _correlation_decoder.decode(payload)
    k = len(message.symbols)
    if len(message.rho) != k * (k - 1) // 2:
        raise InvalidMessageError(f"rho has {len(message.rho)} values; {k} symbols need "
                                  f"{k * (k - 1) // 2}")
    return CorrelationSnapshot(ts_ms=rfc3339_to_ms(message.ts), timeframe=message.timeframe,
                               params_hash=message.params_hash, symbols=message.symbols,
                               rho=message.rho)


def deadletter_of(record: ConsumedRecord) -> DeadLetter:
    """A record of the deadletter topic as its row (reason from the ingest headers)."""
    headers = {name: value for name, value in record.headers}
    reason = _text(headers.get("heat-reason", b"no reason given"))
    source = _text(headers.get("heat-source-topic", b"unknown topic"))
    service = _text(headers.get("heat-service", b"unknown service"))
    return DeadLetter(ts_ms=record.timestamp, topic=record.topic, partition=record.partition,
                      offset=record.offset, reason=_text(f"{source} ({service}): {reason}"),
                      key=record.key, payload=record.value or b"")


def rejected(record: ConsumedRecord, reason: str) -> DeadLetter:
    """A record that broke its topic's contract, as a dead-letter row."""
    return DeadLetter(ts_ms=record.timestamp, topic=record.topic, partition=record.partition,
                      offset=record.offset, reason=_text(reason), key=record.key,
                      payload=record.value or b"")


@dataclass
class SinkBatcher:
    """Collects consumed records into the next :class:`HeatBatch`.

    ``rejected`` counts, per topic, the records turned into dead letters here (not
    those read from the deadletter topic); ``skipped_inputs``, per input topic, the
    undecodable input records left to the processor's dead letters.
    """

    topics: Topics
    sampler: PriceSampler
    rejected: Counter[str] = field(default_factory=Counter)
    skipped_inputs: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        t = self.topics
        self._decoders: dict[str, tuple[Callable[[bytes], Any], str]] = {
            t.heat_frames: (_frame, "frames"), t.alerts: (_alert, "alerts"),
            t.correlations: (_correlation, "correlations"),
            t.alert_levels: (_alert_levels, "alert_levels"),
            t.prices: (lambda payload: decode(Price, payload), "prices"),
            t.positions: (lambda payload: decode(Position, payload), "positions"),
            t.accounts: (lambda payload: decode(Account, payload), "accounts"),
        }
        self.batch = HeatBatch()

    def add(self, record: ConsumedRecord) -> None:
        """Decode one record into the batch (never raises for bad content)."""
        if record.topic == self.topics.deadletter:
            self.batch.deadletters.append(deadletter_of(record))
            return
        known = self._decoders.get(record.topic)
        if known is None:
            self._reject(record, f"the sink does not read topic {record.topic}")
            return
        decoder, attribute = known
        try:
            if record.value is None:
                raise ValueError("empty record (no value)")
            message = decoder(record.value)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as error:
            if attribute in _INPUTS:
                self.skipped_inputs[record.topic] += 1  # the processor dead-letters it
            else:
                self._reject(record, str(error))  # InvalidMessageError and bad UTF-8 included
            return
        if attribute == "prices":
            self.batch.prices.extend(self.sampler.offer(
                message, (record.topic, record.partition, record.offset)))
        else:
            getattr(self.batch, attribute).append(message)

    def _reject(self, record: ConsumedRecord, reason: str) -> None:
        self.rejected[record.topic] += 1
        self.batch.deadletters.append(rejected(record, reason))

    def take(self, final: bool = False) -> HeatBatch:
        """The batch collected so far, and start a new one; ``final`` adds the held prices."""
        batch, self.batch = self.batch, HeatBatch()
        if final:
            batch.prices.extend(self.sampler.flush())
        return batch
