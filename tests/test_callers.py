"""Several Python threads calling one model or one operator at once (the service pattern: N callers with
``threads=1`` each).

Covers: N threads on one model with different inputs give exactly the single-threaded results (JSON
models, an ONNX import at several sizes and batches, requested intermediate tensors); two runs are
inside the model's steps at the same time (a barrier in a step that two runs must reach together, which
a lock around runs would deadlock: no timing involved), and two operator calls inside a kernel driver
at once; the pool hands each holder its own arena and keeps a bounded number idle; after a call
returns, neither a model nor an operator refers to the caller's arrays; the scratch of the separable
two-step path and of broadcasting binary ops is per call.
"""
from __future__ import annotations

import gc
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import pyconv
from pyconv import _kernels, ops
from pyconv.graph import model as model_module

from conftest import model_config, rand, rng_for

MODELS = Path(__file__).resolve().parents[1] / "models"


def _equal(got, want, what: str) -> None:
    if isinstance(want, dict):
        assert sorted(got) == sorted(want), what
        for name in want:
            np.testing.assert_array_equal(got[name], want[name], err_msg=f"{what}: {name}")
    else:
        np.testing.assert_array_equal(got, want, err_msg=what)


def _hammer(call, jobs: list, workers: int = 4, repeat: int = 3) -> list:
    """``call(job)`` for every job ``repeat`` times over, from ``workers`` threads, in interleaved order."""
    order = [i for _ in range(repeat) for i in range(len(jobs))]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(zip(order, pool.map(lambda i: call(jobs[i]), order)))


def _onnx_model():
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    import onnx_models as om

    torch.manual_seed(0)
    net = om.randomize_bn(om.MobileNetV2(alpha=0.35, classes=10))
    return pyconv.from_onnx(om.export(net, (1, 3, 48, 48), 13, dynamic_batch=True, dynamic_hw=True), threads=1,
                            input_shape=(1, 3, 48, 48))


@pytest.mark.parametrize("source", ["toy_design_doc", "mobilenet_v1", "onnx-mobilenet_v2"])
def test_threads_on_one_model_give_the_single_threaded_results(source):
    m = _onnx_model() if source.startswith("onnx") else pyconv.load(MODELS / f"{source}.json", threads=1)
    rng = rng_for("callers", source)
    inputs = [rng.uniform(-1, 1, m.input_shape()).astype(np.float32) for _ in range(6)]
    expected = [m(x) for x in inputs]
    for i, got in _hammer(m, inputs, repeat=2 if source == "mobilenet_v1" else 3):
        _equal(got, expected[i], f"{source} input {i}")


def test_threads_at_mixed_sizes_batches_and_outputs():
    """Callers at other input sizes, batch sizes and requested tensors at once: each variant and pool
    is made by one caller while the others run, and every result is the single-threaded one."""
    m = _onnx_model()
    names = [t for t in m.spec.tensors][:2] + [m.output_names[0]]
    rng = rng_for("callers-mixed")
    jobs = []
    for k, (batch, hw) in enumerate([(1, (48, 48)), (2, (48, 48)), (1, (64, 56)), (3, (40, 40)), (1, (33, 47))]):
        x = rng.uniform(-1, 1, m.input_shape(batch=batch, size=hw)).astype(np.float32)
        jobs.append((x, None if k % 2 else names))
    fresh = _onnx_model()
    expected = [fresh.run(x, outputs=outputs) for x, outputs in jobs]
    for i, got in _hammer(lambda job: m.run(job[0], outputs=job[1]), jobs, workers=5):
        _equal(got, expected[i], f"job {i}")
    assert len(m._pools) <= model_module._PLANS_KEPT
    assert sum(len(p.idle) for p in m._pools.values()) <= model_module._IDLE_KEPT


