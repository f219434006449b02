"""Running loaded models: DAG wiring against NumPy, batching, threads, the arena, folds and fusions,
layouts, save/load, summary and profile. Toy configs are built here; every model runs single-threaded
unless the test is about threads.
"""
from __future__ import annotations

import gc
import json
import tracemalloc
import weakref
from pathlib import Path

import numpy as np
import pytest

import pyconv
from conftest import model_config
from pyconv.graph import MemoryPlan, Model, ModelError, load
from pyconv.graph import model as model_module

ROOT = Path(__file__).resolve().parents[1]


def config(*layers: dict, outputs=None, shape=(8, 8, 4), **top) -> dict:
    return model_config(*layers, outputs=outputs, shape=shape, name="toy", **top)


def layer(name, type_, *inputs, **kw) -> dict:
    return {"name": name, "type": type_, "inputs": list(inputs), **kw}


def model(doc, **kw) -> Model:
    return Model(doc, threads=kw.pop("threads", 1), **kw)


def prepared(m: Model, batch: int = 1, variant=None):
    """The arena and bound steps the next run of ``batch`` samples on one thread uses (the pool's last idle one)."""
    with m._prepared(batch, variant) as p:
        return p


def x_for(m: Model, batch=1, seed=0) -> np.ndarray:
    return np.asarray(m.example_input(batch=batch, seed=seed)) * 2.0 - 1.0


# --- NumPy oracles (float64) -------------------------------------------------------------------------

def relu(x):
    return np.maximum(x, 0.0)


def pointwise(x, w, b=None):
    y = x.astype(np.float64) @ w.astype(np.float64)
    return y + b if b is not None else y


def depthwise3x3_same(x, w, b=None):
    n, h, wd, c = x.shape
    xp = np.pad(x.astype(np.float64), ((0, 0), (1, 1), (1, 1), (0, 0)))
    y = sum(xp[:, i:i + h, j:j + wd, :] * w[i, j, :, 0] for i in range(3) for j in range(3))
    return y + b if b is not None else y


def close(a, b, rtol=1e-5):
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * max(1.0, float(np.abs(b).max())))


# --- toy graphs --------------------------------------------------------------------------------------

RESIDUAL = config(
    layer("expand", "pointwise_conv2d", "input", filters=8, activation="relu"),
    layer("dw", "depthwise_conv2d", "expand", kernel=3, padding="same", activation="relu"),
    layer("project", "pointwise_conv2d", "dw", filters=4),
    layer("sum", "add", "project", "input", activation="relu"),
)

BRANCHES = config(
    layer("a", "pointwise_conv2d", "input", filters=3),
    layer("b", "pointwise_conv2d", "input", filters=5, activation="relu6"),
    layer("cat", "concat", "a", "b"),
    layer("gap", "global_avg_pool", "cat"),
    layer("fc", "dense", "gap", units=6),
    outputs=["cat", "fc"],
)

BN_CHAIN = config(
    layer("c1", "conv2d", "input", filters=6, kernel=3, padding="same", use_bias=False),
    layer("bn1", "batch_norm", "c1"),
    layer("act1", "activation", "bn1", function="relu6"),
    layer("dw", "depthwise_conv2d", "act1", kernel=3, stride=2, padding="same", use_bias=False),
    layer("bn2", "batch_norm", "dw"),
    layer("act2", "activation", "bn2", function="relu"),
    layer("pw", "pointwise_conv2d", "act2", filters=8, use_bias=False),
    layer("bn3", "batch_norm", "pw"),
    layer("act3", "activation", "bn3", function="relu"),
    layer("sep", "separable_conv2d", "act3", filters=8, kernel=3, padding="same"),
    layer("bn4", "batch_norm", "sep"),
    layer("gap", "global_avg_pool", "bn4"),
    layer("drop", "dropout", "gap", rate=0.5),
    layer("fc", "dense", "drop", units=5, use_bias=False),
    layer("bn5", "batch_norm", "fc"),
    layer("prob", "softmax", "bn5"),
)


