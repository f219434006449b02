"""Weight packing, done once per weight array: HWIO convolution weights into the GEMM micro-kernel's
panels of NR output channels (in the K order of NHWC or, for a first layer, of NCHW input), Winograd's
transformed weights and narrow-group blocks, in 64-byte aligned buffers.

Every packing but Winograd's only moves and zero-pads the weights, so each has its inverse here
(``unpack_*``): an operator keeps one packed form and no HWIO copy, and re-derives the HWIO weights
when it needs them again (another packing, ``op.w``)."""
from __future__ import annotations

import numpy as np

from . import _kernels
from .memory import aligned_zeros

NR = _kernels.GEMM_NR
NR_NARROW = _kernels.GEMM_NR_NARROW

# Winograd F(mxm, 3x3) weight transforms (Lavin & Gray 2015), U = G g G^T, by output tile size m: the G
# that matches the input and output transforms of ukernels/winograd/generic.h (points 0, +-1, inf for
# m = 2; 0, +-1, +-2, inf for m = 4; 0, +-1, +-2, +-1/2, inf for m = 6).
WINOGRAD_TILES = (2, 4, 6)
_WINO_G = {
    2: np.array([[1, 0, 0], [1 / 2, 1 / 2, 1 / 2], [1 / 2, -1 / 2, 1 / 2], [0, 0, 1]]),
    4: np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6], [1 / 24, 1 / 12, 1 / 6],
                 [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]]),
    6: np.array([[1, 0, 0], [-2 / 9, -2 / 9, -2 / 9], [-2 / 9, 2 / 9, -2 / 9], [1 / 90, 1 / 45, 2 / 45],
                 [1 / 90, -1 / 45, 2 / 45], [1 / 45, 1 / 90, 1 / 180], [1 / 45, -1 / 90, 1 / 180], [0, 0, 1]]),
}


def panel_width(out_channels: int) -> int:
    """Columns per packed panel: the wide tile, or the 16-wide one when a (group's) output is narrow
    enough that the wide tile would compute mostly padding."""
    return NR_NARROW if out_channels <= NR_NARROW else NR


