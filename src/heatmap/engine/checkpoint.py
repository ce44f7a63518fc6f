"""Checkpoints: the complete state of an engine and its alert monitor as bytes, and back.

A checkpoint is one msgpack document (:class:`EngineCheckpoint`), never a
pickle: every field is plain data named below, numpy arrays travel as their
raw little-endian bytes (:class:`PackedArray`) and Python floats as msgpack
float64, so every number comes back bit for bit. Restoring a checkpoint and
feeding the events that followed it gives exactly the frames and alerts an
uninterrupted engine gives.

What is state and what is not:

- state: prices, bar closes and EWMA statistics per timeframe; positions,
  account terms and desks; pending change frames (the heap, its tie-break
  sequence) and the rate-limit clock per book; the clusters of each book's latest
  frame per timeframe, whose names the next frame keeps; the alert machines.
- configuration, given again on restore: the :class:`EngineParams` (they
  must be the very same: the EWMA statistics mean nothing under another
  half-life, so a different parameter hash is refused), the alert thresholds
  (they may change; a changed threshold applies from the next frame) and the
  ``on_bar_close`` callback.
- derived, rebuilt on restore: caches, scratch buffers, array capacities and
  the parameters echoed in frames.

Dicts whose order reaches the output (positions are summed in insertion
order, alert machines resolve in insertion order) are stored as lists in
that order.

Versioning: :data:`FORMAT_VERSION` changes whenever any struct below gains,
loses or changes the meaning of a field, or the engine gains state. A
reader accepts exactly its own version; older checkpoints are refused and
the engine starts over (see docs/checkpoints.md).

Each engine component copies its own state out and takes it over again
(``export_state`` / ``restore_state`` of :class:`HeatEngine` with its market,
estimators and book, and of :class:`AlertMonitor`); this module maps those
plain values (numpy arrays, lists, dicts) to the versioned format and back, and
the envelope (:mod:`heatmap.engine.envelope`) refuses anything but this format
and version.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import msgspec
import numpy as np

from heatmap.engine.alerts import AlertMonitor, AlertThresholds, ExportedAlerts, ExportedMachine
from heatmap.engine.book import AccountTerms, ExportedBook, HeldPosition
from heatmap.engine.engine import ExportedEngine, HeatEngine, PendingFrame
from heatmap.engine.envelope import Envelope
from heatmap.engine.ewma import ExportedEwma
from heatmap.engine.identity import IdentityKey, KnownCluster
from heatmap.engine.market import ExportedMarket
from heatmap.engine.params import EngineParams
from heatmap.schema import AlertKind, Severity, Trigger

FORMAT = "heatmap.engine.checkpoint"
# 2: the clusters of each book's latest frame (cluster names carry over frames).
# 3: since when a cluster alert has been recovered (it steps down after a hold).
FORMAT_VERSION = 3


class CheckpointError(ValueError):
    """A checkpoint cannot be restored (not a checkpoint, another version or parameters)."""


# -- the format -------------------------------------------------------------------------------
# Structs are msgpack maps, except the records that come by the thousand (positions,
# account terms, pending frames, alert machines): those are arrays in field order.


class PackedArray(msgspec.Struct, frozen=True, kw_only=True):
    """A numpy array as raw bytes: ``dtype`` is numpy's explicit-endian code (``<f8``)."""

    dtype: str
    shape: list[int]
    data: bytes


class SavedEwma(msgspec.Struct, frozen=True, kw_only=True):
    """One timeframe's estimator over ``size`` slots; every matrix is (size, size)."""

    size: int
    uniform: bool  # every used pair started and never missed a return (the fast path)
    mean: PackedArray
    cov: PackedArray
    var: PackedArray
    weight: PackedArray
    started: PackedArray
    count: PackedArray  # (size,) int64


class SavedMarket(msgspec.Struct, frozen=True, kw_only=True):
    """Prices and bars; ``symbols`` in slot order, arrays (len(symbols),)."""

    symbols: list[str]
    last_price: PackedArray
    last_price_ms: PackedArray
    prev_close: PackedArray
    next_boundary_ms: int | None
    last_boundary_ms: int | None
    estimators: dict[str, SavedEwma]  # by timeframe name


class SavedPosition(msgspec.Struct, frozen=True, kw_only=True, array_like=True):
    symbol: str
    strategy: str  # "" when the position has none
    qty: float
    conviction: float | None


class SavedAccountPositions(msgspec.Struct, frozen=True, kw_only=True):
    account: str
    positions: list[SavedPosition]  # insertion order: the order quantities are summed in


