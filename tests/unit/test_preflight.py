"""Start-up checks: address parsing and fast failures against a closed loopback port."""

from __future__ import annotations

import pytest

from heatmap.preflight import (
    ServiceSettingError,
    ServiceUnreachable,
    bootstrap_addresses,
    connection_failure,
    database_address,
    require_kafka,
    require_postgres,
)
from heatmap.settings.kafka import KafkaConnection
from heatmap.stack.ports import free_port


def test_bootstrap_addresses() -> None:
    assert bootstrap_addresses("a:1, b:2") == [("a", 1), ("b", 2)]
    assert bootstrap_addresses("[::1]:9092") == [("::1", 9092)]
    for bad in ("", "host", "host:", ":9092", "host:port", "host:70000"):
        with pytest.raises(ServiceSettingError, match="HEAT_KAFKA_BOOTSTRAP"):
            bootstrap_addresses(bad)


def test_database_address_hides_credentials() -> None:
    assert database_address("postgresql://u:secret@db.example:6543/heat") == \
        "db.example:6543/heat"
    assert database_address("host=h dbname=d") == "h:5432/d"
    assert database_address("postgresql://u@[::1]/heat") == "[::1]:5432/heat"
    with pytest.raises(ServiceSettingError, match="not a PostgreSQL URL"):
        database_address("not a url")


def test_connection_failure_keeps_the_reason() -> None:
    refused = ('connection failed: connection to server at "127.0.0.1", port 5 failed: '
               "Connection refused\n\tIs the server running on that host?")
    assert connection_failure(refused) == "connection refused"
    login = ('connection failed: connection to server at "h", port 5 failed: FATAL:  '
             'password authentication failed for user "x"')
    assert connection_failure(login) == 'password authentication failed for user "x"'


def test_closed_kafka_port_fails_at_once() -> None:
    bootstrap = f"127.0.0.1:{free_port()}"
    with pytest.raises(ServiceUnreachable) as caught:
        require_kafka(KafkaConnection(bootstrap_servers=bootstrap), timeout_s=5.0)
    assert caught.value.address == bootstrap
    assert caught.value.reason == "connection refused"
    assert "heat stack up" in str(caught.value) and "HEAT_KAFKA_BOOTSTRAP" in str(caught.value)


def test_closed_database_port_fails_at_once() -> None:
    port = free_port()
    with pytest.raises(ServiceUnreachable) as caught:
        require_postgres(f"postgresql://u:secret@127.0.0.1:{port}/heat", timeout_s=5.0,
                         setting="HEAT_WRITER_URL")
    message = str(caught.value)
    assert f"127.0.0.1:{port}/heat" in message and "secret" not in message
    assert message.endswith("start it with `heat stack up` or set HEAT_WRITER_URL")


def test_malformed_database_url_names_the_setting() -> None:
    with pytest.raises(ServiceSettingError, match=r"^HEAT_DATABASE_URL is not a PostgreSQL"):
        require_postgres("not a url", timeout_s=1.0)
