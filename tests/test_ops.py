"""Tests of pyconv.ops (pooling, add, scale_shift, concat, channel_shuffle, softmax) against naive NumPy
references written here, cell by cell from the definitions, sharing no code with the kernels.

Shapes are deliberately odd and channel counts straddle the vector widths (1, 3, 16, 17, 33) so the
remainder paths run. Every kernel case also runs on 1 and 2 threads, which must agree bit for bit.
The ops give small inputs fewer threads than asked for; an autouse fixture lowers that threshold so
that ``threads=2`` really runs two threads on these small test shapes. The full cross product of the
pooling sweep is marked slow; the default run takes a covering slice.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from pyconv import ops

CHANNELS = (1, 3, 16, 17, 33)
SPATIAL = ((1, 1), (7, 5), (15, 17))
# (kernel, stride): stride None means the kernel; 3/2 is the ResNet/ShuffleNet max pool.
WINDOWS = ((1, None), (2, None), (3, 1), (3, 2), ((2, 3), (1, 2)))
PADDINGS = ("valid", "same", 0, 1, 2, (1, 0), (0, 2), ((1, 0), (0, 1)), ((0, 2), (2, 1)))


@pytest.fixture(autouse=True)
def every_thread_gets_work(monkeypatch):
    monkeypatch.setattr(ops, "_WORK_PER_THREAD", 1)


def test_small_inputs_use_fewer_threads(monkeypatch):
    monkeypatch.setattr(ops, "_WORK_PER_THREAD", 1 << 16)
    assert ops._threads_for(2, 1000) == 1
    assert ops._threads_for(2, 1 << 20) == 2
    assert ops._threads_for(1, 1 << 20) == 1
    with pytest.raises(ValueError, match="threads"):
        ops._threads_for(0, 1 << 20)


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


# ---------------------------------------------------------------------------------------------------
# References
# ---------------------------------------------------------------------------------------------------

def ref_pads(padding, hw, k, s):
    """(top, bottom, left, right) for each padding form; "same" is TensorFlow's rule."""
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":
        pads = []
        for n, kk, ss in zip(hw, k, s):
            out = -(-n // ss)
            total = max((out - 1) * ss + kk - n, 0)
            pads += [total // 2, total - total // 2]
        return tuple(pads)
    if isinstance(padding, int):
        return (padding,) * 4
    a, b = padding
    if isinstance(a, int):
        return (a, a, b, b)
    return (*a, *b)


def ref_window_starts(n, k, s, before, after, ceil_mode):
    """Window starts along one axis, in input coordinates (negative: inside the leading pad).

    Floor mode: every window that fits in the padded input. Ceil mode: keep adding windows while the
    previous one had not reached the end of the padded input (so the first one even when it is longer
    than the padded input by less than a stride, as in PyTorch), but only ones starting inside the
    input or its leading pad.
    """
    span = n + before + after - k
    starts = []
    o = 0
    while (o * s <= span) if not ceil_mode else ((o - 1) * s < span):
        if ceil_mode and o * s - before >= n:
            break
        starts.append(o * s - before)
        o += 1
    return starts


def pool_ref(x, kernel, stride, padding, *, ceil_mode, mode, count_include_pad=False):
    """Pooling cell by cell in float64, or None when some window would hold no input cell."""
    x = x.astype(np.float64)
    n, h, w, c = x.shape
    kh, kw = _pair(kernel)
    sh, sw = _pair(kernel if stride is None else stride)
    t, b, l, r = ref_pads(padding, (h, w), (kh, kw), (sh, sw))
    rows = ref_window_starts(h, kh, sh, t, b, ceil_mode)
    cols = ref_window_starts(w, kw, sw, l, r, ceil_mode)
    if not rows or not cols:
        return None
    y = np.empty((n, len(rows), len(cols), c))
    for i, hs in enumerate(rows):
        for j, ws in enumerate(cols):
            cells = [(p, q) for p in range(hs, hs + kh) for q in range(ws, ws + kw)]
            inside = [(p, q) for p, q in cells if 0 <= p < h and 0 <= q < w]
            if not inside:
                return None
            vals = np.stack([x[:, p, q, :] for p, q in inside])
            if mode == "max":
                y[:, i, j] = vals.max(axis=0)
                continue
            if count_include_pad:
                divisor = sum(1 for p, q in cells if -t <= p < h + b and -l <= q < w + r)
            else:
                divisor = len(inside)
            y[:, i, j] = vals.sum(axis=0) / divisor
    return y


def activate_ref(y, activation):
    if activation == "relu":
        return np.maximum(y, 0)
    if activation == "relu6":
        return np.clip(y, 0, 6)
    return y


def softmax_ref(x, axis=-1):
    x = x.astype(np.float64)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def shuffle_ref(x, groups):
    c = x.shape[-1]
    return x.reshape(*x.shape[:-1], groups, c // groups).swapaxes(-1, -2).reshape(x.shape)


# ---------------------------------------------------------------------------------------------------
# Pooling
# ---------------------------------------------------------------------------------------------------

POOL_MODES = (("max", False), ("avg", False), ("avg", True))


def _run_pool(x, kernel, stride, padding, ceil_mode, mode, cip, threads):
    if mode == "max":
        return ops.max_pool2d(x, kernel, stride, padding, ceil_mode=ceil_mode, threads=threads)
    return ops.avg_pool2d(x, kernel, stride, padding, ceil_mode=ceil_mode, count_include_pad=cip,
                          threads=threads)


def _check_pool(hw, window, padding, ceil_mode, n, c, seed):
    kernel, stride = window
    x = np.random.default_rng(seed).standard_normal((n, *hw, c)).astype(np.float32)
    for mode, cip in POOL_MODES:
        want = pool_ref(x, kernel, stride, padding, ceil_mode=ceil_mode, mode=mode, count_include_pad=cip)
        if want is None:
            with pytest.raises(ValueError, match="kernel|padding"):
                _run_pool(x, kernel, stride, padding, ceil_mode, mode, cip, 1)
            continue
        one = _run_pool(x, kernel, stride, padding, ceil_mode, mode, cip, 1)
        two = _run_pool(x, kernel, stride, padding, ceil_mode, mode, cip, 2)
        assert one.dtype == np.float32 and one.shape == want.shape, (mode, one.shape, want.shape)
        np.testing.assert_array_equal(one, two, err_msg="thread count changed the result")
        if mode == "max":
            np.testing.assert_array_equal(one, want.astype(np.float32))
        else:
            np.testing.assert_allclose(one, want, rtol=1e-5, atol=1e-6, err_msg=f"{mode} cip={cip}")


_POOL_GRID = list(itertools.product(SPATIAL, WINDOWS, PADDINGS, (False, True)))


@pytest.mark.parametrize("case", range(len(_POOL_GRID)))
def test_pool_matches_reference(case):
    # Every shape x window x padding x ceil_mode, each with one of the channel counts and batch sizes
    # in turn, so together they cover all of them; the full product is the slow test below.
    hw, window, padding, ceil_mode = _POOL_GRID[case]
    _check_pool(hw, window, padding, ceil_mode, n=(1, 3)[case % 2], c=CHANNELS[case % len(CHANNELS)],
                seed=case)


@pytest.mark.slow
@pytest.mark.parametrize("n", (1, 3))
@pytest.mark.parametrize("c", CHANNELS)
@pytest.mark.parametrize("hw, window, padding, ceil_mode", _POOL_GRID)
def test_pool_matches_reference_full(hw, window, padding, ceil_mode, n, c):
    _check_pool(hw, window, padding, ceil_mode, n, c, seed=c * 10 + n)


@pytest.mark.parametrize("hw, window, padding, c", [((147, 147), (3, 2), "same", 128), ((75, 149), (3, 2), "valid", 100),
                                                   ((64, 64), (2, 2), "valid", 257)],
                         ids=["147x147x128", "75x149x100", "64x64x257"])
def test_pool_large_maps(hw, window, padding, c):
    # Maps of 4 MB and more, whose rows prefetch the input cells of the window a few outputs ahead.
    _check_pool(hw, window, padding, False, 1, c, seed=c)


@pytest.mark.parametrize("activation", ["relu", "relu6"])
@pytest.mark.parametrize("c", [3, 70])
def test_pool_activation(activation, c):
    x = np.random.default_rng(c).standard_normal((2, 9, 7, c)).astype(np.float32) * 8
    for mode, cip in POOL_MODES:
        want = pool_ref(x, 3, 2, 1, ceil_mode=False, mode=mode, count_include_pad=cip)
        want = np.maximum(want, 0) if activation == "relu" else np.clip(want, 0, 6)
        pool = ops.max_pool2d if mode == "max" else lambda *a, **k: ops.avg_pool2d(*a, count_include_pad=cip, **k)
        for threads in (1, 2):
            got = pool(x, 3, 2, 1, activation=activation, threads=threads)
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=f"{mode} {activation}")
    with pytest.raises(ValueError, match="activation"):
        ops.max_pool2d(x, 3, activation="swish")


def test_pool_shapes_of_common_layers():
    x = np.zeros((1, 112, 112, 8), np.float32)
    assert ops.max_pool2d(x, 3, 2, 1).shape == (1, 56, 56, 8)                    # ResNet
    assert ops.max_pool2d(x, 3, 2, ceil_mode=True).shape == (1, 56, 56, 8)      # ShuffleNet (Caffe)
    assert ops.max_pool2d(x, 3, 2, "same").shape == (1, 56, 56, 8)
    assert ops.avg_pool2d(x, 2).shape == (1, 56, 56, 8)


def test_max_pool_ignores_padding_and_propagates_nan():
    x = -np.ones((1, 2, 2, 1), np.float32) * np.arange(1, 5, dtype=np.float32).reshape(1, 2, 2, 1)
    # All inputs negative: a zero-valued pad would win if padding were read.
    y = ops.max_pool2d(x, 2, 1, 1)
    assert y.max() < 0
    np.testing.assert_array_equal(y[0, :, :, 0], [[-1, -1, -2], [-1, -1, -2], [-3, -3, -4]])
    x[0, 1, 1, 0] = np.nan
    y = ops.max_pool2d(x, 2, 1, 1)
    assert np.isnan(y[0, 1:, 1:, 0]).all() and not np.isnan(y[0, 0, 0, 0])
    # Wide channel counts run in 64-channel register blocks: NaN and -inf in a full and a partial block.
    x = np.random.default_rng(3).standard_normal((1, 3, 3, 70)).astype(np.float32)
    x[0, 2, 2, 5] = x[0, 0, 0, 66] = np.nan
    x[:, :, :, 7] = -np.inf
    y = ops.max_pool2d(x, 2, 1)
    want = np.array([[x[0, i:i + 2, j:j + 2].max(axis=(0, 1)) for j in range(2)] for i in range(2)])[None]
    np.testing.assert_array_equal(y, want)  # np.max propagates NaN; assert_array_equal matches NaN to NaN
    assert np.isnan(y).sum() == 2 and np.isneginf(y[..., 7]).all()


def test_avg_pool_divisor_with_and_without_pad():
    x = np.ones((1, 3, 3, 2), np.float32)
    np.testing.assert_array_equal(ops.avg_pool2d(x, 3, 1, 1), 1.0)
    y = ops.avg_pool2d(x, 3, 1, 1, count_include_pad=True)
    np.testing.assert_allclose(y[0, :, :, 0], [[4 / 9, 6 / 9, 4 / 9], [6 / 9, 1, 6 / 9], [4 / 9, 6 / 9, 4 / 9]],
                               rtol=1e-6)


def test_pool_out_argument_and_conversion():
    rng = np.random.default_rng(1)
    x64 = rng.standard_normal((2, 9, 8, 34))
    x = x64[..., ::2]                                       # float64 and not contiguous
    out = np.full((2, 4, 4, 17), np.nan, np.float32)
    y = ops.max_pool2d(x, 2, out=out, threads=2)
    assert y is out
    want = pool_ref(x.astype(np.float32), 2, None, "valid", ceil_mode=False, mode="max")
    np.testing.assert_array_equal(out, want.astype(np.float32))
    ro = np.ascontiguousarray(x, np.float32)
    ro.flags.writeable = False
    np.testing.assert_array_equal(ops.max_pool2d(ro, 2), out)


def test_pool_empty_batch():
    assert ops.avg_pool2d(np.zeros((0, 5, 5, 3), np.float32), 3, 2).shape == (0, 2, 2, 3)


def test_pool_default_threads_match_explicit():
    x = np.random.default_rng(2).standard_normal((2, 40, 40, 33)).astype(np.float32)
    np.testing.assert_array_equal(ops.avg_pool2d(x, 3, 2, "same"), ops.avg_pool2d(x, 3, 2, "same", threads=2))


@pytest.mark.parametrize("kernel, stride, pad", [(2, 2, 0), (3, 2, 1), (3, 1, 1), (3, 2, 0), ((3, 2), (2, 1), (1, 0))])
@pytest.mark.parametrize("hw", [(7, 5), (15, 17), (8, 8)])
@pytest.mark.parametrize("ceil_mode", [False, True])
def test_pool_matches_torch(kernel, stride, pad, hw, ceil_mode):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = np.random.default_rng(3).standard_normal((2, *hw, 5)).astype(np.float32)
    t = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())

    def nhwc(v):
        return v.numpy().transpose(0, 2, 3, 1)

    np.testing.assert_array_equal(
        ops.max_pool2d(x, kernel, stride, pad, ceil_mode=ceil_mode),
        nhwc(F.max_pool2d(t, kernel, stride, pad, ceil_mode=ceil_mode)))
    for cip in (False, True):
        np.testing.assert_allclose(
            ops.avg_pool2d(x, kernel, stride, pad, ceil_mode=ceil_mode, count_include_pad=cip),
            nhwc(F.avg_pool2d(t, kernel, stride, pad, ceil_mode=ceil_mode, count_include_pad=cip)),
            rtol=1e-5, atol=1e-6, err_msg=f"count_include_pad={cip}")


@pytest.mark.parametrize("hw", SPATIAL + ((56, 56),))
@pytest.mark.parametrize("c", CHANNELS + (8, 32, 96, 130))
def test_global_avg_pool(hw, c):
    x = np.random.default_rng(c).standard_normal((3, *hw, c)).astype(np.float32)
    one = ops.global_avg_pool2d(x, threads=1)
    np.testing.assert_array_equal(one, ops.global_avg_pool2d(x, threads=2))
    assert one.shape == (3, c)
    np.testing.assert_allclose(one, x.astype(np.float64).mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------------
# add and scale_shift
# ---------------------------------------------------------------------------------------------------

# (3, 15, 17, 33) spans two kernel tasks, so task boundaries are exercised.
ELEMENTWISE_SHAPES = ((1, 1, 1, 1), (3, 7, 5, 3), (1, 15, 17, 16), (3, 15, 17, 33), (4, 17))


@pytest.mark.parametrize("shape", ELEMENTWISE_SHAPES)
@pytest.mark.parametrize("activation", (None, "relu", "relu6"))
def test_add(shape, activation):
    rng = np.random.default_rng(len(shape))
    a = (rng.standard_normal(shape) * 4).astype(np.float32)
    b = (rng.standard_normal(shape) * 4).astype(np.float32)
    v = (rng.standard_normal(shape[-1]) * 4).astype(np.float32)
    for lhs, rhs in ((a, b), (a, v), (v, a)):
        one = ops.add(lhs, rhs, activation=activation, threads=1)
        np.testing.assert_array_equal(one, ops.add(lhs, rhs, activation=activation, threads=2))
        # float32 addition is exactly rounded, so the reference in float32 must match bit for bit.
        np.testing.assert_array_equal(one, activate_ref(lhs + rhs, activation))


def test_add_in_place():
    rng = np.random.default_rng(4)
    a = rng.standard_normal((2, 5, 7, 17)).astype(np.float32)
    b = rng.standard_normal((2, 5, 7, 17)).astype(np.float32)
    v = rng.standard_normal(17).astype(np.float32)
    want = np.clip(a + b + v, 0, 6)
    assert ops.add(a, b, out=a) is a
    assert ops.add(v, a, activation="relu6", out=a) is a
    np.testing.assert_array_equal(a, want)


@pytest.mark.parametrize("shape", ELEMENTWISE_SHAPES)
@pytest.mark.parametrize("activation", (None, "relu6"))
def test_scale_shift(shape, activation):
    rng = np.random.default_rng(5)
    x = (rng.standard_normal(shape) * 3).astype(np.float32)
    s = rng.standard_normal(shape[-1]).astype(np.float32)
    t = rng.standard_normal(shape[-1]).astype(np.float32)
    x64 = x.astype(np.float64)
    for scale, shift, want in ((s, t, x64 * s + t), (None, t, x64 + t), (s, None, x64 * s), (2.0, -1.0, 2 * x64 - 1)):
        one = ops.scale_shift(x, scale, shift, activation=activation, threads=1)
        np.testing.assert_array_equal(one, ops.scale_shift(x, scale, shift, activation=activation, threads=2))
        np.testing.assert_allclose(one, activate_ref(want, activation), rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------------------------------------
# concat, channel_shuffle, softmax
# ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("widths", [(1, 3), (16, 17, 1), (33, 3, 16, 17), (5, 0, 2)])
@pytest.mark.parametrize("lead", [(1, 1, 1), (3, 7, 5), (2, 15, 17)])
def test_concat(widths, lead):
    rng = np.random.default_rng(sum(widths))
    xs = [rng.standard_normal((*lead, w)).astype(np.float32) for w in widths]
    one = ops.concat(xs, threads=1)
    np.testing.assert_array_equal(one, ops.concat(tuple(xs), threads=2))
    np.testing.assert_array_equal(one, np.concatenate(xs, axis=-1))


def test_concat_other_ranks():
    a, b = np.ones((4, 3), np.float32), np.zeros((4, 2))
    np.testing.assert_array_equal(ops.concat([a, b]), np.concatenate([a, b], axis=1))
    np.testing.assert_array_equal(ops.concat([a]), a)


@pytest.mark.parametrize("c, groups", [(1, 1), (3, 3), (16, 2), (16, 4), (17, 17), (33, 3), (24, 8), (116, 2)])
@pytest.mark.parametrize("lead", [(1, 1, 1), (3, 7, 5), (2, 15, 17)])
def test_channel_shuffle(c, groups, lead):
    x = np.random.default_rng(c).standard_normal((*lead, c)).astype(np.float32)
    one = ops.channel_shuffle(x, groups, threads=1)
    np.testing.assert_array_equal(one, ops.channel_shuffle(x, groups, threads=2))
    np.testing.assert_array_equal(one, shuffle_ref(x, groups))


def test_channel_shuffle_is_a_permutation_with_known_inverse():
    x = np.arange(12, dtype=np.float32).reshape(1, 1, 1, 12)
    np.testing.assert_array_equal(ops.channel_shuffle(x, 3)[0, 0, 0], [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11])
    np.testing.assert_array_equal(ops.channel_shuffle(ops.channel_shuffle(x, 3), 4), x)


@pytest.mark.parametrize("shape", [(1, 1), (3, 1000), (2, 7, 5, 17), (700, 33)])
def test_softmax(shape):
    x = (np.random.default_rng(6).standard_normal(shape) * 5).astype(np.float32)
    one = ops.softmax(x, threads=1)
    np.testing.assert_array_equal(one, ops.softmax(x, threads=2))
    np.testing.assert_allclose(one, softmax_ref(x), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("axis", [0, 1, 2, -3])
def test_softmax_other_axes(axis):
    x = np.random.default_rng(7).standard_normal((3, 4, 5)).astype(np.float32)
    np.testing.assert_allclose(ops.softmax(x, axis), softmax_ref(x, axis), rtol=1e-5, atol=1e-7)


def test_softmax_large_logits_are_stable():
    x = np.array([[1e4, 1e4 - 1, -1e4], [3e38, 3e38, 0], [-1e30, -1e30, -1e30], [0, -np.inf, 1]], np.float32)
    y = ops.softmax(x)
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_allclose(y[0], [1 / (1 + np.exp(-1)), np.exp(-1) / (1 + np.exp(-1)), 0], rtol=1e-6)
    np.testing.assert_allclose(y[1], [0.5, 0.5, 0])
    np.testing.assert_allclose(y[2], [1 / 3] * 3, rtol=1e-6)
    assert y[3, 1] == 0


# ---------------------------------------------------------------------------------------------------
# Argument validation
# ---------------------------------------------------------------------------------------------------

X = np.zeros((1, 5, 5, 4), np.float32)
OUT8 = np.zeros((1, 5, 5, 8), np.float32)


@pytest.mark.parametrize("call, error, name", [
    (lambda: ops.max_pool2d(X[0], 2), ValueError, "x"),
    (lambda: ops.avg_pool2d(X.astype(complex), 2), TypeError, "x"),
    (lambda: ops.max_pool2d("image", 2), TypeError, "x"),
    (lambda: ops.max_pool2d(X, 0), ValueError, "kernel"),
    (lambda: ops.max_pool2d(X, (2, 2, 2)), TypeError, "kernel"),
    (lambda: ops.max_pool2d(X, 2, "2"), TypeError, "stride"),
    (lambda: ops.max_pool2d(X, 6), ValueError, "kernel"),
    (lambda: ops.max_pool2d(X, 2, padding="full"), ValueError, "padding"),
    (lambda: ops.max_pool2d(X, 2, padding=-1), ValueError, "padding"),
    (lambda: ops.max_pool2d(X, 2, padding=(1, 2, 3)), ValueError, "padding"),
    (lambda: ops.max_pool2d(X, 2, padding=2), ValueError, "padding"),           # window all padding
    (lambda: ops.avg_pool2d(X, 3, 1, ((0, 0), (3, 0))), ValueError, "padding"),
    (lambda: ops.max_pool2d(X, 2, out=np.zeros((1, 2, 2, 4))), TypeError, "out"),
    (lambda: ops.max_pool2d(X, 2, out=np.zeros((1, 3, 3, 4), np.float32)), ValueError, "out"),
    (lambda: ops.max_pool2d(X, 1, out=X), ValueError, "out"),
    (lambda: ops.max_pool2d(X, 2, threads=0), ValueError, "threads"),
    (lambda: ops.global_avg_pool2d(X[0]), ValueError, "x"),
    (lambda: ops.global_avg_pool2d(np.zeros((1, 0, 3, 2))), ValueError, "x"),
    (lambda: ops.add(X, X[..., :3]), ValueError, "b"),
    (lambda: ops.add(X, np.zeros(3)), ValueError, "b"),
    (lambda: ops.add(X, 1.0), ValueError, "b"),
    (lambda: ops.add(X, X, activation="swish"), ValueError, "activation"),
    (lambda: ops.add(X, np.zeros(4, np.float32), out=np.zeros(4, np.float32)), ValueError, "out"),
    (lambda: ops.scale_shift(X, np.ones(3)), ValueError, "scale"),
    (lambda: ops.scale_shift(X, None, np.ones((1, 4))), ValueError, "shift"),
    (lambda: ops.concat(X), TypeError, "xs"),
    (lambda: ops.concat([]), ValueError, "xs"),
    (lambda: ops.concat([X, X[:, :4]]), ValueError, "xs\\[1\\]"),
    (lambda: ops.concat([X, X[0]]), ValueError, "xs\\[1\\]"),
    (lambda: ops.concat([X, "a"]), TypeError, "xs\\[1\\]"),
    (lambda: ops.concat([X, X], out=X), ValueError, "out"),
    (lambda: ops.concat([OUT8.reshape(-1)[:100].reshape(X.shape)] * 2, out=OUT8), ValueError, "out"),
    (lambda: ops.channel_shuffle(X, 3), ValueError, "groups"),
    (lambda: ops.channel_shuffle(X, 0), ValueError, "groups"),
    (lambda: ops.channel_shuffle(X, 2.0), TypeError, "groups"),
    (lambda: ops.softmax(X, axis=4), ValueError, "axis"),
    (lambda: ops.softmax(X, axis=1.0), TypeError, "axis"),
    (lambda: ops.softmax(np.float32(1)), ValueError, "x"),
])
def test_rejections_name_the_argument(call, error, name):
    with pytest.raises(error, match=name):
        call()
