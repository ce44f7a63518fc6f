"""The BLAS kernel pin: applied before numpy loads, never over an explicit choice."""

from __future__ import annotations

import subprocess
import sys

import pytest

from heatmap import numerics


def test_an_explicit_kernel_in_the_environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Sandybridge")
    assert numerics.pin_blas_kernel() is False
    monkeypatch.setenv("OPENBLAS_CORETYPE", numerics.PINNED_KERNEL)
    assert numerics.pin_blas_kernel() is True


def test_it_cannot_apply_once_numpy_is_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy  # noqa: F401

    monkeypatch.delenv("OPENBLAS_CORETYPE", raising=False)
    assert numerics.pin_blas_kernel() is False


def test_a_fresh_heat_process_runs_the_pinned_kernel() -> None:
    code = ("import heatmap.engine.heat; from threadpoolctl import threadpool_info; "
            "print(sorted({p['architecture'] for p in threadpool_info()}))")
    env = {"PATH": "/usr/bin:/bin"}
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, env=env).stdout.strip()
    if not numerics._REQUIRED_CPU_FLAGS.issubset(numerics._cpu_flags()):
        pytest.skip("this CPU lacks AVX2/FMA: OpenBLAS keeps its own choice")
    assert shown == f"['{numerics.PINNED_KERNEL}']"
