"""The versioned msgpack envelope: a document comes back as written; anything else is
refused with its reason, another version as such."""

from __future__ import annotations

import msgspec
import pytest

from heatmap.engine.envelope import Envelope


class _Note(msgspec.Struct, frozen=True, kw_only=True):
    format: str
    format_version: int
    text: str
    values: list[float]


class _NoteError(ValueError):
    pass


ENVELOPE = Envelope(_Note, format="tests.note", version=3, error=_NoteError, name="note",
                    version_name="note version", advice="write it again")


def _note(**header: object) -> bytes:
    return msgspec.msgpack.encode({"format": "tests.note", "format_version": 3, **header})


def test_a_document_comes_back_as_written() -> None:
    note = _Note(format="tests.note", format_version=3, text="héllo", values=[0.1, -0.0])
    blob = ENVELOPE.encode(note)
    assert blob == msgspec.msgpack.encode(note)
    assert ENVELOPE.decode(blob) == note


@pytest.mark.parametrize(("blob", "reason"), [
    (b"", "not a note (Input data was truncated)"),
    (b"\x93\x01\x02\x03", "not a note (Expected `object`, got `array`)"),
    (msgspec.msgpack.encode({"text": "x"}), "not a note (Object missing required field"),
    (_note(format=7), "not a note (Expected `str`, got `int` - at `$.format`)"),
    (_note(format="pickle"), "not a note (format 'pickle')"),
    (_note(format_version=4), "note version 4 is not the supported version 3: write it again"),
    (_note(text="x"), "corrupt note (Object missing required field `values`)"),
    (_note(text="x", values="y"), "corrupt note (Expected `array`, got `str` - at `$.values`)"),
])
def test_anything_else_is_refused_with_its_reason(blob: bytes, reason: str) -> None:
    with pytest.raises(_NoteError) as refused:
        ENVELOPE.decode(blob)
    assert str(refused.value).startswith(reason)


def test_the_article_follows_the_name() -> None:
    envelope = Envelope(_Note, format="tests.note", version=3, error=_NoteError,
                        name="engine note", version_name="v", advice="a")
    with pytest.raises(_NoteError, match=r"^not an engine note "):
        envelope.decode(b"")


def test_a_document_must_start_with_its_format_and_version() -> None:
    class Headless(msgspec.Struct):
        text: str
        format: str
        format_version: int

    with pytest.raises(TypeError, match="must start with format and format_version"):
        Envelope(Headless, format="x", version=1, error=ValueError, name="x",
                 version_name="x", advice="x")
