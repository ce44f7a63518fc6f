"""One BLAS kernel on every machine, so a frame's last bits do not depend on the CPU.

numpy and scipy ship OpenBLAS built for many CPUs at once and pick a kernel when they
load: on AVX-512 machines ``SkylakeX``, on others ``Haswell``. The two round
differently inside ``eigvalsh`` (the absorption ratio moves in its last bit), so the
same commit, lock and input gave two answers on two machines. Every ``heat`` process
pins the AVX2 kernel that every x86-64 server of the last decade runs, before numpy is
first imported. An explicit ``OPENBLAS_CORETYPE`` in the environment wins.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

PINNED_KERNEL = "Haswell"
# What the pinned kernel executes; without them it would stop the process (SIGILL).
_REQUIRED_CPU_FLAGS = frozenset({"avx2", "fma"})


def _cpu_flags() -> frozenset[str]:
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace")
    except OSError:
        return frozenset()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def pin_blas_kernel() -> bool:
    """Select the pinned OpenBLAS kernel for this process; True when it applies.

    It cannot apply once numpy is loaded (OpenBLAS reads the variable at load time), on
    a CPU without AVX2/FMA, or off x86-64; frames are then correct but may differ from
    the pinned ones in the last bit.
    """
    if "OPENBLAS_CORETYPE" in os.environ:
        return os.environ["OPENBLAS_CORETYPE"] == PINNED_KERNEL
    if "numpy" in sys.modules or platform.machine().lower() not in {"x86_64", "amd64"}:
        return False
    if not _REQUIRED_CPU_FLAGS.issubset(_cpu_flags()):
        return False
    os.environ["OPENBLAS_CORETYPE"] = PINNED_KERNEL
    return True
