"""The engine host: fed like a Kafka consumer, it emits what `heat replay` emits, and a
host killed at any epoch and resumed from its checkpoint continues without a seam."""

from __future__ import annotations

import io
import random
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import pytest

from heatmap.db.writer import HeatBatch
from heatmap.engine.params import EngineParams
from heatmap.process.epochs import Epoch, decode_epoch, encode_epoch
from heatmap.process.host import (
    DeadLetter,
    EngineHost,
    EpochOutput,
    HostConfig,
    HostError,
    MessageKind,
    RawRecord,
    decode_checkpoint,
)
from heatmap.process.sequencer import SourcePosition
from heatmap.replay.run import DatabaseOutput, replay
from heatmap.schema import (
    Account,
    Position,
    Price,
    datetime_to_ms,
    encode,
    ms_to_datetime,
    rfc3339_to_ms,
)
from heatmap.sources.csv_files import ReadStats
from heatmap.sources.merge import merged_events

ROOT = Path(__file__).parents[3]
PRICES = sorted((ROOT / "data" / "binance-5m").glob("*.csv"))
POSITIONS = ROOT / "tests" / "data" / "replay" / "positions.csv"
ACCOUNTS = ROOT / "tests" / "data" / "replay" / "accounts.csv"
# What `heat replay --bar 5m --timeframes 1h,4h,1d` runs with (the other values are defaults).
PARAMS = EngineParams(bar_interval_s=300, timeframes={"1h": 3600, "4h": 14400, "1d": 86400})
# The first days of the data: warm-up, the first positions and desks, a few thousand bars.
END = "2018-01-14"
PARTITIONS = 6
# Sources: prices partitions first, then accounts, then positions (replay's order at equal ts).
KINDS: list[MessageKind] = [Price] * PARTITIONS + [Account] * PARTITIONS + [Position] * PARTITIONS
CONFIG = HostConfig(params=PARAMS, source_kinds=KINDS)
YEAR_MS = 366 * 86_400_000


def _truncate(source: Path, target: Path) -> None:
    """Copy the header and the rows before END (rows start with their RFC 3339 timestamp)."""
    lines = source.read_text().splitlines(keepends=True)
    target.write_text("".join([lines[0], *(line for line in lines[1:] if line < END)]))


def _partition(message: Price | Position | Account) -> int:
    """The source of a message: its topic's block, then the hash of its Kafka key."""
    if isinstance(message, Price):
        return zlib.crc32(message.symbol.encode()) % PARTITIONS
    block = 1 if isinstance(message, Account) else 2
    return block * PARTITIONS + zlib.crc32(message.account.encode()) % PARTITIONS


@dataclass
class _Data:
    logs: list[list[RawRecord]]  # per source, the partition's records by offset
    frames: list[bytes]  # heat replay's frames, alerts and correlations, as JSON
    alerts: list[bytes]
    correlations: list[bytes]
    last_input_ms: int
    bad_offsets: set[tuple[int, int]]  # records that must become dead letters


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> _Data:
    folder = tmp_path_factory.mktemp("replay")
    (folder / "prices").mkdir()
    prices = [folder / "prices" / path.name for path in PRICES]
    for original, target in zip(PRICES, prices, strict=True):
        _truncate(original, target)
    _truncate(POSITIONS, folder / "positions.csv")
    _truncate(ACCOUNTS, folder / "accounts.csv")

    frames_out, alerts_out = io.BytesIO(), io.BytesIO()
    correlations: list[bytes] = []

    def keep(batch: HeatBatch) -> dict[str, int]:
        correlations.extend(msgspec.json.encode(item) for item in batch.correlations)
        return {}

    replay(prices, folder / "positions.csv", folder / "accounts.csv", PARAMS, frames_out,
           alerts_out, database=DatabaseOutput(keep))

    logs: list[list[RawRecord]] = [[] for _ in KINDS]
    bad: set[tuple[int, int]] = set()
    last_ms = 0
    messages = merged_events(prices, folder / "positions.csv", folder / "accounts.csv",
                             ReadStats())
    for count, message in enumerate(messages):
        source = _partition(message)
        log = logs[source]
        if count % 1500 == 700:  # now and then a record that does not decode
            bad.add((source, len(log)))
            log.append(RawRecord(source, len(log), None, b'{"symbol": "oops"'))
        if count == 5000:  # and one a year and more ahead of the stream
            jump = Price(symbol="ETHBTC", ts=ms_to_datetime(datetime_to_ms(message.ts)
                                                            + 2 * YEAR_MS), price=1.0,
                         source="test")
            bad.add((0, len(logs[0])))
            logs[0].append(RawRecord(0, len(logs[0]), b"ETHBTC", encode(jump)))
        key = (message.symbol if isinstance(message, Price) else message.account).encode()
        log.append(RawRecord(source, len(log), key, encode(message)))
        last_ms = datetime_to_ms(message.ts)
    return _Data(logs, frames_out.getvalue().splitlines(), alerts_out.getvalue().splitlines(),
                 correlations, last_ms, bad)


