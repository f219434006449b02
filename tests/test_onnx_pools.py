"""ONNX MaxPool and AveragePool import against onnxruntime over ``ceil_mode``, ``count_include_pad``,
asymmetric pads, strides and odd sizes (1x1 inputs, windows longer than the input with ceil_mode);
the ceil_mode windows are also checked against torch's pooling. Skipped without onnx and onnxruntime.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import pyconv
from conftest import pairwise, rng_for

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import helper  # noqa: E402
from onnx_graphs import make_model, ort_run, tensor  # noqa: E402


def pool_model(op, hw, **attrs) -> bytes:
    return make_model([helper.make_node(op, ["x"], ["y"], **attrs)], [tensor("x", [2, 3, *hw])], [tensor("y")])


def fits(case) -> bool:
    """Pads smaller than the window (pyconv's rule, and ONNX Runtime's), and a window no longer than the
    padded input unless ceil_mode keeps one anyway (where ONNX Runtime's truncating division keeps one
    too, against the spec: see test_window_longer_than_the_input)."""
    (h, w), (kh, kw), (sh, sw), (t, left, b, r) = case["hw"], case["kernel"], case["strides"], case["pads"]
    if max(t, b) >= kh or max(left, r) >= kw:
        return False
    spans = (h + t + b - kh, w + left + r - kw)
    if case["ceil_mode"]:  # ONNX: ceil((in + pads - k) / s + 1) windows
        return spans[0] > -sh and spans[1] > -sw
    return min(spans) >= 0


AXES = {
    "op": ["MaxPool", "AveragePool"],
    "hw": [(7, 7), (8, 5), (1, 1), (2, 3), (6, 9)],
    "kernel": [(2, 2), (3, 3), (3, 2), (1, 1)],
    "strides": [(1, 1), (2, 2), (3, 2)],
    "pads": [(0, 0, 0, 0), (1, 1, 1, 1), (1, 0, 0, 1), (0, 1, 1, 0), (2, 1, 1, 2)],
    "ceil_mode": [0, 1],
    "count_include_pad": [0, 1],
}


def check(case):
    attrs = {"kernel_shape": list(case["kernel"]), "strides": list(case["strides"]), "pads": list(case["pads"]),
             "ceil_mode": case["ceil_mode"]}
    if case["op"] == "AveragePool":
        attrs["count_include_pad"] = case["count_include_pad"]
    data = pool_model(case["op"], case["hw"], **attrs)
    x = rng_for(tuple(case.items())).uniform(-1, 1, (2, 3, *case["hw"])).astype(np.float32)
    np.testing.assert_allclose(pyconv.from_onnx(data).run(x), ort_run(data, {"x": x})[0], rtol=1e-6, atol=1e-6,
                               err_msg=str(case))


@pytest.mark.parametrize("case", pairwise(AXES, valid=fits), ids=str)
def test_pools_match_onnxruntime(case):
    check(case)


@pytest.mark.slow
def test_pools_match_onnxruntime_exhaustive():
    for values in itertools.product(*AXES.values()):
        case = dict(zip(AXES, values))
        if fits(case) and not (case["op"] == "MaxPool" and case["count_include_pad"]):
            check(case)


@pytest.mark.parametrize("count_include_pad", [False, True])
@pytest.mark.parametrize("hw, kernel, stride, pad", [((1, 1), 2, 2, 0), ((3, 2), 4, 3, 1), ((1, 5), 3, 2, 1),
                                                     ((2, 2), 5, 4, 2)])
def test_window_longer_than_the_input(hw, kernel, stride, pad, count_include_pad):
    """With ceil_mode a window longer than the padded input still gives one output (ONNX's
    ceil((in + pads - k) / s + 1), PyTorch's rule); without it, there is none and the import says so
    (ONNX Runtime's truncating division gives one there, against the spec)."""
    torch = pytest.importorskip("torch")
    x = rng_for("long", hw, kernel).uniform(-1, 1, (2, 3, *hw)).astype(np.float32)
    common = {"kernel_shape": [kernel] * 2, "strides": [stride] * 2, "pads": [pad] * 4}
    avg = pool_model("AveragePool", hw, ceil_mode=1, count_include_pad=int(count_include_pad), **common)
    mx = pool_model("MaxPool", hw, ceil_mode=1, **common)
    t = torch.from_numpy(x)
    with torch.no_grad():
        ref_avg = torch.nn.functional.avg_pool2d(t, kernel, stride, pad, ceil_mode=True,
                                                 count_include_pad=count_include_pad).numpy()
        ref_max = torch.nn.functional.max_pool2d(t, kernel, stride, pad, ceil_mode=True).numpy()
    np.testing.assert_allclose(pyconv.from_onnx(avg).run(x), ref_avg, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(pyconv.from_onnx(mx).run(x), ref_max, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(pyconv.from_onnx(mx).run(x), ort_run(mx, {"x": x})[0], rtol=1e-6, atol=1e-6)
    if kernel > hw[0] + 2 * pad:
        with pytest.raises(pyconv.OnnxImportError, match="expected a window that fits the input"):
            pyconv.from_onnx(pool_model("MaxPool", hw, ceil_mode=0, **common))
