"""ONNX graph -> pyconv config and weights; :func:`from_onnx` loads the result as a :class:`~pyconv.Model`.

The conversion walks the nodes once, in order. Every ONNX tensor the model computes becomes a
:class:`Tensor`: the pyconv layer holding it and how its NCHW ONNX shape maps onto that layer's
per-sample NHWC shape. The layout changes only at the boundary: the input layer takes NCHW arrays
(``"layout": "NCHW"``), 4-D outputs are returned NCHW (``"output_layout": "NCHW"``), and weights are
transposed here, once. Some ONNX tensors are never materialised: a zero ``Pad`` stays pending until a
convolution or pooling absorbs it into its own pads, and the Reshape-Transpose-Reshape of a channel
shuffle becomes one ``channel_shuffle`` layer when its last Reshape arrives. Models converted from
TensorFlow (tf2onnx) transpose their NHWC input to NCHW and back before flattening: a 4-D graph input
read only by Transpose (0, 3, 1, 2) becomes an NHWC input layer, and Transpose (0, 2, 3, 1) then a
Reshape to (N, F) is a flatten in NHWC order.

Layers are named after their ONNX node (or output tensor, for nodes without a name); the layers that
compute graph outputs carry the output names, so ``model.run`` returns them under the ONNX names. The
config's ``tensors`` maps every other ONNX tensor pyconv holds to the layer computing it (with any
pending zero pad, and the ``(1, 1, C)`` or ``(C, 1)`` view of a pooled or column ``(C,)``), so
``model.run(x, outputs=[...])`` takes ONNX tensor names too.

Input sizes. A conversion happens at one size per graph input: the file's, or for symbolic axes the
size the caller declares (``from_onnx(path, input_shape=(1, 3, 224, 224))``); every shape computation
in the graph is evaluated at that size. The :class:`~pyconv.Model` that :func:`from_onnx` returns still
runs at other sizes: it keeps the parsed graph and converts it again for each new input size
(:class:`_Reconversion`), so whatever the graph computes from its input's shape (pads for TensorFlow's
"same", as ``tf_*`` ports and pyconv's own torch twin emit them; Reshape targets) is evaluated at that
size, as onnxruntime would. The model's runtime compares the layers: those whose config is unchanged
keep their operators; a convolution whose pads change with the size gets the same operator with other
pads (``with_padding``): weights are packed once whatever the sizes. Recognising "same" padding
instead was rejected: exporters spell it with several formulas (timm's ``pad_same``, tf2onnx's, the
twin's ``-(-size // stride)``, whose integer Div truncates toward zero in ONNX, so that at odd sizes it
is *not* TensorFlow's "same"), and a pattern that misreads one silently computes something else than
the file; evaluating the file's own subgraph at each size cannot. The graph kept for this holds its
weight initializers as zero-stride placeholders, so it costs no second copy of the weights.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence, Union

import numpy as np

from ..activations import FUNCTIONS
from ..graph.errors import ModelError
from ..graph.layers import LAYER_TYPES, Shape
from ..graph.shapes import check_size
from .patterns import fuse_patterns
from .reader import (BATCH, FOLDABLE, GraphInput, OnnxGraph, OnnxImportError, OnnxNode, Source, constant_value,
                     fold, read_model)

if TYPE_CHECKING:
    from ..graph.model import Model

__all__ = ["Context", "Tensor", "convert", "from_onnx", "onnx_to_config"]

Pads = tuple[int, int, int, int]  # top, bottom, left, right
# The ONNX shape of one graph input, or per input name: with or without the batch axis.
InputShape = Union[None, Sequence[int], Mapping[str, Sequence[int]]]
_NO_PADS: Pads = (0, 0, 0, 0)
# The kinds held as a (C,) vector whose ONNX shape has trailing unit axes: that shape per sample.
_VECTOR_VIEWS = {"pooled": lambda c: [1, 1, c], "column": lambda c: [c, 1]}


@dataclass(frozen=True)
class Tensor:
    """An ONNX tensor computed by the model, as pyconv holds it.

    ``kind``: ``"image"`` (ONNX ``(N, C, H, W)``, layer output ``(H, W, C)``), ``"flat"`` (``(N, F)``,
    ``(F,)``), ``"pooled"`` (a global pool's ``(N, C, 1, 1)``, held as ``(C,)``) or ``"column"``
    (``(N, C, 1)``, held as ``(C,)``: the middle of ``y[:, :, None, None]``, two Unsqueeze nodes). ``pads`` is a zero
    padding not yet applied to ``layer``'s output; ``shuffle`` marks the middle of a channel-shuffle
    pattern: ``("split", g)`` after its first Reshape, ``("swapped", g)`` after its Transpose. ``nhwc``
    marks an image whose ONNX tensor is transposed to (N, H, W, C), as pyconv holds it.
    ``nonneg`` says every value is >= 0 (after a ReLU), which lets a zero pad fold into a max pool.
    """

    layer: str
    kind: str
    shape: Shape
    pads: Pads = _NO_PADS
    shuffle: Optional[tuple[str, int]] = None
    nhwc: bool = False
    nonneg: bool = False

    @property
    def padded_hw(self) -> tuple[int, int]:
        h, w, _ = self.shape
        return h + self.pads[0] + self.pads[1], w + self.pads[2] + self.pads[3]

    def onnx_shape(self, batch: int) -> tuple[int, ...]:
        """The ONNX shape of this tensor, with ``batch`` for the batch axis."""
        if self.kind == "flat":
            return (batch, *self.shape)
        if self.kind == "pooled":
            return (batch, self.shape[0], 1, 1)
        if self.kind == "column":
            return (batch, self.shape[0], 1)
        (h, w), c = self.padded_hw, self.shape[2]
        if self.nhwc:
            return (batch, h, w, c)
        if self.shuffle is None:
            return (batch, c, h, w)
        stage, g = self.shuffle
        return (batch, g, c // g, h, w) if stage == "split" else (batch, c // g, g, h, w)


class Context:
    """The conversion state: the layers and weights built so far and the ONNX tensors they hold.
    Converters (:mod:`pyconv.onnx.ops`) read their inputs and emit layers through it."""

    def __init__(self, graph: OnnxGraph, shapes: Optional[Mapping[str, tuple[Optional[int], ...]]] = None) -> None:
        self.graph = graph
        self.opset = graph.opset
        # The ONNX shape of each graph input at which to convert, the batch axis as the file has it.
        self.input_shapes = dict(shapes) if shapes is not None else _input_shapes(graph, None)
        batches = {self.input_shapes[i.name][0] for i in graph.inputs}
        # Shape nodes report the batch as exported when it is fixed, else the BATCH marker.
        self.batch = batches.pop() if len(batches) == 1 and None not in batches else BATCH
        self.layers: list[dict[str, Any]] = []
        self.weights: dict[str, np.ndarray] = {}
        self.shapes: dict[str, Shape] = {}
        self.tensors: dict[str, Tensor] = {}
        self.constants: dict[str, np.ndarray] = dict(graph.initializers)
        self._outputs = set(graph.outputs)
        self._names: set[str] = set(self._outputs)
        self._materialised: dict[str, Tensor] = {}
        # ONNX tensors held in a smaller, broadcast-equivalent form (an Expand read only by broadcasting
        # ops): not observable by name, as pyconv does not hold their ONNX shape.
        self.hidden: set[str] = set()

    # --- reading inputs ------------------------------------------------------------------------------

    def const(self, name: str) -> Optional[np.ndarray]:
        """The constant value of ONNX tensor ``name`` (None for a computed or an omitted input), which
        must hold real numbers (or booleans): every use of a constant here computes with it."""
        value = self.constants.get(name) if name else None
        if value is not None and value.dtype.kind not in "biuf":
            raise OnnxImportError(f"expected a constant of real numbers, found {name!r} of type {value.dtype}")
        return value

    def input_const(self, node: OnnxNode, index: int, what: str) -> np.ndarray:
        """Input ``index`` of ``node``, which must be a constant (weights, shapes, bounds)."""
        name = node.inputs[index] if index < len(node.inputs) else ""
        value = self.const(name)
        if value is None:
            found = f"the computed tensor {name!r}" if name else "nothing"
            raise OnnxImportError(f"expected {what} (input {index}) to be a constant (an initializer or computed "
                                  f"from constants), found {found}")
        return value

    def input_ints(self, node: OnnxNode, index: int, what: str) -> list[int]:
        """Input ``index`` of ``node``, a constant of integers (shapes, pads, axes, sizes), flattened."""
        value = self.input_const(node, index, what)
        if value.dtype.kind not in "iu":
            raise OnnxImportError(f"expected {what} (input {index}) to be integers, found type {value.dtype}")
        return [int(v) for v in value.reshape(-1)]

    def raw(self, name: str) -> Tensor:
        """The tensor ``name`` as held, pending pads and shuffle stages included."""
        if name in self.constants:
            raise OnnxImportError(f"expected a computed tensor, found the constant {name!r} "
                                  f"of shape {list(self.constants[name].shape)}")
        if name not in self.tensors:  # "" (an absent optional input) where this converter needs a tensor
            raise OnnxImportError(f"expected a computed tensor, found {repr(name) if name else 'an empty name'}")
        return self.tensors[name]

    def value(self, name: str) -> Tensor:
        """The tensor ``name`` with any pending zero pad applied (as a ``pad`` layer, built once)."""
        t = self.raw(name)
        if t.shuffle is not None:
            raise OnnxImportError(f"tensor {name!r} of shape {list(t.onnx_shape(1))} is part of a channel shuffle "
                                  "(Reshape to (N, g, C/g, H, W), Transpose perm (0, 2, 1, 3, 4), Reshape back); "
                                  "no other use of it is supported")
        if t.nhwc:
            raise OnnxImportError(f"tensor {name!r} is an image transposed to NHWC {list(t.onnx_shape(1))}; "
                                  "only transposing it back to NCHW or flattening it (Reshape to (N, F)) is supported")
        if t.pads == _NO_PADS:
            return t
        if name not in self._materialised:
            (top, bottom, left, right) = t.pads
            layer = self.add_layer(f"{name}/pad", "pad", [t.layer], {"padding": [[top, bottom], [left, right]]})
            self._materialised[name] = Tensor(layer, "image", self.shapes[layer], nonneg=t.nonneg)
        return self._materialised[name]

    def image(self, name: str, *, keep_pads: bool = False) -> Tensor:
        """The tensor ``name`` as an image; a global pool's ``(C,)`` is reshaped to ``(1, 1, C)``."""
        raw = self.raw(name)
        t = raw if keep_pads and raw.shuffle is None and not raw.nhwc else self.value(name)
        if t.kind == "pooled":
            key = f"{name}/image"
            if key not in self._materialised:
                layer = self.add_layer(f"{name}/reshape", "reshape", [t.layer], {"shape": [1, 1, t.shape[0]]})
                self._materialised[key] = Tensor(layer, "image", self.shapes[layer], nonneg=t.nonneg)
            return self._materialised[key]
        if t.kind != "image":
            raise OnnxImportError(f"expected an image (N, C, H, W), found tensor {name!r} of shape "
                                  f"{list(t.onnx_shape(1))}")
        return t

    # --- building ------------------------------------------------------------------------------------

    def _unique(self, base: str) -> str:
        name, i = base, 1
        while name in self._names:
            i += 1
            name = f"{base}_{i}"
        self._names.add(name)
        return name

    def add_layer(self, base: str, type: str, inputs: Sequence[str], attrs: dict[str, Any],
                  weights: Optional[dict[str, np.ndarray]] = None, *, exact: bool = False) -> str:
        """Append a layer named ``base`` (made unique unless ``exact``) and return its name."""
        if exact:
            name = base
            self._names.add(name)
        else:
            name = self._unique(base)
        kind = LAYER_TYPES[type]
        normalized = kind.normalize(attrs)
        shape = kind.output_shape(name, normalized, [self.shapes[i] for i in inputs])
        self.shapes[name] = tuple(int(d) for d in shape)
        # Checked here already, not only when the config loads: converters allocate arrays of these sizes
        # (a mean over the channels as a 1x1 conv's weights).
        check_size(name, type, normalized, self.shapes[name])
        self.layers.append({"name": name, "type": type, **({"inputs": list(inputs)} if inputs else {}), **attrs})
        for param, array in (weights or {}).items():
            self.weights[f"{name}/{param}"] = np.ascontiguousarray(array, dtype=np.float32)
        return name

    def emit(self, node: OnnxNode, type: str, inputs: Sequence[Tensor], attrs: dict[str, Any],
             weights: Optional[dict[str, np.ndarray]] = None, *, kind: Optional[str] = None,
             nonneg: bool = False) -> Tensor:
        """Add the layer computing ``node``'s first output and record that output. ``kind`` defaults to
        the first input's."""
        out = node.outputs[0]
        kind = kind or inputs[0].kind
        # A graph output held as a pooled or column (C,) gets its reshape under the output name at the end.
        exact = out in self._outputs and kind not in _VECTOR_VIEWS
        base = out if exact else (node.name or out)
        layer = self.add_layer(base, type, [t.layer for t in inputs], attrs, weights, exact=exact)
        self.tensors[out] = Tensor(layer, kind, self.shapes[layer], nonneg=nonneg)
        return self.tensors[out]

    def alias(self, node: OnnxNode, tensor: Tensor) -> None:
        """``node``'s first output is ``tensor`` again (a layout-only or identity op)."""
        self.tensors[node.outputs[0]] = tensor


def _add_input(ctx: Context, name: str, shape: tuple, nhwc: bool) -> None:
    if len(shape) == 4:
        if nhwc:
            _, h, w, c = shape
        else:
            _, c, h, w = shape
        layer = ctx.add_layer(name, "input", [], {"shape": [h, w, c], "layout": "NHWC" if nhwc else "NCHW"},
                              exact=True)
        ctx.tensors[name] = Tensor(layer, "image", ctx.shapes[layer], nhwc=nhwc)
    else:
        layer = ctx.add_layer(name, "input", [], {"shape": [shape[1]]}, exact=True)
        ctx.tensors[name] = Tensor(layer, "flat", ctx.shapes[layer])


def _input_shapes(graph: OnnxGraph, given: InputShape) -> dict[str, tuple[Optional[int], ...]]:
    """The ONNX shape of each graph input to convert at: ``given`` (one shape for a single input, or
    shapes by input name; with or without the batch axis) where given, else the file's; a symbolic
    axis nobody sized is an error saying how to size it."""
    if given is not None and not isinstance(given, Mapping):
        if len(graph.inputs) != 1:
            raise OnnxImportError(f"the model has {len(graph.inputs)} inputs: pass input_shape as a dict keyed by "
                                  f"{', '.join(repr(i.name) for i in graph.inputs)}")
        given = {graph.inputs[0].name: given}
    given = dict(given or {})
    unknown = sorted(set(given) - {i.name for i in graph.inputs})
    if unknown:
        raise OnnxImportError(f"input_shape names {unknown[0]!r}, which is not a graph input (inputs: "
                              f"{', '.join(repr(i.name) for i in graph.inputs)})")
    shapes = {}
    for inp in graph.inputs:
        shapes[inp.name] = _input_shape(inp, given.get(inp.name))
    return shapes


def _input_shape(inp: GraphInput, given: Optional[Sequence[int]]) -> tuple[Optional[int], ...]:
    if given is None:
        if inp.symbolic:
            example = {"NF": (1, 1000), "NCHW": (1, inp.shape[1] or 3, 224, 224),
                       "NHWC": (1, 224, 224, inp.shape[3])}[inp.axes]
            raise OnnxImportError(
                f"graph input {inp.name!r} has shape {list(inp.dims)}, found {', '.join(inp.symbolic)}: pyconv "
                f"converts a model at one declared size", field="input_shape",
                hint=f"pass the size to plan for, e.g. pyconv.from_onnx(path, input_shape={example}); the model "
                     f"then also runs at any other size its layers allow")
        return inp.shape
    try:
        dims = [int(d) for d in given]
    except (TypeError, ValueError):
        raise OnnxImportError(f"input_shape for {inp.name!r}: expected a sequence of ints, found {given!r}") from None
    rank = len(inp.shape)
    if len(dims) == rank - 1:
        dims = [inp.shape[0] or 1, *dims]
    if len(dims) != rank or min(dims) < 1:
        raise OnnxImportError(f"input_shape for {inp.name!r}: expected {rank} positive sizes (or {rank - 1} without "
                              f"the batch) like its ONNX shape {list(inp.dims)}, found {list(given)}")
    # Channels that disagree with the weights are reported by the layer reading them.
    return (inp.shape[0], *dims[1:])


def _shape_of(ctx: Context, node: OnnxNode) -> np.ndarray:
    shape = np.array(ctx.raw(node.inputs[0]).onnx_shape(ctx.batch), dtype=np.int64)
    start, end = node.attrs.get("start", 0), node.attrs.get("end")
    return shape[start:end]


def supported_operators() -> list[str]:
    """The ONNX operator types the importer converts (besides constant shape computations)."""
    from .ops import CONVERTERS
    return sorted(CONVERTERS)


# Activations pyconv does not compute, as exporters write them: named in the unsupported-operator error.
_ACTIVATIONS_MISSING = {
    "Erf": "erf outside an exact GELU's 0.5 x (1 + erf(x / sqrt(2))) is not a pyconv activation",
    "Celu": "CELU is not a pyconv activation",
    "Softsign": "Softsign is not a pyconv activation"}


def _check_operators(graph: OnnxGraph) -> None:
    from .ops import CONVERTERS
    known = set(CONVERTERS) | set(FOLDABLE) | {"Constant", "Shape"}
    bad = [(n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}.{n.op_type}", n.name)
           for n in graph.nodes if n.domain not in ("", "ai.onnx") or n.op_type not in known]
    if bad:
        pairs = ", ".join(f"({op}, {name!r})" + (f" [{_ACTIVATIONS_MISSING[op]}]" if op in _ACTIVATIONS_MISSING else "")
                          for op, name in bad)
        activations = (f"; pyconv's activation functions are {', '.join(FUNCTIONS)}"
                       if any(op in _ACTIVATIONS_MISSING for op, _ in bad) else "")
        raise OnnxImportError(
            f"the model uses {len(bad)} node(s) of unsupported operator types: {pairs}",
            hint=f"supported operators: {', '.join(supported_operators())}; plus Constant and constant shape "
                 f"computations ({', '.join(sorted(set(FOLDABLE) | {'Shape'} - set(CONVERTERS)))}){activations}")


def onnx_to_config(graph: OnnxGraph, name: str = "", input_shape: InputShape = None
                   ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The pyconv config and weights (``"<layer>/<param>"`` -> array) of a parsed ONNX graph, converted at
    ``input_shape`` (see :func:`from_onnx`), by default the file's input sizes."""
    from .ops import CONVERTERS

    graph = fuse_patterns(graph)
    _check_operators(graph)
    ctx = Context(graph, _input_shapes(graph, input_shape))
    for inp in graph.inputs:
        readers = [n for n in graph.nodes if inp.name in n.inputs]
        nhwc = bool(readers) and all(n.op_type == "Transpose" and list(n.attrs.get("perm", [])) == [0, 3, 1, 2]
                                     for n in readers)
        _add_input(ctx, inp.name, ctx.input_shapes[inp.name], nhwc and inp.name not in graph.outputs)
    problems: list[str] = []
    failed: set[str] = set()
    for node in graph.nodes:
        if any(i in failed for i in node.inputs):
            failed.update(node.outputs)  # downstream of a reported problem: not reported again
            continue
        try:
            if node.op_type == "Constant":
                ctx.constants[node.outputs[0]] = constant_value(node)
            elif node.op_type in FOLDABLE and all(not i or i in ctx.constants for i in node.inputs):
                ctx.constants[node.outputs[0]] = fold(node, [ctx.const(i) for i in node.inputs], ctx.opset)
            elif node.op_type == "Shape":
                ctx.constants[node.outputs[0]] = _shape_of(ctx, node)
            elif node.op_type in CONVERTERS:
                CONVERTERS[node.op_type](ctx, node)
            else:
                raise OnnxImportError(f"{node.op_type} is supported only on constants (shape computations), "
                                      "found a computed input")
        except (OnnxImportError, ModelError) as exc:
            problems.append(f"{node.label}: {exc}")
            failed.update(node.outputs)
    outputs = []
    for out in graph.outputs:
        if out in failed:
            continue
        try:
            outputs.append(_output(ctx, out))
        except (OnnxImportError, ModelError) as exc:
            problems.append(f"graph output {out!r}: {exc}")
    if problems:
        raise OnnxImportError(f"cannot import the model: {len(problems)} problem(s): " + "; ".join(problems),
                              hint="docs/model-format.md lists the supported ONNX operators and their forms")
    config = {"format": "pyconv-model", "version": 1, "name": name or graph.name or "onnx_model",
              "description": f"imported from ONNX (opset {graph.opset}, producer {graph.producer or 'unknown'})",
              "metadata": {"source": "onnx", "opset": graph.opset, "producer": graph.producer,
                           "onnx_inputs": [i.name for i in graph.inputs], "onnx_outputs": list(graph.outputs),
                           **_labels_and_preset(graph.metadata)},
              "layers": ctx.layers, "outputs": outputs, "output_layout": "NCHW", "tensors": _tensor_views(ctx)}
    return config, ctx.weights


def _labels_and_preset(props: dict[str, str]) -> dict[str, Any]:
    """The class names (``labels``: a JSON array of strings) and preprocessing preset (``preprocess``)
    a file's metadata_props carry, for the config's metadata; anything malformed is left out."""
    found: dict[str, Any] = {}
    try:
        labels = json.loads(props["labels"]) if "labels" in props else None
    except ValueError:
        labels = None
    if isinstance(labels, list) and labels and all(isinstance(n, str) for n in labels):
        found["labels"] = labels
    if isinstance(props.get("preprocess"), str):
        found["preprocess"] = props["preprocess"]
    return found


def _tensor_views(ctx: Context) -> dict[str, dict[str, Any]]:
    """Each computed ONNX tensor that no layer is named after, as the layer holding it (see the config's
    ``tensors``); the middle of a channel shuffle, NHWC-transposed images and unexpanded Expand results
    are not observable."""
    views = {}
    for name, t in ctx.tensors.items():
        if t.shuffle is not None or t.nhwc or name in ctx.hidden or (
                name == t.layer and t.pads == _NO_PADS and t.kind not in _VECTOR_VIEWS):
            continue
        view: dict[str, Any] = {"layer": t.layer}
        if t.pads != _NO_PADS:
            view["pads"] = [[t.pads[0], t.pads[1]], [t.pads[2], t.pads[3]]]
        if t.kind in _VECTOR_VIEWS:
            view["shape"] = _VECTOR_VIEWS[t.kind](t.shape[0])
        views[name] = view
    return views


def _output(ctx: Context, out: str) -> str:
    if out in ctx.constants:
        raise OnnxImportError("a graph output that is a constant is not supported")
    t = ctx.value(out)
    if t.kind in _VECTOR_VIEWS:
        return ctx.add_layer(out, "reshape", [t.layer], {"shape": _VECTOR_VIEWS[t.kind](t.shape[0])}, exact=True)
    if t.layer != out:
        # An identity layer gives the output its ONNX name (the loader removes it).
        return ctx.add_layer(out, "dropout", [t.layer], {}, exact=True)
    return out


def _model_name(graph: OnnxGraph, source: Source) -> str:
    stem = Path(source).stem if isinstance(source, (str, Path)) else ""
    return graph.name if graph.name and graph.name not in ("torch_jit", "main_graph") else stem


def convert(source: Source, input_shape: InputShape = None) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read an ONNX model (a path or its bytes) into a pyconv config and its weights, converted at
    ``input_shape`` (see :func:`from_onnx`)."""
    graph = read_model(source)
    return onnx_to_config(graph, _model_name(graph, source), input_shape)


# The inputs of these operators that hold weights only, never a shape: the reconversion's copy of the
# graph replaces initializers read nowhere else by placeholders.
_WEIGHT_INPUTS = {"Conv": (1, 2), "Gemm": (1, 2), "MatMul": (1,),
                  "BatchNormalization": (1, 2, 3, 4)}


class _Reconversion:
    """Converts the kept ONNX graph again at other input sizes (see the module docstring): called with
    the per-sample shapes of the model's input layers, returns that size's config (the weights are the
    model's own, whose shapes it checks against that config's)."""

    def __init__(self, graph: OnnxGraph, name: str, config: Mapping[str, Any]):
        readers: dict[str, set[tuple[str, int]]] = {}
        for node in graph.nodes:
            for i, src in enumerate(node.inputs):
                readers.setdefault(src, set()).add((node.op_type, i))
        light = {k: (np.broadcast_to(np.zeros((), v.dtype), v.shape)
                     if k in readers and all(i in _WEIGHT_INPUTS.get(op, ()) for op, i in readers[k]) else v)
                 for k, v in graph.initializers.items()}
        self.graph = dataclasses.replace(graph, initializers=light)
        self.name = name
        self.layouts = {layer["name"]: layer.get("layout", "NHWC") for layer in config["layers"]
                        if layer["type"] == "input"}

    def __call__(self, sizes: Mapping[str, tuple[int, ...]]) -> dict[str, Any]:
        shapes = {}
        for name, shape in sizes.items():
            if len(shape) == 3 and self.layouts[name] == "NCHW":
                h, w, c = shape
                shape = (c, h, w)
            shapes[name] = shape
        return onnx_to_config(self.graph, self.name, shapes)[0]


def from_onnx(path_or_bytes: Union[str, Path, bytes], *, threads: Optional[int] = None,
              input_shape: InputShape = None) -> "Model":
    """Import an ONNX model (a file path or the model's bytes) as a pyconv :class:`~pyconv.Model`.

    The model keeps the ONNX interface: inputs of the same names in NCHW, outputs under the ONNX output
    names, 4-D outputs NCHW; ``model.run(x)`` or ``model.run({name: x})`` returns what onnxruntime would,
    and ``model.run(x, outputs=[...])`` any ONNX tensor pyconv computes. ``input_shape``: the ONNX shape
    to convert and plan at, e.g. ``(1, 3, 224, 224)`` (the batch axis may be left out; a dict by input
    name for several inputs); needed where the file's H or W is symbolic, by default the file's. The
    model runs at other sizes too (see the module docstring). Needs the ``onnx`` package
    (``pip install 'pyconv[onnx]'``). Unsupported operators, malformed files and shapes pyconv cannot
    serve raise :class:`OnnxImportError` (a ``pyconv.ModelError``).
    """
    from ..graph.model import Model

    graph = read_model(path_or_bytes)
    name = _model_name(graph, path_or_bytes)
    config, weights = onnx_to_config(graph, name, input_shape)
    resize = _Reconversion(graph, name, config)
    del graph  # its initializers: the weights live on in ``weights`` alone, each until it is packed
    # A file can be converted again when the original weights are asked for; the bytes of a model given
    # as bytes are not kept for that, its weights are.
    again = (lambda: convert(path_or_bytes, input_shape)[1]) if isinstance(path_or_bytes, (str, Path)) else None
    return Model(config, weights=weights, threads=threads, resize=resize, again=again)