def test_two_runs_are_inside_one_model_at_once():
    """Both runs must reach a barrier in the same step before either goes on: a lock around runs (or
    one shared arena) would leave the second outside and the barrier would break."""
    m = pyconv.load(MODELS / "toy_design_doc.json", threads=1)
    rng = rng_for("callers-overlap")
    inputs = [rng.uniform(-1, 1, m.input_shape()).astype(np.float32) for _ in range(2)]
    expected = [m(x) for x in inputs]
    with m._prepared(1) as a, m._prepared(1) as b:
        assert a is not b
    pool = m._pools[(m._base.key, 1)]
    assert len(pool.idle) == 2
    barrier = threading.Barrier(2, timeout=60)
    met = []
    for prepared in pool.idle:
        step = next(s for s in prepared.steps if s.call is not None)

        def meet(threads, call=step.call, arena=prepared.arena):
            met.append(arena.ctypes.data)
            barrier.wait()
            return call(threads)
        step.call = meet
    with ThreadPoolExecutor(max_workers=2) as workers:
        results = list(workers.map(m, inputs))
    assert not barrier.broken and len(set(met)) == 2  # each run in its own arena
    for i, got in enumerate(results):
        _equal(got, expected[i], f"input {i}")


def test_two_operator_calls_are_inside_a_kernel_driver_at_once(monkeypatch):
    """The operators hold no lock around their calls: two calls of one Conv2D meet inside the driver."""
    rng = rng_for("callers-op-overlap")
    op = pyconv.Conv2D(rand(rng, 3, 3, 8, 16), padding="same", strategy="im2col")
    xs = [rand(rng, 1, 12, 10, 8) for _ in range(2)]
    expected = [op(x, threads=1) for x in xs]
    barrier = threading.Barrier(2, timeout=60)
    driver = _kernels.conv2d_im2col

    def meet(*args):
        barrier.wait()
        return driver(*args)
    monkeypatch.setattr(_kernels, "conv2d_im2col", meet)
    with ThreadPoolExecutor(max_workers=2) as workers:
        results = list(workers.map(lambda x: op(x, threads=1), xs))
    assert not barrier.broken
    for got, want in zip(results, expected):
        np.testing.assert_array_equal(got, want)


def test_the_pool_hands_out_distinct_arenas_and_keeps_a_few():
    m = pyconv.load(model_config({"name": "c", "type": "conv2d", "inputs": ["input"], "filters": 8, "kernel": 3,
                                  "padding": "same"}), threads=1)
    held = []
    with __import__("contextlib").ExitStack() as stack:
        for _ in range(model_module._IDLE_PER_PLAN + 3):
            held.append(stack.enter_context(m._prepared(1)))
        arenas = [p.arena for p in held]
        assert all(not np.shares_memory(a, b) for i, a in enumerate(arenas) for b in arenas[i + 1:])
        assert all(p.steps[0].out is not q.steps[0].out for i, p in enumerate(held) for q in held[i + 1:])
    pool = m._pools[(m._base.key, 1)]
    assert len(pool.idle) == model_module._IDLE_PER_PLAN
    # The packed weights and operators are shared by every arena, not copied.
    assert len({id(p.steps[0].kernel) for p in held}) == 1
    # More batch sizes than pools are kept: the least recently used go, and the idle arenas stay bounded.
    x = m.example_input(batch=1)
    for batch in range(1, model_module._PLANS_KEPT + 3):
        with m._prepared(batch), m._prepared(batch), m._prepared(batch):
            pass
        m(np.repeat(x, batch, axis=0))
    assert len(m._pools) == model_module._PLANS_KEPT
    assert sum(len(p.idle) for p in m._pools.values()) <= model_module._IDLE_KEPT


