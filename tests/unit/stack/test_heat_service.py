"""A ``heat`` child: its log, where its web server is, and its endpoints read back (served
here by a stand-in HTTP server; the child itself only prints its help)."""

from __future__ import annotations

import json
from pathlib import Path

from pytest_httpserver import HTTPServer

from heatmap.stack.services import HeatService, child_env

METRICS = """\
# TYPE heat_process_events_total counter
heat_process_events_total 42.0
# TYPE heat_sink_rows_total counter
heat_sink_rows_total{table="frames"} 7.0
# TYPE heat_process_commit_seconds histogram
heat_process_commit_seconds_bucket{le="0.1"} 3.0
heat_process_commit_seconds_bucket{le="+Inf"} 5.0
heat_process_commit_seconds_bucket{le="0.01"} 1.0
heat_process_commit_seconds_count 5.0
heat_process_commit_seconds_sum 0.4
"""


def test_a_finished_child_leaves_its_log_and_exit_code(tmp_path: Path) -> None:
    service = HeatService(["--help"], child_env(), tmp_path / "help.log")
    assert service.process.wait(timeout=60) == 0
    assert service.name == "help"
    assert "Usage:" in service.log_text()
    assert service.url == ""  # no port given, none logged
    assert service.health_response() == (0, {})
    assert service.stop() == 0
    assert service.ended_on_purpose


def test_the_url_is_the_given_port_or_the_last_one_logged(tmp_path: Path) -> None:
    given = HeatService(["--help"], child_env(), tmp_path / "given.log", "HEAT_WEB_PORT",
                        port=9999)
    assert given.url == "http://127.0.0.1:9999"
    logged = HeatService(["--help"], child_env(), tmp_path / "logged.log")
    logged.process.wait(timeout=60)
    with open(logged.log_path, "a") as log:
        for port in (9401, 9402):
            log.write(json.dumps({"event": "web server started",
                                  "url": f"http://127.0.0.1:{port}"}) + "\n")
    assert logged.url == "http://127.0.0.1:9402"
    given.stop()


def test_health_and_metrics_are_read_from_its_web_server(tmp_path: Path,
                                                         httpserver: HTTPServer) -> None:
    httpserver.expect_request("/health").respond_with_json({"phase": "recovering"},
                                                           status=503)
    httpserver.expect_request("/metrics").respond_with_data(METRICS)
    service = HeatService(["--help"], child_env(), tmp_path / "process.log", "HEAT_WEB_PORT",
                          port=httpserver.port)
    assert service.health_response() == (503, {"phase": "recovering"})
    assert service.health() == {"phase": "recovering"}
    metrics = service.metrics()
    assert metrics["heat_process_events_total"] == 42.0
    assert metrics['heat_sink_rows_total{table="frames"}'] == 7.0
    assert service.histogram("heat_process_commit_seconds") == [
        (0.01, 1.0), (0.1, 3.0), (float("inf"), 5.0)]
    assert service.wait_for(lambda s: s.health().get("phase") == "recovering", 10,
                            "a recovering processor") > 0
    service.kill()
    assert not service.running()
