"""Every book of a recording, under each leverage and rule, over one heat engine's market.

Each (book, leverage, rule) is a scenario. One :class:`HeatEngine` takes every
price, closes the bars and keeps the EWMA correlations and volatilities, once
for all scenarios; at every bar close (its ``on_bar_close`` hook) each
scenario's positions are marked to market (:mod:`heatmap.compare.equity`) and
its frame of the heat timeframe is made by the engine's own frame math
(:func:`heatmap.engine.heat.compute_frame`) from the book as it stands, against
the equity it would have had. Only bar frames of the heat timeframe are made
(the report reads nothing else), and without the regime break, which needs a
second timeframe's correlations and no report column uses.

Books are accounts (desks are not compared). A scenario starts at its book's
first position; its starting equity is the account's recorded equity then
(``asis``; the gross notional when it reported none) or the gross notional at
that first position divided by the leverage. Later recorded equity updates are
not used (the equity is simulated); recorded maintenance rates are. Positions
of several strategies are netted per symbol; a trade is made at the symbol's
last price. A liquidated scenario is flat from that bar on and trades no more.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from heatmap.compare import drawdowns
from heatmap.compare.equity import MarkToMarket, equity_for_leverage
from heatmap.compare.report import (
    ClusterLoss,
    CompareParams,
    CompareReport,
    Drawdown,
    HeatState,
    Liquidation,
    ScenarioResult,
)
from heatmap.compare.rule import ClusterCap, capped_fraction, scaled
from heatmap.engine.alerts import AlertMonitor, AlertThresholds
from heatmap.engine.clusters import cluster_labels, cluster_names
from heatmap.engine.engine import HeatEngine
from heatmap.engine.heat import BookSnapshot, compute_frame
from heatmap.engine.identity import ClusterIdentities
from heatmap.engine.params import EngineParams
from heatmap.schema import (
    Account,
    ClusterRow,
    Frame,
    Position,
    Price,
    datetime_to_ms,
    ms_to_rfc3339,
)

ASIS = None  # a leverage of None: the recorded equity


@dataclass(frozen=True)
class CompareSettings:
    """What to compare.

    Parameters
    ----------
    leverages : tuple of float or None
        Each a what-if (gross notional at the first position = L x equity);
        None for the recorded equity.
    rules : tuple of ClusterCap
        Each book also runs under each rule; it always runs without one.
    heat_timeframe : str or None
        The timeframe whose frames the report reads (and the rule uses);
        None for the longest of ``params.timeframes``.
    drawdowns : int
        How many of the worst drawdowns to report per scenario.
    heat_window_s : int
        How far before a drawdown's peak its heat state is looked for.
    on_frame : callable, optional
        Told of every scenario frame as it is made (book, leverage, rule, frame).
    """

    params: EngineParams
    leverages: tuple[float | None, ...] = (ASIS,)
    rules: tuple[ClusterCap, ...] = ()
    heat_timeframe: str | None = None
    thresholds: AlertThresholds = field(default_factory=AlertThresholds)
    alert_per_desk: Mapping[str, AlertThresholds] = field(default_factory=dict)
    drawdowns: int = 3
    heat_window_s: int = 3600
    # Told of every frame made: (book, leverage label, rule label, frame).
    on_frame: Callable[[str, str, str, Frame], None] | None = None

    @property
    def timeframe(self) -> str:
        return self.heat_timeframe or self.params.slow_timeframe


def leverage_label(leverage: float | None) -> str:
    return "asis" if leverage is None else f"{leverage:g}x"


def rule_label(rule: ClusterCap | None) -> str:
    return "none" if rule is None else rule.label


@dataclass
class _Bar:
    """One bar close of a scenario: equity and P&L at the close, and its heat frame."""

    ts_ms: int
    equity: float
    pnl: dict[str, float]
    max_cluster_concentration: float | None = None
    effective_bets: float | None = None
    clusters: list[ClusterRow] | None = None


@dataclass
class _Scenario:
    book: str
    leverage: float | None
    rule: ClusterCap | None
    account: str  # names the scenario in its frames
    mtm: MarkToMarket
    start_ms: int
    bars: list[_Bar] = field(default_factory=list)
    liquidation: Liquidation | None = None
    liquidation_ms: int | None = None
    near_misses: int = 0
    critical_bars: int = 0
    positions_scaled: int = 0
    # Subjects with a critical concentration alert firing on the heat timeframe.
    critical: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class ScenarioSeries:
    """A scenario's curves for pictures: bar times (epoch ms), equity, max concentration."""

    result: ScenarioResult
    ts_ms: np.ndarray
    equity: np.ndarray
    max_cluster_concentration: np.ndarray  # NaN where the book held nothing
    liquidation_ms: int | None


