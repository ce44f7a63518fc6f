"""Pipeline benchmark: ``heat process`` and ``heat sink`` as real child processes on a Kafka
broker and a PostgreSQL server, each figure against a baseline measured in the same run.

1. Throughput: a backlog of price ticks (with the books and enough history to be past
   the estimators' warm-up) is pre-produced to fresh topics; ticks/s the processor
   applies (its ``heat_process_events_total``) against a bare aiokafka loop that reads,
   decodes and re-produces the same records in batches, and against the engine host
   alone (no Kafka) over the same records; then ``heat sink`` stores the frames.
2. Latency: live ticks (event time = now) and position changes at a steady rate;
   from the append time of the record that released each frame to the frame visible
   on Kafka (``read_committed``) and to its row in the database, over several bar
   closes; against a bare transactional relay of the same kind of load.
3. Failover: two processor workers; kill -9 of the active one; until the standby is
   live, until it commits frames, until frames are timely again; against a bare
   consumer-group member taking over a partition with the same session settings.
4. Capacity: :mod:`benchmarks.capacity` (the engine alone).

Every run uses its own topic prefix and scratch database; both are deleted at the end.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace

from benchmarks import capacity
from benchmarks.pipeline.common import SPECS, Bench, PipelineSpec
from benchmarks.pipeline.failover import FailoverFigures, failover
from benchmarks.pipeline.latency import LatencyFigures, latency
from benchmarks.pipeline.throughput import ThroughputFigures, throughput
from heatmap.stack.services import ServiceError

__all__ = ["FIGURES", "SPECS", "Bench", "CapacityFigures", "FailoverFigures", "LatencyFigures",
           "PipelineBenchResult", "PipelineSpec", "ThroughputFigures", "as_dict", "run"]

FIGURES = ("throughput", "latency", "latency_large", "failover", "capacity")


@dataclass
class CapacityFigures:
    budget_s: float
    cells: list[capacity.CapacityCell] = field(default_factory=list)
    max_accounts: dict[int, int | None] = field(default_factory=dict)
    max_accounts_with_outputs: dict[int, int | None] = field(default_factory=dict)
    # One engine against engines sharing the desks, each a process on the same cores.
    shared: list[capacity.SharedCell] = field(default_factory=list)
    max_accounts_by_engines: dict[int, int | None] = field(default_factory=dict)


@dataclass
class PipelineBenchResult:
    spec: str
    shape: str
    throughput: ThroughputFigures | None = None
    latency: LatencyFigures | None = None
    # The same at the spec's larger desk (``large_accounts``): a bar close frames more books.
    latency_large: LatencyFigures | None = None
    large_shape: str = ""
    failover: FailoverFigures | None = None
    capacity: CapacityFigures | None = None
    profiles: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    # The machine's 1-minute load average after each figure (2 cores: above 2, every
    # runnable process waits for a core part of the time).
    load_average: dict[str, float] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # figure -> why it has no result
    notes: list[str] = field(default_factory=list)


# -- 4. capacity -----------------------------------------------------------------------------


def capacity_grid(bench: Bench, spec: PipelineSpec) -> CapacityFigures:
    figures = CapacityFigures(budget_s=spec.capacity_budget_s)
    for symbols in spec.capacity_symbols:
        for accounts in spec.capacity_accounts:
            bench.step(f"capacity: engine alone, {symbols} symbols x {accounts} accounts")
            figures.cells.append(capacity.measure(symbols, accounts,
                                                  bars=spec.capacity_bars,
                                                  seed=spec.shape.seed))
        figures.max_accounts[symbols] = capacity.max_accounts(
            figures.cells, symbols, spec.capacity_budget_s)
        figures.max_accounts_with_outputs[symbols] = capacity.max_accounts(
            figures.cells, symbols, spec.capacity_budget_s, with_outputs=True)
    for engines in (1, 2):
        for accounts in spec.shared_accounts:
            bench.step(f"capacity: {engines} engine process(es) sharing {accounts} accounts")
            figures.shared.append(capacity.measure_shared(
                200, accounts, engines, desks=spec.shape.desks, bars=spec.capacity_bars,
                seed=spec.shape.seed))
        figures.max_accounts_by_engines[engines] = capacity.max_accounts_shared(
            figures.shared, engines, spec.capacity_budget_s)
    return figures


# -- the run ---------------------------------------------------------------------------------


def run(bench: Bench, spec_name: str = "full", figures: Sequence[str] = FIGURES
        ) -> PipelineBenchResult:
    spec = SPECS[spec_name]
    large = replace(spec, shape=replace(spec.shape, accounts=spec.large_accounts))
    result = PipelineBenchResult(spec=spec_name, shape=spec.shape.describe(),
                                 large_shape=large.shape.describe())
    measures: dict[str, Callable[[], None]] = {
        "throughput": lambda: setattr(result, "throughput", throughput(bench, spec)),
        "latency": lambda: setattr(result, "latency", latency(bench, spec)),
        "latency_large": lambda: setattr(result, "latency_large", latency(bench, large)),
        "failover": lambda: setattr(result, "failover", failover(bench, spec)),
        "capacity": lambda: setattr(result, "capacity", capacity_grid(bench, spec)),
    }
    for name, measure in measures.items():
        if name not in figures:
            continue
        try:
            measure()
        except (ServiceError, TimeoutError, OSError) as error:  # the other figures still run
            result.failed[name] = str(error)
        result.load_average[name] = os.getloadavg()[0]
    result.profiles = bench.profiles
    return result


def as_dict(result: PipelineBenchResult) -> dict[str, object]:
    """The result as JSON-ready values (a figure not measured, NaN, is null)."""
    figures = asdict(result)
    if result.capacity is not None:
        figures["capacity"]["cells"] = [
            {**asdict(cell), "with_outputs_s": cell.with_outputs_s, "vs_floor": cell.vs_floor}
            for cell in result.capacity.cells]
    cleaned = _without_nan(figures)
    assert isinstance(cleaned, dict)
    return cleaned


def _without_nan(value: object) -> object:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: _without_nan(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_without_nan(item) for item in value]
    return value
