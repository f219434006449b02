"""Batch prediction (``pyconv.predict``, ``pyconv predict``): sources, the activation rule and top-k,
writers with resume and partial lines, the local pipeline against per-image runs of the model, corrupt
images skipped and counted, the CLI end to end and the Python API."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

Image = pytest.importorskip("PIL.Image")

import pyconv  # noqa: E402
from pyconv import cli  # noqa: E402
from pyconv.predict import Row, Skipped, iter_predict  # noqa: E402
from pyconv.predict.rows import class_names, probabilities, top_rows  # noqa: E402
from pyconv.predict.sources import UnreadableImage, expand, open_image  # noqa: E402
from pyconv.predict.writers import TableWriter, csv_header, open_writer, read_rows  # noqa: E402
from pyconv.preprocess import load_image  # noqa: E402

SIZE = 16
CLASSES = 7


def toy_config(softmax: bool = True, layout: str = "NHWC") -> dict:
    layers = [
        {"name": "input", "type": "input", "shape": [SIZE, SIZE, 3], "layout": layout},
        {"name": "conv", "type": "conv2d", "inputs": ["input"], "filters": 8, "kernel": 3, "padding": "same"},
        {"name": "relu", "type": "activation", "inputs": ["conv"], "function": "relu"},
        {"name": "gap", "type": "global_avg_pool", "inputs": ["relu"]},
        {"name": "logits", "type": "dense", "inputs": ["gap"], "units": CLASSES},
    ]
    if softmax:
        layers.append({"name": "probs", "type": "softmax", "inputs": ["logits"]})
    return {"format": "pyconv-model", "version": 1, "name": "toy_predict", "layers": layers,
            "outputs": ["probs" if softmax else "logits"], "seed": 3}


@pytest.fixture
def toy(tmp_path) -> Path:
    path = tmp_path / "toy.json"
    path.write_text(json.dumps(toy_config()))
    return path


def write_images(folder: Path, count: int, seed: int = 0, suffix: str = ".png") -> list[Path]:
    """Small distinct RGB images of various sizes (the preprocessing resizes them)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        h, w = 20 + 3 * (i % 5), 24 + 2 * (i % 7)
        pixels = (rng.random((h, w, 3)) * 255).astype(np.uint8)
        path = folder / f"img{i:03d}{suffix}"
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return paths


@pytest.fixture
def photos(tmp_path) -> Path:
    folder = tmp_path / "photos"
    write_images(folder, 7)
    write_images(folder / "nested", 3, seed=1, suffix=".JPG")
    (folder / "notes.txt").write_text("not an image")
    return folder


def corrupt_images(folder: Path) -> list[Path]:
    """A file that is no image, and a JPEG cut in the middle."""
    folder.mkdir(parents=True, exist_ok=True)
    junk = folder / "junk.png"
    junk.write_bytes(b"definitely not a PNG")
    whole = folder / "whole.jpg"
    Image.fromarray(np.full((64, 64, 3), 120, np.uint8)).save(whole, quality=95)
    cut = folder / "cut.jpg"
    cut.write_bytes(whole.read_bytes()[:200])
    whole.unlink()
    return [junk, cut]


def reference_rows(model, paths, top: int, activation: str = "auto") -> dict[str, tuple]:
    """Each image run on its own through model.run, softmax by numpy where the output is not one already."""
    layout = model.spec.layers[model.input_names[0]].attrs["layout"]
    out = {}
    for path in paths:
        x = load_image(str(path), layout=layout, size=SIZE)[None]
        y = np.asarray(model.run(x), dtype=np.float64)[0]
        if activation == "softmax" or (activation == "auto" and not (y.min() >= 0 and abs(y.sum() - 1) < 1e-3)):
            e = np.exp(y - y.max())
            y = e / e.sum()
        ids = sorted(range(len(y)), key=lambda i: (-y[i], i))[:top]
        out[str(path)] = (tuple(ids), tuple(y[i] for i in ids))
    return out


def assert_rows_match(rows, reference):
    assert [r.path for r in rows] == list(reference)
    for row in rows:
        ids, probs = reference[row.path]
        assert row.ids == ids, row.path
        np.testing.assert_allclose(row.probs, probs, rtol=1e-5, atol=1e-7)
        assert row.names == tuple(str(i) for i in ids)