def test_residual_dag_matches_numpy():
    m = model(RESIDUAL)
    x = x_for(m, batch=2)
    w = m.weights
    h = relu(pointwise(x, w["expand"]["kernel"], w["expand"]["bias"]))
    h = relu(depthwise3x3_same(h, w["dw"]["kernel"], w["dw"]["bias"]))
    expected = relu(pointwise(h, w["project"]["kernel"], w["project"]["bias"]) + x)
    close(m(x), expected)


def test_concat_and_multiple_outputs():
    m = model(BRANCHES)
    x = x_for(m)
    out = m.run(x)
    assert isinstance(out, dict) and list(out) == ["cat", "fc"]
    w = m.weights
    cat = np.concatenate([pointwise(x, w["a"]["kernel"], w["a"]["bias"]),
                          np.clip(pointwise(x, w["b"]["kernel"], w["b"]["bias"]), 0, 6)], axis=-1)
    close(out["cat"], cat)
    close(out["fc"], cat.mean(axis=(1, 2)) @ w["fc"]["kernel"] + w["fc"]["bias"])


def test_multiple_inputs_by_name():
    doc = config(layer("sum", "add", "input", "other"))
    doc["layers"].insert(1, {"name": "other", "type": "input", "shape": [8, 8, 4]})
    m = model(doc)
    a, b = np.ones((2, 8, 8, 4)), np.full((2, 8, 8, 4), 2.0)
    assert np.all(m({"input": a, "other": b}) == 3.0)
    with pytest.raises(ModelError, match="pass a dict"):
        m(a)
    with pytest.raises(ModelError, match="batch size 2"):
        m({"input": a, "other": b[:1]})


def test_add_of_three_inputs_applies_the_activation_once():
    doc = config(layer("neg", "pointwise_conv2d", "input", filters=4),
                 layer("sum", "add", "input", "neg", "input", activation="relu"))
    m = model(doc)
    x = x_for(m)
    w = m.weights["neg"]
    close(m(x), relu(2 * x + pointwise(x, w["kernel"], w["bias"])))


def test_batch_equals_single_samples():
    m = model(BN_CHAIN)
    x = x_for(m, batch=3)
    batched = m(x)
    for i in range(3):
        close(batched[i:i + 1], m(x[i:i + 1]), rtol=1e-6)


def test_thread_count_does_not_change_results():
    m = model(BN_CHAIN, threads=1)
    x = x_for(m, batch=2)
    close(m.run(x, threads=2), m.run(x, threads=1), rtol=1e-6)


def test_repeated_runs_are_identical_and_allocate_nothing_new():
    m = model(BN_CHAIN)
    x = x_for(m, batch=2)
    first = m(x)
    arena = prepared(m, 2).arena
    tracemalloc.start()
    try:
        again = m(x)
        # A full collection also empties CPython's tuple free lists, which tracemalloc counts as in use.
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(50):
            again = m(x)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert np.array_equal(first, again)
    assert prepared(m, 2).arena is arena
    assert grown < 1024, f"{grown} bytes kept across 50 runs"


def test_outputs_are_fresh_arrays():
    m = model(RESIDUAL)
    y1 = m(x_for(m, seed=1))
    keep = y1.copy()
    m(x_for(m, seed=2))
    assert np.array_equal(y1, keep)
    assert not np.shares_memory(y1, prepared(m, 1).arena)


