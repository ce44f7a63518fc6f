"""The one definition of every message the product exchanges (SPEC'd JSON on Kafka).

Inputs (``prices``, ``positions``, ``accounts``) are validated here, so a
record either decodes into a Struct or is rejected with a reason; outputs
(heat frames, alerts) are encoded from the same Structs by every producer,
``heat replay`` included.

Time: inside the product a moment is integer epoch milliseconds (``ts_ms``).
Only at the edges is it something else: RFC 3339 UTC text in Kafka messages and
files (:func:`ms_to_rfc3339` / :func:`rfc3339_to_ms`), and an aware
``datetime`` where a library speaks in datetimes, i.e. msgspec's decoded input
messages and PostgreSQL's ``timestamptz`` (:func:`ms_to_datetime` /
:func:`datetime_to_ms`).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Annotated, Any, Literal, TypeVar

import msgspec
import unicodedata2 as unicodedata  # type: ignore[import-not-found]  # no stubs

# Names travel into topic keys, SQL rows and dashboards, and desks name things as they
# like: any printable text of any script is a name (letters, marks, numbers,
# punctuation, symbols, plain inner spaces), e.g. Binance's `币安人生USDT` or
# `o'brien fund`. Refused: characters that cannot be seen or told apart from others --
# control (Cc), format (Cf: zero-width and direction marks), surrogate (Cs), private-use
# (Co) and unassigned (Cn) code points, line and paragraph separators (Zl, Zp), every
# space but U+0020 (no-break, ideographic, ...) -- and a space at either end. Names are
# kept verbatim (no case folding or normalisation). Categories come from unicodedata2,
# the current Unicode database (the interpreter's own lags by years, which would refuse
# every newer emoji as unassigned); they are checked in __post_init__, the Meta bounds
# the length in code points. Symbols share the bound: real ones are far shorter.
NAME_MAX_CHARS = 128
NAME_RULE = (f"1 to {NAME_MAX_CHARS} printable characters with no space at either end "
             "(no control, format, private-use or unassigned characters, no line breaks "
             "or spaces other than U+0020)")
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=NAME_MAX_CHARS)]
Symbol = Name


def valid_name(name: str) -> bool:
    """Whether ``name`` is a valid symbol, account, desk, strategy or source name."""
    if not 0 < len(name) <= NAME_MAX_CHARS or name[0] == " " or name[-1] == " ":
        return False
    if name.isascii():  # the common case at C speed; ASCII's categories never change
        return name.isprintable()
    return all(char == " " or unicodedata.category(char)[0] not in "CZ" for char in name)


def _require_names(**names: str | None) -> None:
    for field, name in names.items():
        if name is not None and not valid_name(name):
            raise ValueError(f"{field} must be {NAME_RULE}")


Trigger = Literal["bar", "position", "equity"]
Quadrant = Literal["core", "speculative", "hedge", "unsure"]


class InvalidMessageError(ValueError):
    """A record breaks the message contract; ``str()`` is the reason."""


def _require_finite(**values: float | None) -> None:
    for name, value in values.items():
        if value is not None and not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def datetime_to_ms(moment: datetime) -> int:
    """Epoch milliseconds of an aware datetime (to the nearest millisecond)."""
    return round(moment.timestamp() * 1000)


def ms_to_datetime(ts_ms: int) -> datetime:
    """Aware UTC datetime of epoch milliseconds (exact: no float in between)."""
    return _EPOCH + timedelta(milliseconds=ts_ms)


@lru_cache(maxsize=4096)
def ms_to_rfc3339(ts_ms: int) -> str:
    """``2026-01-02T03:04:05.678Z`` for epoch milliseconds."""
    return f"{ms_to_datetime(ts_ms):%Y-%m-%dT%H:%M:%S.%f}"[:-3] + "Z"


def rfc3339_to_ms(text: str) -> int:
    """Epoch milliseconds of an RFC 3339 timestamp (a missing offset means UTC)."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00", 1))
    except ValueError as error:
        raise InvalidMessageError(f"bad timestamp {text!r}") from error
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return datetime_to_ms(moment)


