"""The local stack's PostgreSQL serves TLS with a certificate clients verify
(``verify-full``); a client that requires TLS from a server without it fails in one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from conftest import throwaway_cluster
from heatmap.settings.database import READER_ROLE, WRITER_ROLE, DatabaseSettings
from heatmap.stack import postgres, tls
from heatmap.stack.local import StackState
from heatmap.stack.settings import StackSettings


def test_verify_full_reaches_the_stack_over_tls(stack: StackState) -> None:
    assert stack.database_sslrootcert is not None
    root_cert = Path(stack.database_sslrootcert)
    key = root_cert.with_name("server.key")
    assert key.stat().st_mode & 0o777 == 0o600
    assert f"export HEAT_DATABASE_SSLROOTCERT={root_cert}" in stack.env_lines()
    assert "export HEAT_DATABASE_SSLMODE=verify-full" in stack.env_lines()
    settings = DatabaseSettings(database_url=stack.database_url, database_sslmode="verify-full",
                                database_sslrootcert=root_cert)
    with psycopg.connect(settings.admin_url()) as connection:
        row = connection.execute("SELECT ssl, version FROM pg_stat_ssl "
                                 "WHERE pid = pg_backend_pid()").fetchone()
    assert row is not None and row[0] is True, row


def test_verify_full_refuses_a_certificate_of_another_root(stack: StackState,
                                                           tmp_path: Path) -> None:
    other = tls.TlsFiles(tmp_path / "other")
    tls.ensure(other, os_user=None)
    settings = DatabaseSettings(database_url=stack.database_url, database_sslmode="verify-full",
                                database_sslrootcert=other.root_cert)
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        psycopg.connect(settings.admin_url(), connect_timeout=5).close()


def test_require_against_a_server_without_tls_fails_in_one_line(tmp_path: Path) -> None:
    bin_dir = StackSettings().postgres_bin_dir
    with throwaway_cluster(bin_dir, tmp_path, preload_timescaledb=False) as cluster:
        assert not cluster.tls
        env = {**os.environ, "HEAT_DATABASE_URL": postgres.admin_url(cluster),
               "HEAT_DATABASE_SSLMODE": "require", "HEAT_CONNECT_TIMEOUT_S": "5"}
        completed = subprocess.run([sys.executable, "-m", "heatmap.cli.main", "db", "status"],
                                   env=env, capture_output=True, text=True,
                                   stdin=subprocess.DEVNULL, timeout=120)
    assert completed.returncode == 1, completed.stdout + completed.stderr
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1, completed.stderr
    assert "server does not support SSL, but SSL was required" in lines[0], lines[0]


def test_the_role_urls_verify_the_server_too(stack: StackState, postgresql_migrated) -> None:
    """The writer's and reader's URLs, derived from the owner's, carry the same TLS."""
    assert stack.database_sslrootcert is not None
    settings = postgresql_migrated.model_copy(update={
        "database_sslmode": "verify-full",
        "database_sslrootcert": Path(stack.database_sslrootcert)})
    for role in (WRITER_ROLE, READER_ROLE):
        url = settings.role_url(role)
        assert "sslmode=verify-full" in url
        with psycopg.connect(url) as connection:
            row = connection.execute("SELECT ssl FROM pg_stat_ssl "
                                     "WHERE pid = pg_backend_pid()").fetchone()
        assert row == (True,), role


def test_the_plain_stack_takes_clients_with_and_without_tls(stack: StackState) -> None:
    """Without --secure the local PostgreSQL serves TLS to those who ask and still takes
    plain connections (host lines in pg_hba.conf)."""
    assert not stack.database_tls_only
    for mode, encrypted in (("disable", False), ("require", True)):
        with psycopg.connect(stack.database_url, sslmode=mode, connect_timeout=5) as client:
            row = client.execute("SELECT ssl FROM pg_stat_ssl "
                                 "WHERE pid = pg_backend_pid()").fetchone()
        assert row == (encrypted,), mode
