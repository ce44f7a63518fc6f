"""Bearer tokens for tests of the bot API: a tokens file written by the product's own
store, and the tokens it holds by name."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from heatmap.web.tokens import Scope, create_token

# name: (desks or None for all, scopes)
STANDARD: dict[str, tuple[list[str] | None, tuple[Scope, ...]]] = {
    "all": (None, ("read", "whatif")),       # every desk, both scopes
    "reader": (None, ("read",)),             # every desk, no what-if
    "d1": (["d1"], ("read", "whatif")),      # the sample books' desk
    "elsewhere": (["d9"], ("read", "whatif")),  # a desk no sample book is on
}


@dataclass(frozen=True)
class ApiTokens:
    """A tokens file and the tokens it holds, by name."""

    path: Path
    tokens: dict[str, str]

    def __getitem__(self, name: str) -> str:
        return self.tokens[name]

    def header(self, name: str = "all") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}


def api_tokens(folder: Path, wanted: dict[str, tuple[list[str] | None, tuple[Scope, ...]]]
               | None = None) -> ApiTokens:
    """A tokens file in ``folder`` with ``wanted`` tokens (default: :data:`STANDARD`)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "api-tokens.json"
    tokens = {name: create_token(path, name, desks, scopes)
              for name, (desks, scopes) in (wanted or STANDARD).items()}
    return ApiTokens(path, tokens)
