"""Padding forms resolved to explicit (top, bottom, left, right) pads, and output sizes.

Accepted forms: ``"valid"``; ``"same"`` with TensorFlow's meaning (output = ceil(in / stride), the odd
extra pixel at the bottom/right); an int; a ``(pad_h, pad_w)`` pair; ``((top, bottom), (left, right))``.
"""
from __future__ import annotations

import numbers
from typing import Tuple, Union

Pads = Tuple[int, int, int, int]
PaddingLike = Union[str, int, Tuple[int, int], Tuple[Tuple[int, int], Tuple[int, int]]]


def _nonneg(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"padding: {what} must be a non-negative int, got {value!r}")
    if value < 0:
        raise ValueError(f"padding: {what} must be non-negative, got {value}")
    return int(value)


def effective_kernel(k: int, dilation: int) -> int:
    """Extent of a dilated kernel: the span from its first to its last tap."""
    return (k - 1) * dilation + 1


def same_pads(size: int, k: int, stride: int, dilation: int) -> Tuple[int, int]:
    """TensorFlow "same" pads on one axis: (before, after), the odd pixel after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + effective_kernel(k, dilation) - size, 0)
    return total // 2, total - total // 2


def resolve_padding(padding: PaddingLike, in_hw: Tuple[int, int], kernel_hw: Tuple[int, int],
                    stride_hw: Tuple[int, int], dilation_hw: Tuple[int, int] = (1, 1)) -> Pads:
    """Explicit ``(top, bottom, left, right)`` pads for ``padding`` at this input size."""
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return (0, 0, 0, 0)
        if mode == "same":
            top, bottom = same_pads(in_hw[0], kernel_hw[0], stride_hw[0], dilation_hw[0])
            left, right = same_pads(in_hw[1], kernel_hw[1], stride_hw[1], dilation_hw[1])
            return (top, bottom, left, right)
        raise ValueError(f"padding must be 'valid', 'same', an int, (pad_h, pad_w) or "
                         f"((top, bottom), (left, right)); got {padding!r}")
    if isinstance(padding, numbers.Integral) and not isinstance(padding, bool):
        p = _nonneg(padding, "pad")
        return (p, p, p, p)
    try:
        ph, pw = padding
    except (TypeError, ValueError):
        raise ValueError(f"padding must be 'valid', 'same', an int, (pad_h, pad_w) or "
                         f"((top, bottom), (left, right)); got {padding!r}") from None
    if isinstance(ph, numbers.Integral) and isinstance(pw, numbers.Integral):
        h, w = _nonneg(ph, "pad_h"), _nonneg(pw, "pad_w")
        return (h, h, w, w)
    try:
        (top, bottom), (left, right) = ph, pw
    except (TypeError, ValueError):
        raise ValueError(f"padding must be 'valid', 'same', an int, (pad_h, pad_w) or "
                         f"((top, bottom), (left, right)); got {padding!r}") from None
    return (_nonneg(top, "top"), _nonneg(bottom, "bottom"), _nonneg(left, "left"), _nonneg(right, "right"))


def output_size(in_size: int, k: int, stride: int, dilation: int, pad_before: int, pad_after: int,
                ceil_mode: bool = False) -> int:
    """Output length of a window op on one axis; <= 0 means the window does not fit the padded input."""
    span = in_size + pad_before + pad_after - effective_kernel(k, dilation)
    if not ceil_mode:
        return span // stride + 1 if span >= 0 else 0
    # Rounding up keeps one window that overhangs the padded input by less than a stride, also when the
    # window is longer than the padded input (ONNX, PyTorch).
    out = -(-span // stride) + 1
    # ONNX/PyTorch rule: the last window must start inside the input or its left padding.
    if (out - 1) * stride >= in_size + pad_before:
        out -= 1
    return max(out, 0)
