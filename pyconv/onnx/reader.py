"""Read an ONNX model into plain Python: nodes, initializers, the graph's inputs and outputs.

The ``onnx`` package (the ``pyconv[onnx]`` extra) is imported here, lazily: the runtime never needs it.
Reading checks what the converter relies on, so that a broken file fails with one clear message:
the bytes parse as a ``ModelProto``; every node of the default domain matches its operator's schema
at the model's opset (input and output counts, no empty name where an input or output is required,
known attributes of the declared types, required ones present); every node input is a graph input, an
initializer or an earlier node's output, and no tensor is computed twice; the graph inputs the caller
feeds are images ``(N, C, H, W)`` or matrices ``(N, F)`` of real numbers. Their sizes may be symbolic
(``None`` in :attr:`GraphInput.shape`): the converter is given the sizes to convert at (see
:mod:`pyconv.onnx.convert`). An empty input name is an absent optional input, as ONNX specifies.

:func:`fold` evaluates the small subgraphs exporters emit to compute shapes and pads (``Shape``,
``Gather``, ``Neg``, ``Ceil``, ``Div``, ``Unsqueeze``, ``Concat``, ``Where`` ...) once their inputs are
known, so they never reach the runtime: one numpy function per operator in :data:`FOLDABLE`, with ONNX's
semantics where numpy's differ (integer ``Div`` truncates toward zero, as onnxruntime's does).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

from ..graph import shapes
from ..graph.errors import ModelError
from ..memory import MAPPED_BYTES, aligned_empty
from . import schemas
from .wire import split_large_initializers

__all__ = ["BATCH", "GraphInput", "OnnxGraph", "OnnxImportError", "OnnxNode", "fold", "FOLDABLE", "read_model"]

Source = Union[str, Path, bytes, bytearray]

# What a ``Shape`` node reports for a batch axis without a fixed size: a value no real size takes,
# which survives Gather / Concat / Unsqueeze and is recognised where a Reshape target holds it.
BATCH = 1_000_000_007


class OnnxImportError(ModelError):
    """An ONNX model that pyconv cannot import: malformed, inconsistent or using unsupported operators.
    ``field`` names the ONNX node (``"<op> '<node name>'"``) when one is at fault."""


def onnx_module() -> Any:
    """The ``onnx`` package, or an ImportError saying which extra provides it."""
    try:
        import onnx
    except ImportError as exc:
        raise ImportError("importing ONNX models needs the onnx package: pip install 'pyconv[onnx]'") from exc
    return onnx


@dataclass
class OnnxNode:
    """One ONNX node, attributes decoded to Python values (ints, floats, bytes, lists, numpy tensors)."""

    op_type: str
    name: str
    domain: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any]

    @property
    def label(self) -> str:
        if self.name or not self.outputs:
            return f"{self.op_type} {self.name!r}"
        return f"{self.op_type} (output {self.outputs[0]!r})"


@dataclass
class GraphInput:
    """A graph input the caller feeds: its ONNX shape, ``None`` for each symbolic axis; ``dims`` keeps the
    file's own spelling of each axis (a size, a symbol name, or ``None``)."""

    name: str
    shape: tuple[Optional[int], ...]
    dims: tuple[Union[int, str, None], ...] = ()

    @property
    def axes(self) -> str:
        """The axes' letters: ``"NF"``, ``"NCHW"``, or ``"NHWC"`` for an image whose axis 1 is symbolic and
        last axis fixed (tf2onnx's NHWC inputs)."""
        if len(self.shape) == 2:
            return "NF"
        return "NHWC" if self.shape[1] is None and self.shape[3] else "NCHW"

    @property
    def symbolic(self) -> list[str]:
        """The non-batch axes without a fixed size, as ``"H = 'height'"``."""
        return [f"{axis} = {d!r}" for axis, d, size in zip(self.axes, self.dims, self.shape)
                if axis != "N" and size is None]


