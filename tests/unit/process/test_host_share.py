"""Engines sharing the desks: each frames its own books, over the whole input, and
together they emit what one engine emits."""

from __future__ import annotations

import pytest

from heatmap.engine.share import BookShare
from heatmap.process.host import EngineHost, EpochOutput, HostConfig, RawRecord
from heatmap.schema import Frame, encode
from support.dense_streams import KINDS, PARAMS, dense_stream, run_in_fetches

CLAIMED = frozenset({"desk-a", "desk-b"})
HOME = BookShare(desks=frozenset({"desk-a"}), claimed=CLAIMED, home=True)
OTHER = BookShare(desks=frozenset({"desk-b"}), claimed=CLAIMED, home=False)


def _run(seed: int, share: BookShare | None) -> list[EpochOutput]:
    host = EngineHost(HostConfig(params=PARAMS, source_kinds=KINDS, share=share))
    records = dense_stream(seed, desk_moves=False)
    last = max(record.offset for record in records if record.source_index == 0)
    records.append(RawRecord(0, last + 1, None, b'{"symbol": "AAAUSDT", "price": '))
    return run_in_fetches(host, records, seed)


def _frames(outputs: list[EpochOutput]) -> list[Frame]:
    return [frame for output in outputs for frame in output.frames]



@pytest.mark.parametrize("seed", [4, 5])
def test_two_engines_sharing_the_desks_emit_what_one_emits(seed: int) -> None:
    alone, home, other = _run(seed, None), _run(seed, HOME), _run(seed, OTHER)
    every = _frames(alone)
    # desk-b's books (its desk and acct-4) go to the other engine, everything else home,
    # each in the order one engine emits them.
    assert [encode(f) for f in _frames(other)] == [encode(f) for f in every
                                                   if f.desk == "desk-b"]
    assert [encode(f) for f in _frames(home)] == [encode(f) for f in every
                                                  if f.desk != "desk-b"]
    assert {f.account for f in _frames(other)} == {None, "acct-4"}
    assert {f.account for f in _frames(home)} >= {"acct-1", "acct-2", "acct-3"}

    def alerts(outputs: list[EpochOutput]) -> list[bytes]:
        return [encode(alert) for output in outputs for alert in output.alerts]

    assert sorted(alerts(home) + alerts(other)) == sorted(alerts(alone))
    assert alerts(other)  # the other engine judges its books' frames itself
    # What exists once per deployment comes from the home engine alone.
    for kind in ("correlations", "alert_levels", "dead_letters"):
        assert [getattr(o, kind) for o in home] == [getattr(o, kind) for o in alone]
        assert not any(getattr(o, kind) for o in other)
    assert any(o.correlations for o in alone) and any(o.dead_letters for o in alone)
