"""``heat topics ensure`` without a broker: one line on stderr and an exit code."""

from __future__ import annotations

import pytest

from heatmap.cli.errors import EXIT_FAILURE, EXIT_USAGE
from heatmap.cli.main import app
from heatmap.stack.ports import free_port


def _run(capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        app(["topics", "ensure"])
    captured = capsys.readouterr()
    return int(exited.value.code or 0), captured.out, captured.err


def test_unreachable_kafka_is_one_line(capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEAT_KAFKA_BOOTSTRAP", f"127.0.0.1:{free_port()}")
    monkeypatch.setenv("HEAT_CONNECT_TIMEOUT_S", "2")
    code, out, err = _run(capsys)
    assert (code, out) == (EXIT_FAILURE, "")
    assert err.count("\n") == 1
    assert err.startswith("error: cannot reach Kafka at 127.0.0.1:")


def test_a_replication_setting_that_cannot_work_is_one_line(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEAT_TOPIC_REPLICATION_FACTOR", "1")
    monkeypatch.setenv("HEAT_TOPIC_MIN_INSYNC_REPLICAS", "2")
    code, _, err = _run(capsys)
    assert code == EXIT_USAGE
    assert err.count("\n") == 1
    assert err.startswith("error: setting HEAT_TOPIC_MIN_INSYNC_REPLICAS is invalid")
    assert "2 exceeds the replication factor 1" in err
