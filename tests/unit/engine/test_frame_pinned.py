"""A few frames pinned to the bit: every number of ``compute_frame`` as JSON (shortest
round-trip floats), so a change that is meant to be a pure speed-up cannot move a digit.

Regenerate ``tests/data/engine/pinned_frames.jsonl`` only when a number is meant to
change: ``OPENBLAS_CORETYPE=Haswell PYTHONPATH=src:tests python
tests/unit/engine/test_frame_pinned.py`` (the kernel every ``heat`` process pins). It writes
``pinned_frames.made_with.json`` beside it: the numpy, scipy and OpenBLAS (with its CPU
kernel) that computed the bytes, so a mismatch says whether the numerics or the code moved.
"""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import numpy as np
import scipy
from threadpoolctl import threadpool_info

from heatmap.engine.heat import BookSnapshot, compute_frame
from heatmap.engine.params import EngineParams

PINNED = Path(__file__).parents[2] / "data" / "engine" / "pinned_frames.jsonl"
MADE_WITH = PINNED.with_name("pinned_frames.made_with.json")
SYMBOLS = ["ADAUSDT", "BTCUSDT", "DOGEUSDT", "ETHUSDT", "LTCUSDT", "SOLUSDT", "XRPUSDT"]
# Two correlated groups (BTC/ETH/LTC, ADA/SOL/XRP) and DOGE on its own.
RHO = np.array([
    [1.00, 0.31, 0.12, 0.28, 0.22, 0.71, 0.66],
    [0.31, 1.00, 0.05, 0.83, 0.74, 0.35, 0.27],
    [0.12, 0.05, 1.00, 0.09, 0.11, 0.14, 0.08],
    [0.28, 0.83, 0.09, 1.00, 0.69, 0.33, 0.25],
    [0.22, 0.74, 0.11, 0.69, 1.00, 0.26, 0.21],
    [0.71, 0.35, 0.14, 0.33, 0.26, 1.00, 0.58],
    [0.66, 0.27, 0.08, 0.25, 0.21, 0.58, 1.00],
])
SIGMA = np.array([0.0031, 0.0012, 0.0047, 0.0016, 0.0021, 0.0029, 0.0026])


def _book(picked: list[int], ts_ms: int) -> BookSnapshot:
    qty = np.array([4000.0, 0.35, -90000.0, 4.2, 30.0, -25.0, 6000.0])[picked]
    price = np.array([0.61, 64000.0, 0.17, 3100.0, 82.0, 145.0, 0.52])[picked]
    age_s = np.array([0.4, 0.1, 3.5, 0.2, 1.9, 0.3, 12.0])[picked]
    strategy = ["alts", "core", None, "core", "core", "alts", None]
    conviction = [0.7, 0.9, None, 0.3, 0.55, None, 0.2]
    notional = float(np.abs(qty * price).sum())
    return BookSnapshot(
        ts_ms=ts_ms, trigger="bar", account="pinned", desk="d1",
        symbols=[SYMBOLS[i] for i in picked], qty=qty, price=price, price_age_s=age_s,
        strategy=[strategy[i] for i in picked], conviction=[conviction[i] for i in picked],
        equity=52_000.0, margin=0.005 * notional)


def frames() -> list[bytes]:
    """The pinned frames, each JSON-encoded."""
    params = EngineParams()
    cases = [list(range(7)), [1, 3, 5], [2], []]
    encoded = []
    for n, picked in enumerate(cases):
        block = np.ix_(picked, picked)
        warming = np.array([i == 6 for i in picked], dtype=bool)
        frame = compute_frame(_book(picked, 1_767_225_600_000 + n * 60_000), "1h", RHO[block],
                              SIGMA[picked], warming, 0.125 if picked else None, params)
        encoded.append(msgspec.json.encode(frame))
    return encoded


def numerics() -> dict[str, str]:
    """The libraries whose rounding the pinned bytes depend on, and the BLAS kernel."""
    blas = [pool for pool in threadpool_info() if pool["internal_api"] == "openblas"]
    return {
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "openblas": ", ".join(sorted({f"{p['version']} {p['architecture']}" for p in blas})),
    }


def test_frames_equal_the_pinned_bytes() -> None:
    made_with, running = json.loads(MADE_WITH.read_text()), numerics()
    assert running == made_with, (
        f"the pinned frames were computed with {made_with}, this run has {running}: "
        "install from the lock (make bootstrap) and let heatmap load numpy first")
    assert frames() == PINNED.read_bytes().splitlines()


if __name__ == "__main__":
    PINNED.write_bytes(b"\n".join(frames()) + b"\n")
    MADE_WITH.write_text(json.dumps(numerics(), indent=2) + "\n")