class _Consumer:
    """Reads the partitions like a consumer: random sources, random batch sizes, pause
    honoured, caught-up flags as position >= end of the partition."""

    def __init__(self, logs: list[list[RawRecord]], offsets: Sequence[int],
                 rng: random.Random) -> None:
        self.logs, self.positions, self.rng = logs, list(offsets), rng

    def caught_up(self) -> set[int]:
        return {index for index, log in enumerate(self.logs) if self.positions[index] >= len(log)}

    def fetch(self, paused: frozenset[int]) -> list[RawRecord]:
        open_sources = [index for index in range(len(self.logs))
                        if index not in paused and index not in self.caught_up()]
        chosen = self.rng.sample(open_sources, self.rng.randint(1, len(open_sources))
                                 ) if open_sources else []
        batch: list[RawRecord] = []
        for index in chosen:
            start = self.positions[index]
            end = min(len(self.logs[index]), start + self.rng.choice([1, 3, 20, 150, 600]))
            batch.extend(self.logs[index][start:end])
            self.positions[index] = end
        return batch


def _run(host: EngineHost, consumer: _Consumer, rng: random.Random,
         checkpoint_every: int = 4) -> Iterator[EpochOutput]:
    """Drive the host to the end of the input, cutting epochs at random sizes."""
    limit = rng.randint(1, 3000)
    while True:
        done = consumer.caught_up() == set(range(len(KINDS)))
        host.step(consumer.fetch(host.alignment().pause), consumer.caught_up())
        if done or host.open_events >= limit or rng.random() < 0.02:
            yield host.cut_epoch(checkpoint=host.next_epoch % checkpoint_every == 0)
            limit = rng.randint(1, 3000)
        if done:
            return


@dataclass
class _Outputs:
    frames: list[bytes] = field(default_factory=list)
    alerts: list[bytes] = field(default_factory=list)
    correlations: list[bytes] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)

    def add(self, output: EpochOutput) -> None:
        self.frames.extend(encode(frame) for frame in output.frames)
        self.alerts.extend(encode(alert) for alert in output.alerts)
        self.correlations.extend(msgspec.json.encode(item) for item in output.correlations)
        self.dead_letters.extend(output.dead_letters)


def _uninterrupted(data: _Data, seed: int) -> _Outputs:
    rng = random.Random(seed)
    outputs = _Outputs()
    for output in _run(EngineHost(CONFIG), _Consumer(data.logs, [0] * len(KINDS), rng), rng):
        outputs.add(output)
    return outputs


def _ts_ms(frame_or_alert: bytes) -> int:
    return rfc3339_to_ms(msgspec.json.decode(frame_or_alert)["ts"])


@pytest.mark.slow
def test_host_emits_what_replay_emits(data: _Data) -> None:
    """Frames, alerts and correlations equal `heat replay`'s byte for byte, up to the last
    input time (replay's end-of-input flush has no counterpart in a stream)."""
    got = _uninterrupted(data, seed=1)
    assert got.frames == data.frames[:len(got.frames)]
    assert all(_ts_ms(frame) >= data.last_input_ms for frame in data.frames[len(got.frames):])
    assert got.alerts == data.alerts[:len(got.alerts)]
    assert all(_ts_ms(alert) >= data.last_input_ms for alert in data.alerts[len(got.alerts):])
    assert got.correlations == data.correlations[:len(got.correlations)]
    assert all(msgspec.json.decode(item)["ts_ms"] >= data.last_input_ms
               for item in data.correlations[len(got.correlations):])
    assert len(got.frames) > 10_000 and got.alerts
    dead = {(letter.source_index, letter.offset) for letter in got.dead_letters}
    assert dead == data.bad_offsets and len(got.dead_letters) == len(dead)
    assert any("a year after" in letter.reason for letter in got.dead_letters)


def _resume(data: _Data, committed: list[EpochOutput]) -> tuple[EngineHost, list[int]]:
    """What a new owner does: the last committed checkpoint, the epochs after it (as read
    back from the sequence topic), then re-apply; its replay must equal what was written."""
    last = max((i for i, out in enumerate(committed) if out.checkpoint is not None),
               default=None)
    blob = None if last is None else committed[last].checkpoint
    after = committed[(last + 1) if last is not None else 0:]
    epochs: list[Epoch] = [decode_epoch(encode_epoch(out.epoch)) for out in committed]
    resumed = EngineHost.resume(CONFIG, blob, epochs, dict(enumerate(data.logs)))
    assert [out.epoch for out in resumed.replayed] == [out.epoch for out in after]
    for replayed, written in zip(resumed.replayed, after, strict=True):
        assert replayed.frames == written.frames and replayed.alerts == written.alerts
        assert replayed.correlations == written.correlations
    return resumed.host, resumed.seek_offsets


