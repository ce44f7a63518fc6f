"""Which worker of a Faust app holds the engine's lease, and its web URL.

The lease is partition 0 of Faust's leader topic (``{app id}-__assignor-__leader``).
Faust's partition assignor shares, with every member's assignment, each member's
canonical URL and the non-table partitions it was given; the member given the
leader partition holds the lease.
"""

from __future__ import annotations

from typing import Any

import faust


def leader_topic(app: faust.App) -> str:
    return f"{app.conf.id}-__assignor-__leader"


def lease_holder_url(app: faust.App) -> str | None:
    """The canonical URL of the worker holding the leader partition, as of the last
    assignment; None when unknown (before the first assignment)."""
    topic = leader_topic(app)
    assignor: Any = app.assignor
    distribution = assignor.external_topics_metadata()
    for url, topics in distribution.items():
        if 0 in topics.get(topic, ()):
            return str(url)
    return None
