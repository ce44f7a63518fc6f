"""Versioned msgpack documents: what a reader checks before it trusts the bytes.

A document is one msgpack map (a msgspec Struct) whose first two fields are
``format``, the name of what it is (``"heatmap.engine.checkpoint"``), and
``format_version``. A reader decodes those two alone first (other fields are
ignored), refuses another format and every version but its own, and only then
decodes the whole document, so a document of another version is refused as such
rather than as a corrupt one. The engine's checkpoints and the process host's
checkpoints (which carry an engine checkpoint) are both written this way.
"""

from __future__ import annotations

from typing import Generic, TypeVar

import msgspec

Document = TypeVar("Document", bound=msgspec.Struct)

_ENCODER = msgspec.msgpack.Encoder()


class _Header(msgspec.Struct):
    """The fields read before anything else (unknown fields are ignored)."""

    format: str
    format_version: int


class Envelope(Generic[Document]):
    """Writes documents of one Struct type and reads them back, refusing anything else.

    Parameters
    ----------
    document : type
        The document's Struct; its first fields are ``format: str`` and
        ``format_version: int``, set by whoever builds one to ``format`` and ``version``.
    format : str
        The name every document of this kind carries.
    version : int
        The version this code writes, and the only one it reads.
    error : type of Exception
        What a refusal raises, with the reason as its message.
    name : str
        What refusals call such a document, e.g. ``"engine checkpoint"``.
    version_name : str
        What the refusal of another version calls the version, e.g.
        ``"checkpoint format version"``.
    advice : str
        The end of that refusal: what to do instead, e.g. ``"start afresh"``.
    """

    def __init__(self, document: type[Document], *, format: str, version: int,
                 error: type[Exception], name: str, version_name: str, advice: str) -> None:
        if document.__struct_fields__[:2] != ("format", "format_version"):
            raise TypeError(f"{document.__name__} must start with format and format_version")
        self.format = format
        self.version = version
        self.error = error
        self.name = name
        self.version_name = version_name
        self.advice = advice
        self._decoder = msgspec.msgpack.Decoder(document)

    def encode(self, document: Document) -> bytes:
        """The msgpack bytes of ``document`` (fields in declaration order, floats as float64)."""
        return _ENCODER.encode(document)

    def decode(self, blob: bytes) -> Document:
        """The document in ``blob``.

        Raises
        ------
        error
            ``blob`` is not a msgpack map with a format and a version, is of another
            format or version, or does not decode into the document's Struct.
        """
        article = "an" if self.name[0] in "aeiou" else "a"
        try:
            # ValidationError (a field of the wrong type) is a DecodeError too.
            header = msgspec.msgpack.decode(blob, type=_Header)
        except msgspec.DecodeError as error:
            raise self.error(f"not {article} {self.name} ({error})") from error
        if header.format != self.format:
            raise self.error(f"not {article} {self.name} (format {header.format!r})")
        if header.format_version != self.version:
            raise self.error(f"{self.version_name} {header.format_version} is not the "
                             f"supported version {self.version}: {self.advice}")
        try:
            return self._decoder.decode(blob)
        except msgspec.DecodeError as error:
            raise self.error(f"corrupt {self.name} ({error})") from error
