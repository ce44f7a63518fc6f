"""Positions and account terms: the latest state per account, desk aggregation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np


@dataclass
class _Entry:
    qty: float
    conviction: float | None


@dataclass
class AccountTerms:
    """Equity (settlement currency), desk and maintenance rate of one account."""

    equity: float
    desk: str | None
    maintenance_rate: float | None


class HeldPosition(NamedTuple):
    """One position of an account: ``qty`` units of ``symbol`` under ``strategy``
    ("" when none), with its conviction (0..1, None when not given)."""

    symbol: str
    strategy: str
    qty: float
    conviction: float | None


@dataclass(frozen=True, kw_only=True)
class ExportedBook:
    """Positions, account terms and desks of a book, copied out of it.

    Attributes
    ----------
    positions : dict of str to list of HeldPosition
        Per account (an account may hold none), in insertion order: the order its
        quantities are summed in.
    terms : dict of str to AccountTerms
        Per account, in insertion order.
    desks : list of str
        Every desk ever named, sorted.
    """

    positions: dict[str, list[HeldPosition]]
    terms: dict[str, AccountTerms]
    desks: list[str]


@dataclass
class Holdings:
    """What one book (account or desk) holds, aggregated per symbol.

    Attributes
    ----------
    symbols : list[str], length k
        Held symbols (net quantity != 0), sorted.
    qty : ndarray, shape (k,)
        Net signed quantity per symbol (summed over strategies and accounts).
    strategy, conviction : list, length k
        Of the entry with the largest ``|qty|`` in that symbol.
    equity : float or None
        Summed equity of the book's accounts; None when no account has reported
        equity (the frame then uses gross notional: fully funded).
    margin_symbols : list[str], margin_weights : ndarray
        Maintenance margin in money is ``sum(margin_weights * price)``: each
        account's rate times its own ``|qty|`` per symbol, so a desk's margin
        is the sum of its accounts' margins even where their positions net out.
    """

    symbols: list[str]
    qty: np.ndarray
    strategy: list[str | None]
    conviction: list[float | None]
    equity: float | None
    margin_symbols: list[str] = field(default_factory=list)
    margin_weights: np.ndarray = field(default_factory=lambda: np.empty(0))


class PositionBook:
    """Latest position per (account, symbol, strategy) and latest terms per account."""

    def __init__(self, default_maintenance_rate: float) -> None:
        self.default_maintenance_rate = default_maintenance_rate
        self._entries: dict[str, dict[tuple[str, str], _Entry]] = {}
        self.terms: dict[str, AccountTerms] = {}
        # Desks stay known after their last member leaves, so they still get (empty)
        # frames and their alerts can resolve.
        self._desks: set[str] = set()
        # Counts changes, so a reader copying the book can tell whether it changed.
        self.version = 0

    def copy(self, accounts: list[str] | None = None) -> PositionBook:
        """An independent copy (of ``accounts`` only, when given): changing either
        book leaves the other as it was. Entries and terms are replaced, never
        changed in place, so copying the mappings suffices."""
        chosen = self._entries.keys() | self.terms.keys() if accounts is None else accounts
        book = PositionBook(self.default_maintenance_rate)
        book._entries = {a: dict(self._entries[a]) for a in chosen if a in self._entries}
        book.terms = {a: self.terms[a] for a in chosen if a in self.terms}
        book._desks = set(self._desks)
        book.version = self.version
        return book

    def export_state(self) -> ExportedBook:
        """A copy of the positions, terms and desks (not the change counter)."""
        return ExportedBook(
            positions={account: [HeldPosition(symbol, strategy, entry.qty, entry.conviction)
                                 for (symbol, strategy), entry in entries.items()]
                       for account, entries in self._entries.items()},
            # Terms are replaced, never changed in place: copying the mapping suffices.
            terms=dict(self.terms), desks=self.desks)

    def restore_state(self, state: ExportedBook) -> None:
        """Take over ``state``; only a fresh book, with no account yet, can (ValueError).
        Its change counter starts again from 0."""
        if self._entries or self.terms:
            raise ValueError("only a fresh book takes over an exported state")
        self._entries = {
            account: {(held.symbol, held.strategy): _Entry(held.qty, held.conviction)
                      for held in positions}
            for account, positions in state.positions.items()}
        self.terms = dict(state.terms)
        self._desks = set(state.desks)

    @property
    def accounts(self) -> list[str]:
        return sorted(self._entries.keys() | self.terms.keys())

    @property
    def desks(self) -> list[str]:
        return sorted(self._desks)

    def desk_of(self, account: str) -> str | None:
        terms = self.terms.get(account)
        return terms.desk if terms else None

    def members(self, desk: str) -> list[str]:
        return sorted(account for account, terms in self.terms.items() if terms.desk == desk)

    def entries(self, account: str) -> dict[tuple[str, str], _Entry]:
        """The positions of ``account`` by (symbol, strategy or ""); read only."""
        return self._entries.get(account, {})

    def set_position(self, account: str, symbol: str, strategy: str | None, qty: float,
                     conviction: float | None) -> None:
        self.version += 1
        entries = self._entries.setdefault(account, {})
        key = (symbol, strategy or "")
        if qty == 0.0:
            entries.pop(key, None)
        else:
            entries[key] = _Entry(qty, conviction)

    def set_terms(self, account: str, equity: float, desk: str | None,
                  maintenance_rate: float | None) -> str | None:
        """Store an account's terms; returns the desk it left (None if unchanged)."""
        self.version += 1
        previous = self.terms.get(account)
        self.terms[account] = AccountTerms(equity, desk or None, maintenance_rate)
        if desk:
            self._desks.add(desk)
        if previous and previous.desk and previous.desk != (desk or None):
            return previous.desk
        return None

    def _rate(self, account: str) -> float:
        terms = self.terms.get(account)
        if terms is None or terms.maintenance_rate is None:
            return self.default_maintenance_rate
        return terms.maintenance_rate

    def holdings(self, accounts: list[str], zero_tol: float = 1e-12) -> Holdings:
        """Aggregate the positions of ``accounts`` (one account, or a desk's members).

        A symbol is held when its net quantity is not ~0 (``abs(net) >= zero_tol``):
        strategies that offset exactly, up to float rounding, hold nothing.
        """
        net: dict[str, float] = {}
        dominant: dict[str, tuple[float, str, str, float | None]] = {}
        margin: dict[str, float] = {}
        for account in accounts:
            rate = self._rate(account)
            per_symbol: dict[str, float] = {}
            for (symbol, strategy), entry in self._entries.get(account, {}).items():
                net[symbol] = net.get(symbol, 0.0) + entry.qty
                per_symbol[symbol] = per_symbol.get(symbol, 0.0) + entry.qty
                # Largest |qty| wins; ties go to the alphabetically first strategy, then account.
                rank = (-abs(entry.qty), strategy, account)
                best = dominant.get(symbol)
                if best is None or rank < best[:3]:
                    dominant[symbol] = (*rank, entry.conviction)
            for symbol, qty in per_symbol.items():
                margin[symbol] = margin.get(symbol, 0.0) + rate * abs(qty)
        symbols = sorted(symbol for symbol, qty in net.items() if abs(qty) >= zero_tol)
        equities = [self.terms[a].equity for a in accounts if a in self.terms]
        margin_symbols = sorted(margin)
        return Holdings(
            symbols=symbols,
            qty=np.array([net[s] for s in symbols], dtype=float),
            strategy=[dominant[s][1] or None for s in symbols],
            conviction=[dominant[s][3] for s in symbols],
            equity=sum(equities) if equities else None,
            margin_symbols=margin_symbols,
            margin_weights=np.array([margin[s] for s in margin_symbols], dtype=float),
        )
