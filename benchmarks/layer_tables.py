"""Convolution layer tables from real networks: what the kernel benchmarks run.

Every distinct convolution of MobileNet v1 at 224x224 (Howard et al. 2017, Table 1) and of Xception at
299x299 (Chollet 2017, Fig. 5), each separable convolution split into its depthwise and pointwise halves,
the depthwise and pointwise layers and the RGB stems of EfficientNet-B0 and MobileNetV3-Large (3x3 to 9x9
depthwise kernels, channel counts that are not multiples of 16), ShuffleNet v1's grouped 1x1
convolutions, plus a group-convolution sweep (3x3, 128 -> 128 at 28x28, G in 1..128). Shapes are per layer input,
batch 1, NHWC; ``padding`` has pyconv's (TensorFlow) meaning.

Layer names follow the Keras reference implementations (``conv_dw_7`` -> ``mnv1_dw7``,
``block4_sepconv2`` -> ``xc_b4_sep2_dw`` / ``xc_b4_sep2_pw``), so a row can be found in a real model.

This module must not import pyconv: the geometry used to build the peer engines (ONNX Runtime, PyTorch)
has to come from the papers, not from the code under test.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple


def _same_pads(size: int, kernel: int, stride: int) -> Tuple[int, int]:
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2  # TensorFlow puts the odd pixel after


@dataclass(frozen=True)
class ConvLayer:
    """One convolution layer: input H x W x C_in, C_out filters of kernel x kernel, groups."""

    name: str
    H: int
    W: int
    C_in: int
    C_out: int
    kernel: int
    stride: int
    padding: str  # "same" or "valid"
    groups: int = 1

    @property
    def pads(self) -> Tuple[Tuple[int, int], Tuple[int, int]]:
        """Explicit ((top, bottom), (left, right)) pads."""
        if self.padding == "valid":
            return (0, 0), (0, 0)
        return (_same_pads(self.H, self.kernel, self.stride),
                _same_pads(self.W, self.kernel, self.stride))

    @property
    def out_hw(self) -> Tuple[int, int]:
        (top, bottom), (left, right) = self.pads
        return ((self.H + top + bottom - self.kernel) // self.stride + 1,
                (self.W + left + right - self.kernel) // self.stride + 1)

    @property
    def macs(self) -> int:
        """Multiply-accumulates of the direct algorithm (what "effective GFLOP/s" is measured against)."""
        oh, ow = self.out_hw
        return oh * ow * self.C_out * self.kernel * self.kernel * (self.C_in // self.groups)

    @property
    def is_pointwise(self) -> bool:
        return self.kernel == 1 and self.groups == 1

    @property
    def is_depthwise(self) -> bool:
        return self.groups == self.C_in == self.C_out and self.kernel > 1

    @property
    def tag(self) -> str:
        """The layer as it appears in benchmark ids, e.g. ``mnv1_pw13_7x7x1024x1024``."""
        suffix = ""
        if self.kernel != 1:
            suffix += f"k{self.kernel}"
        if self.stride != 1:
            suffix += f"s{self.stride}"
        if self.groups != 1:
            suffix += f"g{self.groups}"
        return f"{self.name}_{self.H}x{self.W}x{self.C_in}x{self.C_out}" + (f"_{suffix}" if suffix else "")


def _dw(name: str, hw: int, c: int, stride: int = 1, kernel: int = 3) -> ConvLayer:
    return ConvLayer(name, hw, hw, c, c, kernel, stride, "same", groups=c)


def _pw(name: str, hw: int, c_in: int, c_out: int, stride: int = 1) -> ConvLayer:
    # Xception's strided residual 1x1 convs are "same": at stride 2 that pads nothing, out = ceil(in / 2).
    return ConvLayer(name, hw, hw, c_in, c_out, 1, stride, "same")


# MobileNet v1, Table 1. Rows 7-11 (5 x dw 14x14x512 + pw 512->512) are one distinct shape, kept once as
# dw7/pw7. Table 1 lists the last depthwise layer as "s2" on a 7x7 input with a 7x7 output: a typo, the
# reference implementations run it at stride 1, as here. The final FC layer is not a convolution.
MOBILENET_V1 = (
    ConvLayer("mnv1_conv1", 224, 224, 3, 32, 3, 2, "same"),
    _dw("mnv1_dw1", 112, 32),
    _pw("mnv1_pw1", 112, 32, 64),
    _dw("mnv1_dw2", 112, 64, stride=2),
    _pw("mnv1_pw2", 56, 64, 128),
    _dw("mnv1_dw3", 56, 128),
    _pw("mnv1_pw3", 56, 128, 128),
    _dw("mnv1_dw4", 56, 128, stride=2),
    _pw("mnv1_pw4", 28, 128, 256),
    _dw("mnv1_dw5", 28, 256),
    _pw("mnv1_pw5", 28, 256, 256),
    _dw("mnv1_dw6", 28, 256, stride=2),
    _pw("mnv1_pw6", 14, 256, 512),
    _dw("mnv1_dw7", 14, 512),
    _pw("mnv1_pw7", 14, 512, 512),
    _dw("mnv1_dw12", 14, 512, stride=2),
    _pw("mnv1_pw12", 7, 512, 1024),
    _dw("mnv1_dw13", 7, 1024),
    _pw("mnv1_pw13", 7, 1024, 1024),
)

# Xception, Fig. 5. Entry flow: two full 3x3 convs (valid), then three residual blocks of two separable
# convs + 3x3/2 max pool, with a 1x1 stride-2 conv on the shortcut. Middle flow: 8 x 3 identical separable
# convs 728 -> 728 at 19x19, kept once (b5_sep1); block13's first separable conv repeats that shape too, so
# only its second (728 -> 1024) is new. Exit flow: block13 (728, 1024 + shortcut), block14 (1536, 2048).
XCEPTION = (
    ConvLayer("xc_b1_conv1", 299, 299, 3, 32, 3, 2, "valid"),
    ConvLayer("xc_b1_conv2", 149, 149, 32, 64, 3, 1, "valid"),
    _pw("xc_b2_res", 147, 64, 128, stride=2),
    _dw("xc_b2_sep1_dw", 147, 64),
    _pw("xc_b2_sep1_pw", 147, 64, 128),
    _dw("xc_b2_sep2_dw", 147, 128),
    _pw("xc_b2_sep2_pw", 147, 128, 128),
    _pw("xc_b3_res", 74, 128, 256, stride=2),
    _dw("xc_b3_sep1_dw", 74, 128),
    _pw("xc_b3_sep1_pw", 74, 128, 256),
    _dw("xc_b3_sep2_dw", 74, 256),
    _pw("xc_b3_sep2_pw", 74, 256, 256),
    _pw("xc_b4_res", 37, 256, 728, stride=2),
    _dw("xc_b4_sep1_dw", 37, 256),
    _pw("xc_b4_sep1_pw", 37, 256, 728),
    _dw("xc_b4_sep2_dw", 37, 728),
    _pw("xc_b4_sep2_pw", 37, 728, 728),
    _dw("xc_b5_sep1_dw", 19, 728),
    _pw("xc_b5_sep1_pw", 19, 728, 728),
    _pw("xc_b13_res", 19, 728, 1024, stride=2),
    _pw("xc_b13_sep2_pw", 19, 728, 1024),
    _dw("xc_b14_sep1_dw", 10, 1024),
    _pw("xc_b14_sep1_pw", 10, 1024, 1536),
    _dw("xc_b14_sep2_dw", 10, 1536),
    _pw("xc_b14_sep2_pw", 10, 1536, 2048),
)

# The depthwise layers of today's mobile nets at 224x224 that neither table above has: 5x5 and larger
# kernels, channel counts that are not multiples of 16. EfficientNet-B0 (Tan & Le 2019, Table 1: MBConv
# stages 2-7, expansion 6) and MobileNetV3-Large (Howard et al. 2019, Table 1); MixNet-S (Tan & Le 2019,
# MixConv) splits a layer's channels between 3x3 to 9x9 kernels: its 7x7 and 9x9 groups, 1/4 of the
# channels of a MobileNetV3-sized layer, stand in as "mix" rows (the shapes, not MixNet's exact ones).
MOBILE_DEPTHWISE = (
    _dw("effb0_s2_dw", 112, 96, stride=2),
    _dw("effb0_s2b_dw", 56, 144),
    _dw("effb0_s3_dw", 56, 144, stride=2, kernel=5),
    _dw("effb0_s3b_dw", 28, 240, kernel=5),
    _dw("effb0_s4_dw", 28, 240, stride=2),
    _dw("effb0_s4b_dw", 14, 480),
    _dw("effb0_s5_dw", 14, 480, kernel=5),
    _dw("effb0_s5b_dw", 14, 672, kernel=5),
    _dw("effb0_s6_dw", 14, 672, stride=2, kernel=5),
    _dw("effb0_s6b_dw", 7, 1152, kernel=5),
    _dw("effb0_s7_dw", 7, 1152),
    _dw("mnv3_b2_dw", 112, 64, stride=2),
    _dw("mnv3_b3_dw", 56, 72),
    _dw("mnv3_b4_dw", 56, 72, stride=2, kernel=5),
    _dw("mnv3_b5_dw", 28, 120, kernel=5),
    _dw("mnv3_b8_dw", 14, 200),
    _dw("mnv3_b9_dw", 14, 184),
    _dw("mnv3_b14_dw", 7, 960, kernel=5),
    _dw("mix_k7_dw", 28, 60, kernel=7),
    _dw("mix_k7s2_dw", 28, 60, stride=2, kernel=7),
    _dw("mix_k9_dw", 14, 120, kernel=9),
    _dw("mix_k9s2_dw", 28, 60, stride=2, kernel=9),
    _dw("mix_k7_dw_24", 56, 24, kernel=7),
    _dw("mix_k5_dw_40", 28, 40, kernel=5),
)

# The pointwise (expand and project) layers of the same two networks: channel counts that are not
# multiples of 16 (24, 40, 72, 120, 200, 480, 672, 960, 1152), and K = 16 at 112x112, where a GEMM has
# little depth to amortise its stores over.
MOBILE_POINTWISE = (
    _pw("effb0_s2_expand_pw", 112, 16, 96),
    _pw("effb0_s2_project_pw", 56, 96, 24),
    _pw("effb0_s2b_expand_pw", 56, 24, 144),
    _pw("effb0_s3_project_pw", 28, 144, 40),
    _pw("effb0_s3b_expand_pw", 28, 40, 240),
    _pw("effb0_s4b_expand_pw", 14, 80, 480),
    _pw("effb0_s5_project_pw", 14, 480, 112),
    _pw("effb0_s5b_expand_pw", 14, 112, 672),
    _pw("effb0_s6b_expand_pw", 7, 192, 1152),
    _pw("effb0_s7_project_pw", 7, 1152, 320),
    _pw("effb0_head_pw", 7, 320, 1280),
    _pw("mnv3_b2_expand_pw", 112, 16, 64),
    _pw("mnv3_b3_expand_pw", 56, 24, 72),
    _pw("mnv3_b4_project_pw", 28, 72, 40),
    _pw("mnv3_b8_expand_pw", 14, 80, 200),
    _pw("mnv3_b9_project_pw", 14, 184, 80),
    _pw("mnv3_b15_expand_pw", 7, 160, 960),
)

# The RGB stems of those networks (3x3 stride 2, 3 -> 32 and 3 -> 16 at 224x224) given NHWC, as the
# kernel API takes them (a model imported from ONNX reads NCHW in place instead).
MOBILE_STEMS = (
    ConvLayer("effb0_stem", 224, 224, 3, 32, 3, 2, "same"),
    ConvLayer("mnv3_stem", 224, 224, 3, 16, 3, 2, "same"),
)

# ShuffleNet v1 (Zhang et al. 2018, Table 1, g = 3): the grouped 1x1 convolutions around each unit's
# depthwise layer, bottleneck = a quarter of the unit's output channels; stage 2's first unit outputs
# 240 - 24 = 216 channels beside its shortcut.
GROUPED_POINTWISE = (
    ConvLayer("shfv1_s2u1_gpw2", 28, 28, 60, 216, 1, 1, "same", groups=3),
    ConvLayer("shfv1_s2_gpw1", 28, 28, 240, 60, 1, 1, "same", groups=3),
    ConvLayer("shfv1_s2_gpw2", 28, 28, 60, 240, 1, 1, "same", groups=3),
    ConvLayer("shfv1_s3_gpw1", 14, 14, 480, 120, 1, 1, "same", groups=3),
    ConvLayer("shfv1_s3_gpw2", 14, 14, 120, 480, 1, 1, "same", groups=3),
    ConvLayer("shfv1_s4_gpw1", 7, 7, 960, 240, 1, 1, "same", groups=3),
    ConvLayer("shfv1_s4_gpw2", 7, 7, 240, 960, 1, 1, "same", groups=3),
)

# The classic ResNet/VGG 3x3 layers, one per stage: the shapes the standard-conv (Winograd) target is set on
# (auto at the avx512 level runs F(6x6) at 56x56 and 28x28 and F(4x4) at 14x14, at the 8-wide levels F(4x4),
# F(4x4) and F(2x2), and the direct GEMM at 7x7).
STANDARD_EXTRA = (ConvLayer("std_3x3", 56, 56, 64, 64, 3, 1, "same"),
                  ConvLayer("std_3x3_s2", 28, 28, 128, 128, 3, 1, "same"),
                  ConvLayer("std_3x3_s3", 14, 14, 256, 256, 3, 1, "same"),
                  ConvLayer("std_3x3_s4", 7, 7, 512, 512, 3, 1, "same"))

GROUP_COUNTS = (1, 2, 4, 8, 16, 32, 128)
GROUP_SWEEP = tuple(ConvLayer(f"grp_g{g}", 28, 28, 128, 128, 3, 1, "same", groups=g) for g in GROUP_COUNTS)

NETWORK_ROWS = MOBILENET_V1 + XCEPTION
POINTWISE = tuple(r for r in NETWORK_ROWS if r.is_pointwise) + MOBILE_POINTWISE
DEPTHWISE = tuple(r for r in NETWORK_ROWS if r.is_depthwise) + MOBILE_DEPTHWISE
STANDARD = tuple(r for r in NETWORK_ROWS if r.kernel > 1 and r.groups == 1) + MOBILE_STEMS + STANDARD_EXTRA


def network_of(row: ConvLayer) -> str:
    """Which network a row comes from (``mobilenet_v1``, ``xception``, ``efficientnet_b0``, ...), or
    ``standard`` / ``group`` for the extra rows."""
    return {"mnv1": "mobilenet_v1", "xc": "xception", "std": "standard", "grp": "group", "effb0": "efficientnet_b0",
            "mnv3": "mobilenet_v3", "mix": "mixed_kernels", "shfv1": "shufflenet_v1"}[row.name.split("_")[0]]


def _check() -> None:
    # The tables are typed in by hand from the papers: make a slip fail at import, not in a benchmark.
    mobile_rows = MOBILE_DEPTHWISE + MOBILE_POINTWISE + MOBILE_STEMS + GROUPED_POINTWISE
    names = [r.name for r in NETWORK_ROWS + STANDARD_EXTRA + GROUP_SWEEP + mobile_rows]
    assert len(names) == len(set(names)), "duplicate layer name"
    shapes = [(r.H, r.W, r.C_in, r.C_out, r.kernel, r.stride, r.padding, r.groups) for r in NETWORK_ROWS]
    assert len(shapes) == len(set(shapes)), "a network table repeats a shape"
    assert len(POINTWISE) + len(DEPTHWISE) + len(STANDARD) == len(NETWORK_ROWS) + len(STANDARD_EXTRA) + len(
        MOBILE_DEPTHWISE) + len(MOBILE_POINTWISE) + len(MOBILE_STEMS)
    assert all(r.is_depthwise for r in MOBILE_DEPTHWISE) and all(r.is_pointwise for r in MOBILE_POINTWISE)
    assert all(r.kernel == 1 and 1 < r.groups < r.C_in for r in GROUPED_POINTWISE)
    mobile = [(r.H, r.C_in, r.C_out, r.kernel, r.stride, r.groups) for r in mobile_rows]
    assert len(mobile) == len(set(mobile)), "the mobile tables repeat a shape"
    # Each row's output feeds the next layer of its network (strided layers halve H, W).
    assert [r.out_hw[0] for r in MOBILENET_V1] == [112, 112, 112, 56, 56, 56, 56, 28, 28, 28, 28, 14, 14,
                                                  14, 14, 7, 7, 7, 7]
    assert XCEPTION[0].out_hw == (149, 149) and XCEPTION[1].out_hw == (147, 147)
    assert [r.out_hw[0] for r in XCEPTION if r.stride == 2 and r.kernel == 1] == [74, 37, 19, 10]


_check()
