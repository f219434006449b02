"""PyTorch definitions of the CNNs the ONNX import tests and benchmarks export: MobileNet v1 and v2,
Xception, ShuffleNet v1, a ResNeXt block, a TensorFlow-SAME-padded network, a small network for the
activation functions, and for the generality tests (tests/test_onnx_generality.py) the way other mobile
networks are written: an MBConv family (MNASNet, EfficientNet-Lite, EfficientNetV2's fused MBConv,
FBNet, TinyNet), squeeze-excitation spelt every common way, RegNet, SqueezeNet 1.1, ResNet-18 and a
DenseNet with batch norms after its concatenations.

Written here, independently of ``pyconv.testing``, from the papers' architectures; width multipliers,
depths and input sizes are parameters so the default tests can run them small. ``randomize_bn`` gives
the batch norms non-trivial statistics (fresh ones are the identity, which would hide folding bugs).
"""
from __future__ import annotations

import io
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F


def _cbr(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1, act: type = nn.ReLU) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout),
                         act())


class MobileNetV1(nn.Module):
    """Howard et al. 2017: a 3x3 stem and 13 depthwise-separable blocks, width multiplier ``alpha``."""

    def __init__(self, alpha: float = 1.0, classes: int = 1000) -> None:
        super().__init__()
        c = lambda n: max(8, int(n * alpha))  # noqa: E731
        cfg = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
        layers = [_cbr(3, c(32), 3, 2)]
        cin = c(32)
        for cout, s in cfg:
            layers += [_cbr(cin, cin, 3, s, groups=cin), _cbr(cin, c(cout), 1)]
            cin = c(cout)
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(0.001)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), 1)
        return self.fc(self.dropout(x.view(x.size(0), -1)))


class _InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        layers = [_cbr(cin, hidden, 1, act=nn.ReLU6)] if expand != 1 else []
        layers += [_cbr(hidden, hidden, 3, stride, groups=hidden, act=nn.ReLU6),
                   nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.block(x) if self.residual else self.block(x)


class MobileNetV2(nn.Module):
    """Sandler et al. 2018: inverted residuals with linear bottlenecks, ReLU6, width multiplier ``alpha``."""

    def __init__(self, alpha: float = 1.0, classes: int = 1000) -> None:
        super().__init__()
        c = lambda n: max(8, int(n * alpha + 4) // 8 * 8)  # noqa: E731
        cfg = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
               (6, 320, 1, 1)]
        layers = [_cbr(3, c(32), 3, 2, act=nn.ReLU6)]
        cin = c(32)
        for t, n, reps, s in [(t, c(n), r, s) for t, n, r, s in cfg]:
            for i in range(reps):
                layers.append(_InvertedResidual(cin, n, s if i == 0 else 1, t))
                cin = n
        last = max(1280, c(1280)) if alpha > 1 else 1280
        layers.append(_cbr(cin, last, 1, act=nn.ReLU6))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, classes))

    def forward(self, x):
        x = self.features(x).mean((2, 3))
        return self.classifier(x)


class _SeparableConv(nn.Sequential):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(nn.Conv2d(cin, cin, 3, 1, 1, groups=cin, bias=False), nn.Conv2d(cin, cout, 1, bias=False),
                         nn.BatchNorm2d(cout))


class _XceptionBlock(nn.Module):
    def __init__(self, cin: int, cout: int, reps: int, stride: int, relu_first: bool = True,
                 grow_first: bool = True) -> None:
        super().__init__()
        self.skip = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                     if cout != cin or stride != 1 else None)
        layers = []
        c = cin
        for i in range(reps):
            out = cout if grow_first or i == reps - 1 else cin
            layers += [nn.ReLU(), _SeparableConv(c, out)]
            c = out
        if not relu_first:
            layers = layers[1:]
        if stride != 1:
            layers.append(nn.MaxPool2d(3, stride, 1))
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return self.body(x) + (self.skip(x) if self.skip is not None else x)


