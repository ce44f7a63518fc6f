"""Who may call the bot API, and how much: bearer tokens, stream tickets and limits.

- :meth:`Access.authenticate`: the ``Authorization: Bearer`` token of a request, found in
  the :class:`heatmap.web.tokens.TokenStore` (401 otherwise); :meth:`Access.require`
  checks a scope (403).
- Stream tickets: a browser's ``EventSource`` cannot send a header, and a long-lived
  token must never travel in a URL (access logs, history, referrers keep URLs). A page
  trades its token for a ticket (``POST /v1/stream/ticket``) and opens the stream with
  ``?ticket=``: random, single use, valid for ``ticket_ttl_s``, known only to the
  worker that issued it.
- Limits per token: at most ``streams_per_token`` open streams (429), and what-ifs
  through a token bucket (429 with ``Retry-After``).

Everything here runs on the event loop: no locks.
"""

from __future__ import annotations

import contextlib
import math
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from heatmap.web.errors import ApiError
from heatmap.web.tokens import Scope, TokenRecord, TokenStore, token_hash

REALM = 'Bearer realm="heat"'
TOKEN_MAX_CHARS = 256  # real tokens are 48; anything far longer is not worth hashing
TICKETS_PER_TOKEN = 16  # outstanding tickets kept per token (the oldest go first)


@dataclass(frozen=True)
class Limits:
    """Per-token limits (see :class:`heatmap.web.settings.ApiSettings` for each)."""

    streams_per_token: int = 4
    whatif_rate_per_s: float = 50.0
    whatif_burst: int = 100
    stream_stall_timeout_s: float = 10.0
    ticket_ttl_s: float = 30.0


@dataclass
class TokenBucket:
    """``capacity`` requests at once, refilled at ``rate_per_s``."""

    rate_per_s: float
    capacity: float
    level: float
    updated_s: float

    def take(self, now_s: float) -> float:
        """Take one request: 0.0 when allowed, else the seconds until one is."""
        self.level = min(self.capacity, self.level + (now_s - self.updated_s) * self.rate_per_s)
        self.updated_s = now_s
        if self.level >= 1.0:
            self.level -= 1.0
            return 0.0
        return (1.0 - self.level) / self.rate_per_s


@dataclass
class _Ticket:
    record: TokenRecord
    expires_s: float


def unauthorized(reason: str, invalid: bool = False) -> ApiError:
    """401 with the challenge (RFC 6750): ``invalid_token`` when one was given."""
    challenge = REALM + (', error="invalid_token"' if invalid else "")
    return ApiError(401, reason, {"WWW-Authenticate": challenge})


@dataclass
class Access:
    """The access checks of one worker's API.

    Parameters
    ----------
    store : TokenStore or None
        The accepted tokens; None (no tokens file configured): every request is 401.
    limits : Limits
    clock : callable
        Monotonic seconds (tests pass their own).
    """

    store: TokenStore | None
    limits: Limits = field(default_factory=Limits)
    clock: Callable[[], float] = time.monotonic
    _tickets: dict[str, _Ticket] = field(default_factory=dict)
    _streams: dict[str, int] = field(default_factory=dict)
    _buckets: dict[str, TokenBucket] = field(default_factory=dict)

    # -- who ----------------------------------------------------------------------------

    def authenticate(self, authorization: str | None) -> TokenRecord:
        """The token record of an ``Authorization`` header; ApiError 401 otherwise."""
        if self.store is None:
            raise unauthorized("this server accepts no token: its API tokens file is not "
                               "configured (HEAT_API_TOKENS_FILE)")
        if not authorization:
            raise unauthorized("an API token is required: Authorization: Bearer <token>")
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise unauthorized("an API token is required: Authorization: Bearer <token>",
                               invalid=True)
        record = self.store.find(token) if len(token) <= TOKEN_MAX_CHARS else None
        if record is None:
            raise unauthorized("invalid or revoked API token", invalid=True)
        return record

    @staticmethod
    def require(record: TokenRecord, scope: Scope) -> None:
        """ApiError 403 unless the token has ``scope``."""
        if not record.allows(scope):
            raise ApiError(403, f"this token lacks the {scope!r} scope", {
                "WWW-Authenticate": f'{REALM}, error="insufficient_scope", scope="{scope}"'})

    def current(self, record: TokenRecord) -> bool:
        """Whether ``record`` is still accepted (a long stream ends when it is revoked)."""
        return self.store is not None and self.store.current(record)

    # -- stream tickets -----------------------------------------------------------------

    def issue_ticket(self, record: TokenRecord) -> str:
        """A single-use ticket standing for ``record`` for ``ticket_ttl_s``."""
        now = self.clock()
        for key in [key for key, ticket in self._tickets.items() if ticket.expires_s <= now]:
            del self._tickets[key]
        mine = [key for key, ticket in self._tickets.items() if ticket.record == record]
        for key in mine[:max(0, len(mine) - TICKETS_PER_TOKEN + 1)]:
            del self._tickets[key]  # dicts keep insertion order: the oldest first
        ticket = secrets.token_urlsafe(32)
        # Kept by hash: the map never holds a usable ticket.
        self._tickets[token_hash(ticket)] = _Ticket(record, now + self.limits.ticket_ttl_s)
        return ticket

    def redeem_ticket(self, ticket: str) -> TokenRecord:
        """The token a ticket stands for, the ticket used up; ApiError 401 when it is
        unknown, used or expired, or its token was revoked meanwhile."""
        found = self._tickets.pop(token_hash(ticket), None) \
            if len(ticket) <= TOKEN_MAX_CHARS else None
        if found is None or found.expires_s <= self.clock() or not self.current(found.record):
            raise unauthorized("unknown, used or expired stream ticket: ask "
                               "POST /v1/stream/ticket for a new one", invalid=True)
        return found.record

    # -- limits -------------------------------------------------------------------------

    @contextlib.contextmanager
    def stream_slot(self, record: TokenRecord) -> Iterator[None]:
        """Hold one of the token's stream slots; ApiError 429 when all are taken."""
        key = record.sha256
        held = self._streams.get(key, 0)
        if held >= self.limits.streams_per_token:
            raise ApiError(429, f"this token has {held} streams open, the most it may; "
                                "close one first", {"Retry-After": "1"})
        self._streams[key] = held + 1
        try:
            yield
        finally:
            left = self._streams[key] - 1
            if left:
                self._streams[key] = left
            else:
                del self._streams[key]

    def streams(self, record: TokenRecord) -> int:
        return self._streams.get(record.sha256, 0)

    def take_what_if(self, record: TokenRecord) -> None:
        """Count one what-if of the token; ApiError 429 with ``Retry-After`` past its rate."""
        now = self.clock()
        limits = self.limits
        bucket = self._buckets.get(record.sha256)
        if bucket is None:
            bucket = self._buckets[record.sha256] = TokenBucket(
                limits.whatif_rate_per_s, float(limits.whatif_burst),
                float(limits.whatif_burst), now)
        wait_s = bucket.take(now)
        if wait_s > 0:
            raise ApiError(429, f"more than {limits.whatif_rate_per_s:g} what-ifs per second "
                                f"(bursts of {limits.whatif_burst}) with this token; retry "
                                f"in {wait_s:.2f} s",
                           {"Retry-After": str(max(1, math.ceil(wait_s)))})