@dataclass(frozen=True)
class CompareOutcome:
    report: CompareReport
    series: list[ScenarioSeries]


class _Comparison:
    def __init__(self, settings: CompareSettings) -> None:
        self.settings = settings
        self.params = settings.params
        self.timeframe = settings.timeframe
        if self.timeframe not in self.params.timeframes:
            raise ValueError(f"the heat timeframe {self.timeframe} is not one of the "
                             f"timeframes {', '.join(self.params.timeframes)}")
        # The engine holds no book: it is the market (bars, correlations) for every scenario.
        self.engine = HeatEngine(self.params, on_bar_close=self._on_bar_close)
        self.market = self.engine.market
        self.echo = (self.params.frame_params(self.timeframe),
                     self.params.params_hash(self.timeframe))
        self.monitor = AlertMonitor(settings.thresholds, dict(settings.alert_per_desk))
        # Each scenario's cluster names carry over its bars, as the engine's do per book.
        self.identities = ClusterIdentities()
        self.scenarios: dict[str, list[_Scenario]] = {}  # by book
        # The recorded books: quantity per (symbol, strategy), and terms, per account.
        self.recorded: dict[str, dict[tuple[str, str], float]] = {}
        self.terms: dict[str, tuple[float, float | None]] = {}
        self.desks: dict[str, str | None] = {}
        self.batch: list[Position] = []
        self.batch_ms = 0

    # -- input ---------------------------------------------------------------------------------

    def apply(self, message: Price | Position | Account) -> None:
        ts_ms = datetime_to_ms(message.ts)
        if self.batch and ts_ms > self.batch_ms:
            self._flush_positions()
        if isinstance(message, Position):
            # Positions of one moment are applied together: a book's first moment sets
            # its leverage from everything it opened then.
            self.batch.append(message)
            self.batch_ms = ts_ms
            return
        self.engine.advance_to(ts_ms)
        if isinstance(message, Price):
            self.engine.on_price(message.symbol, ts_ms, message.price)
            return
        self.terms[message.account] = (message.equity, message.maintenance_rate)
        # A book alerts with its desk's thresholds (its latest desk, as the engine's).
        self.desks[message.account] = message.desk
        for scenario in self.scenarios.get(message.account, []):
            scenario.mtm.maintenance_rate = self._rate(message.account)

    def finish(self) -> None:
        if self.batch:
            self._flush_positions()
        self.engine.finish()

    def _rate(self, book: str) -> float:
        rate = self.terms.get(book, (0.0, None))[1]
        return self.params.default_maintenance_rate if rate is None else rate

    def _prices(self) -> dict[str, float]:
        return dict(zip(self.market.symbols, self.market.last_price.tolist(), strict=True))

    def _flush_positions(self) -> None:
        ts_ms, batch = self.batch_ms, self.batch
        self.batch = []
        self.engine.advance_to(ts_ms)  # bars closed before the trades are made
        prices = self._prices()
        changed: dict[str, list[str]] = {}
        for position in batch:
            book = self.recorded.setdefault(position.account, {})
            key = (position.symbol, position.strategy or "")
            if position.qty == 0.0:
                book.pop(key, None)
            else:
                book[key] = position.qty
            symbols = changed.setdefault(position.account, [])
            if position.symbol not in symbols:
                symbols.append(position.symbol)
        for account, symbols in changed.items():
            net = self._net(account)
            if account not in self.scenarios:
                if not self._start(account, net, prices, ts_ms):
                    continue
                symbols = sorted(net)
            for scenario in self.scenarios[account]:
                if scenario.liquidation is None:
                    for symbol in symbols:
                        self._trade(scenario, symbol, net.get(symbol, 0.0), prices)

    def _net(self, account: str) -> dict[str, float]:
        net: dict[str, float] = {}
        for (symbol, _), qty in self.recorded[account].items():
            net[symbol] = net.get(symbol, 0.0) + qty
        return {symbol: qty for symbol, qty in net.items()
                if abs(qty) >= self.params.zero_tol}

    def _start(self, book: str, net: dict[str, float], prices: dict[str, float],
               ts_ms: int) -> bool:
        """Create the book's scenarios at its first priced position; False if not yet."""
        gross = sum(abs(qty) * prices[s] for s, qty in net.items()
                    if not math.isnan(prices.get(s, math.nan)))
        if not gross > 0.0:
            return False
        recorded_equity = self.terms[book][0] if book in self.terms else gross
        scenarios = []
        for leverage in self.settings.leverages:
            equity_0 = (recorded_equity if leverage is None
                        else equity_for_leverage(gross, leverage))
            for rule in (None, *self.settings.rules):
                account = f"{book}\t{leverage_label(leverage)}\t{rule_label(rule)}"
                scenarios.append(_Scenario(book, leverage, rule, account,
                                           MarkToMarket(equity_0, self._rate(book)), ts_ms))
        self.scenarios[book] = scenarios
        return True

    def _trade(self, scenario: _Scenario, symbol: str, target: float,
               prices: dict[str, float]) -> None:
        mtm = scenario.mtm
        current = mtm.qty.get(symbol, 0.0)
        if target == current:
            return
        price = prices.get(symbol, math.nan)
        qty = target
        if scenario.rule is not None and not math.isnan(price):
            fraction = self._rule_fraction(scenario.rule, mtm, symbol, target, prices)
            if fraction < 1.0:
                scenario.positions_scaled += 1
                qty = scaled(current, target, fraction)
        mtm.trade(symbol, qty, price)

    def _rule_fraction(self, rule: ClusterCap, mtm: MarkToMarket, symbol: str, target: float,
                       prices: dict[str, float]) -> float:
        equity = mtm.equity(prices)
        if not equity > 0.0:
            return 0.0
        symbols = _priced(mtm.qty.keys() | {symbol}, prices)
        rho = self.market.correlation(self.timeframe, self._slots(symbols))
        shares = np.array([mtm.qty.get(s, 0.0) * prices[s] / equity for s in symbols])
        return capped_fraction(shares, symbols.index(symbol), target * prices[symbol] / equity,
                               rho, self.params.rho_min, rule.cap)

    def _slots(self, symbols: list[str]) -> np.ndarray:
        return np.array([self.market.slots[s] for s in symbols], dtype=np.int64)

    # -- bars and frames -----------------------------------------------------------------------

    def _on_bar_close(self, boundary_ms: int) -> None:
        prices = self._prices()
        for scenarios in self.scenarios.values():
            for scenario in scenarios:
                mtm = scenario.mtm
                mtm.book_unpriced(prices)
                if scenario.liquidation is None and mtm.is_liquidated(prices):
                    self._liquidate(scenario, boundary_ms, prices)
                pnl = mtm.pnl_by_symbol(prices)
                bar = _Bar(boundary_ms, mtm.equity_0 + sum(pnl.values()), pnl)
                scenario.bars.append(bar)
                if not mtm.holds() and scenario.liquidation is not None:
                    continue  # flat for good: nothing to frame
                frame = self._frame(scenario, bar, prices)
                if frame is not None:
                    self._observe(scenario, bar, frame)
                    if self.settings.on_frame is not None:
                        self.settings.on_frame(scenario.book, leverage_label(scenario.leverage),
                                               rule_label(scenario.rule), frame)

    def _frame(self, scenario: _Scenario, bar: _Bar, prices: dict[str, float]) -> Frame | None:
        """The scenario's bar frame of the heat timeframe, as the engine makes frames (one
        account, its strategies netted); None when it holds positions without equity."""
        mtm = scenario.mtm
        symbols = _priced(mtm.qty.keys(), prices)
        if symbols and not bar.equity > 0.0:
            return None
        slots = self._slots(symbols)
        qty = np.array([mtm.qty[s] for s in symbols])
        price = self.market.last_price[slots]
        book = BookSnapshot(
            ts_ms=bar.ts_ms, trigger="bar", account=scenario.account,
            desk=self.desks.get(scenario.book),
            symbols=symbols, qty=qty, price=price,
            price_age_s=(bar.ts_ms - self.market.last_price_ms[slots]) / 1000.0,
            strategy=[None] * len(symbols), conviction=[None] * len(symbols),
            equity=bar.equity, margin=mtm.maintenance_rate * float(np.abs(qty * price).sum()))
        market, timeframe = self.market, self.timeframe
        frame = compute_frame(book, timeframe, market.correlation(timeframe, slots),
                              market.volatility(timeframe, slots),
                              market.warming(timeframe, slots), None, self.params, self.echo,
                              self.identities.previous((scenario.account, None, timeframe)))
        self.identities.remember(frame)
        return frame

    def _observe(self, scenario: _Scenario, bar: _Bar, frame: Frame) -> None:
        for alert in self.monitor.observe(frame):
            if alert.kind != "cluster_concentration":
                continue
            if alert.state == "firing" and alert.severity == "critical":
                scenario.critical.add(alert.subject)
            else:
                scenario.critical.discard(alert.subject)
        bar.max_cluster_concentration = frame.max_cluster_concentration
        bar.effective_bets = frame.effective_bets
        bar.clusters = frame.clusters
        if is_near_miss(frame, self.monitor.thresholds(frame.desk)):
            scenario.near_misses += 1
        if scenario.critical:
            scenario.critical_bars += 1

    def _liquidate(self, scenario: _Scenario, boundary_ms: int,
                   prices: dict[str, float]) -> None:
        mtm = scenario.mtm
        clusters = self._clusters_now(mtm, prices)
        losses = _losses(mtm.pnl_by_symbol(prices), {}, clusters)
        scenario.liquidation = Liquidation(
            ts=ms_to_rfc3339(boundary_ms), equity=mtm.equity(prices),
            maintenance_margin=mtm.maintenance_margin(prices), loss_by_cluster=losses,
            worst_cluster=losses[0].cluster if losses and losses[0].loss > 0.0 else None)
        scenario.liquidation_ms = boundary_ms
        scenario.critical.clear()  # a flat book has no cluster to alert on
        mtm.flatten(prices)

    def _clusters_now(self, mtm: MarkToMarket, prices: dict[str, float]) -> list[ClusterRow]:
        """The held symbols' clusters on the heat timeframe (members and names only)."""
        symbols = _priced(mtm.qty.keys(), prices)
        if not symbols:
            return []
        labels = cluster_labels(self.market.correlation(self.timeframe, self._slots(symbols)),
                                self.params.rho_min)
        notional = np.array([mtm.qty[s] * prices[s] for s in symbols])
        return [_cluster(name, [s for s, label in zip(symbols, labels.tolist(), strict=True)
                                if label == number])
                for number, name in enumerate(cluster_names(labels, symbols, notional))]

    # -- results -------------------------------------------------------------------------------

    def outcome(self) -> CompareOutcome:
        series = [self._result(scenario)
                  for book in sorted(self.scenarios) for scenario in self.scenarios[book]]
        params = CompareParams(
            bar_interval_s=self.params.bar_interval_s, timeframes=list(self.params.timeframes),
            heat_timeframe=self.timeframe,
            leverages=[leverage_label(x) for x in self.settings.leverages],
            rules=[rule.label for rule in self.settings.rules],
            params_hash=self.params.params_hash(self.timeframe),
            critical_concentration=self.settings.thresholds.cluster_concentration_critical,
            near_miss_sigma=self.settings.thresholds.liquidation_sigma_critical)
        return CompareOutcome(CompareReport(params=params,
                                            scenarios=[s.result for s in series]), series)

    def _result(self, scenario: _Scenario) -> ScenarioSeries:
        bars = scenario.bars
        equity = np.array([bar.equity for bar in bars])
        ts_ms = np.array([bar.ts_ms for bar in bars], dtype=np.int64)
        equity_0 = scenario.mtm.equity_0
        equity_end = float(equity[-1]) if bars else equity_0
        found = [self._drawdown(scenario, rank, episode) for rank, episode
                 in enumerate(drawdowns.worst(equity, self.settings.drawdowns), start=1)]
        bets = [bar.effective_bets for bar in bars if bar.effective_bets is not None]
        liquidation = scenario.liquidation
        worst_cluster = liquidation.worst_cluster if liquidation else None
        if liquidation is None and found and found[0].loss_by_cluster:
            top = found[0].loss_by_cluster[0]
            worst_cluster = top.cluster if top.loss > 0.0 else None
        result = ScenarioResult(
            book=scenario.book, leverage=leverage_label(scenario.leverage),
            rule=rule_label(scenario.rule), start_ts=ms_to_rfc3339(scenario.start_ms),
            end_ts=ms_to_rfc3339(int(ts_ms[-1]) if bars else scenario.start_ms),
            equity_start=equity_0, equity_end=equity_end,
            total_return=equity_end / equity_0 - 1.0 if equity_0 else 0.0,
            max_drawdown=found[0].depth if found else 0.0, liquidation=liquidation,
            near_misses=scenario.near_misses,
            critical_concentration_hours=(scenario.critical_bars * self.params.bar_interval_s
                                          / 3600.0),
            worst_cluster=worst_cluster,
            median_effective_bets=float(np.median(bets)) if bets else None,
            positions_scaled=scenario.positions_scaled, drawdowns=found)
        concentration = np.array([math.nan if bar.max_cluster_concentration is None
                                  else bar.max_cluster_concentration for bar in bars])
        return ScenarioSeries(result, ts_ms, equity, concentration, scenario.liquidation_ms)

    def _drawdown(self, scenario: _Scenario, rank: int,
                  episode: drawdowns.Episode) -> Drawdown:
        bars = scenario.bars
        peak, trough = bars[episode.peak], bars[episode.trough]
        return Drawdown(
            rank=rank, peak_ts=ms_to_rfc3339(peak.ts_ms), trough_ts=ms_to_rfc3339(trough.ts_ms),
            recovery_ts=(None if episode.recovery is None
                         else ms_to_rfc3339(bars[episode.recovery].ts_ms)),
            peak_equity=peak.equity, trough_equity=trough.equity, depth=episode.depth,
            loss_by_cluster=_losses(trough.pnl, peak.pnl, self._trough_clusters(scenario,
                                                                                trough)),
            heat_before=self._heat_before(bars, episode.peak))

    def _trough_clusters(self, scenario: _Scenario, trough: _Bar) -> list[ClusterRow]:
        liquidation = scenario.liquidation
        if liquidation is not None and trough.ts_ms == scenario.liquidation_ms:
            # The book was flat at that close: its clusters are those it was liquidated in.
            return [_cluster(c.cluster, c.members) for c in liquidation.loss_by_cluster]
        return trough.clusters or []

    def _heat_before(self, bars: list[_Bar], peak: int) -> HeatState | None:
        start_ms = bars[peak].ts_ms - self.settings.heat_window_s * 1000
        hottest: _Bar | None = None
        for bar in reversed(bars[:peak + 1]):
            if bar.ts_ms < start_ms:
                break
            if bar.max_cluster_concentration is not None and (
                    hottest is None or hottest.max_cluster_concentration is None
                    or bar.max_cluster_concentration > hottest.max_cluster_concentration):
                hottest = bar
        if hottest is None:
            return None
        top = hottest.clusters[0] if hottest.clusters else None
        return HeatState(ts=ms_to_rfc3339(hottest.ts_ms),
                         max_cluster_concentration=hottest.max_cluster_concentration,
                         effective_bets=hottest.effective_bets,
                         top_cluster=top.cluster if top else None,
                         members=list(top.members) if top else [])


