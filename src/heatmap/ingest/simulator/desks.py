"""The accounts' books and the three strategies that trade them (``spread``, ``alts``,
``scalp``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from heatmap.ingest.simulator.config import AccountSpec
from heatmap.ingest.simulator.universe import Universe

# Behaviour of the strategies, per rebalance (probabilities) or per position.
_SPREAD_ROTATE_PROBABILITY = 0.05
_ALTS_ROTATE_PROBABILITY = 0.02
# The alts book's home sector holds this share of its gross, the other altcoin sectors
# share the rest.
_ALTS_HOME_SHARE = 0.5
_SCALP_FLIP_PROBABILITY = 0.3
_SCALP_REPICK_PROBABILITY = 0.3
_HEDGE_RELEASE_PROBABILITY = 0.5
_HEDGE_RATIO_RANGE = (0.3, 0.6)
_QTY_SIGNIFICANT_DIGITS = 6


@dataclass
class Book:
    """The running state of one account.

    Arrays are per symbol (n,): signed quantity, average entry price, the
    prices equity was last marked at, and the conviction of each position.
    """

    spec: AccountSpec
    rng: np.random.Generator
    equity: float
    qty: np.ndarray
    entry: np.ndarray
    mark_price: np.ndarray
    conviction: np.ndarray
    mark_ms: int = 0
    next_rebalance_ms: int = 0
    carry_annual: float = 0.0
    # spread: one (long, short) pair per cluster
    pairs: list[tuple[int, int]] = field(default_factory=list)
    # alts: the sector most of its gross is in, and the one it piles into during news
    home_cluster: int = 0
    pile_cluster: int | None = None
    # alts: long picks per altcoin sector; scalp: direction (+1/-1) per cluster, picked
    # symbols per cluster, size tilt per symbol
    direction: np.ndarray = field(default_factory=lambda: np.empty(0))
    picks: list[np.ndarray] = field(default_factory=list)
    tilt: np.ndarray = field(default_factory=lambda: np.empty(0))
    # (hedge symbol, hedged symbol, hedge size as a fraction of the hedged long)
    hedge: tuple[int, int, float] | None = None


def _pick_pair(book: Book, members: np.ndarray) -> tuple[int, int]:
    long_i, short_i = book.rng.choice(members, size=2, replace=False).tolist()
    book.conviction[[long_i, short_i]] = book.rng.uniform(0.6, 0.9, size=2)
    return long_i, short_i


def _pick_swing(book: Book, members: np.ndarray) -> np.ndarray:
    count = int(book.rng.integers(1, min(2, members.size) + 1))
    picks = book.rng.choice(members, size=count, replace=False)
    book.tilt[picks] = book.rng.uniform(0.5, 1.5, size=count)
    # Swing traders are often unsure: conviction spans the whole range.
    book.conviction[picks] = book.rng.uniform(0.2, 1.0, size=count)
    return picks


def _pick_alts(book: Book, universe: Universe) -> None:
    """A home sector among the altcoin ones, and long picks in every altcoin sector."""
    book.home_cluster = int(book.rng.choice(universe.altcoin_clusters))
    book.tilt = np.zeros(len(universe.symbols))
    book.picks = [_pick_swing(book, universe.members[c]) for c in universe.altcoin_clusters]


def init_strategy(book: Book, universe: Universe) -> None:
    if book.spec.strategy == "spread":
        book.pairs = [_pick_pair(book, members) for members in universe.members]
    elif book.spec.strategy == "alts":
        _pick_alts(book, universe)
    else:
        book.direction = book.rng.choice([-1.0, 1.0], size=len(universe.members))
        book.tilt = np.zeros(len(universe.symbols))
        book.picks = [_pick_swing(book, members) for members in universe.members]


def _evolve_spread(book: Book, universe: Universe) -> None:
    """Keep the pairs; rarely rotate one."""
    if book.rng.random() < _SPREAD_ROTATE_PROBABILITY:
        c = int(book.rng.integers(len(universe.members)))
        book.pairs[c] = _pick_pair(book, universe.members[c])


def _evolve_alts(book: Book, universe: Universe, news: bool) -> None:
    """Pile into one altcoin cluster while news lasts; otherwise keep (rarely move) home."""
    if news and book.pile_cluster is None:
        book.pile_cluster = int(book.rng.choice(universe.altcoin_clusters))
        members = universe.members[book.pile_cluster]
        book.conviction[members] = book.rng.uniform(0.85, 1.0, size=members.size)
    elif not news and book.pile_cluster is not None:
        book.pile_cluster = None
        _pick_alts(book, universe)
    elif not news and book.rng.random() < _ALTS_ROTATE_PROBABILITY:
        _pick_alts(book, universe)


def _evolve_scalp(book: Book, universe: Universe) -> None:
    """Flip many sector views and re-pick many coins: a scalper turns its book over."""
    count = len(universe.members)
    book.direction[book.rng.random(count) < _SCALP_FLIP_PROBABILITY] *= -1.0
    for c in np.flatnonzero(book.rng.random(count) < _SCALP_REPICK_PROBABILITY).tolist():
        book.picks[c] = _pick_swing(book, universe.members[c])


def _base_weights(book: Book, universe: Universe) -> np.ndarray:
    """Unnormalised signed weights per symbol, shape (n,), before hedges."""
    weights = np.zeros(len(universe.symbols))
    if book.spec.strategy == "spread":
        for long_i, short_i in book.pairs:
            weights[long_i] += 1.0
            weights[short_i] -= 1.0
        return weights
    if book.spec.strategy == "alts":
        if book.pile_cluster is not None:
            # Chasing the move: long every coin of one sector, nothing else.
            weights[universe.members[book.pile_cluster]] = 1.0
            return weights
        sectors = universe.altcoin_clusters.tolist()
        others = max(len(sectors) - 1, 1)
        for c, picks in zip(sectors, book.picks, strict=True):
            tilt = book.tilt[picks]
            share = _ALTS_HOME_SHARE if c == book.home_cluster else (
                (1.0 - _ALTS_HOME_SHARE) / others)
            weights[picks] = share * tilt / tilt.sum()
        return weights
    for c, picks in enumerate(book.picks):
        tilt = book.tilt[picks]
        # Every sector gets the same gross: that is what spreads the heat evenly.
        weights[picks] = book.direction[c] * tilt / tilt.sum()
    return weights


def _evolve_hedge(book: Book, universe: Universe, weights: np.ndarray,
                  probability: float) -> None:
    """Drop or take a hedge: a short in another coin of the sector of the largest long."""
    rng = book.rng
    if book.hedge is not None:
        hedge_i, hedged_i, _ = book.hedge
        if (rng.random() < _HEDGE_RELEASE_PROBABILITY or weights[hedged_i] <= 0.0
                or weights[hedge_i] != 0.0):
            book.hedge = None
        return
    if rng.random() >= probability or weights.max() <= 0.0:
        return
    hedged_i = int(np.argmax(weights))
    members = universe.members[universe.cluster[hedged_i]]
    candidates = members[weights[members] == 0.0]
    if candidates.size == 0:
        return  # the whole sector is held already: nothing left to hedge with
    hedge_i = int(rng.choice(candidates))
    book.conviction[hedge_i] = rng.uniform(0.5, 0.8)
    book.hedge = (hedge_i, hedged_i, float(rng.uniform(*_HEDGE_RATIO_RANGE)))


def target_weights(book: Book, universe: Universe, news: bool,
                    hedge_probability: float) -> np.ndarray:
    """Signed shares of equity per symbol, shape (n,), summing in absolute value to leverage."""
    if book.spec.strategy == "spread":
        _evolve_spread(book, universe)
    elif book.spec.strategy == "alts":
        _evolve_alts(book, universe, news)
    else:
        _evolve_scalp(book, universe)
    weights = _base_weights(book, universe)
    _evolve_hedge(book, universe, weights, hedge_probability)
    if book.hedge is not None:
        hedge_i, hedged_i, ratio = book.hedge
        weights[hedge_i] = -ratio * weights[hedged_i]
    return weights * (book.spec.leverage / np.abs(weights).sum())


def round_qty(qty: float) -> float:
    """Quantities as an order would carry them: a few significant digits."""
    return float(f"{qty:.{_QTY_SIGNIFICANT_DIGITS}g}")


def entry_after_trade(old_qty: float, old_entry: float, new_qty: float, price: float) -> float:
    """Average entry price after trading from ``old_qty`` to ``new_qty`` at ``price``."""
    if old_qty == 0.0 or old_qty * new_qty < 0.0:
        return price  # a new position, or a flip: the remainder is entered now
    if abs(new_qty) > abs(old_qty):
        added = abs(new_qty) - abs(old_qty)
        return (abs(old_qty) * old_entry + added * price) / abs(new_qty)
    return old_entry  # reducing does not change the entry of what is left
