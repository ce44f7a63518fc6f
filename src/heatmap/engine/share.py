"""Which books an engine frames when several engines share the desks.

Every engine applies every price, position and account term (the market statistics
and the books stay whole, so a frame does not depend on which engine made it); each
frames only its share: the desks named for it, and their accounts. The home engine
also frames every book no engine names (accounts without a desk, desks not listed)
and publishes what exists once per deployment (correlation snapshots, thresholds).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BookShare:
    """One engine's share of the books.

    Attributes
    ----------
    desks : frozenset of str
        The desks this engine frames, with their accounts.
    claimed : frozenset of str
        Every desk some engine of the deployment frames (``desks`` included).
    home : bool
        Whether this engine frames the books no engine claims, and publishes the
        deployment-wide outputs.
    """

    desks: frozenset[str]
    claimed: frozenset[str]
    home: bool

    def __post_init__(self) -> None:
        if not self.desks <= self.claimed:
            raise ValueError("an engine's desks are among the claimed desks")

    def frames(self, desk: str | None) -> bool:
        """Whether this engine frames the book of ``desk`` (None: an account without a
        desk; an account's book goes with its desk)."""
        if desk is None or desk not in self.claimed:
            return self.home
        return desk in self.desks
