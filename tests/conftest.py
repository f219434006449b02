"""Shared helpers for the convolution test suite: random data, the comparison rule, the pairwise
case generator used to pick the default sweep subsets, readable case ids, and the instruction-set
levels to run kernels at (``level`` fixture, ``run_at_level``).

Test modules import the plain helpers with ``from conftest import ...`` (tests/ has no __init__.py,
so pytest puts it on sys.path).
"""
from __future__ import annotations

import itertools
import random
import zlib

import numpy as np
import pytest

import pyconv

# Relative tolerance of the comparison with the float64 reference. float32 accumulation over up to a
# few thousand taps, and Winograd's transforms, stay well inside it.
RTOL = 1e-4


def rng_for(*key) -> np.random.Generator:
    """A generator seeded from the case itself, so that a failing case reproduces on its own."""
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def rand(rng: np.random.Generator, *shape) -> np.ndarray:
    """float32 uniform in [-1, 1]."""
    return rng.uniform(-1.0, 1.0, size=shape).astype(np.float32)


def assert_close(y, ref, rtol: float = RTOL, what: str = ""):
    """Compare a float32 result with the float64 reference, atol scaled by the reference magnitude."""
    y = np.asarray(y)
    ref = np.asarray(ref)
    assert y.shape == ref.shape, f"{what}: shape {y.shape}, reference {ref.shape}"
    assert y.dtype == np.float32, f"{what}: dtype {y.dtype}, expected float32"
    scale = max(1.0, float(np.abs(ref).max())) if ref.size else 1.0
    np.testing.assert_allclose(y, ref, rtol=rtol, atol=rtol * scale, err_msg=what)


def pairwise(axes: dict, seed: int = 0, valid=None) -> list[dict]:
    """A small set of cases covering every pair of values of every two axes (greedy all-pairs).

    Every value of every axis appears, and so does every combination of two values from two
    different axes, unless no valid case (``valid(case) -> bool``) contains that pair.
    Deterministic for a given ``seed``.
    """
    names = list(axes)
    values = [list(axes[n]) for n in names]
    n_axes = len(names)
    r = random.Random(seed)

    def key(k, vk, m, vm):
        return (k, vk, m, vm) if k < m else (m, vm, k, vk)

    uncovered = {(a, i, b, j)
                 for a, b in itertools.combinations(range(n_axes), 2)
                 for i in range(len(values[a])) for j in range(len(values[b]))}

    def pairs_of(idx):
        return {(a, idx[a], b, idx[b]) for a, b in itertools.combinations(range(n_axes), 2)}

    def as_case(idx):
        return {n: values[k][idx[k]] for k, n in enumerate(names)}

    cases = []
    while uncovered:
        a, i, b, j = min(uncovered)
        best = None
        for attempt in range(200):
            # The first attempts are greedy; later ones pick more at random, so that constrained
            # axes still find a valid completion of the pair.
            noise = 0.0 if attempt < 4 else min(1.0, attempt / 50)
            idx = [None] * n_axes
            idx[a], idx[b] = i, j
            order = [k for k in range(n_axes) if idx[k] is None]
            r.shuffle(order)
            for k in order:
                def score(v):
                    gain = sum(key(k, v, m, idx[m]) in uncovered
                               for m in range(n_axes) if idx[m] is not None and m != k)
                    return gain * (1.0 - noise) + r.random() * (noise * n_axes + 0.5)
                idx[k] = max(range(len(values[k])), key=score)
            if valid is None or valid(as_case(idx)):
                gain = len(pairs_of(idx) & uncovered)
                if best is None or gain > best[0]:
                    best = (gain, idx)
                if attempt >= 3:
                    break
        if best is None:
            uncovered.discard((a, i, b, j))
            continue
        cases.append(as_case(best[1]))
        uncovered -= pairs_of(best[1])
    return cases


def product(axes: dict, valid=None) -> list[dict]:
    """Every combination (for the slow, exhaustive sweeps)."""
    names = list(axes)
    out = []
    for combo in itertools.product(*(axes[n] for n in names)):
        case = dict(zip(names, combo))
        if valid is None or valid(case):
            out.append(case)
    return out


def _fmt(v) -> str:
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "y" if v else "n"
    if isinstance(v, (tuple, list)):
        return "x".join(_fmt(e) for e in v)
    return str(v)


def case_id(case: dict) -> str:
    """``{"h": 7, "padding": ((0, 1), (2, 0))}`` -> ``"h7-padding0x1x2x0"``."""
    return "-".join(f"{k}{_fmt(v)}" for k, v in case.items())


def cases_param(cases: list[dict], argname: str = "case"):
    """``pytest.mark.parametrize`` over case dicts with readable ids."""
    return pytest.mark.parametrize(argname, cases, ids=[case_id(c) for c in cases])


# Every instruction-set level this CPU runs (``pyconv.isa``), the one in use first, and the others:
# tests of a representative sweep run at each of them.
LEVELS = list(pyconv.isa.supported())
OTHER_LEVELS = [lv for lv in LEVELS if lv != pyconv.isa.active()]


def model_config(*layers: dict, outputs=None, shape=(8, 8, 3), input_name: str = "input", name: str = "t",
                 **top) -> dict:
    """A one-input model config: an input layer of per-sample ``shape`` named ``input_name``, then
    ``layers``; ``outputs`` defaults to the last layer's name; ``top`` adds top-level fields."""
    layers = [{"name": input_name, "type": "input", "shape": list(shape)}, *layers]
    return {"format": "pyconv-model", "version": 1, "name": name, "layers": layers,
            "outputs": outputs or [layers[-1]["name"]], **top}


def run_at_level(request, level: str) -> None:
    """Run the rest of the test at ``level``; the level in use before comes back after it."""
    switch = pyconv.isa.use(level)
    switch.__enter__()
    request.addfinalizer(lambda: switch.__exit__(None, None, None))


@pytest.fixture(params=OTHER_LEVELS)
def level(request):
    """Run the test at each level this CPU runs besides the one in use (that one runs every test)."""
    run_at_level(request, request.param)
    return request.param