class Xception(nn.Module):
    """Chollet 2017: entry flow, ``middle`` middle-flow blocks (8 in the paper), exit flow; ``width``
    scales every channel count."""

    def __init__(self, width: float = 1.0, middle: int = 8, classes: int = 1000) -> None:
        super().__init__()
        c = lambda n: max(8, int(n * width))  # noqa: E731
        self.stem = nn.Sequential(nn.Conv2d(3, c(32), 3, 2, bias=False), nn.BatchNorm2d(c(32)), nn.ReLU(),
                                  nn.Conv2d(c(32), c(64), 3, bias=False), nn.BatchNorm2d(c(64)), nn.ReLU())
        blocks = [_XceptionBlock(c(64), c(128), 2, 2, relu_first=False), _XceptionBlock(c(128), c(256), 2, 2),
                  _XceptionBlock(c(256), c(728), 2, 2)]
        blocks += [_XceptionBlock(c(728), c(728), 3, 1) for _ in range(middle)]
        blocks += [_XceptionBlock(c(728), c(1024), 2, 2, grow_first=False)]
        self.blocks = nn.Sequential(*blocks)
        self.exit = nn.Sequential(_SeparableConv(c(1024), c(1536)), nn.ReLU(), _SeparableConv(c(1536), c(2048)),
                                  nn.ReLU())
        self.fc = nn.Linear(c(2048), classes)

    def forward(self, x):
        x = self.exit(self.blocks(self.stem(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def _shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).contiguous().view(n, c, h, w)


class _ShuffleUnit(nn.Module):
    def __init__(self, cin: int, cout: int, groups: int, stride: int, first_groups: int) -> None:
        super().__init__()
        self.stride, self.groups = stride, first_groups
        branch = cout - cin if stride == 2 else cout
        mid = cout // 4
        self.compress = _cbr(cin, mid, 1, groups=first_groups)
        self.depthwise = nn.Sequential(nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False), nn.BatchNorm2d(mid))
        self.expand = nn.Sequential(nn.Conv2d(mid, branch, 1, groups=groups, bias=False), nn.BatchNorm2d(branch))

    def forward(self, x):
        y = self.expand(self.depthwise(_shuffle(self.compress(x), self.groups)))
        if self.stride == 2:
            return F.relu(torch.cat([F.avg_pool2d(x, 3, 2, 1), y], 1))
        return F.relu(x + y)


class ShuffleNetV1(nn.Module):
    """Zhang et al. 2017, g = ``groups`` (stage widths 240/480/960 for g = 3), width multiplier ``scale``."""

    def __init__(self, groups: int = 3, scale: float = 1.0, classes: int = 1000) -> None:
        super().__init__()
        widths = {1: 144, 2: 200, 3: 240, 4: 272, 8: 384}[groups]
        stages = [int(widths * scale * m) // (4 * groups) * (4 * groups) for m in (1, 2, 4)]
        self.stem = nn.Sequential(_cbr(3, 24, 3, 2), nn.MaxPool2d(3, 2, 1))
        units, cin = [], 24
        for i, (cout, reps) in enumerate(zip(stages, (4, 8, 4))):
            for r in range(reps):
                units.append(_ShuffleUnit(cin, cout, groups, 2 if r == 0 else 1,
                                          1 if i == 0 and r == 0 else groups))
                cin = cout
        self.units = nn.Sequential(*units)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = self.units(self.stem(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class ResNeXtBlock(nn.Module):
    """Xie et al. 2017 bottleneck: 1x1, 3x3 with ``cardinality`` groups, 1x1, identity shortcut."""

    def __init__(self, channels: int = 256, width: int = 128, cardinality: int = 32) -> None:
        super().__init__()
        self.body = nn.Sequential(_cbr(channels, width, 1), _cbr(width, width, 3, groups=cardinality),
                                  nn.Conv2d(width, channels, 1, bias=False), nn.BatchNorm2d(channels))

    def forward(self, x):
        return F.relu(x + self.body(x))


class TFSameNet(nn.Module):
    """Keras-style "same" padding as TensorFlow computes it (the odd pixel bottom/right), written as
    explicit ``F.pad`` (ONNX Pad nodes) before unpadded stride-2 convolutions, a depthwise convolution
    and pools, then a Clip(-1, 1), a constant scale and shift and a softmax."""

    def __init__(self, c: int = 16, classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, c, 3, 2)
        self.bn1 = nn.BatchNorm2d(c)
        self.dw = nn.Conv2d(c, c, 5, 2, groups=c)
        self.pw = nn.Conv2d(c, 2 * c, 1)
        self.conv2 = nn.Conv2d(2 * c, 2 * c, 4, 1)
        self.fc = nn.Linear(2 * c, classes)
        self.register_buffer("scale", torch.linspace(0.5, 1.5, 2 * c).view(1, -1, 1, 1))
        self.register_buffer("shift", torch.linspace(-0.2, 0.2, 2 * c).view(1, -1, 1, 1))

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(F.pad(x, (0, 1, 0, 1)))))
        x = F.max_pool2d(F.pad(x, (0, 1, 0, 1)), 2, 1)
        x = F.relu6(self.pw(self.dw(F.pad(x, (1, 2, 1, 2)))))
        x = self.conv2(F.pad(x, (1, 2, 1, 2)))
        x = torch.clamp(x * self.scale + self.shift, -1.0, 1.0)
        x = F.avg_pool2d(F.pad(x, (0, 1, 0, 1)), 2, 2)
        return torch.softmax(self.fc(x.mean((2, 3))), 1)


class ActivationNet(nn.Module):
    """A stem, a depthwise-separable pair, a max pool and a linear layer, each followed by ``act()``
    (a fresh module each time: PReLU has weights): the activation functions' ONNX forms in the places
    the loader fuses them."""

    def __init__(self, act, c: int = 16, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, c, 3, 2, 1, bias=False), nn.BatchNorm2d(c), act())
        self.dw = nn.Sequential(nn.Conv2d(c, c, 3, 1, 1, groups=c, bias=False), nn.BatchNorm2d(c), act())
        self.pw = nn.Sequential(nn.Conv2d(c, 2 * c, 1), act())
        self.pool = nn.Sequential(nn.MaxPool2d(2), act())
        self.fc = nn.Sequential(nn.Linear(2 * c, classes), act())

    def forward(self, x):
        x = self.pool(self.pw(self.dw(self.stem(x))))
        return self.fc(x.mean((2, 3)))


class SqueezeExcite(nn.Module):
    """Squeeze-excitation as the model zoos write it. ``spell``: how the (N, C) gate meets the image
    (``none_none``: ``y[:, :, None, None]``, ``unsqueeze``, ``view``, ``expand_as``, ``reshape``) with
    ``nn.Linear`` layers after ``x.mean((2, 3))``; or ``conv_*``: 1x1 convolutions after a keepdim
    mean (``conv_mean``), ``F.adaptive_avg_pool2d`` (``conv_pool``) or ``nn.AdaptiveAvgPool2d((1, 1))``
    (``conv_module``). ``gate``: sigmoid, hardsigmoid, or by hand ``relu6_div`` (``F.relu6(y + 3) / 6``)."""

    def __init__(self, c: int, spell: str = "none_none", gate: str = "sigmoid", reduce: int = 4) -> None:
        super().__init__()
        mid = max(8, c // reduce)
        self.spell, self.gate = spell, gate
        conv = spell.startswith("conv")
        self.fc1 = nn.Conv2d(c, mid, 1) if conv else nn.Linear(c, mid)
        self.fc2 = nn.Conv2d(mid, c, 1) if conv else nn.Linear(mid, c)
        self.pool = nn.AdaptiveAvgPool2d((1, 1))

    def forward(self, x):
        n, c = x.shape[:2]
        if self.spell == "conv_mean":
            y = x.mean((2, 3), keepdim=True)
        elif self.spell == "conv_pool":
            y = F.adaptive_avg_pool2d(x, 1)
        elif self.spell == "conv_module":
            y = self.pool(x)
        else:
            y = x.mean((2, 3))
        y = self.fc2(F.relu(self.fc1(y)))
        y = {"sigmoid": torch.sigmoid, "hardsigmoid": F.hardsigmoid,
             "relu6_div": lambda v: F.relu6(v + 3) / 6}[self.gate](y)
        if self.spell == "none_none":
            y = y[:, :, None, None]
        elif self.spell == "unsqueeze":
            y = y.unsqueeze(-1).unsqueeze(-1)
        elif self.spell == "view":
            y = y.view(n, c, 1, 1)
        elif self.spell == "expand_as":
            y = y.view(n, c, 1, 1).expand_as(x)
        elif self.spell == "reshape":
            y = y.reshape(-1, c, 1, 1)
        return x * y


class _MBConv(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, stride: int, expand: int, se: Optional[str], act: type,
                 fused: bool) -> None:
        super().__init__()
        mid = cin * expand
        if fused:  # EfficientNetV2: one full convolution instead of the expansion and the depthwise one
            layers = [_cbr(cin, mid, k, stride, act=act)]
        else:
            layers = ([_cbr(cin, mid, 1, act=act)] if expand != 1 else []) + [_cbr(mid, mid, k, stride, mid, act)]
        if se:
            layers.append(SqueezeExcite(mid, se))
        layers += [nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.body(x) if self.residual else self.body(x)


class MBConvNet(nn.Module):
    """The MBConv family: ``blocks`` of (kernel, expansion, channels, repeats, stride, SE spell or None,
    fused), a stem, a 1x1 head and a linear classifier after ``torch.flatten`` of an adaptive pool."""

    def __init__(self, blocks, stem: int = 16, head: int = 64, act: type = nn.ReLU, classes: int = 10) -> None:
        super().__init__()
        layers, cin = [_cbr(3, stem, 3, 2, act=act)], stem
        for k, e, c, n, s, se, fused in blocks:
            for i in range(n):
                layers.append(_MBConv(cin, c, k, s if i == 0 else 1, e, se, act, fused))
                cin = c
        layers.append(_cbr(cin, head, 1, act=act))
        self.features = nn.Sequential(*layers)
        self.fc = nn.Sequential(nn.Dropout(0.2), nn.Linear(head, classes))

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.features(x), (1, 1)), 1))


