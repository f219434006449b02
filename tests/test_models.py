"""The shipped models: configs, published sizes, and end-to-end agreement of every implementation.

- models/*.json are exactly what models/build_configs.py generates;
- parameter and multiply-add counts, computed from the configs by tests/model_reference.py's own
  counter, match the papers' and Keras' figures (sources in docs/models.md);
- the NumPy reference interpreter agrees with PyTorch's native operators on the geometry it encodes
  (groups, dilation, padding, ceil_mode, count_include_pad), with the PyTorch twin
  (pyconv.testing) on every layer type, and with onnxruntime on the twin's ONNX export;
- pyconv.graph.load / Model runs every shipped model to the reference's logits.
"""
from __future__ import annotations

import importlib.util
import json
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import model_reference as ref

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
SHIPPED = ["mobilenet_v1", "mobilenet_v2", "xception", "shufflenet_v1_g3", "mobilenet_v3_large",
           "mobilenet_v3_small", "efficientnet_b0", "shufflenet_v2", "toy_design_doc"]
CLASSIFIERS = [m for m in SHIPPED if m != "toy_design_doc"]


def load_config(name: str) -> dict:
    return json.loads((MODELS / f"{name}.json").read_text())


def comparable_outputs(config: dict) -> list[str]:
    """Pre-softmax logits for classifiers (softmax flattens differences), else the config's outputs."""
    names = {layer["name"] for layer in config["layers"]}
    return ["logits"] if "logits" in names else list(config["outputs"])


def rel_err(actual, expected) -> float:
    """Largest absolute error relative to the largest expected magnitude."""
    expected = np.asarray(expected, dtype=np.float64)
    return float(np.abs(np.asarray(actual, dtype=np.float64) - expected).max()
                 / max(np.abs(expected).max(), 1e-30))


def seeded_input(config: dict, batch: int = 1, seed: int = 1) -> np.ndarray:
    (inp,) = [layer for layer in config["layers"] if layer["type"] == "input"]
    shape = tuple(inp["shape"])
    if inp.get("layout", "NHWC") == "NCHW" and len(shape) == 3:
        shape = (shape[2], shape[0], shape[1])
    return np.random.default_rng(seed).standard_normal((batch, *shape)).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Configs
# --------------------------------------------------------------------------------------------

