import pytest

from heatmap.db.settings import READER_ROLE, WRITER_ROLE, DbSettings


def test_role_urls_are_derived_from_the_admin_url() -> None:
    settings = DbSettings(database_url="postgresql://admin:pw@db.internal:6543/heat?sslmode=require",
                          writer_password="w/p@ss", reader_password="r", writer_url=None,
                          reader_url=None)
    assert settings.role_url(WRITER_ROLE) == (
        "postgresql://heat_writer:w%2Fp%40ss@db.internal:6543/heat?sslmode=require")
    assert settings.role_url(READER_ROLE).startswith("postgresql://heat_reader:r@db.internal")


def test_ipv6_hosts_keep_their_brackets() -> None:
    settings = DbSettings(database_url="postgresql://a:b@[::1]:5432/heat", writer_password="w",
                          writer_url=None)
    assert settings.role_url(WRITER_ROLE) == "postgresql://heat_writer:w@[::1]:5432/heat"


def test_a_role_without_url_or_password_is_an_error() -> None:
    settings = DbSettings(database_url="postgresql://a:b@h/heat", writer_password=None,
                          writer_password_file=None, writer_url=None)
    with pytest.raises(ValueError):
        settings.role_url(WRITER_ROLE)
