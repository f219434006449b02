"""Which strategy serves a standard or group convolution, and why: an explicit, testable choice.

    direct    indirect GEMM: a row pointer per output pixel and tap, no copy; serves every shape
    im2col    the patch matrix of each block of output pixels copied to a buffer, then GEMM
    winograd  F(2x2, 3x3): 2.25x fewer multiplications; only 3x3, stride 1, dilation 1
"""
from __future__ import annotations

from typing import NamedTuple, Tuple

STRATEGIES = ("auto", "direct", "im2col", "winograd")


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


def select(kernel: Tuple[int, int], stride: Tuple[int, int], dilation: Tuple[int, int], groups: int,
           c_in: int, c_out: int, out_hw: Tuple[int, int]) -> Choice:
    """The strategy "auto" picks for this layer shape (per image)."""
    cg, og = c_in // groups, c_out // groups
    pixels = out_hw[0] * out_hw[1]
    if kernel == (1, 1):
        return Choice("direct", "1x1: the pointwise GEMM reads the input rows in place")
    if not winograd_unsupported(kernel, stride, dilation) and cg >= 16 and og >= 16 and pixels >= 64:
        return Choice("winograd", f"3x3 stride 1 with {cg}->{og} channels per group: "
                                  "F(2x2,3x3) does 2.25x fewer multiplications")
    if cg < 8:
        return Choice("im2col", f"{cg} input channels per group: a contiguous patch row of "
                                f"{kernel[0] * kernel[1] * cg} feeds the GEMM better than {cg}-long taps")
    return Choice("direct", f"{kernel[0]}x{kernel[1]} stride {stride}: indirect GEMM, no im2col copy")