class SavedAccountTerms(msgspec.Struct, frozen=True, kw_only=True, array_like=True):
    account: str
    equity: float
    desk: str | None
    maintenance_rate: float | None


class SavedBook(msgspec.Struct, frozen=True, kw_only=True):
    """Positions per account (an account may hold none), account terms, known desks."""

    accounts: list[SavedAccountPositions]
    terms: list[SavedAccountTerms]
    desks: list[str]  # sorted


class SavedPendingFrame(msgspec.Struct, frozen=True, kw_only=True, array_like=True):
    """A change-triggered frame not yet emitted, for the account or the desk that is set."""

    due_ms: int
    sequence: int
    account: str | None
    desk: str | None
    trigger: Trigger


class SavedLastChangeFrame(msgspec.Struct, frozen=True, kw_only=True, array_like=True):
    account: str | None
    desk: str | None
    ts_ms: int


class SavedScheduler(msgspec.Struct, frozen=True, kw_only=True):
    pending: list[SavedPendingFrame]  # the heap as a list, in heap order
    next_sequence: int
    last_change_frames: list[SavedLastChangeFrame]  # rate-limit clock per book
    last_price_ms: int | None


class SavedMachine(msgspec.Struct, frozen=True, kw_only=True, array_like=True):
    kind: AlertKind
    subject: str
    level: int  # -1 none, else an index into the reading's thresholds
    streak: list[tuple[int, int]]  # (level, consecutive frames beyond it)
    severity: Severity
    threshold: float
    recovered_since_ms: int | None  # frame time a held alert's value recovered at


class SavedAlertBook(msgspec.Struct, frozen=True, kw_only=True):
    book_kind: str  # "account" or "desk"
    book: str
    timeframe: str
    machines: list[SavedMachine]  # insertion order: the order vanished subjects resolve in


class SavedCluster(msgspec.Struct, frozen=True, kw_only=True, array_like=True):
    """A cluster of a book's latest frame: its name and ``|share|`` per member."""

    name: str
    members: list[str]
    exposure: list[float]  # |share| of each member, in the order of members


class SavedClusterBook(msgspec.Struct, frozen=True, kw_only=True, array_like=True):
    """The clusters of the latest frame of one book (account or desk) and timeframe."""

    account: str | None
    desk: str | None
    timeframe: str
    clusters: list[SavedCluster]


class EngineCheckpoint(msgspec.Struct, frozen=True, kw_only=True):
    """Everything an engine and its alert monitor hold between two events."""

    format: str
    format_version: int
    params_hash: str  # of every engine parameter: see params_fingerprint
    params: dict[str, Any]  # the parameters themselves, to say what differs
    market: SavedMarket
    book: SavedBook
    scheduler: SavedScheduler
    clusters: list[SavedClusterBook]  # insertion order
    alerts: list[SavedAlertBook]


_ENVELOPE = Envelope(EngineCheckpoint, format=FORMAT, version=FORMAT_VERSION,
                     error=CheckpointError, name="engine checkpoint",
                     version_name="checkpoint format version",
                     advice="start from scratch (old checkpoints are not migrated)")


def params_fingerprint(params: EngineParams) -> str:
    """A stable hash of every engine parameter (sorted-key JSON, sha256, 16 hex digits).

    Wider than the per-timeframe hash echoed in frames: it also covers values
    frames do not echo (``zero_tol``).
    """
    canonical = msgspec.json.encode(params, order="sorted")
    return hashlib.sha256(canonical).hexdigest()[:16]


# -- export -----------------------------------------------------------------------------------


def export_state(engine: HeatEngine, monitor: AlertMonitor) -> bytes:
    """The complete state of ``engine`` and ``monitor`` as one checkpoint.

    Call it between two engine calls (e.g. right after the events of a bar
    close), never from ``on_bar_close`` or while an ``iter_advance`` stream
    is half consumed: a bar whose frames are partly emitted is not a state
    the format can hold.
    """
    state = engine.export_state()
    checkpoint = EngineCheckpoint(
        format=FORMAT, format_version=FORMAT_VERSION,
        params_hash=params_fingerprint(engine.params),
        params=msgspec.to_builtins(engine.params),
        market=_saved_market(state.market), book=_saved_book(state.book),
        scheduler=_saved_scheduler(state), clusters=_saved_clusters(state.clusters),
        alerts=_saved_alerts(monitor.export_state()))
    return _ENVELOPE.encode(checkpoint)


