"""The size limits at their real values (the fuzzing lowers them): an absurd size fails at load with a
ModelError naming the layer and field, before anything of that size is allocated."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import pyconv
from conftest import model_config
from pyconv.graph import shapes

# Far below the sizes asked for: what loading may allocate before it refuses them.
ALLOCATED = 64 << 20


def refused(load) -> pyconv.ModelError:
    """The error ``load()`` raises, having allocated less than :data:`ALLOCATED` bytes (Python's and
    numpy's allocations: tracemalloc sees both)."""
    tracemalloc.start()
    try:
        with pytest.raises(pyconv.ModelError) as info:
            load()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < ALLOCATED, f"allocated {peak:,} bytes before refusing"
    return info.value


@pytest.fixture(scope="module", autouse=True)
def schema_compiled():
    """The schema validator built once before any allocation is traced."""
    pyconv.load(model_config())


@pytest.mark.parametrize("layer, field", [
    ({"name": "big", "type": "conv2d", "inputs": ["input"], "filters": 10 ** 8, "kernel": 1}, None),
    ({"name": "big", "type": "resize", "inputs": ["input"], "size": [10 ** 6, 10 ** 6]}, "size"),
    ({"name": "big", "type": "pad", "inputs": ["input"], "padding": [[10 ** 9, 0], [10 ** 9, 0]]}, "padding"),
])
def test_config_over_the_element_limit(layer, field):
    err = refused(lambda: pyconv.load(model_config(layer)))
    assert err.layer == "big" and err.field == (field or "filters")
    assert f"at most {shapes.MAX_ELEMENTS:,} elements" in str(err)


def test_input_of_a_trillion_elements():
    err = refused(lambda: pyconv.load(model_config(shape=(10 ** 6, 10 ** 6, 1))))
    assert (err.layer, err.field) == ("input", "shape") and "1,000,000,000,000 elements" in str(err)


def test_model_over_the_limit_together():
    # Each layer alone is under the limit; all of them together are not.
    side = int((shapes.MAX_ELEMENTS // 3) ** 0.5)
    layers = [{"name": f"a{i}", "type": "activation", "inputs": ["input" if i == 0 else f"a{i - 1}"],
               "function": "relu"} for i in range(4)]
    err = refused(lambda: pyconv.load(model_config(*layers, shape=(side, side, 1))))
    assert err.field == "inputs" and "together" in str(err)


def test_onnx_constant_over_the_limit():
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    def model(side: int) -> bytes:
        nodes = [helper.make_node("ConstantOfShape", ["s"], ["c"], name="fill"),
                 helper.make_node("Add", ["x", "c"], ["y"])]
        graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                                  [numpy_helper.from_array(np.array([side, side], np.int64), "s")])
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()

    pyconv.from_onnx(model(1))  # the importer's own imports happen here, not while allocations are traced
    err = refused(lambda: pyconv.from_onnx(model(10 ** 6)))
    assert isinstance(err, pyconv.OnnxImportError) and "ConstantOfShape 'fill'" in str(err)
    assert "1,000,000,000,000" in str(err)