def _build_configs_module():
    spec = importlib.util.spec_from_file_location("build_configs", MODELS / "build_configs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_configs_are_reproduced_byte_for_byte(tmp_path):
    assert _build_configs_module().main(["--out", str(tmp_path)]) == 0
    for name in SHIPPED:
        assert (tmp_path / f"{name}.json").read_bytes() == (MODELS / f"{name}.json").read_bytes(), name
    assert sorted(p.stem for p in MODELS.glob("*.json")) == sorted(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_config_is_well_formed(name):
    config = load_config(name)
    assert config["format"] == "pyconv-model" and config["version"] == 1
    assert config["weights"] is None, "shipped models use the loader's seeded weights"
    names = [layer["name"] for layer in config["layers"]]
    assert len(names) == len(set(names))
    shapes = ref.infer_shapes(config)
    if name in CLASSIFIERS:
        assert shapes["logits"] == (1000,) and config["outputs"] == ["predictions"]


@pytest.mark.parametrize("name", SHIPPED)
def test_config_matches_the_package_schema(name):
    jsonschema = pytest.importorskip("jsonschema")
    schema_path = ROOT / "pyconv" / "graph" / "model.schema.json"
    if not schema_path.exists():
        pytest.skip("pyconv/graph/model.schema.json not present yet")
    jsonschema.validate(load_config(name), json.loads(schema_path.read_text()))


def test_design_doc_shapes():
    """The document's examples: 5x5x3 in, 4 maps 5x5 with same padding and 3x3 without, etc."""
    s = ref.infer_shapes(load_config("toy_design_doc"))
    assert s["conv_same"] == (5, 5, 4) and s["conv_valid"] == (3, 3, 4)
    assert s["depthwise"] == (5, 5, 3) and s["pointwise"] == (5, 5, 4)
    assert s["group_conv"] == (5, 5, 4)
    params = ref.layer_params(load_config("toy_design_doc"))
    assert params["conv_same"]["kernel"] == (3, 3, 3, 4)
    # Each group sees C/G = 4 of the 8 input maps: 1/G of a full conv's parameters.
    assert params["group_conv"]["kernel"] == (3, 3, 4, 4)


def test_entry_shapes_follow_the_papers():
    v1 = ref.infer_shapes(load_config("mobilenet_v1"))
    assert v1["conv1_relu6"] == (112, 112, 32) and v1["conv_pw_13_relu6"] == (7, 7, 1024)
    v2 = ref.infer_shapes(load_config("mobilenet_v2"))
    assert v2["block_16_project_BN"] == (7, 7, 320) and v2["out_relu"] == (7, 7, 1280)
    xc = ref.infer_shapes(load_config("xception"))
    assert xc["block1_conv2_act"] == (147, 147, 64) and xc["block4_add"] == (19, 19, 728)
    assert xc["block13_add"] == (10, 10, 1024) and xc["block14_sepconv2_act"] == (10, 10, 2048)
    sh = ref.infer_shapes(load_config("shufflenet_v1_g3"))
    assert sh["maxpool"] == (56, 56, 24) and sh["stage2_unit4_add"] == (28, 28, 240)
    assert sh["stage3_unit8_add"] == (14, 14, 480) and sh["stage4_unit4_add"] == (7, 7, 960)
    v3 = ref.infer_shapes(load_config("mobilenet_v3_large"))
    assert v3["Conv/hard_swish"] == (112, 112, 16) and v3["expanded_conv_14/Add"] == (7, 7, 160)
    assert v3["expanded_conv_3/squeeze_excite/Conv"] == (1, 1, 24)  # a quarter of the 72 expanded
    assert v3["expanded_conv_3/squeeze_excite/Mul"] == (28, 28, 72) and v3["Conv_1/hard_swish"] == (7, 7, 960)
    v3s = ref.infer_shapes(load_config("mobilenet_v3_small"))
    assert v3s["expanded_conv/squeeze_excite/Conv"] == (1, 1, 8) and v3s["Conv_1/hard_swish"] == (7, 7, 576)
    b0 = ref.infer_shapes(load_config("efficientnet_b0"))
    # SE reduces to a quarter of the block input (16 channels in -> 4), not of the 96 expanded.
    assert b0["block2a_se_reduce"] == (1, 1, 4) and b0["block2a_se_excite"] == (56, 56, 96)
    assert b0["block7a_project_bn"] == (7, 7, 320) and b0["top_activation"] == (7, 7, 1280)
    s2 = ref.infer_shapes(load_config("shufflenet_v2"))
    assert s2["stage2_unit2_split1"] == s2["stage2_unit2_split2"] == (28, 28, 58)
    assert s2["stage3_unit1_shuffle"] == (14, 14, 232) and s2["conv5_relu"] == (7, 7, 1024)


# --------------------------------------------------------------------------------------------
# Published sizes (docs/models.md lists the sources)
# --------------------------------------------------------------------------------------------

# Exact counts from Keras' model.summary(): "all" is the total (BN moving statistics included),
# "affine" the trainable count (BN gamma and beta only; also PyTorch's parameters()).
EXACT_PARAMS = [
    ("mobilenet_v1", "affine", 4_231_976),
    ("mobilenet_v1", "all", 4_253_864),
    ("mobilenet_v2", "affine", 3_504_872),
    ("mobilenet_v2", "all", 3_538_984),
    ("xception", "all", 22_910_480),
    ("xception", "affine", 22_855_952),  # also Chollet 2017, Table 3
    ("mobilenet_v3_large", "affine", 5_483_032),  # also torchvision's mobilenet_v3_large
    ("mobilenet_v3_large", "all", 5_507_432),
    ("mobilenet_v3_small", "affine", 2_542_856),  # also torchvision's mobilenet_v3_small
    ("mobilenet_v3_small", "all", 2_554_968),
    ("efficientnet_b0", "affine", 5_288_548),
    # Keras' EfficientNetB0 total is 5,330,571: 7 more, its Normalization layer's mean, variance and
    # count, which the config leaves out.
    ("efficientnet_b0", "all", 5_330_571 - 7),
    ("shufflenet_v2", "affine", 2_278_604),       # torchvision's shufflenet_v2_x1_0
]

# Papers' rounded figures: (model, BN vectors counted, low, high) in parameters; the interval is
# the rounding of the published figure.
ROUNDED_PARAMS = [
    ("mobilenet_v1", "none", 4.15e6, 4.25e6),       # 4.2 M, Howard et al. Table 8
    ("xception", "affine", 22.85e6, 22.95e6),       # 22.9 M (Keras applications table)
    ("shufflenet_v1_g3", "affine", 1.865e6, 1.875e6),  # 1.87 M, mmpretrain's table
    ("shufflenet_v1_g3", "all", 1.85e6, 1.95e6),    # ~1.9 M
    ("mobilenet_v3_small", "affine", 2.45e6, 2.55e6),  # 2.5 M, Howard et al. 2019, Table 3
    ("efficientnet_b0", "affine", 5.25e6, 5.35e6),  # 5.3 M, Tan & Le 2019, Table 2
    ("shufflenet_v2", "affine", 2.25e6, 2.35e6),    # 2.3 M, Ma et al. 2018, Table 5
]


@pytest.mark.parametrize("name,bn,expected", EXACT_PARAMS)
def test_params_match_keras_exactly(name, bn, expected):
    assert ref.count_params(load_config(name), bn=bn) == expected


@pytest.mark.parametrize("name,bn,low,high", ROUNDED_PARAMS)
def test_params_match_published_rounding(name, bn, low, high):
    assert low <= ref.count_params(load_config(name), bn=bn) < high


def test_mobilenet_v2_params_against_the_paper():
    # Sandler et al. (Table 4) print 3.4 M; the weights without BN are 3.47 M, so the paper's
    # figure is truncated, not rounded (Keras' exact count is checked above).
    n = ref.count_params(load_config("mobilenet_v2"), bn="none")
    assert n == 3_470_760 and math.floor(n / 1e5) == 34


def test_mobilenet_v3_large_params_against_the_paper():
    # Howard et al. 2019 (Table 3) print 5.4 M for 5.46 M without BN (5.48 M with BN's gamma and beta):
    # truncated, as MobileNet v2's figure.
    n = ref.count_params(load_config("mobilenet_v3_large"), bn="none")
    assert n == 5_458_632 and math.floor(n / 1e5) == 54


@pytest.mark.parametrize("name,published,tolerance", [
    ("mobilenet_v1", 569e6, 0.005),      # Howard et al. Table 8
    ("mobilenet_v2", 300e6, 0.005),      # Sandler et al. Table 4
    ("shufflenet_v1_g3", 137e6, 0.005),  # Zhang et al. Table 1 (the "140 MFLOPs" class)
    # Howard et al. 2019, Table 3: 219 M and 56 M. Counting conv and dense layers only gives 216.6 M
    # for Large (1.1% less), as counters of torchvision's model do.
    ("mobilenet_v3_large", 219e6, 0.015),
    ("mobilenet_v3_small", 56e6, 0.01),
    ("efficientnet_b0", 390e6, 0.015),   # Tan & Le 2019, Table 2: 0.39 B FLOPs (multiply-adds)
    ("shufflenet_v2", 146e6, 0.01),      # Ma et al. 2018, Table 5 (1x): 146 M
])
def test_macs_match_published(name, published, tolerance):
    macs = ref.count_macs(load_config(name))
    assert abs(macs - published) <= tolerance * published, macs


def test_macs_exact():
    # Pinned so a config change that moves the count is noticed; docs/models.md quotes them.
    assert ref.count_macs(load_config("mobilenet_v1")) == 568_740_352
    assert ref.count_macs(load_config("mobilenet_v2")) == 300_774_272
    assert ref.count_macs(load_config("xception")) == 8_357_403_496
    assert ref.count_macs(load_config("shufflenet_v1_g3")) == 137_460_672
    assert ref.count_macs(load_config("mobilenet_v3_large")) == 216_589_760
    assert ref.count_macs(load_config("mobilenet_v3_small")) == 56_510_400
    assert ref.count_macs(load_config("efficientnet_b0")) == 385_814_752
    assert ref.count_macs(load_config("shufflenet_v2")) == 144_907_992
    assert ref.count_macs(load_config("toy_design_doc")) == 9_897
    assert ref.count_params(load_config("shufflenet_v2")) == 2_294_784


# Each new config against the independent PyTorch definition of the ONNX tests (tests/mobile_nets.py):
# the same parameters (PyTorch counts BN's gamma and beta) and, through hooks, the same MACs.
INDEPENDENT = {"mobilenet_v3_large": "mobilenet_v3_large", "mobilenet_v3_small": "mobilenet_v3_small",
               "efficientnet_b0": "efficientnet_b0", "shufflenet_v2": "shufflenet_v2"}


def _torch_macs(torch, net, x) -> int:
    """Multiply-adds of ``net(x)`` counted from its Conv2d and Linear modules' output sizes (hooks)."""
    macs = []

    def hook(module, inputs, output):
        if isinstance(module, torch.nn.Conv2d):
            kh, kw = module.kernel_size
            macs.append(output.numel() * kh * kw * module.in_channels // module.groups)
        elif isinstance(module, torch.nn.Linear):
            macs.append(output.numel() * module.in_features)

    handles = [m.register_forward_hook(hook) for m in net.modules()]
    with torch.no_grad():
        net(x)
    for h in handles:
        h.remove()
    return sum(macs)


@pytest.mark.parametrize("name", list(INDEPENDENT))
def test_counts_agree_with_the_independent_pytorch_definitions(name):
    torch = pytest.importorskip("torch")
    import mobile_nets

    net = mobile_nets.NETWORKS[INDEPENDENT[name]]().eval()
    config = load_config(name)
    assert sum(p.numel() for p in net.parameters()) == ref.count_params(config, bn="affine")
    assert _torch_macs(torch, net, torch.zeros(1, 3, 224, 224)) == ref.count_macs(config)


@pytest.mark.parametrize("name", SHIPPED)
def test_counts_agree_with_the_torch_twin(name):
    """A second, structurally different count: PyTorch modules' parameters and hooked output sizes."""
    torch = pytest.importorskip("torch")
    from pyconv.testing import build_twin

    config = load_config(name)
    twin = build_twin(config, ref.random_weights(config))
    assert _torch_macs(torch, twin, torch.from_numpy(seeded_input(config))) == ref.count_macs(config)
    buffers = sum(b.numel() for n, b in twin.named_buffers() if n.endswith(("running_mean",
                                                                             "running_var")))
    assert sum(p.numel() for p in twin.parameters()) == ref.count_params(config, bn="affine")
    assert buffers == ref.count_params(config, bn="all") - ref.count_params(config, bn="affine")


# --------------------------------------------------------------------------------------------
# The reference itself, against PyTorch's native operators (symmetric padding, where both agree)
# --------------------------------------------------------------------------------------------

def _single_layer(layer: dict, shape) -> dict:
    return {"format": "pyconv-model", "version": 1, "name": "one", "layers": [
        {"name": "input", "type": "input", "shape": list(shape)},
        {"name": "op", "inputs": ["input"], **layer}], "outputs": ["op"]}


@pytest.mark.parametrize("stride,dilation,groups,pad", [
    (1, 1, 1, 0), (2, 1, 1, 1), (1, 2, 2, 2), ((2, 1), (1, 3), 3, (1, 3)), (3, 1, 6, (2, 0))])
def test_reference_conv2d_matches_torch(stride, dilation, groups, pad):
    torch = pytest.importorskip("torch")
    layer = {"type": "conv2d", "filters": 12, "kernel": [3, 2], "stride": stride,
             "dilation": dilation, "groups": groups, "padding": pad}
    config = _single_layer(layer, (11, 13, 6))
    w = ref.random_weights(config, seed=3)
    x = seeded_input(config, batch=2)
    (got,) = ref.run(config, w, x)
    expected = torch.nn.functional.conv2d(
        torch.from_numpy(x).permute(0, 3, 1, 2).double(),
        torch.from_numpy(w["op/kernel"]).permute(3, 2, 0, 1).double(),
        torch.from_numpy(w["op/bias"]).double(), stride=stride, padding=pad, dilation=dilation,
        groups=groups).permute(0, 2, 3, 1).numpy()
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("multiplier,stride,dilation", [(1, 1, 1), (2, 2, 1), (3, 1, 2)])
def test_reference_depthwise_matches_torch(multiplier, stride, dilation):
    torch = pytest.importorskip("torch")
    layer = {"type": "depthwise_conv2d", "kernel": 3, "stride": stride, "dilation": dilation,
             "depth_multiplier": multiplier, "padding": 1}
    config = _single_layer(layer, (9, 8, 5))
    w = ref.random_weights(config, seed=4)
    x = seeded_input(config, batch=2)
    (got,) = ref.run(config, w, x)
    k = torch.from_numpy(w["op/kernel"]).double()  # (KH, KW, C, M)
    expected = torch.nn.functional.conv2d(
        torch.from_numpy(x).permute(0, 3, 1, 2).double(),
        k.reshape(3, 3, -1).permute(2, 0, 1).unsqueeze(1), torch.from_numpy(w["op/bias"]).double(),
        stride=stride, padding=1, dilation=dilation, groups=5).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("pool,stride,pad,ceil,include", [
    (3, 2, 1, False, False), (3, 2, 1, True, False), (3, 2, 1, True, True),
    ((2, 3), (2, 2), (1, 1), True, True), (2, 2, 0, True, False), (3, 3, 1, True, True)])
def test_reference_pooling_matches_torch(kind, pool, stride, pad, ceil, include):
    torch = pytest.importorskip("torch")
    layer = {"type": f"{kind}_pool", "pool": pool, "stride": stride, "padding": pad,
             "ceil_mode": ceil}
    if kind == "avg":
        layer["count_include_pad"] = include
    config = _single_layer(layer, (8, 9, 3))
    x = seeded_input(config, batch=2)
    (got,) = ref.run(config, {}, x)
    t = torch.from_numpy(x).permute(0, 3, 1, 2).double()
    if kind == "max":
        y = torch.nn.functional.max_pool2d(t, pool, stride, pad, ceil_mode=ceil)
    else:
        y = torch.nn.functional.avg_pool2d(t, pool, stride, pad, ceil_mode=ceil,
                                           count_include_pad=include)
    expected = y.permute(0, 2, 3, 1).numpy()
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_reference_tf_same_padding_is_asymmetric():
    # 224 -> 112 with a 3x3 stride-2 kernel: TF pads (0, 1); PyTorch's padding=1 pads (1, 1).
    assert ref.explicit_pads("same", (224, 224), (3, 3), 2) == (0, 1, 0, 1)
    assert ref.explicit_pads("same", (225, 225), (3, 3), 2) == (1, 1, 1, 1)
    assert ref.explicit_pads("same", (147, 147), (3, 3), 2) == (1, 1, 1, 1)
    assert ref.explicit_pads("same", (56, 56), (3, 3), 2) == (0, 1, 0, 1)


def test_reference_channel_shuffle_and_flatten_orders():
    config = {"format": "pyconv-model", "version": 1, "layers": [
        {"name": "input", "type": "input", "shape": [1, 2, 6]},
        {"name": "shuffle", "type": "channel_shuffle", "inputs": ["input"], "groups": 3},
        {"name": "nhwc", "type": "flatten", "inputs": ["input"]},
        {"name": "nchw", "type": "flatten", "inputs": ["input"], "order": "NCHW"}],
        "outputs": ["shuffle", "nhwc", "nchw"]}
    x = np.arange(12.0).reshape(1, 1, 2, 6)
    shuffle, nhwc, nchw = ref.run(config, {}, x)
    # Groups of 2 channels [0 1 | 2 3 | 4 5] interleave to [0 2 4 1 3 5].
    np.testing.assert_array_equal(shuffle[0, 0, 0], [0, 2, 4, 1, 3, 5])
    np.testing.assert_array_equal(nhwc[0], np.arange(12.0))
    np.testing.assert_array_equal(nchw[0], x[0].transpose(2, 0, 1).ravel())


# --------------------------------------------------------------------------------------------
# Reference vs PyTorch twin vs onnxruntime
# --------------------------------------------------------------------------------------------

# One layer of every type and padding form, NCHW input and output, ceil pools, flatten orders.
EVERY_LAYER = {
    "format": "pyconv-model", "version": 1, "name": "every_layer", "output_layout": "NCHW",
    "layers": [
        {"name": "input", "type": "input", "shape": [9, 10, 4], "layout": "NCHW"},
        {"name": "c1", "type": "conv2d", "inputs": ["input"], "filters": 6, "kernel": [3, 2],
         "stride": [2, 1], "padding": "same", "groups": 2, "activation": "relu"},
        {"name": "c2", "type": "conv2d", "inputs": ["input"], "filters": 4, "kernel": 3,
         "dilation": 2, "padding": [[1, 2], [0, 3]]},
        {"name": "c3", "type": "conv2d", "inputs": ["input"], "filters": 2, "kernel": 3,
         "padding": [1, 0], "use_bias": False},
        {"name": "d1", "type": "depthwise_conv2d", "inputs": ["c1"], "kernel": 3, "stride": 2,
         "padding": "same", "depth_multiplier": 2, "activation": "relu6"},
        {"name": "p1", "type": "pointwise_conv2d", "inputs": ["d1"], "filters": 6},
        {"name": "s1", "type": "separable_conv2d", "inputs": ["c1"], "filters": 6, "kernel": 3,
         "stride": 2, "padding": "same", "activation": "relu"},
        {"name": "a1", "type": "add", "inputs": ["p1", "s1"], "activation": "relu6"},
        {"name": "bn", "type": "batch_norm", "inputs": ["a1"], "epsilon": 1e-3},
        {"name": "act", "type": "activation", "inputs": ["bn"], "function": "relu"},
        {"name": "shuffle", "type": "channel_shuffle", "inputs": ["act"], "groups": 3},
        {"name": "mp", "type": "max_pool", "inputs": ["c2"], "pool": 3, "stride": 2, "padding": 1,
         "ceil_mode": True},
        {"name": "ap1", "type": "avg_pool", "inputs": ["c2"], "pool": [3, 2], "stride": 2,
         "padding": [[1, 1], [0, 1]], "ceil_mode": True, "count_include_pad": True},
        {"name": "ap2", "type": "avg_pool", "inputs": ["c2"], "pool": 2, "stride": 1,
         "padding": "same"},
        {"name": "cat", "type": "concat", "inputs": ["mp", "ap1"]},
        {"name": "flat_nchw", "type": "flatten", "inputs": ["shuffle"], "order": "NCHW"},
        {"name": "dense1", "type": "dense", "inputs": ["flat_nchw"], "units": 5,
         "activation": "relu6"},
        {"name": "bn1d", "type": "batch_norm", "inputs": ["dense1"]},
        {"name": "flat_nhwc", "type": "flatten", "inputs": ["shuffle"]},
        {"name": "dense2", "type": "dense", "inputs": ["flat_nhwc"], "units": 4, "use_bias": False},
        {"name": "rs", "type": "reshape", "inputs": ["cat"], "shape": [-1, 8]},
        {"name": "sm1", "type": "softmax", "inputs": ["rs"], "axis": 1},
        {"name": "rs3", "type": "reshape", "inputs": ["cat"], "shape": [25, 1, 8]},
        {"name": "sm4", "type": "softmax", "inputs": ["rs3"], "axis": 1},
        {"name": "gap", "type": "global_avg_pool", "inputs": ["ap2"]},
        {"name": "drop", "type": "dropout", "inputs": ["gap"], "rate": 0.5},
        {"name": "dense3", "type": "dense", "inputs": ["drop"], "units": 3},
        {"name": "probs", "type": "softmax", "inputs": ["dense3"]}],
    "outputs": ["shuffle", "c3", "ap2", "bn1d", "dense2", "sm1", "sm4", "rs3", "probs"],
}


def test_every_layer_config_shapes():
    s = ref.infer_shapes(EVERY_LAYER)
    assert s["c1"] == (5, 10, 6) and s["c2"] == (8, 9, 4) and s["c3"] == (9, 8, 2)
    assert s["d1"] == (3, 5, 12) and s["mp"] == (5, 5, 4) and s["ap1"] == (5, 5, 4)
    assert s["ap2"] == (8, 9, 4) and s["rs"] == (25, 8) and s["rs3"] == (25, 1, 8)
    assert s["sm4"] == (25, 1, 8)


def _twin_outputs(config, weights, x, io_layout=None):
    torch = pytest.importorskip("torch")
    from pyconv.testing import build_twin

    twin = build_twin(config, weights, io_layout=io_layout)
    with torch.no_grad():
        y = twin(torch.from_numpy(x))
    return [t.numpy() for t in (y if isinstance(y, tuple) else (y,))]


def test_twin_matches_reference_on_every_layer_type():
    w = ref.random_weights(EVERY_LAYER, seed=5)
    x = seeded_input(EVERY_LAYER, batch=2)
    expected = ref.run(EVERY_LAYER, w, x)
    got = _twin_outputs(EVERY_LAYER, w, x)
    for name, a, b in zip(EVERY_LAYER["outputs"], got, expected):
        assert a.shape == b.shape, name
        assert rel_err(a, b) < 1e-5, name


def test_twin_io_layout_override():
    config = load_config("toy_design_doc")
    w = ref.random_weights(config, seed=2)
    x = seeded_input(config)
    expected = ref.run(config, w, x)
    got = _twin_outputs(config, w, np.ascontiguousarray(x.transpose(0, 3, 1, 2)), io_layout="NCHW")
    for a, b in zip(got, expected):
        assert rel_err(a.transpose(0, 2, 3, 1), b) < 1e-5


@pytest.mark.parametrize("name", SHIPPED)
def test_twin_matches_reference_on_shipped_models(name):
    config = load_config(name)
    config = dict(config, outputs=comparable_outputs(config))
    w = ref.random_weights(config, seed=0, calibrate=True)
    x = seeded_input(config)
    for a, b in zip(_twin_outputs(config, w, x), ref.run(config, w, x)):
        assert rel_err(a, b) < 1e-4


@pytest.mark.parametrize("name", ["toy_design_doc", "shufflenet_v1_g3"])
def test_onnx_export_runs_in_onnxruntime(name, tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from pyconv.testing import export_onnx

    config = load_config(name)
    config = dict(config, outputs=comparable_outputs(config))
    w = ref.random_weights(config, seed=0, calibrate=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about shape-derived Python ints
        path = export_onnx(config, w, tmp_path / f"{name}.onnx", batch=2, dynamic_batch=True)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == config["outputs"]
    x = seeded_input(config, batch=3)
    for a, b in zip(session.run(None, {"input": x}), ref.run(config, w, x)):
        assert rel_err(a, b) < 1e-4


# --------------------------------------------------------------------------------------------
# End to end: pyconv's graph runtime against the reference (and the twin) on the shipped models
# --------------------------------------------------------------------------------------------

def _flat(layer_weights) -> dict[str, np.ndarray]:
    return {f"{layer}/{p}": a for layer, ps in layer_weights.items() for p, a in ps.items()}


def _pyconv_outputs(model, x, names) -> list[np.ndarray]:
    y = model.run(x)
    return [y[n] for n in names] if isinstance(y, dict) else [y]


@pytest.fixture(scope="module")
def graph():
    # Imported here, not skipped when missing: the config and counting tests above need no build, and a
    # broken pyconv build must fail these tests rather than skip them.
    import pyconv.graph

    return pyconv.graph


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_config_loads_and_runs(graph, name):
    model = graph.load(MODELS / f"{name}.json")
    config = load_config(name)
    x = seeded_input(config)
    y = model.run(x)
    shapes = ref.infer_shapes(config)
    outs = y if isinstance(y, dict) else {config["outputs"][0]: y}
    assert list(outs) == config["outputs"]
    for n, v in outs.items():
        assert v.shape == (1, *shapes[n]) and v.dtype == np.float32 and np.isfinite(v).all()
    if name in CLASSIFIERS:
        np.testing.assert_allclose(outs["predictions"].sum(axis=-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("name", SHIPPED)
def test_summary_totals_match_the_reference_counts(graph, name):
    """The parameter and MAC totals pyconv reports (Model.summary, Model.info) are the counts above."""
    model = graph.load(MODELS / f"{name}.json")
    config = load_config(name)
    assert f"Total params: {ref.count_params(config):,} " in model.summary()
    assert sum(model.info.macs.values()) == ref.count_macs(config)


@pytest.mark.parametrize("name", SHIPPED)
def test_pyconv_matches_reference_with_seeded_weights(graph, name):
    """The loader's own seeded weights, read back through ``Model.weights``, in both the optimised
    (BN folded, activations fused) and the layer-by-layer graph."""
    config = load_config(name)
    outs = comparable_outputs(config)
    sub = dict(config, outputs=outs)
    model = graph.Model(sub, base_dir=MODELS)
    x = seeded_input(config, batch=2)
    expected = ref.run(sub, _flat(model.weights), x)
    plain = graph.Model(sub, base_dir=MODELS, optimize=False)
    for m in (model, plain):
        for n, a, b in zip(outs, _pyconv_outputs(m, x, outs), expected):
            assert a.shape == b.shape, n
            assert rel_err(a, b) < 1e-4, (n, rel_err(a, b))


@pytest.mark.parametrize("optimize", [True, False])
def test_pyconv_matches_reference_on_every_layer_type(graph, optimize):
    w = ref.random_weights(EVERY_LAYER, seed=5)
    x = seeded_input(EVERY_LAYER, batch=2)
    got = graph.Model(EVERY_LAYER, weights=w, optimize=optimize).run(x)
    for name, b in zip(EVERY_LAYER["outputs"], ref.run(EVERY_LAYER, w, x)):
        assert got[name].shape == b.shape, name
        assert rel_err(got[name], b) < 1e-5, name


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_pyconv_matches_reference_with_calibrated_weights(graph, name):
    """Weights whose BN statistics are measured (activations near unit scale, as in a trained net),
    so the softmax is far from one-hot and its comparison means something too."""
    config = load_config(name)
    outs = ["logits", "predictions"]
    sub = dict(config, outputs=outs)
    w = ref.random_weights(sub, seed=7, calibrate=True)
    x = seeded_input(config, batch=2, seed=8)
    expected = ref.run(sub, w, x)
    assert 0.1 < np.abs(expected[0]).max() < 100, "calibrated logits should be O(1)"
    got = _pyconv_outputs(graph.Model(sub, weights=w), x, outs)
    for n, a, b in zip(outs, got, expected):
        assert rel_err(a, b) < 1e-4, (n, rel_err(a, b))


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "xception" else n
                                  for n in CLASSIFIERS])
def test_every_level_matches_the_reference(graph, name):
    """Each shipped classifier at every instruction-set level this CPU runs (pyconv.isa), from one
    model: a level's kernels read the same packed weights."""
    import pyconv

    config = load_config(name)
    outs = ["logits"]
    sub = dict(config, outputs=outs)
    w = ref.random_weights(sub, seed=11, calibrate=True)
    x = seeded_input(config, batch=1, seed=12)
    expected = ref.run(sub, w, x)[0]
    model = graph.Model(sub, weights=w)
    for level in pyconv.isa.supported():
        with pyconv.isa.use(level):
            for threads in (1, 2):
                got = model.run(x, threads=threads)
                assert rel_err(got, expected) < 1e-4, (level, threads, rel_err(got, expected))


@pytest.mark.parametrize("name,hw", [("mobilenet_v3_small", (160, 129)), ("efficientnet_b0", (97, 128)),
                                     ("shufflenet_v2", (128, 96)), ("mobilenet_v1", (99, 131))])
def test_pyconv_runs_the_configs_at_other_sizes(graph, name, hw):
    """A config declares 224x224, but every layer's geometry follows the input: the same model run
    at other (odd, non-square) sizes matches the reference run on the config declared at that size."""
    config = load_config(name)
    sub = dict(config, outputs=["logits"])
    w = ref.random_weights(sub, seed=13, calibrate=True)
    model = graph.Model(sub, weights=w)
    resized = dict(sub, layers=[dict(layer, shape=[*hw, 3]) if layer["type"] == "input" else layer
                                for layer in sub["layers"]])
    x = np.random.default_rng(14).standard_normal((1, *hw, 3)).astype(np.float32)
    assert rel_err(model.run(x), ref.run(resized, w, x)[0]) < 1e-4


@pytest.mark.parametrize("name", SHIPPED)
def test_pyconv_matches_the_torch_twin_with_seeded_weights(graph, name):
    pytest.importorskip("torch")
    config = load_config(name)
    sub = dict(config, outputs=comparable_outputs(config))
    model = graph.Model(sub, base_dir=MODELS)
    x = seeded_input(config, batch=1, seed=3)
    # The twin takes Model.weights as they are (nested by layer).
    for a, b in zip(_pyconv_outputs(model, x, sub["outputs"]), _twin_outputs(sub, model.weights, x)):
        assert rel_err(a, b) < 1e-4


def test_twin_reads_a_config_path():
    torch = pytest.importorskip("torch")
    from pyconv.testing import build_twin

    config = load_config("toy_design_doc")
    w = ref.random_weights(config)
    x = seeded_input(config)
    with torch.no_grad():
        got = build_twin(MODELS / "toy_design_doc.json", w)(torch.from_numpy(x))
    for a, b in zip(got, ref.run(config, w, x)):
        assert rel_err(a.numpy(), b) < 1e-5


def test_twin_without_torch_raises_a_clear_import_error(monkeypatch):
    from pyconv.testing import build_twin

    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match="needs PyTorch"):
        build_twin(load_config("toy_design_doc"), {})
