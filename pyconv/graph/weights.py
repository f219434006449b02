"""Model weights: where a model's original weights come from (:class:`Weights`: an ``.npz`` read array
by array, seeded weights generated array by array, a mapping given), how an ``.npz`` is checked and
written, and how seeded weights are generated, deterministically.

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
from typing import IO, Any, Callable, Iterator, Mapping, Optional, Union

import numpy as np

from ..memory import aligned_empty
from . import shapes
from .errors import ModelError
from .layers import Param, Signal

__all__ = ["InMemoryWeights", "LayerWeights", "NpzWeights", "SeededWeights", "Weights", "check_weights",
           "flat_weights", "save_weights", "seeded_array", "seeded_stream", "seeded_uniform", "write_atomically"]

LayerWeights = dict[str, dict[str, np.ndarray]]
ParamTable = dict[str, dict[str, Param]]

_RANGES = {"bias": (-0.05, 0.05), "beta": (-0.1, 0.1), "gamma": (0.8, 1.2), "mean": (-0.1, 0.1),
           "variance": (0.8, 1.2), "prelu": (0.1, 0.3)}


def seeded_uniform(seed: int, layer: str, name: str, size: int) -> np.ndarray:
    """``size`` float64 values uniform in [0, 1), determined by ``(seed, layer, name)`` alone."""
    out = np.empty(size, dtype=np.float64)
    for start, chunk in _seeded_chunks(seed, layer, name, size):
        out[start:start + chunk.size] = chunk
    return out


def seeded_stream(seed: int, layer: str, name: str) -> Callable[[int], np.ndarray]:
    """``draw(k)``: the next ``k`` of :func:`seeded_uniform`'s values for ``(seed, layer, name)``; the raw
    stream continues from one draw to the next, so the values do not depend on how they are drawn."""
    digest = hashlib.sha256(f"{seed}\0{layer}\0{name}".encode()).digest()
    generator = np.random.PCG64(int.from_bytes(digest[:8], "little"))

    def draw(k: int) -> np.ndarray:
        return (generator.random_raw(k) >> np.uint64(11)).astype(np.float64) * (1.0 / 2.0**53)
    return draw


# Values generated at a time: a large kernel is made without its float64 and uint64 forms whole.
_CHUNK = 1 << 16


def _seeded_chunks(seed: int, layer: str, name: str, size: int) -> Iterator[tuple[int, np.ndarray]]:
    """:func:`seeded_uniform`'s values, as (offset, float64 chunk) pairs."""
    draw = seeded_stream(seed, layer, name)
    for start in range(0, size, _CHUNK):
        yield start, draw(min(_CHUNK, size - start))


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
    out = aligned_empty(math.prod(param.shape), mapped=True)
    for start, u in _seeded_chunks(seed, layer, name, out.size):
        out[start:start + u.size] = offset + lo + (hi - lo) * u
    return out.reshape(param.shape)


class Weights(Mapping[str, Mapping[str, np.ndarray]]):
    """A model's original weights, ``weights[layer][param]``, read or generated when asked for and not
    held (:class:`SeededWeights`, :class:`NpzWeights`), or held as given (:class:`InMemoryWeights`).
    A model keeps its weights once, packed for its kernels; this is where it finds the originals again
    (to build an operator, to save). ``array(layer, param)`` gives one array: a new one on every call
    where ``fresh`` (the caller may then write it), the held one otherwise."""

    fresh = True

    def __init__(self, params: ParamTable, source: str) -> None:
        self.params = {layer: ps for layer, ps in params.items() if ps}
        self.source = source

    def array(self, layer: str, name: str) -> np.ndarray:
        raise NotImplementedError

    def at_once(self) -> "Weights":
        """These weights as one object to read many arrays from: itself where each array is cheap to
        make alone, else one re-derivation of them all, held by the object returned."""
        return self

    def __getitem__(self, layer: str) -> dict[str, np.ndarray]:
        return {name: self.array(layer, name) for name in self.params[layer]}

    def __iter__(self) -> Iterator[str]:
        return iter(self.params)

    def __len__(self) -> int:
        return len(self.params)


