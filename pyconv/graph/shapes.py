"""Shape inference: every layer's per-sample output shape and expected weights, before anything runs."""
from __future__ import annotations

from dataclasses import dataclass

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


def infer_shapes(spec: ModelSpec) -> ShapeInfo:
    """Propagate shapes through the layers in topological order; a layer whose inputs it cannot take
    raises :class:`~pyconv.graph.errors.ModelError` naming the layer and the field at fault."""
    info = ShapeInfo({}, {}, {}, {})
    for name, layer in spec.layers.items():
        kind = LAYER_TYPES[layer.type]
        in_shapes = info.inputs_of(spec, name)
        out = kind.output_shape(name, layer.attrs, in_shapes)
        info.outputs[name] = tuple(int(d) for d in out)
        info.params[name] = kind.params(name, layer.attrs, in_shapes)
        info.macs[name] = kind.macs(layer.attrs, in_shapes, info.outputs[name])
        info.signals[name] = kind.signal(layer.attrs, in_shapes, [info.signals[src] for src in layer.inputs])
    return info
