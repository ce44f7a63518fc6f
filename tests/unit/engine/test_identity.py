"""Cluster names carry over frames while the clusters' exposure does."""

from __future__ import annotations

import msgspec
import numpy as np

from heatmap.engine.alerts import AlertMonitor
from heatmap.engine.checkpoint import export_state, restore_state
from heatmap.engine.engine import HeatEngine
from heatmap.engine.identity import KnownCluster, stable_names
from heatmap.engine.params import EngineParams
from heatmap.schema import Frame, encode


def _names(groups: list[list[tuple[str, float]]], previous: list[KnownCluster]) -> list[str]:
    """Names of ``groups`` (each a list of (symbol, share)), labelled as the engine labels
    them (in order of first appearance over sorted symbols)."""
    label_of = {symbol: number for number, group in enumerate(groups) for symbol, _ in group}
    share_of = {symbol: share for group in groups for symbol, share in group}
    symbols = sorted(share_of)
    order: dict[int, int] = {}
    labels = np.array([order.setdefault(label_of[s], len(order)) for s in symbols])
    names = stable_names(labels, symbols, np.array([share_of[s] for s in symbols]), previous)
    by_group = {number: names[label] for number, label in order.items()}
    return [by_group[number] for number in range(len(groups))]


def test_a_new_cluster_is_named_after_its_largest_member() -> None:
    assert _names([[("ADA", 0.2), ("XLM", -0.3)], [("ETH", 0.1), ("ETC", 0.1)]], []) == [
        "XLM", "ETC"]  # |share| decides; ties alphabetical


def test_the_same_coins_re_forming_keep_the_name_when_the_largest_changes() -> None:
    previous = [KnownCluster("ADA", {"ADA": 0.30, "XLM": 0.28}), KnownCluster("ETH", {"ETH": 0.1})]
    assert _names([[("ADA", 0.27), ("XLM", 0.31)], [("ETH", 0.12)]], previous) == ["ADA", "ETH"]


def test_a_split_keeps_the_name_on_the_larger_part() -> None:
    previous = [KnownCluster("A", {"A": 0.30, "B": 0.25, "C": 0.20, "D": 0.15})]
    assert _names([[("C", 0.20), ("D", 0.15)], [("A", 0.30), ("B", 0.25)]], previous) == [
        "C", "A"]
    # The larger part keeps it even when another member has grown largest.
    assert _names([[("A", 0.30), ("B", 0.35)], [("C", 0.2)], [("D", 0.15)]], previous) == [
        "A", "C", "D"]


def test_a_merge_keeps_the_name_of_the_larger_cluster() -> None:
    previous = [KnownCluster("A", {"A": 0.3, "B": 0.2}), KnownCluster("C", {"C": 0.4})]
    assert _names([[("A", 0.3), ("B", 0.2), ("C", 0.4)]], previous) == ["A"]


def test_a_name_leaves_with_its_namesake_or_a_small_overlap() -> None:
    previous = [KnownCluster("A", {"A": 0.3, "B": 0.25, "C": 0.2})]
    # A left the cluster: the rest is named anew rather than after a coin it lacks.
    assert _names([[("B", 0.25), ("C", 0.2)], [("A", 0.3)]], previous) == ["B", "A"]
    # Less than half of the larger cluster carried over: a new cluster.
    assert _names([[("A", 0.1), ("E", 0.5), ("F", 0.4)]],
                  [KnownCluster("A", {"A": 0.1})]) == ["E"]


def test_names_do_not_depend_on_the_order_previous_clusters_come_in() -> None:
    previous = [KnownCluster("A", {"A": 0.3, "B": 0.3}), KnownCluster("B", {"C": 0.3, "B": 0.3})]
    groups = [[("A", 0.3), ("B", 0.3), ("C", 0.3)]]
    assert _names(groups, previous) == _names(groups, previous[::-1]) == ["A"]


# -- in the engine: names are state, kept across a checkpoint ----------------------------------

PARAMS = EngineParams(bar_interval_s=60, timeframes={"10m": 600, "1h": 3600}, min_periods=5)
T0 = 1_700_000_040_000  # a minute boundary


def _feed(engine: HeatEngine, monitor: AlertMonitor, bars: range) -> list[bytes]:
    """Bars of two coins moving together, BBB gaining on AAA 1 % a bar, so BBB's share
    overtakes AAA's around bar 5; every frame and alert as JSON."""
    rng = np.random.default_rng(7)
    common = np.cumsum(rng.normal(0, 0.01, 40))
    out = []

    def emit(frames: list[Frame]) -> None:
        for frame in frames:
            out.append(encode(frame))
            out.extend(encode(alert) for alert in monitor.observe(frame))

    for bar in bars:
        ts_ms = T0 + bar * 60_000 + 1_000
        emit(engine.on_price("AAA", ts_ms, float(100.0 * np.exp(common[bar]))))
        emit(engine.on_price("BBB", ts_ms + 1, float(95.0 * np.exp(common[bar] + 0.01 * bar))))
        if bar == 0:
            emit(engine.on_account("a1", ts_ms + 2, 1_000.0))
            emit(engine.on_position("a1", "AAA", ts_ms + 3, 2.0))
            emit(engine.on_position("a1", "BBB", ts_ms + 4, 2.0))
    return out


def _start() -> tuple[HeatEngine, AlertMonitor]:
    return HeatEngine(PARAMS), AlertMonitor()


def test_the_engine_keeps_a_clusters_name_across_bars_and_a_checkpoint() -> None:
    engine, monitor = _start()
    first = _feed(engine, monitor, range(12))
    blob = export_state(engine, monitor)
    rest = _feed(engine, monitor, range(12, 25))
    restored, restored_monitor = restore_state(blob, PARAMS)
    assert _feed(restored, restored_monitor, range(12, 25)) == rest

    frame = engine.frames_for(("a1", None), T0 + 25 * 60_000, "bar")[0]
    shares = {row.symbol: row.share for row in frame.positions}
    assert shares["BBB"] > shares["AAA"]
    assert [(c.cluster, c.members) for c in frame.clusters] == [("AAA", ["AAA", "BBB"])]
    # Born while AAA was largest, the joint cluster never changed its name.
    frames = [msgspec.json.decode(line, type=Frame) for line in first + rest
              if line.startswith(b'{"ts"') and b'"positions"' in line]
    joint = {c.cluster for f in frames for c in f.clusters if len(c.members) == 2}
    assert joint == {"AAA"}
