"""The benchmarks' own distribution (benchmarks/pyproject.toml) lists every package of the
folder, so an installed ``heat-bench`` has all of its modules; the product's lists none."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).parents[3]
BENCHMARKS = ROOT / "benchmarks"


def _setuptools(pyproject: Path) -> dict:
    return tomllib.loads(pyproject.read_text())["tool"]["setuptools"]


def _packages(folder: Path, name: str) -> Iterator[str]:
    """``name`` and its subpackages (folders with an ``__init__.py``, as Python sees them)."""
    yield name
    for child in sorted(folder.iterdir()):
        if (child / "__init__.py").is_file():
            yield from _packages(child, f"{name}.{child.name}")


def test_every_benchmark_package_is_in_the_distribution() -> None:
    listed = _setuptools(BENCHMARKS / "pyproject.toml")["packages"]
    assert sorted(listed) == sorted(_packages(BENCHMARKS, "benchmarks"))


def test_the_product_wheel_takes_its_packages_from_src_only() -> None:
    assert _setuptools(ROOT / "pyproject.toml")["packages"]["find"]["where"] == ["src"]
