"""Threading: the thread-count resolution, determinism across thread counts, and thread safety.

Covers: pyconv.threads.resolve_threads (explicit value, OMP_NUM_THREADS checked in a subprocess, the
usable-core default, rejection of 0/negative/non-int and of more than MAX_THREADS); ``threads=`` on
every operator (0 or negative is a ValueError); results of threads=1, 2 and None compared bit for bit
on shapes big enough to be split; concurrent calls from several Python threads on the same and on different operators; show_config().
"""
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import pyconv
from pyconv import _kernels
from pyconv.threads import resolve_threads
from conftest import assert_close, rand, rng_for
from reference import conv2d_ref, dense_ref, depthwise_conv2d_ref, pointwise_conv2d_ref, separable_conv2d_ref


def _operators():
    """One prepared operator per kernel path (every conv2d strategy and direct micro-kernel), with an
    input and a reference. Every shape is well above the work below which a call stays on one thread
    (about 200k multiply-adds per thread), so threads=2 really splits it."""
    rng = rng_for("thread-ops")
    x = rand(rng, 3, 29, 31, 24)
    w = rand(rng, 3, 3, 24, 40)
    b = rand(rng, 40)
    wg = rand(rng, 3, 3, 6, 40)
    wn = rand(rng, 3, 3, 4, 48)
    wd = rand(rng, 5, 5, 24, 2)
    wd1 = rand(rng, 3, 3, 24)
    wp = rand(rng, 24, 50)
    wp2 = rand(rng, 48, 33)
    wp1 = rand(rng, 24, 70)
    xd = rand(rng, 37, 300)
    wdn = rand(rng, 300, 70)
    # One image, 64 pixels (fewer than 4 pixel blocks per thread), ten 32-wide panels: the split has to
    # go across output channels.
    x_wide = rand(rng, 1, 8, 8, 256)
    w_wide = rand(rng, 3, 3, 256, 320)
    # K = 5*5*24 = 600: more than one 512-deep K block accumulates into each output.
    w_k = rand(rng, 5, 5, 24, 17)
    ops = {}
    for s in ["direct", "im2col", "winograd", "auto"]:
        ops[f"conv2d-{s}"] = (pyconv.Conv2D(w, b, padding="same", activation="relu", strategy=s), x,
                              conv2d_ref(x, w, b, padding="same", activation="relu"))
    for s in ["direct", "im2col"]:
        ops[f"conv2d-{s}-one-block-many-panels"] = (pyconv.Conv2D(w_wide, strategy=s, padding="same"), x_wide,
                                                    conv2d_ref(x_wide, w_wide, padding="same"))
        ops[f"conv2d-{s}-k-blocks"] = (pyconv.Conv2D(w_k, strategy=s, stride=2), x,
                                       conv2d_ref(x, w_k, stride=2))
    ops["conv2d-s2-groups4"] = (pyconv.Conv2D(wg, b, stride=2, padding="same", groups=4), x,
                                conv2d_ref(x, wg, b, stride=2, padding="same", groups=4))
    ops["conv2d-narrow-groups6"] = (pyconv.Conv2D(wn, padding="same", groups=6, activation="relu6"), x,
                                    conv2d_ref(x, wn, padding="same", groups=6, activation="relu6"))
    ops["conv2d-groups-equal-channels"] = (pyconv.Conv2D(wd.reshape(5, 5, 1, 48), groups=24, padding=2), x,
                                           conv2d_ref(x, wd.reshape(5, 5, 1, 48), groups=24, padding=2))
    ops["depthwise"] = (pyconv.DepthwiseConv2D(wd, padding="same", activation="relu6"), x,
                        depthwise_conv2d_ref(x, wd, padding="same", activation="relu6"))
    ops["depthwise-s2"] = (pyconv.DepthwiseConv2D(wd1, b[:24], stride=2, padding="same"), x,
                           depthwise_conv2d_ref(x, wd1, b[:24], stride=2, padding="same"))
    ops["pointwise"] = (pyconv.PointwiseConv2D(wp), x, pointwise_conv2d_ref(x, wp))
    ops["separable-m2"] = (pyconv.SeparableConv2D(wd, wp2, stride=2, padding="same"), x,
                           separable_conv2d_ref(x, wd, wp2, stride=2, padding="same"))
    ops["separable-fused"] = (pyconv.SeparableConv2D(wd1, wp1, b[:24], padding="same",
                                                     depthwise_activation="relu6", activation="relu"), x,
                              separable_conv2d_ref(x, wd1, wp1, b[:24], padding="same",
                                                   depthwise_activation="relu6", activation="relu"))
    ops["dense"] = (pyconv.Dense(wdn), xd, dense_ref(xd, wdn))
    return ops


