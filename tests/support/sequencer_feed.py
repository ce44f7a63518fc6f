"""Feeding a sequencer many records at once, for the sequencer's and the epochs' tests."""

from __future__ import annotations

from collections.abc import Iterable

from heatmap.process.sequencer import Rejection, Sequencer, SourceRecord


def add_all(sequencer: Sequencer, records: Iterable[SourceRecord],
            arrived: float = 0.0) -> list[Rejection]:
    """:meth:`Sequencer.add` every record (all arrived at ``arrived``); returns the
    rejections, in feeding order."""
    return [rejection for record in records
            if (rejection := sequencer.add(record, arrived)) is not None]