def _panels(w: np.ndarray) -> np.ndarray:
    """(..., K, O) -> (..., P, K, nr): O split into zero-padded panels of nr columns.

    A last panel of wide-tile layers with at most 16 real columns is stored 16 wide (K x 16 floats at
    the start of its slot, zeros after) and computed by the 16-wide tile, which does half the work of
    the wide one: 40 output channels cost 48 columns instead of 64, 80 cost 80 instead of 96.
    """
    *lead, k, o = w.shape
    nr = panel_width(o)
    p = -(-o // nr)
    packed = aligned_zeros((*lead, p, k, nr), mapped=True)
    # Panel by panel, so that packing needs no padded copy of the weights beside them.
    for j in range(p):
        columns = w[..., j * nr:(j + 1) * nr]
        if nr > NR_NARROW and j == p - 1 and columns.shape[-1] <= NR_NARROW:
            slot = packed[..., j, :, :].reshape(*lead, k * nr)[..., :k * NR_NARROW]
            slot.reshape(*lead, k, NR_NARROW)[..., :columns.shape[-1]] = columns
        else:
            packed[..., j, :, :columns.shape[-1]] = columns
    return packed


def _unpanel(packed: np.ndarray, o: int) -> np.ndarray:
    """The inverse of :func:`_panels`: (..., P, K, nr) -> (..., K, o)."""
    *lead, p, k, nr = packed.shape
    out = np.empty((*lead, k, o), dtype=np.float32)
    full = p if not (nr > NR_NARROW and 0 < o - (p - 1) * nr <= NR_NARROW) else p - 1
    out[..., :full * nr] = np.moveaxis(packed[..., :full, :, :], -3, -2).reshape(*lead, k, full * nr)[..., :o]
    if full < p:
        last = packed[..., p - 1, :, :].reshape(*lead, k * nr)[..., :k * NR_NARROW]
        out[..., full * nr:] = last.reshape(*lead, k, NR_NARROW)[..., :o - full * nr]
    return out


def pack_gemm_weights(w: np.ndarray, groups: int) -> np.ndarray:
    """HWIO weights (KH, KW, C_in/G, C_out) -> (G, P, KH*KW*C_in/G, nr) for the GEMM kernels.

    Row r = (kh*KW + kw)*C_in/G + i of a group's panels is tap (kh, kw), input channel i: the order in
    which both the direct and the im2col kernels walk K.
    """
    kh, kw, cg, co = w.shape
    og = co // groups
    per_group = w.reshape(kh * kw * cg, groups, og).transpose(1, 0, 2)
    return _panels(per_group)


def unpack_gemm_weights(packed: np.ndarray, shape: tuple[int, int, int, int], groups: int) -> np.ndarray:
    """The HWIO weights of ``shape`` that :func:`pack_gemm_weights` packed into ``packed``."""
    kh, kw, cg, co = shape
    per_group = _unpanel(packed, co // groups)  # (G, K, og)
    return np.ascontiguousarray(per_group.transpose(1, 0, 2).reshape(kh, kw, cg, co))


def pack_channel_rows(w: np.ndarray, groups: int = 1) -> np.ndarray:
    """Ungrouped HWIO weights (KH, KW, C_in, C_out) -> (1, P, C_in*KH*KW, nr) for ``conv2d_few_channels``:
    row r = (i*KH + kh)*KW + kw is input channel i, tap (kh, kw), the order of an NCHW image's rows."""
    if groups != 1:
        raise ValueError(f"the few-channel kernel serves ungrouped convolutions only, got groups={groups}")
    kh, kw, ci, co = w.shape
    return _panels(w.transpose(2, 0, 1, 3).reshape(1, ci * kh * kw, co))


def unpack_channel_rows(packed: np.ndarray, shape: tuple[int, int, int, int], groups: int = 1) -> np.ndarray:
    """The HWIO weights of ``shape`` that :func:`pack_channel_rows` packed into ``packed``."""
    kh, kw, ci, co = shape
    rows = _unpanel(packed, co)[0]  # (C_in*KH*KW, C_out)
    return np.ascontiguousarray(rows.reshape(ci, kh, kw, co).transpose(1, 2, 0, 3))


def pack_winograd_weights(w: np.ndarray, groups: int, tile: int = 4) -> np.ndarray:
    """3x3 HWIO weights -> (T*T, G, P, C_in/G, nr) for Winograd F(tile x tile, 3x3), T = tile + 2: the T*T
    transformed taps, each a GEMM operand, transformed in float64 and rounded once."""
    if tile not in _WINO_G:
        raise ValueError(f"Winograd output tiles are {WINOGRAD_TILES}, got tile={tile}")
    _, _, cg, co = w.shape
    og = co // groups
    g = _WINO_G[tile]
    u = np.einsum("ak,klio,bl->abio", g, w.astype(np.float64), g)
    u = u.reshape(len(g) ** 2, cg, groups, og).transpose(0, 2, 1, 3).astype(np.float32)
    return _panels(u)


def pack_narrow_group_weights(w: np.ndarray, groups: int):
    """HWIO weights of a narrow-group convolution -> ((ceil(C_out/16), KH*KW, C_in/G, 16) weights,
    (C_in/G, 16) lane indices): lane o of a 16-channel block reads input channel i of its own group,
    found at offset (o // OG) * CG + i from the block's first input channel."""
    kh, kw, cg, co = w.shape
    og = co // groups
    blocks = -(-co // 16)
    padded = np.zeros((kh * kw, cg, blocks * 16), dtype=np.float32)
    padded[..., :co] = w.reshape(kh * kw, cg, co)
    packed = aligned_zeros((blocks, kh * kw, cg, 16), mapped=True)
    packed[...] = padded.reshape(kh * kw, cg, blocks, 16).transpose(2, 0, 1, 3)
    lanes = np.arange(16)
    idx = ((lanes // og) * cg)[None, :] + np.arange(cg)[:, None]
    return packed, np.ascontiguousarray(idx, dtype=np.int32)


def unpack_narrow_group_weights(packed, shape: tuple[int, int, int, int], groups: int) -> np.ndarray:
    """The HWIO weights of ``shape`` that :func:`pack_narrow_group_weights` packed into ``packed``
    (its weights and lane indices)."""
    weights, _ = packed
    kh, kw, cg, co = shape
    blocks = weights.shape[0]
    padded = weights.transpose(1, 2, 0, 3).reshape(kh * kw, cg, blocks * 16)
    return np.ascontiguousarray(padded[..., :co].reshape(kh, kw, cg, co))
