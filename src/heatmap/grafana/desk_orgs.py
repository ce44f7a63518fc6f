"""One Grafana organisation per desk, its database data source logging in as the desk's
reader role (``heat db reader create``), so the database's per-desk filtering of the
``heat_api`` views decides what the desk's viewers see, whatever they edit in Grafana.

An organisation holds the heat folder, the database data source (same uid as the main
organisation's, so the generated dashboards work unchanged) and the live and history
dashboards. It holds no Prometheus data source and no pipeline dashboard: the pipeline's
metrics are the operators', not a desk's. Organisations are found by name, so a second
run changes nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grafana_client.api import GrafanaApi

from heatmap.grafana import alerts, generate, pipeline_health
from heatmap.grafana.provision import Change, Provisioner, desired_datasources
from heatmap.grafana.settings import GrafanaSettings

# Role names are plain lower-case identifiers (``heat db reader create`` checks them), so
# the password's variable name made from one is a valid environment variable name.
ORG_PREFIX = "Heat: "


class DeskOrgError(ValueError):
    """A desk organisation that cannot be provisioned as asked (one line)."""


@dataclass(frozen=True)
class DeskOrg:
    """A desk, the database role its organisation's data source logs in as, and that
    role's password."""

    desk: str
    role: str
    password: str = ""

    @property
    def org_name(self) -> str:
        return f"{ORG_PREFIX}{self.desk}"


def password_variable(role: str) -> str:
    """``HEAT_DESK_ALPHA_PASSWORD`` for role ``heat_desk_alpha`` (``_FILE`` appended for
    the file holding it)."""
    return f"{role.upper()}_PASSWORD"


def parse(text: str, environ: Mapping[str, str] | None = None) -> DeskOrg:
    """``DESK=ROLE`` with the role's password from ``<ROLE>_PASSWORD`` or the file
    ``<ROLE>_PASSWORD_FILE`` names (role ``heat_desk_alpha``: ``HEAT_DESK_ALPHA_PASSWORD``).

    The split is at the last ``=``: a role name has none, a desk name may.

    Raises
    ------
    DeskOrgError
        When the text is not ``DESK=ROLE``, the role is not a plain identifier or its
        password is not set.
    """
    from heatmap.db.desk_readers import DeskReaderError, check_role_name

    environ = os.environ if environ is None else environ
    desk, equals, role = text.rpartition("=")
    if not equals or not desk or not role:
        raise DeskOrgError(f"--desk-org {text!r}: expected DESK=ROLE, e.g. alpha=heat_desk_alpha")
    try:
        check_role_name(role)
    except DeskReaderError as error:
        raise DeskOrgError(str(error)) from error
    variable = password_variable(role)
    # As every secret of the project: the variable when set and not empty, else the file.
    password = environ.get(variable, "")
    path = environ.get(f"{variable}_FILE")
    if not password and path:
        try:
            password = Path(path).read_text(encoding="utf-8").strip()
        except OSError as error:
            raise DeskOrgError(f"{variable}_FILE={path}: {error.strerror}") from error
    if not password:
        raise DeskOrgError(f"role {role} of desk {desk!r} needs its password: set "
                           f"{variable}_FILE (or {variable})")
    return DeskOrg(desk, role, password)


def desk_datasource(settings: GrafanaSettings, org: DeskOrg) -> dict[str, Any]:
    """The main organisation's database data source, logging in as the desk's role."""
    postgres = desired_datasources(settings)[0]
    return {**postgres, "user": org.role, "secureJsonData": {"password": org.password}}


def find_or_create_org(api: GrafanaApi, name: str) -> tuple[int, Change]:
    """The organisation's id, found by name in the list of organisations (names may
    hold any character, which a ``/orgs/name/...`` path would have to escape), else
    created. Grafana makes the user creating it an admin of it."""
    for org in api.organizations.list_organization():
        if org.get("name") == name:
            return int(org["id"]), Change("organisation", name, "unchanged")
    created = api.organization.create_organization({"name": name})
    return int(created["orgId"]), Change("organisation", name, "created")


def desk_boards() -> list[dict[str, Any]]:
    """The dashboards a desk's organisation holds: all but the pipeline's."""
    return [board.to_dict() for board in generate.boards()
            if board.uid != pipeline_health.UID]


def provision_desk_orgs(api: GrafanaApi, in_org: Callable[[int], GrafanaApi],
                        settings: GrafanaSettings, orgs: list[DeskOrg],
                        on_change: Callable[[Change], None] = lambda change: None
                        ) -> list[Change]:
    """Bring each desk's organisation, data source and dashboards up to date.

    Parameters
    ----------
    api
        Grafana as the server admin, in any organisation (lists and creates them).
    in_org
        The same login working in the organisation of the given id.
    """
    changes: list[Change] = []

    def record(change: Change) -> None:
        changes.append(change)
        on_change(change)

    boards = desk_boards()
    for org in orgs:
        org_id, change = find_or_create_org(api, org.org_name)
        record(change)
        provisioner = Provisioner(in_org(org_id))
        scoped = [Change(c.kind, f"{org.org_name} / {c.name}", c.action) for c in (
            provisioner.folder(alerts.FOLDER_UID, alerts.FOLDER_TITLE),
            provisioner.datasource(desk_datasource(settings, org)),
            *(provisioner.dashboard(board, alerts.FOLDER_UID) for board in boards))]
        for scoped_change in scoped:
            record(scoped_change)
    return changes