def _pack(array: np.ndarray) -> PackedArray:
    # Explicit little-endian so the bytes mean the same on any machine.
    little = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    return PackedArray(dtype=little.dtype.str, shape=list(little.shape), data=little.tobytes())


def _saved_ewma(ewma: ExportedEwma) -> SavedEwma:
    return SavedEwma(
        size=ewma.size, uniform=ewma.uniform, mean=_pack(ewma.mean), cov=_pack(ewma.cov),
        var=_pack(ewma.var), weight=_pack(ewma.weight), started=_pack(ewma.started),
        count=_pack(ewma.count))


def _saved_market(market: ExportedMarket) -> SavedMarket:
    return SavedMarket(
        symbols=market.symbols, last_price=_pack(market.last_price),
        last_price_ms=_pack(market.last_price_ms), prev_close=_pack(market.prev_close),
        next_boundary_ms=market.next_boundary_ms, last_boundary_ms=market.last_boundary_ms,
        estimators={name: _saved_ewma(ewma) for name, ewma in market.estimators.items()})


def _optional_float(value: float | None) -> float | None:
    return None if value is None else float(value)


def _saved_book(book: ExportedBook) -> SavedBook:
    # float(): an int quantity would encode as a msgpack int and come back a float.
    accounts = [
        SavedAccountPositions(account=account, positions=[
            SavedPosition(symbol=held.symbol, strategy=held.strategy, qty=float(held.qty),
                          conviction=_optional_float(held.conviction))
            for held in positions])
        for account, positions in book.positions.items()]
    terms = [SavedAccountTerms(account=account, equity=float(t.equity), desk=t.desk,
                               maintenance_rate=_optional_float(t.maintenance_rate))
             for account, t in book.terms.items()]
    return SavedBook(accounts=accounts, terms=terms, desks=book.desks)


def _saved_scheduler(engine: ExportedEngine) -> SavedScheduler:
    pending = [SavedPendingFrame(due_ms=frame.due_ms, sequence=frame.sequence,
                                 account=frame.account, desk=frame.desk, trigger=frame.trigger)
               for frame in engine.pending]
    last = [SavedLastChangeFrame(account=account, desk=desk, ts_ms=ts_ms)
            for (account, desk), ts_ms in engine.last_change_frame_ms.items()]
    return SavedScheduler(pending=pending, next_sequence=engine.next_sequence,
                          last_change_frames=last, last_price_ms=engine.last_price_ms)


def _saved_clusters(clusters: dict[IdentityKey, tuple[KnownCluster, ...]]
                    ) -> list[SavedClusterBook]:
    return [SavedClusterBook(account=account, desk=desk, timeframe=timeframe, clusters=[
                SavedCluster(name=known.name, members=list(known.exposure),
                             exposure=[float(share) for share in known.exposure.values()])
                for known in known_clusters])
            for (account, desk, timeframe), known_clusters in clusters.items()]


def _saved_alerts(alerts: ExportedAlerts) -> list[SavedAlertBook]:
    return [
        SavedAlertBook(book_kind=book_kind, book=book, timeframe=timeframe, machines=[
            SavedMachine(kind=kind, subject=subject, level=machine.level,
                         streak=list(machine.streak.items()), severity=machine.severity,
                         threshold=float(machine.threshold),
                         recovered_since_ms=machine.recovered_since_ms)
            for (kind, subject), machine in machines.items()])
        for (book_kind, book, timeframe), machines in alerts.items()]


# -- restore ----------------------------------------------------------------------------------


def restore_state(blob: bytes, params: EngineParams, *,
                  alert_defaults: AlertThresholds | None = None,
                  alert_per_desk: dict[str, AlertThresholds] | None = None,
                  on_bar_close: Callable[[int], None] | None = None,
                  ) -> tuple[HeatEngine, AlertMonitor]:
    """A fresh engine and alert monitor in the state :func:`export_state` saved.

    Parameters
    ----------
    blob : bytes
        A checkpoint of this :data:`FORMAT_VERSION`.
    params : EngineParams
        Must be the parameters the checkpoint was taken with.
    alert_defaults, alert_per_desk :
        Alert thresholds, as for :class:`AlertMonitor`.
    on_bar_close :
        Re-attached to the engine (callbacks are not state).

    Raises
    ------
    CheckpointError
        ``blob`` is no checkpoint, is of another format version, is
        inconsistent, or was taken with other parameters.
    """
    checkpoint = _ENVELOPE.decode(blob)
    expected = params_fingerprint(params)
    if checkpoint.params_hash != expected:
        raise CheckpointError(
            f"checkpoint was taken with other engine parameters (hash "
            f"{checkpoint.params_hash}, expected {expected}; "
            f"{_params_difference(checkpoint.params, params)}): restore with those "
            "parameters or start from scratch")
    engine = HeatEngine(params, on_bar_close=on_bar_close)
    monitor = AlertMonitor(alert_defaults, alert_per_desk)
    try:
        engine.restore_state(_exported_engine(checkpoint))
        monitor.restore_state(_exported_alerts(checkpoint.alerts))
    except (ValueError, KeyError) as error:
        raise CheckpointError(f"inconsistent checkpoint: {error}") from error
    return engine, monitor


