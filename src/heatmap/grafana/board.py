"""A dashboard under construction: panels placed on Grafana's 24-column grid row by row,
each with the id given by its author (ids are how Grafana and alert rules point at a
panel, so they never change when panels move), and what each SQL query must return."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as model

GRID_COLUMNS = 24


@dataclass(frozen=True)
class Expectation:
    """The columns a panel's SQL query must return (in order) for the panel to work."""

    dashboard_uid: str
    panel_id: int
    ref_id: str
    columns: tuple[str, ...]


@dataclass
class Board:
    """Panels of one dashboard, laid out left to right, then down."""

    uid: str
    builder: dash.Dashboard
    expectations: list[Expectation] = field(default_factory=list)
    _panels: list[model.Panel | model.RowPanel] = field(default_factory=list)
    _x: int = 0
    _y: int = 0
    _row_height: int = 0

    def row(self, panel_id: int, title: str) -> None:
        """A section header across the full width, below everything placed so far."""
        self._newline()
        self._panels.append(model.RowPanel(
            collapsed=False, title=title, id_val=panel_id, panels=[],
            grid_pos=model.GridPos(h=1, w=GRID_COLUMNS, x=0, y=self._y)))
        self._y += 1

    def add(self, panel: cogbuilder.Builder[model.Panel], panel_id: int, width: int,
            height: int, columns: dict[str, tuple[str, ...]] | None = None) -> None:
        """Place ``panel`` (width and height in grid units) with id ``panel_id``.

        ``columns`` maps a SQL query's refId to the columns it must return.
        """
        if self._x + width > GRID_COLUMNS:
            self._newline()
        built = panel.build()
        built.id_val = panel_id
        built.grid_pos = model.GridPos(h=height, w=width, x=self._x, y=self._y)
        self._panels.append(built)
        self._x += width
        self._row_height = max(self._row_height, height)
        for ref_id, names in (columns or {}).items():
            self.expectations.append(Expectation(self.uid, panel_id, ref_id, names))

    def _newline(self) -> None:
        self._y += self._row_height
        self._x = 0
        self._row_height = 0

    def to_dict(self) -> dict[str, Any]:
        built = self.builder.uid(self.uid).build()
        built.panels = list(self._panels)
        data: dict[str, Any] = json.loads(json.dumps(built, cls=JSONEncoder))
        return data


def render(dashboard: dict[str, Any]) -> str:
    """The committed text of a dashboard: sorted keys, two-space indent, final newline."""
    return json.dumps(dashboard, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