# --- sources -----------------------------------------------------------------------------------------

def test_expand_files_folders_globs(photos, tmp_path):
    top = sorted(str(p) for p in photos.glob("*.png"))
    nested = sorted(str(p) for p in (photos / "nested").glob("*.JPG"))
    # A folder: recursive, image extensions in any case, sorted; the .txt left out.
    assert expand(photos) == sorted(top + nested)
    # A file named explicitly is taken whatever its extension; duplicates keep their first place.
    assert expand([photos / "notes.txt", top[1], photos]) == [str(photos / "notes.txt"), top[1]] + \
        [p for p in sorted(top + nested) if p != top[1]]
    assert expand(str(photos / "img00[0-2].png")) == top[:3]
    assert expand(str(photos / "**" / "*.JPG")) == nested
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        expand(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="no file matches"):
        expand(str(tmp_path / "*.gif"))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert expand(empty) == []


def test_uris_through_fsspec(photos):
    fsspec = pytest.importorskip("fsspec")
    fs = fsspec.filesystem("memory")
    for path in sorted(photos.glob("*.png"))[:3]:
        fs.pipe(f"/predict-test/in/{path.name}", path.read_bytes())
    fs.pipe("/predict-test/in/skip.txt", b"text")
    found = expand("memory:///predict-test/in")
    assert found == [f"memory:///predict-test/in/img00{i}.png" for i in range(3)]
    assert expand("memory:///predict-test/in/*1.png") == ["memory:///predict-test/in/img001.png"]
    x = open_image(found[1], size=SIZE)
    np.testing.assert_array_equal(x, load_image(str(photos / "img001.png"), size=SIZE))
    fs.pipe("/predict-test/bad.png", b"garbage")
    with pytest.raises(UnreadableImage, match="memory:///predict-test/bad.png"):
        open_image("memory:///predict-test/bad.png", size=SIZE)
    with pytest.raises(FileNotFoundError):
        expand("memory:///predict-test/none")


# --- rows --------------------------------------------------------------------------------------------

def test_activation_rule():
    logits = np.array([[1.0, 2.0, 0.5], [0.2, 0.3, 0.5], [-1.0, 0.0, 3.0]])
    soft = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probabilities(logits, "softmax"), soft)
    np.testing.assert_array_equal(probabilities(logits, "none"), logits)
    # auto: the second row already is a distribution and stays; the others get softmax.
    np.testing.assert_allclose(probabilities(logits, "auto"), np.stack([soft[0], logits[1], soft[2]]))
    with pytest.raises(ValueError, match="activation"):
        probabilities(logits, "sigmoid")


def test_top_rows_order_ties_and_names():
    scores = np.array([[0.1, 0.4, 0.4, 0.1], [0.7, 0.1, 0.1, 0.1]])
    rows = top_rows(["a", "b"], scores, 3, ["w", "x", "y", "z"])
    assert rows[0] == Row("a", (1, 2, 0), ("x", "y", "w"), (0.4, 0.4, 0.1))
    assert rows[1].ids == (0, 1, 2) and rows[1].probs[0] == pytest.approx(0.7)
    assert len(top_rows(["a"], scores[:1], 10, list("wxyz"))[0].ids) == 4
    assert class_names(3) == ["0", "1", "2"]
    names = class_names(1001)
    assert len(names) == 1001 and names[0] == "background" and names[1:] == class_names(1000)
    with pytest.raises(ValueError, match="expected 3 names"):
        class_names(3, ["a", "b"])


# --- writers -----------------------------------------------------------------------------------------

ROWS = [Row(f"dir/img{i}.png", (i, 3), (f"n{i}", "n, \"3\""), (0.5 + i / 100, 0.25)) for i in range(5)]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_writer_round_trip_and_resume(tmp_path, suffix):
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    path = tmp_path / f"out{suffix}"
    with open_writer(path, 2) as writer:
        assert writer.done == set()
        writer.write(ROWS[:2])
        writer.write(ROWS[2:3])
    assert list(read_rows(path)) == ROWS[:3]
    with open_writer(path, 2) as writer:
        assert writer.done == {r.path for r in ROWS[:3]}
        writer.write(ROWS[3:])
    assert list(read_rows(path)) == ROWS
    with open_writer(path, 2, overwrite=True) as writer:
        assert writer.done == set()
        writer.write(ROWS[4:])
    assert list(read_rows(path)) == ROWS[4:]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_partial_last_line_is_cut_and_redone(tmp_path, suffix):
    path = tmp_path / f"out{suffix}"
    with open_writer(path, 2) as writer:
        writer.write(ROWS[:3])
    whole = path.read_bytes()
    # A run killed while writing the third row.
    last = whole.rstrip(b"\n").rfind(b"\n") + 1
    path.write_bytes(whole[:last + 7])
    with open_writer(path, 2) as writer:
        assert writer.done == {ROWS[0].path, ROWS[1].path}
        writer.write(ROWS[2:])
    assert list(read_rows(path)) == ROWS


