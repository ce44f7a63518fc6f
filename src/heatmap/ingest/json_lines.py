"""Positions and account terms as JSON lines (a desk's OMS on stdin), one line at a time.

Pure: bytes in, a message or a rejection out. Reading stdin belongs to
:func:`heatmap.ingest.pipeline.interruptible_lines`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import msgspec

from heatmap.ingest.rejected import Message, Rejected
from heatmap.schema import Account, InvalidMessageError, Position, decode

_decoder = msgspec.json.Decoder()


def parse_line(raw: bytes, positions_topic: str,
               accounts_topic: str) -> Message | Rejected | None:
    """One line as read, its newline included or not.

    An object with ``equity`` is an account update, one with ``qty`` a
    position; anything else, or anything invalid, is rejected with the line's
    bytes as sent (without its ``\\n``) on the topic it was headed for
    (positions when that is unknown). A blank line is None: nothing was sent.
    """
    line = raw.strip()
    if not line:
        return None
    original = raw.rstrip(b"\n")  # what a dead letter keeps: the line as sent
    try:
        shape = _decoder.decode(line)
    except UnicodeDecodeError:
        return Rejected(positions_topic, "not valid UTF-8", original)
    except msgspec.DecodeError as error:
        return Rejected(positions_topic, f"not JSON: {error}", original)
    if not isinstance(shape, dict) or ("qty" in shape) == ("equity" in shape):
        return Rejected(positions_topic, "neither a position (qty) nor an account (equity)",
                        original)
    try:
        return decode(Position, line) if "qty" in shape else decode(Account, line)
    except InvalidMessageError as error:
        topic = positions_topic if "qty" in shape else accounts_topic
        return Rejected(topic, str(error), original)


def json_lines(lines: Iterable[bytes], positions_topic: str,
               accounts_topic: str) -> Iterator[Message | Rejected]:
    """Every non-blank line of ``lines`` as a message or a rejection (:func:`parse_line`)."""
    for raw in lines:
        parsed = parse_line(raw, positions_topic, accounts_topic)
        if parsed is not None:
            yield parsed