@dataclass
class OnnxGraph:
    """A parsed, checked ONNX graph."""

    name: str
    opset: int
    producer: str
    inputs: list[GraphInput]
    outputs: list[str]
    initializers: dict[str, np.ndarray]
    nodes: list[OnnxNode]
    # The model's metadata_props (key -> value strings), e.g. "labels" (see pyconv.labels).
    metadata: dict[str, str] = dataclasses.field(default_factory=dict)


def _parse(source: Source) -> tuple[Any, dict[str, np.ndarray]]:
    """The parsed model, and the large float32 initializers of a file, read apart from it (see
    :mod:`pyconv.onnx.wire`; empty for bytes, or a file that must be parsed whole)."""
    onnx = onnx_module()
    from google.protobuf.message import DecodeError

    streamed: dict[str, np.ndarray] = {}
    if isinstance(source, (bytes, bytearray)):
        data, label = bytes(source), "the ONNX bytes"
    else:
        path = Path(source)
        label = path.name
        split = split_large_initializers(path)
        if split is not None:
            data, streamed = split
        else:
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                raise FileNotFoundError(f"ONNX file not found: {source}") from None
    if not data:
        raise OnnxImportError(f"{label}: empty file, expected an ONNX model")
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise OnnxImportError(f"{label}: cannot parse as an ONNX model ({exc})",
                              hint="the file is truncated or not an ONNX model; re-export or re-download it") \
            from None
    _check_text(model, "model")
    if not model.HasField("graph") or not model.graph.node:
        raise OnnxImportError(f"{label}: no graph (or an empty one) in the ONNX model",
                              hint="the file is truncated or not an ONNX model; re-export or re-download it")
    if isinstance(source, (str, Path)) and any(init.data_location == onnx.TensorProto.EXTERNAL
                                               for init in model.graph.initializer):
        try:
            onnx.external_data_helper.load_external_data_for_model(model, str(Path(source).parent))
        except OSError as exc:
            raise OnnxImportError(f"{label}: cannot read the external weights data: {exc}") from None
    return model, streamed


def _to_array(tensor: Any, what: str) -> np.ndarray:
    """A ``TensorProto``'s array, or an :class:`OnnxImportError` if its type or data are broken."""
    onnx = onnx_module()
    data_type = tensor.data_type
    if data_type == onnx.TensorProto.UNDEFINED or data_type not in onnx.TensorProto.DataType.values():
        raise OnnxImportError(f"{what}: unknown data type {data_type}", hint="the file may be damaged")
    try:
        array = onnx.numpy_helper.to_array(tensor)
    except (ValueError, TypeError, OSError) as exc:
        raise OnnxImportError(f"{what} cannot be read: {exc}", hint="the file may be truncated") from None
    if array.dtype == np.float32 and array.nbytes >= MAPPED_BYTES:
        # Weights are mapped, not taken from the heap: each is freed to the OS as soon as the model has
        # packed it, however the parsed file's memory fragmented the heap (see pyconv.memory).
        mapped = aligned_empty(array.shape, mapped=True)
        mapped[...] = array
        return mapped
    return array


def _check_text(message: Any, where: str) -> None:
    """Every text field of a parsed message is text: the parser hands invalid UTF-8 over as bytes."""
    for field, value in message.ListFields():
        repeated = field.is_repeated if hasattr(field, "is_repeated") else field.label == field.LABEL_REPEATED
        values = value if repeated else [value]
        if field.type == field.TYPE_STRING and any(isinstance(v, bytes) for v in values):
            raise OnnxImportError(f"{where}.{field.name}: expected UTF-8 text, found invalid bytes",
                                  hint="the file is damaged or not an ONNX model; re-export or re-download it")
        if field.type == field.TYPE_MESSAGE:
            for v in values:
                _check_text(v, f"{where}.{field.name}")


