"""Winograd F(2x2), F(4x4) and F(6x6) (3x3 kernels) against the float64 reference, every tile size on
every shape: the driver (``_kernels.conv2d_winograd`` with ``pack_winograd_weights(tile=m)``) on odd
sizes, 1x1 images, tiles cut at the right and bottom edges, every padding form, groups, bias and fused
activations, batches; the measured error bound of each tile size; identical results for 1, 2 and 3
threads (the units, and the output-channel chunks of small images, depend on the thread count);
every instruction-set level; how ``auto`` and ``strategy="winograd"`` choose the tile, and what an
operator holds.
"""
import numpy as np
import pytest

import pyconv
from pyconv import _kernels, strategy
from pyconv.activations import kernel_args
from pyconv.packing import WINOGRAD_TILES, pack_winograd_weights
from pyconv.padding import output_size, resolve_padding
from conftest import OTHER_LEVELS, assert_close, cases_param, pairwise, rand, rng_for, run_at_level
from reference import conv2d_ref

# Largest max|error| / max|reference| measured on uniform [-1, 1] data (18x18 images, 16, 64 and 256
# input channels, 32 outputs, three seeds, avx512, avx2 and scalar levels): F(2) 7.5e-7, F(4) 1.1e-5,
# F(6) 2.0e-5, each growing with the channels (at 512: 8.7e-7, 1.4e-5, 2.9e-5).  The bounds leave
# about 3x margin.
ERROR_BOUND = {2: 2e-6, 4: 3e-5, 6: 6e-5}

AXES = dict(h=[1, 2, 5, 6, 7, 13, 19], w=[1, 3, 4, 8, 11, 17], pad=["valid", "same", 1, (2, 0), ((0, 2), (1, 3))],
            cin=[1, 5, 16, 33], cout=[1, 7, 16, 40], g=[1, 2], n=[1, 2], bias=[False, True],
            act=[None, "relu", "relu6", "sigmoid"], tile=list(WINOGRAD_TILES))


def _valid(case):
    return case["cin"] % case["g"] == 0 and case["cout"] % case["g"] == 0


CASES = pairwise(AXES, seed=5, valid=_valid)


def run_winograd(x, w, b, padding, groups, act, tile, threads):
    """The driver on one tile size, with the pads and output size that ``padding`` gives."""
    pads = resolve_padding(padding, x.shape[1:3], (3, 3), (1, 1), (1, 1))
    oh = output_size(x.shape[1], 3, 1, 1, pads[0], pads[1])
    ow = output_size(x.shape[2], 3, 1, 1, pads[2], pads[3])
    if oh < 1 or ow < 1:
        return None
    y = np.empty((x.shape[0], oh, ow, w.shape[3]), np.float32)
    _kernels.conv2d_winograd(x, pack_winograd_weights(w, groups, tile), b, y, pads[0], pads[2], groups,
                             kernel_args(act), threads)
    return y


