"""The pure side of ingest stays pure: the simulator model, the exchange conversions, the
stdin line parser and the recorded-file readers import no Kafka, ccxt, clock or environment."""

from __future__ import annotations

from pathlib import Path

import heatmap.ingest
import heatmap.sources
from support.module_imports import (
    assert_imports_only,
    assert_never_calls,
    top_level_packages_loaded_by,
)

INGEST_DIR = Path(heatmap.ingest.__file__).parent
PURE_FILES = sorted([
    *(INGEST_DIR / "simulator").glob("*.py"),
    *(INGEST_DIR / "exchanges" / name for name in ("payload.py", "prices.py", "positions.py",
                                                   "balances.py", "credentials.py")),
    INGEST_DIR / "json_lines.py", INGEST_DIR / "rejected.py",
    *Path(heatmap.sources.__file__).parent.glob("*.py"),
])
ALLOWED_ROOTS = {"__future__", "collections", "csv", "dataclasses", "datetime", "heapq", "math",
                 "pathlib", "typing", "numpy", "msgspec", "heatmap"}
ALLOWED_HEATMAP = ("heatmap.schema", "heatmap.sources", "heatmap.ingest.simulator",
                   "heatmap.ingest.exchanges.payload", "heatmap.ingest.rejected")



def test_pure_modules_import_only_data_and_math_libraries() -> None:
    assert len(PURE_FILES) > 10
    assert_imports_only(PURE_FILES, ALLOWED_ROOTS, ALLOWED_HEATMAP)


def test_pure_modules_never_read_the_clock_or_environment() -> None:
    assert_never_calls(PURE_FILES, ("time.time(", "monotonic(", "datetime.now(", "os.environ",
                                    "getenv("))


def test_importing_the_simulator_loads_no_service_library() -> None:
    roots = top_level_packages_loaded_by("heatmap.ingest.simulator")
    assert not roots & {"kafka", "ccxt", "requests", "pydantic_settings", "prometheus_client"}
