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
# many pixels on each side (see ``select``).
WINOGRAD_MIN_CHANNELS = 32
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


def winograd_tile(cg: int, og: int, out_hw: Tuple[int, int]) -> int:
    """The output tile m of the Winograd F(mxm, 3x3) that serves a layer of cg -> og channels per group
    and an output of out_hw pixels: 6, 4 or 2.

    Measured at one thread on Zen 4 (avx512): F(6) (64 GEMMs per 6x6 outputs) beats F(4) (36 per 4x4)
    on maps of >= 28 pixels each way with <= 128 channels (56x56x64: 0.79 ms against 0.78 - a draw;
    28x28x128 0.73 against 0.83; 112x112x64 3.0 against 3.6; 147x147x128 17.6 against 21.5), but its
    tiles waste more of a small map (14x14x256: 1.40 against 0.86, its 3x3 tiles covering 18x18) and
    its weights, 7x the 3x3 ones, more of the caches with many channels (74x74x256: 21.5 against 20.3).
    An output of at most 2x2 pixels is one F(2) tile, 16 GEMM rows where F(4) would compute 36.
    """
    if max(out_hw) <= 2:
        return 2
    if min(out_hw) >= 28 and max(cg, og) <= 128:
        return 6
    return 4


def winograd_pays(groups: int, cg: int, og: int, out_hw: Tuple[int, int], level: str) -> bool:
    """Whether Winograd beats the direct GEMM on a 3x3 stride-1 layer of cg -> og channels per group
    and an out_hw output, at instruction-set level ``level``.

    Measured on Zen 4 at 2 threads (direct / Winograd, ms): at the avx512 level it wins from 32
    channels and 14x14 (28x28x32 0.088 / 0.060, 28x28x128 G=2 0.53 / 0.39, G=4 0.275 / 0.275,
    14x14x256 G=4 0.276 / 0.262).  The 8-wide levels' GEMMs over the short K of a group's channels
    lose more: avx2 28x28x128 G=4 (32 a group) 0.28 / 0.40, 14x14x256 G=4 0.28 / 0.33, 28x28x64 G=2
    0.147 / 0.192, and 14x14x32 0.027 / 0.035; they win on 64 channels a group at 28x28 and more
    (G=2 0.67 / 0.51, 28x28x256 G=4 1.08 / 1.04) and ungrouped from 64 channels or 28x28
    (28x28x32 0.090 / 0.065, 14x14x64 0.077 / 0.059).  Levels not measured (neon, scalar) follow avx2.
    """
    side, channels = min(out_hw), min(cg, og)
    if channels < WINOGRAD_MIN_CHANNELS or side < WINOGRAD_MIN_SIDE:
        return False
    if level == "avx512":
        return True
    if groups > 1:
        return channels >= 64 and side >= 28
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
        m = winograd_tile(cg, og, out_hw)
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
