"""PyTorch definitions of today's mobile CNNs for the ONNX import tests: MobileNetV3-Large and -Small,
EfficientNet-B0, ShuffleNetV2, MixNet-S, GhostNet, and two more (PP-LCNet and ReXNet) as a check that
the importer is general rather than fitted to the named ones.

Written from the papers' architecture tables (cross-read with the reference implementations whose
parameter counts the papers quote: torchvision for MobileNetV3, EfficientNet and ShuffleNetV2, the
authors' code for GhostNet, timm for MixNet, LCNet and ReXNet), independently of ``pyconv.testing``
and of models/build_configs.py. Every network takes a width multiplier and any input size (global
average pooling before the classifier); the exported graphs therefore show each architecture's own
ONNX patterns: hard-swish/SiLU written as ``x * gate(x)``, squeeze-and-excitation as ``Mul`` by a
broadcast (N, C, 1, 1) scale, ShuffleNetV2's ``chunk`` and MixNet's per-kernel channel groups as
``Split``, channel shuffle as ``Reshape``/``Transpose``, GhostNet's ``Slice`` of a concatenation and
ReXNet's partial residual (``Slice``, ``Add``, ``Concat``).

Batch norms are left fresh here; ``onnx_models.randomize_bn`` gives them non-trivial statistics.
``python tests/mobile_nets.py`` prints the ONNX operator types of every network's export.
"""
from __future__ import annotations

import collections
import math
from typing import Callable, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

Act = Callable[[], nn.Module]


def make_divisible(v: float, divisor: int = 8, min_value: Optional[int] = None) -> int:
    """The channel rounding of the MobileNet family (TF-slim): nearest multiple of ``divisor``, never
    more than 10% below ``v``."""
    min_value = divisor if min_value is None else min_value
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


class ConvBNAct(nn.Sequential):
    """Conv (no bias, symmetric "same" padding for odd kernels) + BN + optional activation."""

    def __init__(self, cin: int, cout: int, k: int = 1, stride: int = 1, groups: int = 1,
                 act: Optional[Act] = nn.ReLU) -> None:
        layers = [nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
                  nn.BatchNorm2d(cout)]
        super().__init__(*layers, *([act()] if act is not None else []))


class SqueezeExcite(nn.Module):
    """Global pool, 1x1 conv to ``reduced`` (+ BN in ReXNet) + ``act``, 1x1 conv back + ``gate``, and
    the input scaled channel-wise by the result."""

    def __init__(self, channels: int, reduced: int, act: Act = nn.ReLU, gate: Act = nn.Sigmoid,
                 norm: bool = False) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, reduced, 1)
        self.bn = nn.BatchNorm2d(reduced) if norm else nn.Identity()
        self.act = act()
        self.expand = nn.Conv2d(reduced, channels, 1)
        self.gate = gate()

    def forward(self, x):
        s = x.mean((2, 3), keepdim=True)
        return x * self.gate(self.expand(self.act(self.bn(self.reduce(s)))))


class Classifier(nn.Module):
    """Global average pool, optional 1x1 "head" (dense with bias, no BN) + activation, dropout and the
    final dense layer: the logits (no softmax, so comparisons see the raw scores)."""

    def __init__(self, cin: int, classes: int, hidden: Optional[int] = None, act: Act = nn.ReLU,
                 dropout: float = 0.2) -> None:
        super().__init__()
        self.hidden = nn.Sequential(nn.Linear(cin, hidden), act()) if hidden else nn.Identity()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden or cin, classes)

    def forward(self, x):
        return self.fc(self.dropout(self.hidden(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))))


# --- MobileNetV3 (Howard et al. 2019, Tables 1 and 2) -------------------------------------------------

