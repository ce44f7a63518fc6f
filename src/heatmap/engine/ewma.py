"""Online exponentially weighted correlation of bar returns, one instance per timeframe.

The recursion is pandas' ``ewm(halflife=h, adjust=False)`` covariance, kept
per pair: like pandas' pairwise ``corr()``, the means, variances and
covariance of a pair ``(i, j)`` run over the pair's joint returns only, so a
symbol joining later starts its own statistics while the symbols already
present keep their history (their own variance, the diagonal, is
unchanged). On returns without gaps,
``correlation()`` equals ``returns.ewm(halflife=h, adjust=False).corr()``
and ``variance()`` equals ``.var(bias=True)`` of the same bar. Missing
returns decay the pair's old weight exactly as pandas does with
``ignore_na=False``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from heatmap.engine.arrays import require_array


@dataclass(frozen=True, kw_only=True)
class ExportedEwma:
    """The statistics of an estimator over its ``size`` used slots, copied out of it.

    Attributes
    ----------
    size : int
        Slots in use (``n``).
    uniform : bool
        Every used pair has started and never missed a return: the update's short path.
    mean, cov, var, weight : ndarray of float64, shape (n, n)
        See :class:`EwmaCorrelation`.
    started : ndarray of bool, shape (n, n)
    count : ndarray of int64, shape (n,)
        Returns folded in per slot.
    """

    size: int
    uniform: bool
    mean: np.ndarray
    cov: np.ndarray
    var: np.ndarray
    weight: np.ndarray
    started: np.ndarray
    count: np.ndarray


class EwmaCorrelation:
    """EWMA means, covariances and correlations over a set of slots.

    Parameters
    ----------
    alpha : float
        Weight of the newest return, ``1 - 2**(-1/halflife_bars)``.
    min_periods : int
        Returns each symbol of a pair needs before the pair's correlation counts.

    Notes
    -----
    State per pair of slots ``(i, j)``, each an ``(n, n)`` array:
    ``mean[i, j]`` and ``var[i, j]`` the EW mean and biased variance of the
    returns of ``i`` over the pair's joint returns (``[i, i]`` is ``i``'s
    own), ``cov[i, j]`` the biased EW covariance, ``weight`` the pair's
    old-weight factor (1 unless returns were missed) and ``started``. One update is
    O(n^2), vectorised.
    """

    mean: np.ndarray
    cov: np.ndarray
    var: np.ndarray
    weight: np.ndarray
    started: np.ndarray
    count: np.ndarray

    def __init__(self, alpha: float, min_periods: int, capacity: int = 16) -> None:
        if not 0.0 < alpha <= 1.0:
            raise ValueError("alpha must be in (0, 1]")
        self.alpha = alpha
        self.min_periods = min_periods
        self.size = 0
        self._allocate(max(capacity, 1))
        # True while every used pair has started and no return was ever missed:
        # then all weights are 1 and the update takes the short path.
        self._uniform = True

    def _allocate(self, capacity: int) -> None:
        old = getattr(self, "mean", None)
        self.capacity = capacity
        new_mean = np.zeros((capacity, capacity))
        new_cov = np.zeros((capacity, capacity))
        new_var = np.zeros((capacity, capacity))
        new_weight = np.ones((capacity, capacity))
        new_started = np.zeros((capacity, capacity), dtype=bool)
        new_count = np.zeros(capacity, dtype=np.int64)
        if old is not None:
            n = self.size
            new_mean[:n, :n] = self.mean[:n, :n]
            new_cov[:n, :n] = self.cov[:n, :n]
            new_var[:n, :n] = self.var[:n, :n]
            new_weight[:n, :n] = self.weight[:n, :n]
            new_started[:n, :n] = self.started[:n, :n]
            new_count[:n] = self.count[:n]
        self.mean, self.cov, self.var, self.weight = new_mean, new_cov, new_var, new_weight
        self.started, self.count = new_started, new_count
        self._delta = np.empty((capacity, capacity))
        self._scratch = np.empty((capacity, capacity))

    def resize(self, size: int) -> None:
        """Make room for ``size`` slots; new slots start with no history."""
        if size > self.capacity:
            self._allocate(max(size, 2 * self.capacity))
        if size > self.size:
            self._uniform = False  # the new slots' pairs have not started
        self.size = max(self.size, size)

    def export_state(self) -> ExportedEwma:
        """A copy of the statistics of the used slots (not the spare capacity or scratch)."""
        n = self.size
        return ExportedEwma(
            size=n, uniform=self._uniform, mean=self.mean[:n, :n].copy(),
            cov=self.cov[:n, :n].copy(), var=self.var[:n, :n].copy(),
            weight=self.weight[:n, :n].copy(), started=self.started[:n, :n].copy(),
            count=self.count[:n].copy())

    def restore_state(self, state: ExportedEwma) -> None:
        """Take over ``state`` (exported by an estimator of the same ``alpha`` and
        ``min_periods``); only a fresh estimator, with no slot yet, can.

        Raises
        ------
        ValueError
            The estimator has slots already, or an array's shape or dtype does not fit
            ``state.size``.
        """
        if self.size:
            raise ValueError("only a fresh estimator takes over an exported state")
        n = state.size
        for name in ("mean", "cov", "var", "weight"):
            require_array(name, getattr(state, name), np.float64, (n, n))
        require_array("started", state.started, np.bool_, (n, n))
        require_array("count", state.count, np.int64, (n,))
        self.resize(n)
        self.mean[:n, :n] = state.mean
        self.cov[:n, :n] = state.cov
        self.var[:n, :n] = state.var
        self.weight[:n, :n] = state.weight
        self.started[:n, :n] = state.started
        self.count[:n] = state.count
        self._uniform = state.uniform

    def update(self, returns: np.ndarray, observed: np.ndarray | None = None) -> None:
        """Fold in one bar of returns.

        Parameters
        ----------
        returns : ndarray, shape (size,)
            Log returns of the bar per slot; ignored where not observed.
        observed : ndarray of bool, shape (size,), optional
            Slots with a return this bar (default: all).
        """
        n = self.size
        if n == 0:
            return
        if observed is None or observed.all():
            if self._uniform:
                self._update_uniform(returns[:n])
                self.count[:n] += 1
                return
            observed = np.ones(n, dtype=bool)
        self._update_general(np.where(observed, returns[:n], 0.0), observed)
        self.count[:n] += observed

    def _update_uniform(self, r: np.ndarray) -> None:
        # With unit weights the pandas recursion reduces to
        #   D = r_i - m_ij;  m_ij += a D_ij;  c_ij = (1 - a) (c_ij + a D_ij D_ji)
        # and the pair variance is the same with D_ij D_ij.
        n, a = r.shape[0], self.alpha
        mean, cov, var = self.mean[:n, :n], self.cov[:n, :n], self.var[:n, :n]
        delta, scratch = self._delta[:n, :n], self._scratch[:n, :n]
        np.subtract(r[:, None], mean, out=delta)
        np.multiply(delta, a, out=scratch)
        mean += scratch
        np.multiply(delta, delta.T, out=scratch)
        scratch *= a
        cov += scratch
        cov *= 1.0 - a
        np.multiply(delta, delta, out=scratch)
        scratch *= a
        var += scratch
        var *= 1.0 - a

    def _update_general(self, r: np.ndarray, observed: np.ndarray) -> None:
        n, a = r.shape[0], self.alpha
        mean, cov, var = self.mean[:n, :n], self.cov[:n, :n], self.var[:n, :n]
        weight, started = self.weight[:n, :n], self.started[:n, :n]
        joint = observed[:, None] & observed[None, :]
        continuing = joint & started
        first = joint & ~started
        missed = started & ~joint
        old_weight = weight * (1.0 - a)
        total = old_weight + a
        r_row = np.broadcast_to(r[:, None], (n, n))
        new_mean = np.where(continuing, (old_weight * mean + a * r_row) / total, mean)
        shift = mean - new_mean
        innovation = r_row - new_mean
        new_cov = (old_weight * (cov + shift * shift.T) + a * innovation * innovation.T) / total
        new_var = (old_weight * (var + shift * shift) + a * innovation * innovation) / total
        cov[...] = np.where(continuing, new_cov, np.where(first, 0.0, cov))
        var[...] = np.where(continuing, new_var, np.where(first, 0.0, var))
        mean[...] = np.where(first, r_row, new_mean)
        weight[...] = np.where(joint, 1.0, np.where(missed, old_weight, weight))
        started |= first
        self._uniform = bool(started.all() and (weight == 1.0).all())

    def variance(self, slots: np.ndarray) -> np.ndarray:
        """Per-bar EW variance (bias=True), shape (len(slots),), never negative."""
        return np.maximum(self.var[slots, slots], 0.0)

    def warm(self, slots: np.ndarray) -> np.ndarray:
        """Whether each slot has ``min_periods`` returns, shape (len(slots),)."""
        return self.count[slots] >= self.min_periods

    def correlation(self, slots: np.ndarray) -> np.ndarray:
        """Correlation matrix of ``slots``, shape (k, k).

        Pairs with a warming member, or with a zero variance, are 0; the
        diagonal is 1; values are clipped to [-1, 1].
        """
        index = np.ix_(slots, slots)
        pair_var = np.maximum(self.var[index], 0.0)
        scale = np.sqrt(pair_var * pair_var.T)
        with np.errstate(divide="ignore", invalid="ignore"):
            rho = np.where(scale > 0.0, self.cov[index] / scale, 0.0)
        warm = self.warm(slots)
        rho = np.where(warm[:, None] & warm[None, :], rho, 0.0)
        np.clip(rho, -1.0, 1.0, out=rho)
        np.fill_diagonal(rho, 1.0)
        return rho
