"""The processor's building blocks that decide the applied order stay pure: no Kafka,
Faust, asyncio, clock or environment, so they are tested (and replayed) without a broker."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import heatmap.process
from module_imports import imported_modules

PROCESS_DIR = Path(heatmap.process.__file__).parent
PURE_FILES = [PROCESS_DIR / "sequencer.py", PROCESS_DIR / "epochs.py", PROCESS_DIR / "host.py"]
ALLOWED_ROOTS = {"__future__", "collections", "dataclasses", "heapq", "types", "typing", "msgspec",
                 "heatmap"}
ALLOWED_HEATMAP = ("heatmap.schema", "heatmap.sources.csv_files", "heatmap.process.sequencer",
                   "heatmap.process.epochs", "heatmap.engine")
SERVICE_LIBRARIES = {"kafka", "aiokafka", "faust", "mode", "asyncio", "psycopg",
                     "pydantic_settings", "prometheus_client"}


def test_pure_modules_import_only_data_libraries() -> None:
    for path in PURE_FILES:
        for name in imported_modules(path):
            assert name.split(".")[0] in ALLOWED_ROOTS, f"{path.name} imports {name}"
            if name.startswith("heatmap."):
                assert name.startswith(ALLOWED_HEATMAP), f"{path.name} imports {name}"


def test_pure_modules_never_read_the_clock_or_environment() -> None:
    for path in PURE_FILES:
        source = path.read_text()
        for call in ("time(", "monotonic(", "datetime.now(", "os.environ", "getenv(",
                     "sleep("):
            assert call not in source, f"{path.name} uses {call}"


def test_importing_them_loads_no_service_library() -> None:
    code = ("import sys, heatmap.process.sequencer, heatmap.process.epochs, "
            "heatmap.process.host; "
            "print('\\n'.join(sorted(sys.modules)))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.split()
    assert not {name.split(".")[0] for name in loaded} & SERVICE_LIBRARIES
