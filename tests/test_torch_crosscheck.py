"""pyconv against torch.nn.functional.conv2d, a second oracle written by other people.

Layouts are converted NHWC -> NCHW and HWIO -> OIHW; depthwise is torch's groups=C with
``(C*M, 1, KH, KW)`` weights, whose output order c*M + m is the contract's. Asymmetric and "same"
padding are applied with F.pad before a padding-free torch conv (torch's own "same" puts the odd pixel
differently and does not allow stride > 1). Skipped when torch is not installed.
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

import pyconv  # noqa: E402
from conftest import assert_close, rand, rng_for  # noqa: E402
from reference import explicit_pads  # noqa: E402


def torch_conv2d(x, w, b=None, *, stride=1, padding="valid", dilation=1, groups=1, activation=None):
    """NHWC/HWIO in, NHWC out, computed by torch in float64."""
    kh, kw = w.shape[:2]
    t, bo, l, r = explicit_pads(padding, x.shape[1:3], (kh, kw), stride, dilation)
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float64))
    xt = F.pad(xt, (l, r, t, bo))
    wt = torch.from_numpy(np.ascontiguousarray(w.transpose(3, 2, 0, 1), dtype=np.float64))
    bt = None if b is None else torch.from_numpy(b.astype(np.float64))
    y = F.conv2d(xt, wt, bt, stride=stride, dilation=dilation, groups=groups)
    if activation == "relu":
        y = F.relu(y)
    elif activation == "relu6":
        y = F.relu6(y)
    return y.numpy().transpose(0, 2, 3, 1)


def torch_depthwise(x, w, b=None, **kw):
    kh, kwd, c, m = w.shape
    # (KH, KW, C, M) -> HWIO (KH, KW, 1, C*M) with output channel c*M + m; torch groups=C agrees.
    return torch_conv2d(x, w.reshape(kh, kwd, 1, c * m), b, groups=c, **kw)


CONV_CASES = {
    "5x5x3-k3-same": dict(x=(1, 5, 5, 3), k=3, cout=4, s=1, d=1, pad="same", g=1),
    "17x15-k5-s2-same": dict(x=(2, 17, 15, 8), k=5, cout=33, s=2, d=1, pad="same", g=1),
    "224-k3-s2-same": dict(x=(1, 64, 64, 3), k=3, cout=32, s=2, d=1, pad="same", g=1),
    "k7-s3-d2-asym": dict(x=(1, 33, 20, 5), k=7, cout=16, s=3, d=2, pad=((3, 0), (2, 5)), g=1),
    "k2-pad1": dict(x=(3, 7, 9, 17), k=2, cout=49, s=1, d=1, pad=1, g=1),
    "k3-d2-valid": dict(x=(1, 15, 15, 16), k=3, cout=31, s=1, d=2, pad="valid", g=1),
    "k1-s2": dict(x=(2, 9, 9, 65), k=1, cout=48, s=2, d=1, pad="valid", g=1),
    "groups2": dict(x=(1, 10, 10, 8), k=3, cout=4, s=1, d=1, pad="same", g=2),
    "groups3-s2": dict(x=(2, 13, 11, 12), k=3, cout=18, s=2, d=1, pad=(1, 0), g=3),
    "groups8-k5": dict(x=(1, 12, 12, 16), k=5, cout=32, s=1, d=1, pad="same", g=8),
}


@pytest.mark.parametrize("strategy", ["direct", "im2col", "winograd", "auto"])
@pytest.mark.parametrize("name", list(CONV_CASES))
def test_conv2d_against_torch(strategy, name):
    c = CONV_CASES[name]
    if strategy == "winograd" and not (c["k"] == 3 and c["s"] == 1 and c["d"] == 1):
        pytest.skip("winograd serves 3x3 stride 1 dilation 1 only")
    rng = rng_for("torch", name)
    x = rand(rng, *c["x"])
    w = rand(rng, c["k"], c["k"], c["x"][3] // c["g"], c["cout"])
    b = rand(rng, c["cout"])
    kw = dict(stride=c["s"], padding=c["pad"], dilation=c["d"], groups=c["g"], activation="relu")
    y = pyconv.conv2d(x, w, b, strategy=strategy, **kw)
    assert_close(y, torch_conv2d(x, w, b, **kw))


DW_CASES = {
    "mobilenet-s1": dict(x=(1, 28, 28, 32), k=3, m=1, s=1, d=1, pad="same"),
    "mobilenet-s2": dict(x=(2, 29, 27, 24), k=3, m=1, s=2, d=1, pad="same"),
    "k5-m2": dict(x=(1, 15, 17, 17), k=5, m=2, s=1, d=1, pad="same"),
    "k7-m3-d2-valid": dict(x=(1, 20, 20, 5), k=7, m=3, s=1, d=2, pad="valid"),
    "k4-s3-asym": dict(x=(3, 11, 10, 33), k=4, m=1, s=3, d=1, pad=((0, 3), (2, 1))),
}


@pytest.mark.parametrize("name", list(DW_CASES))
def test_depthwise_against_torch(name):
    c = DW_CASES[name]
    rng = rng_for("torch-dw", name)
    x = rand(rng, *c["x"])
    ch = c["x"][3]
    w = rand(rng, c["k"], c["k"], ch, c["m"])
    b = rand(rng, ch * c["m"])
    kw = dict(stride=c["s"], padding=c["pad"], dilation=c["d"], activation="relu6")
    assert_close(pyconv.depthwise_conv2d(x, w, b, **kw), torch_depthwise(x, w, b, **kw))


@pytest.mark.parametrize("cin, cout", [(3, 4), (32, 64), (65, 49)], ids=str)
def test_pointwise_and_separable_against_torch(cin, cout):
    rng = rng_for("torch-pw", cin, cout)
    x = rand(rng, 2, 14, 14, cin)
    wp = rand(rng, cin, cout)
    bp = rand(rng, cout)
    assert_close(pyconv.pointwise_conv2d(x, wp, bp), torch_conv2d(x, wp.reshape(1, 1, cin, cout), bp))
    wd = rand(rng, 3, 3, cin, 1)
    bd = rand(rng, cin)
    mid = torch_depthwise(x, wd, bd, stride=2, padding="same", activation="relu6")
    ref = torch_conv2d(mid.astype(np.float32), wp.reshape(1, 1, cin, cout), bp, activation="relu")
    y = pyconv.separable_conv2d(x, wd, wp, bd, bp, stride=2, padding="same", depthwise_activation="relu6",
                                activation="relu")
    # The reference rounds the intermediate to float32 once more: allow a little more than usual.
    assert_close(y, ref, rtol=2e-4)


def test_dense_against_torch():
    rng = rng_for("torch-dense")
    x = rand(rng, 5, 1024)
    w = rand(rng, 1024, 1000)
    b = rand(rng, 1000)
    ref = F.linear(torch.from_numpy(x.astype(np.float64)), torch.from_numpy(w.T.astype(np.float64)),
                   torch.from_numpy(b.astype(np.float64))).numpy()
    assert_close(pyconv.dense(x, w, b), ref)