# MBConv networks at reduced width and depth: (kernel, expansion, channels, repeats, stride, SE, fused).
MBCONV_NETS = {
    "mnasnet_b1": dict(blocks=[(3, 1, 8, 1, 1, None, False), (3, 3, 16, 2, 2, None, False),
                               (5, 3, 24, 2, 2, None, False), (5, 6, 40, 1, 2, None, False)]),
    "mnasnet_a1": dict(blocks=[(3, 1, 8, 1, 1, None, False), (3, 6, 16, 2, 2, None, False),
                               (5, 3, 24, 2, 2, "conv_pool", False), (3, 6, 40, 1, 2, None, False)]),
    "efficientnet_lite0": dict(blocks=[(3, 1, 8, 1, 1, None, False), (3, 6, 16, 2, 2, None, False),
                                       (5, 6, 24, 2, 2, None, False)], act=nn.ReLU6),
    "efficientnet_v2_b0": dict(blocks=[(3, 1, 16, 1, 1, None, True), (3, 4, 24, 2, 2, None, True),
                                       (3, 4, 32, 1, 2, "conv_mean", False)], act=nn.SiLU),
    "fbnet": dict(blocks=[(3, 1, 8, 1, 1, None, False), (5, 6, 16, 2, 2, None, False),
                          (5, 3, 24, 1, 2, "conv_module", False)], act=nn.Hardswish),
    "tinynet": dict(blocks=[(3, 1, 8, 1, 1, "none_none", False), (3, 6, 16, 2, 2, "unsqueeze", False),
                            (5, 6, 24, 2, 2, "expand_as", False)], act=nn.SiLU),
}


