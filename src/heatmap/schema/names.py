"""Names: symbols, accounts, desks, strategies and sources, and the rule they follow.

Names travel into topic keys, SQL rows and dashboards, and desks name things as they
like: any printable text of any script is a name (letters, marks, numbers,
punctuation, symbols, plain inner spaces), e.g. Binance's `币安人生USDT` or
`o'brien fund`. Refused: characters that cannot be seen or told apart from others --
control (Cc), format (Cf: zero-width and direction marks), surrogate (Cs), private-use
(Co) and unassigned (Cn) code points, line and paragraph separators (Zl, Zp), every
space but U+0020 (no-break, ideographic, ...) -- and a space at either end. Names are
kept verbatim (no case folding or normalisation). Categories come from unicodedata2,
the current Unicode database (the interpreter's own lags by years, which would refuse
every newer emoji as unassigned); message structs check them in ``__post_init__``
(:func:`require_names`), the Meta bounds the length in code points. Symbols share the
bound: real ones are far shorter.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
import unicodedata2 as unicodedata  # type: ignore[import-not-found]  # no stubs

NAME_MAX_CHARS = 128
NAME_RULE = (f"1 to {NAME_MAX_CHARS} printable characters with no space at either end "
             "(no control, format, private-use or unassigned characters, no line breaks "
             "or spaces other than U+0020)")
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=NAME_MAX_CHARS)]
Symbol = Name


# Names already found valid: a stream repeats a few hundred symbols and sources, and a
# set lookup is cheaper than the check. Bounded, so a stream of ever new names
# (accounts, say) stops adding to it instead of growing it without end.
_KNOWN_VALID: set[str] = set()
_KNOWN_VALID_MAX = 100_000


def valid_name(name: str) -> bool:
    """Whether ``name`` is a valid symbol, account, desk, strategy or source name."""
    if name in _KNOWN_VALID:
        return True
    if not 0 < len(name) <= NAME_MAX_CHARS or name[0] == " " or name[-1] == " ":
        return False
    if name.isascii():  # the common case at C speed; ASCII's categories never change
        valid = name.isprintable()
    else:
        valid = all(char == " " or unicodedata.category(char)[0] not in "CZ" for char in name)
    if valid and len(_KNOWN_VALID) < _KNOWN_VALID_MAX:
        _KNOWN_VALID.add(name)
    return valid


def require_names(**names: str | None) -> None:
    """Raise ValueError naming the first field whose name (None: absent) breaks the rule."""
    for field, name in names.items():
        if name is not None and not valid_name(name):
            raise ValueError(f"{field} must be {NAME_RULE}")
