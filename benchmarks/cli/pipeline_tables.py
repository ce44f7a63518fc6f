"""The tables ``heat-bench pipeline`` prints, one per figure measured."""

from __future__ import annotations

import math
from collections.abc import Mapping

from rich.console import Console
from rich.table import Table

from benchmarks.cli.results import results_table
from benchmarks.load import LatencySummary
from benchmarks.pipeline import (
    CapacityFigures,
    FailoverFigures,
    LatencyFigures,
    PipelineBenchResult,
    ThroughputFigures,
)


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:,.0f} ms"


def _s(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:,.1f} s"


def _percentiles(summary: LatencySummary | None) -> str:
    if summary is None or not summary.count:
        return "-"
    return f"{_ms(summary.p50_ms)} / {_ms(summary.p99_ms)} (n={summary.count:,})"


def _throughput(console: Console, figures: ThroughputFigures, shape: str,
                targets: Mapping[str, float]) -> None:
    table = results_table(f"throughput: a backlog of {figures.dense_ticks:,} ticks at "
                   f"{figures.backlog_ticks_per_s:,.0f}/s event time ({figures.bar_closes} "
                   f"bar closes), {shape}")
    table.add_row("ticks/s applied by heat process (history excluded)",
                  f"{figures.process_ticks_per_s:,.0f}", f">= {targets['ticks_per_s']:,.0f}")
    runs = " and ".join(f"{rate:,.0f}" for rate in figures.baseline_runs_records_per_s)
    table.add_row(f"records/s, baseline: bare aiokafka read + msgspec decode + batched "
                  f"re-produce (mean of {runs}, before and after)",
                  f"{figures.baseline_records_per_s:,.0f}", "")
    table.add_row("heat process vs baseline (same run)", f"{figures.process_vs_baseline:.2f}x",
                  f">= {targets['vs_baseline']:.1f}x")
    table.add_row("per CPU second: heat process ticks / baseline records",
                  f"{figures.process_ticks_per_cpu_s:,.0f} / "
                  f"{figures.baseline_records_per_cpu_s:,.0f}", "")
    table.add_row("heat process vs baseline per CPU second",
                  f"{figures.process_vs_baseline_cpu:.2f}x", "")
    table.add_row("heat process while applying them: cores used / share of the time in "
                  "engine steps / in epoch commits",
                  f"{figures.process_cores:.2f} / {figures.process_step_share:.0%} / "
                  f"{figures.process_commit_share:.0%}", "")
    table.add_row("ticks/s, engine host alone (no Kafka; same records, epochs encoded)",
                  f"{figures.host_ticks_per_s:,.0f}", "")
    table.add_row("heat process vs engine host alone", f"{figures.process_vs_host:.2f}x", "")
    table.add_row("frames committed by heat process", f"{figures.process_frames:,}", "")
    stored = (f"{figures.sink_frames_in_db:,} after {_s(figures.sink_all_frames_s)}"
              if figures.sink_all_frames_s is not None
              else f"only {figures.sink_frames_in_db:,}")
    table.add_row("frames stored by heat sink (from its start, reading the backlog too)",
                  stored, "all")
    table.add_row("records/s produced for the backlog (kafka-python)",
                  f"{figures.produce_records_per_s:,.0f}", "")
    console.print(table)


def _latency(console: Console, figures: LatencyFigures, shape: str,
             targets: Mapping[str, float]) -> None:
    table = results_table(f"latency at {figures.ticks_per_s:,.0f} ticks/s and "
                   f"{figures.positions_per_s:,.0f} position changes/s, {shape}, "
                   f"{figures.bar_closes} bar closes in {figures.live_s:,.0f} s; p50 / p99 "
                   "from the append time of the record that released each frame")
    table.add_row("baseline: bare transactional relay, append -> read_committed",
                  _percentiles(figures.baseline), "")
    table.add_row("frames on Kafka (read_committed)", _percentiles(figures.kafka),
                  f"p99 <= {targets['kafka_p99_ms']:,.0f} ms")
    table.add_row("  bar-close frames only", _percentiles(figures.kafka_bar), "")
    table.add_row("frames in the database (heat sink)", _percentiles(figures.database),
                  f"p99 <= {targets['database_p99_ms']:,.0f} ms")
    table.add_row("  bar-close frames only", _percentiles(figures.database_bar), "")
    table.add_row("  sink's share (database minus Kafka), p99", _ms(figures.sink_p99_ms), "")
    table.add_row("processor's histogram (append -> commit), p50 / p99",
                  f"{_ms(figures.histogram_p50_ms)} / {_ms(figures.histogram_p99_ms)}", "")
    table.add_row("inside heat process: engine step / epoch commit, p50 / p99",
                  f"{_ms(figures.step_p50_ms)} / {_ms(figures.step_p99_ms)}; "
                  f"{_ms(figures.commit_p50_ms)} / {_ms(figures.commit_p99_ms)}", "")
    table.add_row("p99 vs baseline: on Kafka / in the database",
                  f"{figures.kafka_p99_vs_baseline:.1f}x / "
                  f"{figures.database_p99_vs_baseline:.1f}x", "")
    table.add_row("processor input lag, records: max / at the end",
                  f"{figures.input_lag_max_records:,.0f} / "
                  f"{figures.input_lag_end_records:,.0f}", "flat")
    if figures.cpu_cores:
        cores = figures.cpu_cores
        mine = ", ".join(f"{name} {value:.2f}" for name, value in cores.items()
                         if name not in ("machine", "cores"))
        table.add_row(f"cores used while live: {mine}",
                      f"machine {cores.get('machine', math.nan):.2f} of "
                      f"{cores.get('cores', math.nan):.0f}", "")
    console.print(table)


