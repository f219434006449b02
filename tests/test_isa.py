"""Instruction-set levels (``pyconv.isa``): choosing one at import and by ``PYCONV_ISA``, clear errors
for a level the build or the CPU lacks, the ``show_config`` line, switching in-process, and what every
level must compute alike: NaN through the fused activations (as PyTorch), and results independent of
the thread count.  Each kernel's agreement with the reference at every level is in its own test module
(the ``level`` fixture); the shipped models at every level are in test_models.py.
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import pyconv
from conftest import LEVELS, rand, rng_for, run_at_level
from reference import conv2d_ref, depthwise_conv2d_ref, separable_conv2d_ref


def _python(code: str, **env) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k != "PYCONV_ISA"}
    full_env.update(env)
    return subprocess.run([sys.executable, "-c", code], env=full_env, capture_output=True, text=True,
                          timeout=120)


def test_the_best_level_the_cpu_runs_is_the_default():
    res = _python("import pyconv; print(pyconv.isa.active(), pyconv.isa.detected())")
    assert res.returncode == 0, res.stderr
    active, detected = res.stdout.split()
    assert active == detected == pyconv.isa.supported()[0]
    assert "scalar" in pyconv.isa.built() and pyconv.isa.supported()[-1] == "scalar"
    assert set(pyconv.isa.supported()) <= set(pyconv.isa.built()) <= set(pyconv.isa.LEVELS)


@pytest.mark.parametrize("level", LEVELS)
def test_pyconv_isa_caps_the_level_and_show_config_names_it(level):
    res = _python("import pyconv; pyconv.show_config()", PYCONV_ISA=level.upper())
    assert res.returncode == 0, res.stderr
    line = [ln for ln in res.stdout.splitlines() if ln.strip().startswith("isa:")]
    assert line == [f"  isa: {level} (detected: {pyconv.isa.detected()}; built: {' '.join(pyconv.isa.built())})"]


@pytest.mark.parametrize("value, message", [
    ("sse9", "is not an instruction-set level; choose one of avx512, avx2, neon, scalar"),
    ("neon" if "neon" not in pyconv.isa.built() else "avx2", "this pyconv build holds only"),
])
def test_an_unknown_or_absent_level_is_a_clear_error_at_import(value, message):
    res = _python("import pyconv", PYCONV_ISA=value)
    assert res.returncode == 1
    assert "pyconv.isa.ISAError" in res.stderr and message in res.stderr, res.stderr


def test_a_level_the_cpu_lacks_is_refused(monkeypatch):
    # An AVX2-only CPU asked for AVX-512 (run for real under an emulated Haswell by .ci/avx2-only).
    best = pyconv.isa.supported()[0]
    monkeypatch.setattr(pyconv.isa._cpu, "supported", lambda name: name != best)
    with pytest.raises(pyconv.isa.ISAError, match=f"this CPU cannot run {best}"):
        with pyconv.isa.use(best):
            pass


def test_use_restores_the_level_after_an_error():
    before = pyconv.isa.active()
    with pytest.raises(RuntimeError):
        with pyconv.isa.use("scalar"):
            assert pyconv.isa.active() == "scalar"
            raise RuntimeError
    assert pyconv.isa.active() == before


def _nan_input(rng, *shape):
    x = rand(rng, *shape)
    x[0, 1, 2, :] = np.nan
    x[0, -1, -1, 0] = np.nan
    return x


@pytest.mark.parametrize("activation", ["relu", "relu6"])
@pytest.mark.parametrize("path", LEVELS)
def test_fused_activations_pass_nan_through_at_every_level(path, activation, request):
    """relu(NaN) and relu6(NaN) are NaN, as PyTorch computes them (clamp and max propagate NaN), on
    every kernel that fuses an activation: GEMM (direct, im2col, pointwise), Winograd, narrow groups,
    depthwise, separable, the NCHW first layer, pooling and add."""
    run_at_level(request, path)
    rng = rng_for("nan", path, activation)
    x = _nan_input(rng, 1, 9, 10, 16)

    def check(got, expected, what):
        np.testing.assert_array_equal(np.isnan(got), np.isnan(expected), err_msg=what)
        ok = ~np.isnan(expected)
        np.testing.assert_allclose(got[ok], expected[ok], rtol=1e-4, atol=1e-4, err_msg=what)

    for strategy in ("direct", "im2col"):
        w = rand(rng, 3, 3, 16, 24)
        check(pyconv.conv2d(x, w, padding="same", activation=activation, strategy=strategy),
              conv2d_ref(x, w, padding="same", activation=activation), strategy)
    # Winograd spreads a NaN input over its whole output tile (the transforms mix every pixel of a
    # tile), so its fused activation is checked against its own unfused output.
    w = rand(rng, 3, 3, 16, 24)
    plain = pyconv.conv2d(x, w, padding="same", strategy="winograd")
    assert np.isnan(plain).any() and not np.isnan(plain).all()
    relu = np.maximum(plain, np.float32(0))
    check(pyconv.conv2d(x, w, padding="same", activation=activation, strategy="winograd"),
          relu if activation == "relu" else np.minimum(relu, np.float32(6)), "winograd")
    wg = rand(rng, 3, 3, 2, 8)
    check(pyconv.conv2d(x, wg, padding="same", groups=8, activation=activation),
          conv2d_ref(x, wg, padding="same", groups=8, activation=activation), "groups=8")
    wp = rand(rng, 16, 40)
    check(pyconv.pointwise_conv2d(x, wp, activation=activation),
          conv2d_ref(x, wp[None, None], activation=activation), "pointwise")
    wd = rand(rng, 3, 3, 16)
    check(pyconv.depthwise_conv2d(x, wd, padding="same", activation=activation),
          depthwise_conv2d_ref(x, wd, padding="same", activation=activation), "depthwise")
    check(pyconv.separable_conv2d(x, wd, wp, padding="same", activation=activation),
          separable_conv2d_ref(x, wd, wp, padding="same", activation=activation), "separable")
    x3 = _nan_input(rng, 1, 9, 10, 3)
    w3 = rand(rng, 3, 3, 3, 32)
    nchw = pyconv.Conv2D(w3, padding="same", activation=activation)._bind_nchw(x3.transpose(0, 3, 1, 2).copy())
    check(nchw(1), conv2d_ref(x3, w3, padding="same", activation=activation), "nchw first layer")
    relu = (lambda v: np.maximum(v, 0)) if activation == "relu" else (lambda v: np.clip(v, 0, 6))
    check(pyconv.max_pool2d(x - 0.5, 2, activation=activation),
          relu(np.max((x - 0.5)[:, :8].reshape(1, 4, 2, 5, 2, 16), axis=(2, 4))), "max pool")
    check(pyconv.add(x, x, activation=activation), relu(x + x), "add")


@pytest.mark.parametrize("path", LEVELS)
def test_results_do_not_depend_on_the_thread_count_at_any_level(path, request):
    run_at_level(request, path)
    rng = rng_for("threads-level", path)
    x = rand(rng, 2, 29, 31, 48)
    ops = [pyconv.Conv2D(rand(rng, 3, 3, 48, 40), padding="same", activation="relu"),
           pyconv.Conv2D(rand(rng, 3, 3, 48, 40), padding="same", strategy="winograd"),
           pyconv.Conv2D(rand(rng, 3, 3, 6, 40), padding="same", groups=8),
           pyconv.PointwiseConv2D(rand(rng, 48, 70)),
           pyconv.DepthwiseConv2D(rand(rng, 5, 5, 48), stride=2, padding="same"),
           pyconv.SeparableConv2D(rand(rng, 3, 3, 48), rand(rng, 48, 64), padding="same", activation="relu6")]
    for op in ops:
        one = op(x, threads=1)
        for threads in (2, 3, 5):
            np.testing.assert_array_equal(op(x, threads=threads), one, err_msg=f"{type(op).__name__} {threads}")