def _dims(value_info: Any) -> Optional[tuple[Union[int, str, None], ...]]:
    tensor = value_info.type.tensor_type
    if not tensor.HasField("shape"):
        return None
    return tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tensor.shape.dim)


def read_model(source: Source) -> OnnxGraph:
    """Parse and check an ONNX model (a path or its bytes); raises :class:`OnnxImportError`."""
    onnx = onnx_module()
    from onnx import helper

    model, streamed = _parse(source)
    graph = model.graph
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if opset == 0:
        raise OnnxImportError("the model imports no version of the default ONNX operator set",
                              hint="re-export it with an opset between 11 and 18")

    initializers = {init.name: _to_array(init, f"initializer {init.name!r}") for init in graph.initializer}
    for name, array in streamed.items():
        if name in initializers:
            raise OnnxImportError(f"initializer {name!r} is defined twice",
                                  hint="the file was edited; re-export the model")
        initializers[name] = array

    nodes = []
    for proto in graph.node:
        node = OnnxNode(proto.op_type, proto.name, proto.domain, list(proto.input), list(proto.output), {})
        _check_node(proto, node.label, opset, onnx)
        for a in proto.attribute:
            try:
                value = helper.get_attribute_value(a)
            except ValueError as exc:  # an attribute of no known type
                raise OnnxImportError(f"attribute {a.name!r} cannot be read: {exc}", field=node.label) from None
            if a.type == onnx.AttributeProto.TENSOR:
                value = _to_array(value, f"{node.label}: attribute {a.name!r}")
            node.attrs[a.name] = value
        nodes.append(node)

    inputs: list[GraphInput] = []
    for vi in graph.input:
        if vi.name in initializers:  # IR < 4 lists initializers among the inputs
            continue
        inputs.append(_graph_input(vi, onnx))

    known = set(initializers) | {i.name for i in inputs}
    later = {out for node in nodes for out in node.outputs}
    for node in nodes:
        for i, name in enumerate(node.inputs):
            if name and name not in known:
                if name in node.outputs:
                    raise OnnxImportError(f"input {i} ({name!r}) is the node's own output (a cycle)", field=node.label)
                if name in later:
                    raise OnnxImportError(f"input {i} ({name!r}) is computed by a later node: the nodes are not in "
                                          "topological order", field=node.label, hint="re-export the model")
                raise OnnxImportError(f"input {i} ({name!r}) is not a graph input, an initializer or the output "
                                      "of any node (a missing initializer?)", field=node.label,
                                      hint="the file is incomplete or was edited; re-export the model")
        for name in filter(None, node.outputs):
            if name in known or node.outputs.count(name) > 1:
                raise OnnxImportError(f"tensor {name!r} is computed twice (or is a graph input or an initializer "
                                      "too)", field=node.label, hint="the file was edited; re-export the model")
            known.add(name)
    outputs = [o.name for o in graph.output]
    for name in outputs:
        if name not in known:
            raise OnnxImportError(f"graph output {name!r} is computed by no node")
    return OnnxGraph(graph.name, opset, f"{model.producer_name} {model.producer_version}".strip(), inputs, outputs,
                     initializers, nodes, {p.key: p.value for p in model.metadata_props})


def _check_node(node: Any, label: str, opset: int, onnx: Any) -> None:
    """The ``NodeProto`` ``node`` (``label`` in messages) against its operator's schema at ``opset``
    (nodes of other domains and unknown operators are left to the converter, which lists them)."""
    if node.domain not in ("", "ai.onnx"):
        return
    try:
        schema = schemas.schema(node.op_type, opset)
    except schemas.NewerOperator:
        raise OnnxImportError(f"{node.op_type} is not an operator of opset {opset} (it is newer)",
                              field=label) from None
    if schema is None:
        return
    for what, names, formal, lo, hi in (("input", node.input, schema.inputs, schema.min_input, schema.max_input),
                                        ("output", node.output, schema.outputs, schema.min_output,
                                         schema.max_output)):
        count = len(names)
        if what == "input":
            while count and not names[count - 1]:  # trailing empty names are absent optional inputs
                count -= 1
        if not lo <= count <= hi:
            want = f"{lo}" if lo == hi else f"at least {lo}" if hi >= 2 ** 31 - 1 else f"{lo} to {hi}"
            raise OnnxImportError(f"expected {want} {what}(s), found {count}", field=label)
        for i, name in enumerate(names):
            # The last formal parameter of a variadic operator stands for all the remaining ones; an unused
            # output among variadic ones (a Split's) may be left unnamed.
            param = formal[min(i, len(formal) - 1)] if formal else None
            required = param is not None and (param.option == schemas.SINGLE
                                              or param.option == schemas.VARIADIC and what == "input")
            if not name and required:
                raise OnnxImportError(f"{what} {i} ({param.name}) is required, found an empty name", field=label)
    for a in node.attribute:
        spec = schema.attributes.get(a.name)
        if spec is None:
            raise OnnxImportError(f"unknown attribute {a.name!r} (the {node.op_type} of opset {schema.since_version} "
                                  f"takes {', '.join(sorted(schema.attributes)) or 'none'})", field=label)
        if a.type != spec[0]:
            kinds = onnx.AttributeProto.AttributeType
            found = kinds.Name(a.type) if a.type in kinds.values() else a.type
            raise OnnxImportError(f"attribute {a.name!r}: expected type {spec[1]}, found {found}", field=label)
    missing = sorted(set(n for n, spec in schema.attributes.items() if spec[2])
                     - {a.name for a in node.attribute})
    if missing:
        raise OnnxImportError(f"missing required attribute {missing[0]!r}", field=label)


def _graph_input(vi: Any, onnx: Any) -> GraphInput:
    elem = vi.type.tensor_type.elem_type
    if elem not in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16):
        name = onnx.TensorProto.DataType.Name(elem) if elem in onnx.TensorProto.DataType.values() else elem
        raise OnnxImportError(f"graph input {vi.name!r} has element type {name}; pyconv models take real (float) "
                              "inputs")
    dims = _dims(vi)
    if dims is None or len(dims) not in (2, 4):
        found = "no shape" if dims is None else f"rank {len(dims)} {list(dims)}"
        raise OnnxImportError(f"graph input {vi.name!r}: expected an image (N, C, H, W) or a matrix (N, F), "
                              f"found {found}")
    return GraphInput(vi.name, tuple(d if isinstance(d, int) and d > 0 else None for d in dims), dims)


# --- constant folding of shape computations ---------------------------------------------------------

def _ints(value: Optional[np.ndarray]) -> Optional[list[int]]:
    return None if value is None else [int(v) for v in np.asarray(value).reshape(-1)]


def _axes(node: OnnxNode, args: Sequence[Optional[np.ndarray]]) -> Optional[list[int]]:
    """Axes given as an attribute (before opset 13) or as the second input (from opset 13)."""
    if "axes" in node.attrs:
        return list(node.attrs["axes"])
    return _ints(args[1]) if len(args) > 1 else None


def _unsqueeze(node, args, opset):
    x = args[0]
    axes = _axes(node, args)
    rank = x.ndim + len(axes)
    for a in sorted(a % rank for a in axes):
        x = np.expand_dims(x, a)
    return x


def _squeeze(node, args, opset):
    axes = _axes(node, args)
    return np.squeeze(args[0], axis=None if axes is None else tuple(axes))


def _slice(node, args, opset):
    x = args[0]
    if "starts" in node.attrs:  # opset < 10
        starts, ends = node.attrs["starts"], node.attrs["ends"]
        axes, steps = node.attrs.get("axes"), None
    else:
        starts, ends = _ints(args[1]), _ints(args[2])
        axes = _ints(args[3]) if len(args) > 3 and args[3] is not None else None
        steps = _ints(args[4]) if len(args) > 4 and args[4] is not None else None
    axes = axes if axes is not None else list(range(len(starts)))
    steps = steps if steps is not None else [1] * len(starts)
    index = [slice(None)] * x.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        index[a] = slice(s, e, st)
    return x[tuple(index)]


def _cast(node, args, opset):
    from onnx import helper
    return args[0].astype(helper.tensor_dtype_to_np_dtype(node.attrs["to"]))


def _constant_of_shape(node, args, opset):
    value = node.attrs.get("value", np.zeros(1, dtype=np.float32))
    return np.full(_ints(args[0]), value.reshape(-1)[0], dtype=value.dtype)


def _reshape(node, args, opset):
    shape = _ints(args[1])
    if not node.attrs.get("allowzero", 0):
        shape = [args[0].shape[i] if d == 0 else d for i, d in enumerate(shape)]
    return args[0].reshape(shape)


def _binary(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Callable:
    def run(node, args, opset):
        return fn(args[0], args[1]).astype(np.result_type(args[0], args[1]))
    return run


def _unary(fn: Callable[[np.ndarray], np.ndarray]) -> Callable:
    def run(node, args, opset):
        return fn(args[0]).astype(args[0].dtype)
    return run


def _compare(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Callable:
    return lambda node, args, opset: fn(args[0], args[1])


def _variadic(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Callable:
    def run(node, args, opset):
        out = args[0]
        for a in args[1:]:
            out = fn(out, a)
        return out.astype(np.result_type(*args))
    return run


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if not np.issubdtype(np.result_type(a, b), np.integer):
        return a / b
    # ONNX integer division truncates toward zero (C semantics), unlike numpy's floor division.
    q = np.abs(a) // np.abs(b)
    return np.where((a < 0) != (b < 0), -q, q)


def _mod(node, args, opset):
    a, b = args
    if node.attrs.get("fmod", 0):
        return np.fmod(a, b).astype(np.result_type(a, b))
    return np.mod(a, b).astype(np.result_type(a, b))


def _shape(node, args, opset):
    shape = np.array(args[0].shape, dtype=np.int64)
    return shape[node.attrs.get("start", 0):node.attrs.get("end")]


def _expand(node, args, opset):
    shape = _ints(args[1])
    # ONNX Expand broadcasts both ways: a 1 in the target keeps the input's size.
    return args[0] * np.ones(shape, dtype=args[0].dtype)


def _reduce(fn: Callable) -> Callable:
    def run(node, args, opset):
        axes = _axes(node, args)
        if not axes and node.attrs.get("noop_with_empty_axes", 0):
            return args[0]
        return fn(args[0], axis=None if not axes else tuple(axes), keepdims=bool(node.attrs.get("keepdims", 1)))
    return run


# Each takes (node, constant inputs, opset) and returns the single output.
FOLDABLE: dict[str, Callable[[OnnxNode, list, int], np.ndarray]] = {
    "Gather": lambda node, args, opset: np.take(args[0], args[1], axis=node.attrs.get("axis", 0)),
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "Concat": lambda node, args, opset: np.concatenate([np.atleast_1d(a) for a in args], axis=node.attrs["axis"]),
    "Slice": _slice,
    "Cast": _cast,
    "Reshape": _reshape,
    "ConstantOfShape": _constant_of_shape,
    "Identity": lambda node, args, opset: args[0],
    "Add": _binary(np.add),
    "Sub": _binary(np.subtract),
    "Mul": _binary(np.multiply),
    "Div": _binary(_div),
    "Mod": _mod,
    "Pow": _binary(np.power),
    "Min": _variadic(np.minimum),
    "Max": _variadic(np.maximum),
    "Neg": _unary(np.negative),
    "Abs": _unary(np.abs),
    "Ceil": _unary(np.ceil),
    "Floor": _unary(np.floor),
    "Round": _unary(np.round),  # half to even, as ONNX specifies
    "Sqrt": _unary(np.sqrt),
    "Sign": _unary(np.sign),
    "Reciprocal": _unary(np.reciprocal),
    "Equal": _compare(np.equal),
    "Less": _compare(np.less),
    "LessOrEqual": _compare(np.less_equal),
    "Greater": _compare(np.greater),
    "GreaterOrEqual": _compare(np.greater_equal),
    "Not": lambda node, args, opset: np.logical_not(args[0]),
    "And": _compare(np.logical_and),
    "Or": _compare(np.logical_or),
    "Where": lambda node, args, opset: np.where(args[0], args[1], args[2]).astype(np.result_type(args[1], args[2])),
    "Shape": _shape,
    "Size": lambda node, args, opset: np.array(args[0].size, dtype=np.int64),
    "Expand": _expand,
    "Tile": lambda node, args, opset: np.tile(args[0], _ints(args[1])),
    "ReduceProd": _reduce(np.prod),
    "ReduceSum": _reduce(np.sum),
    "ReduceMin": _reduce(np.min),
    "ReduceMax": _reduce(np.max),
    "Transpose": lambda node, args, opset: np.transpose(args[0], node.attrs.get("perm")),
    "Range": lambda node, args, opset: np.arange(args[0], args[1], args[2]).astype(args[0].dtype),
}


# The operators whose result broadcasts their inputs against each other.
_BROADCASTING = {"Add", "Sub", "Mul", "Div", "Mod", "Pow", "Min", "Max", "Equal", "Less", "LessOrEqual", "Greater",
                 "GreaterOrEqual", "And", "Or", "Where"}


def _result_size(node: OnnxNode, args: list[Optional[np.ndarray]]) -> int:
    """The element count of ``node``'s result where it can be far larger than its inputs (0 for the other
    operators), known before the result is computed."""
    op = node.op_type
    if op == "ConstantOfShape":
        return math.prod(_ints(args[0]))
    if op == "Tile":
        return args[0].size * math.prod(_ints(args[1]))
    if op == "Expand":
        return math.prod(np.broadcast_shapes(args[0].shape, tuple(_ints(args[1]))))
    if op == "Range":
        start, limit, delta = (float(np.asarray(a).reshape(-1)[0]) for a in args)
        return max(math.ceil((limit - start) / delta), 0)
    if op in _BROADCASTING:
        return math.prod(np.broadcast_shapes(*(a.shape for a in args if a is not None)))
    return 0


def fold(node: OnnxNode, args: list[Optional[np.ndarray]], opset: int) -> np.ndarray:
    """Evaluate ``node`` on constant inputs (``None`` for an omitted optional input); a result of more
    than :data:`~pyconv.graph.shapes.MAX_ELEMENTS` elements is refused before it is computed."""
    try:
        size = _result_size(node, args)
        if size <= shapes.MAX_ELEMENTS:
            return np.asarray(FOLDABLE[node.op_type](node, args, opset))
    except (ValueError, TypeError, IndexError, KeyError, ZeroDivisionError, FloatingPointError, OverflowError) as exc:
        raise OnnxImportError(f"cannot evaluate this node on its constant inputs "
                              f"({', '.join(str(None if a is None else a.shape) for a in args)}): {exc}",
                              field=node.label) from None
    raise OnnxImportError(f"expected a constant of at most {shapes.MAX_ELEMENTS:,} elements, found one of {size:,}",
                          field=node.label)


def constant_value(node: OnnxNode) -> np.ndarray:
    """The tensor a ``Constant`` node holds, whichever attribute spells it."""
    a = node.attrs
    if "value" in a:
        return np.asarray(a["value"])
    for key, dtype in (("value_float", np.float32), ("value_floats", np.float32), ("value_int", np.int64),
                       ("value_ints", np.int64)):
        if key in a:
            return np.asarray(a[key], dtype=dtype)
    raise OnnxImportError(f"a Constant node needs a value, found attributes {sorted(a)}", field=node.label)