OPS = _operators()


# ---- resolve_threads ------------------------------------------------------------------------------

def test_explicit_thread_count_wins():
    assert resolve_threads(1) == 1
    assert resolve_threads(2) == 2
    assert resolve_threads(7) == 7
    assert resolve_threads(np.int64(3)) == 3


@pytest.mark.parametrize("bad", [0, -1, -8], ids=str)
def test_non_positive_thread_count_is_a_value_error(bad):
    with pytest.raises(ValueError, match="threads"):
        resolve_threads(bad)


@pytest.mark.parametrize("bad", [1.5, "2", True], ids=str)
def test_non_integer_thread_count_is_rejected(bad):
    with pytest.raises((TypeError, ValueError), match="threads"):
        resolve_threads(bad)


def _in_subprocess(code, **env):
    full_env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    full_env.update(env)
    res = subprocess.run([sys.executable, "-c", code], env=full_env, capture_output=True, text=True,
                         timeout=120)
    return res


@pytest.mark.parametrize("env, expected", [("3", 3), ("1", 1), ("5,2", 5), (" 2 ", 2)],
                         ids=["3", "1", "nested-list", "spaces"])
def test_omp_num_threads_is_the_default(env, expected):
    res = _in_subprocess("from pyconv.threads import resolve_threads as r; print(r(None), r(4))",
                         OMP_NUM_THREADS=env)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == [str(expected), "4"]


def test_without_omp_num_threads_the_default_is_the_usable_cores():
    res = _in_subprocess("import os; from pyconv.threads import resolve_threads as r; "
                         "print(r(None), len(os.sched_getaffinity(0)))")
    assert res.returncode == 0, res.stderr
    got, affinity = map(int, res.stdout.split())
    # A cgroup CPU quota may lower it below the affinity mask, never raise it.
    assert 1 <= got <= affinity


def test_more_threads_than_can_be_started_are_refused():
    """OpenMP starts every thread a call asks for, and a process that cannot create them dies: above
    MAX_THREADS (the drivers' own bound too) the count is a ValueError, from the model API as well."""
    from pyconv.threads import MAX_THREADS

    assert _kernels.MAX_THREADS == MAX_THREADS and resolve_threads(MAX_THREADS) == MAX_THREADS
    with pytest.raises(ValueError, match=f"1..{MAX_THREADS}"):
        resolve_threads(MAX_THREADS + 1)
    config = Path(__file__).resolve().parents[1] / "models" / "toy_design_doc.json"
    res = _in_subprocess("import pyconv\n"
                         f"try:\n    pyconv.load({str(config)!r}, threads=100000)\n"
                         "except ValueError as e:\n    print('refused', e)")
    assert res.returncode == 0 and "refused" in res.stdout, res.stderr
    res = _in_subprocess("from pyconv.threads import resolve_threads as r; r(None)", OMP_NUM_THREADS="100000")
    assert res.returncode != 0 and "OMP_NUM_THREADS" in res.stderr


def test_bad_omp_num_threads_is_reported():
    res = _in_subprocess("from pyconv.threads import resolve_threads as r; r(None)", OMP_NUM_THREADS="zero")
    assert res.returncode != 0
    assert "OMP_NUM_THREADS" in res.stderr


