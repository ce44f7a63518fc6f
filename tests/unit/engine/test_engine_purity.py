"""The heat engine stays pure: numpy/scipy math only, no I/O, environment or clock."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import heatmap.engine
from support.module_imports import imported_modules

ENGINE_DIR = Path(heatmap.engine.__file__).parent
ALLOWED_ROOTS = {"__future__", "collections", "dataclasses", "functools", "hashlib", "heapq",
                 "itertools", "math", "re", "typing", "numpy", "scipy", "msgspec", "heatmap"}
FORBIDDEN_MODULES = ("kafka", "aiokafka", "faust", "mode", "psycopg", "psycopg_pool",
                     "pydantic_settings", "prometheus_client", "typer", "rich")



def test_engine_sources_import_only_math_libraries() -> None:
    for path in sorted(ENGINE_DIR.glob("*.py")):
        for name in imported_modules(path):
            assert name.split(".")[0] in ALLOWED_ROOTS, f"{path.name} imports {name}"
            if name.startswith("heatmap."):
                assert name.startswith(("heatmap.engine", "heatmap.schema")), name


def test_engine_never_reads_the_clock_or_environment() -> None:
    for path in sorted(ENGINE_DIR.glob("*.py")):
        source = path.read_text()
        for call in ("time.time(", "datetime.now(", "os.environ", "getenv(", "open("):
            assert call not in source, f"{path.name} uses {call}"


def test_importing_the_engine_loads_no_service_library() -> None:
    code = ("import sys, heatmap.engine.engine, heatmap.engine.alerts; "
            "print('\\n'.join(sorted(sys.modules)))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.split()
    roots = {name.split(".")[0] for name in loaded}
    assert not roots & set(FORBIDDEN_MODULES)