@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
def test_a_model_keeps_no_reference_to_the_callers_arrays(layout):
    doc = model_config({"name": "c", "type": "conv2d", "inputs": ["input"], "filters": 8, "kernel": 3},
                       {"name": "p", "type": "pointwise_conv2d", "inputs": ["c"], "filters": 4},
                       {"name": "sum", "type": "add", "inputs": ["p", "p"]}, shape=(9, 7, 3))
    doc["layers"][0]["layout"] = layout
    m = pyconv.load(doc, threads=1)
    x = m.example_input(batch=2)
    ref = weakref.ref(x)
    y = m(x)
    m.profile(x, repeat=1)
    del x
    gc.collect()
    assert ref() is None and y.shape[0] == 2


def _operator_calls(rng):
    x = rand(rng, 2, 9, 8, 16)
    w = rand(rng, 3, 3, 16, 24)
    return {
        **{f"conv2d-{s}": (lambda x, s=s: pyconv.Conv2D(w, padding="same", strategy=s)(x, residual=None))
           for s in ("direct", "im2col", "winograd")},
        "conv2d-residual": lambda x: pyconv.Conv2D(w[..., :16], padding="same")(x, residual=x),
        "conv2d-groups": lambda x: pyconv.Conv2D(w[:, :, :2, :16], padding="same", groups=8)(x),
        "depthwise": lambda x: pyconv.DepthwiseConv2D(w[..., :1], padding="same")(x),
        "separable": lambda x: pyconv.SeparableConv2D(w[..., :1], w[0, 0], padding="same")(x, threads=2),
        "dense": lambda x: pyconv.Dense(w[0, 0])(x.reshape(-1, 16)),
        "max_pool": lambda x: ops.max_pool2d(x, 2),
        "add-both-broadcast": lambda x: ops.add(x[:, :1], x[:, :, :1]),
        "concat": lambda x: ops.concat([x, x]),
        "resize": lambda x: ops.resize(x, (5, 4), mode="bilinear"),
    }, x


def test_operators_keep_no_reference_to_the_callers_arrays():
    calls, x = _operator_calls(rng_for("callers-refs"))
    for name, call in calls.items():
        arg = x.copy()
        ref = weakref.ref(arg)
        call(arg)
        del arg
        gc.collect()
        assert ref() is None, name


def test_separable_two_step_scratch_is_per_call():
    """A small image with large pointwise weights runs the separable kernel's two steps through a buffer
    (at threads > 1): concurrent calls of one operator, and of one model's node, never share it."""
    rng = rng_for("callers-separable")
    wd, wp = rand(rng, 3, 3, 512), rand(rng, 512, 1100) * 0.05
    op = pyconv.SeparableConv2D(wd, wp, padding="same")
    xs = [rand(rng, 1, 7, 7, 512) for _ in range(4)]
    expected = [op(x, threads=2) for x in xs]
    for i, got in _hammer(lambda x: op(x, threads=2), xs):
        np.testing.assert_array_equal(got, expected[i])
    doc = model_config({"name": "sep", "type": "separable_conv2d", "inputs": ["input"], "filters": 1100, "kernel": 3,
                        "padding": "same"},
                       {"name": "sep2", "type": "separable_conv2d", "inputs": ["sep"], "filters": 600, "kernel": 3,
                        "padding": "same"}, shape=(7, 7, 512))
    m = pyconv.load(doc, threads=2)
    expected = [m(x) for x in xs]
    for i, got in _hammer(m, xs):
        np.testing.assert_array_equal(got, expected[i])


def test_operators_from_several_threads_give_the_single_threaded_results():
    calls, x = _operator_calls(rng_for("callers-ops"))
    rng = rng_for("callers-ops-inputs")
    inputs = [x] + [rand(rng, *x.shape) for _ in range(3)]
    jobs = [(name, i) for name in calls for i in range(len(inputs))]
    expected = {job: calls[job[0]](inputs[job[1]]) for job in jobs}
    for k, got in _hammer(lambda job: calls[job[0]](inputs[job[1]]), jobs, repeat=2):
        np.testing.assert_array_equal(got, expected[jobs[k]], err_msg=str(jobs[k]))
