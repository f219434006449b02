"""The ``pyconv`` command line: run, summary and profile on a toy config, inputs from .npy and images,
and errors as one line plus a hint with exit status 2 (a traceback only with --debug)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pyconv import cli
from pyconv.graph import ModelError

TOY = {
    "format": "pyconv-model", "version": 1, "name": "toy_classifier",
    "layers": [
        {"name": "input", "type": "input", "shape": [12, 10, 3]},
        {"name": "conv", "type": "conv2d", "inputs": ["input"], "filters": 8, "kernel": 3, "padding": "same",
         "use_bias": False},
        {"name": "bn", "type": "batch_norm", "inputs": ["conv"]},
        {"name": "relu", "type": "activation", "inputs": ["bn"], "function": "relu"},
        {"name": "gap", "type": "global_avg_pool", "inputs": ["relu"]},
        {"name": "logits", "type": "dense", "inputs": ["gap"], "units": 7},
        {"name": "probs", "type": "softmax", "inputs": ["logits"]},
    ],
    "outputs": ["probs"],
}


@pytest.fixture
def toy(tmp_path) -> Path:
    path = tmp_path / "toy.json"
    path.write_text(json.dumps(TOY))
    return path


def run_cli(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_run_prints_shape_top5_and_latency(toy, capsys):
    code, out, err = run_cli(capsys, "run", toy, "--repeat", 3, "--threads", 1)
    assert code == 0, err
    assert "output 'probs': shape (1, 7)" in out
    assert "top-5 of 'probs':" in out and "p=" in out
    assert "latency: median" in out and "p90" in out and "over 3 run(s)" in out


def test_run_is_deterministic_without_input(toy, capsys):
    first = run_cli(capsys, "run", toy, "--repeat", 1, "--threads", 1)[1]
    second = run_cli(capsys, "run", toy, "--repeat", 1, "--threads", 1)[1]
    top = [line for line in first.splitlines() if line.startswith("top-5")]
    assert top and top == [line for line in second.splitlines() if line.startswith("top-5")]


def test_progress_bar_for_long_runs(toy, capsys, monkeypatch):
    monkeypatch.setattr(cli, "_PROGRESS_AFTER_SECONDS", 0.0)
    code, out, err = run_cli(capsys, "run", toy, "--repeat", 4, "--threads", 1)
    assert code == 0 and err.strip(), "expected a progress bar on stderr"
    assert "latency" in out


def test_summary(toy, capsys):
    code, out, _ = run_cli(capsys, "summary", toy, "--batch", 2)
    assert code == 0
    assert "conv (conv2d)" in out and "+ bn (batch_norm), relu (activation)" in out
    assert "(2, 12, 10, 8)" in out and "Total params" in out and "memory plan (batch 2)" in out


def test_profile(toy, capsys):
    code, out, _ = run_cli(capsys, "profile", toy, "--repeat", 2, "--threads", 1)
    assert code == 0
    assert "GFLOP/s" in out and "time by strategy" in out and "conv" in out


def test_npy_input_with_or_without_batch_axis(toy, tmp_path, capsys):
    x = np.random.default_rng(0).uniform(size=(12, 10, 3)).astype(np.float32)
    np.save(tmp_path / "one.npy", x)
    np.save(tmp_path / "two.npy", np.stack([x, x]))
    code, out, _ = run_cli(capsys, "run", toy, "--input", tmp_path / "one.npy", "--repeat", 1)
    assert code == 0 and "shape (1, 7)" in out
    code, out, _ = run_cli(capsys, "run", toy, "--input", tmp_path / "two.npy", "--repeat", 1)
    assert code == 0 and "shape (2, 7)" in out


def test_image_input_is_preprocessed_by_the_preset(toy, tmp_path, capsys):
    Image = pytest.importorskip("PIL.Image")
    pixels = np.zeros((30, 40, 3), np.uint8)
    pixels[..., 0] = 255
    Image.fromarray(pixels).save(tmp_path / "red.png")
    model = cli.load(toy)
    keras = cli._read_image(tmp_path / "red.png", model, "keras")       # stretched to the 12x10 input, [-1, 1]
    assert keras.shape == (1, 12, 10, 3)
    assert np.allclose(keras[..., 0], 1.0) and np.allclose(keras[..., 1:], -1.0)
    caffe = cli._read_image(tmp_path / "red.png", model, "caffe")       # BGR minus the mean
    assert np.allclose(caffe[..., 2], 255 - 123.68) and np.allclose(caffe[..., 0], -103.939)
    default = cli._read_image(tmp_path / "red.png", model, None)        # no preset in the config: torchvision
    assert np.allclose(default[..., 0], (1 - 0.485) / 0.229, atol=1e-5)
    code, out, _ = run_cli(capsys, "run", toy, "--input", tmp_path / "red.png", "--repeat", 1, "--preset", "keras")
    assert code == 0 and "top-5" in out and "preset keras" in out


def test_names_for_1000_classes_only_with_a_preset(tmp_path, capsys):
    pytest.importorskip("PIL.Image")
    config = json.loads(json.dumps(TOY))
    config["layers"][-2]["units"] = 1000
    path = tmp_path / "wide.json"
    path.write_text(json.dumps(config))
    code, out, _ = run_cli(capsys, "run", path, "--repeat", 1)
    assert code == 0 and "top-5 of 'probs': " in out and "(class " not in out
    image = Path(cli.__file__).parent / "data" / "chelsea.jpg"
    code, out, _ = run_cli(capsys, "run", path, "--input", image, "--preset", "torchvision", "--repeat", 1)
    top = out[out.index("top-5"):].splitlines()[1:6]
    assert code == 0 and len(top) == 5 and all("p=" in line and "(class " in line for line in top)
    config["metadata"] = {"labels": [f"thing {i}" for i in range(1000)]}
    path.write_text(json.dumps(config))
    code, out, _ = run_cli(capsys, "run", path, "--repeat", 1)
    assert code == 0 and "  thing " in out


def test_image_without_pillow_is_a_clear_error(toy, tmp_path, capsys, monkeypatch):
    (tmp_path / "cat.jpg").write_bytes(b"not really")
    monkeypatch.setitem(sys.modules, "PIL", None)
    code, _, err = run_cli(capsys, "run", toy, "--input", tmp_path / "cat.jpg")
    assert code == 2 and "Pillow" in err and "pip install" in err


def assert_one_line_error(code, err, *words):
    assert code == 2
    lines = err.strip().splitlines()
    assert lines[0].startswith("pyconv: error: ") and "Traceback" not in err
    assert all(line.startswith("pyconv: hint: ") for line in lines[1:]) and len(lines) <= 2
    for word in words:
        assert word in lines[0], lines[0]


def test_invalid_config_is_one_line_and_exit_2(tmp_path, capsys):
    doc = json.loads(json.dumps(TOY))
    doc["layers"][1]["groups"] = 2
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    code, _, err = run_cli(capsys, "summary", path)
    assert_one_line_error(code, err, "layer 'conv'", "field 'groups'")


def test_malformed_json_and_missing_files(tmp_path, capsys):
    path = tmp_path / "broken.json"
    path.write_text('{"format": "pyconv-model",\n "layers": [}\n')
    assert_one_line_error(*run_cli(capsys, "run", path)[::2], "line 2, column")
    assert_one_line_error(*run_cli(capsys, "run", tmp_path / "missing.json")[::2], "missing.json")


def test_wrong_input_shape_is_one_line(toy, tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 12, 10), np.float32))
    code, _, err = run_cli(capsys, "run", toy, "--input", tmp_path / "x.npy")
    assert_one_line_error(code, err, "layer 'input'", "field 'shape'", "(N, 12, 10, 3)")


def test_debug_shows_the_exception(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(dict(TOY, outputs=["nope"])))
    with pytest.raises(ModelError):
        cli.main(["--debug", "summary", str(path)])
    with pytest.raises(ModelError):
        cli.main(["summary", str(path), "--debug"])


def test_usage_errors_exit_2(toy, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["frobnicate", str(toy)])
    assert info.value.code == 2
    capsys.readouterr()
    assert_one_line_error(*run_cli(capsys, "run", toy, "--repeat", 0)[::2], "--repeat")


def test_console_script_runs_in_a_subprocess(toy):
    exe = shutil.which("pyconv")
    command = [exe] if exe else [sys.executable, "-m", "pyconv.cli"]
    done = subprocess.run([*command, "summary", str(toy)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Total params" in done.stdout
    done = subprocess.run([*command, "run", str(toy) + ".missing"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
