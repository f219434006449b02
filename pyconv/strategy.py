"""Which strategy serves a standard or group convolution, and why: an explicit, testable choice.

    direct    indirect GEMM: a row pointer per output pixel and tap, no copy; serves every shape
    im2col    the patch matrix of each block of output pixels copied to a buffer, then GEMM
    winograd  F(mxm, 3x3), m = 2, 4 or 6 (``winograd_tile``): 2.25x, 4x or 5.06x fewer multiplications;
              only 3x3, stride 1, dilation 1
"""
from __future__ import annotations

from typing import NamedTuple, Tuple

from ._kernels import ROW_TAP_FLOATS, WHOLE_K_ROWS

STRATEGIES = ("auto", "direct", "im2col", "winograd")

# Input channels up to which an ungrouped convolution runs the few-channel kernel (an RGB first layer,
# NHWC or NCHW), whose taps are one channel of one kernel position wide, the pixels read a stride apart.
FEW_CHANNELS = 4


# Winograd under "auto": at least this many channels per group each way, and an output at least this
# many pixels on each side (``winograd_pays`` asks more of most layers).
WINOGRAD_MIN_CHANNELS = 16
WINOGRAD_MIN_SIDE = 14


class Choice(NamedTuple):
    strategy: str
    reason: str


def winograd_unsupported(kernel: Tuple[int, int], stride: Tuple[int, int],
                         dilation: Tuple[int, int]) -> str:
    """Why Winograd F(mxm, 3x3) cannot serve this shape ('' if it can)."""
    if kernel != (3, 3):
        return f"winograd needs a 3x3 kernel, got {kernel[0]}x{kernel[1]}"
    if stride != (1, 1):
        return f"winograd needs stride 1, got stride {stride}"
    if dilation != (1, 1):
        return f"winograd needs dilation 1, got dilation {dilation}"
    return ""


def winograd_tile(groups: int, cg: int, og: int, out_hw: Tuple[int, int], level: str) -> int:
    """The output tile m of the Winograd F(mxm, 3x3) that serves a layer of ``groups`` groups of cg -> og
    channels and an output of out_hw pixels at instruction-set level ``level``: 6, 4 or 2.

    Measured on Zen 4 at 2 threads (ms, F(2) / F(4) / F(6)).  F(6) (64 GEMMs per 6x6 outputs) wins on
    ungrouped maps of >= 28 pixels each way with <= 128 channels at the avx512 level (28x28x128 0.57 /
    0.45 / 0.43; 112x112x64 2.6 / 1.6 / 1.5), but its weights, 7x the 3x3 ones, fill the caches with
    more channels (28x28x256 2.3 / 1.6 / 2.6) and its short GEMMs over a group's channels lose
    (28x28x128 G=2 0.31 / 0.22 / 0.30, G=4 0.20 / 0.15 / 0.24).  The 8-wide levels' GEMMs need more rows
    per weight: F(6) wins there only on large maps or few channels (56x56x64 0.69 / 0.61 / 0.66;
    112x112x64 2.9 / 2.0 / 1.8; 28x28x32 0.063 / 0.088 / 0.061), and on 14x14 maps with many channels
    F(2)'s 49 tiles beat F(4)'s 16, which cover 16x16 (14x14x256 0.67 / 0.78 / 1.07; at avx512 0.58 /
    0.57 / 0.72).  An output of at most 2x2 pixels is one F(2) tile, 16 GEMM rows where F(4) would
    compute 36.
    """
    side, width = min(out_hw), max(cg, og)
    if max(out_hw) <= 2:
        return 2
    if groups == 1 and side >= 28 and width <= 128 and (level == "avx512" or side > 56 or width <= 32):
        return 6
    if level != "avx512" and side < 28 and min(cg, og) >= 128:
        return 2
    return 4


def winograd_pays(groups: int, cg: int, og: int, out_hw: Tuple[int, int], level: str) -> bool:
    """Whether Winograd (with ``winograd_tile``'s tile) beats the direct GEMM on a 3x3 stride-1 layer of
    ``groups`` groups of cg -> og channels and an out_hw output, at instruction-set level ``level``.

    Measured on Zen 4 at 2 threads (direct / Winograd, ms): at the avx512 level it wins from 32
    channels and 14x14 (28x28x32 0.080 / 0.056, 28x28x128 G=2 0.53 / 0.22, G=4 0.27 / 0.15, 28x28x64
    G=2 0.144 / 0.076, 14x14x256 G=4 0.27 / 0.16), and from 16 on maps of >= 28x28 (28x28x128 G=8
    0.143 / 0.127, 56x56x128 G=8 0.60 / 0.43, 56x56x16 0.078 / 0.058; but 14x14x256 G=16 0.075 /
    0.075).  The 8-wide levels' GEMMs over the short K of a group's channels win less: with 32
    channels a group only on 28x28 maps of >= 128 channels in all
    (28x28x128 G=4 0.273 / 0.200, 28x28x256 G=8 0.55 / 0.41, but 28x28x64 G=2 0.140 / 0.144 and
    14x14x128 G=4 0.070 / 0.071), with 64 from 14x14 (14x14x256 G=4 0.271 / 0.173, 14x14x128 G=2
    0.135 / 0.087); ungrouped from 64 channels or 28x28 (28x28x32 0.083 / 0.061, 14x14x64 0.072 /
    0.066, but 14x14x32 0.019 / 0.029).  Levels not measured (neon, scalar) follow avx2.
    """
    side, channels = min(out_hw), min(cg, og)
    if channels < WINOGRAD_MIN_CHANNELS or side < WINOGRAD_MIN_SIDE:
        return False
    if level == "avx512":
        return channels >= 32 or side >= 28
    if channels < 32:
        return False
    if groups > 1:
        return channels >= 64 or (side >= 28 and groups * channels >= 128)
    return channels >= 64 or side >= 28


