"""Which strategy serves a standard or group convolution, and why: an explicit, testable choice.

    direct    indirect GEMM: a row pointer per output pixel and tap, no copy; serves every shape
    im2col    the patch matrix of each block of output pixels copied to a buffer, then GEMM
    winograd  F(2x2, 3x3): 2.25x fewer multiplications; only 3x3, stride 1, dilation 1
"""
from __future__ import annotations

from typing import NamedTuple, Tuple

from ._kernels import ROW_TAP_FLOATS, WHOLE_K_ROWS

STRATEGIES = ("auto", "direct", "im2col", "winograd")

# Input channels up to which an ungrouped convolution runs the few-channel kernel (an RGB first layer,
# NHWC or NCHW), whose taps are one channel of one kernel position wide, the pixels read a stride apart.
FEW_CHANNELS = 4


class Choice(NamedTuple):
    strategy: str
    reason: str


def winograd_unsupported(kernel: Tuple[int, int], stride: Tuple[int, int],
                         dilation: Tuple[int, int]) -> str:
    """Why Winograd F(2x2, 3x3) cannot serve this shape ('' if it can)."""
    if kernel != (3, 3):
        return f"winograd needs a 3x3 kernel, got {kernel[0]}x{kernel[1]}"
    if stride != (1, 1):
        return f"winograd needs stride 1, got stride {stride}"
    if dilation != (1, 1):
        return f"winograd needs dilation 1, got dilation {dilation}"
    return ""


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
           c_in: int, c_out: int, out_hw: Tuple[int, int], narrow_groups_ok: bool) -> Choice:
    """The strategy "auto" picks for this layer shape (per image).

    The thresholds come from timing every strategy on MobileNet/Xception-like layers on an AVX-512
    machine: the direct GEMM reaches 200-250 GFLOP/s per core, so Winograd's transforms only pay off
    once the channel counts make its GEMMs long (>= 192 channels each way); im2col's copy never paid
    for itself (3-channel first layers: direct 126 GFLOP/s per core with row taps, im2col 95; the
    few-channel kernel has since replaced the row taps there), so it is there on request only.
    """
    cg, og = c_in // groups, c_out // groups
    pixels = out_hw[0] * out_hw[1]
    kernel_name = direct_kernel(groups, cg, og, narrow_groups_ok)
    if kernel_name == "gemm" and not winograd_unsupported(kernel, stride, dilation) \
            and cg >= 192 and og >= 192 and pixels >= 100:
        return Choice("winograd", f"3x3 stride 1 with {cg}->{og} channels per group: F(2x2,3x3) does "
                                  "2.25x fewer multiplications and its GEMMs are long enough to pay for "
                                  "the transforms")
    reason = _KERNEL_REASONS[kernel_name]
    if kernel_name == "gemm" and groups == 1 and dilation[1] == 1 and kernel[1] * cg <= ROW_TAP_FLOATS:
        reason += f"; each kernel row ({kernel[1]} taps x {cg} channels) is read as one contiguous tap"
    if kernel_name == "gemm" and groups > 1 and (kernel != (1, 1) or stride != (1, 1)) \
            and kernel[0] * kernel[1] * cg <= WHOLE_K_ROWS:
        reason += "; the groups of a block of pixels share one walk of its windows"
    return Choice("direct", f"{kernel[0]}x{kernel[1]} stride {stride}, {cg}->{og} channels per group: " + reason)
