"""One epoch's outputs as the Kafka records of its transaction.

Frames, alerts and correlations are plain SPEC JSON (what ``heat replay``
writes), keyed as the contract says (frames and alerts by account, or desk for
desk-level ones; correlations by timeframe; alert levels by desk), with the natural
key repeated in headers so a reader can route without parsing. Dead letters carry the refused
record's bytes unchanged with the reason and origin in the same headers ingest
uses. The epoch record goes to ``sequence`` and the checkpoint to
``checkpoints``, both keyed by the engine's name.

Pure: builds records, sends nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from heatmap.process.epochs import encode_epoch
from heatmap.process.host import DeadLetter, EpochOutput
from heatmap.schema import (
    Alert,
    AlertLevels,
    Correlation,
    CorrelationSnapshot,
    Frame,
    encode,
    ms_to_rfc3339,
)
from heatmap.topics import Topics

SERVICE_NAME = b"process"
MAX_DEADLETTER_BYTES = 1024 * 1024  # Kafka's default record limit: keep the head


class OutputRecord(NamedTuple):
    """One record to send: topic, key, value bytes and headers."""

    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]


def _book_headers(account: str | None, desk: str | None, timeframe: str, ts: str
                  ) -> tuple[bytes, list[tuple[str, bytes]]]:
    """(key, headers) of a frame or alert: the account, else the desk."""
    book_kind, book = ("account", account) if account is not None else ("desk", desk or "")
    key = book.encode()
    return key, [("heat-book-kind", book_kind.encode()), ("heat-book", key),
                 ("heat-timeframe", timeframe.encode()), ("heat-ts", ts.encode())]


def frame_record(topics: Topics, frame: Frame) -> OutputRecord:
    key, headers = _book_headers(frame.account, frame.desk, frame.timeframe, frame.ts)
    return OutputRecord(topics.heat_frames, key, encode(frame), headers)


def alert_record(topics: Topics, alert: Alert) -> OutputRecord:
    key, headers = _book_headers(alert.account, alert.desk, alert.timeframe, alert.ts)
    headers.append(("heat-alert-kind", str(alert.kind).encode()))
    return OutputRecord(topics.alerts, key, encode(alert), headers)


def correlation_record(topics: Topics, snapshot: CorrelationSnapshot) -> OutputRecord:
    ts = ms_to_rfc3339(snapshot.ts_ms)
    message = Correlation(ts=ts, timeframe=snapshot.timeframe,
                          params_hash=snapshot.params_hash, symbols=snapshot.symbols,
                          rho=snapshot.rho)
    key = snapshot.timeframe.encode()
    return OutputRecord(topics.correlations, key, encode(message),
                        [("heat-timeframe", key), ("heat-ts", ts.encode())])


def alert_levels_record(topics: Topics, levels: AlertLevels) -> OutputRecord:
    """Keyed by desk; the defaults' key is empty."""
    key = (levels.desk or "").encode()
    return OutputRecord(topics.alert_levels, key, encode(levels),
                        [("heat-ts", levels.ts.encode())])


def deadletter_record(topics: Topics, letter: DeadLetter, source_topics: Sequence[str]
                      ) -> OutputRecord:
    """``source_topics``: per source index, the input topic it reads."""
    payload = letter.value
    headers = [("heat-reason", letter.reason.encode("utf-8", "replace")[:4096]),
               ("heat-source-topic", source_topics[letter.source_index].encode()),
               ("heat-service", SERVICE_NAME)]
    if len(payload) > MAX_DEADLETTER_BYTES:
        headers.append(("heat-truncated-from", str(len(payload)).encode()))
        payload = payload[:MAX_DEADLETTER_BYTES]
    return OutputRecord(topics.deadletter, letter.key, payload, headers)


def epoch_records(topics: Topics, output: EpochOutput, source_topics: Sequence[str],
                  engine_name: str) -> list[OutputRecord]:
    """Every record of the epoch's transaction except the checkpoint, the epoch record
    first (a checkpoint names the sequence offset of its epoch)."""
    epoch = output.epoch
    records = [OutputRecord(topics.sequence, engine_name.encode(), encode_epoch(epoch),
                            [("heat-epoch", str(epoch.epoch).encode())])]
    records.extend(frame_record(topics, frame) for frame in output.frames)
    records.extend(alert_record(topics, alert) for alert in output.alerts)
    records.extend(correlation_record(topics, snapshot) for snapshot in output.correlations)
    records.extend(alert_levels_record(topics, levels) for levels in output.alert_levels)
    records.extend(deadletter_record(topics, letter, source_topics)
                   for letter in output.dead_letters)
    return records


def checkpoint_record(topics: Topics, engine_name: str, epoch: int, sequence_offset: int,
                      checkpoint: bytes) -> OutputRecord:
    """The checkpoint after ``epoch``, whose record sits at ``sequence_offset``."""
    return OutputRecord(topics.checkpoints, engine_name.encode(), checkpoint,
                        [("heat-epoch", str(epoch).encode()),
                         ("heat-sequence-offset", str(sequence_offset).encode())])
