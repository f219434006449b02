"""Generate the shipped model configs (docs/model-format.md) from the papers' architecture tables.

Running ``python models/build_configs.py`` rewrites every ``models/*.json`` next to this script; the
output is deterministic, so the committed JSON is exactly what this script produces
(``--check`` verifies that without writing). No weights files are written: the configs say
``"weights": null`` and the loader generates seeded weights.

Layer names follow Keras' applications where a Keras model exists, so a layer can be matched to a
pretrained checkpoint by name. Spatial padding is TensorFlow "same" wherever TF/Keras pads; see
docs/models.md for where PyTorch's symmetric padding would differ.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# relu6(x + 3) / 6 as clip(alpha * x + beta, 0, 1): Keras' and PyTorch's hard sigmoid (ONNX's
# HardSigmoid defaults to alpha 0.2).
HARD_SIGMOID = {"alpha": 1 / 6, "beta": 0.5}


class Graph:
    """Accumulates layers; each helper returns the name of the layer it added."""

    def __init__(self, name: str, input_shape: list[int]):
        self.name = name
        self.layers: list[dict] = [
            {"name": "input", "type": "input", "shape": list(input_shape), "layout": "NHWC"}
        ]

    def add(self, name: str, type_: str, inputs: list[str] | str, **fields) -> str:
        if isinstance(inputs, str):
            inputs = [inputs]
        self.layers.append({"name": name, "type": type_, "inputs": list(inputs), **fields})
        return name

    def conv_bn(self, name: str, x: str, filters: int, kernel: int, stride: int = 1,
                padding="same", groups: int = 1, activation: str | None = None,
                bn_name: str | None = None, act_name: str | None = None) -> str:
        fields = {"filters": filters, "kernel": kernel, "stride": stride, "padding": padding}
        if groups != 1:
            fields["groups"] = groups
        fields["use_bias"] = False
        x = self.add(name, "conv2d", x, **fields)
        return self.bn_act(x, activation, bn_name or f"{name}_bn", act_name or f"{name}_{activation}")

    def dw_bn(self, name: str, x: str, stride: int = 1, activation: str | None = None,
              bn_name: str | None = None, act_name: str | None = None, kernel: int = 3) -> str:
        x = self.add(name, "depthwise_conv2d", x, kernel=kernel, stride=stride, padding="same",
                     use_bias=False)
        return self.bn_act(x, activation, bn_name or f"{name}_bn", act_name or f"{name}_{activation}")

    def bn_act(self, x: str, activation: str | None, bn_name: str, act_name: str,
               epsilon: float = 1e-3) -> str:
        x = self.add(bn_name, "batch_norm", x, epsilon=epsilon)
        if activation is not None:
            x = self.act(act_name, x, activation)
        return x

    def act(self, name: str, x: str, function: str) -> str:
        """An activation layer; "hard_sigmoid" is Keras' and PyTorch's relu6(x + 3) / 6."""
        params = HARD_SIGMOID if function == "hard_sigmoid" else {}
        return self.add(name, "activation", x, function=function, **params)

    def squeeze_excite(self, prefix: str, x: str, reduced: int, channels: int, names: dict,
                       act: str, gate: str, fuse: bool) -> str:
        """Global pool, reshape to 1x1xC, 1x1 conv (bias) + ``act``, 1x1 conv (bias) + ``gate``, and
        the input multiplied by the resulting (1, 1, C) scale. ``fuse`` puts the activations in the
        convolutions (Keras' EfficientNet) rather than in layers of their own (MobileNetV3)."""
        s = self.add(prefix + names["pool"], "global_avg_pool", x)
        s = self.add(prefix + names["reshape"], "reshape", s, shape=[1, 1, channels])
        for conv, filters, fn in ((names["reduce"], reduced, act), (names["expand"], channels, gate)):
            fused = {"activation": fn} if fuse else {}
            s = self.add(prefix + conv, "pointwise_conv2d", s, filters=filters, **fused)
            if not fuse:
                s = self.act(prefix + names[fn], s, fn)
        return self.add(prefix + names["scale"], "multiply", [x, s])

    def head(self, x: str, classes: int = 1000, dropout: float | None = None) -> str:
        x = self.add("global_pool", "global_avg_pool", x)
        if dropout is not None:
            x = self.add("dropout", "dropout", x, rate=dropout)
        x = self.add("logits", "dense", x, units=classes)
        return self.add("predictions", "softmax", x)

    def config(self, outputs: list[str], description: str, source: str, **metadata) -> dict:
        return {
            "format": "pyconv-model",
            "version": 1,
            "name": self.name,
            "description": description,
            "metadata": {"source": source, **metadata, "generator": "models/build_configs.py"},
            "weights": None,
            "seed": 0,
            "layers": self.layers,
            "outputs": outputs,
        }


def mobilenet_v1() -> dict:
    """MobileNet v1, width 1.0, 224x224 (Howard et al. 2017, Table 1).

    relu6 as in Keras' implementation (the paper writes ReLU); BN epsilon 1e-3 as Keras. The paper's
    FC layer is a dense layer; Keras' 1x1 conv on the pooled 1x1 map has the same parameters and MACs.
    """
    g = Graph("mobilenet_v1", [224, 224, 3])
    x = g.conv_bn("conv1", "input", 32, 3, stride=2, activation="relu6")
    # (pointwise filters, depthwise stride) for the 13 depthwise-separable blocks of Table 1.
    blocks = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
              (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)]
    for i, (filters, stride) in enumerate(blocks, start=1):
        x = g.dw_bn(f"conv_dw_{i}", x, stride=stride, activation="relu6")
        x = g.conv_bn(f"conv_pw_{i}", x, filters, 1, activation="relu6")
    return g.config([g.head(x, dropout=1e-3)],
                    "MobileNet v1, width 1.0, 224x224, ReLU6 (as Keras), TensorFlow 'same' padding",
                    "Howard et al. 2017, arXiv:1704.04861, Table 1",
                    layer_names="Keras applications.MobileNet",
                    preprocessing="RGB scaled to [-1, 1] (Keras' convention for its checkpoints)")


