"""The committed dashboards and alert rules are what the generator makes, and hold
together: unique ids, known data sources, no overlapping panels, no undefined variable,
string variables quoted by Grafana."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from heatmap.grafana import alerts, generate
from heatmap.grafana.datasources import KNOWN_UIDS

ROOT = Path(__file__).parents[3]
DASHBOARDS = sorted((ROOT / "dashboards").glob("*.json"))
GLOBAL_VARIABLES = {"__interval", "__interval_ms", "__rate_interval", "__range",
                    "__range_s", "__range_ms"}
VARIABLE = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\$(\w+)")


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def test_committed_files_match_the_generator() -> None:
    assert generate.differences(ROOT) == [], "run `heat grafana dashboards` and commit"


def test_the_three_dashboards_have_stable_uids() -> None:
    assert [load(p)["uid"] for p in DASHBOARDS] == ["heat-history", "heat-live",
                                                    "heat-pipeline"]


def datasource_uids(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        source = node.get("datasource")
        if isinstance(source, dict) and "uid" in source:
            yield source["uid"]
        if "datasourceUid" in node:
            yield node["datasourceUid"]
        for value in node.values():
            yield from datasource_uids(value)
    elif isinstance(node, list):
        for value in node:
            yield from datasource_uids(value)


def queries_text(dashboard: dict[str, Any]) -> Iterator[str]:
    for panel in dashboard["panels"]:
        yield panel.get("title", "")
        for target in panel.get("targets", []):
            yield target.get("rawSql") or target.get("expr") or ""
    for variable in dashboard["templating"].get("list", []):
        if isinstance(variable.get("query"), str) and variable["type"] == "query":
            yield variable["query"]
    for annotation in dashboard["annotations"].get("list", []):
        yield annotation["target"].get("rawSql", "")


@pytest.mark.parametrize("path", DASHBOARDS, ids=[p.stem for p in DASHBOARDS])
def test_dashboard_structure(path: Path) -> None:
    dashboard = load(path)
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    assert set(datasource_uids(dashboard)) <= KNOWN_UIDS
    cells: dict[tuple[int, int], int] = {}
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"panels {cells[(x, y)]} and {panel['id']} overlap"
                cells[(x, y)] = panel["id"]
    defined = {v["name"] for v in dashboard["templating"].get("list", [])} | GLOBAL_VARIABLES
    for text in queries_text(dashboard):
        for braced, fmt, plain in VARIABLE.findall(text):
            name = braced or plain
            if name.startswith("__") and name not in GLOBAL_VARIABLES:
                continue  # a macro call such as $__timeFilter(ts)
            assert name in defined, f"{name} is used but not defined in {path.name}"
            if "SELECT" in text and name in defined - GLOBAL_VARIABLES:
                assert fmt == "sqlstring", f"${name} reaches SQL unquoted: {text}"


def test_every_sql_target_has_its_expected_columns_and_no_more() -> None:
    expected = {(e.dashboard_uid, e.panel_id, e.ref_id)
                for board in generate.boards() for e in board.expectations}
    found = {(load(p)["uid"], panel["id"], target["refId"])
             for p in DASHBOARDS for panel in load(p)["panels"]
             for target in panel.get("targets", []) if "rawSql" in target}
    assert found == expected


def test_alert_rules() -> None:
    rules = alerts.api_rules()
    assert len({rule["uid"] for rule in rules}) == len(rules)
    assert {spec.group for spec in alerts.SPECS} == {alerts.RISK_GROUP, alerts.PIPELINE_GROUP}
    kinds = " ".join(rule["uid"] for rule in rules)
    for kind in ("concentration", "stale", "regime-break", "liquidation", "pipeline"):
        assert kind in kinds
    for rule in rules:
        assert set(datasource_uids(rule)) <= KNOWN_UIDS
        assert rule["condition"] in {query["refId"] for query in rule["data"]}
        source = rule["data"][0]["model"]
        if "rawSql" in source:
            assert source["format"] == "time_series"
            assert "ORDER BY 1" in source["rawSql"]
    file_rules = [r for g in alerts.provisioning_file()["groups"] for r in g["rules"]]
    assert [r["uid"] for r in file_rules] == [r["uid"] for r in rules]


def test_generating_into_an_empty_tree_then_checking(tmp_path: Path) -> None:
    (tmp_path / "dashboards").mkdir()
    (tmp_path / "dashboards" / "retired.json").write_text("{}")
    written = generate.write(tmp_path)
    assert Path("dashboards/retired.json") in written
    assert not (tmp_path / "dashboards" / "retired.json").exists()
    assert generate.differences(tmp_path) == []
    assert generate.write(tmp_path) == []
