"""Grafana's macros and variables expand as Grafana expands them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from support.grafana_macros import (
    MacroError,
    QueryContext,
    duration_text,
    expand_promql,
    expand_sql,
    parse_duration_s,
)

CONTEXT = QueryContext(
    time_from=datetime(2018, 1, 11, 0, 0, tzinfo=UTC),
    time_to=datetime(2018, 1, 12, 6, 30, 15, 250000, tzinfo=UTC),
    interval_s=300,
    variables={"account": "o'brien 币安人生", "timeframe": "1h", "books": ["a", "b'c"]},
    scrape_interval_s=15)


def test_time_filter_and_range_edges() -> None:
    assert expand_sql("WHERE $__timeFilter(f.ts) AND x < $__timeTo() AND x > $__timeFrom()",
                      CONTEXT) == (
        "WHERE f.ts BETWEEN '2018-01-11T00:00:00.000Z' AND '2018-01-12T06:30:15.250Z' "
        "AND x < '2018-01-12T06:30:15.250Z' AND x > '2018-01-11T00:00:00.000Z'")


def test_time_group_with_the_interval_variable_and_literal_intervals() -> None:
    assert expand_sql("SELECT $__timeGroupAlias(ts, $__interval), v", CONTEXT) == \
        'SELECT floor(extract(epoch from ts)/300)*300 AS "time", v'
    assert expand_sql("GROUP BY $__timeGroup(ts, '1h')", CONTEXT) == \
        "GROUP BY floor(extract(epoch from ts)/3600)*3600"
    assert expand_sql("$__time(ts), $__timeEpoch(ts)", CONTEXT) == \
        'ts AS "time", extract(epoch from ts) AS "time"'


def test_nested_parentheses_and_commas_stay_in_one_argument() -> None:
    assert expand_sql("$__timeFilter(coalesce(a, b))", CONTEXT).startswith(
        "coalesce(a, b) BETWEEN ")


def test_sqlstring_quotes_and_doubles_single_quotes_of_every_value() -> None:
    assert expand_sql("book = ${account:sqlstring}", CONTEXT) == "book = 'o''brien 币安人生'"
    assert expand_sql("book IN (${books:sqlstring})", CONTEXT) == "book IN ('a','b''c')"
    assert expand_sql("tf = '$timeframe' AND ${timeframe}", CONTEXT) == "tf = '1h' AND 1h"


def test_interval_milliseconds_and_promql_globals() -> None:
    assert expand_sql("$__interval_ms / 1000.0", CONTEXT) == "300000 / 1000.0"
    # Grafana: max(interval + scrape interval, 4 x scrape interval).
    assert expand_promql("increase(y[$__range])", CONTEXT) == "increase(y[109815s])"
    assert expand_promql("rate(x[$__rate_interval])", CONTEXT) == "rate(x[315s])"
    assert expand_promql('sum(up{job=~"heat-.*"})', CONTEXT) == 'sum(up{job=~"heat-.*"})'


def test_unknown_names_are_errors() -> None:
    with pytest.raises(MacroError, match="not defined"):
        expand_sql("book = ${desk:sqlstring}", CONTEXT)
    with pytest.raises(MacroError, match="unknown macro"):
        expand_sql("$__timeFilterish(ts)", CONTEXT)
    with pytest.raises(MacroError, match="unknown format"):
        expand_sql("${account:json}", CONTEXT)


def test_durations() -> None:
    assert [duration_text(s) for s in (0.25, 30, 300, 3600, 86400, 90)] == \
        ["250ms", "30s", "5m", "1h", "1d", "90s"]
    assert parse_duration_s("'5m'") == 300
    assert parse_duration_s("250ms") == 0.25
    with pytest.raises(MacroError):
        parse_duration_s("soon")
