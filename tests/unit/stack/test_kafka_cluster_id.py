"""KRaft cluster ids: made like Kafka's own, never read as a command-line option."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator

from heatmap.stack.kafka import kafka_uuid

# URL-safe base64 of 16 bytes, unpadded: 22 characters, the last one from a reduced set.
KAFKA_UUID = re.compile(r"\A[A-Za-z0-9_][A-Za-z0-9_-]{20}[AQgw]\Z")


def draws(*values: bytes) -> Iterator[bytes]:
    yield from values


def test_an_id_starting_with_a_dash_is_drawn_again() -> None:
    dash_first = b"\xf8" + bytes(range(1, 16))  # base64 index 62 ('-') in the first place
    assert base64.urlsafe_b64encode(dash_first).decode().startswith("-")
    fine = bytes(range(16))
    source = draws(dash_first, fine)

    cluster_id = kafka_uuid(lambda: next(source))

    assert cluster_id == base64.urlsafe_b64encode(fine).decode().rstrip("=")


def test_reserved_ids_are_drawn_again() -> None:
    zero, metadata_topic = bytes(16), bytes(15) + b"\x01"
    fine = b"\x01" * 16
    source = draws(zero, metadata_topic, fine)

    assert kafka_uuid(lambda: next(source)) == base64.urlsafe_b64encode(fine).decode()[:22]


def test_random_ids_have_kafkas_shape_and_never_a_leading_dash() -> None:
    ids = [kafka_uuid() for _ in range(5_000)]  # a leading '-' would appear ~78 times

    assert all(KAFKA_UUID.match(cluster_id) for cluster_id in ids)
    assert len(set(ids)) == len(ids)
