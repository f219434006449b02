"""Shape inference: every layer's per-sample output shape and expected weights, before anything runs.

The shapes follow from the input layers' shapes: the config's, or others (a model run at another input
size infers its shapes again, layer by layer, with the same rules).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Collection, Mapping, Optional

from .format import ModelSpec
from .layers import LAYER_TYPES, Param, Shape, Signal

__all__ = ["ShapeInfo", "infer_shapes"]


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
        info.params[name] = kind.params(name, layer.attrs, in_shapes)
        info.macs[name] = kind.macs(layer.attrs, in_shapes, info.outputs[name])
        info.signals[name] = kind.signal(layer.attrs, in_shapes, [info.signals[src] for src in layer.inputs])
    return info
