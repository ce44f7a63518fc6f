"""Every PromQL expression of the dashboards, of the Grafana alert rules and of the
Prometheus rules returns data from a real Prometheus scraping a real ingest service,
processor and sink (child processes on a real Kafka and PostgreSQL); every rule evaluates
without error; ``promtool`` accepts the configuration and passes the rule unit tests."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer

from heatmap.grafana import alerts
from heatmap.grafana.datasources import PROMETHEUS_UID
from heatmap.grafana.pipeline_health import INGEST_JOB, PROCESS_JOB, SINK_JOB
from heatmap.stack.ports import free_port
from heatmap.stack.services import HEAT, HeatService
from support.grafana_dashboards import dashboards, panel_queries
from support.grafana_macros import QueryContext, expand_promql
from support.heat_pipeline import database_env, fresh_topics, prefix_of
from support.heat_services import service_env
from support.waiting import wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[3]
PROMETHEUS_DIR = ROOT / "infra" / "prometheus"
RULES = PROMETHEUS_DIR / "rules" / "heat-pipeline.yml"
SCRAPE_S = 1.0


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: `make bootstrap` installs Debian's prometheus")
    return found


def test_promtool_accepts_the_config_and_passes_the_rule_tests() -> None:
    promtool = tool("promtool")
    for command in (["check", "config", "prometheus.yml"],
                    ["test", "rules", "tests/heat-pipeline.test.yml"]):
        done = subprocess.run([promtool, *command], cwd=PROMETHEUS_DIR, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
    committed = (PROMETHEUS_DIR / "prometheus.yml").read_text()
    for job in (INGEST_JOB, PROCESS_JOB, SINK_JOB):
        assert f"job_name: {job}" in committed


def recording_rules() -> list[tuple[str, str]]:
    """(name, expression) of each recording rule, read from the rules file's lines."""
    lines = RULES.read_text().splitlines()
    found = []
    for index, line in enumerate(lines):
        if line.strip().startswith("- record:"):
            found.append((line.split(":", 1)[1].strip(),
                          lines[index + 1].split("expr:", 1)[1].strip()))
    return found


def dashboard_expressions(context: QueryContext) -> dict[str, str]:
    found = {}
    for dashboard in dashboards().values():
        for query in panel_queries(dashboard):
            if "expr" in query.query:
                found[query.label] = expand_promql(query.query["expr"], context)
    for rule in alerts.api_rules():
        model = rule["data"][0]["model"]
        if rule["data"][0]["datasourceUid"] == PROMETHEUS_UID:
            found[f"grafana rule {rule['uid']}"] = expand_promql(model["expr"], context)
    return found


class Prometheus:
    def __init__(self, folder: Path, targets: dict[str, list[str]]) -> None:
        self.port = free_port()
        config = {
            "global": {"scrape_interval": f"{SCRAPE_S:g}s",
                       "evaluation_interval": f"{SCRAPE_S:g}s"},
            "rule_files": [str(RULES)],
            "scrape_configs": [{"job_name": job, "static_configs": [{"targets": found}]}
                               for job, found in targets.items()],
        }
        path = folder / "prometheus.yml"
        path.write_text(json.dumps(config))  # JSON is YAML
        check = subprocess.run([tool("promtool"), "check", "config", str(path)],
                               capture_output=True, text=True, timeout=60)
        assert check.returncode == 0, check.stdout + check.stderr
        self.log = folder / "prometheus.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [tool("prometheus"), f"--config.file={path}",
                 f"--storage.tsdb.path={folder / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}"],
                stdout=log, stderr=subprocess.STDOUT)

    def get(self, path: str, **params: str) -> Any:
        url = f"http://127.0.0.1:{self.port}{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.loads(response.read())

    def ready(self) -> bool:
        assert self.process.poll() is None, self.log.read_text()[-3000:]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready",
                                        timeout=5) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def query(self, expr: str) -> list[Any]:
        answer = self.get("/api/v1/query", query=expr)
        assert answer["status"] == "success", (expr, answer)
        return list(answer["data"]["result"])

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


