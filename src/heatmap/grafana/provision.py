"""Create or update, through Grafana's HTTP API (grafana-client), what the heat
dashboards need: their folder, the two data sources, the dashboards and the alert
rules with their groups' evaluation interval. Idempotent: an object already as wanted is
left alone, so a second run changes nothing. Only the objects' own uids are touched."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaClientError

from heatmap.grafana import alerts, datasources, generate
from heatmap.grafana.settings import GrafanaSettings

Action = Literal["created", "updated", "unchanged"]
READER_USER = "heat_reader"


@dataclass(frozen=True)
class Change:
    kind: str
    name: str
    action: Action


def contains(actual: Any, wanted: Any) -> bool:
    """Whether ``actual`` holds everything of ``wanted`` (Grafana adds fields of its own:
    ids, versions, defaults, so equality would never hold)."""
    if isinstance(wanted, dict):
        return isinstance(actual, dict) and all(
            key in actual and contains(actual[key], value) for key, value in wanted.items())
    if isinstance(wanted, list):
        return (isinstance(actual, list) and len(actual) == len(wanted)
                and all(contains(a, w) for a, w in zip(actual, wanted, strict=True)))
    if isinstance(wanted, float | int) and not isinstance(wanted, bool):
        return isinstance(actual, float | int) and float(actual) == float(wanted)
    return bool(actual == wanted)


def desired_datasources(settings: GrafanaSettings) -> list[dict[str, Any]]:
    postgres: dict[str, Any] = {
        "uid": datasources.POSTGRES_UID, "name": datasources.POSTGRES_NAME,
        "type": datasources.POSTGRES_TYPE, "access": "proxy", "url": settings.database_host,
        "user": READER_USER, "isDefault": True,
        "jsonData": {"database": settings.database_name, "sslmode": settings.database_sslmode,
                     "postgresVersion": 1500, "timescaledb": True, "timeInterval": "1m",
                     "maxOpenConns": 10, "maxIdleConns": 2, "connMaxLifetime": 14400}}
    if settings.database_sslrootcert:
        postgres["jsonData"].update({"tlsConfigurationMethod": "file-path",
                                     "sslRootCertFile": settings.database_sslrootcert})
    password = settings.reader_secret()
    if password is not None:
        postgres["secureJsonData"] = {"password": password}
    prometheus = {
        "uid": datasources.PROMETHEUS_UID, "name": datasources.PROMETHEUS_NAME,
        "type": datasources.PROMETHEUS_TYPE, "access": "proxy", "url": settings.prometheus_url,
        "isDefault": False, "jsonData": {"httpMethod": "POST", "timeInterval": "15s"}}
    return [postgres, prometheus]


class Provisioner:
    """One Grafana organisation reached through ``api``."""

    def __init__(self, api: GrafanaApi) -> None:
        self.api = api

    @staticmethod
    def _get(call: Callable[[], Any]) -> Any:
        """The object, or None when Grafana answers 404."""
        try:
            return call()
        except GrafanaClientError as error:
            if error.status_code == 404:
                return None
            raise

    def folder(self, uid: str, title: str) -> Change:
        current = self._get(lambda: self.api.folder.get_folder(uid))
        if current is None:
            self.api.folder.create_folder(title, uid=uid)
            return Change("folder", title, "created")
        if current.get("title") == title:
            return Change("folder", title, "unchanged")
        self.api.folder.update_folder(uid, title=title, overwrite=True)
        return Change("folder", title, "updated")

    def datasource(self, wanted: dict[str, Any]) -> Change:
        uid, name = wanted["uid"], wanted["name"]
        current = self._get(lambda: self.api.datasource.get_datasource_by_uid(uid))
        if current is None:
            self.api.datasource.create_datasource(wanted)
            return Change("datasource", name, "created")
        visible = {key: value for key, value in wanted.items() if key != "secureJsonData"}
        secrets_set = all(current.get("secureJsonFields", {}).get(key)
                          for key in wanted.get("secureJsonData", {}))
        if contains(current, visible) and secrets_set:
            return Change("datasource", name, "unchanged")
        self.api.datasource.update_datasource_by_uid(uid, wanted)
        return Change("datasource", name, "updated")

    def dashboard(self, model: dict[str, Any], folder_uid: str) -> Change:
        uid, title = model["uid"], model["title"]
        current = self._get(lambda: self.api.dashboard.get_dashboard(uid))
        if (current is not None and contains(current.get("dashboard"), model)
                and current.get("meta", {}).get("folderUid") == folder_uid):
            return Change("dashboard", title, "unchanged")
        self.api.dashboard.update_dashboard({
            "dashboard": {**model, "id": None}, "folderUid": folder_uid, "overwrite": True,
            "message": "heat grafana provision"})
        return Change("dashboard", title, "created" if current is None else "updated")

    def alert_rule(self, rule: dict[str, Any]) -> Change:
        uid, title = rule["uid"], rule["title"]
        provisioning = self.api.alertingprovisioning
        current = self._get(lambda: provisioning.get_alertrule(uid))
        if current is None:
            provisioning.create_alertrule(rule)
            return Change("alert rule", title, "created")
        if contains(current, rule):
            return Change("alert rule", title, "unchanged")
        provisioning.update_alertrule(uid, rule)
        return Change("alert rule", title, "updated")

    def rule_group_interval(self, folder_uid: str, group: str, interval_s: int) -> Change:
        provisioning = self.api.alertingprovisioning
        current = provisioning.get_rule_group(folder_uid, group)
        if current.get("interval") == interval_s:
            return Change("rule group", group, "unchanged")
        provisioning.update_rule_group(folder_uid, group, {**current, "interval": interval_s})
        return Change("rule group", group, "updated")


def provision(api: GrafanaApi, settings: GrafanaSettings,
              on_change: Callable[[Change], None] = lambda change: None) -> list[Change]:
    """Bring the folder, data sources, dashboards and alert rules up to date."""
    provisioner = Provisioner(api)
    changes: list[Change] = []

    def record(change: Change) -> None:
        changes.append(change)
        on_change(change)

    record(provisioner.folder(alerts.FOLDER_UID, alerts.FOLDER_TITLE))
    for wanted in desired_datasources(settings):
        record(provisioner.datasource(wanted))
    for board in generate.boards():
        record(provisioner.dashboard(board.to_dict(), alerts.FOLDER_UID))
    rules = alerts.api_rules()
    for rule in rules:
        record(provisioner.alert_rule(rule))
    for group in sorted({rule["ruleGroup"] for rule in rules}):
        record(provisioner.rule_group_interval(alerts.FOLDER_UID, group,
                                               alerts.GROUP_INTERVAL_S))
    return changes


def connect(settings: GrafanaSettings, url: str | None = None,
            org_id: int | None = None) -> GrafanaApi:
    """Grafana's API as the configured login, in organisation ``org_id`` when given (else
    the login's current one)."""
    api = GrafanaApi.from_url(url or settings.url, credential=settings.credential(),
                              timeout=settings.timeout_s)
    if org_id is not None:
        # grafana-client takes the organisation only in its constructor; from_url is the
        # one place that parses the URL, so the header is set on its session afterwards.
        api.client.organization_id = org_id
        api.client.s.headers["X-Grafana-Org-Id"] = str(org_id)
    return api
