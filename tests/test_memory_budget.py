"""The memory a loaded model costs: its weights once, packed, one arena per batch size in use, and
nothing else of size. Each shipped model is loaded and run in a child process of its own, whose peak
RSS above the interpreter with numpy and pyconv imported is held to a budget: the weights and arena
``summary()`` reports, plus a slack for the interpreter's own objects, thread stacks and the kernels'
scratch; MobileNet v1 and Xception to fixed targets besides (about half of what ONNX Runtime
needs on the same networks). Also: what the model reports, and where its original weights come from
once they are no longer held."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import pyconv
from conftest import model_config

MODELS = Path(__file__).resolve().parent.parent / "models"
MiB = 2**20
# Above the weights and arena: Python objects of the graph, OpenMP thread stacks, and the kernels'
# scratch, which grows with the activations (a quarter of the arena).
SLACK = 12 * MiB
SCRATCH_PER_ARENA = 0.25
TARGETS = {"mobilenet_v1": 32 * MiB, "xception": 135 * MiB}

_CHILD = r"""
import json, sys
import numpy as np, pyconv

def peak():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))

def load(path):
    return pyconv.from_onnx(path) if path.endswith(".onnx") else pyconv.load(path)

# A second argument is a tiny ONNX model imported first: the importer's own first-use costs (the onnx
# package's modules and parser) belong to the interpreter's baseline, not to the model measured.
if len(sys.argv) > 2:
    load(sys.argv[2])
base = peak()
model = load(sys.argv[1])
x = model.example_input()
for _ in range(5):
    model.run(x, threads=2)
held = sum(k.weight_bytes() for k in {id(k): k for k in model.kernels.values()}.values())
print(json.dumps({"peak": peak() - base, "held": held, "arena": model.plan(1).arena_bytes,
                  "summary": model.summary().splitlines()[-1]}))
"""

pytestmark = pytest.mark.skipif(
    "libasan" in os.environ.get("LD_PRELOAD", "") or not Path("/proc/self/status").exists(),
    reason="peak RSS is measured through /proc, without a sanitizer's shadow memory")


def _budget(report: dict, name: str) -> float:
    """Peak RSS allowed a model: its weights and arena and the slack, and the model's target if it has one."""
    return min(report["held"] + (1 + SCRATCH_PER_ARENA) * report["arena"] + SLACK, TARGETS.get(name, float("inf")))


@pytest.mark.parametrize("name", sorted(p.stem for p in MODELS.glob("*.json")))
def test_a_loaded_model_holds_its_weights_once(name):
    result = subprocess.run([sys.executable, "-c", _CHILD, str(MODELS / f"{name}.json")], capture_output=True,
                            text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "2"})
    report = json.loads(result.stdout)
    params = sum(a.size for ps in pyconv.load(MODELS / f"{name}.json").weights.values() for a in ps.values())
    # Folding drops the batch norms' statistics; packing pads output channels to whole panels, never by
    # more than a few percent on these networks.
    assert 0.9 * 4 * params <= report["held"] <= 1.1 * 4 * params + 64 * 1024, report
    budget = _budget(report, name)
    assert report["peak"] <= budget, (f"{name}: peak RSS {report['peak'] / MiB:.1f} MiB above the interpreter, "
                                      f"budget {budget / MiB:.1f} MiB ({report})")
    assert f"{report['held'] / MiB:.2f} MiB" in report["summary"]


CONV_BN = model_config(
    {"name": "conv", "type": "conv2d", "inputs": ["input"], "filters": 8, "kernel": 3, "padding": "same"},
    {"name": "bn", "type": "batch_norm", "inputs": ["conv"]})


def test_weights_are_read_again_from_the_file_and_a_changed_file_is_refused(tmp_path):
    first = pyconv.load(CONV_BN)
    first.save(tmp_path / "net.json")
    model = pyconv.load(tmp_path / "net.json")
    kernel = model.weights["conv"]["kernel"]
    assert np.array_equal(kernel, first.weights["conv"]["kernel"])
    assert kernel is not model.weights["conv"]["kernel"]  # a new array each time: none is held
    x = model.example_input()
    want = model(x)
    np.savez(tmp_path / "net.npz", **{f"{layer}/{p}": a * 2 for layer, ps in first.weights.items()
                                       for p, a in ps.items()})
    np.testing.assert_array_equal(model(x), want)  # runs from its packed weights, not the file
    with pytest.raises(pyconv.ModelError, match="changed .* since the model was loaded") as info:
        model.weights["conv"]["kernel"]
    assert info.value.layer == "conv" and info.value.field == "kernel"


def test_seeded_weights_are_made_again_the_same(tmp_path):
    model = pyconv.load(CONV_BN)
    a, b = model.weights["bn"]["gamma"], model.weights["bn"]["gamma"]
    assert a is not b and np.array_equal(a, b)
    assert sorted(model.weights) == ["bn", "conv"] and len(model.weights) == 2


def test_summary_reports_weights_arena_and_total():
    model = pyconv.load(MODELS / "mobilenet_v1.json")
    line = model.summary().splitlines()[-1]
    arena = model.plan(1).arena_bytes / MiB
    assert line.startswith("memory: weights ") and f"arena {arena:.2f} MiB (batch 1)" in line
    weights = float(line.split()[2])
    assert f"total {weights + arena:.2f} MiB" in line or f"total {weights + arena - 0.01:.2f}" in line


def test_an_imported_model_lets_the_converted_weights_go(tmp_path):
    """From an ONNX file: importing streams the large initializers out of the file (pyconv.onnx.wire),
    converts them without copies and lets each go once packed, so the peak stays within the JSON
    model's budget; the original weights come from the file again."""
    pytest.importorskip("onnx")
    pytest.importorskip("torch")
    from pyconv.onnx.convert import convert
    from pyconv.testing import export_onnx

    doc = json.loads((MODELS / "mobilenet_v1.json").read_text())
    path = export_onnx(doc, pyconv.load(doc).weights, tmp_path / "mobilenet_v1.onnx")
    tiny = json.loads((MODELS / "toy_design_doc.json").read_text())
    warm = export_onnx(tiny, pyconv.load(tiny).weights, tmp_path / "toy.onnx", io_layout="NCHW")
    result = subprocess.run([sys.executable, "-c", _CHILD, str(path), str(warm)], capture_output=True,
                            text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "2"})
    report = json.loads(result.stdout)
    budget = _budget(report, "mobilenet_v1")
    assert report["peak"] <= budget, (f"peak RSS {report['peak'] / MiB:.1f} MiB importing and running, budget "
                                      f"{budget / MiB:.1f} MiB ({report})")

    model = pyconv.from_onnx(path)
    converted = convert(path)[1]
    weights = model.weights
    assert sum(len(ps) for ps in weights.values()) == len(converted)
    for key, array in converted.items():
        layer, param = key.rsplit("/", 1)
        np.testing.assert_array_equal(weights[layer][param], array)
    from_bytes = pyconv.from_onnx(Path(path).read_bytes())  # its weights are kept: no file to read again
    np.testing.assert_array_equal(from_bytes.weights[layer][param], array)
