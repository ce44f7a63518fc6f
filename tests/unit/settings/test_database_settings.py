"""Database settings: URLs from ``*_FILE``, retention windows and ``off``."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from heatmap.settings.database import (
    READER_ROLE,
    RETENTION_GROUPS,
    WRITER_ROLE,
    DatabaseSettings,
)

URL_VARIABLES = ("HEAT_DATABASE_URL", "HEAT_WRITER_URL", "HEAT_READER_URL",
                 "HEAT_WRITER_PASSWORD", "HEAT_READER_PASSWORD")
TLS_VARIABLES = ("HEAT_DATABASE_SSLMODE", "HEAT_DATABASE_SSLROOTCERT")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in URL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"{name}_FILE", raising=False)
    for group in RETENTION_GROUPS:
        monkeypatch.delenv(f"HEAT_RETENTION_{group.upper()}", raising=False)
    for name in TLS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _secret_file(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text + "\n")  # files written by editors and secret stores end in \n
    return path


def test_every_url_can_come_from_a_file(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("HEAT_DATABASE_URL_FILE", str(_secret_file(
        tmp_path, "admin", "postgresql://owner:s3cret@db/heat")))
    clean_env.setenv("HEAT_WRITER_URL_FILE", str(_secret_file(
        tmp_path, "writer", "postgresql://heat_writer:w@db/heat")))
    clean_env.setenv("HEAT_READER_URL_FILE", str(_secret_file(
        tmp_path, "reader", "postgresql://heat_reader:r@replica/heat")))
    settings = DatabaseSettings()
    assert settings.has_admin_url()
    assert settings.admin_url() == "postgresql://owner:s3cret@db/heat"
    assert settings.role_url(WRITER_ROLE) == "postgresql://heat_writer:w@db/heat"
    assert settings.role_url(READER_ROLE) == "postgresql://heat_reader:r@replica/heat"
    assert "s3cret" not in repr(settings)


def test_a_url_variable_wins_over_its_file(clean_env: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    clean_env.setenv("HEAT_DATABASE_URL", "postgresql://a:b@from-env/heat")
    clean_env.setenv("HEAT_DATABASE_URL_FILE", str(_secret_file(
        tmp_path, "admin", "postgresql://a:b@from-file/heat")))
    assert DatabaseSettings().admin_url() == "postgresql://a:b@from-env/heat"


def test_an_empty_url_variable_leaves_the_file(clean_env: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    (tmp_path / "writer").write_text("postgresql://heat_writer:from-file@db/heat\n")
    clean_env.setenv("HEAT_WRITER_URL", "")
    clean_env.setenv("HEAT_WRITER_URL_FILE", str(tmp_path / "writer"))
    assert DatabaseSettings().role_url(WRITER_ROLE) == "postgresql://heat_writer:from-file@db/heat"


def test_role_urls_derive_from_an_admin_url_file(clean_env: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    clean_env.setenv("HEAT_DATABASE_URL_FILE", str(_secret_file(
        tmp_path, "admin", "postgresql://owner:pw@db:5433/heat")))
    clean_env.setenv("HEAT_WRITER_PASSWORD_FILE", str(_secret_file(tmp_path, "pw", "w p")))
    assert DatabaseSettings().role_url(WRITER_ROLE) == (
        "postgresql://heat_writer:w%20p@db:5433/heat")


def test_without_any_url_the_admin_url_is_missing(clean_env: pytest.MonkeyPatch) -> None:
    settings = DatabaseSettings()
    assert not settings.has_admin_url() and settings.own_url(WRITER_ROLE) is None
    with pytest.raises(ValueError, match="HEAT_DATABASE_URL is not set"):
        settings.admin_url()


def test_retention_defaults_keep_the_rollups(clean_env: pytest.MonkeyPatch) -> None:
    settings = DatabaseSettings()
    assert {group: settings.retention_window(group) for group in RETENTION_GROUPS} == {
        "prices": "90 days", "frames": "180 days", "events": "3 years",
        "deadletters": "30 days", "rollups": None}


@pytest.mark.parametrize("value", ["off", "OFF", " Off "])
def test_retention_off_means_no_window(clean_env: pytest.MonkeyPatch, value: str) -> None:
    clean_env.setenv("HEAT_RETENTION_FRAMES", value)
    settings = DatabaseSettings()
    assert settings.retention_frames == "off"
    assert settings.retention_window("frames") is None


def test_an_empty_retention_window_is_refused(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("HEAT_RETENTION_PRICES", " ")
    with pytest.raises(ValidationError, match="interval"):
        DatabaseSettings()


def test_the_layer_files_get_windows_that_drop_nothing(clean_env: pytest.MonkeyPatch) -> None:
    """0001/0002 add age-based policies that migrate replaces at once; until then they
    must not drop anything, whatever the settings (even 'off', which is no interval)."""
    clean_env.setenv("HEAT_RETENTION_FRAMES", "off")
    clean_env.setenv("HEAT_COMPRESS_AFTER", "3 days")
    layer = DatabaseSettings().layer_settings()
    assert layer["heat.compress_after"] == "3 days"
    assert {name: value for name, value in layer.items() if "retention" in name} == {
        f"heat.retention_{group}": "1000 years" for group in RETENTION_GROUPS}


def test_every_url_gets_the_tls_settings(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("HEAT_DATABASE_URL", "postgresql://heat_admin:a@db.internal:5433/heat")
    clean_env.setenv("HEAT_READER_PASSWORD", "r")
    clean_env.setenv("HEAT_WRITER_URL", "host=db.internal user=heat_writer password=w")
    clean_env.setenv("HEAT_DATABASE_SSLMODE", "verify-full")
    clean_env.setenv("HEAT_DATABASE_SSLROOTCERT", "/etc/heat/root ca.crt")
    settings = DatabaseSettings()
    tail = "sslmode=verify-full&sslrootcert=%2Fetc%2Fheat%2Froot+ca.crt"
    assert settings.admin_url() == f"postgresql://heat_admin:a@db.internal:5433/heat?{tail}"
    assert settings.role_url(READER_ROLE) == (
        f"postgresql://heat_reader:r@db.internal:5433/heat?{tail}")
    assert settings.role_url(WRITER_ROLE) == (
        "host=db.internal user=heat_writer password=w sslmode='verify-full' "
        "sslrootcert='/etc/heat/root ca.crt'")


def test_tls_defaults_to_prefer_and_a_url_keeps_its_own(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("HEAT_DATABASE_URL", "postgresql://a@db/heat?sslmode=disable")
    clean_env.setenv("HEAT_READER_URL", "postgresql://r@db/heat")
    settings = DatabaseSettings()
    assert settings.database_sslmode == "prefer"
    assert settings.role_url(READER_ROLE) == "postgresql://r@db/heat"  # libpq's default
    clean_env.setenv("HEAT_DATABASE_SSLMODE", "require")
    settings = DatabaseSettings()
    assert settings.admin_url() == "postgresql://a@db/heat?sslmode=disable"
    assert settings.role_url(READER_ROLE) == "postgresql://r@db/heat?sslmode=require"


def test_an_unknown_sslmode_is_refused(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("HEAT_DATABASE_SSLMODE", "verify")
    with pytest.raises(ValidationError):
        DatabaseSettings()
