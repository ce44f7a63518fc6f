"""The pure side of ingest stays pure: the simulator model, the exchange conversions, the
stdin line parser and the recorded-file readers import no Kafka, ccxt, clock or environment."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import heatmap.ingest
import heatmap.sources
from module_imports import imported_modules

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
    for path in PURE_FILES:
        for name in imported_modules(path):
            assert name.split(".")[0] in ALLOWED_ROOTS, f"{path.name} imports {name}"
            if name.startswith("heatmap."):
                assert name.startswith(ALLOWED_HEATMAP), f"{path.name} imports {name}"


def test_pure_modules_never_read_the_clock_or_environment() -> None:
    for path in PURE_FILES:
        source = path.read_text()
        for call in ("time.time(", "monotonic(", "datetime.now(", "os.environ", "getenv("):
            assert call not in source, f"{path.name} uses {call}"


def test_importing_the_simulator_loads_no_service_library() -> None:
    code = "import sys, heatmap.ingest.simulator; print('\\n'.join(sorted(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.split()
    roots = {name.split(".")[0] for name in loaded}
    assert not roots & {"kafka", "ccxt", "requests", "pydantic_settings", "prometheus_client"}
