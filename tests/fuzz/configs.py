"""Hypothesis strategies for model configs: small valid ones over every layer type of the schema, and
mutations that break them (fields dropped, duplicated, renamed or given values of the wrong type or
size; inputs dangling, cyclic or empty; weights of the wrong shape or dtype).

A valid config grows one layer at a time from an input; a drawn layer is kept only if pyconv's own
shape rule takes it (:func:`_fits`), so nearly every config loads and the mutations start from the
inside of the format rather than from its edge.
"""
from __future__ import annotations

import copy
import io
import math
from typing import Any

import numpy as np
from hypothesis import strategies as st

from pyconv.graph import LAYER_TYPES, ModelError

ACTIVATIONS = [None, "relu", "relu6", "sigmoid", "hard_swish", "tanh", "silu", "mish",
               {"function": "leaky_relu", "alpha": 0.1}, {"function": "clip", "min": -1.0, "max": 1.0}]
small = st.integers(1, 3)
size = st.one_of(small, st.lists(small, min_size=2, max_size=2))
padding = st.one_of(st.sampled_from(["valid", "same"]), st.integers(0, 1),
                    st.lists(st.integers(0, 1), min_size=2, max_size=2))

# Layer types by what they read: an image (H, W, C), a flat vector (F,), or either.
IMAGE_LAYERS = ["conv2d", "depthwise_conv2d", "pointwise_conv2d", "separable_conv2d", "max_pool", "avg_pool", "pad",
                "global_avg_pool", "channel_shuffle", "resize", "flatten"]
ANY_LAYERS = ["batch_norm", "scale_shift", "activation", "prelu", "slice", "softmax", "dropout", "reshape"]
FLAT_LAYERS = ["dense"]
MULTI_LAYERS = ["add", "subtract", "multiply", "divide", "concat"]


def _attrs(draw, kind: str, shape: tuple[int, ...]) -> dict[str, Any]:
    """Fields of a layer of type ``kind`` reading a tensor of ``shape`` (plausible, not always valid)."""
    c = shape[-1]
    if kind == "conv2d":
        groups = draw(st.sampled_from([g for g in (1, 2, 3) if c % g == 0]))
        return {"filters": groups * draw(small), "kernel": draw(size), "stride": draw(size), "padding": draw(padding),
                "dilation": draw(st.sampled_from([1, 1, 2])), "groups": groups, "use_bias": draw(st.booleans()),
                "activation": draw(st.sampled_from(ACTIVATIONS)),
                "strategy": draw(st.sampled_from(["auto", "auto", "direct", "im2col", "winograd"]))}
    if kind == "depthwise_conv2d":
        return {"kernel": draw(size), "stride": draw(size), "padding": draw(padding), "depth_multiplier": draw(small),
                "activation": draw(st.sampled_from(ACTIVATIONS))}
    if kind in ("pointwise_conv2d", "separable_conv2d"):
        attrs = {"filters": draw(small), "use_bias": draw(st.booleans()),
                 "activation": draw(st.sampled_from(ACTIVATIONS))}
        if kind == "separable_conv2d":
            attrs.update(kernel=draw(size), padding=draw(padding))
        return attrs
    if kind in ("max_pool", "avg_pool"):
        return {"pool": draw(st.integers(1, 2)), "stride": draw(st.sampled_from([None, 1, 2])),
                "ceil_mode": draw(st.booleans())}
    if kind == "pad":
        return {"padding": [[draw(st.integers(0, 2)), draw(st.integers(0, 2))]] * 2,
                "mode": draw(st.sampled_from(["constant", "reflect", "edge"])), "value": 0.5}
    if kind == "channel_shuffle":
        return {"groups": draw(st.sampled_from([g for g in (1, 2, 3) if c % g == 0]))}
    if kind == "resize":
        pick = draw(st.booleans())
        return {"mode": draw(st.sampled_from(["nearest", "bilinear"])),
                **({"scale": draw(st.sampled_from([0.5, 2, [2, 1.5]]))} if pick else
                   {"size": draw(st.lists(st.integers(1, 9), min_size=2, max_size=2))})}
    if kind == "flatten":
        return {"order": draw(st.sampled_from(["NHWC", "NCHW"]))}
    if kind == "batch_norm":
        return {"epsilon": 0.001}
    if kind == "activation":
        act = draw(st.sampled_from(ACTIVATIONS[1:]))
        return {"function": act} if isinstance(act, str) else dict(act)
    if kind == "prelu":
        return {}
    if kind == "slice":
        return {"axis": -1, "start": draw(st.integers(-2, 1)), "stop": draw(st.sampled_from([None, -1, 2]))}
    if kind == "softmax":
        return {"axis": -1}
    if kind == "dropout":
        return {"rate": 0.5}
    if kind == "reshape":
        return {"shape": draw(st.sampled_from([[math.prod(shape)], [-1], list(shape), [1, -1]]))}
    if kind == "dense":
        return {"units": draw(st.integers(1, 4)), "activation": draw(st.sampled_from(ACTIVATIONS))}
    return {}