def check_case(case, threads=2):
    rng = rng_for("winograd-tiles", sorted(case.items(), key=str))
    x = rand(rng, case["n"], case["h"], case["w"], case["cin"])
    w = rand(rng, 3, 3, case["cin"] // case["g"], case["cout"])
    b = rand(rng, case["cout"]) if case["bias"] else None
    y = run_winograd(x, w, b, case["pad"], case["g"], case["act"], case["tile"], threads)
    if y is None:
        return
    ref = conv2d_ref(x, w, b, padding=case["pad"], groups=case["g"], activation=case["act"])
    assert_close(y, ref, what=f"F({case['tile']}x{case['tile']},3x3)")


@cases_param(CASES)
def test_every_tile_size_matches_reference(case):
    check_case(case)


@pytest.mark.parametrize("path", OTHER_LEVELS)
@cases_param(CASES[::3])
def test_every_tile_size_at_other_levels(path, case, request):
    run_at_level(request, path)
    check_case(case)


@pytest.mark.parametrize("tile", WINOGRAD_TILES)
@pytest.mark.parametrize("cin", [16, 64, 256])
def test_error_stays_within_the_measured_bound(tile, cin):
    rng = rng_for("winograd-error", tile, cin)
    x = rand(rng, 1, 18, 18, cin)
    w = rand(rng, 3, 3, cin, 32)
    y = run_winograd(x, w, None, 1, 1, None, tile, 1)
    ref = conv2d_ref(x, w, padding=1)
    error = np.abs(y - ref).max() / np.abs(ref).max()
    assert error <= ERROR_BOUND[tile], f"F({tile}x{tile},3x3) over {cin} channels: relative error {error:.2e}"


@pytest.mark.parametrize("tile", WINOGRAD_TILES)
@pytest.mark.parametrize("shape", [(1, 7, 7, 64, 96), (2, 30, 29, 48, 40), (1, 2, 2, 32, 64), (3, 13, 9, 17, 33),
                                   (1, 40, 40, 64, 64), (1, 28, 28, 32, 32), (1, 28, 28, 128, 128, 4)],
                         ids=lambda s: "x".join(map(str, s)))
def test_results_do_not_depend_on_the_thread_count(tile, shape):
    # 7x7x64->96 has fewer tile blocks than threads, so its output channels are split into chunks (and a
    # grouped layer its groups); at 40x40 and 28x28 the blocks of tiles differ with the thread count.
    n, h, wd, cin, cout, *grouped = shape
    groups = grouped[0] if grouped else 1
    rng = rng_for("winograd-threads", tile, shape)
    x, w, b = rand(rng, n, h, wd, cin), rand(rng, 3, 3, cin // groups, cout), rand(rng, cout)
    one = run_winograd(x, w, b, "same", groups, "relu", tile, 1)
    for threads in (2, 3):
        np.testing.assert_array_equal(run_winograd(x, w, b, "same", groups, "relu", tile, threads), one)


@pytest.mark.parametrize("groups, c, hw, at_avx512, at_avx2", [
    (1, 64, 56, 6, 4), (1, 128, 28, 6, 4), (1, 64, 112, 6, 6), (1, 32, 28, 6, 6),
    (1, 256, 56, 4, 4),   # weights 7x the 3x3 ones: F(4)
    (1, 64, 14, 4, 4),    # F(6)'s tiles would cover 18x18
    (1, 256, 14, 4, 2),   # 8-wide GEMMs want F(2)'s 49 tiles
    (2, 128, 28, 4, 4), (4, 128, 28, 4, 4),   # a group's GEMMs are short
    (1, 64, 2, 2, 2), (1, 64, 1, 2, 2)])
def test_winograd_tile_follows_the_measured_rules(groups, c, hw, at_avx512, at_avx2):
    cg = c // groups
    assert strategy.winograd_tile(groups, cg, cg, (hw, hw), "avx512") == at_avx512
    assert strategy.winograd_tile(groups, cg, cg, (hw, hw), "avx2") == at_avx2
    assert strategy.winograd_tile(groups, cg, cg, (hw, hw), "neon") == at_avx2


@pytest.mark.parametrize("c, hw, at_avx512, elsewhere", [(64, 56, 6, 4), (128, 28, 6, 4), (256, 14, 4, 2),
                                                        (512, 14, 4, 2), (32, 112, 6, 6)])
def test_auto_picks_winograd_where_it_measured_faster(c, hw, at_avx512, elsewhere):
    tile = at_avx512 if pyconv.isa.active() == "avx512" else elsewhere
    text = pyconv.explain_conv2d((1, hw, hw, c), (3, 3, c, c), padding="same")
    assert text.startswith("winograd:") and f"F({tile}x{tile},3x3)" in text, text


@pytest.mark.parametrize("c, hw, k, s, d", [(512, 7, 3, 1, 1), (8, 56, 3, 1, 1), (64, 56, 3, 2, 1),
                                             (64, 56, 3, 1, 2), (64, 56, 5, 1, 1), (64, 13, 3, 1, 1)])
def test_auto_keeps_direct_elsewhere(c, hw, k, s, d):
    text = pyconv.explain_conv2d((1, hw, hw, c), (k, k, c, c), stride=s, dilation=d, padding="same")
    assert text.startswith("direct:"), text


@pytest.mark.parametrize("hw, c, groups, at_avx512, at_avx2", [
    (28, 128, 4, True, True), (28, 128, 2, True, True), (14, 256, 4, True, True), (28, 256, 4, True, True),
    (28, 256, 8, True, True), (28, 64, 2, True, False), (14, 128, 4, True, False), (14, 128, 2, True, True),
    (14, 32, 1, True, False), (14, 64, 1, True, True), (28, 32, 1, True, True), (13, 64, 1, False, False),
    (28, 128, 8, True, False), (56, 16, 1, True, False), (14, 256, 16, False, False), (56, 8, 1, False, False)])
def test_winograd_pays_by_level(hw, c, groups, at_avx512, at_avx2):
    cg = c // groups
    assert strategy.winograd_pays(groups, cg, cg, (hw, hw), "avx512") is at_avx512
    assert strategy.winograd_pays(groups, cg, cg, (hw, hw), "avx2") is at_avx2
    assert strategy.winograd_pays(groups, cg, cg, (hw, hw), "neon") is at_avx2


def test_a_layer_picks_its_strategy_at_the_level_in_use():
    if not {"avx512", "avx2"} <= set(pyconv.isa.supported()):
        pytest.skip("needs a CPU that runs both the avx512 and the avx2 level")
    rng = rng_for("level-choice")
    x, w = rand(rng, 1, 28, 28, 64), rand(rng, 3, 3, 32, 64)
    op = pyconv.Conv2D(w, padding="same", groups=2)
    want = conv2d_ref(x, w, padding="same", groups=2)
    with pyconv.isa.use("avx512"):
        assert op.strategy_for(x.shape) == "winograd"
        assert_close(op(x), want, rtol=1e-4)
    with pyconv.isa.use("avx2"):
        assert op.strategy_for(x.shape) == "direct"
        assert_close(op(x), want)


def test_explicit_winograd_names_its_tile():
    op = pyconv.Conv2D(np.zeros((3, 3, 8, 8), np.float32), padding="same", strategy="winograd")
    assert "F(4x4,3x3)" in op.explain((1, 20, 20, 8)).reason
    assert "F(6x6,3x3)" in op.explain((1, 40, 40, 8)).reason
    assert "F(2x2,3x3)" in op.explain((1, 2, 2, 8)).reason


def test_explicit_winograd_holds_its_weights_and_the_packing_it_runs():
    rng = rng_for("winograd-memory")
    w = rand(rng, 3, 3, 16, 24)
    op = pyconv.Conv2D(w, padding="same", strategy="winograd")
    assert op._packed == {} and op.nbytes == w.nbytes
    x = rand(rng, 1, 40, 40, 16)
    assert_close(op(x), conv2d_ref(x, w, padding="same"))
    assert list(op._packed) == ["winograd6"]
    np.testing.assert_array_equal(op.w, w)  # the transform has no exact inverse: the HWIO copy is kept


def test_auto_winograd_layer_matches_reference_with_residual():
    rng = rng_for("winograd-auto-residual")
    x, w, b = rand(rng, 2, 28, 28, 32), rand(rng, 3, 3, 32, 40), rand(rng, 40)
    r = rand(rng, 2, 28, 28, 40)
    op = pyconv.Conv2D(w, b, padding="same", activation="relu")
    assert op.strategy_for(x.shape) == "winograd"
    ref = conv2d_ref(x, w, b, padding="same") + r
    assert_close(op(x, residual=r, threads=2), np.maximum(ref, 0))


def test_packing_rejects_unknown_tiles():
    with pytest.raises(ValueError, match="tile"):
        pack_winograd_weights(np.zeros((3, 3, 4, 4), np.float32), 1, 3)


def test_concurrent_callers_keep_their_own_scratch():
    # Each thread keeps its Winograd buffers for its next call (ukernels/scratch.c): callers running
    # layers of other sizes side by side must not share them.
    import threading

    rng = rng_for("concurrent")
    layers = []
    for hw, c in [(28, 32), (40, 64), (14, 128)]:
        x, w = rand(rng, 1, hw, hw, c), rand(rng, 3, 3, c, c)
        op = pyconv.Conv2D(w, padding="same", strategy="winograd")
        layers.append((op, x, op(x, threads=1)))
    failures = []

    def caller(i):
        for k in range(30):
            op, x, want = layers[(i + k) % len(layers)]
            if not np.array_equal(op(x, threads=1 + k % 2), want):
                failures.append((i, k))

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures
