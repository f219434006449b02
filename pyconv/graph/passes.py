"""Load-time graph rewrites: from config layers to the nodes that actually run.

Each node computes one or more config layers and is named after the last of them, so consumers keep
referring to the same names. The rewrites, in order:

1. drop identities (dropout) and layers no output depends on;
2. rewrite ``multiply(x, sigmoid(x))`` as a silu ``activation`` of x, and ``multiply(x,
   hard_sigmoid(x))`` with PyTorch's alpha 1/6 and beta 0.5 as a hard_swish one, and ``multiply(x,
   tanh(softplus(x)))`` as a mish one (how exporters spell SiLU, HardSwish and Mish), so that step 4
   fuses them like any activation;
3. fold ``batch_norm`` and ``scale_shift`` into the convolution or dense layer before it (new kernel
   and bias, computed in float64);
4. fuse ``activation`` layers (any function, pyconv.activations) into the convolution, dense, add
   (subtract, multiply, divide), batch norm, scale_shift or pool before them, when that has no
   activation yet (relu and relu6 also compose with each other);
5. fuse a depthwise convolution (multiplier 1) into the pointwise convolution after it, giving one
   separable node whose ``depthwise_activation`` is the depthwise layer's (possibly fused) activation;
6. fuse a two-input ``add`` of one shape (and its fused activation) into a convolution producing one
   of its inputs (with no activation of its own): the other input becomes the node's second input, its
   ``residual``, added in the GEMM's store (ResNet, MobileNet v2, ShuffleNet and Xception shortcuts);
7. push an activation after a ``concat`` into every producer of the concat's inputs (act(concat(a,
   b)) = concat(act(a), act(b)) for every elementwise function), when each takes it in its store
   (ShuffleNet's stride-2 units: relu(concat(avg_pool(x), conv(x))));
8. move a relu or relu6 (the functions the depthwise row kernels fuse into their reads) whose only
   reader is a depthwise or separable convolution into it, applied to each input value as it is read
   (Xception's blocks: relu(x) feeds the block, x its shortcut, so step 4 cannot fuse the relu into
   x's producer).

The rewrites move no weights: a node's ``weights`` are recipes (:data:`Deferred`), each computing its
array (a layer's original, or one with a batch norm folded in) when the node's operator is built, so
that loading holds one node's unpacked weights at a time, never the whole model's.

A rewrite only applies when the intermediate tensor has no other consumer and is not a graph output,
so every tensor anyone can observe is still computed. The outputs are the config's or, for a run that
asks for intermediate tensors (``model.run(x, outputs=[...])``), the ones requested, which are then
computed as such (a convolution's output requested before its relu keeps the relu a node of its own).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ..activations import compose, of_layer
from ..memory import aligned_empty
from .format import ModelSpec
from .layers import LAYER_TYPES, Shape
from .shapes import ShapeInfo
from .weights import Weights

__all__ = ["Deferred", "Graph", "Node", "live_layers", "lower", "materialise"]

# A weight array to compute when its operator is built.
Deferred = Callable[[], np.ndarray]

_FOLDS_BN = ("conv2d", "depthwise_conv2d", "pointwise_conv2d", "separable_conv2d", "dense")
_TAKES_ACTIVATION = (*_FOLDS_BN, "add", "subtract", "multiply", "divide", "batch_norm", "scale_shift")
# Producers an activation layer after them (or after a concat of them) can move into: pools apply it to
# each pooled value (an attribute only the loader gives them).
_TAKES_PUSHED_ACTIVATION = (*_TAKES_ACTIVATION, "max_pool", "avg_pool")
# multiply(x, gate(x)) -> function(x): the gate's function and parameters, and the result.
_GATED = (("sigmoid", {}, "silu"), ("hard_sigmoid", {"alpha": 1.0 / 6.0, "beta": 0.5}, "hard_swish"))
# How far a gate's exported parameters may be from the exact ones (PyTorch exports 1/6 as float32).
_GATE_TOLERANCE = 1e-6


@dataclass
class Node:
    """A unit of execution: one layer type, possibly carrying fused neighbours."""

    name: str
    type: str
    inputs: list[str]
    attrs: dict[str, Any]
    weights: dict[str, Deferred]
    layers: list[str]
    in_shapes: list[Shape]
    out_shape: Shape


@dataclass
class Graph:
    """Nodes in execution order; ``outputs`` maps each requested output layer to the tensor holding it."""

    nodes: dict[str, Node]
    inputs: list[str]
    outputs: dict[str, str]
    folded: list[str] = field(default_factory=list)

    def consumers(self, tensor: str) -> list[Node]:
        return [n for n in self.nodes.values() if tensor in n.inputs]

    def private(self, tensor: str, consumer: Node) -> bool:
        """Whether ``consumer`` is the only reader of ``tensor`` and nobody else can observe it."""
        return (tensor in self.nodes and tensor not in self.outputs.values()
                and all(n is consumer for n in self.consumers(tensor)))

    def merge(self, producer: Node, consumer: Node) -> None:
        """Replace ``consumer`` by ``producer``, which takes over its name and place."""
        del self.nodes[producer.name]
        producer.name = consumer.name
        producer.layers += consumer.layers
        producer.out_shape = consumer.out_shape
        self.nodes[consumer.name] = producer


def live_layers(spec: ModelSpec, outputs: Sequence[str]) -> set[str]:
    """The layers the tensors ``outputs`` depend on (themselves included)."""
    live: set[str] = set()
    stack = list(outputs)
    while stack:
        name = stack.pop()
        if name not in live:
            live.add(name)
            stack.extend(spec.layers[name].inputs)
    return live


def materialise(node: Node) -> dict[str, np.ndarray]:
    """The arrays of ``node``'s weights, computed now."""
    return {name: make() for name, make in node.weights.items()}


def _initial(spec: ModelSpec, info: ShapeInfo, weights: Weights, outputs: Sequence[str]) -> Graph:
    live = live_layers(spec, outputs)
    alias: dict[str, str] = {}
    nodes: dict[str, Node] = {}
    for name, layer in spec.layers.items():
        if name not in live or layer.type == "input":
            continue
        inputs = [alias.get(src, src) for src in layer.inputs]
        if LAYER_TYPES[layer.type].identity:
            alias[name] = inputs[0]
            continue
        nodes[name] = Node(name=name, type=layer.type, inputs=inputs, attrs=dict(layer.attrs),
                           weights={p: functools.partial(weights.array, name, p) for p in info.params[name]},
                           layers=[name],
                           in_shapes=info.inputs_of(spec, name), out_shape=info.outputs[name])
    return Graph(nodes=nodes, inputs=list(spec.inputs), outputs={o: alias.get(o, o) for o in outputs})


def _affine(node: Node) -> tuple[np.ndarray, np.ndarray]:
    """A batch norm's or scale_shift's per-channel ``(scale, shift)``, in float64."""
    w = {k: v.astype(np.float64) for k, v in materialise(node).items()}
    if node.type == "scale_shift":
        return w["scale"], w["shift"]
    scale = w["gamma"] / np.sqrt(w["variance"] + node.attrs["epsilon"])
    return scale, w["beta"] - w["mean"] * scale


# Kernel values folded at a time: the float64 product of a large kernel is never made whole.
_FOLD_VALUES = 1 << 16