def _params_difference(saved: dict[str, Any], params: EngineParams) -> str:
    current = msgspec.to_builtins(params)
    names = sorted(name for name in saved.keys() | current.keys()
                   if saved.get(name) != current.get(name))
    if not names:
        return "same values, different hash"
    return "differ: " + ", ".join(f"{name} {saved.get(name)!r} -> {current.get(name)!r}"
                                  for name in names)


def _unpack(packed: PackedArray, dtype: str) -> np.ndarray:
    """The array ``packed`` holds, of ``dtype`` in native byte order and writable; the
    shape is the one it claims (the component taking it over checks it fits)."""
    expected = np.dtype(dtype).newbyteorder("<")
    if np.dtype(packed.dtype) != expected:
        raise ValueError(f"array {packed.dtype} {packed.shape}, expected {expected.str}")
    shape = tuple(packed.shape)
    if len(packed.data) != expected.itemsize * int(np.prod(shape, dtype=np.int64)):
        raise ValueError(f"array of shape {list(shape)} holds {len(packed.data)} bytes")
    return np.frombuffer(packed.data, dtype=expected).astype(dtype).reshape(shape)


def _exported_ewma(saved: SavedEwma) -> ExportedEwma:
    return ExportedEwma(
        size=saved.size, uniform=saved.uniform, mean=_unpack(saved.mean, "f8"),
        cov=_unpack(saved.cov, "f8"), var=_unpack(saved.var, "f8"),
        weight=_unpack(saved.weight, "f8"), started=_unpack(saved.started, "?"),
        count=_unpack(saved.count, "i8"))


def _exported_market(saved: SavedMarket) -> ExportedMarket:
    return ExportedMarket(
        symbols=list(saved.symbols), last_price=_unpack(saved.last_price, "f8"),
        last_price_ms=_unpack(saved.last_price_ms, "i8"),
        prev_close=_unpack(saved.prev_close, "f8"), next_boundary_ms=saved.next_boundary_ms,
        last_boundary_ms=saved.last_boundary_ms,
        estimators={name: _exported_ewma(ewma) for name, ewma in saved.estimators.items()})


def _exported_book(saved: SavedBook) -> ExportedBook:
    return ExportedBook(
        positions={account.account: [HeldPosition(p.symbol, p.strategy, p.qty, p.conviction)
                                     for p in account.positions]
                   for account in saved.accounts},
        terms={t.account: AccountTerms(t.equity, t.desk, t.maintenance_rate)
               for t in saved.terms},
        desks=list(saved.desks))


def _exported_engine(checkpoint: EngineCheckpoint) -> ExportedEngine:
    scheduler = checkpoint.scheduler
    return ExportedEngine(
        market=_exported_market(checkpoint.market), book=_exported_book(checkpoint.book),
        pending=[PendingFrame(frame.due_ms, frame.sequence, frame.account, frame.desk,
                              frame.trigger) for frame in scheduler.pending],
        next_sequence=scheduler.next_sequence,
        last_change_frame_ms={(last.account, last.desk): last.ts_ms
                              for last in scheduler.last_change_frames},
        last_price_ms=scheduler.last_price_ms,
        clusters={(book.account, book.desk, book.timeframe): tuple(
                      KnownCluster(cluster.name, dict(zip(cluster.members, cluster.exposure,
                                                          strict=True)))
                      for cluster in book.clusters)
                  for book in checkpoint.clusters})


def _exported_alerts(saved: list[SavedAlertBook]) -> ExportedAlerts:
    return {(book.book_kind, book.book, book.timeframe): {
                (m.kind, m.subject): ExportedMachine(level=m.level, streak=dict(m.streak),
                                                     severity=m.severity, threshold=m.threshold,
                                                     recovered_since_ms=m.recovered_since_ms)
                for m in book.machines}
            for book in saved}
