"""Rewrites of a parsed ONNX graph before conversion: the node sequences exporters write for an
operator of a later opset, replaced by that one node.

The exact GELU, ``0.5 x (1 + erf(x / sqrt(2)))``, as the TorchScript exporter writes it before opset 20
(Div(x, sqrt 2) -> Erf -> Add 1 -> Mul x -> Mul 0.5) and as the dynamo exporter does (... -> Add 1 ->
Mul 0.5 -> Mul x), with the Div also as a Mul by 1/sqrt(2), the 0.5 taken of x first, and the
operands of each Add and Mul in either order, becomes one ``Gelu`` node (approximate "none").  A match
needs every intermediate tensor read only by the next node of the sequence and not a graph output.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Optional

import numpy as np

from .reader import OnnxGraph, OnnxNode, constant_value

__all__ = ["fuse_patterns"]

_RTOL = 1e-6


class _View:
    """Producers, readers and constants of a graph's tensors."""

    def __init__(self, graph: OnnxGraph) -> None:
        self.graph = graph
        self.producer = {o: n for n in graph.nodes for o in n.outputs if o}
        self.readers: dict[str, list[OnnxNode]] = {}
        for n in graph.nodes:
            for i in n.inputs:
                self.readers.setdefault(i, []).append(n)

    def const(self, name: str) -> Optional[float]:
        """The value of a constant scalar (or one-element) tensor, else None."""
        if name in self.graph.initializers:
            value = self.graph.initializers[name]
        else:
            node = self.producer.get(name)
            if node is None or node.op_type != "Constant":
                return None
            try:
                value = constant_value(node)
            except ValueError:
                return None
        value = np.asarray(value)
        if value.size != 1 or value.dtype.kind != "f":
            return None
        return float(value.reshape(-1)[0])

    def is_const(self, name: str, want: float) -> bool:
        v = self.const(name)
        return v is not None and abs(v - want) <= _RTOL * abs(want)

    def only_reader(self, tensor: str) -> Optional[OnnxNode]:
        """The one node reading ``tensor``, if it has exactly one and is no graph output."""
        readers = self.readers.get(tensor, [])
        if len(readers) != 1 or tensor in self.graph.outputs:
            return None
        return readers[0]

    def other(self, node: OnnxNode, tensor: str) -> Optional[str]:
        """The operand of a two-input node besides ``tensor``."""
        if len(node.inputs) != 2 or tensor not in node.inputs:
            return None
        return node.inputs[1] if node.inputs[0] == tensor else node.inputs[0]


def _gelu_at(view: _View, erf: OnnxNode) -> Optional[tuple[str, list[OnnxNode]]]:
    """(x, the nodes to replace, last one last) where ``erf`` is the core of an exact GELU of x."""
    scaled = view.producer.get(erf.inputs[0])
    if scaled is None or view.only_reader(erf.inputs[0]) is not erf or len(scaled.inputs) != 2:
        return None
    if scaled.op_type == "Div" and view.is_const(scaled.inputs[1], math.sqrt(2.0)):
        x = scaled.inputs[0]
    elif scaled.op_type == "Mul" and view.is_const(scaled.inputs[1], math.sqrt(0.5)):
        x = scaled.inputs[0]
    elif scaled.op_type == "Mul" and view.is_const(scaled.inputs[0], math.sqrt(0.5)):
        x = scaled.inputs[1]
    else:
        return None
    add = view.only_reader(erf.outputs[0])
    if add is None or add.op_type != "Add" or not view.is_const(view.other(add, erf.outputs[0]) or "", 1.0):
        return None
    m1 = view.only_reader(add.outputs[0])
    if m1 is None or m1.op_type != "Mul":
        return None
    first = view.other(m1, add.outputs[0])
    if first is None:
        return None
    if first == x or view.is_const(first, 0.5):
        # x * (1 + erf) or 0.5 * (1 + erf), then the other factor.
        m2 = view.only_reader(m1.outputs[0])
        if m2 is None or m2.op_type != "Mul":
            return None
        second = view.other(m2, m1.outputs[0])
        if not (second == x and first != x or first == x and second is not None and view.is_const(second, 0.5)):
            return None
        return x, [scaled, erf, add, m1, m2]
    half = view.producer.get(first)
    # (0.5 x) * (1 + erf)
    if (half is not None and half.op_type == "Mul" and view.only_reader(first) is m1
            and x in half.inputs and view.is_const(view.other(half, x) or "", 0.5)):
        return x, [half, scaled, erf, add, m1]
    return None


def fuse_patterns(graph: OnnxGraph) -> OnnxGraph:
    """``graph`` with each exported exact GELU replaced by one Gelu node (the same graph if none)."""
    view = _View(graph)
    replaced: dict[int, Optional[OnnxNode]] = {}
    for erf in [n for n in graph.nodes if n.op_type == "Erf" and n.domain in ("", "ai.onnx")]:
        found = _gelu_at(view, erf)
        if found is None or any(id(n) in replaced for n in found[1]):
            continue
        x, nodes = found
        last = max(nodes, key=graph.nodes.index)
        for n in nodes:
            replaced[id(n)] = None
        replaced[id(last)] = OnnxNode("Gelu", last.name or f"{erf.name}/gelu", "", [x], list(last.outputs),
                                      {"approximate": "none"})
    if not replaced:
        return graph
    nodes = [replaced.get(id(n), n) for n in graph.nodes]
    return dataclasses.replace(graph, nodes=[n for n in nodes if n is not None])