def _fits(layer: dict[str, Any], shapes: list[tuple[int, ...]]) -> bool:
    kind = LAYER_TYPES[layer["type"]]
    attrs = kind.normalize({k: v for k, v in layer.items() if k not in ("name", "type", "inputs")})
    try:
        kind.output_shape(layer["name"], attrs, shapes)
    except (ModelError, ValueError, TypeError, KeyError):
        return False
    return True


@st.composite
def configs(draw, max_layers: int = 6) -> dict[str, Any]:
    """A small valid config (as a dict): one or two inputs, then up to ``max_layers`` layers."""
    shape = (draw(st.integers(1, 8)), draw(st.integers(1, 8)), draw(st.integers(1, 4)))
    layers = [{"name": "x", "type": "input", "shape": list(shape)}]
    if draw(st.booleans()):
        layers[0]["layout"] = "NCHW"
    tensors = {"x": shape}
    if draw(st.integers(0, 4)) == 0:
        layers.append({"name": "v", "type": "input", "shape": [draw(st.integers(1, 6))]})
        tensors["v"] = tuple(layers[-1]["shape"])
    for i in range(draw(st.integers(1, max_layers))):
        src = draw(st.sampled_from(sorted(tensors)))
        shape = tensors[src]
        kinds = ANY_LAYERS + MULTI_LAYERS + (IMAGE_LAYERS if len(shape) == 3 else FLAT_LAYERS)
        kind = draw(st.sampled_from(kinds))
        inputs = [src]
        if kind in MULTI_LAYERS:
            inputs.append(draw(st.sampled_from(sorted(tensors))))
        layer = {"name": f"l{i}", "type": kind, "inputs": inputs, **_attrs(draw, kind, shape)}
        if _fits(layer, [tensors[s] for s in inputs]):
            kind_ = LAYER_TYPES[kind]
            attrs = kind_.normalize({k: v for k, v in layer.items() if k not in ("name", "type", "inputs")})
            tensors[layer["name"]] = tuple(kind_.output_shape(layer["name"], attrs, [tensors[s] for s in inputs]))
            layers.append(layer)
    outputs = [layers[-1]["name"]] + ([layers[1]["name"]] if len(layers) > 2 and draw(st.booleans()) else [])
    doc = {"format": "pyconv-model", "version": 1, "name": "fuzz", "layers": layers,
           "outputs": list(dict.fromkeys(outputs)), "seed": draw(st.integers(0, 3))}
    if draw(st.booleans()):
        doc["output_layout"] = "NCHW"
    if draw(st.booleans()):  # an extra tensor name: a layer's output padded, or viewed flat
        name = draw(st.sampled_from(sorted(tensors)))
        shape = tensors[name]
        pads = [[draw(st.integers(0, 1)), 0], [0, draw(st.integers(0, 1))]] if len(shape) == 3 else [[0, 0], [0, 0]]
        view = {"layer": name, "pads": pads} if len(shape) == 3 and draw(st.booleans()) else \
            {"layer": name, "shape": [math.prod(shape)]}
        doc["tensors"] = {"view": view}
    return doc


# --- mutations -------------------------------------------------------------------------------------

# Values of the wrong type or size put in place of a field's value.
ODD_VALUES = [None, True, False, 0, -1, 1, 2, 3, -(2 ** 31), 2 ** 31, 2 ** 63, 10 ** 12, 10 ** 30, 0.5, -0.5, 1e-300,
              1e300, float("nan"), float("inf"), float("-inf"), "", "x", "same", "NCHW", "relu", [], [0], [-1, 2],
              [10 ** 6, 10 ** 6], [2 ** 40, 1, 1], [[]], [[0, 0], [0, 0]], [[2 ** 40, 0], [0, 0]], [None, None], {},
              {"function": "relu"}, {"function": "clip"}, {"a": 1}, [1, 2, 3, 4, 5]]
FIELDS = sorted({"name", "type", "inputs", "shape", "filters", "kernel", "stride", "padding", "dilation", "groups",
                 "use_bias", "activation", "strategy", "depth_multiplier", "epsilon", "function", "alpha", "beta",
                 "min", "max", "alpha_shape", "pool", "ceil_mode", "count_include_pad", "value", "mode", "units",
                 "axis", "start", "stop", "step", "scale", "size", "coordinate_transformation", "nearest_mode",
                 "order", "rate", "layout"})


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """The path of every value inside a JSON document (the root excluded)."""
    out = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        out.append(prefix + (key,))
        out.extend(_paths(child, prefix + (key,)))
    return out