def direct_kernel(groups: int, cg: int, og: int, narrow_groups_ok: bool) -> str:
    """The micro-kernel the direct strategy runs: "few-channels" (an ungrouped layer over at most
    FEW_CHANNELS input channels), "depthwise" (one input channel per group), "narrow-groups" (groups a
    few channels wide, vectorised across groups) or "gemm".

    Measured (28x28, 3x3 128->128, one thread, AVX-512): with 16 output channels per group the 12x16
    GEMM tile beats the narrow-group kernel (101 vs 62 GFLOP/s); with 8 or 4 it loses (48 vs 60, 22 vs
    47), its 16-wide panels being half or three quarters padding.  With 32 or 64 the 12x32 tile runs at
    110 and 113 GFLOP/s, as fast as an ungrouped layer: the groups of a pixel block share one walk of
    the windows.  (AVX2's GEMM, whose vectors are 8 wide, computes no padding at 8 per group and edges
    out the narrow kernel there, 61 vs 56 GFLOP/s; at 4 it loses too, 24 vs 42.)
    """
    if groups == 1 and cg <= FEW_CHANNELS:
        return "few-channels"
    if groups > 1 and cg == 1:
        return "depthwise"
    if groups > 1 and og <= 8 and narrow_groups_ok:
        return "narrow-groups"
    return "gemm"


_KERNEL_REASONS = {
    "few-channels": "few input channels: a row pointer per channel and tap, pixels read in place",
    "depthwise": "one input channel per group: the depthwise kernel, channels vectorised",
    "narrow-groups": "narrow groups: 16 output channels of several groups per vector (a GEMM tile would "
                     "compute mostly padding)",
    "gemm": "indirect GEMM, a row pointer per pixel and tap, no im2col copy",
}


def select(kernel: Tuple[int, int], stride: Tuple[int, int], dilation: Tuple[int, int], groups: int,
           c_in: int, c_out: int, out_hw: Tuple[int, int], narrow_groups_ok: bool,
           level: str) -> Choice:
    """The strategy "auto" picks for this layer shape (per image).

    The thresholds come from timing every strategy on MobileNet/Xception/ResNet-like layers on Zen 4
    (AVX2 and AVX-512 FMA peaks equal there): the direct GEMM runs near peak (3x3 64->64 at 56x56, one
    thread: 2.3 ms at either level), and Winograd F(4x4)/F(6x6), its transforms vectorised across
    channels and its GEMMs on the same micro-kernels, beat it 2.6-3.2x at one thread on 3x3 stride-1
    layers of 32 to 256 channels and maps from 14x14 (56x56x64: 0.79 ms; 28x28x128: 0.73; 14x14x256:
    0.86 against 2.2; 28x28x32: 0.056 against 0.144; 14x14x64: 0.073 against 0.147).  It loses where
    its transformed weights dwarf the work (7x7x512: F(4) 2.3 ms, direct 2.3: 4 tiles per image, 37 MB
    of weights) and wins less below 32 channels (56x56x16: 1.4-1.6x).  im2col's copy never paid for
    itself (3-channel first layers: direct 126 GFLOP/s per core with row taps, im2col 95; the
    few-channel kernel has since replaced the row taps there), so it is there on request only.
    ``level``, the instruction-set level in use, bounds Winograd further (``winograd_pays``).
    """
    cg, og = c_in // groups, c_out // groups
    kernel_name = direct_kernel(groups, cg, og, narrow_groups_ok)
    if kernel_name == "gemm" and not winograd_unsupported(kernel, stride, dilation) \
            and winograd_pays(groups, cg, og, out_hw, level):
        m = winograd_tile(groups, cg, og, out_hw, level)
        return Choice("winograd", f"3x3 stride 1 with {cg}->{og} channels per group on a "
                                  f"{out_hw[0]}x{out_hw[1]} output: F({m}x{m},3x3) does "
                                  f"{9 * m * m / (m + 2) ** 2:.2f}x fewer multiplications, in GEMMs long "
                                  f"enough to pay for the transforms")
    reason = _KERNEL_REASONS[kernel_name]
    if kernel_name == "gemm" and groups == 1 and dilation[1] == 1 and kernel[1] * cg <= ROW_TAP_FLOATS:
        reason += f"; each kernel row ({kernel[1]} taps x {cg} channels) is read as one contiguous tap"
    if kernel_name == "gemm" and groups > 1 and (kernel != (1, 1) or stride != (1, 1)) \
            and kernel[0] * kernel[1] * cg <= WHOLE_K_ROWS:
        reason += "; the groups of a block of pixels share one walk of its windows"
    return Choice("direct", f"{kernel[0]}x{kernel[1]} stride {stride}, {cg}->{og} channels per group: " + reason)
