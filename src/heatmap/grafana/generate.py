"""The generated files: one JSON per dashboard in ``dashboards/`` and the alert rules'
provisioning file, written or compared with what is committed."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from heatmap.grafana import alerts, history, live_heat, pipeline_health
from heatmap.grafana.board import Board, render

DASHBOARDS_DIR = Path("dashboards")
ALERT_RULES_FILE = Path("infra/grafana/provisioning/alerting/heat-rules.json")

BUILDERS: list[Callable[[], Board]] = [live_heat.build, history.build, pipeline_health.build]


def boards() -> list[Board]:
    return [build() for build in BUILDERS]


def generated_files() -> dict[Path, str]:
    """Every generated file's path (relative to the repository root) and text."""
    files = {DASHBOARDS_DIR / f"{board.uid}.json": render(board.to_dict())
             for board in boards()}
    files[ALERT_RULES_FILE] = json.dumps(alerts.provisioning_file(), indent=2,
                                         ensure_ascii=False) + "\n"
    return files


def differences(root: Path) -> list[Path]:
    """Generated files whose committed text under ``root`` differs (or is missing), and
    dashboard files no generator makes any more."""
    files = generated_files()
    changed = [path for path, text in files.items()
               if not (root / path).is_file() or (root / path).read_text() != text]
    extra = [path.relative_to(root) for path in sorted((root / DASHBOARDS_DIR).glob("*.json"))
             if path.relative_to(root) not in files]
    return changed + extra


def write(root: Path) -> list[Path]:
    """Write every generated file under ``root`` and remove dashboard files no generator
    makes; the paths that changed."""
    files = generated_files()
    changed = differences(root)
    for path in changed:
        target = root / path
        if path in files:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(files[path])
        else:
            target.unlink()
    return changed