def _folded_kernel(kernel: Deferred, affine: Callable[[], tuple[np.ndarray, np.ndarray]], depthwise: bool,
                   in_place: bool) -> Deferred:
    """``kernel`` with the batch norm of ``affine`` folded in; written over the array ``kernel`` makes if
    ``in_place``."""
    def make() -> np.ndarray:
        scale, _ = affine()
        k = kernel()
        # Output channel c of every kernel layout is its last axis, except depthwise (KH, KW, C, M)
        # whose output channel c * M + m spans the last two.
        rows = k.reshape(-1, scale.size)
        out = rows if in_place else aligned_empty(rows.shape, mapped=True)
        step = max(1, _FOLD_VALUES // scale.size)
        for start in range(0, rows.shape[0], step):
            block = slice(start, start + step)
            out[block] = rows[block].astype(np.float64) * scale
        return out.reshape(k.shape)
    return make


def _folded_bias(bias: Optional[Deferred], affine: Callable[[], tuple[np.ndarray, np.ndarray]]) -> Deferred:
    def make() -> np.ndarray:
        scale, shift = affine()
        b = bias().astype(np.float64) if bias is not None else np.zeros_like(scale)
        return (b * scale + shift).astype(np.float32)
    return make


def _fold_batch_norm(graph: Graph, fresh: bool) -> None:
    for bn in [n for n in graph.nodes.values() if n.type in ("batch_norm", "scale_shift")]:
        src = bn.inputs[0]
        conv = graph.nodes.get(src)
        if conv is None or conv.type not in _FOLDS_BN or conv.attrs["activation"] is not None \
                or not graph.private(src, bn):
            continue
        key = "pointwise_kernel" if conv.type == "separable_conv2d" else "kernel"
        # Computed once for the kernel and the bias: the batch norm's arrays are asked for once.
        affine = functools.lru_cache(maxsize=1)(functools.partial(_affine, bn))
        conv.weights = {**conv.weights,
                        key: _folded_kernel(conv.weights[key], affine, conv.type == "depthwise_conv2d", fresh),
                        "bias": _folded_bias(conv.weights.get("bias"), affine)}
        conv.attrs["activation"] = bn.attrs.get("activation")
        graph.merge(conv, bn)
        graph.folded.append(bn.name)


def _gated_function(gate: Node) -> Optional[str]:
    """The function f for which ``multiply(x, gate(x)) = f(x)``, if ``gate`` is such an activation."""
    if gate.type != "activation":
        return None
    act = of_layer(gate.attrs, gate.name)
    for function, params, result in _GATED:
        if act.function == function and all(abs(getattr(act, k) - v) <= _GATE_TOLERANCE for k, v in params.items()):
            return result
    return None


def _gate_of(graph: Graph, src: str, x: str, mul: Node) -> Optional[tuple[str, list[Node]]]:
    """(f, the gate's nodes) where ``mul``'s input ``src`` is gate(x) with ``multiply(x, gate(x)) = f(x)``:
    one gating activation of x, or tanh(softplus(x)) (Mish as exporters spell it), each tensor private."""
    gate = graph.nodes.get(src)
    if gate is None or x == src or not graph.private(src, mul) or gate.type != "activation":
        return None
    if gate.inputs == [x]:
        function = _gated_function(gate)
        return None if function is None else (function, [gate])
    inner = graph.nodes.get(gate.inputs[0])
    if (gate.attrs.get("function") == "tanh" and inner is not None and inner.type == "activation"
            and inner.inputs == [x] and inner.attrs.get("function") == "softplus"
            and graph.private(inner.name, gate)):
        return "mish", [inner, gate]
    return None


def _fuse_gates(graph: Graph) -> None:
    for mul in [n for n in graph.nodes.values() if n.type == "multiply" and len(n.inputs) == 2]:
        if mul.attrs.get("activation") is not None or mul.in_shapes[0] != mul.in_shapes[1]:
            continue
        for i, src in enumerate(mul.inputs):
            x = mul.inputs[1 - i]
            found = _gate_of(graph, src, x, mul)
            if found is None:
                continue
            function, gates = found
            fused = Node(name=mul.name, type="activation", inputs=[x],
                         attrs={"function": function, "min": None, "max": None}, weights={},
                         layers=[name for g in gates for name in g.layers] + mul.layers,
                         in_shapes=[mul.in_shapes[1 - i]], out_shape=mul.out_shape)
            for g in gates:
                del graph.nodes[g.name]
            graph.nodes[mul.name] = fused
            break


def _fuse_activations(graph: Graph) -> None:
    for act in [n for n in graph.nodes.values() if n.type == "activation"]:
        src = act.inputs[0]
        producer = graph.nodes.get(src)
        if producer is None or producer.type not in _TAKES_PUSHED_ACTIVATION or not graph.private(src, act):
            continue
        exact, composed = compose(producer.attrs.get("activation"), of_layer(act.attrs, act.name))
        if not exact:
            continue
        producer.attrs["activation"] = None if composed is None else composed.config()
        graph.merge(producer, act)


def _matrix(kernel: Deferred) -> Deferred:
    """A 1x1 kernel (1, 1, C_in, C_out) or (C_in, C_out) as (C_in, C_out)."""
    def make() -> np.ndarray:
        k = kernel()
        return k.reshape(k.shape[-2:])
    return make


def _is_pointwise(node: Node) -> bool:
    if node.type == "pointwise_conv2d":
        return True
    a = node.attrs
    return (node.type == "conv2d" and a["strategy"] == "auto" and a["groups"] == 1
            and a["kernel"] in (1, (1, 1), [1, 1]) and a["stride"] in (1, (1, 1))
            and a["dilation"] in (1, (1, 1)) and a["padding"] in ("valid", "same", 0, (0, 0), ((0, 0), (0, 0))))


def _fuse_separable(graph: Graph) -> None:
    for pw in [n for n in graph.nodes.values() if _is_pointwise(n)]:
        src = pw.inputs[0]
        dw = graph.nodes.get(src)
        if dw is None or dw.type != "depthwise_conv2d" or dw.attrs["depth_multiplier"] != 1 \
                or not graph.private(src, pw):
            continue
        weights = {"depthwise_kernel": dw.weights["kernel"], "pointwise_kernel": _matrix(pw.weights["kernel"])}
        if "bias" in dw.weights:
            weights["depthwise_bias"] = dw.weights["bias"]
        if "bias" in pw.weights:
            weights["bias"] = pw.weights["bias"]
        fused = Node(name=dw.name, type="separable_conv2d", inputs=dw.inputs,
                     attrs={"kernel": dw.attrs["kernel"], "stride": dw.attrs["stride"],
                            "padding": dw.attrs["padding"], "dilation": dw.attrs["dilation"],
                            "filters": pw.out_shape[-1], "depthwise_activation": dw.attrs["activation"],
                            "activation": pw.attrs["activation"]},
                     weights=weights, layers=dw.layers, in_shapes=dw.in_shapes, out_shape=dw.out_shape)
        graph.nodes[dw.name] = fused
        graph.merge(fused, pw)


_TAKES_RESIDUAL = ("conv2d", "pointwise_conv2d", "separable_conv2d")


def _fuse_residual_add(graph: Graph) -> None:
    # The shortcut is added in the GEMM's store at the output's shape: broadcasting adds stay nodes.
    for add in [n for n in graph.nodes.values()
                if n.type == "add" and len(n.inputs) == 2 and n.in_shapes[0] == n.in_shapes[1]]:
        for i, src in enumerate(add.inputs):
            conv = graph.nodes.get(src)
            other = add.inputs[1 - i]
            if (conv is None or conv.type not in _TAKES_RESIDUAL or conv.attrs["activation"] is not None
                    or conv.attrs.get("residual") or other == src or not graph.private(src, add)):
                continue
            conv.inputs = [*conv.inputs, other]
            conv.in_shapes = [*conv.in_shapes, add.in_shapes[1 - i]]
            conv.attrs["residual"] = True
            conv.attrs["activation"] = add.attrs["activation"]
            graph.merge(conv, add)
            break


def _push_activations_through_concat(graph: Graph) -> None:
    for act in [n for n in graph.nodes.values() if n.type == "activation"]:
        concat = graph.nodes.get(act.inputs[0])
        if concat is None or concat.type != "concat" or not graph.private(concat.name, act):
            continue
        function = of_layer(act.attrs, act.name)
        producers = [graph.nodes.get(src) for src in concat.inputs]
        if len(set(concat.inputs)) != len(concat.inputs) or not all(
                p is not None and p.type in _TAKES_PUSHED_ACTIVATION and graph.private(p.name, concat)
                and compose(p.attrs.get("activation"), function)[0] for p in producers):
            continue
        for producer in producers:
            composed = compose(producer.attrs.get("activation"), function)[1]
            producer.attrs["activation"] = None if composed is None else composed.config()
        graph.merge(concat, act)


_TAKES_INPUT_ACTIVATION = ("depthwise_conv2d", "separable_conv2d")


def _fuse_input_activations(graph: Graph) -> None:
    for act in [n for n in graph.nodes.values() if n.type == "activation" and of_layer(n.attrs, n.name).fused]:
        readers = graph.consumers(act.name)
        # The reader's first input is the one its depthwise step reads; a second one is a residual.
        if (len(readers) != 1 or act.name in graph.outputs.values() or readers[0].type not in _TAKES_INPUT_ACTIVATION
                or readers[0].inputs.count(act.name) != 1 or readers[0].inputs[0] != act.name
                or readers[0].attrs.get("input_activation")):
            continue
        reader = readers[0]
        reader.inputs = [act.inputs[0], *reader.inputs[1:]]
        reader.attrs["input_activation"] = of_layer(act.attrs, act.name).fused
        reader.layers += act.layers
        del graph.nodes[act.name]


def lower(spec: ModelSpec, info: ShapeInfo, weights: Weights, *, optimize: bool = True,
          outputs: Optional[Sequence[str]] = None) -> Graph:
    """The execution graph of a config computing its outputs (or the layers ``outputs`` names):
    identities removed and, with ``optimize``, the folds and fusions described in the module docstring
    applied."""
    graph = _initial(spec, info, weights, spec.outputs if outputs is None else outputs)
    if optimize:
        _fuse_gates(graph)
        _fold_batch_norm(graph, weights.fresh)
        _fuse_activations(graph)
        _fuse_separable(graph)
        _fuse_residual_add(graph)
        _push_activations_through_concat(graph)
        _fuse_input_activations(graph)
    return graph