def _failover(console: Console, figures: FailoverFigures) -> None:
    table = results_table(f"failover: kill -9 of the active worker at "
                   f"{figures.ticks_per_s:,.0f} ticks/s")
    table.add_row("baseline: a bare consumer-group member takes over (same session, 6 s)",
                  _s(figures.baseline_group_takeover_s), "")
    table.add_row("kill -9 -> standby live", _s(figures.standby_live_s), "")
    table.add_row("  of which recovery (producer start, state read, replay)",
                  _s(figures.recovery_s), "")
    table.add_row("kill -9 -> frames committed by the new owner", _s(figures.frames_again_s), "")
    table.add_row("kill -9 -> a frame within 250 ms of its input again",
                  _s(figures.timely_again_s), "")
    table.add_row("standby live vs baseline", f"{figures.standby_live_vs_baseline:.2f}x", "")
    console.print(table)


def _capacity(console: Console, figures: CapacityFigures) -> None:
    table = Table(title=f"capacity: one engine's bar close at a 1-minute bar (engine alone; "
                        f"budget {figures.budget_s:g} s = 10 % of the bar)")
    for column in ("symbols", "accounts", "frames", "bar close", "+ outputs encoded",
                   "numpy floor", "vs floor"):
        table.add_column(column, justify="right")
    for cell in figures.cells:
        table.add_row(f"{cell.symbols:,}", f"{cell.accounts:,}", f"{cell.frames:,}",
                      f"{cell.bar_close_s:,.3f} s", f"{cell.with_outputs_s:,.3f} s",
                      f"{cell.floor_s:,.4f} s", f"{cell.vs_floor:,.0f}x")
    console.print(table)
    bounds = ", ".join(
        f"{symbols} symbols: {accounts:,}" + (
            f" ({figures.max_accounts_with_outputs.get(symbols) or 0:,} with outputs)")
        for symbols, accounts in figures.max_accounts.items() if accounts is not None)
    if bounds:
        console.print(f"most accounts (20 positions each) within {figures.budget_s:g} s, "
                      f"from a line through the measured counts: {bounds}")
    if figures.shared:
        _shared(console, figures)


def _shared(console: Console, figures: CapacityFigures) -> None:
    table = Table(title="capacity: one engine against engines sharing the desks (a process "
                        "each, same cores; wall time to the last engine's frames)")
    for column in ("engines", "symbols", "accounts", "desks", "frames", "bar close"):
        table.add_column(column, justify="right")
    for cell in figures.shared:
        table.add_row(str(cell.engines), f"{cell.symbols:,}", f"{cell.accounts:,}",
                      str(cell.desks), f"{cell.frames:,}", f"{cell.bar_close_s:,.3f} s")
    console.print(table)
    one, two = (figures.max_accounts_by_engines.get(count) for count in (1, 2))
    if one and two:
        console.print(f"most accounts within {figures.budget_s:g} s: one engine {one:,}, two "
                      f"engines {two:,} ({two / one:.2f}x)")


def _profiles(console: Console, result: PipelineBenchResult) -> None:
    for name, rows in result.profiles.items():
        table = Table(title=f"profile: {name}")
        table.add_column("function")
        table.add_column("share", justify="right")
        for function, share in rows:
            table.add_row(function, f"{share:.1%}")
        console.print(table)


def print_results(console: Console, result: PipelineBenchResult,
                  targets: Mapping[str, float]) -> None:
    if result.throughput is not None:
        _throughput(console, result.throughput, result.shape, targets)
    if result.latency is not None:
        _latency(console, result.latency, result.shape, targets)
    if result.latency_large is not None:
        _latency(console, result.latency_large, result.large_shape, targets)
    if result.failover is not None:
        _failover(console, result.failover)
    if result.capacity is not None:
        _capacity(console, result.capacity)
    _profiles(console, result)
    if result.load_average:
        console.print("load average (1 min, 2 cores) after each figure: " + ", ".join(
            f"{name} {load:.1f}" for name, load in result.load_average.items()))
    for note in result.notes:
        console.print(f"note: {note}")
