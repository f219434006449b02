"""Loading model configs: every invalid config fails with a ModelError naming the layer and the field,
what was expected and what was found; seeded weights are reproducible; the shipped schema is coherent.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import model_config
from pyconv.graph import LAYER_TYPES, Model, ModelError, load
from pyconv.graph.format import schema
from pyconv.graph.weights import seeded_uniform

ROOT = Path(__file__).resolve().parents[1]


def config(*layers: dict, outputs=None, **top) -> dict:
    return model_config(*layers, outputs=outputs, **top)


def conv(name="conv", inputs=("input",), **kw) -> dict:
    return {"name": name, "type": "conv2d", "inputs": list(inputs), "filters": 4, "kernel": 3, **kw}


def write(tmp_path: Path, doc, name="model.json") -> Path:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc, indent=2))
    return path


def error_of(doc, weights=None) -> ModelError:
    with pytest.raises(ModelError) as info:
        Model(doc, weights=weights)
    return info.value


def assert_names(err: ModelError, layer, field, *words):
    assert err.layer == layer and err.field == field, (err.layer, err.field, str(err))
    text = str(err)
    if layer is not None:
        assert repr(layer) in text
    if field is not None:
        assert repr(field) in text
    for word in words:
        assert word in text, text


# --- syntax and schema -------------------------------------------------------------------------------

def test_malformed_json_reports_line_and_column(tmp_path):
    text = json.dumps(config(conv()), indent=2).replace('"filters": 4,', '"filters": 4')
    err = pytest.raises(ModelError, load, write(tmp_path, text)).value
    line = next(i for i, s in enumerate(text.splitlines(), 1) if '"filters": 4' in s) + 1
    assert f"line {line}, column" in str(err) and "malformed JSON" in str(err)
    assert err.hint


def test_error_is_a_value_error_with_layer_and_field():
    err = error_of(config(conv(stride=0)))
    assert isinstance(err, ValueError)
    assert_names(err, "conv", "stride", "expected a positive integer", "found 0")


def test_unknown_layer_type():
    err = error_of(config({"name": "c", "type": "conv3d", "inputs": ["input"]}))
    assert_names(err, "c", "type", "expected a known layer type", '"conv3d"')
    assert "conv2d" in err.hint


def test_missing_required_field():
    doc = config(conv())
    del doc["layers"][1]["filters"]
    assert_names(error_of(doc), "conv", "filters", "missing required field")


def test_unknown_field_is_rejected():
    assert_names(error_of(config(conv(stides=2))), "conv", "stides", "unknown field", "stride")


@pytest.mark.parametrize("kernel", [0, -1, 2.5, [3], [3, 3, 3], "3"])
def test_bad_kernel(kernel):
    assert_names(error_of(config(conv(kernel=kernel))), "conv", "kernel", "expected a positive integer or a pair",
                 f"found {json.dumps(kernel)}")


def test_kernel_larger_than_the_input():
    assert_names(error_of(config(conv(kernel=9))), "conv", "kernel", "fits the input", "H=8")


@pytest.mark.parametrize("stride", [0, -2, [1, 0], "2", True])
def test_bad_stride(stride):
    assert_names(error_of(config(conv(stride=stride))), "conv", "stride", "expected", "found")


def test_bad_padding_and_activation():
    assert_names(error_of(config(conv(padding="full"))), "conv", "padding", "expected", '"full"')
    assert_names(error_of(config(conv(activation="swish"))), "conv", "activation", "relu6", '"swish"')


def test_groups_must_divide_the_channels():
    assert_names(error_of(config(conv(groups=2))), "conv", "groups", "divisor", "input channels (3)", "found 2")


def test_channel_shuffle_groups_must_divide_the_channels():
    doc = config(conv(filters=6), {"name": "shuffle", "type": "channel_shuffle", "inputs": ["conv"], "groups": 4})
    assert_names(error_of(doc), "shuffle", "groups", "divisor", "(6)")


def test_unknown_strategy():
    err = error_of(config(conv(strategy="fft")))
    assert_names(err, "conv", "strategy", "winograd", '"fft"')


def test_strategy_that_cannot_serve_the_layer():
    assert_names(error_of(config(conv(kernel=5, strategy="winograd", padding="same"))), "conv", "strategy",
                 "winograd")


def test_wrong_top_level_fields():
    assert_names(error_of(dict(config(conv()), format="onnx")), None, "format", '"pyconv-model"', '"onnx"')
    doc = config(conv())
    del doc["outputs"]
    assert_names(error_of(doc), None, "outputs", "missing required field")
    assert_names(error_of(dict(config(conv()), extra=1)), None, "extra", "unknown field")


# --- graph structure ---------------------------------------------------------------------------------

def test_missing_input():
    assert_names(error_of(config(conv(inputs=["inptu"]))), "conv", "inputs[0]", "unknown layer 'inptu'")


def test_unknown_output():
    assert_names(error_of(config(conv(), outputs=["nope"])), None, "outputs[0]", "unknown layer 'nope'")


def test_duplicate_name():
    assert_names(error_of(config(conv(), conv(inputs=["conv"]))), "conv", "name", "duplicate")


def test_cycle():
    doc = config({"name": "a", "type": "add", "inputs": ["input", "c"]},
                 {"name": "b", "type": "activation", "inputs": ["a"], "function": "relu"},
                 {"name": "c", "type": "activation", "inputs": ["b"], "function": "relu"})
    err = error_of(doc)
    assert err.field == "inputs" and err.layer in {"a", "b", "c"}
    assert "cycle" in str(err) and all(n in str(err) for n in "abc")


def test_self_loop_is_a_cycle():
    err = error_of(config({"name": "a", "type": "add", "inputs": ["input", "a"]}))
    assert_names(err, "a", "inputs", "cycle: a -> a")


def test_input_count():
    assert_names(error_of(config({"name": "sum", "type": "add", "inputs": ["input"]})), "sum", "inputs",
                 "at least 2", "found 1")
    doc = config(conv(), conv("c2"), conv("c3", inputs=["conv", "c2"]))
    assert_names(error_of(doc), "c3", "inputs", "exactly 1", "found 2")


def test_add_of_shapes_that_do_not_broadcast():
    doc = config(conv(padding="same"), conv("c2"), {"name": "sum", "type": "add", "inputs": ["conv", "c2"]})
    assert_names(error_of(doc), "sum", "inputs[1]", "broadcast", "[8, 8, 4]", "[6, 6, 4]")


def test_dense_needs_a_flat_input():
    err = error_of(config({"name": "fc", "type": "dense", "inputs": ["input"], "units": 3}))
    assert_names(err, "fc", "inputs", "flat input", "[8, 8, 3]")
    assert "global_avg_pool" in err.hint


def test_reshape_must_keep_the_size():
    doc = config({"name": "r", "type": "reshape", "inputs": ["input"], "shape": [5, -1]})
    assert_names(error_of(doc), "r", "shape", "192 values", "[5, -1]")


def test_pool_padding_must_be_smaller_than_the_window():
    doc = config({"name": "pool", "type": "max_pool", "inputs": ["input"], "pool": 2, "padding": 2})
    assert_names(error_of(doc), "pool", "padding", "smaller than")


# --- weights -----------------------------------------------------------------------------------------

def weights_for(doc) -> dict:
    return {f"{layer}/{p}": a for layer, ps in Model(doc).weights.items() for p, a in ps.items()}


def test_missing_weight():
    doc = config(conv())
    w = weights_for(doc)
    del w["conv/bias"]
    assert_names(error_of(doc, w), "conv", "bias", "missing", "(4,)")


def test_extra_weight():
    doc = config(conv(use_bias=False))
    w = weights_for(config(conv()))
    assert_names(error_of(doc, w), "conv", "bias", "unexpected weight 'conv/bias'", "takes kernel")
    w = weights_for(doc)
    w["ghost/kernel"] = np.zeros(3)
    assert_names(error_of(doc, w), "ghost", "kernel", "does not define")


def test_misshaped_weight():
    doc = config(conv())
    w = weights_for(doc)
    w["conv/kernel"] = np.zeros((3, 3, 4, 4))
    assert_names(error_of(doc, w), "conv", "kernel", "expected shape (3, 3, 3, 4)", "found (3, 3, 4, 4)")


def test_nan_in_weights(tmp_path):
    doc = config(conv())
    w = weights_for(doc)
    w["conv/kernel"][0, 0, 0, 0] = np.nan
    np.savez(tmp_path / "w.npz", **w)
    err = pytest.raises(ModelError, load, write(tmp_path, dict(doc, weights="w.npz"))).value
    assert_names(err, "conv", "kernel", "finite", "1 NaN")


def test_weights_file_not_found(tmp_path):
    err = pytest.raises(ModelError, load, write(tmp_path, dict(config(conv()), weights="gone.npz"))).value
    assert_names(err, None, "weights", "not found", "gone.npz")
    assert err.hint


def test_weights_mapping_may_be_nested():
    doc = config(conv())
    nested = {layer: {p: np.full_like(a, 0.25) for p, a in ps.items()} for layer, ps in Model(doc).weights.items()}
    assert np.all(Model(doc, weights=nested).weights["conv"]["kernel"] == 0.25)


def test_binary_file_as_config(tmp_path):
    path = tmp_path / "w.json"
    path.write_bytes(b"PK\x03\x04\xff\xfe")
    assert "UTF-8" in str(pytest.raises(ModelError, load, path).value)


def test_weights_npz_next_to_the_config_is_used(tmp_path):
    doc = config(conv())
    w = {k: np.full_like(v, 0.5) for k, v in weights_for(doc).items()}
    np.savez(tmp_path / "w.npz", **w)
    model = load(write(tmp_path, dict(doc, weights="w.npz")))
    assert np.all(model.weights["conv"]["kernel"] == 0.5)


# --- run-time input checks ---------------------------------------------------------------------------

def test_wrong_input_shape_at_run_time():
    model = Model(config(conv()))
    err = pytest.raises(ModelError, model.run, np.zeros((1, 3, 8, 8), np.float32)).value
    assert_names(err, "input", "shape", "(N, 8, 8, 3)", "found (1, 3, 8, 8)")
    assert "NCHW" in err.hint
    err = pytest.raises(ModelError, model.run, np.zeros((8, 8, 3), np.float32)).value
    assert "batch axis" in err.hint


def test_wrong_input_names_at_run_time():
    model = Model(config(conv()))
    assert_names(pytest.raises(ModelError, model.run, {"x": np.zeros((1, 8, 8, 3))}).value, "x", "inputs")


def test_strategy_override_must_name_a_conv2d_layer():
    err = error_of_override({"input": "direct"})
    assert_names(err, "input", "strategy", "conv2d")


def error_of_override(strategy) -> ModelError:
    with pytest.raises(ModelError) as info:
        Model(config(conv()), strategy=strategy)
    return info.value


# --- seeded weights ----------------------------------------------------------------------------------

def test_seeded_stream_is_pinned():
    # sha256 + PCG64.random_raw are fixed algorithms: these values must never change.
    u = seeded_uniform(0, "conv", "kernel", 3)
    assert u.tolist() == PINNED


PINNED = [float.fromhex(h) for h in ("0x1.49a6cd6db81d5p-1", "0x1.27cfa06543df8p-4", "0x1.d18d0031e1f3cp-1")]


def test_seeded_weights_are_reproducible_and_seed_dependent():
    doc = config(conv(), {"name": "bn", "type": "batch_norm", "inputs": ["conv"]})
    a, b = Model(doc).weights, Model(copy.deepcopy(doc)).weights
    for layer in a:
        for p in a[layer]:
            assert np.array_equal(a[layer][p], b[layer][p])
    c = Model(dict(doc, seed=1)).weights
    assert not np.array_equal(a["conv"]["kernel"], c["conv"]["kernel"])
    assert np.all(a["bn"]["variance"] > 0)


# --- the shipped schema ------------------------------------------------------------------------------

def test_schema_knows_every_layer_type():
    types = schema()["$defs"]["layer"]["properties"]["type"]["enum"]
    assert sorted(types) == sorted(LAYER_TYPES)


def test_schema_strategies_are_the_operator_strategies():
    from pyconv.strategy import STRATEGIES
    assert tuple(schema()["$defs"]["strategy"]["enum"]) == tuple(STRATEGIES)


@pytest.mark.parametrize("path", sorted((ROOT / "models").glob("*.json")), ids=lambda p: p.stem)
def test_shipped_models_validate(path):
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(json.loads(path.read_text()), schema())
