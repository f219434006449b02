"""Model weights: read and check an ``.npz``, write one, or generate deterministic seeded weights.

An ``.npz`` holds one array per ``<layer>/<param>``. Without one, every array is generated from
``(seed, layer name, param name)`` and the config alone, so the same config gives bit-identical
weights on any machine and any NumPy version:

* a 64-bit seed is the first 8 bytes (little-endian) of ``sha256(f"{seed}\\0{layer}\\0{param}")``;
* ``numpy.random.PCG64(that seed).random_raw(size)`` gives ``size`` uint64 words (the raw bit-generator
  stream and its SeedSequence seeding are fixed algorithms, unlike ``Generator.normal``);
* each word ``r`` becomes ``u = (r >> 11) / 2**53``, uniform in [0, 1), mapped linearly to a range:

  ==========================================  ================================================
  convolution and dense kernels               He-uniform ``±sqrt(6 / fan_in)`` (variance ``2 / fan_in``)
  a separable layer's depthwise kernel        ``±sqrt(3 / fan_in)`` (variance ``1 / fan_in``: no ReLU
                                              follows it inside the layer)
  ``bias``, ``beta``                          ``±0.05``, ``±0.1``
  batch norm ``gamma``                        ``[0.8, 1.2]``
  batch norm ``variance``                     ``v * [0.8, 1.2]``
  batch norm ``mean``                         ``m + sqrt(v) * ±0.1``
  a PReLU's ``alpha``                         ``[0.1, 0.3]``
  ==========================================  ================================================

``m`` and ``v`` estimate the element mean and variance of the batch norm's input for a standardised
model input (mean 0, variance 1). Shape inference propagates them with fixed mean-field rules: a
He-scaled layer gives mean 0 and variance twice its input's mean square, ReLU (and relu6) maps them
through the Gaussian formulas, add sums them, concat averages by channels, batch norm resets them to
(0, 1). So every batch norm roughly normalises its input and activations stay O(1) through deep and
residual stacks, with finite, non-degenerate logits. The rules are plain float64 arithmetic on the
config, so the weights are the same everywhere.
"""
from __future__ import annotations

import hashlib
import lzma
import math
import os
import secrets
import zipfile
import zlib
from pathlib import Path
from typing import IO, Any, Callable, Mapping, Union

import numpy as np

from . import shapes
from .errors import ModelError
from .layers import Param, Signal

__all__ = ["LayerWeights", "check_weights", "read_npz", "save_weights", "seeded_array", "seeded_uniform",
           "seeded_weights", "write_atomically"]

LayerWeights = dict[str, dict[str, np.ndarray]]
ParamTable = dict[str, dict[str, Param]]

_RANGES = {"bias": (-0.05, 0.05), "beta": (-0.1, 0.1), "gamma": (0.8, 1.2), "mean": (-0.1, 0.1),
           "variance": (0.8, 1.2), "prelu": (0.1, 0.3)}


def seeded_uniform(seed: int, layer: str, name: str, size: int) -> np.ndarray:
    """``size`` float64 values uniform in [0, 1), determined by ``(seed, layer, name)`` alone."""
    digest = hashlib.sha256(f"{seed}\0{layer}\0{name}".encode()).digest()
    raw = np.random.PCG64(int.from_bytes(digest[:8], "little")).random_raw(size)
    return (raw >> np.uint64(11)).astype(np.float64) * (1.0 / 2.0**53)


def seeded_array(seed: int, layer: str, param: Param, name: str,
                 signal: Signal = Signal(0.0, 1.0)) -> np.ndarray:
    """The generated float32 array for ``<layer>/<name>``; ``signal`` is the estimated mean and
    variance of the layer's input (only batch norm statistics use it). See the module docstring."""
    lo, hi = _RANGES.get(param.init, (0.0, 0.0))
    offset = 0.0
    if param.init in ("kernel", "linear_kernel"):
        bound = math.sqrt((6.0 if param.init == "kernel" else 3.0) / max(param.fan_in, 1))
        lo, hi = -bound, bound
    elif param.init == "variance":
        lo, hi = lo * signal.var, hi * signal.var
    elif param.init == "mean":
        offset, sd = signal.mean, math.sqrt(signal.var)
        lo, hi = lo * sd, hi * sd
    u = seeded_uniform(seed, layer, name, math.prod(param.shape))
    return (offset + lo + (hi - lo) * u).astype(np.float32).reshape(param.shape)


def seeded_weights(seed: int, params: ParamTable, signals: Mapping[str, Signal]) -> LayerWeights:
    """Generated weights for every parameter in ``params`` (layer -> param -> :class:`Param`);
    ``signals`` maps a layer to the estimated statistics of its input."""
    return {layer: {name: seeded_array(seed, layer, p, name, signals.get(layer, Signal(0.0, 1.0)))
                    for name, p in ps.items()}
            for layer, ps in params.items() if ps}


