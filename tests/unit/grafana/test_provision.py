"""``heat grafana provision`` against a local HTTP server that answers the Grafana API
endpoints the provisioner calls, keeping what it is sent: the first run creates the
folder, data sources, dashboards and alert rules; a second run only reads; a change made
in Grafana is put back."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from typer.testing import CliRunner
from werkzeug import Request, Response

from heatmap.cli.errors import CommandFailed
from heatmap.cli.main import app
from heatmap.grafana import alerts, generate
from heatmap.grafana.datasources import POSTGRES_UID, PROMETHEUS_UID

TOKEN = "glsa_test-token"


@dataclass
class FakeGrafana:
    """The state of one Grafana organisation, as its API shows it."""

    auth: str
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    datasources: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    rules: dict[str, dict[str, Any]] = field(default_factory=dict)
    intervals: dict[tuple[str, str], int] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)

    def handle(self, request: Request) -> Response:
        assert request.headers.get("Authorization") == self.auth
        self.calls.append((request.method, request.path))
        body = request.get_json(silent=True)
        for pattern, method, handler in self.routes():
            match = re.fullmatch(pattern, request.path)
            if match and request.method == method:
                status, answer = handler(body, *match.groups())
                return Response(json.dumps(answer), status, content_type="application/json")
        return Response(json.dumps({"message": "no such endpoint"}), 404,
                        content_type="application/json")

    def routes(self) -> list[tuple[str, str, Any]]:
        return [
            (r"/api/folders/([^/]+)", "GET", lambda _, uid: self._find(self.folders, uid)),
            (r"/api/folders", "POST", lambda body: self._store(self.folders, body["uid"], body)),
            (r"/api/folders/([^/]+)", "PUT",
             lambda body, uid: self._store(self.folders, uid, {**self.folders[uid], **body})),
            (r"/api/datasources/uid/([^/]+)", "GET", self._get_datasource),
            (r"/api/datasources", "POST",
             lambda body: self._store(self.datasources, body["uid"], {**body, "id": 7})),
            (r"/api/datasources/uid/([^/]+)", "PUT",
             lambda body, uid: self._store(self.datasources, uid, {**body, "id": 7})),
            (r"/api/dashboards/uid/([^/]+)", "GET",
             lambda _, uid: self._find(self.dashboards, uid)),
            (r"/api/dashboards/db", "POST", self._save_dashboard),
            (r"/api/v1/provisioning/alert-rules/([^/]+)", "GET",
             lambda _, uid: self._find(self.rules, uid)),
            (r"/api/v1/provisioning/alert-rules", "POST",
             lambda body: self._store(self.rules, body["uid"], {**body, "id": 3})),
            (r"/api/v1/provisioning/alert-rules/([^/]+)", "PUT",
             lambda body, uid: self._store(self.rules, uid, {**body, "id": 3})),
            (r"/api/v1/provisioning/folder/([^/]+)/rule-groups/([^/]+)", "GET", self._group),
            (r"/api/v1/provisioning/folder/([^/]+)/rule-groups/([^/]+)", "PUT",
             self._set_group),
        ]

    @staticmethod
    def _find(store: dict[str, Any], uid: str) -> tuple[int, Any]:
        return (200, store[uid]) if uid in store else (404, {"message": "not found"})

    @staticmethod
    def _store(store: dict[str, Any], uid: str, body: dict[str, Any]) -> tuple[int, Any]:
        store[uid] = body
        return 200, {"uid": uid, "message": "ok"}

    def _get_datasource(self, _: Any, uid: str) -> tuple[int, Any]:
        if uid not in self.datasources:
            return 404, {"message": "Data source not found"}
        stored = dict(self.datasources[uid])
        secrets = stored.pop("secureJsonData", {})
        return 200, {**stored, "readOnly": False,
                     "secureJsonFields": {key: True for key in secrets}}

    def _save_dashboard(self, body: dict[str, Any]) -> tuple[int, Any]:
        model = body["dashboard"]
        version = self.dashboards.get(model["uid"], {}).get("dashboard", {}).get("version", 0)
        self.dashboards[model["uid"]] = {
            "dashboard": {**model, "id": 11, "version": version + 1},
            "meta": {"folderUid": body["folderUid"], "provisioned": False}}
        return 200, {"uid": model["uid"], "status": "success", "version": version + 1}

    def _group(self, _: Any, folder: str, group: str) -> tuple[int, Any]:
        members = [r for r in self.rules.values()
                   if r["folderUID"] == folder and r["ruleGroup"] == group]
        if not members:
            return 404, {"message": "rule group not found"}
        return 200, {"title": group, "folderUid": folder, "rules": members,
                     "interval": self.intervals.get((folder, group), 60 * 5)}

    def _set_group(self, body: dict[str, Any], folder: str, group: str) -> tuple[int, Any]:
        self.intervals[(folder, group)] = body["interval"]
        return 200, body


@pytest.fixture
def grafana(httpserver: HTTPServer) -> Iterator[FakeGrafana]:
    fake = FakeGrafana(auth=f"Bearer {TOKEN}")
    httpserver.expect_request(re.compile(".*")).respond_with_handler(fake.handle)
    yield fake


def provision(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("HEAT_READER_PASSWORD", "reader-secret")
    result = CliRunner().invoke(app, ["grafana", "provision", "--url", httpserver.url_for("/")])
    assert result.exit_code == 0, result.output
    return result.output


def writes(fake: FakeGrafana) -> list[tuple[str, str]]:
    return [call for call in fake.calls if call[0] != "GET"]


def test_first_run_creates_everything_and_second_changes_nothing(
        grafana: FakeGrafana, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEAT_GRAFANA_TOKEN", TOKEN)
    output = provision(httpserver, monkeypatch)
    boards = [board.to_dict() for board in generate.boards()]
    rules = alerts.api_rules()
    assert set(grafana.folders) == {alerts.FOLDER_UID}
    assert set(grafana.datasources) == {POSTGRES_UID, PROMETHEUS_UID}
    postgres = grafana.datasources[POSTGRES_UID]
    assert postgres["user"] == "heat_reader"
    assert postgres["jsonData"]["timescaledb"] is True
    assert postgres["secureJsonData"] == {"password": "reader-secret"}
    assert {uid: d["dashboard"]["title"] for uid, d in grafana.dashboards.items()} == \
        {b["uid"]: b["title"] for b in boards}
    assert all(d["meta"]["folderUid"] == alerts.FOLDER_UID for d in grafana.dashboards.values())
    assert set(grafana.rules) == {rule["uid"] for rule in rules}
    assert set(grafana.intervals.values()) == {alerts.GROUP_INTERVAL_S}
    assert "created" in output
    # 1 folder + 2 data sources + 3 dashboards + 7 rules created, 2 group intervals set.
    assert len(writes(grafana)) == 1 + 2 + len(boards) + len(rules) + 2

    grafana.calls.clear()
    output = provision(httpserver, monkeypatch)
    assert writes(grafana) == []
    assert "Grafana is up to date" in output


def test_a_change_made_in_grafana_is_put_back(
        grafana: FakeGrafana, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEAT_GRAFANA_TOKEN", TOKEN)
    provision(httpserver, monkeypatch)
    grafana.dashboards["heat-live"]["dashboard"]["panels"][0]["title"] = "edited in the UI"
    grafana.rules["heat-stale"]["for"] = "1h"
    del grafana.datasources[PROMETHEUS_UID]
    grafana.calls.clear()
    output = provision(httpserver, monkeypatch)
    assert sorted(writes(grafana)) == [
        ("POST", "/api/dashboards/db"), ("POST", "/api/datasources"),
        ("PUT", "/api/v1/provisioning/alert-rules/heat-stale")]
    assert grafana.dashboards["heat-live"]["dashboard"]["version"] == 2
    assert "updated" in output


def test_basic_auth_from_a_password_file(
        httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    secret = tmp_path / "grafana-password"
    secret.write_text("s3cret\n")
    fake = FakeGrafana(auth="Basic " + base64.b64encode(b"ops:s3cret").decode())
    httpserver.expect_request(re.compile(".*")).respond_with_handler(fake.handle)
    monkeypatch.delenv("HEAT_GRAFANA_TOKEN", raising=False)
    monkeypatch.setenv("HEAT_GRAFANA_USER", "ops")
    monkeypatch.setenv("HEAT_GRAFANA_PASSWORD_FILE", str(secret))
    provision(httpserver, monkeypatch)
    assert len(fake.dashboards) == 3


def test_a_refused_login_is_one_line(httpserver: HTTPServer,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    httpserver.expect_request(re.compile(".*")).respond_with_json(
        {"message": "invalid API key"}, status=401)
    monkeypatch.setenv("HEAT_GRAFANA_TOKEN", "wrong")
    result = CliRunner().invoke(app, ["grafana", "provision", "--url", httpserver.url_for("/")])
    assert isinstance(result.exception, CommandFailed)
    assert "(401)" in str(result.exception)
    assert "HEAT_GRAFANA_TOKEN" in str(result.exception)


def test_grafana_down_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEAT_GRAFANA_TOKEN", TOKEN)
    result = CliRunner().invoke(app, ["grafana", "provision", "--url", "http://127.0.0.1:1"])
    assert isinstance(result.exception, CommandFailed)
    assert "does not answer" in str(result.exception)


def test_the_database_data_source_carries_the_tls_settings(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """As the provisioning file does: the mode, and the root certificate by file path."""
    from heatmap.grafana.provision import desired_datasources
    from heatmap.grafana.settings import GrafanaSettings

    monkeypatch.setenv("HEAT_GRAFANA_DATABASE_SSLMODE", "verify-full")
    monkeypatch.setenv("HEAT_GRAFANA_DATABASE_SSLROOTCERT", "/etc/grafana/heat-root.crt")
    postgres = desired_datasources(GrafanaSettings())[0]["jsonData"]
    assert postgres["sslmode"] == "verify-full"
    assert postgres["tlsConfigurationMethod"] == "file-path"
    assert postgres["sslRootCertFile"] == "/etc/grafana/heat-root.crt"
    monkeypatch.delenv("HEAT_GRAFANA_DATABASE_SSLROOTCERT")
    monkeypatch.setenv("HEAT_GRAFANA_DATABASE_SSLMODE", "prefer")
    with pytest.raises(ValueError, match=r"sslmode|literal"):
        GrafanaSettings()


@dataclass
class FakeGrafanaOrgs:
    """A Grafana server with several organisations: a request works in the one its
    ``X-Grafana-Org-Id`` header names (else the login's current one, 1)."""

    auth: str
    orgs: dict[int, tuple[str, FakeGrafana]] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.orgs[1] = ("Main Org.", FakeGrafana(self.auth))

    def handle(self, request: Request) -> Response:
        assert request.headers.get("Authorization") == self.auth
        self.calls.append((request.method, request.path))
        if request.path == "/api/orgs" and request.method == "GET":
            answer: Any = [{"id": org_id, "name": name}
                           for org_id, (name, _) in sorted(self.orgs.items())]
            return Response(json.dumps(answer), 200, content_type="application/json")
        if request.path == "/api/orgs" and request.method == "POST":
            org_id = max(self.orgs) + 1
            self.orgs[org_id] = (request.get_json()["name"], FakeGrafana(self.auth))
            return Response(json.dumps({"orgId": org_id, "message": "Organization created"}),
                            200, content_type="application/json")
        org_id = int(request.headers.get("X-Grafana-Org-Id", "1"))
        return self.orgs[org_id][1].handle(request)

    def org(self, name: str) -> FakeGrafana:
        (fake,) = [fake for org_name, fake in self.orgs.values() if org_name == name]
        return fake

    def writes(self) -> list[tuple[str, str]]:
        return [call for call in self.calls if call[0] != "GET"]


DESK_A = "desk \"o'brien\", 東京"
ADMIN_AUTH = "Basic " + base64.b64encode(b"admin:admin-secret").decode()


def provision_desks(httpserver: HTTPServer, *desk_orgs: str) -> Any:
    return CliRunner().invoke(app, [
        "grafana", "provision", "--url", httpserver.url_for("/"),
        *[arg for text in desk_orgs for arg in ("--desk-org", text)]])


@pytest.fixture
def admin_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.delenv("HEAT_GRAFANA_TOKEN", raising=False)
    monkeypatch.setenv("HEAT_GRAFANA_USER", "admin")
    monkeypatch.setenv("HEAT_GRAFANA_PASSWORD", "admin-secret")
    monkeypatch.setenv("HEAT_READER_PASSWORD", "reader-secret")
    secret = tmp_path / "alpha-password"
    secret.write_text("alpha-secret\n")
    monkeypatch.setenv("HEAT_DESK_ALPHA_PASSWORD_FILE", str(secret))
    monkeypatch.setenv("HEAT_DESK_BETA_PASSWORD", "beta-secret")


def test_each_desk_gets_an_organisation_reading_as_its_role(
        httpserver: HTTPServer, admin_env: None) -> None:
    server = FakeGrafanaOrgs(auth=ADMIN_AUTH)
    httpserver.expect_request(re.compile(".*")).respond_with_handler(server.handle)
    result = provision_desks(httpserver, f"{DESK_A}=heat_desk_alpha", "beta=heat_desk_beta")
    assert result.exit_code == 0, result.output
    assert sorted(name for name, _ in server.orgs.values()) == [
        "Heat: beta", f"Heat: {DESK_A}", "Main Org."]
    main = server.orgs[1][1]
    assert main.datasources[POSTGRES_UID]["user"] == "heat_reader"
    desk_boards = {b.uid for b in generate.boards()} - {"heat-pipeline"}
    for name, role, password in ((f"Heat: {DESK_A}", "heat_desk_alpha", "alpha-secret"),
                                 ("Heat: beta", "heat_desk_beta", "beta-secret")):
        org = server.org(name)
        # Only the database, as the desk's own role: what it shows is what the
        # database lets that role read.
        assert set(org.datasources) == {POSTGRES_UID}
        postgres = org.datasources[POSTGRES_UID]
        assert postgres["user"] == role
        assert postgres["secureJsonData"] == {"password": password}
        assert postgres["jsonData"] == main.datasources[POSTGRES_UID]["jsonData"]
        assert set(org.folders) == {alerts.FOLDER_UID}
        assert set(org.dashboards) == desk_boards
        assert org.rules == {}

    server.calls.clear()
    result = provision_desks(httpserver, f"{DESK_A}=heat_desk_alpha", "beta=heat_desk_beta")
    assert result.exit_code == 0, result.output
    assert server.writes() == []
    assert len(server.orgs) == 3
    assert "Grafana is up to date" in result.output


def test_a_desk_role_changed_in_grafana_is_put_back(
        httpserver: HTTPServer, admin_env: None) -> None:
    server = FakeGrafanaOrgs(auth=ADMIN_AUTH)
    httpserver.expect_request(re.compile(".*")).respond_with_handler(server.handle)
    assert provision_desks(httpserver, "beta=heat_desk_beta").exit_code == 0
    # A desk's organisation admin pointing the data source at the all-desks role.
    server.org("Heat: beta").datasources[POSTGRES_UID]["user"] = "heat_reader"
    server.calls.clear()
    assert provision_desks(httpserver, "beta=heat_desk_beta").exit_code == 0
    assert server.writes() == [("PUT", f"/api/datasources/uid/{POSTGRES_UID}")]
    assert server.org("Heat: beta").datasources[POSTGRES_UID]["user"] == "heat_desk_beta"


@pytest.mark.parametrize(("desk_org", "message"), [
    ("alpha", "expected DESK=ROLE"),
    ("alpha=Heat-Desk", "role name"),
    ("gamma=heat_desk_gamma", "HEAT_DESK_GAMMA_PASSWORD_FILE"),
])
def test_a_wrong_desk_org_is_one_line(httpserver: HTTPServer, admin_env: None,
                                      desk_org: str, message: str) -> None:
    result = provision_desks(httpserver, desk_org)
    assert isinstance(result.exception, CommandFailed)
    assert message in str(result.exception)
    assert len(httpserver.log) == 0


def test_desk_orgs_refuse_a_service_account_token(
        httpserver: HTTPServer, admin_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEAT_GRAFANA_TOKEN", TOKEN)
    result = provision_desks(httpserver, "beta=heat_desk_beta")
    assert isinstance(result.exception, CommandFailed)
    assert "server admin" in str(result.exception)