@pytest.mark.slow
def test_killed_and_resumed_host_continues_exactly(data: _Data) -> None:
    """Kill the host at random epochs (its last epoch committed or lost), resume a new one
    from the last checkpoint and the committed epochs: what was committed, concatenated,
    equals an uninterrupted run."""
    expected = _uninterrupted(data, seed=2)
    rng = random.Random(17)
    committed: list[EpochOutput] = []
    host = EngineHost(CONFIG)
    consumer = _Consumer(data.logs, [0] * len(KINDS), rng)
    kills = lost = 0
    while True:
        for output in _run(host, consumer, rng, checkpoint_every=rng.choice([1, 3, 7])):
            dies = kills < 8 and rng.random() < 0.25
            if not dies or rng.random() < 0.5:
                committed.append(output)
            else:
                lost += 1
            if dies:
                break
        else:
            break
        kills += 1
        host, offsets = _resume(data, committed)
        consumer = _Consumer(data.logs, offsets, rng)

    got = _Outputs()
    for output in committed:
        got.add(output)
    assert [out.epoch.epoch for out in committed] == list(range(len(committed)))
    assert kills >= 3 and lost >= 1, (kills, lost)
    assert got.frames == expected.frames
    assert got.alerts == expected.alerts
    assert got.correlations == expected.correlations
    # Each refused record once; a reason may quote the stream's time, which depends on timing.
    assert _refused(got.dead_letters) == _refused(expected.dead_letters)


def _refused(letters: list[DeadLetter]) -> list[tuple[int, int, bytes, str]]:
    return sorted((letter.source_index, letter.offset, letter.value, letter.reason[:20])
                  for letter in letters)


# -- small cases -------------------------------------------------------------------------------

T0_MS = 1_767_323_100_000  # 2026-01-02T03:05:00Z, on a 5-minute boundary


def _raw(source: int, offset: int, message: Price | Position | Account) -> RawRecord:
    return RawRecord(source, offset, None, encode(message))


def _price(ts_ms: int, symbol: str = "BTCUSDT") -> Price:
    return Price(symbol=symbol, ts=ms_to_datetime(ts_ms), price=100.0, source="test")


def test_late_record_for_its_key_is_a_dead_letter() -> None:
    host = EngineHost(HostConfig(params=PARAMS, source_kinds=[Price, Price]))
    host.step([_raw(0, 0, _price(T0_MS)), _raw(0, 1, _price(T0_MS + 60_000))], {0, 1})
    host.step([_raw(1, 0, _price(T0_MS + 1000))], {0, 1})
    output = host.cut_epoch()
    assert [letter.offset for letter in output.dead_letters] == [0]
    assert "late for its key" in output.dead_letters[0].reason
    assert output.epoch.order == [0, 0]
    assert output.epoch.sources[1].resume_offset == 1


def test_checkpoint_only_at_an_epoch_boundary() -> None:
    host = EngineHost(HostConfig(params=PARAMS, source_kinds=[Price]))
    host.step([_raw(0, 0, _price(T0_MS))], {0})
    with pytest.raises(ValueError, match="right after cut_epoch"):
        host.checkpoint()
    output = host.cut_epoch(checkpoint=True)
    assert output.checkpoint is not None
    saved = decode_checkpoint(output.checkpoint)
    assert saved.epoch == 0 and saved.sources[0].resume_offset == 1


def test_resume_refuses_bad_checkpoints_and_gaps() -> None:
    config = HostConfig(params=PARAMS, source_kinds=[Price])
    with pytest.raises(HostError, match="not a host checkpoint"):
        EngineHost.resume(config, b"\x01\x02", [], {})
    host = EngineHost(config)
    first = host.cut_epoch(checkpoint=True)
    assert first.checkpoint is not None
    newer = msgspec.structs.replace(decode_checkpoint(first.checkpoint), format_version=99)
    with pytest.raises(HostError, match="version 99 is not the supported version"):
        EngineHost.resume(config, msgspec.msgpack.encode(newer), [], {})
    host.cut_epoch()
    third = host.cut_epoch()
    with pytest.raises(HostError, match="epoch 1 is missing"):
        EngineHost.resume(config, first.checkpoint, [first.epoch, third.epoch], {})
    with pytest.raises(HostError, match="input partitions changed"):
        EngineHost(config, positions=[SourcePosition(0, ())] * 2)


def test_resume_without_a_checkpoint_replays_every_epoch() -> None:
    config = HostConfig(params=PARAMS, source_kinds=[Price, Price])
    records = [_raw(index % 2, index // 2, _price(T0_MS + index * 150_000, f"S{index % 2}"))
               for index in range(12)]
    host = EngineHost(config)
    written = []
    for start in range(0, 12, 4):
        host.step(records[start:start + 4], caught_up=set())
        written.append(host.cut_epoch())
    by_source = {index: [r for r in records if r.source_index == index] for index in (0, 1)}
    resumed = EngineHost.resume(config, None, [out.epoch for out in written], by_source)
    assert [out.epoch for out in resumed.replayed] == [out.epoch for out in written]
    assert [out.correlations for out in resumed.replayed] == [out.correlations
                                                             for out in written]
    assert resumed.seek_offsets == host.seek_offsets()
    assert resumed.host.next_epoch == 3
    assert resumed.host.checkpoint() == host.checkpoint()
