"""Hypothesis strategies for ONNX models: small valid graphs (conv, depthwise and group conv, pools, add,
concat, activations, reshape, resize, slice, split ...) built with ``onnx.helper``, structured mutations
of their ``ModelProto`` (inputs renamed, emptied, dangling or cyclic; attributes dropped, retyped or
given absurd values; initializers whose data disagrees with their shape; opsets changed), and
byte-level mutations of any serialized file (bit flips, truncation, insertion).

The valid graphs track their own (N, C, H, W) shapes by ONNX's rules, so they are valid by
construction; the mutations then break one thing at a time.
"""
from __future__ import annotations

import copy
from typing import Any, Optional

import numpy as np
from hypothesis import strategies as st
from onnx import AttributeProto, TensorProto, helper, numpy_helper

OPSETS = [7, 9, 10, 11, 13, 17, 18]


class _Builder:
    """Nodes, initializers and the shape of every tensor of a graph under construction."""

    def __init__(self, draw, c: int, h: int, w: int) -> None:
        self.draw = draw
        self.nodes: list = []
        self.inits: dict[str, np.ndarray] = {}
        self.shapes: dict[str, tuple[int, ...]] = {"x": (1, c, h, w)}

    def name(self, base: str) -> str:
        return f"{base}{len(self.nodes)}"

    def const(self, base: str, value: Any, dtype=np.float32) -> str:
        name = f"{base}{len(self.inits)}"
        self.inits[name] = np.asarray(value, dtype=dtype)
        return name

    def add(self, op: str, inputs: list[str], shape: Optional[tuple[int, ...]], **attrs) -> str:
        """A node computing one tensor, of ``shape``; None for the middle of a pattern, which later nodes
        read only as part of it."""
        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=out if self.draw(st.booleans()) else "", **attrs))
        if shape is not None:
            self.shapes[out] = shape
        return out


def _window(size: int, k: int, s: int, pad: int, d: int = 1) -> int:
    return (size + 2 * pad - (k - 1) * d - 1) // s + 1


