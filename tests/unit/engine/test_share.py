"""An engine's share of the books when several engines share the desks."""

from __future__ import annotations

import pytest

from heatmap.engine.share import BookShare

CLAIMED = frozenset({"desk-a", "desk-b"})
HOME = BookShare(desks=frozenset({"desk-a"}), claimed=CLAIMED, home=True)
OTHER = BookShare(desks=frozenset({"desk-b"}), claimed=CLAIMED, home=False)


def test_a_share_frames_its_desks_and_the_home_engine_the_rest() -> None:
    assert HOME.frames("desk-a") and not HOME.frames("desk-b")
    assert HOME.frames(None) and HOME.frames("desk-z")  # no desk, a desk nobody claims
    assert OTHER.frames("desk-b") and not OTHER.frames(None) and not OTHER.frames("desk-z")
    with pytest.raises(ValueError, match="among the claimed"):
        BookShare(desks=frozenset({"desk-c"}), claimed=CLAIMED, home=False)