def _at(doc: Any, path: tuple) -> Any:
    for key in path:
        doc = doc[key]
    return doc


def _deep(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


@st.composite
def mutated_configs(draw, max_mutations: int = 3) -> dict[str, Any]:
    """A valid config broken by one to ``max_mutations`` structured mutations."""
    doc = copy.deepcopy(draw(configs()))
    for _ in range(draw(st.integers(1, max_mutations))):
        _mutate(draw, doc)
    return doc


def _mutate(draw, doc: dict[str, Any]) -> None:
    layers = doc.get("layers") if isinstance(doc.get("layers"), list) else None
    names = [layer.get("name") for layer in layers or [] if isinstance(layer, dict)]
    op = draw(st.sampled_from(["drop", "replace", "replace", "rename", "add", "field", "field", "field",
                               "duplicate", "dangling", "cycle", "self", "empty", "deep", "swap_type"]))
    paths = _paths(doc)
    if op in ("drop", "replace", "rename") and paths:
        path = draw(st.sampled_from(paths))
        parent, key = _at(doc, path[:-1]), path[-1]
        if op == "drop":
            del parent[key]
        elif op == "replace":
            parent[key] = copy.deepcopy(draw(st.sampled_from(ODD_VALUES)))
        elif isinstance(parent, dict):
            parent[draw(st.sampled_from(FIELDS))] = parent.pop(key)
    elif layers and op != "deep":
        i = draw(st.integers(0, len(layers) - 1))
        layer = layers[i]
        if not isinstance(layer, dict):
            return
        if op == "field":  # a field the layer has, given an odd value
            fields = sorted(k for k in layer if k not in ("name", "type"))
            if fields:
                layer[draw(st.sampled_from(fields))] = copy.deepcopy(draw(st.sampled_from(ODD_VALUES)))
        elif op == "add":
            layer[draw(st.sampled_from(FIELDS))] = copy.deepcopy(draw(st.sampled_from(ODD_VALUES)))
        elif op == "duplicate":
            layers.insert(draw(st.integers(0, len(layers))), copy.deepcopy(layer))
        elif op == "swap_type":
            layer["type"] = draw(st.sampled_from(sorted(LAYER_TYPES)))
        elif op == "empty":
            layer["name"] = ""
        elif isinstance(layer.get("inputs"), list) and layer["inputs"]:
            j = draw(st.integers(0, len(layer["inputs"]) - 1))
            later = [n for n in names[i:] if n]
            layer["inputs"][j] = {"dangling": "nope", "cycle": draw(st.sampled_from(later)) if later else "nope",
                                  "self": layer.get("name"), "empty": ""}.get(op, "")
    else:
        path = draw(st.sampled_from(paths)) if paths else ("layers",)
        parent = _at(doc, path[:-1])
        parent[path[-1]] = _deep(draw(st.sampled_from([50, 900])))


# --- weights ---------------------------------------------------------------------------------------

ODD_ARRAYS = ["shape", "dtype_object", "dtype_str", "dtype_complex", "dtype_bool", "dtype_half", "nan", "scalar",
              "empty", "extra", "missing", "badname"]


@st.composite
def mutated_weights(draw, weights: dict[str, np.ndarray]) -> dict[str, Any]:
    """A ``"<layer>/<param>" -> array`` mapping with one array broken (or one too many or few)."""
    arrays = dict(weights)
    how = draw(st.sampled_from(ODD_ARRAYS))
    key = draw(st.sampled_from(sorted(arrays))) if arrays else "conv/kernel"
    a = arrays.get(key, np.zeros(3, np.float32))
    arrays[key] = {
        "shape": lambda: np.zeros(a.size + 1, np.float32),
        "dtype_object": lambda: np.array([object()] * a.size, dtype=object).reshape(a.shape),
        "dtype_str": lambda: np.full(a.shape, "1.5"),
        "dtype_complex": lambda: a.astype(np.complex64),
        "dtype_bool": lambda: a.astype(bool),
        "dtype_half": lambda: a.astype(np.float16),
        "nan": lambda: np.full(a.shape, np.nan, np.float32),
        "scalar": lambda: np.float32(1.0),
        "empty": lambda: np.zeros((0,), np.float32),
    }.get(how, lambda: a)()
    if how == "extra":
        arrays["nobody/kernel"] = a
    elif how == "missing":
        del arrays[key]
    elif how == "badname":
        arrays["no_slash"] = arrays.pop(key)
    return arrays


def npz_bytes(arrays: dict[str, Any]) -> bytes:
    """``arrays`` as an ``.npz`` file's bytes (object arrays pickled, as numpy writes them: the reader
    must refuse them)."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()