def test_nodes_are_bound_once_unless_they_read_a_large_input(monkeypatch):
    m = model(RESIDUAL)
    x1, x2 = x_for(m, seed=1), x_for(m, seed=2)
    m(x1)
    # A small input is copied into a buffer of the arena's: its readers are bound once like the rest.
    p = prepared(m, 1)
    assert p.bound and [step.call is not None for step in p.steps] == [True, True]
    assert any(src is p.inputs["input"] for step in p.steps for src in step.sources)
    # A larger one is read in place: the first node reads the caller's array, which changes every run,
    # and the fused projection reads it too (its shortcut). Both take the checked path.
    monkeypatch.setattr(model_module, "_COPIED_INPUT_BYTES", x1.nbytes - 4)
    m = model(RESIDUAL)
    close(m(x1), model(RESIDUAL, optimize=False)(x1))
    assert not prepared(m, 1).inputs
    assert [step.call is not None for step in prepared(m, 1).steps] == [False, False]
    doc = config(layer("a", "pointwise_conv2d", "input", filters=8, activation="relu"),
                 layer("b", "conv2d", "a", filters=8, kernel=3, padding="same"),
                 layer("c", "separable_conv2d", "b", filters=4, kernel=3, padding="same"),
                 layer("gap", "global_avg_pool", "c"), layer("fc", "dense", "gap", units=3))
    m = model(doc)
    m(x_for(m, seed=1))
    assert [step.call is not None for step in prepared(m, 1).steps] == [False, True, True, True, True]
    # Bound calls read the arena's current contents: a second input gives what the unfused, freshly
    # loaded model gives.
    close(m(x2), model(doc, optimize=False)(x2))


@pytest.mark.parametrize("copied", [True, False], ids=["copied", "in-place"])
@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
def test_input_readers_keep_no_reference_to_the_callers_array(layout, copied, monkeypatch):
    """Nodes reading a model input read a copy of it (small inputs), or are bound to the caller's
    array for one run: the same array with other contents gives the new results, and once the run
    returns the model holds no reference to it."""
    if not copied:
        monkeypatch.setattr(model_module, "_COPIED_INPUT_BYTES", 0)
    doc = json.loads(json.dumps(RESIDUAL if layout == "NHWC" else RGB_STEM))
    doc["layers"][0]["layout"] = layout
    m = model(doc, threads=2)
    fresh = model(doc, optimize=False)

    def arg(x):
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2)) if layout == "NCHW" else x

    x = arg(x_for(model(RESIDUAL if layout == "NHWC" else RGB_STEM), seed=1))
    close(m(x), fresh(x.copy()))
    assert prepared(m, 1).bound == copied
    x *= -0.5  # the same array, other contents
    close(m(x), fresh(x.copy()))
    ref = weakref.ref(x)
    del x
    gc.collect()
    assert ref() is None


def test_bound_model_follows_a_switch_of_level():
    # A bound node chooses its micro-kernel per call: the narrow-group kernel exists on some levels only.
    doc = config(layer("g", "conv2d", "input", filters=8, kernel=3, padding="same", groups=2),
                 layer("g2", "conv2d", "g", filters=8, kernel=3, padding="same", groups=2))
    m = model(doc)
    x = x_for(m)
    best = m(x)
    with pyconv.isa.use("scalar"):
        close(m(x), best)


def test_new_batch_size_plans_lazily_and_caches():
    m = model(RESIDUAL)
    m(x_for(m, batch=1))
    m(x_for(m, batch=4))
    assert sorted(batch for _, batch in m._pools) == [1, 4]
    assert m.plan(4).arena_bytes == 4 * m.plan(1).arena_bytes


def test_batch_norm_folding_equals_unfolded():
    folded, plain = model(BN_CHAIN), model(BN_CHAIN, optimize=False)
    assert sorted(folded.graph.folded) == ["bn1", "bn2", "bn3", "bn4", "bn5"]
    assert not any(n.type in ("batch_norm", "activation", "dropout") for n in folded.graph.nodes.values())
    assert any(n.type == "batch_norm" for n in plain.graph.nodes.values())
    x = x_for(folded, batch=2)
    close(folded(x), plain(x))


def test_depthwise_pointwise_fusion_equals_unfused():
    m = model(BN_CHAIN)
    fused = m.graph.nodes["act3"]
    assert fused.type == "separable_conv2d"
    assert fused.layers == ["dw", "bn2", "act2", "pw", "bn3", "act3"]
    assert fused.attrs["depthwise_activation"] == "relu" and fused.attrs["activation"] == "relu"
    x = x_for(m)
    close(m(x), model(BN_CHAIN, optimize=False)(x))