class _RegNetBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, group_width: int, se: bool) -> None:
        super().__init__()
        self.body = nn.Sequential(_cbr(cin, cout, 1), _cbr(cout, cout, 3, stride, cout // group_width),
                                  *([SqueezeExcite(cout, "conv_pool")] if se else []),
                                  nn.Conv2d(cout, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.skip = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                     if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x):
        return F.relu(self.skip(x) + self.body(x), inplace=True)


class RegNet(nn.Module):
    """Radosavovic et al. 2020, 400MF widths (32, 64, 160, 384) with group width 16 and fewer blocks;
    ``se``: RegNetY's squeeze-excitation."""

    def __init__(self, se: bool = False, depths=(1, 1, 2, 1), classes: int = 10) -> None:
        super().__init__()
        blocks, cin = [_cbr(3, 32, 3, 2)], 32
        for w, d in zip((32, 64, 160, 384), depths):
            for i in range(d):
                blocks.append(_RegNetBlock(cin, w, 2 if i == 0 else 1, 16, se))
                cin = w
        self.trunk = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.trunk(x), (1, 1)), 1))


class _Fire(nn.Module):
    def __init__(self, cin: int, squeeze: int, expand: int) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(cin, squeeze, 1)
        self.e1, self.e3 = nn.Conv2d(squeeze, expand, 1), nn.Conv2d(squeeze, expand, 3, padding=1)

    def forward(self, x):
        x = F.relu(self.squeeze(x), inplace=True)
        return torch.cat([F.relu(self.e1(x), inplace=True), F.relu(self.e3(x), inplace=True)], 1)