def test_omp_num_threads_reaches_the_kernels():
    # Under OMP_NUM_THREADS=1 a default call must still give the same answer as an explicit one.
    code = ("import numpy as np, pyconv; r = np.random.default_rng(0); "
            "x = r.uniform(-1, 1, (2, 30, 30, 16)).astype(np.float32); "
            "w = r.uniform(-1, 1, (3, 3, 16, 32)).astype(np.float32); "
            "a = pyconv.conv2d(x, w, padding='same'); b = pyconv.conv2d(x, w, padding='same', threads=2); "
            "print(pyconv.threads.resolve_threads(None), np.array_equal(a, b))")
    res = _in_subprocess(code, OMP_NUM_THREADS="1")
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["1", "True"]


_COUNT_TASKS = """
import os, numpy as np, pyconv
def tasks():
    return len(os.listdir("/proc/self/task"))
r = np.random.default_rng(0)
x = r.uniform(-1, 1, (2, 40, 40, 32)).astype(np.float32)
w = r.uniform(-1, 1, (3, 3, 32, 64)).astype(np.float32)
T = {threads}
start = tasks()
for s in ["direct", "im2col", "winograd"]:
    pyconv.conv2d(x, w, padding="same", strategy=s, threads=T)
pyconv.conv2d(x, w[:, :, :8], padding="same", groups=4, threads=T)
pyconv.depthwise_conv2d(x, w[..., 0], threads=T)
pyconv.pointwise_conv2d(x, w[0, 0], threads=T)
pyconv.separable_conv2d(x, w[..., 0], w[0, 0], threads=T)
pyconv.dense(x[:, 0, 0], w[0, 0], threads=T)
single = tasks()
pyconv.conv2d(x, w, padding="same", threads=2)
print(start, single, tasks())
"""


@pytest.mark.parametrize("threads, env", [("1", "4"), ("None", "1")], ids=["threads=1", "OMP_NUM_THREADS=1"])
def test_one_thread_really_is_one_thread(threads, env):
    # Users report "num_threads=1" runtimes that still start a pool. Count the process's OS threads
    # after a call of every kind: with one thread requested none may have been started. numpy's
    # OpenBLAS pool is pinned to one thread so that it does not blur the count; the last call, with
    # threads=2, shows that the count does see a pool when one starts.
    res = _in_subprocess(_COUNT_TASKS.format(threads=threads), OMP_NUM_THREADS=env, OPENBLAS_NUM_THREADS="1")
    assert res.returncode == 0, res.stderr
    start, single, after_two = map(int, res.stdout.split())
    assert start == 1
    assert single == 1
    # A sequential build (PYCONV_NO_OPENMP=1) never starts a pool.
    assert after_two >= 2 if _kernels.OPENMP else after_two == 1


# ---- threads= on the operators --------------------------------------------------------------------

@pytest.mark.parametrize("bad", [0, -1], ids=str)
@pytest.mark.parametrize("name", list(OPS))
def test_operators_reject_non_positive_threads(name, bad):
    op, x, _ = OPS[name]
    with pytest.raises(ValueError, match="threads"):
        op(x, threads=bad)


@pytest.mark.parametrize("bad", [0, -2], ids=str)
def test_functional_api_rejects_non_positive_threads(bad):
    op, x, _ = OPS["conv2d-auto"]
    w = rand(rng_for("f"), 3, 3, 24, 4)
    for call in [lambda: pyconv.conv2d(x, w, threads=bad),
                 lambda: pyconv.depthwise_conv2d(x, w[..., 0], threads=bad),
                 lambda: pyconv.pointwise_conv2d(x, w[0, 0], threads=bad),
                 lambda: pyconv.dense(x[:, 0, 0], w[0, 0], threads=bad)]:
        with pytest.raises(ValueError, match="threads"):
            call()


