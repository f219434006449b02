"""Today's mobile CNNs (tests/mobile_nets.py) through ONNX: parameter counts against the published
totals; each network exported by torch.onnx.export (TorchScript exporter at opsets 13 and 17, with
symbolic H/W at opset 17, and the dynamo exporter, with and without symbolic H/W, where its
onnxscript dependency is installed),
checked in onnxruntime against PyTorch, then imported with ``pyconv.from_onnx`` and compared with
onnxruntime on the very same file (pre-softmax logits, 1e-4 relative to their scale). Small inputs by
default, 224x224 under ``-m slow``.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")

import mobile_nets as mn  # noqa: E402  (needs torch)
import onnx_models as om  # noqa: E402

import pyconv  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

TOL = 1e-4
NAMES = list(mn.NETWORKS)
SIZE = 96

# (published millions, exact count of the reference implementation the paper's figure comes from or
# None). Parameters as PyTorch counts them (BN's gamma and beta, not its running statistics). The
# papers round or (MobileNetV3-Large, like MobileNetV2) truncate to 0.1 M.
PUBLISHED_PARAMS = {
    # Howard et al. 2019, Table 3: 5.4 M; torchvision's mobilenet_v3_large has 5,483,032.
    "mobilenet_v3_large": (5.4, 5_483_032),
    # Table 3: 2.5 M, counted with the 1024-wide NBN 1x1 head of Table 2; torchvision: 2,542,856.
    "mobilenet_v3_small": (2.5, 2_542_856),
    # Tan & Le 2019 (EfficientNet), Table 2: 5.3 M; Keras' EfficientNetB0 trains 5,288,548.
    "efficientnet_b0": (5.3, 5_288_548),
    # Ma et al. 2018, Table 5 (1x): 2.3 M; torchvision's shufflenet_v2_x1_0 has 2,278,604.
    "shufflenet_v2": (2.3, 2_278_604),
    # Tan & Le 2019 (MixConv), ImageNet results: 4.1 M; timm's mixnet_s has 4,134,606.
    "mixnet_s": (4.1, 4_134_606),
    # Han et al. 2020 (GhostNet 1.0x), ImageNet results: 5.2 M.
    "ghostnet": (5.2, None),
    # Cui et al. 2021 (PP-LCNet 1x), ImageNet results: 2.96 M.
    "lcnet": (3.0, None),
    # Han et al. 2021 (ReXNet 1.0x), ImageNet results: 4.8 M.
    "rexnet": (4.8, None),
}


@pytest.mark.parametrize("name", NAMES)
def test_parameters_match_the_published_totals(name):
    published, exact = PUBLISHED_PARAMS[name]
    n = sum(p.numel() for p in mn.NETWORKS[name]().parameters())
    assert published in (round(n / 1e6, 1), math.floor(n / 1e5) / 10), n
    if exact is not None:
        assert n == exact


def test_width_and_input_size_are_free():
    torch.manual_seed(0)
    with torch.no_grad():
        for name, make in mn.NETWORKS.items():
            width = 0.5 if name != "shufflenet_v2" else 1.5
            y = make(width).eval()(torch.zeros(2, 3, 70, 45))
            assert y.shape == (2, 1000), name


def test_mixed_depthwise_kernels_and_split_channels():
    assert mn.split_channels(200, 5) == [40] * 5 and mn.split_channels(120, 4) == [30] * 4
    assert mn.split_channels(87, 4) == [24, 21, 21, 21]
    conv = mn.MixedConv(200, 200, (3, 5, 7, 9, 11), stride=2, depthwise=True)
    assert [c.kernel_size for c in conv.convs] == [(k, k) for k in (3, 5, 7, 9, 11)]
    assert all(c.groups == c.in_channels == 40 for c in conv.convs)


# --- exports ----------------------------------------------------------------------------------------

# mode -> export keyword arguments
MODES = {
    "opset13": {"opset": 13},
    "opset17": {"opset": 17},
    "opset17_dynamic_hw": {"opset": 17, "dynamic_hw": True},
    "dynamo": {"opset": 18, "dynamo": True},
    "dynamo_dynamic_hw": {"opset": 18, "dynamo": True, "dynamic_hw": True},
}
# The dynamo exporter takes 3-20 s a network here: the default run exports three networks with it
# (ShuffleNetV2's chunk becomes a Split there, and its symbolic-size export a small shape subgraph).
DYNAMO_DEFAULT = {("mobilenet_v3_small", "dynamo"), ("shufflenet_v2", "dynamo"), ("mixnet_s", "dynamo"),
                  ("shufflenet_v2", "dynamo_dynamic_hw")}
CASES = [pytest.param(name, mode, id=f"{name}-{mode}",
                      marks=[pytest.mark.slow] if mode.startswith("dynamo") and (name, mode) not in DYNAMO_DEFAULT
                      else [])
         for name in NAMES for mode in MODES]


@functools.lru_cache(maxsize=None)
def network(name: str) -> torch.nn.Module:
    torch.manual_seed(sorted(mn.NETWORKS).index(name))
    return om.randomize_bn(mn.NETWORKS[name](), seed=1)


@functools.lru_cache(maxsize=None)
def exported(name: str, mode: str, size: int = SIZE) -> bytes:
    if MODES[mode].get("dynamo"):
        pytest.importorskip("onnxscript", reason="torch.onnx.export(dynamo=True) needs onnxscript")
    return om.export(network(name), (1, 3, size, size), **MODES[mode])


def image(shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32)


def ort_run(data: bytes, x: np.ndarray) -> np.ndarray:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]


def rel_err(got, ref) -> float:
    return float(np.abs(np.asarray(got, np.float64) - ref).max()) / max(1.0, float(np.abs(ref).max()))


def sizes(mode: str, size: int) -> list[tuple[int, int]]:
    """The export size, and for symbolic H/W two more (odd, non-square) the file must serve too."""
    return [(size, size)] + ([(size - 17, size + 21), (size + 32, size - 31)] if "dynamic" in mode else [])


@pytest.mark.parametrize("name,mode", CASES)
def test_export_matches_torch_in_onnxruntime(name, mode):
    data = exported(name, mode)
    for h, w in sizes(mode, SIZE):
        x = image((1, 3, h, w), seed=h)
        with torch.no_grad():
            expected = network(name)(torch.from_numpy(x)).numpy()
        assert rel_err(ort_run(data, x), expected) <= TOL


def check_pyconv(data: bytes, mode: str, size: int) -> None:
    # A file with symbolic H and W is converted at a size given here, then runs at the others.
    model = pyconv.from_onnx(data, threads=1, input_shape=(1, 3, size, size) if "dynamic" in mode else None)
    assert model.input_names == ["input"] and model.output_names == ["output"]
    for h, w in sizes(mode, size):
        x = image((1, 3, h, w), seed=h + 1)
        got = model.run(x)
        ref = ort_run(data, x)
        assert got.shape == ref.shape and got.dtype == np.float32
        err = rel_err(got, ref)
        assert err <= TOL, f"{h}x{w}: max |pyconv - onnxruntime| / scale = {err:.2e}"


@pytest.mark.parametrize("name,mode", CASES)
def test_pyconv_import_matches_onnxruntime(name, mode):
    check_pyconv(exported(name, mode), mode, SIZE)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["opset13", "opset17_dynamic_hw", "dynamo"])
@pytest.mark.parametrize("name", NAMES)
def test_pyconv_import_full_size(name, mode):
    check_pyconv(exported(name, mode, 224), mode, 224)


def test_op_types_lists_every_node():
    counts = mn.op_types(exported("shufflenet_v2", "opset13"))
    # chunk(2) exports as Shape, Gather, Div and two Slices, not as Split.
    assert counts["Conv"] == 56 and counts["Slice"] == 26 and counts["Transpose"] == 16 and "Split" not in counts
