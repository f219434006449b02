"""Shape inference: every layer's per-sample output shape and expected weights, before anything runs.

The shapes follow from the input layers' shapes: the config's, or others (a model run at another input
size infers its shapes again, layer by layer, with the same rules). Sizes are bounded here, before
anything is allocated: see :data:`MAX_ELEMENTS`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Collection, Mapping, Optional

from .errors import ModelError
from .format import ModelSpec
from .layers import LAYER_TYPES, Param, Shape, Signal

__all__ = ["MAX_ELEMENTS", "ShapeInfo", "check_size", "infer_shapes"]

# The most float32 elements a model may ask for per sample: each layer's output and each weight, and
# all of them together (an upper bound of the batch-1 arena plus the weights). 2**31 elements are
# 8 GiB, far beyond a CNN on a CPU, so a config or ONNX file asking for more is malformed; checking
# at shape inference rejects it before anything is allocated.
MAX_ELEMENTS = 2 ** 31

# The config field that sets a layer type's output size, named when that size is over the limit.
_SIZE_FIELDS = {"input": "shape", "conv2d": "filters", "pointwise_conv2d": "filters", "separable_conv2d": "filters",
                "depthwise_conv2d": "depth_multiplier", "dense": "units", "pad": "padding", "reshape": "shape"}


@dataclass
class ShapeInfo:
    """Per-sample (no batch axis) shapes, parameters, MACs and signal scale of every layer of a config."""

    outputs: dict[str, Shape]
    params: dict[str, dict[str, Param]]
    macs: dict[str, int]
    # Each layer's output statistics under seeded weights, which the seeded batch norms match.
    signals: dict[str, Signal]

    def inputs_of(self, spec: ModelSpec, name: str) -> list[Shape]:
        return [self.outputs[src] for src in spec.layers[name].inputs]


def infer_shapes(spec: ModelSpec, input_shapes: Optional[Mapping[str, Shape]] = None,
                 layers: Optional[Collection[str]] = None) -> ShapeInfo:
    """Propagate shapes through the layers in topological order (only through ``layers``, which hold
    the inputs of each, where given), from the input layers' shapes in the config or, for those it
    names, in ``input_shapes`` (per sample, NHWC); a layer whose inputs it cannot take raises
    :class:`~pyconv.graph.errors.ModelError` naming the layer and the field at fault."""
    info = ShapeInfo({}, {}, {}, {})
    total = 0
    for name, layer in spec.layers.items():
        if layers is not None and name not in layers:
            continue
        kind = LAYER_TYPES[layer.type]
        in_shapes = info.inputs_of(spec, name)
        if input_shapes is not None and name in input_shapes:
            out = input_shapes[name]
        else:
            out = kind.output_shape(name, layer.attrs, in_shapes)
        info.outputs[name] = tuple(int(d) for d in out)
        total += check_size(name, layer.type, layer.attrs, info.outputs[name])
        info.params[name] = kind.params(name, layer.attrs, in_shapes)
        for param, p in info.params[name].items():
            total += check_size(name, layer.type, layer.attrs, p.shape, param)
        if total > MAX_ELEMENTS:
            raise ModelError(f"expected the model's outputs and weights to hold at most {MAX_ELEMENTS:,} elements "
                             f"per sample together, found {total:,} up to this layer", layer=name, field="inputs")
        info.macs[name] = kind.macs(layer.attrs, in_shapes, info.outputs[name])
        info.signals[name] = kind.signal(layer.attrs, in_shapes, [info.signals[src] for src in layer.inputs])
    for name, view in spec.tensors.items():
        if view["layer"] in info.outputs:
            _check_view(name, view, info.outputs[view["layer"]])
    return info


def _check_view(name: str, view: Mapping[str, Any], shape: Shape) -> None:
    """A ``tensors`` entry fits the output of its layer: pads around an image, a view shape of as many
    elements as the (padded) output holds."""
    if "pads" in view:
        if len(shape) != 3:
            raise ModelError(f"expected pads only for a layer computing an image, found layer {view['layer']!r} of "
                             f"shape {list(shape)}", field=f"tensors.{name}.pads")
        (top, bottom), (left, right) = view["pads"]
        shape = (shape[0] + top + bottom, shape[1] + left + right, shape[2])
    if "shape" in view and math.prod(view["shape"]) != math.prod(shape):
        raise ModelError(f"expected a shape of the {math.prod(shape):,} elements of layer {view['layer']!r} "
                         f"({list(shape)}), found {list(view['shape'])}", field=f"tensors.{name}.shape")


def check_size(name: str, type: str, attrs: Mapping[str, Any], shape: Shape, param: Optional[str] = None) -> int:
    """The element count of a layer's per-sample output ``shape`` (or of its weight ``param``), which
    :data:`MAX_ELEMENTS` bounds; a larger one is a :class:`ModelError` naming the layer and the field
    that sets the size."""
    size = math.prod(shape)
    if size > MAX_ELEMENTS:
        what = f"weight {param!r} of shape" if param else "an output of shape"
        field = _SIZE_FIELDS.get(type, "inputs")
        if type == "resize":
            field = "size" if attrs.get("size") is not None else "scale"
        raise ModelError(f"expected at most {MAX_ELEMENTS:,} elements per sample, found {what} {list(shape)} "
                         f"({size:,} elements)", layer=name, field=field,
                         hint="a size this large is a mistake in the config (or the ONNX file)")
    return size
