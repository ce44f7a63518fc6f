"""The comparison is pure like the engine beside it: no Kafka, database, environment or
clock. Its model (equity, rule, drawdowns, the run) uses math libraries only; the
table and the picture add their presentation library and nothing else."""

from __future__ import annotations

from pathlib import Path

import heatmap.compare
from support.module_imports import (
    assert_imports_only,
    assert_never_calls,
    top_level_packages_loaded_by,
)

COMPARE_DIR = Path(heatmap.compare.__file__).parent
MODEL = ["equity.py", "rule.py", "drawdowns.py", "report.py", "run.py", "__init__.py"]
MATH_ROOTS = {"__future__", "collections", "dataclasses", "math", "typing", "numpy", "scipy",
              "msgspec", "heatmap"}
OURS = ("heatmap.compare", "heatmap.engine", "heatmap.schema")
SERVICE_LIBRARIES = {"kafka", "aiokafka", "faust", "mode", "psycopg", "psycopg_pool",
                     "pydantic_settings", "prometheus_client", "typer"}


def test_every_module_is_listed() -> None:
    listed = {*MODEL, "table.py", "picture.py"}
    assert {path.name for path in COMPARE_DIR.glob("*.py")} == listed


def test_the_model_imports_only_math_libraries() -> None:
    assert_imports_only([COMPARE_DIR / name for name in MODEL], MATH_ROOTS, OURS)


def test_presentation_adds_only_its_library() -> None:
    assert_imports_only([COMPARE_DIR / "table.py"], MATH_ROOTS | {"rich"}, OURS)
    assert_imports_only([COMPARE_DIR / "picture.py"], MATH_ROOTS | {"pathlib", "matplotlib"},
                        OURS)


def test_nothing_reads_the_clock_or_environment() -> None:
    assert_never_calls(sorted(COMPARE_DIR.glob("*.py")),
                       ("time(", "monotonic(", "datetime.now(", "os.environ", "getenv(",
                        "open("))


def test_importing_it_loads_no_service_library() -> None:
    loaded = top_level_packages_loaded_by("heatmap.compare.run", "heatmap.compare.table",
                                          "heatmap.compare.picture")
    assert not loaded & SERVICE_LIBRARIES
