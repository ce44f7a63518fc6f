"""The processor's building blocks that decide the applied order stay pure: no Kafka,
Faust, asyncio, clock or environment, so they are tested (and replayed) without a broker."""

from __future__ import annotations

from pathlib import Path

import heatmap.process
from support.module_imports import (
    assert_imports_only,
    assert_never_calls,
    top_level_packages_loaded_by,
)

PROCESS_DIR = Path(heatmap.process.__file__).parent
PURE_FILES = [PROCESS_DIR / "sequencer.py", PROCESS_DIR / "epochs.py", PROCESS_DIR / "host.py"]
ALLOWED_ROOTS = {"__future__", "collections", "dataclasses", "heapq", "math", "types", "typing",
                 "msgspec", "heatmap"}
# The alert configuration parser turns a file's bytes into thresholds (tomllib, pydantic):
# the host re-parses the bytes an epoch recorded, without reading any file.
ALLOWED_HEATMAP = ("heatmap.schema", "heatmap.sources.csv_files", "heatmap.process.sequencer",
                   "heatmap.process.epochs", "heatmap.engine", "heatmap.process.alert_config")
SERVICE_LIBRARIES = {"kafka", "aiokafka", "faust", "mode", "asyncio", "psycopg",
                     "pydantic_settings", "prometheus_client"}


def test_pure_modules_import_only_data_libraries() -> None:
    assert_imports_only(PURE_FILES, ALLOWED_ROOTS, ALLOWED_HEATMAP)


def test_pure_modules_never_read_the_clock_or_environment() -> None:
    assert_never_calls(PURE_FILES, ("time(", "monotonic(", "datetime.now(", "os.environ",
                                    "getenv(", "sleep("))


def test_importing_them_loads_no_service_library() -> None:
    loaded = top_level_packages_loaded_by("heatmap.process.sequencer", "heatmap.process.epochs",
                                          "heatmap.process.host")
    assert not loaded & SERVICE_LIBRARIES