def is_near_miss(frame: Frame, thresholds: AlertThresholds) -> bool:
    """Whether a scenario's frame is a near miss: a cluster closer to liquidation than the
    critical ``liquidation_proximity`` line of the book's desk (in 1-day sigmas)."""
    near = thresholds.liquidation_sigma_critical
    return any(c.liq_sigma is not None and c.liq_sigma < near for c in frame.clusters)


def _priced(symbols: Iterable[str], prices: dict[str, float]) -> list[str]:
    """The symbols that have a price, sorted."""
    return sorted(s for s in symbols if not math.isnan(prices.get(s, math.nan)))


def _cluster(name: str, members: list[str]) -> ClusterRow:
    """A cluster known by its name and members only."""
    return ClusterRow(cluster=name, members=members, gross=0.0, net=0.0, concentration=0.0,
                      stress_concentration=0.0, liq_distance=None, liq_sigma=None)


def _losses(pnl_after: dict[str, float], pnl_before: dict[str, float],
            clusters: list[ClusterRow]) -> list[ClusterLoss]:
    """Loss per cluster between two P&L snapshots; a symbol in no cluster (closed by then)
    counts as its own."""
    cluster_of = {member: row for row in clusters for member in row.members}
    losses: dict[str, ClusterLoss] = {}
    for symbol in sorted(pnl_after.keys() | pnl_before.keys()):
        loss = pnl_before.get(symbol, 0.0) - pnl_after.get(symbol, 0.0)
        row = cluster_of.get(symbol)
        name, members = (row.cluster, list(row.members)) if row else (symbol, [symbol])
        entry = losses.setdefault(name, ClusterLoss(cluster=name, members=members, loss=0.0))
        entry.loss += loss
    return sorted(losses.values(), key=lambda c: (-c.loss, c.cluster))


def compare(events: Iterable[Price | Position | Account],
            settings: CompareSettings) -> CompareOutcome:
    """Run the comparison over ``events`` (in time order, as :func:`merged_events` gives)."""
    comparison = _Comparison(settings)
    for message in events:
        comparison.apply(message)
    comparison.finish()
    return comparison.outcome()