class Price(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """``prices`` (key = symbol): one observed price."""

    symbol: Symbol
    ts: datetime
    price: Annotated[float, msgspec.Meta(gt=0)]
    source: Name
    bid: Annotated[float, msgspec.Meta(gt=0)] | None = None
    ask: Annotated[float, msgspec.Meta(gt=0)] | None = None

    def __post_init__(self) -> None:
        _require_finite(price=self.price, bid=self.bid, ask=self.ask)
        _require_names(symbol=self.symbol, source=self.source)


class Position(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """``positions`` (key = account): the latest per (account, symbol, strategy) is the position."""

    account: Name
    symbol: Symbol
    ts: datetime
    qty: float
    strategy: Name | None = None
    conviction: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None
    entry_price: Annotated[float, msgspec.Meta(gt=0)] | None = None
    leverage: Annotated[float, msgspec.Meta(gt=0)] | None = None
    desk: Name | None = None
    source: Name | None = None

    def __post_init__(self) -> None:
        _require_finite(qty=self.qty, entry_price=self.entry_price, leverage=self.leverage)
        _require_names(account=self.account, symbol=self.symbol, strategy=self.strategy,
                       desk=self.desk, source=self.source)


class Account(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """``accounts`` (key = account): equity and margin terms of one account."""

    account: Name
    ts: datetime
    equity: float
    desk: Name | None = None
    maintenance_rate: Annotated[float, msgspec.Meta(ge=0, lt=1)] | None = None
    currency: Annotated[str, msgspec.Meta(pattern=r"\A[A-Z0-9]{2,12}\Z")] | None = None

    def __post_init__(self) -> None:
        _require_finite(equity=self.equity)
        _require_names(account=self.account, desk=self.desk)


class PositionRow(msgspec.Struct, kw_only=True):
    """One held symbol in a frame. Shares are in units of equity; ages in seconds."""

    symbol: str
    strategy: str | None
    qty: float
    price: float
    notional: float
    share: float
    heat: float
    heat_share: float | None
    risk_contribution: float
    cluster: str
    quadrant: Quadrant
    conviction: float | None
    stale: bool
    price_age_s: float


class ClusterRow(msgspec.Struct, kw_only=True):
    """One correlated cluster of held symbols (named after its largest member)."""

    cluster: str
    members: list[str]
    gross: float
    net: float
    concentration: float
    stress_concentration: float
    liq_distance: float | None
    liq_sigma: float | None


class Frame(msgspec.Struct, kw_only=True):
    """A heat frame (``heat-frames``, key = account, or desk for desk frames)."""

    ts: str
    trigger: Trigger
    account: str | None
    desk: str | None
    timeframe: str
    equity: float
    gross: float
    net: float
    correlated_exposure: float
    stress_exposure: float
    effective_bets: float | None
    hhi: float | None
    max_cluster_concentration: float | None
    liq_distance: float | None
    var99_1d: float
    absorption_ratio: float | None
    regime_break: float | None
    stale: bool
    max_price_age_s: float | None
    warming_up: bool
    params: dict[str, object]
    params_hash: str
    positions: list[PositionRow]
    clusters: list[ClusterRow]


AlertKind = Literal["cluster_concentration", "liquidation_proximity", "stale_heat",
                    "regime_break"]
Severity = Literal["warning", "critical"]
AlertState = Literal["firing", "resolved"]


class Alert(msgspec.Struct, kw_only=True):
    """An alert transition (``alerts``)."""

    ts: str
    account: str | None
    desk: str | None
    timeframe: str
    kind: AlertKind
    subject: str
    severity: Severity
    state: AlertState
    value: float | None
    threshold: float
    message: str


class CorrelationSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """The correlation matrix of one timeframe at one bar close.

    ``rho`` is the upper triangle without the diagonal, row by row:
    ``k (k - 1) / 2`` values for ``k`` symbols.
    """

    ts_ms: int
    timeframe: str
    params_hash: str
    symbols: list[str]
    rho: list[float]


class Correlation(msgspec.Struct, kw_only=True):
    """A bar-close correlation matrix (``correlations``, key = timeframe).

    ``rho`` is the upper triangle without the diagonal, row by row: ``k (k - 1) / 2``
    values for ``k`` symbols; ``ts`` is the bar close (RFC 3339 UTC).
    """

    ts: str
    timeframe: str
    params_hash: str
    symbols: list[str]
    rho: list[float]


InputMessage = TypeVar("InputMessage", Price, Position, Account)

_decoders: dict[type[msgspec.Struct], msgspec.json.Decoder[Any]] = {
    kind: msgspec.json.Decoder(kind) for kind in (Price, Position, Account)
}
_encoder = msgspec.json.Encoder()


def decode(kind: type[InputMessage], payload: bytes) -> InputMessage:
    """Decode and validate one input record of ``kind``; raises InvalidMessageError with
    the reason."""
    try:
        message: InputMessage = _decoders[kind].decode(payload)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise InvalidMessageError(str(error)) from error
    except UnicodeDecodeError as error:
        raise InvalidMessageError("not valid UTF-8") from error
    if message.ts.tzinfo is None:
        raise InvalidMessageError("ts must carry a UTC offset (RFC 3339, e.g. ...Z)")
    return message


def encode(message: msgspec.Struct) -> bytes:
    """JSON bytes of any message of this module."""
    return _encoder.encode(message)


# -- what-if (``POST /v1/whatif`` of ``heat process``'s bot API) --------------------------------

# Bounds that keep a request's numbers meaningful (a typo of a few orders of magnitude
# is refused, not computed): units of a symbol per order, and orders per request.
WHATIF_MAX_ABS_QTY = 1e12
WHATIF_MAX_ORDERS = 200
BookKind = Literal["account", "desk"]


class WhatIfOrder(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A proposed order: ``qty`` units of ``symbol`` bought (> 0) or sold (< 0)."""

    symbol: Symbol
    qty: float

    def __post_init__(self) -> None:
        _require_finite(qty=self.qty)
        if abs(self.qty) > WHATIF_MAX_ABS_QTY:
            raise ValueError(f"qty must be at most {WHATIF_MAX_ABS_QTY:g} in absolute value")
        _require_names(symbol=self.symbol)


class WhatIfRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``POST /v1/whatif``: the frame of a book before and after ``orders``.

    ``account`` alone: that account's frame, the orders booked on it. ``desk`` alone:
    the desk's frame, the orders booked as a new member of the desk with no equity
    of its own (default maintenance rate). Both: the desk's frame, the orders booked
    on that member account. ``timeframe`` (e.g. ``1h``): one of the engine's
    timeframes; the shortest when left out.
    """

    orders: Annotated[list[WhatIfOrder], msgspec.Meta(min_length=1,
                                                      max_length=WHATIF_MAX_ORDERS)]
    account: Name | None = None
    desk: Name | None = None
    timeframe: str | None = None

    def __post_init__(self) -> None:
        if self.account is None and self.desk is None:
            raise ValueError("give an account or a desk")
        _require_names(account=self.account, desk=self.desk)


class Change(msgspec.Struct, frozen=True, kw_only=True):
    """A number before and after the orders, and ``after - before`` (None when either is)."""

    before: float | None
    after: float | None
    delta: float | None


class PositionChange(msgspec.Struct, frozen=True, kw_only=True):
    """One symbol held before or after the orders (None: not held then)."""

    symbol: str
    qty: Change
    notional: Change
    share: Change
    heat: Change
    heat_share: Change
    risk_contribution: Change
    cluster_before: str | None
    cluster_after: str | None


class ClusterChange(msgspec.Struct, frozen=True, kw_only=True):
    """One cluster (by name) before or after the orders.

    ``crossed_up`` / ``crossed_down``: the concentration lines (the cluster
    concentration alert's warning and critical thresholds, e.g. 0.20 and 0.25) the
    cluster reaches (at or above) only after the orders, or leaves below only after them.
    """

    cluster: str
    members_before: list[str]
    members_after: list[str]
    concentration: Change
    net: Change
    liq_distance: Change
    liq_sigma: Change
    crossed_up: list[float]
    crossed_down: list[float]


class WhatIfDelta(msgspec.Struct, frozen=True, kw_only=True):
    """What the orders change. ``liq_distance`` is a fraction (0.25: a 25 % adverse move),
    ``liq_distance_pct`` the same in percent, ``min_liq_sigma`` the smallest cluster
    distance in sigmas of its 1-day move. ``alert_changes``: the alert transitions the
    book's thresholds give from the before frame to the after frame, each level taken at
    once (no ``min_frames`` debounce); ``alerts_after``: every alert the after frame
    alone fires."""

    gross: Change
    net: Change
    correlated_exposure: Change
    stress_exposure: Change
    effective_bets: Change
    hhi: Change
    max_cluster_concentration: Change
    liq_distance: Change
    liq_distance_pct: Change
    min_liq_sigma: Change
    var99_1d: Change
    positions: list[PositionChange]
    clusters: list[ClusterChange]
    alert_changes: list[Alert]
    alerts_after: list[Alert]


class WhatIf(msgspec.Struct, frozen=True, kw_only=True):
    """``POST /v1/whatif``'s answer: the book's frame before and after, and the deltas."""

    book_kind: BookKind
    book: str
    timeframe: str
    ts: str
    orders: list[WhatIfOrder]
    before: Frame
    after: Frame
    delta: WhatIfDelta