def _make_divisible(v: float, divisor: int = 8) -> int:
    # Keras/TF-slim channel rounding; identity at width 1.0 except where noted in the paper.
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def mobilenet_v2() -> dict:
    """MobileNet v2, width 1.0, 224x224 (Sandler et al. 2018, Table 2), layer names as Keras."""
    g = Graph("mobilenet_v2", [224, 224, 3])
    x = g.conv_bn("Conv1", "input", 32, 3, stride=2, activation="relu6", bn_name="bn_Conv1",
                  act_name="Conv1_relu")
    in_ch = 32
    # Table 2 rows: expansion t, output channels c, repeats n, first stride s.
    table = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
             (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
    block = 0
    for t, c, n, s in table:
        out_ch = _make_divisible(c)
        for i in range(n):
            stride = s if i == 0 else 1
            prefix = "expanded_conv" if block == 0 else f"block_{block}"
            inp = x
            if t != 1:
                x = g.conv_bn(f"{prefix}_expand", x, in_ch * t, 1, activation="relu6",
                              bn_name=f"{prefix}_expand_BN", act_name=f"{prefix}_expand_relu")
            x = g.dw_bn(f"{prefix}_depthwise", x, stride=stride, activation="relu6",
                        bn_name=f"{prefix}_depthwise_BN", act_name=f"{prefix}_depthwise_relu")
            # Linear bottleneck: the projection has BN but no activation.
            x = g.conv_bn(f"{prefix}_project", x, out_ch, 1, bn_name=f"{prefix}_project_BN")
            if stride == 1 and in_ch == out_ch:
                x = g.add(f"{prefix}_add", "add", [inp, x])
            in_ch = out_ch
            block += 1
    x = g.conv_bn("Conv_1", x, 1280, 1, activation="relu6", bn_name="Conv_1_bn", act_name="out_relu")
    return g.config([g.head(x)],
                    "MobileNet v2, width 1.0, 224x224, TensorFlow 'same' padding",
                    "Sandler et al. 2018, arXiv:1801.04381, Table 2",
                    layer_names="Keras applications.MobileNetV2",
                    preprocessing="RGB scaled to [-1, 1] (Keras' convention for its checkpoints)")


def xception() -> dict:
    """Xception, 299x299 (Chollet 2017, Fig. 5), as Keras' implementation.

    The two entry convolutions are unpadded ("valid") in Keras; everything else is "same".
    Separable convolutions have no bias and are followed by BN; residual 1x1 stride-2 convolutions too.
    """
    g = Graph("xception", [299, 299, 3])

    def sep(name: str, x: str, filters: int, pre_relu: bool, relu_name: str | None = None) -> str:
        # Keras applies ReLU *before* most separable convs (Fig. 5), so it is a separate layer here.
        if pre_relu:
            x = g.add(relu_name or f"{name}_act", "activation", x, function="relu")
        x = g.add(name, "separable_conv2d", x, filters=filters, kernel=3, padding="same",
                  use_bias=False)
        return g.add(f"{name}_bn", "batch_norm", x, epsilon=1e-3)

    x = g.conv_bn("block1_conv1", "input", 32, 3, stride=2, padding="valid", activation="relu",
                  act_name="block1_conv1_act")
    x = g.conv_bn("block1_conv2", x, 64, 3, padding="valid", activation="relu",
                  act_name="block1_conv2_act")

    # Entry flow: blocks 2-4, each halving the resolution, with a 1x1 stride-2 conv+BN shortcut.
    for block, filters in ((2, 128), (3, 256), (4, 728)):
        res = g.conv_bn(f"block{block}_residual", x, filters, 1, stride=2)
        y = sep(f"block{block}_sepconv1", x, filters, pre_relu=block != 2)
        y = sep(f"block{block}_sepconv2", y, filters, pre_relu=True)
        y = g.add(f"block{block}_pool", "max_pool", y, pool=3, stride=2, padding="same")
        x = g.add(f"block{block}_add", "add", [y, res])

    # Middle flow: 8 identical residual blocks of three separable convs.
    for block in range(5, 13):
        y = x
        for i in (1, 2, 3):
            y = sep(f"block{block}_sepconv{i}", y, 728, pre_relu=True)
        x = g.add(f"block{block}_add", "add", [y, x])

    # Exit flow.
    res = g.conv_bn("block13_residual", x, 1024, 1, stride=2)
    y = sep("block13_sepconv1", x, 728, pre_relu=True)
    y = sep("block13_sepconv2", y, 1024, pre_relu=True)
    y = g.add("block13_pool", "max_pool", y, pool=3, stride=2, padding="same")
    x = g.add("block13_add", "add", [y, res])
    x = sep("block14_sepconv1", x, 1536, pre_relu=False)
    x = g.add("block14_sepconv1_act", "activation", x, function="relu")
    x = sep("block14_sepconv2", x, 2048, pre_relu=False)
    x = g.add("block14_sepconv2_act", "activation", x, function="relu")
    return g.config([g.head(x)],
                    "Xception, 299x299; entry convolutions unpadded, everything else TensorFlow 'same'",
                    "Chollet 2017, arXiv:1610.02357, Figure 5",
                    layer_names="Keras applications.Xception",
                    preprocessing="RGB scaled to [-1, 1] (Keras' convention for its checkpoints)")


def shufflenet_v1_g3() -> dict:
    """ShuffleNet v1 1x, g=3, 224x224 (Zhang et al. 2017, Table 1 and Fig. 2).

    Bottleneck width is 1/4 of the stage's output channels. A stride-2 unit's branch produces
    (stage output - unit input) channels and is concatenated with a 3x3 stride-2 average pool of
    the input; stride-1 units add. The first pointwise conv of stage 2 is not grouped (24 input
    channels). Pools pad TF "same"; padded taps are excluded from averages (count_include_pad false).
    """
    groups = 3
    g = Graph("shufflenet_v1_g3", [224, 224, 3])
    x = g.conv_bn("conv1", "input", 24, 3, stride=2, activation="relu")
    x = g.add("maxpool", "max_pool", x, pool=3, stride=2, padding="same")
    in_ch = 24
    for stage, (out_ch, repeats) in enumerate(((240, 4), (480, 8), (960, 4)), start=2):
        mid = out_ch // 4
        for unit in range(1, repeats + 1):
            p = f"stage{stage}_unit{unit}"
            stride = 2 if unit == 1 else 1
            first_groups = 1 if (stage == 2 and unit == 1) else groups
            branch_out = out_ch - in_ch if stride == 2 else out_ch
            y = g.conv_bn(f"{p}_gconv1", x, mid, 1, groups=first_groups, activation="relu")
            y = g.add(f"{p}_shuffle", "channel_shuffle", y, groups=groups)
            y = g.dw_bn(f"{p}_dwconv", y, stride=stride)
            y = g.conv_bn(f"{p}_gconv2", y, branch_out, 1, groups=groups)
            if stride == 2:
                short = g.add(f"{p}_shortcut_pool", "avg_pool", x, pool=3, stride=2, padding="same",
                              count_include_pad=False)
                y = g.add(f"{p}_concat", "concat", [short, y])
                x = g.add(f"{p}_relu", "activation", y, function="relu")
            else:
                x = g.add(f"{p}_add", "add", [y, x], activation="relu")
            in_ch = out_ch
    return g.config([g.head(x)],
                    "ShuffleNet v1 1x, g=3, 224x224, TensorFlow 'same' padding",
                    "Zhang et al. 2017, arXiv:1707.01083, Table 1 and Figure 2")


# MobileNetV3 rows (Howard et al. 2019, Tables 1 and 2) as Keras writes them: expansion ratio (of the
# block input), output channels, kernel, stride, squeeze-and-excite, activation.
MOBILENET_V3_LARGE = [
    (1, 16, 3, 1, False, "relu"), (4, 24, 3, 2, False, "relu"), (3, 24, 3, 1, False, "relu"),
    (3, 40, 5, 2, True, "relu"), (3, 40, 5, 1, True, "relu"), (3, 40, 5, 1, True, "relu"),
    (6, 80, 3, 2, False, "hard_swish"), (2.5, 80, 3, 1, False, "hard_swish"),
    (2.3, 80, 3, 1, False, "hard_swish"), (2.3, 80, 3, 1, False, "hard_swish"),
    (6, 112, 3, 1, True, "hard_swish"), (6, 112, 3, 1, True, "hard_swish"),
    (6, 160, 5, 2, True, "hard_swish"), (6, 160, 5, 1, True, "hard_swish"),
    (6, 160, 5, 1, True, "hard_swish")]
MOBILENET_V3_SMALL = [
    (1, 16, 3, 2, True, "relu"), (72 / 16, 24, 3, 2, False, "relu"), (88 / 24, 24, 3, 1, False, "relu"),
    (4, 40, 5, 2, True, "hard_swish"), (6, 40, 5, 1, True, "hard_swish"),
    (6, 40, 5, 1, True, "hard_swish"), (3, 48, 5, 1, True, "hard_swish"),
    (3, 48, 5, 1, True, "hard_swish"), (6, 96, 5, 2, True, "hard_swish"),
    (6, 96, 5, 1, True, "hard_swish"), (6, 96, 5, 1, True, "hard_swish")]
V3_SE_NAMES = {"pool": "squeeze_excite/AvgPool", "reshape": "squeeze_excite/reshape",
               "reduce": "squeeze_excite/Conv", "relu": "squeeze_excite/Relu",
               "expand": "squeeze_excite/Conv_1", "hard_sigmoid": "squeeze_excite/hard_sigmoid",
               "scale": "squeeze_excite/Mul"}


def _mobilenet_v3(variant: str, rows: list, last_point: int) -> dict:
    """MobileNetV3, width 1.0, 224x224, as Keras' applications.MobileNetV3Large/Small.

    Each block: 1x1 expansion + BN + activation (not in the first block), depthwise k x k + BN +
    activation, squeeze-and-excite (a quarter of the expansion, rounded to 8; ReLU, hard sigmoid),
    1x1 projection + BN, and an add when the stride is 1 and the channels match. The last 1x1 conv
    (6x the last block's output) has BN; after the pool, a 1x1 conv (dense) of ``last_point`` with
    bias and hard-swish, no BN (the paper's NBN), then the classifier.
    """
    g = Graph(f"mobilenet_v3_{variant}", [224, 224, 3])
    x = g.conv_bn("Conv", "input", 16, 3, stride=2, activation="hard_swish", bn_name="Conv/BatchNorm",
                  act_name="Conv/hard_swish")
    in_ch = 16
    for block, (expansion, filters, kernel, stride, se, act) in enumerate(rows):
        prefix = f"expanded_conv_{block}/" if block else "expanded_conv/"
        inp = x
        mid = in_ch
        if block:
            mid = _make_divisible(in_ch * expansion)
            x = g.conv_bn(prefix + "expand", x, mid, 1, activation=act,
                          bn_name=prefix + "expand/BatchNorm", act_name=f"{prefix}expand/{act}")
        x = g.dw_bn(prefix + "depthwise", x, stride=stride, kernel=kernel, activation=act,
                    bn_name=prefix + "depthwise/BatchNorm", act_name=f"{prefix}depthwise/{act}")
        if se:
            x = g.squeeze_excite(prefix, x, _make_divisible(mid * 0.25), mid, V3_SE_NAMES,
                                 "relu", "hard_sigmoid", fuse=False)
        x = g.conv_bn(prefix + "project", x, filters, 1, bn_name=prefix + "project/BatchNorm")
        if stride == 1 and in_ch == filters:
            x = g.add(prefix + "Add", "add", [inp, x])
        in_ch = filters
    x = g.conv_bn("Conv_1", x, in_ch * 6, 1, activation="hard_swish", bn_name="Conv_1/BatchNorm",
                  act_name="Conv_1/hard_swish")
    x = g.add("global_pool", "global_avg_pool", x)
    x = g.add("Conv_2", "dense", x, units=last_point)
    x = g.act("Conv_2/hard_swish", x, "hard_swish")
    x = g.add("dropout", "dropout", x, rate=0.2)
    x = g.add("logits", "dense", x, units=1000)
    table = "Tables 1 and 3" if variant == "large" else "Tables 2 and 3"
    return g.config([g.add("predictions", "softmax", x)],
                    f"MobileNetV3-{variant.capitalize()}, width 1.0, 224x224, hard-swish and "
                    "squeeze-and-excitation, TensorFlow 'same' padding",
                    f"Howard et al. 2019, arXiv:1905.02244, {table}",
                    layer_names=f"Keras applications.MobileNetV3{variant.capitalize()}",
                    preprocessing="RGB scaled to [-1, 1] (Keras' model does this itself in a Rescaling "
                                  "layer, which this config leaves out)")


def mobilenet_v3_large() -> dict:
    return _mobilenet_v3("large", MOBILENET_V3_LARGE, 1280)


def mobilenet_v3_small() -> dict:
    return _mobilenet_v3("small", MOBILENET_V3_SMALL, 1024)


EFFICIENTNET_SE_NAMES = {"pool": "se_squeeze", "reshape": "se_reshape", "reduce": "se_reduce",
                         "expand": "se_expand", "scale": "se_excite"}


def efficientnet_b0() -> dict:
    """EfficientNet-B0, 224x224 (Tan & Le 2019, Table 1), as Keras' applications.EfficientNetB0.

    MBConv blocks: 1x1 expansion + BN + SiLU (not when the ratio is 1), depthwise k x k + BN + SiLU,
    squeeze-and-excite to a quarter of the block *input* channels (SiLU, sigmoid), 1x1 projection +
    BN, and (stride 1, same channels) a dropout (Keras' drop-connect, identity at inference) and an
    add. Head: 1x1 conv 1280 + BN + SiLU, pool, dropout 0.2, dense 1000.
    """
    g = Graph("efficientnet_b0", [224, 224, 3])
    x = g.conv_bn("stem_conv", "input", 32, 3, stride=2, activation="silu", bn_name="stem_bn",
                  act_name="stem_activation")
    # Table 1 stages 2-8: expansion, kernel, stride, output channels, repeats.
    stages = [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
              (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)]
    total = sum(s[-1] for s in stages)
    in_ch, b = 32, 0
    for i, (expand, kernel, first_stride, filters, repeats) in enumerate(stages, start=1):
        for j in range(repeats):
            p = f"block{i}{chr(ord('a') + j)}_"
            stride = first_stride if j == 0 else 1
            inp, mid = x, in_ch * expand
            if expand != 1:
                x = g.conv_bn(p + "expand_conv", x, mid, 1, activation="silu", bn_name=p + "expand_bn",
                              act_name=p + "expand_activation")
            x = g.dw_bn(p + "dwconv", x, stride=stride, kernel=kernel, activation="silu",
                        bn_name=p + "bn", act_name=p + "activation")
            x = g.squeeze_excite(p, x, max(1, int(in_ch * 0.25)), mid, EFFICIENTNET_SE_NAMES,
                                 "silu", "sigmoid", fuse=True)
            x = g.conv_bn(p + "project_conv", x, filters, 1, bn_name=p + "project_bn")
            if stride == 1 and in_ch == filters:
                x = g.add(p + "drop", "dropout", x, rate=0.2 * b / total)
                x = g.add(p + "add", "add", [x, inp])
            in_ch = filters
            b += 1
    x = g.conv_bn("top_conv", x, 1280, 1, activation="silu", bn_name="top_bn",
                  act_name="top_activation")
    x = g.add("avg_pool", "global_avg_pool", x)
    x = g.add("top_dropout", "dropout", x, rate=0.2)
    x = g.add("logits", "dense", x, units=1000)
    return g.config([g.add("predictions", "softmax", x)],
                    "EfficientNet-B0, 224x224, SiLU and squeeze-and-excitation, TensorFlow 'same' "
                    "padding",
                    "Tan & Le 2019, arXiv:1905.11946, Table 1",
                    layer_names="Keras applications.EfficientNetB0",
                    preprocessing="RGB in [0, 1] normalised by the ImageNet mean and standard deviation "
                                  "(Keras' model does this itself in Rescaling and Normalization layers, "
                                  "which this config leaves out)")


def shufflenet_v2() -> dict:
    """ShuffleNet v2 1.0x, 224x224 (Ma et al. 2018, Table 5 and Figure 3).

    conv 3x3/2 (24) + BN + ReLU, max pool 3x3/2, stages of 4, 8, 4 units with 116, 232, 464 output
    channels, conv 1x1 1024 + BN + ReLU, pool, dense 1000. A stride-1 unit splits its input into two
    channel halves (two ``slice`` layers): the first passes unchanged, the second goes through 1x1 +
    BN + ReLU, depthwise 3x3 + BN, 1x1 + BN + ReLU; the halves are concatenated and shuffled (2
    groups). A stride-2 unit feeds the whole input to two branches (depthwise 3x3/2 + BN, 1x1 + BN +
    ReLU; and the branch above with a stride-2 depthwise), each producing half the output channels.
    """
    g = Graph("shufflenet_v2", [224, 224, 3])
    x = g.conv_bn("conv1", "input", 24, 3, stride=2, activation="relu")
    x = g.add("maxpool", "max_pool", x, pool=3, stride=2, padding="same")
    in_ch = 24
    for stage, (out_ch, repeats) in enumerate(((116, 4), (232, 8), (464, 4)), start=2):
        half = out_ch // 2
        for unit in range(1, repeats + 1):
            p = f"stage{stage}_unit{unit}"
            stride = 2 if unit == 1 else 1
            if stride == 1:
                passed = g.add(f"{p}_split1", "slice", x, axis=-1, start=0, stop=half)
                y = g.add(f"{p}_split2", "slice", x, axis=-1, start=half, stop=None)
            else:
                passed = g.dw_bn(f"{p}_branch1_dwconv", x, stride=2)
                passed = g.conv_bn(f"{p}_branch1_conv", passed, half, 1, activation="relu")
                y = x
            y = g.conv_bn(f"{p}_branch2_conv1", y, half, 1, activation="relu")
            y = g.dw_bn(f"{p}_branch2_dwconv", y, stride=stride)
            y = g.conv_bn(f"{p}_branch2_conv2", y, half, 1, activation="relu")
            y = g.add(f"{p}_concat", "concat", [passed, y])
            x = g.add(f"{p}_shuffle", "channel_shuffle", y, groups=2)
            in_ch = out_ch
    x = g.conv_bn("conv5", x, 1024, 1, activation="relu")
    return g.config([g.head(x)],
                    "ShuffleNet v2 1.0x, 224x224, TensorFlow 'same' padding",
                    "Ma et al. 2018, arXiv:1807.11164, Table 5 and Figure 3")


def toy_design_doc() -> dict:
    """The worked examples of the convolution-strategies design document as one runnable graph.

    A 5x5x3 image; a standard 3x3 conv to 4 maps with and without "same" padding; a depthwise 3x3
    conv (one kernel per channel, 3 maps) followed by a pointwise conv to 4 maps, and the same pair
    fused as one separable conv; the depthwise case written as a group conv with G = C = N = 3; and a
    group conv with 2 groups over the 8 maps of the standard and separable paths (each group: 4 input
    maps -> 2 output maps, as in the document's figure).
    """
    g = Graph("toy_design_doc", [5, 5, 3])
    same = g.add("conv_same", "conv2d", "input", filters=4, kernel=3, padding="same")
    valid = g.add("conv_valid", "conv2d", "input", filters=4, kernel=3, padding="valid")
    dw = g.add("depthwise", "depthwise_conv2d", "input", kernel=3, padding="same")
    pw = g.add("pointwise", "pointwise_conv2d", dw, filters=4)
    sepc = g.add("separable", "separable_conv2d", "input", filters=4, kernel=3, padding="same")
    dw_as_group = g.add("depthwise_as_group_conv", "conv2d", "input", filters=3, kernel=3,
                        padding="same", groups=3)
    both = g.add("concat", "concat", [same, pw])
    grouped = g.add("group_conv", "conv2d", both, filters=4, kernel=3, padding="same", groups=2)
    return g.config([same, valid, dw, pw, sepc, dw_as_group, grouped],
                    "The convolution-strategies design document's examples as one runnable graph",
                    "docs: convolution strategies (standard, depthwise separable, group convolution)")


MODELS = {
    "mobilenet_v1": mobilenet_v1,
    "mobilenet_v2": mobilenet_v2,
    "xception": xception,
    "shufflenet_v1_g3": shufflenet_v1_g3,
    "mobilenet_v3_large": mobilenet_v3_large,
    "mobilenet_v3_small": mobilenet_v3_small,
    "efficientnet_b0": efficientnet_b0,
    "shufflenet_v2": shufflenet_v2,
    "toy_design_doc": toy_design_doc,
}


def render(config: dict) -> str:
    """JSON text with one layer per line: diffable, and stable byte-for-byte."""
    def dump(v) -> str:
        return json.dumps(v, separators=(", ", ": "))

    head = [f'  "{k}": {dump(v)}' for k, v in config.items() if k not in ("layers", "outputs")]
    layers = ",\n".join(f"    {dump(layer)}" for layer in config["layers"])
    return ("{\n" + ",\n".join(head) + ',\n  "layers": [\n' + layers + "\n  ],\n"
            + f'  "outputs": {dump(config["outputs"])}\n' + "}\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if a committed config differs from the generated one")
    parser.add_argument("--out", type=Path, default=HERE, help="directory to write to")
    args = parser.parse_args(argv)
    stale = []
    for name, build in MODELS.items():
        path = args.out / f"{name}.json"
        text = render(build())
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(path.name)
        else:
            path.write_text(text)
    if stale:
        print("out of date: " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
