"""The micro-kernel C test driver (tests/ukernels/check_ukernels.c), built natively with setup.py's own
per-level flags and run: every family of every level this machine executes, tested at the C level
against the driver's naive references with guard pages and canaries around every buffer."""
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _builder():
    spec = importlib.util.spec_from_file_location("pyconv_build", ROOT / ".ci" / "pyconv_build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_level_the_cpu_runs_passes_the_ukernel_driver(request, tmp_path):
    cc = os.environ.get("CC", "gcc")
    if shutil.which(cc) is None:
        pytest.skip(f"no C compiler ({cc})")
    pytest.importorskip("Cython")
    pytest.importorskip("setuptools")
    # Objects are cached by content hash (the AVX-512 depthwise file alone takes ~17 s to compile).
    cache = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider
    build = cache.mkdir("ukernels") if cache is not None else tmp_path
    exe = Path(build) / "check_ukernels"
    _builder().build_check(exe, cc)
    proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=600)
    sys.stdout.write(proc.stdout)
    lines = proc.stdout.strip().splitlines()
    assert lines and lines[-1].endswith(" 0 failed"), proc.stdout + proc.stderr
    assert proc.returncode == 0, proc.stdout + proc.stderr