class SqueezeNet11(nn.Module):
    """Iandola et al. 2016, version 1.1: ceil-mode max pools, fire modules, a convolutional classifier."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        pool = lambda: nn.MaxPool2d(3, 2, ceil_mode=True)  # noqa: E731
        self.features = nn.Sequential(nn.Conv2d(3, 64, 3, 2), nn.ReLU(inplace=True), pool(), _Fire(64, 16, 64),
                                      _Fire(128, 16, 64), pool(), _Fire(128, 32, 128), _Fire(256, 32, 128), pool(),
                                      _Fire(256, 48, 192), _Fire(384, 64, 256))
        self.classifier = nn.Sequential(nn.Dropout(0.5), nn.Conv2d(512, classes, 1), nn.ReLU(inplace=True),
                                        nn.AdaptiveAvgPool2d((1, 1)))

    def forward(self, x):
        return torch.flatten(self.classifier(self.features(x)), 1)


class _Basic(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_cbr(cin, cout, 3, stride), nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(cout))
        self.down = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                     if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x):
        return F.relu(self.body(x) + self.down(x))


class ResNet18(nn.Module):
    """He et al. 2016, ResNet-18 (``width`` scales the channels)."""

    def __init__(self, width: float = 1.0, classes: int = 10) -> None:
        super().__init__()
        c = [int(n * width) for n in (64, 128, 256, 512)]
        layers = [nn.Conv2d(3, c[0], 7, 2, 3, bias=False), nn.BatchNorm2d(c[0]), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
        cin = c[0]
        for i, cout in enumerate(c):
            layers += [_Basic(cin, cout, 1 if i == 0 else 2), _Basic(cout, cout, 1)]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.features(x), (1, 1)), 1))


class DenseNet(nn.Module):
    """Huang et al. 2017 in small: pre-activation dense layers (batch norm, ReLU, 1x1, batch norm, ReLU,
    3x3) each reading the concatenation of all earlier features, so every first batch norm follows a
    concat, not a convolution; a transition (batch norm, 1x1, average pool) between the two blocks."""

    def __init__(self, growth: int = 8, layers: int = 3, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                                  nn.MaxPool2d(3, 2, 1))
        # Both blocks start from 16 channels (the stem's, then the transition's).
        c = 16 + layers * growth
        self.blocks = nn.ModuleList(nn.ModuleList(
            nn.Sequential(nn.BatchNorm2d(16 + i * growth), nn.ReLU(), nn.Conv2d(16 + i * growth, 4 * growth, 1),
                          nn.BatchNorm2d(4 * growth), nn.ReLU(), nn.Conv2d(4 * growth, growth, 3, 1, 1))
            for i in range(layers)) for _ in range(2))
        self.transition = nn.Sequential(nn.BatchNorm2d(16 + layers * growth), nn.ReLU(),
                                        nn.Conv2d(16 + layers * growth, 16, 1), nn.AvgPool2d(2, 2))
        self.norm = nn.BatchNorm2d(c)
        self.fc = nn.Linear(c, classes)

    def forward(self, x):
        x = self.stem(x)
        for b, block in enumerate(self.blocks):
            feats = [x]
            for layer in block:
                feats.append(layer(torch.cat(feats, 1)))
            x = torch.cat(feats, 1)
            if b == 0:
                x = self.transition(x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(F.relu(self.norm(x)), 1), 1))


def randomize_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every batch norm random statistics and affine parameters (near the identity); eval mode."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_((torch.rand(n, generator=g) - 0.5) * 0.2)
                m.running_var.copy_(torch.rand(n, generator=g) * 0.5 + 0.75)
                m.weight.copy_(torch.rand(n, generator=g) * 0.5 + 0.75)
                m.bias.copy_((torch.rand(n, generator=g) - 0.5) * 0.2)
    return model.eval()


def export(model: nn.Module, shape: tuple[int, ...], opset: int, *, dynamic_batch: bool = False,
           dynamic_hw: bool = False, keep_batch_norm: bool = False, dynamo: bool = False, path=None) -> bytes:
    """``torch.onnx.export`` of ``model`` at input ``shape``, input "input", output "output"; the ONNX
    bytes (also written to ``path`` if given). The TorchScript exporter unless ``dynamo`` (the
    torch.export-based one, which needs the onnxscript package). ``dynamic_batch`` / ``dynamic_hw``
    make the batch / the spatial axes symbolic. ``keep_batch_norm`` exports BatchNormalization nodes
    instead of letting torch fold them into the convolutions (TorchScript exporter only)."""
    axes = ({0: "batch"} if dynamic_batch else {}) | ({2: "height", 3: "width"} if dynamic_hw else {})
    dynamic = {"input": axes, "output": {0: "batch"} if dynamic_batch else {}} if axes else None
    kwargs = {"training": torch.onnx.TrainingMode.PRESERVE} if keep_batch_norm else {}
    if dynamo:
        from torch.export import Dim

        dims = {0: Dim("batch")} if dynamic_batch else {}
        if dynamic_hw:
            dims |= {2: Dim("height", min=32), 3: Dim("width", min=32)}
        kwargs = {"dynamic_shapes": ((dims,) if dims else None), "optimize": True, "verbose": False}
    else:
        kwargs |= {"do_constant_folding": True, "dynamic_axes": dynamic}
    f = io.BytesIO()
    with torch.no_grad():
        program = torch.onnx.export(model, (torch.zeros(shape),), None if dynamo else f, opset_version=opset,
                                    dynamo=dynamo, input_names=["input"], output_names=["output"], **kwargs)
    data = program.model_proto.SerializeToString() if dynamo else f.getvalue()
    if path is not None:
        with open(path, "wb") as out:
            out.write(data)
    return data
