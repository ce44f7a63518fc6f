"""Grafana's query macros and template variables, expanded as Grafana expands them, so the
tests run a panel's query outside Grafana (on PostgreSQL, on Prometheus).

SQL: the PostgreSQL data source's macros (``$__timeFilter(col)``, ``$__timeFrom()``,
``$__timeTo()``, ``$__timeGroup(col, interval)``, ``$__timeGroupAlias(col, interval)``,
``$__time(col)``, ``$__timeEpoch(col)``, ``$__unixEpochFilter(col)``) and
``$__interval``/``$__interval_ms``. PromQL: ``$__interval``, ``$__rate_interval``,
``$__range`` and friends. Template variables: ``$name``, ``${name}`` and
``${name:format}`` with the formats ``sqlstring``, ``raw``, ``csv`` and ``regex``.
An unknown macro, variable or format is an error, never left in the text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

VariableValue = str | Sequence[str]


class MacroError(ValueError):
    """A query uses a macro, variable or format this expander does not know."""


@dataclass(frozen=True)
class QueryContext:
    """What Grafana knows when it runs a query: the time range, the interval between
    points (seconds), the variables' current values and Prometheus' scrape interval."""

    time_from: datetime
    time_to: datetime
    interval_s: float
    variables: Mapping[str, VariableValue] = field(default_factory=dict)
    scrape_interval_s: float = 15.0

    @property
    def range_s(self) -> float:
        return (self.time_to - self.time_from).total_seconds()


_VARIABLE = re.compile(r"\$\{(?P<braced>\w+)(?::(?P<format>\w+))?\}|\$(?P<plain>[A-Za-z_]\w*)")
_MACRO_CALL = re.compile(r"\$__(\w+)\(")


def duration_text(seconds: float) -> str:
    """Seconds as Grafana writes an interval: ``5m``, ``1h``, ``30s``, ``250ms``."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{round(seconds)}s"


def parse_duration_s(text: str) -> float:
    """``5m``, ``'1h'``, ``30s``, ``250ms`` or ``1d`` in seconds."""
    match = re.fullmatch(r"\s*['\"]?(\d+(?:\.\d+)?)(ms|s|m|h|d|w)['\"]?\s*", text)
    if match is None:
        raise MacroError(f"not an interval: {text!r}")
    size = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[match.group(2)]
    return float(match.group(1)) * size


def _rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _format(name: str, value: VariableValue, fmt: str | None) -> str:
    values = [value] if isinstance(value, str) else list(value)
    if fmt == "sqlstring":
        return ",".join("'" + item.replace("'", "''") + "'" for item in values)
    if fmt in (None, "raw", "csv"):
        return ",".join(values)
    if fmt == "regex":
        escaped = [re.sub(r"([\\^$.|?*+()\[\]{}/])", r"\\\1", item) for item in values]
        return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"
    raise MacroError(f"variable {name}: unknown format {fmt!r}")


def _global(name: str, context: QueryContext) -> str | None:
    rate_interval_s = max(context.interval_s + context.scrape_interval_s,
                          4 * context.scrape_interval_s)
    values = {
        "__interval": duration_text(context.interval_s),
        "__interval_ms": str(round(context.interval_s * 1000)),
        "__rate_interval": duration_text(rate_interval_s),
        "__rate_interval_ms": str(round(rate_interval_s * 1000)),
        "__range": f"{round(context.range_s)}s",
        "__range_s": str(round(context.range_s)),
        "__range_ms": str(round(context.range_s * 1000)),
    }
    return values.get(name)


def expand_variables(text: str, context: QueryContext) -> str:
    """Template variables and the global interval/range variables; macros stay."""

    def replace(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("plain")
        if name.startswith("__"):
            found = _global(name, context)
            if found is not None:
                return found
            if match.group("plain") and text[match.end():match.end() + 1] == "(":
                return match.group(0)  # a macro call, expanded later
            raise MacroError(f"unknown global variable ${name}")
        if name not in context.variables:
            raise MacroError(f"variable {name} is not defined")
        return _format(name, context.variables[name], match.group("format"))

    return _VARIABLE.sub(replace, text)


def _arguments(text: str, start: int) -> tuple[list[str], int]:
    """The comma-separated arguments of a call whose '(' is at ``start - 1``, and the
    index after its ')'. Commas inside parentheses or quotes do not split."""
    depth, quote, current, arguments = 0, "", "", []
    for index in range(start, len(text)):
        char = text[index]
        if quote:
            current += char
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
            current += char
        elif char == "(":
            depth += 1
            current += char
        elif char == ")":
            if depth == 0:
                arguments.append(current.strip())
                return [a for a in arguments if a], index + 1
            depth -= 1
            current += char
        elif char == "," and depth == 0:
            arguments.append(current.strip())
            current = ""
        else:
            current += char
    raise MacroError(f"unclosed macro call at {text[start - 20:start]!r}")


def _sql_macro(name: str, args: list[str], context: QueryContext) -> str:
    def need(count: int) -> None:
        if len(args) < count:
            raise MacroError(f"$__{name} needs {count} argument(s), got {args}")

    start, end = _rfc3339(context.time_from), _rfc3339(context.time_to)
    if name == "timeFilter":
        need(1)
        return f"{args[0]} BETWEEN '{start}' AND '{end}'"
    if name == "timeFrom":
        return f"'{start}'"
    if name == "timeTo":
        return f"'{end}'"
    if name == "time":
        need(1)
        return f'{args[0]} AS "time"'
    if name == "timeEpoch":
        need(1)
        return f'extract(epoch from {args[0]}) AS "time"'
    if name == "unixEpochFilter":
        need(1)
        return (f"{args[0]} >= {int(context.time_from.timestamp())} AND "
                f"{args[0]} <= {int(context.time_to.timestamp())}")
    if name in ("timeGroup", "timeGroupAlias"):
        need(2)
        size = parse_duration_s(args[1])
        size_text = f"{size:g}"
        group = f"floor(extract(epoch from {args[0]})/{size_text})*{size_text}"
        return f'{group} AS "time"' if name == "timeGroupAlias" else group
    raise MacroError(f"unknown macro $__{name}")


def expand_sql(sql: str, context: QueryContext) -> str:
    """A panel's SQL as Grafana's PostgreSQL data source sends it to the database."""
    text = expand_variables(sql, context)
    while (match := _MACRO_CALL.search(text)) is not None:
        args, end = _arguments(text, match.end())
        text = text[:match.start()] + _sql_macro(match.group(1), args, context) + text[end:]
    return text


def expand_promql(expr: str, context: QueryContext) -> str:
    """A panel's PromQL as Grafana sends it to Prometheus."""
    text = expand_variables(expr, context)
    if "$" in text:
        raise MacroError(f"unexpanded macro in {text!r}")
    return text