# (kernel, expanded channels, output channels, SE, activation "RE"/"HS", stride)
MOBILENET_V3 = {
    "large": ([(3, 16, 16, False, "RE", 1), (3, 64, 24, False, "RE", 2), (3, 72, 24, False, "RE", 1),
               (5, 72, 40, True, "RE", 2), (5, 120, 40, True, "RE", 1), (5, 120, 40, True, "RE", 1),
               (3, 240, 80, False, "HS", 2), (3, 200, 80, False, "HS", 1), (3, 184, 80, False, "HS", 1),
               (3, 184, 80, False, "HS", 1), (3, 480, 112, True, "HS", 1), (3, 672, 112, True, "HS", 1),
               (5, 672, 160, True, "HS", 2), (5, 960, 160, True, "HS", 1), (5, 960, 160, True, "HS", 1)],
              960, 1280),
    "small": ([(3, 16, 16, True, "RE", 2), (3, 72, 24, False, "RE", 2), (3, 88, 24, False, "RE", 1),
               (5, 96, 40, True, "HS", 2), (5, 240, 40, True, "HS", 1), (5, 240, 40, True, "HS", 1),
               (5, 120, 48, True, "HS", 1), (5, 144, 48, True, "HS", 1), (5, 288, 96, True, "HS", 2),
               (5, 576, 96, True, "HS", 1), (5, 576, 96, True, "HS", 1)],
              576, 1024),
}