@pytest.fixture
def pipeline_metrics(stack, postgresql_migrated, tmp_path: Path) -> Iterator[Prometheus]:
    """Ingest (simulator and OMS stdin), processor and sink running, Prometheus scraping."""
    topics = fresh_topics(stack.kafka_bootstrap)
    ports = {name: free_port() for name in ("simulate", "stdin", "process", "sink")}
    env = service_env(stack.kafka_bootstrap, prefix_of(topics), HEAT_BAR_INTERVAL="5s",
                      HEAT_CHECKPOINT_EVERY_S="2")
    services = [
        HeatService(["ingest", "simulate", "--seed", "7", "--rate", "40"],
                    {**env, "HEAT_METRICS_PORT": str(ports["simulate"])},
                    tmp_path / "simulate.log"),
        HeatService(["process"], {**env, "HEAT_WEB_PORT": str(ports["process"])},
                    tmp_path / "process.log"),
        HeatService(["sink"], {**env, "HEAT_SINK_WEB_PORT": str(ports["sink"]),
                               **database_env(postgresql_migrated)}, tmp_path / "sink.log"),
    ]
    # A desk's OMS on stdin: one line that is not a message, dead-lettered by ingest.
    with open(tmp_path / "stdin.log", "wb") as log:
        oms = subprocess.Popen([*HEAT, "ingest", "positions", "--stdin"], stdin=subprocess.PIPE,
                               stdout=log, stderr=subprocess.STDOUT,
                               env={**env, "HEAT_METRICS_PORT": str(ports["stdin"])})
    assert oms.stdin is not None
    oms.stdin.write(b'{"account": "acct-x", "symbol": "", "ts": "2026-01-01T00:00:00Z", '
                    b'"qty": 1}\n')
    oms.stdin.flush()
    # A record produced past ingest's checks: the processor dead-letters it.
    raw = KafkaProducer(bootstrap_servers=stack.kafka_bootstrap)
    raw.send(topics.prices, key=b"ETHBTC", value=b'{"symbol": "ETHBTC", "price": ')
    raw.close()
    local = "127.0.0.1:{}".format
    prometheus = Prometheus(tmp_path, {
        INGEST_JOB: [local(ports["simulate"]), local(ports["stdin"])],
        PROCESS_JOB: [local(ports["process"])],
        SINK_JOB: [local(ports["sink"])]})
    try:
        wait_until(prometheus.ready, timeout_s=60, interval_s=0.2,
                   message="Prometheus did not become ready")
        yield prometheus
    finally:
        prometheus.stop()
        oms.kill()
        oms.wait(timeout=30)
        for service in services:
            if service.process.poll() is None:
                service.kill()
        if sys.exc_info()[0] is not None:
            for log in sorted(tmp_path.glob("*.log")):
                print(log.name, log.read_text(errors="replace")[-2000:])


def test_every_promql_expression_returns_data(pipeline_metrics: Prometheus) -> None:
    now = datetime.now(UTC)
    context = QueryContext(now - timedelta(minutes=5), now, interval_s=2,
                           scrape_interval_s=SCRAPE_S)
    expressions = dashboard_expressions(context)
    assert len(expressions) >= 20
    recorded = dict(recording_rules())
    expressions.update({f"recording rule {name}": name for name in recorded})
    expressions.update({f"rule expression {name}": expr for name, expr in recorded.items()})

    def empty() -> list[str]:
        return [label for label, expr in expressions.items()
                if not pipeline_metrics.query(expr)]

    missing: list[str] = []

    def all_answer() -> bool:
        missing[:] = empty()
        return not missing

    wait_until(all_answer, timeout_s=150, interval_s=1,
               message=f"no data from: {missing}")
    rules = pipeline_metrics.get("/api/v1/rules")["data"]["groups"]
    evaluated = [rule for group in rules for rule in group["rules"]]
    written = [line for line in RULES.read_text().splitlines()
               if line.strip().startswith(("- record:", "- alert:"))]
    assert len(evaluated) == len(written) >= 20
    assert all(rule["health"] == "ok" for rule in evaluated), \
        [(rule["name"], rule.get("lastError")) for rule in evaluated if rule["health"] != "ok"]