@pytest.mark.parametrize("name", list(OPS))
def test_results_identical_across_thread_counts(name):
    op, x, ref = OPS[name]
    y1 = op(x, threads=1)
    y2 = op(x, threads=2)
    y_default = op(x, threads=None)
    y3 = op(x, threads=3)  # more threads than cores: oversubscribed but still correct
    assert_close(y1, ref)
    # The contract promises equality beyond float reassociation; each output element is summed by one
    # thread in a fixed order, so the results are expected to be bit-identical.
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(y1, y_default)
    np.testing.assert_array_equal(y1, y3)


@pytest.mark.parametrize("strategy", ["direct", "im2col", "auto"])
@pytest.mark.parametrize("n, h, w", [(1, 1, 1), (1, 2, 50), (5, 3, 3), (1, 61, 2), (64, 3, 3), (7, 1, 41)],
                         ids=str)
def test_thread_split_edge_shapes(strategy, n, h, w):
    # Fewer rows/pixels than threads, one long row, many tiny images: the work split must not drop or
    # double any part. (The larger ones are past the size below which a call stays on one thread.)
    rng = rng_for("split", strategy, n, h, w)
    x = rand(rng, n, h, w, 17)
    wt = rand(rng, 3, 3, 17, 33)
    ref = conv2d_ref(x, wt, padding="same")
    y1 = pyconv.conv2d(x, wt, padding="same", strategy=strategy, threads=1)
    y2 = pyconv.conv2d(x, wt, padding="same", strategy=strategy, threads=2)
    assert_close(y2, ref)
    np.testing.assert_array_equal(y1, y2)
    yd = pyconv.depthwise_conv2d(x, wt[:, :, :, 0], padding="same", threads=2)
    assert_close(yd, depthwise_conv2d_ref(x, wt[:, :, :, 0], padding="same"))


# ---- concurrent Python threads --------------------------------------------------------------------

@pytest.mark.parametrize("name", ["conv2d-direct", "conv2d-im2col", "conv2d-winograd",
                                  "conv2d-narrow-groups6", "depthwise", "separable-fused", "separable-m2",
                                  "dense"])
def test_concurrent_calls_on_one_operator(name):
    # Four Python threads share one prepared operator (and any scratch it keeps) with different inputs.
    op, x, _ = OPS[name]
    rng = rng_for("concurrent", name)
    inputs = [x] + [rand(rng, *x.shape) for _ in range(7)]
    expected = [op(xi, threads=1) for xi in inputs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda i: op(inputs[i % 8], threads=1 + i % 2), range(24)))
    for i, y in enumerate(results):
        np.testing.assert_array_equal(y, expected[i % 8], err_msg=f"call {i}")


@pytest.mark.parametrize("strategy", ["direct", "im2col", "winograd", "auto"])
def test_concurrent_first_calls_on_a_fresh_operator(strategy):
    # Packing may be lazy (on the first call for a strategy): four threads racing to make that first
    # call must all get the right answer, and the operator must stay consistent afterwards.
    rng = rng_for("fresh", strategy)
    x = rand(rng, 2, 19, 17, 24)
    w = rand(rng, 3, 3, 12, 40)
    b = rand(rng, 40)
    ref = conv2d_ref(x, w, b, padding="same", groups=2)
    for _ in range(3):
        op = pyconv.Conv2D(w, b, padding="same", groups=2, strategy=strategy)
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(lambda i: op(x, threads=1 + i % 2), range(8)))
        for y in results:
            assert_close(y, ref)
            np.testing.assert_array_equal(y, results[0])


