"""Build and runtime configuration: what this pyconv build was compiled with."""
from __future__ import annotations

import os
import sys
from typing import Dict, TextIO, Union

import numpy as np

from . import _kernels, isa
from .threads import available_cores, default_threads


def build_info() -> Dict[str, Union[str, int, bool]]:
    """Version, OpenMP on/off, the instruction-set level in use, the best one this CPU runs and those
    built, the GEMM tile, and the default thread count."""
    from . import __version__
    return {
        "version": __version__,
        "openmp": _kernels.OPENMP,
        "isa": isa.active(),
        "isa_detected": isa.detected(),
        "isa_built": " ".join(isa.built()),
        "gemm_tile": f"{_kernels.GEMM_MR}x{_kernels.GEMM_NR}",
        "default_threads": default_threads(),
        "openmp_wait": os.environ.get("OMP_WAIT_POLICY") and f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}"
                       or f"GOMP_SPINCOUNT={os.environ.get('GOMP_SPINCOUNT', 'libgomp default')}",
        "available_cores": available_cores(),
        "numpy": np.__version__,
    }


def show_config(file: TextIO = None) -> None:
    """Print :func:`build_info` as ``key: value`` lines."""
    out = file or sys.stdout
    info = build_info()
    print("pyconv build configuration", file=out)
    for key, value in info.items():
        if key == "isa":
            value = f"{value} (detected: {info['isa_detected']}; built: {info['isa_built']})"
        elif key in ("isa_detected", "isa_built"):
            continue
        print(f"  {key}: {value}", file=out)
    if not info["openmp"]:
        print("  note: built without OpenMP; every call runs on one thread", file=out)
