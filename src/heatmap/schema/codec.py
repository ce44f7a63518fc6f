"""JSON bytes in and out: input records are decoded and validated, any message encoded.

A record either decodes into its Struct or is refused with the reason
(:class:`~heatmap.schema.errors.InvalidMessageError`).
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from heatmap.schema.errors import InvalidMessageError
from heatmap.schema.inputs import Account, Position, Price

InputMessage = TypeVar("InputMessage", Price, Position, Account)

_decoders: dict[type[msgspec.Struct], msgspec.json.Decoder[Any]] = {
    kind: msgspec.json.Decoder(kind) for kind in (Price, Position, Account)
}
_encoder = msgspec.json.Encoder()


def decode(kind: type[InputMessage], payload: bytes) -> InputMessage:
    """Decode and validate one input record of ``kind``; raises InvalidMessageError with
    the reason."""
    try:
        message: InputMessage = _decoders[kind].decode(payload)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise InvalidMessageError(str(error)) from error
    except UnicodeDecodeError as error:
        raise InvalidMessageError("not valid UTF-8") from error
    if message.ts.tzinfo is None:
        raise InvalidMessageError("ts must carry a UTC offset (RFC 3339, e.g. ...Z)")
    return message


def encode(message: msgspec.Struct) -> bytes:
    """JSON bytes of any message of :mod:`heatmap.schema`."""
    return _encoder.encode(message)