def test_residual_add_fuses_into_the_convolution():
    m = model(RESIDUAL)
    (expand, fused) = m.graph.nodes.values()
    assert fused.type == "separable_conv2d" and fused.layers == ["dw", "project", "sum"]
    assert fused.inputs == ["expand", "input"] and fused.attrs["residual"] and fused.attrs["activation"] == "relu"
    x = x_for(m, batch=2)
    close(m(x), model(RESIDUAL, optimize=False)(x))
    # A convolution with an activation of its own keeps its add: relu(conv) + x is not act(conv + x).
    doc = config(layer("c", "conv2d", "input", filters=4, kernel=3, padding="same", activation="relu"),
                 layer("sum", "add", "c", "input"))
    m = model(doc)
    assert [n.type for n in m.graph.nodes.values()] == ["conv2d", "add"]
    close(m(x_for(m)), model(doc, optimize=False)(x_for(m)))


def test_activation_after_concat_moves_into_its_producers():
    # ShuffleNet's stride-2 unit: relu(concat(avg_pool(x), conv(x))).
    doc = config(layer("pool", "avg_pool", "input", pool=3, stride=2, padding="same"),
                 layer("conv", "conv2d", "input", filters=4, kernel=3, stride=2, padding="same"),
                 layer("cat", "concat", "pool", "conv"), layer("r", "activation", "cat", function="relu6"))
    m = model(doc)
    assert [n.type for n in m.graph.nodes.values()] == ["avg_pool", "conv2d", "concat"]
    assert m.graph.nodes["pool"].attrs["activation"] == "relu6" and m.graph.nodes["conv"].attrs["activation"] == "relu6"
    x = x_for(m, batch=2) * 10
    close(m(x), model(doc, optimize=False)(x))
    # A concat input someone else reads keeps the activation where it was.
    m = model(dict(doc, outputs=["r", "pool"]))
    assert [n.type for n in m.graph.nodes.values()] == ["avg_pool", "conv2d", "concat", "activation"]


def test_no_fusion_across_an_observed_tensor():
    doc = dict(BN_CHAIN, outputs=["act2", "prob"])
    m = model(doc)
    assert m.graph.nodes["act2"].type == "depthwise_conv2d"
    assert m.graph.nodes["act3"].type == "pointwise_conv2d"
    doc = config(layer("c", "conv2d", "input", filters=4, kernel=1),
                 layer("bn", "batch_norm", "c"), layer("r", "activation", "c", function="relu"),
                 layer("sum", "add", "bn", "r"))
    m = model(doc)
    assert {n.type for n in m.graph.nodes.values()} == {"conv2d", "batch_norm", "activation", "add"}
    x = x_for(m)
    close(m(x), model(doc, optimize=False)(x))


def test_activation_after_activation_composes():
    doc = config(layer("c", "conv2d", "input", filters=4, kernel=1, activation="relu6"),
                 layer("r", "activation", "c", function="relu"))
    m = model(doc)
    assert list(m.graph.nodes) == ["r"] and m.graph.nodes["r"].attrs["activation"] == "relu6"
    x = x_for(m) * 20
    close(m(x), model(doc, optimize=False)(x))


def test_dropout_is_identity_even_as_an_output():
    doc = config(layer("c", "pointwise_conv2d", "input", filters=4), layer("d", "dropout", "c", rate=0.3),
                 outputs=["d", "c"])
    m = model(doc)
    out = m(x_for(m))
    assert np.array_equal(out["d"], out["c"])


