"""Argument checks at the API boundary: arrays become C-contiguous float32 once, and every rejection
names the argument and shows the shapes involved, so nothing malformed ever reaches a nogil kernel.

Data (images, feature maps: an operator's ``x``, a model's inputs) must be floating point: float64 and
float16 are converted, but integer and bool arrays are refused, since an 8-bit image read as floats
0..255 gives plausible-looking nonsense rather than an error. Parameters (weights, biases, scales) are
numbers as written, integers included."""
from __future__ import annotations

import numbers
from typing import Optional, Sequence, Tuple

import numpy as np

from .memory import aligned_empty


def check_input_dtype(name: str, dtype: np.dtype) -> None:
    """Refuse a data array of integer or bool ``dtype`` (see the module docstring), saying how to convert it."""
    if dtype == np.bool_ or np.issubdtype(dtype, np.integer):
        raise TypeError(f"{name}: expected float32 (or float64/float16, converted), found {dtype}: convert with "
                        f"x.astype(np.float32) / 255 or the scale your model was trained with")


def as_float32_array(name: str, x, ndim: Optional[int] = None, *, ndims: Sequence[int] = (),
                     integers: bool = False) -> np.ndarray:
    """``x`` as a C-contiguous float32 array (copied only when needed) of rank ``ndim`` (or one of ``ndims``).
    Integer and bool arrays only with ``integers`` (parameters, see the module docstring)."""
    # The graph runtime calls this per layer per run with arrays that already qualify: answer at once.
    if (type(x) is np.ndarray and x.dtype == np.float32 and x.flags.c_contiguous
            and (x.ndim == ndim if ndim is not None else (not ndims or x.ndim in ndims))):
        return x
    if isinstance(x, (str, bytes)):
        raise TypeError(f"{name} must be a numeric array, got {type(x).__name__}")
    arr = np.asarray(x)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.floating)
                                   or np.issubdtype(arr.dtype, np.integer)
                                   or arr.dtype == np.bool_):
        raise TypeError(f"{name} must hold real numbers (float32 preferred), got dtype {arr.dtype}")
    if not integers:
        check_input_dtype(name, arr.dtype)
    allowed = (ndim,) if ndim is not None else tuple(ndims)
    if allowed and arr.ndim not in allowed:
        want = " or ".join(str(a) for a in allowed)
        raise ValueError(f"{name} must have {want} dimensions, got shape {arr.shape}")
    # np.asarray keeps 0-d arrays 0-d (np.ascontiguousarray would make them 1-d).
    return np.asarray(arr, dtype=np.float32, order="C")


def positive_pair(name: str, value) -> Tuple[int, int]:
    """An int or an ``(h, w)`` pair of positive ints, as a pair."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        pair = (int(value), int(value))
    else:
        try:
            h, w = value
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be an int or an (h, w) pair, got {value!r}") from None
        if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in (h, w)):
            raise TypeError(f"{name} must be an int or an (h, w) pair of ints, got {value!r}")
        pair = (int(h), int(w))
    if pair[0] < 1 or pair[1] < 1:
        raise ValueError(f"{name} must be positive, got {value!r}")
    return pair


def check_bias(b, channels: int, name: str = "b") -> Optional[np.ndarray]:
    """A private float32 copy of ``b`` (``channels`` entries), or None: operators own their parameters."""
    if b is None:
        return None
    bias = as_float32_array(name, b, integers=True).copy()
    if bias.shape != (channels,):
        raise ValueError(f"{name} must have shape ({channels},) to match the output channels, "
                         f"got shape {bias.shape}")
    return bias


def check_out(out: Optional[np.ndarray], shape: Tuple[int, ...], name: str = "out",
              inputs: Sequence[np.ndarray] = ()) -> np.ndarray:
    """``out`` if it can receive a result of ``shape`` in place, else a new array; never a silent copy.

    ``out`` may not overlap any of ``inputs``: the kernels read input pixels after writing output pixels.
    """
    if out is None:
        return aligned_empty(shape)
    if type(out) is not np.ndarray and not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(out).__name__}")
    if out.dtype != np.float32:
        raise TypeError(f"{name} must be float32, got {out.dtype}")
    if out.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {out.shape}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError(f"{name} must be a writeable C-contiguous array")
    if any(np.may_share_memory(out, x) for x in inputs):
        raise ValueError(f"{name} must not share memory with x: the kernels read x after writing {name}")
    return out
