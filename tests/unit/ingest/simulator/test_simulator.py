"""The market simulator: reproducible, schema-valid, and with the structure it claims.

The structure (sectors, news events, weekends, strategy heat profiles) is
checked the way a user would see it: from the emitted prices, and through the
heat engine, not from the simulator's internals.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

from heatmap.engine.engine import HeatEngine
from heatmap.engine.params import EngineParams
from heatmap.ingest.simulator import MarketSimulator, SimulatorConfig
from heatmap.schema import Account, Position, Price, datetime_to_ms, decode, encode

HOUR_S = 3600.0


@pytest.fixture(scope="module")
def simulator() -> MarketSimulator:
    return MarketSimulator(SimulatorConfig())


@pytest.fixture(scope="module")
def hour(simulator: MarketSimulator) -> list[Price | Position | Account]:
    """One simulated hour with the default configuration (one news event, 30-40 min)."""
    return list(simulator.events(HOUR_S))


def _prices_frame(events) -> pd.DataFrame:
    """Observed prices as a (time x symbol) table, one row per distinct timestamp."""
    rows = [(e.ts, e.symbol, e.price) for e in events if isinstance(e, Price)]
    long = pd.DataFrame(rows, columns=["ts", "symbol", "price"])
    return long.pivot_table(index="ts", columns="symbol", values="price", aggfunc="last")


def _closes(events, rule: str) -> pd.DataFrame:
    """Closes per ``rule`` bar: the last observed price in the bar, carried forward."""
    return _prices_frame(events).resample(rule, label="right", closed="right").last().ffill()


def _mean_offdiagonal(corr: np.ndarray) -> float:
    k = corr.shape[0]
    return float(corr[~np.eye(k, dtype=bool)].mean())


def _adjusted_rand_index(labels_a, labels_b) -> float:
    """Adjusted Rand index from the contingency table (pair counting), as in sklearn."""
    a_values, a = np.unique(np.asarray(labels_a), return_inverse=True)
    b_values, b = np.unique(np.asarray(labels_b), return_inverse=True)
    table = np.zeros((a_values.size, b_values.size))
    np.add.at(table, (a, b), 1.0)

    def pairs(counts: np.ndarray) -> float:
        return float((counts * (counts - 1) / 2.0).sum())

    index = pairs(table)
    rows, cols, total = pairs(table.sum(axis=1)), pairs(table.sum(axis=0)), pairs(
        table.sum(keepdims=True))
    expected = rows * cols / total
    maximum = (rows + cols) / 2.0
    return 1.0 if maximum == expected else (index - expected) / (maximum - expected)


# -- contract ----------------------------------------------------------------------------------


def test_same_seed_gives_byte_identical_streams_and_other_seeds_differ() -> None:
    def stream(seed: int, duration_s: float) -> list[bytes]:
        return [encode(e) for e in MarketSimulator(SimulatorConfig(seed=seed)).events(duration_s)]

    first = stream(7, 300.0)
    assert first == stream(7, 300.0)
    assert first != stream(8, 300.0)
    # A shorter run is a prefix of a longer one: the stream never depends on its length.
    shorter = stream(7, 120.0)
    assert first[:len(shorter)] == shorter


def test_every_event_round_trips_through_the_schema(hour) -> None:
    for event in hour:
        assert decode(type(event), encode(event)) == event
        assert event.ts.utcoffset() == timedelta(0)
    prices = [e for e in hour if isinstance(e, Price)]
    assert all(e.price > 0 and 0 < e.bid < e.price < e.ask for e in prices)
    assert all(e.source == "simulator" for e in prices)


def test_time_order_and_opening_messages(hour, simulator: MarketSimulator) -> None:
    times = [datetime_to_ms(e.ts) for e in hour]
    assert times == sorted(times)
    assert times[-1] <= datetime_to_ms(simulator.start) + HOUR_S * 1000
    accounts = {a.account for a in simulator.accounts}
    opening = hour[:len(accounts)]
    assert all(isinstance(e, Account) for e in opening)
    assert {e.account for e in opening} == accounts
    first_price = next(i for i, e in enumerate(hour) if isinstance(e, Price))
    assert all(isinstance(e, Position) for e in hour[len(accounts):first_price])
    assert {e.symbol for e in hour if isinstance(e, Price) and e.ts == simulator.start} == set(
        simulator.symbols)


def test_price_levels_are_realistic(simulator: MarketSimulator) -> None:
    assert simulator.symbols[:2] == ("BTCUSDT", "ETHUSDT")
    assert "SOLUSDT" in simulator.symbols
    assert 20_000 < simulator.initial_prices["BTCUSDT"] < 200_000
    assert 1_000 < simulator.initial_prices["ETHUSDT"] < 10_000
    assert min(simulator.initial_prices.values()) < 1.0
    assert simulator.cluster_names[:4] == ("majors", "layer1", "defi", "memes")


def test_desks_strategies_and_leverage(hour, simulator: MarketSimulator) -> None:
    desks = {e.account: e.desk for e in hour if isinstance(e, Account)}
    assert len(desks) == 6 and len(set(desks.values())) == 2
    # Each desk: a spread book at 2.5x, an altcoin book at 5x, a scalper at 10x.
    profiles = [(a.desk, a.strategy, a.leverage) for a in simulator.accounts]
    assert profiles == [(desk, strategy, leverage) for desk in ("desk-a", "desk-b")
                        for strategy, leverage in (("spread", 2.5), ("alts", 5.0),
                                                   ("scalp", 10.0))]
    target = {a.account: a.leverage for a in simulator.accounts}
    strategies = {(e.account, e.strategy) for e in hour if isinstance(e, Position)}
    assert strategies == {(a.account, a.strategy) for a in simulator.accounts}

    # Gross notional over equity at every equity update, from the stream alone.
    last_price: dict[str, float] = {}
    qty: dict[str, dict[str, float]] = defaultdict(dict)
    ratios: dict[str, list[float]] = defaultdict(list)
    for event in hour:
        if isinstance(event, Price):
            last_price[event.symbol] = event.price
        elif isinstance(event, Position):
            assert 0.0 <= event.conviction <= 1.0
            qty[event.account][event.symbol] = event.qty
        elif last_price:
            gross = sum(abs(q) * last_price[s] for s, q in qty[event.account].items())
            ratios[event.account].append(gross / event.equity)
    for account, values in ratios.items():
        assert np.median(values) == pytest.approx(target[account], rel=0.05)
        assert target[account] * 0.75 < min(values) <= max(values) < target[account] * 1.25


def test_directional_books_sometimes_hedge_in_the_same_cluster(
        hour, simulator: MarketSimulator) -> None:
    """A scalper holds one direction per sector and an altcoin book is long, so a short
    next to a long of the same sector is a hedge."""
    held: dict[str, dict[str, float]] = defaultdict(dict)
    hedged = set()
    for event in hour:
        if isinstance(event, Position):
            held[event.account][event.symbol] = event.qty
            book = held[event.account]
            clusters_long = {simulator.cluster_of[s] for s, q in book.items() if q > 0}
            if any(q < 0 and simulator.cluster_of[s] in clusters_long for s, q in book.items()):
                hedged.add(event.account)
    assert {a.account for a in simulator.accounts if a.strategy != "spread"} & hedged


def test_equity_is_marked_to_market(hour, simulator: MarketSimulator) -> None:
    """Equity = initial equity + sum of qty x price change, replayed from the stream alone.

    ``alts`` and ``scalp`` books match to the cent; ``spread`` books earn a carry on top,
    which is small and never negative.
    """
    initial = simulator.config.initial_equity
    last_price: dict[str, float] = {}
    qty: dict[str, dict[str, float]] = defaultdict(dict)
    pnl: dict[str, float] = defaultdict(float)
    strategy = {a.account: a.strategy for a in simulator.accounts}
    for event in hour:
        if isinstance(event, Price):
            previous = last_price.get(event.symbol, event.price)
            for account, book in qty.items():
                pnl[account] += book.get(event.symbol, 0.0) * (event.price - previous)
            last_price[event.symbol] = event.price
        elif isinstance(event, Position):
            qty[event.account][event.symbol] = event.qty
        elif strategy[event.account] != "spread":
            assert event.equity == pytest.approx(initial + pnl[event.account], abs=0.02)
        else:
            carry = event.equity - (initial + pnl[event.account])
            assert -0.02 <= carry < 0.01 * initial


def test_ten_minutes_of_market_are_busy() -> None:
    """Ten simulated minutes carry well over 15,000 events (its speed: `heat-bench ingest`)."""
    assert sum(1 for _ in MarketSimulator().events(600.0)) > 15_000


# -- market structure --------------------------------------------------------------------------


def test_clusters_are_recovered_from_minute_returns(hour, simulator: MarketSimulator) -> None:
    closes = _closes(hour, "1min")
    returns = np.log(closes).diff().dropna()
    corr = returns.corr().to_numpy()
    distance = np.sqrt(np.clip((1.0 - corr) / 2.0, 0.0, 1.0))
    np.fill_diagonal(distance, 0.0)
    tree = linkage(squareform(distance, checks=False), method="average")
    recovered = fcluster(tree, t=simulator.config.clusters, criterion="maxclust")
    truth = [simulator.cluster_of[s] for s in closes.columns]
    assert _adjusted_rand_index([0, 0, 1, 1, 2, 2], [5, 5, 3, 3, 4, 4]) == 1.0
    assert _adjusted_rand_index([0, 0, 1, 1], [0, 1, 0, 1]) < 0.0
    assert _adjusted_rand_index(recovered, truth) > 0.8


def test_news_event_raises_average_correlation(hour, simulator: MarketSimulator) -> None:
    closes = _closes(hour, "10s")
    returns = np.log(closes).diff().iloc[1:]
    # A return belongs to the regime of the whole interval it spans.
    inside = np.array([simulator.news_active(ts) and simulator.news_active(ts - timedelta(
        seconds=10)) for ts in returns.index])
    assert 30 < inside.sum() < len(inside) - 30
    rho_news = _mean_offdiagonal(returns[inside].corr().to_numpy())
    rho_calm = _mean_offdiagonal(returns[~inside].corr().to_numpy())
    assert rho_news > rho_calm + 0.2
    assert rho_news > 0.8
    vol_ratio = returns[inside].std().mean() / returns[~inside].std().mean()
    assert 2.0 < vol_ratio < 4.0


def test_weekend_makes_prices_stale() -> None:
    config = SimulatorConfig(weekend_every_s=1200.0, weekend_offset_s=600.0,
                             weekend_duration_s=600.0)
    simulator = MarketSimulator(config)
    start = simulator.start
    assert not simulator.weekend_active(start + timedelta(seconds=599))
    assert simulator.weekend_active(start + timedelta(seconds=600))
    updates: dict[str, list[datetime]] = defaultdict(list)
    for event in simulator.events(1200.0):
        if isinstance(event, Price):
            updates[event.symbol].append(event.ts)
    weekend_start = start + timedelta(seconds=600)
    weekday_gap_s, weekend_gap_s = [], []
    for times in updates.values():
        for before, after in itertools.pairwise(times):
            gap_s = (after - before).total_seconds()
            if after < weekend_start:
                weekday_gap_s.append(gap_s)
            elif simulator.weekend_active(after):
                weekend_gap_s.append(gap_s)
    # Outside weekends no price is older than the forced refresh (1.5 s, rounded to ticks).
    assert max(weekday_gap_s) <= config.max_quiet_ms / 1000 + config.tick_interval_ms / 1000
    assert np.median(weekend_gap_s) > 20.0
    assert max(weekend_gap_s) > 120.0


def test_no_news_and_no_weekend_when_disabled() -> None:
    simulator = MarketSimulator(SimulatorConfig(news_event_every_s=None, weekend_mode=False))
    for hours in (0.5, 24 * 2.5):
        ts = simulator.start + timedelta(hours=hours)
        assert not simulator.news_active(ts)
        assert not simulator.weekend_active(ts)
    # By default news comes every hour for ten minutes, weekends on Saturday and Sunday.
    default = MarketSimulator()
    assert default.start.weekday() == 3  # 2026-01-01 is a Thursday
    assert default.news_active(default.start + timedelta(minutes=35))
    assert not default.news_active(default.start + timedelta(minutes=45))
    assert not default.weekend_active(datetime.fromisoformat("2026-01-02T23:59:59+00:00"))
    assert default.weekend_active(datetime.fromisoformat("2026-01-03T00:00:00+00:00"))
    assert default.weekend_active(datetime.fromisoformat("2026-01-04T23:59:59+00:00"))
    assert not default.weekend_active(datetime.fromisoformat("2026-01-05T00:00:00+00:00"))
    assert default.weekend_active(datetime.fromisoformat("2026-01-10T12:00:00+00:00"))


def test_more_symbols_and_clusters_get_generated_names() -> None:
    simulator = MarketSimulator(SimulatorConfig(symbols=60, clusters=6))
    assert len(set(simulator.symbols)) == 60
    assert sorted(set(simulator.cluster_of.values())) == list(range(6))
    assert all(s.endswith("USDT") for s in simulator.symbols)
    events = list(simulator.events(30.0))
    assert all(e.price > 0 for e in events if isinstance(e, Price))


def test_config_rejects_naive_start() -> None:
    with pytest.raises(ValueError, match="timezone"):
        SimulatorConfig(start=datetime(2026, 1, 1))


# -- heat profiles -----------------------------------------------------------------------------


def _engine_frames(events) -> list:
    """Account and desk frames of the heat engine over ``events`` (1-minute bars, 1h EWMA)."""
    engine = HeatEngine(EngineParams(bar_interval_s=60, timeframes={"1h": 3600},
                                     min_periods=5))
    frames = []
    for event in events:
        ts_ms = datetime_to_ms(event.ts)
        if isinstance(event, Price):
            frames += engine.on_price(event.symbol, ts_ms, event.price)
        elif isinstance(event, Position):
            frames += engine.on_position(event.account, event.symbol, ts_ms, event.qty,
                                         event.strategy, event.conviction)
        else:
            frames += engine.on_account(event.account, ts_ms, event.equity, event.desk,
                                        event.maintenance_rate)
    return frames + engine.finish()


def test_alts_concentrate_heat_in_news_spread_stays_cool_scalp_even(
        hour, simulator: MarketSimulator) -> None:
    """Through the engine: during news ``alts`` books put their gross in one cluster; the
    ``spread`` pairs hedge each other; the ``scalp`` books spread theirs over the sectors."""
    frames = _engine_frames(hour)
    strategy = {a.account: a.strategy for a in simulator.accounts}
    # Concentration per unit of gross is 1 when all gross sits in one perfectly correlated
    # cluster, so books of different leverage compare.
    concentration: dict[tuple[str, bool], list[float]] = defaultdict(list)
    # Share of gross in the largest true sector (how evenly a book is spread), and which.
    sector_share: dict[tuple[str, bool], list[float]] = defaultdict(list)
    top_sector: dict[tuple[str, bool], set[int]] = defaultdict(set)
    # The largest cluster's concentration, as a share of equity.
    largest: dict[str, list[float]] = defaultdict(list)
    for frame in frames:
        if frame.account is None or frame.trigger != "bar" or frame.warming_up:
            continue
        ts = datetime.fromisoformat(frame.ts)
        # Every account rebalances every 30 s: a minute into the news it has reacted.
        news = simulator.news_active(ts) and simulator.news_active(ts - timedelta(seconds=60))
        calm = not any(simulator.news_active(ts - timedelta(seconds=s)) for s in (0, 60, 120))
        if not (news or calm):
            continue
        key = (frame.account, news)
        largest[frame.account].append(frame.max_cluster_concentration)
        concentration[key].append(frame.max_cluster_concentration / frame.gross)
        gross_by_sector: dict[int, float] = defaultdict(float)
        for row in frame.positions:
            gross_by_sector[simulator.cluster_of[row.symbol]] += abs(row.share)
        top = max(gross_by_sector, key=gross_by_sector.__getitem__)
        sector_share[key].append(gross_by_sector[top] / frame.gross)
        top_sector[key].add(top)
    mean = {key: float(np.mean(values)) for key, values in concentration.items()}
    books = {name: [a for a, s in strategy.items() if s == name]
             for name in ("spread", "alts", "scalp")}
    alts, spread, scalp = books["alts"], books["spread"], books["scalp"]

    # News: alts piles into one altcoin sector; its heat is one hot cluster.
    assert all(min(sector_share[(a, True)]) > 0.99 for a in alts)
    majors = simulator.cluster_names.index("majors")
    assert all(len(top_sector[(a, True)]) == 1 and majors not in top_sector[(a, True)]
               for a in alts)
    assert min(mean[(a, True)] for a in alts) > 0.85
    assert min(mean[(a, True)] for a in alts) > max(mean[(a, True)] for a in scalp) + 0.2
    # Outside news alts holds every altcoin sector, about half of it in its home sector.
    assert all(0.4 < np.median(sector_share[(a, False)]) < 0.75 for a in alts)
    assert all(majors not in top_sector[(a, False)] for a in alts)
    # The spread pairs hedge each other, in news and out: concentration is low.
    assert all(mean[(a, news)] < 0.3 for a in spread for news in (False, True))
    # The spread book's largest cluster sits near SPEC's 0.25 line; the others' far above.
    assert all(np.median(largest[a]) < 0.4 for a in spread)
    assert all(np.median(largest[a]) > 1.5 for a in alts + scalp)
    # Scalp is spread evenly over the sectors, in news and out.
    assert all(max(sector_share[(a, news)]) < 0.5 for a in scalp for news in (False, True))