class InMemoryWeights(Weights):
    """Weights given as arrays (checked by :func:`check_weights`), held as they are; or, with ``again``
    (a way to make them all again, such as converting an imported file once more), each handed out
    once and then forgotten, so that a model building its operators from them lets each go as it is
    packed; the arrays asked for later come from ``again``. Handed out once, an array is made
    C-contiguous float32 and checked finite only then: a view (an ONNX kernel transposed) is copied
    when its operator is built, not all of them at once beside the arrays they view."""

    fresh = False

    def __init__(self, arrays: Mapping[str, Any], params: ParamTable, source: str,
                 again: Optional[Callable[[], Mapping[str, Any]]] = None) -> None:
        super().__init__(params, source)
        self._again = again
        if again is None:
            self._arrays = check_weights(flat_weights(arrays), params, source)
            return
        self._arrays = {}
        for key, value in flat_weights(arrays).items():
            array = np.asarray(value)
            layer, name = _check_entry(key, array.shape, array.dtype, params, source)
            self._arrays.setdefault(layer, {})[name] = array
        _check_complete({(layer, name) for layer, ps in self._arrays.items() for name in ps}, params, source)

    def array(self, layer: str, name: str) -> np.ndarray:
        if self._again is None:
            return self._arrays[layer][name]
        held = self._arrays.get(layer, {})
        if name not in held:
            return self.at_once().array(layer, name)
        value = held.pop(name)
        return _checked_array(f"{layer}/{name}", value, value.shape, self.source, layer, name)

    def at_once(self) -> Weights:
        if self._again is None:
            return self
        return InMemoryWeights(self._again(), self.params, self.source)


def flat_weights(weights: Mapping[str, Any]) -> dict[str, Any]:
    """``"<layer>/<param>" -> array`` from that form or the nested ``layer -> param -> array`` (or a mix)."""
    flat = {f"{layer}/{name}": array for layer, params in weights.items() if isinstance(params, Mapping)
            for name, array in params.items()}
    flat.update({key: array for key, array in weights.items() if not isinstance(array, Mapping)})
    return flat


class SeededWeights(Weights):
    """Generated weights for every parameter in ``params`` (layer -> param -> :class:`Param`), each made
    again when asked for (see the module docstring); ``signals`` maps a layer to the estimated
    statistics of its input."""

    def __init__(self, seed: int, params: ParamTable, signals: Mapping[str, Signal]) -> None:
        super().__init__(params, "seeded weights")
        self.seed = seed
        self._signals = dict(signals)

    def array(self, layer: str, name: str) -> np.ndarray:
        return seeded_array(self.seed, layer, self.params[layer][name], name,
                            self._signals.get(layer, Signal(0.0, 1.0)))


# What a damaged archive raises in np.load, or only when an array is read (a compression method zipfile
# lacks is a NotImplementedError, an encrypted member a RuntimeError).
_UNREADABLE = (OSError, ValueError, EOFError, NotImplementedError, RuntimeError, zipfile.BadZipFile, zlib.error,
               lzma.LZMAError)


class NpzWeights(Weights):
    """The weights in an ``.npz`` file: names, shapes and dtypes checked against ``params`` when made
    (from the arrays' headers, reading no data), each array read from the file when asked for and
    checked to be finite then. The file must stay as it was: a later read of a file changed since is a
    ModelError, not other weights."""

    def __init__(self, path: Union[str, Path], params: ParamTable) -> None:
        path = Path(path)
        super().__init__(params, path.name)
        self.path = path
        if not path.is_file():
            raise ModelError(f"weights file not found: {path}", field="weights",
                             hint="remove \"weights\" from the config (or pass weights=None) to use seeded weights")
        self._stamp = self._stat()
        self._members: dict[tuple[str, str], str] = {}
        with self._open() as archive:
            try:
                for key in archive.files:
                    shape, dtype = _check_header(archive, key, self.source)
                    layer, name = _check_entry(key, shape, dtype, params, self.source)
                    self._members[layer, name] = key
            except ModelError:  # a ValueError too, already saying what is wrong
                raise
            except _UNREADABLE as exc:
                raise ModelError(f"expected an .npz archive of arrays of numbers, found an unreadable array in "
                                 f"{self.source} ({exc})", field="weights") from None
        _check_complete(set(self._members), params, self.source)

    def _stat(self) -> tuple[int, int]:
        st = self.path.stat()
        return st.st_size, st.st_mtime_ns

    def _open(self) -> Any:
        # Object arrays are refused (allow_pickle=False: a weights file must not run code).
        try:
            archive = np.load(self.path, allow_pickle=False)
        except _UNREADABLE as exc:
            raise ModelError(f"expected an .npz archive, found an unreadable file {self.source} ({exc})",
                             field="weights") from None
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ModelError(f"expected an .npz archive of named arrays, found a single array in {self.source}",
                             field="weights")
        return archive

    def array(self, layer: str, name: str) -> np.ndarray:
        key = self._members[layer, name]
        try:
            unchanged = self._stat() == self._stamp
        except OSError:
            unchanged = False
        if not unchanged:
            raise ModelError(f"the weights file {self.path} changed (or went away) since the model was loaded; "
                             f"its weights cannot be read again", layer=layer, field=name,
                             hint="load the model again")
        with self._open() as archive:
            try:
                value = archive[key]
            except _UNREADABLE as exc:
                raise ModelError(f"expected an .npz archive of arrays of numbers, found an unreadable array "
                                 f"{key!r} in {self.source} ({exc})", layer=layer, field=name) from None
        return _checked_array(key, value, self.params[layer][name].shape, self.source, layer, name)


