"""The committed dashboards and alert rules, walked as Grafana walks them: every query of
every panel (repeated panels once per value), variable and annotation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[2]
DASHBOARDS_DIR = ROOT / "dashboards"


@dataclass(frozen=True)
class PanelQuery:
    dashboard_uid: str
    panel_id: int
    title: str
    ref_id: str
    query: dict[str, Any]
    repeat: str | None

    @property
    def label(self) -> str:
        return f"{self.dashboard_uid}/{self.panel_id}/{self.ref_id} {self.title}"


def dashboards() -> dict[str, dict[str, Any]]:
    found = {}
    for path in sorted(DASHBOARDS_DIR.glob("*.json")):
        data = json.loads(path.read_text())
        found[data["uid"]] = data
    return found


def panel_queries(dashboard: dict[str, Any]) -> Iterator[PanelQuery]:
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield PanelQuery(dashboard["uid"], panel["id"], panel.get("title", ""),
                             target["refId"], target, panel.get("repeat"))


def variables(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = dashboard["templating"].get("list", [])
    return listed


def annotation_queries(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [a["target"] for a in dashboard["annotations"].get("list", [])]