def test_csv_header_and_killed_parquet_run(tmp_path):
    path = tmp_path / "out.csv"
    with open_writer(path, 2) as writer:
        writer.write(ROWS[:1])
    assert path.read_text().splitlines()[0] == ",".join(csv_header(2))
    with pytest.raises(ValueError, match="--top 3"):
        open_writer(path, 3)
    with pytest.raises(ValueError, match="expected a .csv, .jsonl, .ndjson, .parquet file"):
        open_writer(tmp_path / "out.txt", 2)
    pytest.importorskip("pyarrow")
    parquet = tmp_path / "out.parquet"
    with open_writer(parquet, 2) as writer:
        writer.write(ROWS[:2])
    killed = open_writer(parquet, 2)
    killed.write(ROWS[2:4])  # never closed: the rows stay in the .partial journal
    assert (tmp_path / "out.parquet.partial").exists()
    with open_writer(parquet, 2) as writer:
        assert writer.done == {r.path for r in ROWS[:4]}
        writer.write(ROWS[4:])
    assert list(read_rows(parquet)) == ROWS
    assert not (tmp_path / "out.parquet.partial").exists()


def test_table_writer(capsys):
    import sys
    TableWriter(sys.stdout, 2).write(ROWS[:2])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("dir/img0.png  n0 (0.500)  n, \"3\" (0.250)")
    assert len(lines) == 2


# --- the local pipeline ------------------------------------------------------------------------------

@pytest.mark.parametrize("batch,workers,prefetch,callers", [(1, 1, 1, 1), (3, 2, 2, 2), (16, 4, 3, 1), (2, 1, 1, 3)])
def test_pipeline_matches_per_image_runs(photos, toy, batch, workers, prefetch, callers):
    model = pyconv.load(toy, threads=1)
    paths = expand(photos)
    results = [r for chunk in iter_predict(model, photos, top=3, batch=batch, workers=workers, prefetch=prefetch,
                                           callers=callers, threads=1) for r in chunk]
    assert all(isinstance(r, Row) for r in results)
    assert_rows_match(results, reference_rows(model, paths, 3))