def _step(b: _Builder, src: str, opset: int) -> None:
    """Append one node reading ``src`` (an image or a matrix) when its shape allows one."""
    draw = b.draw
    shape = b.shapes[src]
    if len(shape) == 2:
        op = draw(st.sampled_from(["Gemm", "MatMul", "Relu", "Sigmoid", "Softmax"]))
        units = draw(st.integers(1, 4))
        if op == "Gemm":
            w = b.const("w", np.ones((units, shape[1])) * 0.1)
            bias = [b.const("b", np.zeros(units))] if opset < 11 or draw(st.booleans()) else []
            b.add("Gemm", [src, w, *bias], (1, units), transB=1)
        elif op == "MatMul":
            b.add("MatMul", [src, b.const("w", np.ones((shape[1], units)) * 0.1)], (1, units))
        else:
            b.add(op, [src], shape)
        return
    _, c, h, w = shape
    op = draw(st.sampled_from(["Conv", "DepthwiseConv", "GroupConv", "MaxPool", "AveragePool", "GlobalAveragePool",
                               "Add", "Concat", "Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSwish", "Reshape",
                               "Flatten", "Resize", "Slice", "Split", "BatchNormalization", "Pad", "Mul", "PRelu",
                               "Softmax", "ReduceMean", "ShapeFlatten", "NHWCFlatten", "Shuffle", "Expand"]))
    k = draw(st.integers(1, 3))
    stride = draw(st.integers(1, 2))
    pad = draw(st.integers(0, k // 2))
    if op in ("Conv", "DepthwiseConv", "GroupConv"):
        group = {"Conv": 1, "DepthwiseConv": c, "GroupConv": next(g for g in (2, 1) if c % g == 0)}[op]
        cout = group * draw(st.integers(1, 2)) if op != "Conv" else draw(st.integers(1, 4))
        oh, ow = _window(h, k, stride, pad), _window(w, k, stride, pad)
        if min(oh, ow) < 1:
            return
        weight = b.const("w", np.full((cout, c // group, k, k), 0.1))
        # An absent bias is spelled either by leaving the input out or by an empty name.
        bias = draw(st.sampled_from([[], [""], ["bias"]]))
        if bias == ["bias"]:
            bias = [b.const("b", np.zeros(cout))]
        b.add("Conv", [src, weight, *bias], (1, cout, oh, ow), kernel_shape=[k, k], strides=[stride] * 2,
              pads=[pad] * 4, group=group)
    elif op in ("MaxPool", "AveragePool"):
        oh, ow = _window(h, k, stride, pad), _window(w, k, stride, pad)
        if min(oh, ow) >= 1:
            b.add(op, [src], (1, c, oh, ow), kernel_shape=[k, k], strides=[stride] * 2, pads=[pad] * 4)
    elif op == "GlobalAveragePool":
        b.add(op, [src], (1, c, 1, 1))
    elif op in ("Add", "Concat"):
        others = [t for t, s in b.shapes.items() if len(s) == 4 and s[2:] == (h, w) and (op == "Concat" or s == shape)]
        other = draw(st.sampled_from(others))
        if op == "Add":
            b.add("Add", [src, other], shape)
        else:
            b.add("Concat", [src, other], (1, c + b.shapes[other][1], h, w), axis=1)
    elif op == "Clip":
        if opset < 11:
            b.add("Clip", [src], shape, min=0.0, max=6.0)
        else:
            bounds = draw(st.sampled_from([["lo", "hi"], ["", "hi"], ["lo"], ["", ""]]))
            names = [b.const(n, v) if n else "" for n, v in zip(bounds, (0.0, 6.0))]
            b.add("Clip", [src, *names], shape)
    elif op == "LeakyRelu":
        b.add(op, [src], shape, alpha=0.1)
    elif op == "HardSwish":
        if opset >= 14:
            b.add(op, [src], shape)
    elif op == "Reshape" and opset >= 5:
        target = b.const("shape", [1, -1], np.int64)
        b.add("Reshape", [src, target], (1, c * h * w))
    elif op == "Flatten":
        b.add(op, [src], (1, c * h * w), axis=1)
    elif op == "Resize" and opset >= 11:
        scale = draw(st.sampled_from([2.0, 0.5]))
        oh, ow = int(h * scale), int(w * scale)
        if min(oh, ow) >= 1:
            # Resize's roi is optional from opset 13: absent as an empty name; before, an empty tensor.
            roi = "" if opset >= 13 else b.const("roi", np.zeros(0))
            scales = b.const("scales", [1, 1, scale, scale])
            b.add("Resize", [src, roi, scales], (1, c, oh, ow), mode=draw(st.sampled_from(["nearest", "linear"])))
    elif op == "Slice" and opset >= 10 and c > 1:
        starts, ends, axes = (b.const(n, v, np.int64) for n, v in (("st", [1]), ("en", [c]), ("ax", [1])))
        b.add("Slice", [src, starts, ends, axes], (1, c - 1, h, w))
    elif op == "Split" and opset >= 13 and c % 2 == 0:
        outs = [b.name("split") + s for s in "ab"]
        b.nodes.append(helper.make_node("Split", [src], outs, axis=1))
        for out in outs:
            b.shapes[out] = (1, c // 2, h, w)
    elif op == "BatchNormalization":
        params = [b.const(n, np.full(c, v)) for n, v in (("g", 1.0), ("be", 0.0), ("m", 0.0), ("v", 1.0))]
        b.add(op, [src, *params], shape, epsilon=1e-5)
    elif op == "Pad" and opset >= 11:
        pads = b.const("pads", [0, 0, pad, pad, 0, 0, pad, pad], np.int64)
        b.add("Pad", [src, pads], (1, c, h + 2 * pad, w + 2 * pad))
    elif op in ("Relu", "Sigmoid"):
        b.add(op, [src], shape)
    elif op in ("Mul", "PRelu"):
        b.add(op, [src, b.const("k", np.full((c, 1, 1), 0.5))], shape)
    elif op == "Softmax" and opset >= 13:
        b.add(op, [src], shape, axis=1)
    elif op == "ReduceMean":
        if opset < 18:
            b.add(op, [src], (1, c, 1, 1), axes=[2, 3])
        else:
            b.add(op, [src, b.const("ax", [2, 3], np.int64)], (1, c, 1, 1))
    elif op == "ShapeFlatten" and opset >= 13:
        # The exporters' flatten: Shape -> Gather(0) -> Unsqueeze -> Concat with -1 -> Reshape, folded.
        dims = b.add("Shape", [src], None)
        first = b.add("Gather", [dims, b.const("i", 0, np.int64)], None)
        batch = b.add("Unsqueeze", [first, b.const("ax", [0], np.int64)], None)
        target = b.add("Concat", [batch, b.const("m", [-1], np.int64)], None, axis=0)
        b.add("Reshape", [src, target], (1, c * h * w))
    elif op == "NHWCFlatten" and opset >= 5:
        nhwc = b.add("Transpose", [src], None, perm=[0, 2, 3, 1])
        b.add("Reshape", [nhwc, b.const("shape", [1, -1], np.int64)], (1, c * h * w))
    elif op == "Shuffle" and opset >= 5 and c % 2 == 0:
        split = b.add("Reshape", [src, b.const("s", [1, 2, c // 2, h, w], np.int64)], None)
        swapped = b.add("Transpose", [split], None, perm=[0, 2, 1, 3, 4])
        b.add("Reshape", [swapped, b.const("s", [1, c, h, w], np.int64)], shape)
    elif op == "Expand" and opset >= 8:
        pooled = b.add("GlobalAveragePool", [src], None)
        b.add("Expand", [pooled, b.const("s", [1, c, h, w], np.int64)], shape)


@st.composite
def onnx_models(draw, max_nodes: int = 6):
    """A small valid ONNX ``ModelProto``: input ``x`` (1, C, H, W), up to ``max_nodes`` nodes."""
    opset = draw(st.sampled_from(OPSETS))
    b = _Builder(draw, draw(st.integers(1, 4)), draw(st.integers(1, 8)), draw(st.integers(1, 8)))
    for _ in range(draw(st.integers(1, max_nodes))):
        _step(b, draw(st.sampled_from(sorted(b.shapes))), opset)
    if not b.nodes:
        b.add("Relu", ["x"], b.shapes["x"])
    last = [o for o in b.nodes[-1].output]
    graph = helper.make_graph(b.nodes, "fuzz", [helper.make_tensor_value_info("x", TensorProto.FLOAT, b.shapes["x"])],
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in last],
                              [numpy_helper.from_array(v, k) for k, v in b.inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


# --- structured mutations --------------------------------------------------------------------------

ODD_INTS = [0, -1, -2, 1, 2, 3, 2 ** 31, -(2 ** 31), 2 ** 62, 10 ** 12]
ODD_FLOATS = [float("nan"), float("inf"), -float("inf"), 0.0, -1.0, 1e30, 1e-30]
NAMES = ["", "x", "nope", " ", "y\x00", "w0"]


def _odd_attribute(draw, name: str):
    kind = draw(st.sampled_from(["int", "ints", "float", "floats", "string", "tensor", "graph", "empty_ints"]))
    if kind == "int":
        return helper.make_attribute(name, draw(st.sampled_from(ODD_INTS)))
    if kind == "ints":
        return helper.make_attribute(name, draw(st.lists(st.sampled_from(ODD_INTS), min_size=1, max_size=5)))
    if kind == "float":
        return helper.make_attribute(name, draw(st.sampled_from(ODD_FLOATS)))
    if kind == "floats":
        return helper.make_attribute(name, draw(st.lists(st.sampled_from(ODD_FLOATS), min_size=1, max_size=4)))
    if kind == "string":
        return helper.make_attribute(name, draw(st.sampled_from([b"", b"SAME_UPPER", b"\xff\xfe", b"linear"])))
    if kind == "tensor":
        return helper.make_attribute(name, numpy_helper.from_array(np.zeros(draw(st.integers(0, 3)), np.int64)))
    if kind == "graph":
        return helper.make_attribute(name, helper.make_graph([], "sub", [], []))
    return helper.make_attribute(name, [], attr_type=AttributeProto.INTS)


def _odd_value(draw, a):
    """An attribute of ``a``'s name and type with an absurd value."""
    if a.type == AttributeProto.INT:
        return helper.make_attribute(a.name, draw(st.sampled_from(ODD_INTS)))
    if a.type == AttributeProto.INTS:
        return helper.make_attribute(a.name, draw(st.lists(st.sampled_from(ODD_INTS), max_size=6)),
                                     attr_type=AttributeProto.INTS)
    if a.type == AttributeProto.FLOAT:
        return helper.make_attribute(a.name, draw(st.sampled_from(ODD_FLOATS)))
    if a.type == AttributeProto.STRING:
        return helper.make_attribute(a.name, draw(st.sampled_from([b"", b"SAME_LOWER", b"VALID", b"cubic", b"wrap"])))
    return a


def _odd_array(draw, array: np.ndarray) -> np.ndarray:
    """Values of ``array``'s dtype that a converter may not expect: zeros, negatives, huge, NaN, or another
    shape."""
    how = draw(st.sampled_from(["values", "values", "shape", "scalar", "empty"]))
    if how == "scalar":
        return np.asarray(draw(st.sampled_from([0, -1, 2 ** 40])), dtype=array.dtype)
    if how == "empty":
        return np.zeros((0,), array.dtype)
    if how == "shape":
        return np.ones(draw(st.lists(st.integers(1, 3), max_size=4)), array.dtype)
    pool = ODD_INTS if array.dtype.kind in "iu" else ODD_INTS[:6] + ODD_FLOATS
    flat = array.reshape(-1).copy()
    for i in draw(st.lists(st.integers(0, max(flat.size - 1, 0)), min_size=1, max_size=3)):
        if flat.size:
            with np.errstate(all="ignore"):
                flat[i] = np.asarray(draw(st.sampled_from(pool))).astype(array.dtype)
    return flat.reshape(array.shape)


def _mutate(draw, model) -> None:
    graph = model.graph
    nodes = list(graph.node)
    outputs = [o for n in nodes for o in n.output]
    op = draw(st.sampled_from(["input_name", "input_name", "drop_input", "add_input", "attr", "attr_value",
                               "attr_value", "drop_attr", "node_dup", "node_drop", "op_type", "init_values",
                               "init_values", "init_dims", "init_data", "init_type", "init_drop", "opset",
                               "graph_input", "output_name", "node_outputs"]))
    node = draw(st.sampled_from(nodes)) if nodes else None
    if op == "input_name" and node is not None and node.input:
        i = draw(st.integers(0, len(node.input) - 1))
        # Empty (absent), dangling, the node's own output (a self-reference), or a later node's (a cycle).
        node.input[i] = draw(st.sampled_from(NAMES + list(node.output) + outputs))
    elif op == "drop_input" and node is not None and node.input:
        del node.input[draw(st.integers(0, len(node.input) - 1))]
    elif op == "add_input" and node is not None:
        node.input.append(draw(st.sampled_from(NAMES + outputs)))
    elif op == "attr" and node is not None:
        names = [a.name for a in node.attribute] + ["group", "kernel_shape", "strides", "pads", "dilations", "axis",
                                                    "mode", "auto_pad", "perm", "split", "to", "value"]
        name = draw(st.sampled_from(names))
        kept = [a for a in node.attribute if a.name != name]
        del node.attribute[:]
        node.attribute.extend(kept + [_odd_attribute(draw, name)])
    elif op == "attr_value" and node is not None and node.attribute:
        i = draw(st.integers(0, len(node.attribute) - 1))
        node.attribute[i].CopyFrom(_odd_value(draw, node.attribute[i]))
    elif op == "drop_attr" and node is not None and node.attribute:
        del node.attribute[draw(st.integers(0, len(node.attribute) - 1))]
    elif op == "node_dup" and node is not None:
        graph.node.insert(draw(st.integers(0, len(nodes))), copy.deepcopy(node))
    elif op == "node_drop" and node is not None and len(nodes) > 1:
        graph.node.remove(node)
    elif op == "op_type" and node is not None:
        node.op_type = draw(st.sampled_from(["Conv", "Relu", "Add", "Concat", "Reshape", "Split", "Resize", "Slice",
                                             "Gemm", "MaxPool", "Transpose", "Gather", "Shape", "ConstantOfShape",
                                             "Expand", "Tile", "Range", "Unsqueeze", "Squeeze", "Constant",
                                             "Softmax", "Pad", "BatchNormalization", "Mul", "Div", "Where", "Cast",
                                             "ReduceMean", "MatMul", "PRelu", ""]))
    elif op.startswith("init") and graph.initializer:
        init = draw(st.sampled_from(list(graph.initializer)))
        try:
            array = numpy_helper.to_array(init)
        except (ValueError, TypeError, KeyError):  # broken by an earlier mutation
            return
        if op == "init_values":
            init.CopyFrom(numpy_helper.from_array(_odd_array(draw, array), init.name))
        elif op == "init_dims":
            del init.dims[:]
            init.dims.extend(draw(st.lists(st.sampled_from([0, 1, 2, 3, -1, 10 ** 6, 2 ** 40]), max_size=4)))
        elif op == "init_data":
            raw = init.raw_data or numpy_helper.from_array(array).raw_data
            init.raw_data = raw[:draw(st.integers(0, max(len(raw) - 1, 0)))]
        elif op == "init_type":
            init.data_type = draw(st.sampled_from([0, TensorProto.INT8, TensorProto.STRING, TensorProto.BOOL,
                                                   TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.COMPLEX64,
                                                   TensorProto.INT64, 99]))
        else:
            graph.initializer.remove(init)
    elif op == "opset":
        del model.opset_import[:]
        model.opset_import.extend([helper.make_opsetid(draw(st.sampled_from(["", "", "ai.onnx", "com.other"])),
                                                       draw(st.sampled_from([0, 1, 6, 7, 9, 10, 11, 13, 18, 21,
                                                                             10 ** 6])))])
    elif op == "graph_input" and graph.input:
        vi = graph.input[0]
        dims = vi.type.tensor_type.shape.dim
        if dims and draw(st.booleans()):
            d = dims[draw(st.integers(0, len(dims) - 1))]
            value = draw(st.sampled_from([0, -1, 10 ** 6, 2 ** 40, "sym", ""]))
            if isinstance(value, str):
                d.dim_param = value
            else:
                d.dim_value = value
        else:
            vi.type.tensor_type.elem_type = draw(st.sampled_from([TensorProto.INT64, TensorProto.FLOAT16,
                                                                  TensorProto.DOUBLE, 0]))
    elif op == "output_name" and graph.output:
        graph.output[0].name = draw(st.sampled_from(NAMES + outputs + ["x"]))
    elif op == "node_outputs" and node is not None:
        del node.output[:]
        node.output.extend(draw(st.lists(st.sampled_from(NAMES + outputs), max_size=3)))


@st.composite
def mutated_onnx(draw, max_mutations: int = 3) -> bytes:
    """The bytes of a valid model broken by one to ``max_mutations`` structured mutations."""
    model = draw(onnx_models())
    for _ in range(draw(st.integers(1, max_mutations))):
        _mutate(draw, model)
    return model.SerializeToString()


# --- byte-level mutations --------------------------------------------------------------------------

@st.composite
def mutated_bytes(draw, data: bytes, max_mutations: int = 4) -> bytes:
    """``data`` with one to ``max_mutations`` bit flips, truncations, insertions or deletions."""
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, max_mutations))):
        if not buf:
            break
        at = draw(st.integers(0, len(buf) - 1))
        op = draw(st.sampled_from(["flip", "flip", "byte", "truncate", "insert", "delete"]))
        if op == "flip":
            buf[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "byte":
            buf[at] = draw(st.sampled_from([0x00, 0xff, 0x7f, 0x80, 0x22, 0x5b, 0x7b, 0x30, 0x2d]))
        elif op == "truncate":
            del buf[at:]
        elif op == "insert":
            buf[at:at] = draw(st.binary(min_size=1, max_size=8))
        else:
            del buf[at:at + draw(st.integers(1, 8))]
    return bytes(buf)