def test_nchw_input_and_output_layouts():
    nhwc = model(RESIDUAL)
    doc = json.loads(json.dumps(RESIDUAL))
    doc["layers"][0]["layout"] = "NCHW"
    doc["output_layout"] = "NCHW"
    nchw = model(doc)
    assert nchw.input_shape(batch=2) == (2, 4, 8, 8)
    x = x_for(nhwc, batch=2)
    y = nchw(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    assert y.shape == (2, 4, 8, 8)
    assert np.array_equal(y, nhwc(x).transpose(0, 3, 1, 2))


def test_a_transposed_nchw_input_has_a_buffer_its_readers_are_bound_to():
    nhwc = model(RESIDUAL)
    doc = json.loads(json.dumps(RESIDUAL))
    doc["layers"][0]["layout"] = "NCHW"
    nchw = model(doc)  # its first layer is a pointwise convolution: it reads NHWC
    p = prepared(nchw, 1)
    buffer = p.inputs["input"]
    assert buffer.shape == (1, 8, 8, 4) and buffer.ctypes.data % 64 == 0
    readers = [step for step in p.steps if any(src is buffer for src in step.sources)]
    assert readers and all(step.call is not None for step in readers)
    for seed in (1, 2):
        x = x_for(nhwc, seed=seed)
        assert np.array_equal(nchw(np.ascontiguousarray(x.transpose(0, 3, 1, 2))), nhwc(x))
    assert prepared(nchw, 3).inputs["input"].shape == (3, 8, 8, 4)


RGB_STEM = config(
    layer("stem", "conv2d", "input", filters=20, kernel=3, stride=2, padding="same", activation="relu6"),
    layer("pw", "pointwise_conv2d", "stem", filters=8),
    shape=(13, 11, 3),
)


def test_an_rgb_first_layer_reads_the_nchw_input_in_place():
    nhwc = model(RGB_STEM)
    doc = json.loads(json.dumps(RGB_STEM))
    doc["layers"][0]["layout"] = "NCHW"
    nchw = model(doc, threads=2)
    assert nchw._nchw_inputs == {"input"} and nhwc._nchw_inputs == set()
    assert nchw.profile(repeat=1).rows[0].strategy == "nchw-direct"
    x = x_for(nhwc, batch=3)
    close(nchw(np.ascontiguousarray(x.transpose(0, 3, 1, 2))), nhwc(x))


def _rgb_variant(kind: str) -> tuple[dict, dict]:
    doc = json.loads(json.dumps(RGB_STEM))
    kw = {}
    if kind == "also an output":
        doc["outputs"] = ["pw", "input"]
    elif kind == "also read by a pool":
        doc["layers"].append(layer("side", "max_pool", "input", pool=2))
        doc["outputs"] = ["pw", "side"]
    elif kind == "strategy override":
        doc["layers"][1]["strategy"] = "im2col"
    elif kind == "residual":
        doc["layers"][1].update(filters=3, stride=1, activation=None)
        doc["layers"][2] = layer("sum", "add", "stem", "input", activation="relu")
        doc["outputs"] = ["sum"]
    elif kind == "not optimised":
        kw["optimize"] = False
    return doc, kw


@pytest.mark.parametrize("kind", ["also an output", "also read by a pool", "strategy override", "residual",
                                  "not optimised"])
def test_an_nchw_input_is_transposed_when_a_reader_needs_nhwc(kind):
    doc, kw = _rgb_variant(kind)
    nhwc = model(doc, **kw)
    doc["layers"][0]["layout"] = "NCHW"
    nchw = model(doc, **kw)
    assert nchw._nchw_inputs == set()
    assert all(row.strategy != "nchw-direct" for row in nchw.profile(repeat=1).rows)
    x = x_for(nhwc, batch=2)
    got, want = nchw(np.ascontiguousarray(x.transpose(0, 3, 1, 2))), nhwc(x)
    for name in (want if isinstance(want, dict) else {"": want}):
        a, b = (got[name], want[name]) if name else (got, want)
        close(a, b)


def test_flatten_orders():
    doc = config(layer("f1", "flatten", "input"), layer("f2", "flatten", "input", order="NCHW"),
                 layer("r", "reshape", "input", shape=[-1, 4]), outputs=["f1", "f2", "r"], shape=(2, 3, 4))
    out = model(doc)(x := np.arange(24, dtype=np.float32).reshape(1, 2, 3, 4))
    assert np.array_equal(out["f1"], x.reshape(1, -1))
    assert np.array_equal(out["f2"], x.transpose(0, 3, 1, 2).reshape(1, -1))
    assert out["r"].shape == (1, 6, 4)


def test_pooling_layers_run():
    doc = config(layer("mp", "max_pool", "input", pool=3, stride=2, padding="same"),
                 layer("ap", "avg_pool", "input", pool=3, stride=2, padding=1, ceil_mode=True),
                 layer("sh", "channel_shuffle", "mp", groups=2), outputs=["sh", "ap"])
    m = model(doc)
    out = m(x := x_for(m))
    assert out["sh"].shape == (1, 4, 4, 4) and out["ap"].shape == (1, 5, 5, 4)
    assert out["sh"][0, 0, 0, 0] == x[0, :3, :3, 0].max()  # "same" pads 3x3/2 over 8 by (0, 1)


def test_strategy_overrides():
    doc = config(layer("c1", "conv2d", "input", filters=16, kernel=3, padding="same"),
                 layer("c2", "conv2d", "c1", filters=16, kernel=3, padding="same", strategy="im2col"))
    auto = model(doc)
    forced = model(doc, strategy="direct")
    assert [s.strategy for s in prepared(forced, 1).steps] == ["direct", "direct"]
    mixed = model(doc, strategy={"c1": "im2col"})
    assert [s.strategy for s in prepared(mixed, 1).steps] == ["im2col", "im2col"]
    x = x_for(auto)
    close(forced(x), auto(x), rtol=1e-5)
    assert "im2col" in mixed.summary()


def test_save_load_round_trip(tmp_path):
    m = model(BN_CHAIN)
    m.save(tmp_path / "out" / "chain.json")
    saved = json.loads((tmp_path / "out" / "chain.json").read_text())
    assert saved["weights"] == "chain.npz"
    with np.load(tmp_path / "out" / "chain.npz") as npz:
        assert "bn1/gamma" in npz.files and "sep/depthwise_kernel" in npz.files
        assert np.array_equal(npz["c1/kernel"], m.weights["c1"]["kernel"])  # the unfolded kernel
    again = load(tmp_path / "out" / "chain.json", threads=1)
    x = x_for(m, batch=2)
    assert np.array_equal(again(x), m(x))


def test_save_refuses_to_overwrite_the_weights_it_was_loaded_from(tmp_path):
    model(BN_CHAIN).save(tmp_path / "chain.json")
    original = (tmp_path / "chain.npz").read_bytes()
    m = load(tmp_path / "chain.json", threads=1)
    with pytest.raises(ValueError, match="weights file .*chain.npz.* would overwrite .*loaded from"):
        m.save(tmp_path / "chain.json")
    (tmp_path / "link").symlink_to(tmp_path)
    with pytest.raises(ValueError, match="would overwrite"):
        m.save(tmp_path / "link" / "chain.json")
    for npz in ("model.npz", "chain.NPZ"):
        with pytest.raises(ValueError, match="expected a config path"):
            m.save(tmp_path / npz)
    # Weights given under another name: a config path onto that file is refused as well.
    (tmp_path / "weights.bin").write_bytes(original)
    m2 = load(tmp_path / "chain.json", weights=tmp_path / "weights.bin", threads=1)
    with pytest.raises(ValueError, match="config file .*weights.bin.* would overwrite"):
        m2.save(tmp_path / "weights.bin")
    assert (tmp_path / "chain.npz").read_bytes() == original
    m.save(tmp_path / "copy.json")
    x = x_for(m)
    assert np.array_equal(load(tmp_path / "copy.json", threads=1)(x), m(x))


def test_save_writes_each_file_whole_or_not_at_all(tmp_path, monkeypatch):
    m = model(BN_CHAIN)
    m.save(tmp_path / "chain.json")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def failing_write(file, array, **kwargs):
        file.write(b"\x93NUMPY partial")
        raise OSError("disk full")
    monkeypatch.setattr(np.lib.format, "write_array", failing_write)
    with pytest.raises(OSError, match="disk full"):
        model(RESIDUAL).save(tmp_path / "chain.json")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # no temporary file left either
    monkeypatch.undo()
    model(RESIDUAL).save(tmp_path / "chain.json")
    assert load(tmp_path / "chain.json").spec.layers.keys() == model(RESIDUAL).spec.layers.keys()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chain.json", "chain.npz"]


def test_example_input_is_deterministic_and_image_like():
    m = model(RESIDUAL)
    a, b = m.example_input(batch=2), m.example_input(batch=2)
    assert np.array_equal(a, b) and a.shape == (2, 8, 8, 4) and a.dtype == np.float32
    assert 0.0 <= a.min() and a.max() <= 1.0 and a.std() > 0.05


# --- memory plan -------------------------------------------------------------------------------------

def assert_plan_valid(m: Model, plan: MemoryPlan):
    step = {name: i for i, name in enumerate(m.graph.nodes)}
    last = dict(step)
    for i, node in enumerate(m.graph.nodes.values()):
        for src in node.inputs:
            if src in step:
                last[src] = i
    for t in m.graph.outputs.values():
        last[t] = len(step)
    items = list(plan.offsets.items())
    for i, (a, (oa, na)) in enumerate(items):
        for b, (ob, nb) in items[i + 1:]:
            if step[a] <= last[b] and step[b] <= last[a]:
                assert oa + na <= ob or ob + nb <= oa, f"{a} and {b} are alive together but overlap"
    assert plan.live_bytes <= plan.arena_bytes <= plan.naive_bytes + 64 * len(items)


def test_memory_plan_reuses_buffers():
    chain = config(*[layer(f"c{i}", "pointwise_conv2d", f"c{i - 1}" if i else "input", filters=4, activation="relu")
                     for i in range(10)])
    m = model(chain)
    plan = m.memory_plan
    assert_plan_valid(m, plan)
    assert plan.arena_bytes == 2 * 4 * 8 * 8 * 4  # two buffers ping-pong
    assert plan.naive_bytes == 10 * 4 * 8 * 8 * 4
    assert "arena" in str(plan)


@pytest.mark.parametrize("doc", [RESIDUAL, BRANCHES, BN_CHAIN], ids=["residual", "branches", "bn_chain"])
def test_memory_plans_are_valid(doc):
    m = model(doc)
    assert_plan_valid(m, m.plan(3))


# --- summary and profile -----------------------------------------------------------------------------

def test_summary_lists_nodes_fusions_and_totals():
    m = model(BN_CHAIN)
    text = m.summary()
    for name in ("c1 (conv2d)", "+ bn1 (batch_norm), act1 (activation)", "dw (depthwise_conv2d)", "Total params",
                 "Total MACs", "5 of them batch norms", "memory plan"):
        assert name in text, name
    params = sum(a.size for ps in m.weights.values() for a in ps.values())
    assert f"Total params: {params:,}" in text


def test_profile_reports_every_node():
    m = model(BN_CHAIN)
    prof = m.profile(repeat=3)
    assert [r.name for r in prof.rows] == [n.layers[0] for n in m.graph.nodes.values()]
    assert all(r.seconds > 0 for r in prof.rows)
    assert sum(prof.strategy_share.values()) == pytest.approx(1.0)
    assert next(r for r in prof.rows if r.name == "c1").gflops > 0
    text = str(prof)
    assert "GFLOP/s" in text and "time by strategy" in text


# --- shipped models ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["mobilenet_v1", "mobilenet_v2", "xception", "shufflenet_v1_g3"])
def test_shipped_models_give_sane_logits_with_seeded_weights(name):
    path = ROOT / "models" / f"{name}.json"
    if not path.exists():
        pytest.skip(f"{path.name} not present")
    m = load(path, threads=1)
    assert_plan_valid(m, m.memory_plan)
    assert m.memory_plan.arena_bytes < 0.5 * m.memory_plan.naive_bytes
    probs = m(m.example_input())
    assert probs.shape == (1, 1000) and np.all(np.isfinite(probs))
    assert probs.max() < 0.5, "seeded weights saturate the classifier"
    assert probs.std() > 1e-5, "seeded weights give a constant classifier"


def random_dag(seed: int) -> dict:
    """A random DAG of 4-channel 6x6 tensors: convolutions, batch norms, activations, adds, concats."""
    rng = np.random.default_rng(seed)
    names, layers = ["input"], []

    def pick() -> str:
        return names[int(rng.integers(len(names)))]

    for i in range(int(rng.integers(4, 14))):
        kind = rng.choice(["pw", "dw", "bn", "act", "add", "cat"])
        name = f"l{i}"
        if kind == "pw":
            layers.append(layer(name, "pointwise_conv2d", pick(), filters=4,
                                activation=rng.choice([None, "relu", "relu6"])))
        elif kind == "dw":
            layers.append(layer(name, "depthwise_conv2d", pick(), kernel=3, padding="same"))
        elif kind == "bn":
            layers.append(layer(name, "batch_norm", pick()))
        elif kind == "act":
            layers.append(layer(name, "activation", pick(), function=rng.choice(["relu", "relu6"])))
        elif kind == "add":
            layers.append(layer(name, "add", pick(), pick(), activation=rng.choice([None, "relu"])))
        else:
            layers.append(layer(f"{name}_cat", "concat", pick(), pick()))
            layers.append(layer(name, "pointwise_conv2d", f"{name}_cat", filters=4))
        names.append(name)
    outputs = sorted({names[-1], *rng.choice(names[1:], size=int(rng.integers(1, 3)))})
    return config(*layers, outputs=outputs, shape=(6, 6, 4))


@pytest.mark.parametrize("seed", range(12))
def test_random_dags_match_an_unplanned_unoptimised_run(seed):
    doc = random_dag(seed)
    m = model(doc)
    assert_plan_valid(m, m.plan(2))
    # Every layer an output: nothing is fused and no buffer is reused, a reference for the wiring.
    every = dict(doc, outputs=[spec["name"] for spec in doc["layers"][1:]])
    reference = model(every, optimize=False)
    assert reference.plan(2).arena_bytes >= reference.plan(2).naive_bytes
    x = x_for(m, batch=2)
    got, want = m(x), reference(x)
    got = got if isinstance(got, dict) else {doc["outputs"][0]: got}
    for name, array in got.items():
        close(array, want[name], rtol=1e-5)


def test_summary_and_plan_allocate_no_arena():
    m = model(BN_CHAIN)
    assert "batch 512" in m.summary(batch=512) and m.plan(512).batch == 512
    assert [batch for _, batch in m._pools] == [1]  # only batch 1, planned at load


def test_batch_one_is_planned_at_load():
    m = model(RESIDUAL)
    (pool,) = m._pools.values()
    (arena,) = pool.idle
    m(x_for(m))
    assert list(m._pools.values()) == [pool] and pool.idle == [arena]


def test_repr_names_the_model_and_its_io():
    text = repr(model(BRANCHES))
    assert "'toy'" in text and "(8, 8, 4) NHWC" in text and "['cat', 'fc']" in text


def test_concurrent_runs_from_python_threads_are_correct():
    """Runs from several threads each hold an arena of their own: none corrupts another's."""
    from concurrent.futures import ThreadPoolExecutor

    model = load(Path(__file__).resolve().parents[1] / "models" / "toy_design_doc.json", threads=1)
    rng = np.random.default_rng(7)
    inputs = [rng.uniform(-1, 1, model.input_shape(model.spec.inputs[0])).astype(np.float32) for _ in range(8)]
    expected = [model.run(x) for x in inputs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(model.run, inputs * 4))
    for i, got in enumerate(results):
        want = expected[i % len(inputs)]
        if isinstance(want, dict):
            for name in want:
                np.testing.assert_array_equal(got[name], want[name])
        else:
            np.testing.assert_array_equal(got, want)