def read_npz(path: Union[str, Path]) -> dict[str, np.ndarray]:
    """All arrays of an ``.npz`` file, by name."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"weights file not found: {path}", field="weights",
                         hint="remove \"weights\" from the config (or pass weights=None) to use seeded weights")
    # A damaged archive fails in np.load or only when an array is read (a compression method zipfile
    # lacks is a NotImplementedError, an encrypted member a RuntimeError); object arrays are refused
    # (allow_pickle=False: a weights file must not run code).
    unreadable = (OSError, ValueError, EOFError, NotImplementedError, RuntimeError, zipfile.BadZipFile, zlib.error,
                  lzma.LZMAError)
    try:
        archive = np.load(path, allow_pickle=False)
    except unreadable as exc:
        raise ModelError(f"expected an .npz archive, found an unreadable file {path.name} ({exc})",
                         field="weights") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ModelError(f"expected an .npz archive of named arrays, found a single array in {path.name}",
                         field="weights")
    with archive:
        try:
            for key in archive.files:
                _check_header(archive, key, path.name)
            return {key: archive[key] for key in archive.files}
        except ModelError:  # a ValueError too, already saying what is wrong
            raise
        except unreadable as exc:
            raise ModelError(f"expected an .npz archive of arrays of numbers, found an unreadable array in "
                             f"{path.name} ({exc})", field="weights") from None


def _check_header(archive: Any, key: str, source: str) -> None:
    """Array ``key`` of ``archive`` holds as many bytes as its header's shape and dtype claim, and no
    more than :data:`~pyconv.graph.shapes.MAX_ELEMENTS` of them: checked before numpy allocates it."""
    member = key if key in archive.zip.namelist() else f"{key}.npy"
    with archive.zip.open(member) as f:
        version = np.lib.format.read_magic(f)
        if version not in ((1, 0), (2, 0)):
            raise ModelError(f"array {key!r} in {source}: expected the .npy format 1.0 or 2.0, found {version}",
                             field="weights")
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read(f)
        header = f.tell()
    count = math.prod(shape)
    if count > shapes.MAX_ELEMENTS or count * dtype.itemsize > archive.zip.getinfo(member).file_size - header:
        raise ModelError(f"array {key!r} in {source}: its header claims shape {list(shape)} of {dtype}, more than "
                         f"the file holds (or than {shapes.MAX_ELEMENTS:,} elements)", field="weights",
                         hint="the file is truncated or damaged")


def check_weights(arrays: Mapping[str, Any], params: ParamTable, source: str) -> LayerWeights:
    """Check ``arrays`` (``"<layer>/<param>"`` -> array, read from ``source``) holds exactly the expected
    arrays, with the expected shapes, all finite; returns them as C-contiguous float32 by layer."""
    out: LayerWeights = {}
    for key, value in arrays.items():
        layer, sep, name = key.rpartition("/")
        if not sep:
            raise ModelError(f"expected array names of the form '<layer>/<param>' in {source}, found {key!r}",
                             field="weights")
        if layer not in params:
            raise ModelError(f"{source} has an array for a layer the config does not define", layer=layer,
                             field=name)
        if name not in params[layer]:
            expected = ", ".join(params[layer]) or "no weights"
            raise ModelError(f"unexpected weight {key!r} in {source}: this layer takes {expected}",
                             layer=layer, field=name)
        array = np.asarray(value)
        want = params[layer][name].shape
        if array.shape != want:
            raise ModelError(f"weight {key!r} in {source}: expected shape {want}, found {array.shape}",
                             layer=layer, field=name)
        if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
            raise ModelError(f"weight {key!r} in {source}: expected real numbers, found dtype {array.dtype}",
                             layer=layer, field=name)
        array = np.ascontiguousarray(array, dtype=np.float32)
        bad = array.size - int(np.isfinite(array).sum())
        if bad:
            raise ModelError(f"weight {key!r} in {source}: expected finite values, found {bad} NaN or "
                             f"infinite of {array.size}", layer=layer, field=name)
        out.setdefault(layer, {})[name] = array
    for layer, ps in params.items():
        for name, p in ps.items():
            if name not in out.get(layer, {}):
                raise ModelError(f"weight '{layer}/{name}' of shape {p.shape} is missing from {source}",
                                 layer=layer, field=name)
    return out


def write_atomically(path: Union[str, Path], write: Callable[[IO[bytes]], None]) -> None:
    """``write(file)`` into a new file beside ``path``, then rename it to ``path``: a reader (or a crash
    part-way) sees the old file or the complete new one, never a part of it."""
    path = Path(path)
    while True:
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            # Created as open() creates files (0o666 less the umask), unlike tempfile's private 0o600.
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def save_weights(path: Union[str, Path], weights: LayerWeights) -> None:
    """Write ``weights`` as an ``.npz`` with one array per ``<layer>/<param>`` (see :func:`write_atomically`)."""
    arrays = {f"{layer}/{name}": array for layer, ps in weights.items() for name, array in ps.items()}
    write_atomically(path, lambda file: np.savez(file, **arrays))