def test_default_layout_is_one_single_threaded_run_per_core_unless_threads_are_set(photos, toy, monkeypatch):
    from pyconv.predict import local
    from pyconv.predict.local import default_layout
    from pyconv.threads import available_cores

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    cores = available_cores()
    assert default_layout(None, None) == ((1, cores) if cores <= 8 else (cores // 8, 8))
    with monkeypatch.context() as patched:
        patched.setattr(local, "available_cores", lambda: 20)
        assert default_layout(None, None) == (2, 8)     # at most 8 runs, the cores shared out
    assert default_layout(2, None) == (2, 1)
    assert default_layout(None, 3) == (None, 3)
    assert default_layout(2, 2) == (2, 2)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert default_layout(None, None) == (None, 1)
    # The default layout's rows are the same rows.
    monkeypatch.delenv("OMP_NUM_THREADS")
    model = pyconv.load(toy, threads=1)
    results = [r for chunk in iter_predict(model, photos, top=3, batch=2) for r in chunk]
    assert_rows_match(results, reference_rows(model, expand(photos), 3))


def test_draft_reaches_the_decoder_and_large_jpegs_still_classify(tmp_path, photos, toy, monkeypatch, capsys):
    from pyconv.predict import engine

    big = tmp_path / "big"
    big.mkdir()
    Image.fromarray(np.random.default_rng(5).integers(0, 256, (60, 80, 3), np.uint8)).resize(
        (800, 600), Image.BICUBIC).save(big / "large.jpg", quality=92)
    asked = []

    def recording(*args, **kwargs):
        asked.append(kwargs["draft"])
        return open_image(*args, **kwargs)

    monkeypatch.setattr(engine, "open_image", recording)
    model = pyconv.load(toy, threads=1)
    rows = [r for chunk in iter_predict(model, [photos, big], top=3, batch=4, draft=True) for r in chunk]
    assert asked and all(asked) and len(rows) == len(expand([photos, big]))
    # The small photos (PNG, and JPEGs too small to shrink) come out as without draft.
    exact = reference_rows(model, expand(photos), 3)
    assert_rows_match([r for r in rows if r.path in exact], exact)
    asked.clear()
    assert cli.main(["predict", str(toy), str(big), "--draft", "--no-progress"]) == 0
    assert asked == [True] and "large.jpg" in capsys.readouterr().out


def test_stopping_early_leaves_nothing_running(photos, toy):
    model = pyconv.load(toy, threads=1)
    results = iter_predict(model, photos, batch=2, callers=2, prefetch=1)
    first = next(results)
    assert [r.path for r in first] == expand(photos)[:2]
    results.close()  # the pools shut down with the pending work cancelled


def test_logits_get_softmax_and_nchw_inputs(tmp_path, photos):
    config = tmp_path / "logits.json"
    config.write_text(json.dumps(toy_config(softmax=False, layout="NCHW")))
    model = pyconv.load(config, threads=1)
    paths = expand(photos)[:5]
    for activation in ("auto", "softmax", "none"):
        rows = pyconv.predict(model, paths, top=4, batch=2, activation=activation)
        assert_rows_match(rows, reference_rows(model, paths, 4, activation))


def test_model_metadata_names_and_preset_and_non_square_input(tmp_path, photos):
    config = toy_config()
    config["layers"][0]["shape"] = [SIZE, SIZE + 6, 3]
    config["metadata"] = {"labels": [f"kind {i}" for i in range(CLASSES)], "preprocess": "keras"}
    path = tmp_path / "named.json"
    path.write_text(json.dumps(config))
    model = pyconv.load(path, threads=1)
    paths = expand(photos)[:4]
    rows = pyconv.predict(model, paths, top=2)
    for row in rows:
        x = load_image(row.path, "keras", "NHWC", (SIZE, SIZE + 6))[None]
        y = model.run(x)[0].astype(np.float64)
        ids = tuple(sorted(range(CLASSES), key=lambda i: (-y[i], i))[:2])
        assert row.ids == ids and row.names == tuple(f"kind {i}" for i in ids)
        np.testing.assert_allclose(row.probs, y[list(ids)], rtol=1e-5)
    torchvision = pyconv.predict(model, paths, top=2, preset="torchvision", labels=list("abcdefg"))
    assert torchvision[0].names[0] in "abcdefg" and torchvision[0].probs != rows[0].probs
    with pytest.raises(ValueError, match="preset"):
        pyconv.predict(model, paths, preset="no-such-preset")


def test_corrupt_images_are_skipped_and_counted(tmp_path, photos, toy):
    bad = corrupt_images(photos / "bad")
    model = pyconv.load(toy, threads=1)
    results = [r for chunk in iter_predict(model, photos, batch=4, threads=1) for r in chunk]
    skipped = [r for r in results if isinstance(r, Skipped)]
    assert sorted(s.path for s in skipped) == sorted(str(p) for p in bad)
    assert all(s.path in s.describe() for s in skipped)
    good = [p for p in expand(photos) if p not in {str(b) for b in bad}]
    assert_rows_match([r for r in results if isinstance(r, Row)], reference_rows(model, good, 5))
    seen = []
    rows = pyconv.predict(model, photos, batch=4, on_skip=seen.append)
    assert len(rows) == len(good) and sorted(s.path for s in seen) == sorted(str(p) for p in bad)


def test_python_api_writes_and_resumes(tmp_path, photos, toy):
    out = tmp_path / "rows.jsonl"
    first = pyconv.predict(str(toy), [photos / "img000.png", photos / "img001.png"], top=2, output=out)
    assert [r.path for r in first] == [str(photos / "img000.png"), str(photos / "img001.png")]
    rest = pyconv.predict(toy, photos, top=2, output=out, threads=1)
    everything = expand(photos)
    assert [r.path for r in rest] == everything[2:]
    assert list(read_rows(out)) == first + rest
    with pytest.raises(TypeError, match="expected a pyconv Model or the path"):
        pyconv.predict(42, photos)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="top"):
        pyconv.predict(toy, photos, top=0)


# --- the command -------------------------------------------------------------------------------------

def run_cli(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_table_on_stdout(capsys, toy, photos):
    code, out, err = run_cli(capsys, "predict", toy, photos, "--top", 2, "--batch", 3, "--threads", 1,
                             "--callers", 2)
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == len(expand(photos))
    assert lines[0].startswith(str(photos / "img000.png")) and "(" in lines[0]
    assert f"{len(lines)} images predicted, 0 skipped" in err


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_cli_output_resume_and_corrupt(capsys, tmp_path, toy, photos, suffix):
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    bad = corrupt_images(photos / "bad")
    out = tmp_path / f"pred{suffix}"
    args = ("predict", toy, photos, "--top", 3, "--batch", 4, "--threads", 1, "-o", out)
    code, stdout, err = run_cli(capsys, *args)
    assert code == 0, err
    assert stdout == ""
    total = len(expand(photos))
    assert f"{total - 2} images predicted into {out}, 2 skipped (unreadable)" in err
    for path in bad:
        assert f"skipped {path}" in err
    full = list(read_rows(out))
    assert [r.path for r in full] == [p for p in expand(photos) if p not in {str(b) for b in bad}]
    # A second run finds every image done (the unreadable ones are tried again).
    code, _, err = run_cli(capsys, *args)
    assert code == 0 and "0 images predicted" in err and f"{total - 2} already done" in err
    assert list(read_rows(out)) == full
    if suffix != ".parquet":
        # Killed in the middle of a line: rerunning completes the file as one run would have written it,
        # but for the probabilities' last bits: the images left run in other batches, and a dense layer
        # sums a batch of 1 or 2 rows in another order than a longer one (the GEMM's short blocks).
        data = out.read_bytes()
        out.write_bytes(data[:len(data) * 2 // 3])
        code, _, err = run_cli(capsys, *args)
        assert code == 0 and "resuming" in err
        resumed = list(read_rows(out))
        assert [(r.path, r.ids, r.names) for r in resumed] == [(r.path, r.ids, r.names) for r in full]
        np.testing.assert_allclose([r.probs for r in resumed], [r.probs for r in full], rtol=1e-6)


@pytest.mark.parametrize("argv,message", [
    (("--top", 0), "--top: expected a positive integer"),
    (("--actors", 3), "--actors applies to Ray runs"),
    (("-o", "out.txt"), "expected a .csv, .jsonl, .ndjson, .parquet file"),
    (("--activation", "softmax", "--batch", -1), "--batch: expected a positive integer"),
    (("--callers", 2, "--ray"), "--callers applies to local runs"),
])
def test_cli_errors_are_one_line_with_status_2(capsys, toy, photos, argv, message):
    code, _, err = run_cli(capsys, "predict", toy, photos, *argv)
    assert code == 2
    assert message in err and err.startswith("pyconv: error:")


def test_cli_missing_input_and_model(capsys, toy, tmp_path):
    code, _, err = run_cli(capsys, "predict", toy, tmp_path / "nope")
    assert code == 2 and "no such file or folder" in err and "hint" in err
    code, _, err = run_cli(capsys, "predict", tmp_path / "nope.json", tmp_path)
    assert code == 2 and "pyconv: error:" in err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal_and_lines_elsewhere(monkeypatch):
    from pyconv.predict import progress

    pytest.importorskip("tqdm")
    terminal = _Terminal()
    bar = progress.Progress(10, terminal)
    bar.update(4, 1)
    bar.write("pyconv predict: skipped x")
    bar.close()
    assert "img" in terminal.getvalue() and "skipped x" in terminal.getvalue()
    monkeypatch.setattr(progress, "INTERVAL", 0.0)
    log = io.StringIO()
    lines = progress.Progress(10, log)
    lines.update(4, 1)
    lines.update(5)
    assert log.getvalue().splitlines()[0].startswith("pyconv predict: 5/10 images, ")
    assert "1 skipped" in log.getvalue() and lines.done == 9 and lines.skipped == 1
