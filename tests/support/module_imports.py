"""What a source file imports, read from its syntax tree (for the purity tests)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports (``import a.b`` and ``from a.b import c`` give ``a.b``)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def assert_imports_only(paths: list[Path], allowed_roots: set[str],
                        allowed_heatmap: tuple[str, ...]) -> None:
    """Each file imports only ``allowed_roots`` packages, and of ours only ``allowed_heatmap``."""
    for path in paths:
        for name in imported_modules(path):
            assert name.split(".")[0] in allowed_roots, f"{path.name} imports {name}"
            if name.startswith("heatmap."):
                assert name.startswith(allowed_heatmap), f"{path.name} imports {name}"


def assert_never_calls(paths: list[Path], calls: tuple[str, ...]) -> None:
    """No file's source holds any of ``calls`` (clock and environment reads)."""
    for path in paths:
        source = path.read_text()
        for call in calls:
            assert call not in source, f"{path.name} uses {call}"


def top_level_packages_loaded_by(*modules: str) -> set[str]:
    """The top-level packages a fresh interpreter has loaded after importing ``modules``."""
    code = f"import sys, {', '.join(modules)}; print('\\n'.join(sorted(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.split()
    return {name.split(".")[0] for name in loaded}
