"""Recovery at every cut point of a recorded run, without Kafka.

A run of the engine host over real bars and books is recorded: every epoch (its
record, outputs and a checkpoint of the state after it). Then, for every cut point
- the last checkpoint a new owner finds (none, or after any committed epoch),
- the epochs committed when the owner died (any prefix of the run),
- what was in Kafka at the restart (everything, as when the kill comes after the
  ingest finished; or only what the dead owner had read, the rest arriving later),
a new host is resumed from the checkpoint and the epochs after it, seeks where it says
and goes live over the partitions until they are read to their end. It must apply
every remaining record exactly once, in the recorded order, and its outputs appended to
the committed ones must equal the uninterrupted run's.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from heatmap.engine.params import EngineParams
from heatmap.process.epochs import Epoch, decode_epoch, encode_epoch, replay_order
from heatmap.process.host import EngineHost, EpochOutput, HostConfig, MessageKind, RawRecord
from heatmap.schema import Account, Position, Price, datetime_to_ms, encode
from heatmap.sources.csv_files import ReadStats
from heatmap.sources.merge import merged_events

ROOT = Path(__file__).parents[3]
PARAMS = EngineParams(bar_interval_s=300, timeframes={"1h": 3600, "4h": 14400})
START, END = "2018-01-10T22", "2018-01-11T08"  # accounts at 00:00, positions from 02:17
SOURCES = {"prices": 3, "accounts": 1, "positions": 2}
KINDS: list[MessageKind] = ([Price] * SOURCES["prices"] + [Account] * SOURCES["accounts"]
                            + [Position] * SOURCES["positions"])
CONFIG = HostConfig(params=PARAMS, source_kinds=KINDS)


def _window(source: Path, target: Path) -> Path:
    lines = source.read_text().splitlines(keepends=True)
    target.write_text("".join([lines[0], *(line for line in lines[1:] if START <= line < END)]))
    return target


def _source_of(message: Price | Position | Account, names: dict[str, int]) -> int:
    """Prices, then accounts, then positions; a key always lands on the same partition."""
    if isinstance(message, Price):
        return names.setdefault(message.symbol, len(names)) % SOURCES["prices"]
    if isinstance(message, Account):
        return SOURCES["prices"]
    account = message.account
    return SOURCES["prices"] + SOURCES["accounts"] + sum(map(ord, account)) % 2


@dataclass(frozen=True)
class _Input:
    logs: list[list[RawRecord]]  # per input partition, its records by offset
    # Every record as the ingest produces it: in time order across partitions
    # (ts, partition, offset), which is the order the sequencer applies.
    production: list[tuple[int, int]]


@pytest.fixture(scope="module")
def recorded_input(tmp_path_factory: pytest.TempPathFactory) -> _Input:
    """A few hundred real bars of six symbols and the books of two desks."""
    folder = tmp_path_factory.mktemp("cut-points")
    prices = [_window(path, folder / path.name)
              for path in sorted((ROOT / "data" / "binance-5m").glob("*.csv"))[:6]]
    books = ROOT / "tests" / "data" / "replay"
    positions = _window(books / "positions.csv", folder / "positions.csv")
    accounts = _window(books / "accounts.csv", folder / "accounts.csv")
    partitions: list[list[RawRecord]] = [[] for _ in KINDS]
    names: dict[str, int] = {}
    keyed: list[tuple[int, int, int]] = []
    for message in merged_events(prices, positions, accounts, ReadStats()):
        index = _source_of(message, names)
        log = partitions[index]
        keyed.append((datetime_to_ms(message.ts), index, len(log)))
        log.append(RawRecord(index, len(log), None, encode(message)))
    return _Input(partitions, [(index, offset) for _, index, offset in sorted(keyed)])


class _Kafka:
    """The input partitions as a consumer reads them while the ingest produces them: the
    first ``produced`` records of the production order are in Kafka; batches are fetched
    at seeded random sizes from the positions sought."""

    def __init__(self, data: _Input, produced: int, positions: Sequence[int],
                 rng: random.Random) -> None:
        self.logs, self.production = data.logs, data.production
        self.visible = [0] * len(self.logs)
        self.produced = 0
        self.positions, self.rng = list(positions), rng
        self._produce(produced)

    def _produce(self, count: int) -> None:
        for index, offset in self.production[self.produced:self.produced + count]:
            self.visible[index] = offset + 1
        self.produced = min(len(self.production), self.produced + count)

    def produce_more(self) -> None:
        self._produce(self.rng.randint(0, 60))

    def everything_produced(self) -> bool:
        return self.produced == len(self.production)

    def caught_up(self) -> set[int]:
        return {index for index, seen in enumerate(self.visible) if self.positions[index] >= seen}

    def fetch(self, paused: frozenset[int]) -> list[RawRecord]:
        batch: list[RawRecord] = []
        for index in range(len(self.logs)):
            if index in paused or self.rng.random() < 0.3:
                continue
            start = self.positions[index]
            stop = min(self.visible[index], start + self.rng.choice([1, 7, 40, 300]))
            batch.extend(self.logs[index][start:stop])
            self.positions[index] = max(start, stop)
        return batch


def _live(host: EngineHost, kafka: _Kafka, rng: random.Random,
          checkpoints: bool = False) -> tuple[list[EpochOutput], list[int]]:
    """Drive ``host`` until every record is produced, read and applied; cut epochs at
    seeded random sizes (with a checkpoint after each when ``checkpoints``). Returns the
    epochs and, per epoch, how many records were produced when it was cut."""
    outputs: list[EpochOutput] = []
    produced_at_cut: list[int] = []
    limit = rng.randint(5, 50)
    while True:
        kafka.produce_more()
        host.step(kafka.fetch(host.alignment().pause), kafka.caught_up(), max_events=60)
        done = (kafka.everything_produced() and kafka.caught_up() == set(range(len(KINDS)))
                and not host.sequencer.buffered)
        if done or host.open_events >= limit:
            outputs.append(host.cut_epoch(checkpoint=checkpoints))
            produced_at_cut.append(kafka.produced)
            limit = rng.randint(5, 50)
        if done:
            return outputs, produced_at_cut


@dataclass
class _Recorded:
    outputs: list[EpochOutput]
    produced_at_cut: list[int]  # per epoch: records in Kafka when it was cut


def _applied(outputs: Sequence[EpochOutput], logs: list[list[RawRecord]]
             ) -> list[tuple[int, int]]:
    """(source, offset) of every record applied, in the order the epochs applied them."""
    order: list[tuple[int, int]] = []
    for output in outputs:
        epoch = output.epoch
        needed = {source.source_index: [logs[source.source_index][offset]
                                        for offset in source.offsets()]
                  for source in epoch.sources}
        order.extend((raw.source_index, raw.offset) for raw in replay_order(epoch, needed))
    return order


def _encoded(outputs: Sequence[EpochOutput]) -> tuple[list[bytes], list[bytes]]:
    return ([encode(frame) for output in outputs for frame in output.frames],
            [encode(alert) for output in outputs for alert in output.alerts])


@pytest.fixture(scope="module")
def recorded(recorded_input: _Input) -> _Recorded:
    rng = random.Random(5)
    kafka = _Kafka(recorded_input, 0, [0] * len(KINDS), rng)
    return _Recorded(*_live(EngineHost(CONFIG), kafka, rng, checkpoints=True))


def _resume_and_finish(data: _Input, recorded: _Recorded, committed: int,
                       checkpoint_after: int | None, everything_in_kafka: bool,
                       seed: int) -> list[EpochOutput]:
    """A new owner after the first ``committed`` epochs, its last checkpoint the one after
    epoch ``checkpoint_after`` (None: none); returns the epochs it commits live."""
    outputs = recorded.outputs
    blob = None if checkpoint_after is None else outputs[checkpoint_after].checkpoint
    epochs: list[Epoch] = [decode_epoch(encode_epoch(out.epoch)) for out in outputs[:committed]]
    resumed = EngineHost.resume(CONFIG, blob, epochs, dict(enumerate(data.logs)))
    replayed_from = 0 if checkpoint_after is None else checkpoint_after + 1
    assert [out.epoch for out in resumed.replayed] == [out.epoch for out in
                                                       outputs[replayed_from:committed]]
    rng = random.Random(seed)
    if everything_in_kafka:  # the kill came after the ingest had finished
        produced = len(data.production)
    else:  # the ingest goes on producing after the kill
        produced = recorded.produced_at_cut[committed - 1] if committed else 0
    kafka = _Kafka(data, produced, resumed.seek_offsets, rng)
    return _live(resumed.host, kafka, rng)[0]


@pytest.mark.slow
@pytest.mark.parametrize("everything_in_kafka", [True, False],
                         ids=["all-input-in-kafka", "input-still-arriving"])
def test_every_cut_point_resumes_into_the_uninterrupted_run(
        recorded_input: _Input, recorded: _Recorded, everything_in_kafka: bool) -> None:
    logs, outputs = recorded_input.logs, recorded.outputs
    total = sum(len(log) for log in logs)
    expected_order = _applied(outputs, logs)
    assert sorted(expected_order) == sorted((index, offset) for index, log in enumerate(logs)
                                            for offset in range(len(log)))
    expected_frames, expected_alerts = _encoded(outputs)
    assert len(outputs) >= 10 and expected_alerts, (len(outputs), len(expected_alerts))
    cuts = 0
    for committed in range(len(outputs) + 1):
        for checkpoint_after in [None, *range(committed)]:
            live = _resume_and_finish(recorded_input, recorded, committed, checkpoint_after,
                                      everything_in_kafka, seed=committed * 1000 + cuts)
            joined = [*outputs[:committed], *live]
            where = f"cut after {committed} epochs, checkpoint {checkpoint_after}"
            assert _applied(joined, logs) == expected_order, where
            frames, alerts = _encoded(joined)
            assert frames == expected_frames, where
            assert alerts == expected_alerts, where
            cuts += 1
    print(f"{cuts} cut points over {len(outputs)} epochs and {total} records")