def _check_header(archive: Any, key: str, source: str) -> tuple[tuple[int, ...], np.dtype]:
    """Array ``key`` of ``archive`` holds as many bytes as its header's shape and dtype claim, and no
    more than :data:`~pyconv.graph.shapes.MAX_ELEMENTS` of them: checked before numpy allocates it.
    Returns its shape and dtype."""
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
    return tuple(shape), dtype


def _check_entry(key: str, shape: tuple[int, ...], dtype: np.dtype, params: ParamTable,
                 source: str) -> tuple[str, str]:
    """The (layer, param) that array ``key`` of ``source`` holds, checked to be one ``params`` expects,
    of its shape and of a real dtype."""
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
    want = params[layer][name].shape
    if tuple(shape) != tuple(want):
        raise ModelError(f"weight {key!r} in {source}: expected shape {want}, found {tuple(shape)}",
                         layer=layer, field=name)
    if not (np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer)):
        raise ModelError(f"weight {key!r} in {source}: expected real numbers, found dtype {dtype}",
                         layer=layer, field=name)
    return layer, name


def _checked_array(key: str, value: Any, want: tuple[int, ...], source: str, layer: str, name: str) -> np.ndarray:
    """Array ``value`` (already checked by :func:`_check_entry`) as C-contiguous float32, all finite."""
    array = np.asarray(value)
    if not (array.dtype == np.float32 and array.flags.c_contiguous):
        array = _copy_mapped(array)
    bad = array.size - int(np.isfinite(array).sum())
    if bad:
        raise ModelError(f"weight {key!r} in {source}: expected finite values, found {bad} NaN or "
                         f"infinite of {array.size}", layer=layer, field=name)
    return array


def _copy_mapped(array: np.ndarray) -> np.ndarray:
    """A C-contiguous float32 copy of ``array``, mapped if large (see :mod:`pyconv.memory`)."""
    out = aligned_empty(array.shape, mapped=True)
    out[...] = array
    return out


def _check_complete(found: set[tuple[str, str]], params: ParamTable, source: str) -> None:
    for layer, ps in params.items():
        for name, p in ps.items():
            if (layer, name) not in found:
                raise ModelError(f"weight '{layer}/{name}' of shape {p.shape} is missing from {source}",
                                 layer=layer, field=name)


def check_weights(arrays: Mapping[str, Any], params: ParamTable, source: str) -> LayerWeights:
    """Check ``arrays`` (``"<layer>/<param>"`` -> array, read from ``source``) holds exactly the expected
    arrays, with the expected shapes, all finite; returns them as C-contiguous float32 by layer."""
    out: LayerWeights = {}
    for key, value in arrays.items():
        array = np.asarray(value)
        layer, name = _check_entry(key, array.shape, array.dtype, params, source)
        out.setdefault(layer, {})[name] = _checked_array(key, array, array.shape, source, layer, name)
    _check_complete({(layer, name) for layer, ps in out.items() for name in ps}, params, source)
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


def save_weights(path: Union[str, Path], weights: Mapping[str, Mapping[str, np.ndarray]]) -> None:
    """Write ``weights`` as an ``.npz`` with one array per ``<layer>/<param>`` (see :func:`write_atomically`),
    asking ``weights`` for one layer at a time: saving a model needs no second copy of all its weights."""
    def write(file: IO[bytes]) -> None:
        with zipfile.ZipFile(file, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            for layer in weights:
                for name, array in weights[layer].items():
                    with archive.open(f"{layer}/{name}.npy", "w", force_zip64=True) as member:
                        np.lib.format.write_array(member, np.asarray(array), allow_pickle=False)
    write_atomically(path, write)