class _V3Block(nn.Module):
    def __init__(self, cin: int, k: int, exp: int, cout: int, se: bool, act: Act, stride: int) -> None:
        super().__init__()
        layers = [ConvBNAct(cin, exp, 1, act=act)] if exp != cin else []
        layers.append(ConvBNAct(exp, exp, k, stride, groups=exp, act=act))
        if se:
            # The SE bottleneck is a quarter of the expansion width; its gate is the hard sigmoid.
            layers.append(SqueezeExcite(exp, make_divisible(exp // 4), nn.ReLU, nn.Hardsigmoid))
        layers.append(ConvBNAct(exp, cout, 1, act=None))
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.body(x) if self.residual else self.body(x)


class MobileNetV3(nn.Module):
    """``variant`` "large" or "small"; the last stage's 1x1 conv (960 / 576) has BN, the 1280 / 1024
    head after the pool has a bias and no BN, as the paper's NBN rows."""

    def __init__(self, variant: str = "large", width: float = 1.0, classes: int = 1000) -> None:
        super().__init__()
        rows, last_conv, head = MOBILENET_V3[variant]
        c = lambda n: make_divisible(n * width)  # noqa: E731
        layers = [ConvBNAct(3, c(16), 3, 2, act=nn.Hardswish)]
        cin = c(16)
        for k, exp, cout, se, nl, s in rows:
            layers.append(_V3Block(cin, k, c(exp), c(cout), se, nn.ReLU if nl == "RE" else nn.Hardswish, s))
            cin = c(cout)
        layers.append(ConvBNAct(cin, c(last_conv), 1, act=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.classifier = Classifier(c(last_conv), classes, head, nn.Hardswish)

    def forward(self, x):
        return self.classifier(self.features(x))


# --- EfficientNet-B0 (Tan & Le 2019, Table 1) ---------------------------------------------------------

# (expansion, kernel, stride, output channels, repeats)
EFFICIENTNET_B0 = [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
                   (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)]


class _MBConv(nn.Module):
    def __init__(self, cin: int, cout: int, expand: int, k: int, stride: int, se_ratio: float = 0.25) -> None:
        super().__init__()
        mid = cin * expand
        layers = [ConvBNAct(cin, mid, 1, act=nn.SiLU)] if expand != 1 else []
        # SE width is a quarter of the block *input* (not of the expansion), as the reference code.
        layers += [ConvBNAct(mid, mid, k, stride, groups=mid, act=nn.SiLU),
                   SqueezeExcite(mid, max(1, int(cin * se_ratio)), nn.SiLU, nn.Sigmoid),
                   ConvBNAct(mid, cout, 1, act=None)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.body(x) if self.residual else self.body(x)


class EfficientNet(nn.Module):
    """B0 at ``width`` = ``depth`` = 1; the compound-scaling multipliers otherwise."""

    def __init__(self, width: float = 1.0, depth: float = 1.0, classes: int = 1000) -> None:
        super().__init__()
        c = lambda n: make_divisible(n * width)  # noqa: E731
        layers = [ConvBNAct(3, c(32), 3, 2, act=nn.SiLU)]
        cin = c(32)
        for expand, k, s, cout, reps in EFFICIENTNET_B0:
            for i in range(int(math.ceil(reps * depth))):
                layers.append(_MBConv(cin, c(cout), expand, k, s if i == 0 else 1))
                cin = c(cout)
        layers.append(ConvBNAct(cin, c(1280), 1, act=nn.SiLU))
        self.features = nn.Sequential(*layers)
        self.classifier = Classifier(c(1280), classes)

    def forward(self, x):
        return self.classifier(self.features(x))


# --- ShuffleNetV2 (Ma et al. 2018, Table 5) -----------------------------------------------------------

SHUFFLENET_V2_WIDTHS = {0.5: (48, 96, 192, 1024), 1.0: (116, 232, 464, 1024),
                        1.5: (176, 352, 704, 1024), 2.0: (244, 488, 976, 2048)}


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class _ShuffleV2Unit(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        half = cout // 2
        # Stride 1: the unit's input is split in two; one half passes, the other goes through the branch.
        bin_ = cin if stride == 2 else half
        self.branch = nn.Sequential(ConvBNAct(bin_, half, 1), ConvBNAct(half, half, 3, stride, half, act=None),
                                    ConvBNAct(half, half, 1))
        self.shortcut = (nn.Sequential(ConvBNAct(cin, cin, 3, 2, cin, act=None), ConvBNAct(cin, half, 1))
                         if stride == 2 else None)

    def forward(self, x):
        if self.stride == 1:
            a, b = x.chunk(2, dim=1)
            out = torch.cat([a, self.branch(b)], 1)
        else:
            out = torch.cat([self.shortcut(x), self.branch(x)], 1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    """``width`` one of 0.5, 1.0, 1.5, 2.0 (Table 5's output channels); stages of 4, 8, 4 units."""

    def __init__(self, width: float = 1.0, classes: int = 1000) -> None:
        super().__init__()
        *stages, last = SHUFFLENET_V2_WIDTHS[width]
        self.stem = nn.Sequential(ConvBNAct(3, 24, 3, 2), nn.MaxPool2d(3, 2, 1))
        units, cin = [], 24
        for cout, reps in zip(stages, (4, 8, 4)):
            for i in range(reps):
                units.append(_ShuffleV2Unit(cin, cout, 2 if i == 0 else 1))
                cin = cout
        self.units = nn.Sequential(*units)
        self.conv5 = ConvBNAct(cin, last, 1)
        self.classifier = Classifier(last, classes, dropout=0.0)

    def forward(self, x):
        return self.classifier(self.conv5(self.units(self.stem(x))))


# --- MixNet-S (Tan & Le 2019, "MixConv", Figure 8) ----------------------------------------------------

def split_channels(channels: int, groups: int) -> list[int]:
    """Equal groups, the remainder in the first (MixConv's rule)."""
    split = [channels // groups] * groups
    split[0] += channels - sum(split)
    return split


class MixedConv(nn.Module):
    """Channels split into ``len(kernels)`` groups, group ``i`` convolved with ``kernels[i]`` (a
    depthwise conv when ``depthwise``, else a dense one mapping its share of the input to its share of
    the output), results concatenated. One kernel is a plain conv."""

    def __init__(self, cin: int, cout: int, kernels: Sequence[int], stride: int = 1, depthwise: bool = False) -> None:
        super().__init__()
        self.splits = split_channels(cin, len(kernels))
        outs = split_channels(cout, len(kernels))
        self.convs = nn.ModuleList(
            nn.Conv2d(i, o, k, stride, (k - 1) // 2, groups=i if depthwise else 1, bias=False)
            for i, o, k in zip(self.splits, outs, kernels))

    def forward(self, x):
        if len(self.convs) == 1:
            return self.convs[0](x)
        return torch.cat([conv(part) for conv, part in zip(self.convs, x.split(self.splits, 1))], 1)


# (repeats, depthwise kernels, expansion groups, projection groups, stride, expansion, output, SE ratio
#  of the block input, swish)
MIXNET_S = [
    (1, (3,), 1, 1, 1, 1, 16, 0, False),
    (1, (3,), 2, 2, 2, 6, 24, 0, False), (1, (3,), 2, 2, 1, 3, 24, 0, False),
    (1, (3, 5, 7), 1, 1, 2, 6, 40, 0.5, True), (3, (3, 5), 2, 2, 1, 6, 40, 0.5, True),
    (1, (3, 5, 7), 1, 2, 2, 6, 80, 0.25, True), (2, (3, 5), 1, 2, 1, 6, 80, 0.25, True),
    (1, (3, 5, 7), 2, 2, 1, 6, 120, 0.5, True), (2, (3, 5, 7, 9), 2, 2, 1, 3, 120, 0.5, True),
    (1, (3, 5, 7, 9, 11), 1, 1, 2, 6, 200, 0.5, True), (2, (3, 5, 7, 9), 1, 2, 1, 6, 200, 0.5, True),
]


class _MixBlock(nn.Module):
    def __init__(self, cin: int, cout: int, kernels, exp_groups: int, proj_groups: int, stride: int,
                 expand: int, se: float, swish: bool) -> None:
        super().__init__()
        act = nn.SiLU if swish else nn.ReLU
        mid = cin * expand
        layers = []
        if expand != 1:
            layers += [MixedConv(cin, mid, (1,) * exp_groups), nn.BatchNorm2d(mid), act()]
        layers += [MixedConv(mid, mid, kernels, stride, depthwise=True), nn.BatchNorm2d(mid), act()]
        if se:
            layers.append(SqueezeExcite(mid, int(cin * se), act, nn.Sigmoid))
        layers += [MixedConv(mid, cout, (1,) * proj_groups), nn.BatchNorm2d(cout)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.body(x) if self.residual else self.body(x)


class MixNet(nn.Module):
    """MixNet-S: stem 3x3/2 (16), the blocks above (3x3 ... 11x11 mixed depthwise kernels), 1x1 head
    to 1536; ReLU in the stem, head and first stages, swish in the rest."""

    def __init__(self, width: float = 1.0, classes: int = 1000) -> None:
        super().__init__()
        c = lambda n: make_divisible(n * width)  # noqa: E731
        layers = [ConvBNAct(3, c(16), 3, 2)]
        cin = c(16)
        for reps, kernels, eg, pg, s, e, cout, se, swish in MIXNET_S:
            for i in range(reps):
                layers.append(_MixBlock(cin, c(cout), kernels, eg, pg, s if i == 0 else 1, e, se, swish))
                cin = c(cout)
        layers.append(ConvBNAct(cin, 1536, 1))
        self.features = nn.Sequential(*layers)
        self.classifier = Classifier(1536, classes)

    def forward(self, x):
        return self.classifier(self.features(x))


# --- GhostNet (Han et al. 2020, the architecture table) -----------------------------------------------

class GhostModule(nn.Module):
    """A 1x1 conv makes ceil(out / 2) "intrinsic" maps, a 3x3 depthwise conv one "ghost" of each; the
    output is the first ``out`` channels of both concatenated."""

    def __init__(self, cin: int, cout: int, relu: bool = True) -> None:
        super().__init__()
        self.out = cout
        init = math.ceil(cout / 2)
        act = nn.ReLU if relu else None
        self.primary = ConvBNAct(cin, init, 1, act=act)
        self.cheap = ConvBNAct(init, init, 3, groups=init, act=act)

    def forward(self, x):
        y = self.primary(x)
        return torch.cat([y, self.cheap(y)], 1)[:, :self.out]


class _GhostBottleneck(nn.Module):
    def __init__(self, cin: int, mid: int, cout: int, k: int, stride: int, se: float) -> None:
        super().__init__()
        layers = [GhostModule(cin, mid)]
        if stride > 1:
            layers.append(ConvBNAct(mid, mid, k, stride, groups=mid, act=None))
        if se:
            layers.append(SqueezeExcite(mid, make_divisible(mid * se, 4), nn.ReLU, nn.Hardsigmoid))
        layers.append(GhostModule(mid, cout, relu=False))
        self.body = nn.Sequential(*layers)
        self.shortcut = (nn.Identity() if cin == cout and stride == 1 else
                         nn.Sequential(ConvBNAct(cin, cin, k, stride, groups=cin, act=None),
                                       ConvBNAct(cin, cout, 1, act=None)))

    def forward(self, x):
        return self.body(x) + self.shortcut(x)


# (kernel, expansion, output, SE ratio, stride)
GHOSTNET = [(3, 16, 16, 0, 1), (3, 48, 24, 0, 2), (3, 72, 24, 0, 1), (5, 72, 40, 0.25, 2),
            (5, 120, 40, 0.25, 1), (3, 240, 80, 0, 2), (3, 200, 80, 0, 1), (3, 184, 80, 0, 1),
            (3, 184, 80, 0, 1), (3, 480, 112, 0.25, 1), (3, 672, 112, 0.25, 1), (5, 672, 160, 0.25, 2),
            (5, 960, 160, 0, 1), (5, 960, 160, 0.25, 1), (5, 960, 160, 0, 1), (5, 960, 160, 0.25, 1)]


class GhostNet(nn.Module):
    """GhostNet ``width``x: channels rounded to multiples of 4; 1x1 conv to 960 + BN + ReLU, then a
    1280 head (bias, no BN) + ReLU before the classifier."""

    def __init__(self, width: float = 1.0, classes: int = 1000) -> None:
        super().__init__()
        c = lambda n: make_divisible(n * width, 4)  # noqa: E731
        layers = [ConvBNAct(3, c(16), 3, 2)]
        cin = c(16)
        for k, exp, cout, se, s in GHOSTNET:
            layers.append(_GhostBottleneck(cin, c(exp), c(cout), k, s, se))
            cin = c(cout)
        layers.append(ConvBNAct(cin, c(960), 1))
        self.features = nn.Sequential(*layers)
        self.classifier = Classifier(c(960), classes, 1280, nn.ReLU)

    def forward(self, x):
        return self.classifier(self.features(x))


# --- PP-LCNet (Cui et al. 2021, the architecture table) ---------------------------------------------

# (depthwise kernel, input, output, stride, SE)
LCNET = [(3, 16, 32, 1, False), (3, 32, 64, 2, False), (3, 64, 64, 1, False), (3, 64, 128, 2, False),
         (3, 128, 128, 1, False), (3, 128, 256, 2, False)] + [(5, 256, 256, 1, False)] * 5 + \
        [(5, 256, 512, 2, True), (5, 512, 512, 1, True)]


class LCNet(nn.Module):
    """Depthwise-separable blocks with hard-swish, SE (a quarter, hard-sigmoid gate) in the last two,
    and a 1280 head with hard-swish; ``scale`` the width multiplier."""

    def __init__(self, scale: float = 1.0, classes: int = 1000) -> None:
        super().__init__()
        c = lambda n: make_divisible(n * scale)  # noqa: E731
        layers = [ConvBNAct(3, c(16), 3, 2, act=nn.Hardswish)]
        for k, cin, cout, s, se in LCNET:
            layers.append(ConvBNAct(c(cin), c(cin), k, s, groups=c(cin), act=nn.Hardswish))
            if se:
                layers.append(SqueezeExcite(c(cin), c(cin) // 4, nn.ReLU, nn.Hardsigmoid))
            layers.append(ConvBNAct(c(cin), c(cout), 1, act=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.classifier = Classifier(c(512), classes, 1280, nn.Hardswish)

    def forward(self, x):
        return self.classifier(self.features(x))


# --- ReXNet (Han et al. 2021, "Rethinking Channel Dimensions") ----------------------------------------

class _LinearBottleneck(nn.Module):
    def __init__(self, cin: int, cout: int, expand: float, stride: int, se: float) -> None:
        super().__init__()
        mid = make_divisible(round(cin * expand), 1) if expand != 1 else cin
        layers = [ConvBNAct(cin, mid, 1, act=nn.SiLU)] if expand != 1 else []
        layers.append(ConvBNAct(mid, mid, 3, stride, groups=mid, act=None))
        if se:
            layers.append(SqueezeExcite(mid, make_divisible(int(mid * se), 1), nn.ReLU, nn.Sigmoid, norm=True))
        layers += [nn.ReLU6(), ConvBNAct(mid, cout, 1, act=None)]
        self.body = nn.Sequential(*layers)
        self.cin = cin
        self.residual = stride == 1 and cin <= cout

    def forward(self, x):
        y = self.body(x)
        if not self.residual:
            return y
        # The shortcut is added to the first cin channels only; the new channels pass unchanged.
        return torch.cat([y[:, :self.cin] + x, y[:, self.cin:]], 1)


class ReXNet(nn.Module):
    """ReXNet ``width``x: 16 linear bottlenecks whose widths grow linearly from 16 to 16 + 180 (x width),
    SE (1/12, with BN) from the third stage, SiLU after expansions, ReLU6 after the depthwise convs."""

    def __init__(self, width: float = 1.0, classes: int = 1000) -> None:
        super().__init__()
        reps, strides = [1, 2, 2, 3, 3, 5], [1, 2, 2, 2, 1, 2]
        strides = sum([[s] + [1] * (r - 1) for s, r in zip(strides, reps)], [])
        n = sum(reps)
        expands = [1] * reps[0] + [6] * (n - reps[0])
        ses = [0.0] * (reps[0] + reps[1]) + [1 / 12] * (n - reps[0] - reps[1])
        base = 16 / width if width < 1 else 16
        outs = []
        for _ in range(n):
            outs.append(make_divisible(round(base * width), 1))
            base += 180 / n
        stem = make_divisible(round((32 / width if width < 1 else 32) * width), 1)
        layers = [ConvBNAct(3, stem, 3, 2, act=nn.SiLU)]
        cin = stem
        for cout, e, s, se in zip(outs, expands, strides, ses):
            layers.append(_LinearBottleneck(cin, cout, e, s, se))
            cin = cout
        head = make_divisible(1280 * width, 1)
        layers.append(ConvBNAct(cin, head, 1, act=nn.SiLU))
        self.features = nn.Sequential(*layers)
        self.classifier = Classifier(head, classes)

    def forward(self, x):
        return self.classifier(self.features(x))


# --- registry -----------------------------------------------------------------------------------------

NETWORKS: dict[str, Callable[..., nn.Module]] = {
    "mobilenet_v3_large": lambda width=1.0: MobileNetV3("large", width),
    "mobilenet_v3_small": lambda width=1.0: MobileNetV3("small", width),
    "efficientnet_b0": lambda width=1.0: EfficientNet(width),
    "shufflenet_v2": lambda width=1.0: ShuffleNetV2(width),
    "mixnet_s": lambda width=1.0: MixNet(width),
    "ghostnet": lambda width=1.0: GhostNet(width),
    "lcnet": lambda width=1.0: LCNet(width),
    "rexnet": lambda width=1.0: ReXNet(width),
}


def op_types(data: bytes) -> collections.Counter:
    """ONNX operator types of a model (bytes) and how often each occurs, nested graphs included."""
    import onnx

    counts: collections.Counter = collections.Counter()

    def walk(graph):
        for node in graph.node:
            counts[node.op_type] += 1
            for attr in node.attribute:
                for g in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                    walk(g)

    walk(onnx.load_from_string(data).graph)
    return counts


def main() -> None:
    """Export each network (TorchScript exporter at opsets 13 and 17, and 17 with symbolic H/W; the
    dynamo exporter at opset 18 with and without, when onnxscript is installed) and print its
    operator types."""
    import importlib.util

    import onnx_models

    modes = [("opset 13", {"opset": 13}), ("opset 17", {"opset": 17}),
             ("opset 17, dynamic H/W", {"opset": 17, "dynamic_hw": True})]
    if importlib.util.find_spec("onnxscript") is not None:
        modes += [("dynamo, opset 18", {"opset": 18, "dynamo": True}),
                  ("dynamo, opset 18, dynamic H/W", {"opset": 18, "dynamo": True, "dynamic_hw": True})]
    torch.manual_seed(0)
    for name, make in NETWORKS.items():
        net = onnx_models.randomize_bn(make())
        for label, kwargs in modes:
            data = onnx_models.export(net, (1, 3, 96, 96), **kwargs)
            ops = ", ".join(f"{op} {n}" for op, n in sorted(op_types(data).items()))
            print(f"{name} ({label}): {ops}")


if __name__ == "__main__":
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()