@pytest.mark.parametrize("kind", ["conv2d-auto", "conv2d-direct", "depthwise", "separable"])
def test_concurrent_calls_with_different_shapes(kind):
    # Operators remember what they resolved per input shape (pads, output size, strategy): threads
    # calling a fresh operator with different shapes at once must each get their own shape's answer.
    rng = rng_for("shapes-concurrent", kind)
    w = rand(rng, 3, 3, 32, 48)
    wp = rand(rng, 32, 24)
    shapes = [(1, 5, 7, 32), (2, 16, 16, 32), (1, 1, 1, 32), (3, 9, 4, 32), (1, 30, 2, 32), (2, 8, 8, 32)]
    xs = [rand(rng, *sh) for sh in shapes]
    if kind.startswith("conv2d"):
        op = pyconv.Conv2D(w, stride=2, padding="same", strategy=kind.split("-")[1])
        refs = [conv2d_ref(x, w, stride=2, padding="same") for x in xs]
    elif kind == "depthwise":
        op = pyconv.DepthwiseConv2D(w[..., :2], padding=((0, 2), (1, 1)))
        refs = [depthwise_conv2d_ref(x, w[..., :2], padding=((0, 2), (1, 1))) for x in xs]
    else:
        op = pyconv.SeparableConv2D(w[..., 0], wp, stride=2, padding="same")
        refs = [separable_conv2d_ref(x, w[..., 0], wp, stride=2, padding="same") for x in xs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda i: (i % len(xs), op(xs[i % len(xs)], threads=1 + i % 2)),
                                range(4 * len(xs))))
    for i, y in results:
        assert_close(y, refs[i], what=f"shape {shapes[i]}")


def test_concurrent_calls_on_different_operators():
    names = list(OPS)
    expected = {n: OPS[n][0](OPS[n][1], threads=1) for n in names}

    def run(i):
        n = names[i % len(names)]
        op, x, _ = OPS[n]
        return n, op(x, threads=1 + i % 2)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(run, range(3 * len(names))))
    for n, y in results:
        np.testing.assert_array_equal(y, expected[n], err_msg=n)


def test_concurrent_functional_calls_with_out():
    # Each thread writes into its own preallocated out: no cross-talk between buffers.
    rng = rng_for("concurrent-out")
    xs = [rand(rng, 2, 17, 19, 8) for _ in range(4)]
    w = rand(rng, 3, 3, 8, 16)
    outs = [np.empty((2, 17, 19, 16), np.float32) for _ in range(4)]

    def run(i):
        for _ in range(5):
            y = pyconv.conv2d(xs[i], w, padding="same", out=outs[i], threads=2)
            assert y is outs[i]
        return i

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert sorted(pool.map(run, range(4))) == [0, 1, 2, 3]
    for i in range(4):
        assert_close(outs[i], conv2d_ref(xs[i], w, padding="same"))


# ---- show_config ----------------------------------------------------------------------------------

def test_show_config_prints_version_openmp_simd_and_threads(capsys):
    ret = pyconv.show_config()
    text = capsys.readouterr().out
    if not text and isinstance(ret, str):
        text = ret
    lines = text.lower().splitlines()
    assert pyconv.__version__ in text

    def line_with(word):
        found = [ln for ln in lines if word in ln]
        assert found, f"show_config() has no line about {word!r}:\n{text}"
        return found[0]

    assert re.search(r"\b(on|off|true|false|yes|no|enabled|disabled)\b", line_with("openmp"))
    # The instruction-set level in use and the detected one are named on the line of the word "isa".
    assert re.search(r"isa\W+(avx512|avx2|neon|scalar) \(detected: (avx512|avx2|neon|scalar)", line_with("isa"))
    default_line = [ln for ln in lines if "thread" in ln and "default" in ln] or [line_with("thread")]
    assert re.search(rf"\b{resolve_threads(None)}\b", default_line[0]), default_line


def test_show_config_reports_omp_num_threads():
    res = _in_subprocess("import pyconv; pyconv.show_config()", OMP_NUM_THREADS="7")
    assert res.returncode == 0, res.stderr
    lines = [ln for ln in res.stdout.lower().splitlines() if "thread" in ln]
    assert any("7" in ln for ln in lines), res.stdout
