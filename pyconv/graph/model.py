"""The model runtime: :func:`load` a config, then run, summarise, profile or save the :class:`Model`.

Loading does all the work that does not depend on the batch size: parsing and validation, shape
inference, weights, the fold/fuse passes, and operator construction (weights packed once); it also
plans batch 1. Planning a batch size allocates the arena for it (one float32 buffer), binds every
node's output to a fixed view of it and every node that reads only the arena to its arrays; the first
run with another batch size plans it, and later runs allocate nothing but the returned copies.

Input sizes. A model runs at any input height and width its layers allow, not only the config's. The
first run at another size makes a *variant* (:class:`_Variant`): shapes inferred again from the input
shapes (the layers' rules are per sample), the graph lowered again, and every node given an operator
-- the one already built wherever the node is the same, so weights are packed once and shared between
sizes (a convolution whose pads change with the size gets the same operator with other pads,
``Kernel.repad``); only layer types whose operator depends on its input size (none of the convolutions,
pools or elementwise layers) get one per size. A model imported from ONNX re-derives its config at that size
(``resize``, see :mod:`pyconv.onnx.convert`), so that pads or shapes the file computes from its input
follow. A size the layers cannot take is a :class:`ModelError` naming the layer and field (a dense
layer after a flatten: its weights fix the flattened size). A run asking for intermediate tensors
(``outputs=[...]``) is a variant too, lowered so that those tensors stay computed. Variants and arenas
are cached, least recently used first out, a few of each: an embedded device cannot keep many arenas.

Parallel callers. Everything a run writes lives in its :class:`_Prepared` (the arena, the NHWC buffers
of transposed inputs, the steps bound to them with the scratch some bound kernels keep); the operators,
their packed weights and the variants are only read by runs. So a run checks one ``_Prepared`` out of
the pool of its (variant, batch) for its duration and returns it after: runs from several Python
threads each get their own and run their kernels at once (the kernels release the GIL). A caller that
finds none idle makes another; a pool keeps a few idle, and all pools together a few more. The model's
lock guards only that bookkeeping and the variant cache, never a kernel. Once a run returns, nothing in
the model refers to the caller's arrays.

Per-call cost. A small model spends its time between kernels, so a run does only what its inputs
require: the checks of an input array are done once per (shape, dtype) and remembered; an input of at
most :data:`_COPIED_INPUT_BYTES` is copied into a buffer of the ``_Prepared`` (transposed there when
NCHW) whose readers are bound once like every other node, so the run is one bound call per node
followed by one copy per output; a larger input is cheaper to bind its readers to for that run only
(a bind costs about what copying 64 KiB does, the copy of a 224x224 image about four binds).
"""
from __future__ import annotations

import copy
import difflib
import json
import math
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence, Union

import numpy as np

from .._kernels import start_threads
from ..memory import aligned_empty, return_free_memory
from ..ops import nchw_to_nhwc, nhwc_to_nchw
from ..threads import resolve_threads
from ..validation import check_input_dtype
from .errors import ModelError, UnknownTensorError
from .format import ModelSpec, copy_config, parse_config, read_config
from .layers import LAYER_TYPES, Kernel, Shape
from .passes import Graph, Node, live_layers, lower, materialise
from .planner import MemoryPlan, plan_memory
from .shapes import ShapeInfo, infer_shapes
from .weights import (InMemoryWeights, NpzWeights, SeededWeights, Weights, flat_weights, save_weights,
                      seeded_stream, seeded_uniform, write_atomically)

__all__ = ["Model", "Profile", "ProfileRow", "load"]

ArrayOrDict = Union[np.ndarray, dict[str, np.ndarray]]
Strategy = Union[None, str, Mapping[str, str]]
# An input size other than the config's: (H, W) for every image input, or by input name.
Size = Union[None, Sequence[int], Mapping[str, Sequence[int]]]
# How a model re-derives its config for other input shapes (per-sample, by input name); the weights
# are the model's own.
Resize = Callable[[Mapping[str, tuple[int, ...]]], Mapping[str, Any]]
Sizes = tuple[tuple[int, ...], ...]  # the per-sample shape of each input layer, in the config's order

# Arena pools kept (one per input size, batch size and set of requested tensors): the latest few.
_PLANS_KEPT = 4
# Idle arenas (each with its bound steps) one pool keeps: one per caller that ran at once, up to a few.
_IDLE_PER_PLAN = 4
# Idle arenas kept in all pools together, the least recently used pools' first out.
_IDLE_KEPT = 8
# Variants kept besides the config's own (which always is).
_VARIANTS_KEPT = 8
# Inputs up to this size are copied into a buffer whose readers stay bound (see the module docstring).
_COPIED_INPUT_BYTES = 64 * 1024
# Values of an example input made at a time (see Model.example_input).
_EXAMPLE_BLOCK = 1 << 16
# Input (shape, dtype) keys whose checks are remembered; past this many the memory starts afresh.
_CHECKED_KEPT = 32
# Layer types whose operator serves inputs of any size, so that one is built for every input size.
_SIZE_FREE = frozenset({"conv2d", "depthwise_conv2d", "pointwise_conv2d", "separable_conv2d", "dense", "batch_norm",
                        "scale_shift", "activation", "max_pool", "avg_pool", "pad", "global_avg_pool", "concat",
                        "channel_shuffle", "flatten", "reshape", "softmax"})


def load(config: Union[str, Path, Mapping[str, Any]], weights: Union[None, str, Path, Mapping[str, Any]] = None, *,
         threads: Optional[int] = None, strategy: Strategy = None, optimize: bool = True) -> "Model":
    """Load a model config (a JSON file's path, or the config itself as a dict) and its weights.

    ``weights``: an ``.npz`` path, or a mapping ``"<layer>/<param>" -> array`` (or nested
    ``layer -> param -> array``, the form of :attr:`Model.weights`); by default the file the config
    names (relative to the config file; to the working directory for a dict), or seeded weights if it
    names none. ``strategy``: a conv2d strategy for every conv2d layer, or a mapping from conv2d layer
    name to strategy, overriding the config. ``optimize=False`` skips batch-norm folding and fusion
    (every layer runs on its own).
    """
    if isinstance(config, Mapping):
        return Model(config, weights=weights, threads=threads, strategy=strategy, optimize=optimize)
    if not isinstance(config, (str, Path)):
        raise TypeError(f"config: expected a path or a config dict, found {type(config).__name__}")
    path = Path(config)
    return Model(read_config(path), weights=weights, base_dir=path.parent, threads=threads, strategy=strategy,
                 optimize=optimize)


@dataclass
class _Variant:
    """The model at one set of input shapes, computing one set of tensors (see the module docstring).

    ``views`` maps each name the runs return to ``(tensor, pads, shape)``: the graph tensor holding it,
    a zero padding ``((top, bottom), (left, right))`` to apply, and the per-sample shape to view it as
    (both None for a tensor as it is). ``built`` holds the operators as built, for other variants to
    share: by node key (:func:`_node_key`), and those that can take other pads also by
    ``("weights", key without the padding)``; ``kernels`` the ones run, by node (NCHW-reading where
    ``nchw_inputs`` allow).
    """

    sizes: Sizes
    outputs: Optional[tuple[str, ...]]
    spec: ModelSpec
    info: ShapeInfo
    graph: Graph
    kernels: dict[str, Kernel]
    built: dict[tuple, Kernel]
    nchw_inputs: set[str]
    views: dict[str, tuple[str, Any, Optional[tuple[int, ...]]]]
    key: tuple[Sizes, Optional[tuple[str, ...]]] = field(init=False)

    def __post_init__(self) -> None:
        self.key = (self.sizes, self.outputs)


@dataclass
class _Step:
    node: Node
    kernel: Kernel
    sources: list[Union[str, np.ndarray]]  # a model input's name, a view into the arena or an input buffer
    out: np.ndarray
    strategy: str
    call: Optional[Callable[[int], object]] = None  # bound once when every source is in the arena

    def run_on(self, sources: list[np.ndarray], threads: int) -> None:
        """Run on the caller's arrays, bound for this run only (4-6 us a node): the model keeps no
        reference to them once the run returns."""
        if self.kernel.bind is None:
            self.kernel.run(sources, self.out, threads)
        else:
            self.kernel.bind(sources, self.out)(threads)


@dataclass
class _Pool:
    """The arenas of one (variant, batch): its memory plan and strategies, computed once, and the
    prepared arenas no run holds now (see :meth:`Model._prepared`)."""

    variant: _Variant
    batch: int
    plan: MemoryPlan
    strategies: list[str]
    idle: list["_Prepared"] = field(default_factory=list)
    key: tuple = field(init=False)  # in Model._pools

    def __post_init__(self) -> None:
        self.key = (self.variant.key, self.batch)


@dataclass
class _Prepared:
    """One arena of a (variant, batch) with the steps bound to it, held by one run at a time.

    ``inputs`` holds the buffers inputs are copied into on every run (NCHW inputs transposed to NHWC
    whatever their size, so that the transpose writes memory that stays warm: a fresh 3 MB array cost
    page faults; others up to :data:`_COPIED_INPUT_BYTES` as they are), ``feeds`` says per model input
    (in the config's order) how it is loaded: ``(name, buffer or None, transpose)``. ``bound``: every
    step has its bound call (a run is then just these calls).
    ``collect`` lists per returned name its source (an array, or a model input's name when that input
    is returned as it is and not copied), pads and shape (see :class:`_Variant`); ``copies`` the same
    as (name, array) when every one is returned as it is, a copy."""

    pool: _Pool
    arena: np.ndarray
    steps: list[_Step]
    inputs: dict[str, np.ndarray]
    feeds: list[tuple[str, Optional[np.ndarray], bool]]
    bound: bool
    collect: list[tuple[str, Union[str, np.ndarray], Any, Optional[tuple[int, ...]]]]
    copies: Optional[list[tuple[str, np.ndarray]]]

    @property
    def variant(self) -> _Variant:
        return self.pool.variant

    @property
    def plan(self) -> MemoryPlan:
        return self.pool.plan


@dataclass(frozen=True)
class ProfileRow:
    """One node's timing: median seconds per run and the GFLOP/s (2 FLOPs per MAC) it reached."""

    name: str
    type: str
    strategy: str
    seconds: float
    gflops: float
    share: float


@dataclass(frozen=True)
class Profile:
    """Result of :meth:`Model.profile`; ``str()`` renders it as a table."""

    model: str
    batch: int
    threads: int
    repeat: int
    rows: tuple[ProfileRow, ...]
    total_seconds: float
    strategy_share: dict[str, float]

    def __str__(self) -> str:
        width = max([len(r.name) for r in self.rows] + [5])
        lines = [f"profile of {self.model or 'model'}: batch {self.batch}, {self.threads} thread(s), "
                 f"median of {self.repeat} run(s)",
                 f"{'layer':<{width}}  {'type':<18} {'strategy':<12} {'ms':>9} {'GFLOP/s':>8} {'share':>6}"]
        for r in self.rows:
            gf = f"{r.gflops:8.2f}" if r.gflops else f"{'-':>8}"
            lines.append(f"{r.name:<{width}}  {r.type:<18} {r.strategy:<12} {1e3 * r.seconds:9.3f} {gf} "
                         f"{r.share:6.1%}")
        lines.append(f"total {1e3 * self.total_seconds:.3f} ms per run (median)")
        lines.append("time by strategy: " + ", ".join(
            f"{k} {v:.1%}" for k, v in sorted(self.strategy_share.items(), key=lambda kv: -kv[1])))
        return "\n".join(lines)


class Model:
    """A loaded model; see :func:`load`. Call it (or :meth:`run`) on NHWC numpy arrays, of the config's
    input size or any other the layers allow.

    ``weights`` gives the original (unfolded) weights by layer and param (read again from their file or
    generated again when asked for: the model holds its weights once, packed), ``graph`` the nodes that run,
    ``info`` the per-layer shapes, parameters and MACs (at the config's input size). Several Python
    threads may run one model at once, each on an arena of its own (see the module docstring): a
    service runs N callers with ``threads=1`` each, or one caller with ``threads=N``. ``resize``
    (given by the ONNX importer) re-derives the config and weights for other input shapes; without it
    only the input layers' shapes change. ``again`` makes the given weights mapping again (an imported file
    converted once more; the mapping given is then emptied), so that the model lets each array go once it
    is packed.
    """

    def __init__(self, config: Mapping[str, Any], *, weights: Union[None, str, Path, Mapping[str, Any]] = None,
                 base_dir: Union[str, Path] = ".", threads: Optional[int] = None, strategy: Strategy = None,
                 optimize: bool = True, resize: Optional[Resize] = None,
                 again: Optional[Callable[[], Mapping[str, Any]]] = None) -> None:
        self.spec: ModelSpec = parse_config(copy_config(config))
        self.info: ShapeInfo = infer_shapes(self.spec)
        self._strategy = strategy
        self._apply_strategy(self.spec, strategy)
        # The file the weights came from, which save() must never overwrite.
        self._weights_file: Optional[Path] = self._weights_path(weights, Path(base_dir))
        self._weights: Weights = self._read_weights(weights, Path(base_dir), again=again)
        self._optimize = optimize
        self._resize = resize
        self._declared: Sizes = tuple(self.info.outputs[name] for name in self.spec.inputs)
        self._variants: OrderedDict[tuple, _Variant] = OrderedDict()
        self._base: Optional[_Variant] = None
        self._base = self._make_variant(self._declared, None)
        self.graph: Graph = self._base.graph
        self.kernels: dict[str, Kernel] = self._base.kernels
        self._nchw_inputs = self._base.nchw_inputs
        self.threads = resolve_threads(threads)
        self._pools: OrderedDict[tuple, _Pool] = OrderedDict()
        self._lock = threading.RLock()  # re-entered: plan -> _variant
        # Batch 1, the common case, is planned and bound now, and the OpenMP workers started: the first
        # run then costs what later ones do.
        self._checked: dict[tuple, tuple[int, Sizes]] = {}
        with self._prepared(1):
            pass
        start_threads(self.threads)
        return_free_memory()

    def __repr__(self) -> str:
        inputs = ", ".join(f"{n} {self.input_shape(n)[1:]} {self.spec.layers[n].attrs['layout']}"
                           for n in self.spec.inputs)
        return (f"<pyconv Model {self.name!r}: {len(self.spec.layers)} layers as {len(self.graph.nodes)} nodes, "
                f"inputs {inputs}, outputs {self.spec.outputs}, {self.threads} thread(s)>")

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def weights(self) -> Weights:
        """The original weights, ``weights[layer][param]``: read from the weights file or generated from
        the seed, each array when asked for; the mapping given, as given; for a model imported from an
        ONNX file, the file converted again (so keep the result to read more than one array)."""
        return self._weights.at_once()

    @property
    def input_names(self) -> list[str]:
        return list(self.spec.inputs)

    @property
    def output_names(self) -> list[str]:
        return list(self.spec.outputs)

    def input_shape(self, name: Optional[str] = None, batch: int = 1, size: Size = None) -> Shape:
        """The array shape the caller passes for input ``name`` (the only input by default), in its
        layout; at the config's input size, or at ``size``: ``(H, W)`` (or a dict of them by input)."""
        name = name or self.spec.inputs[0]
        if name not in self.spec.inputs:
            raise ModelError(f"expected the name of an input layer ({', '.join(self.spec.inputs)})", layer=name,
                             field="inputs")
        h_w_c = self._sizes(size)[self.spec.inputs.index(name)]
        if self.spec.layers[name].attrs["layout"] == "NCHW" and len(h_w_c) == 3:
            return (batch, h_w_c[2], h_w_c[0], h_w_c[1])
        return (batch, *h_w_c)

    # --- loading -------------------------------------------------------------------------------------

    @staticmethod
    def _apply_strategy(spec: ModelSpec, strategy: Strategy) -> None:
        if strategy is None:
            return
        if isinstance(strategy, str):
            strategy = {n: strategy for n, layer in spec.layers.items() if layer.type == "conv2d"}
        for name, value in strategy.items():
            layer = spec.layers.get(name)
            if layer is None or layer.type != "conv2d":
                found = "no such layer" if layer is None else f"a {layer.type} layer"
                raise ModelError(f"strategy overrides apply to conv2d layers, found {found}", layer=name,
                                 field="strategy")
            layer.attrs["strategy"] = value

    def _weights_path(self, weights: Union[None, str, Path, Mapping[str, Any]], base_dir: Path) -> Optional[Path]:
        """The ``.npz`` file the weights are read from, if any."""
        if isinstance(weights, Mapping):
            return None
        return Path(weights) if weights is not None else (base_dir / self.spec.weights if self.spec.weights else None)

    def _read_weights(self, weights: Union[None, str, Path, Mapping[str, Any]], base_dir: Path,
                      info: Optional[ShapeInfo] = None, again: Optional[Callable[[], Mapping[str, Any]]] = None
                      ) -> Weights:
        """The weights source; ``again`` makes a given mapping again (an imported file converted once
        more), so that the model need not hold it once its operators are built."""
        info = info or self.info
        if isinstance(weights, Mapping):
            flat = flat_weights(weights)
            if again is not None and isinstance(weights, dict):
                weights.clear()  # consumed: each array is then held once, until its operator packs it
            return InMemoryWeights(flat, info.params, "the weights mapping", again)
        path = self._weights_path(weights, base_dir)
        if path is None:
            signals = {name: info.signals[layer.inputs[0]] for name, layer in self.spec.layers.items()
                       if layer.inputs}
            return SeededWeights(self.spec.seed, info.params, signals)
        return NpzWeights(path, info.params)

    def _build(self, node: Node) -> Kernel:
        arrays = materialise(node)  # a weight's own error names its layer and field
        try:
            return LAYER_TYPES[node.type].build(node.attrs, arrays, node.in_shapes)
        except (ValueError, TypeError) as exc:
            raise ModelError(f"cannot prepare the {node.type} operator: {exc}", layer=node.layers[0],
                             field=_blame(node, exc)) from exc

    @staticmethod
    def _read_nchw_in_place(spec: ModelSpec, graph: Graph, kernels: dict[str, Kernel]) -> set[str]:
        """The NCHW inputs whose every reader can take them as they are (a first convolution of an RGB
        image): their readers switch to that kernel, and runs skip the transpose to NHWC."""
        direct = set()
        for name in spec.inputs:
            readers = graph.consumers(name)
            if (spec.layers[name].attrs["layout"] == "NCHW" and readers
                    and name not in graph.outputs.values()
                    and all(r.inputs == [name] and kernels[r.name].nchw is not None for r in readers)):
                direct.add(name)
                for reader in readers:
                    kernels[reader.name] = kernels[reader.name].nchw
        return direct

    # --- variants: input sizes and requested tensors ---------------------------------------------------

    def _sizes(self, size: Size) -> Sizes:
        """The per-sample input shapes at ``size`` ((H, W) for every image input, or a dict by input)."""
        if size is None:
            return self._declared
        if not isinstance(size, Mapping):
            size = {name: size for name, shape in zip(self.spec.inputs, self._declared) if len(shape) == 3}
        unknown = sorted(set(size) - set(self.spec.inputs))
        if unknown:
            raise ModelError(f"expected the name of an input layer ({', '.join(self.spec.inputs)})",
                             layer=unknown[0], field="size")
        sizes = []
        for name, shape in zip(self.spec.inputs, self._declared):
            if name not in size:
                sizes.append(shape)
                continue
            hw = tuple(size[name])
            if len(shape) != 3 or len(hw) != 2 or not all(isinstance(d, (int, np.integer)) and d >= 1 for d in hw):
                raise ModelError(f"expected a size (H, W) of positive ints for an image input, found {hw!r}",
                                 layer=name, field="size")
            sizes.append((int(hw[0]), int(hw[1]), shape[2]))
        return tuple(sizes)

    def _describe(self, sizes: Sizes) -> str:
        """``"a 192x192 input"``, or every input's size for several."""
        images = [(name, s) for name, s in zip(self.spec.inputs, sizes) if len(s) == 3]
        if len(images) == 1:
            return f"a {images[0][1][0]}x{images[0][1][1]} input"
        return "inputs " + ", ".join(f"{name} {s[0]}x{s[1]}" for name, s in images)

    def _variant(self, sizes: Sizes, outputs: Optional[tuple[str, ...]] = None) -> _Variant:
        if (sizes, outputs) == self._base.key:
            return self._base
        with self._lock:
            variant = self._variants.get((sizes, outputs))
            if variant is not None:
                self._variants.move_to_end(variant.key)
                return variant
            variant = self._make_variant(sizes, outputs)
            self._variants[variant.key] = variant
            while len(self._variants) > _VARIANTS_KEPT:
                self._variants.popitem(last=False)
            return variant

    def _spec_at(self, sizes: Sizes, outputs: Optional[tuple[str, ...]]
                 ) -> tuple[ModelSpec, Weights, ShapeInfo]:
        """The config, weights and shapes at input shapes ``sizes``: the shapes of the layers the
        requested tensors (by default the config's outputs) depend on, so that a size the model's head
        cannot take still serves its feature maps."""
        if sizes == self._declared:
            return self.spec, self._weights, self.info
        where = self._describe(sizes)
        spec = self.spec
        if self._resize is not None:
            try:
                config = self._resize(dict(zip(self.spec.inputs, sizes)))
            except ModelError as exc:
                raise ModelError(f"{where}: {exc.message}", layer=exc.layer, field=exc.field, hint=exc.hint) from exc
            spec = parse_config(copy.deepcopy(dict(config)))
            self._apply_strategy(spec, self._strategy)
        wanted = [_view(spec, name)[0] for name in outputs] if outputs is not None else spec.outputs
        try:
            info = infer_shapes(spec, dict(zip(spec.inputs, sizes)), live_layers(spec, wanted))
        except ModelError as exc:
            raise ModelError(f"{where}: {exc.message}", layer=exc.layer, field=exc.field, hint=exc.hint) from exc
        _check_params(self.info, info, where)
        return spec, self._weights, info

    def _make_variant(self, sizes: Sizes, outputs: Optional[tuple[str, ...]]) -> _Variant:
        spec, weights, info = self._spec_at(sizes, outputs)
        views = {name: _view(spec, name) for name in outputs} if outputs is not None else \
            {name: (name, None, None) for name in spec.outputs}
        wanted = list(dict.fromkeys(layer for layer, _, _ in views.values()))
        graph = lower(spec, info, weights, optimize=self._optimize, outputs=None if outputs is None else wanted)
        views = {name: (graph.outputs[layer], pads, shape) for name, (layer, pads, shape) in views.items()}
        built: dict[tuple, Kernel] = {}
        kernels: dict[str, Kernel] = {}
        shared = [v.built for v in (self._base, *self._variants.values()) if v is not None]
        for name, node in graph.nodes.items():
            key, same_weights = _node_key(spec, node), ("weights", _node_key(spec, node, padding=False))
            kernel = next((b[key] for b in shared if key in b), None)
            if kernel is None:
                # A convolution whose pads differ at this size shares the packed weights all the same.
                other = next((b[same_weights] for b in shared if same_weights in b), None)
                kernel = other.repad(node.attrs["padding"]) if other is not None else self._build(node)
            # The operators hold what they need, packed; the recipes would keep the weights source alive.
            node.weights = {}
            built[key] = kernels[name] = kernel
            if kernel.repad is not None:
                built[same_weights] = kernel
        nchw = self._read_nchw_in_place(spec, graph, kernels) if self._optimize else set()
        return _Variant(sizes, outputs, spec, info, graph, kernels, built, nchw, views)

    def _requested(self, outputs: Union[None, str, Sequence[str]]) -> Optional[tuple[str, ...]]:
        """``outputs`` as a tuple of known tensor names (None: the config's outputs)."""
        if outputs is None:
            return None
        names = (outputs,) if isinstance(outputs, str) else tuple(outputs)
        if not names or not all(isinstance(n, str) for n in names):
            raise TypeError(f"outputs: expected a tensor name or a non-empty list of them, found {outputs!r}")
        known = [*self.spec.layers, *self.spec.tensors]
        for name in names:
            if name not in self.spec.layers and name not in self.spec.tensors:
                close = difflib.get_close_matches(name, known, n=5, cutoff=0.5)
                raise UnknownTensorError(
                    f"no tensor named {name!r} in this model" + (f"; close matches: {', '.join(map(repr, close))}"
                                                                  if close else ""),
                    layer=name, field="outputs",
                    hint="tensor names are the config's layer names (and, for imported models, the ONNX tensor names)")
        return tuple(dict.fromkeys(names))

    # --- planning ------------------------------------------------------------------------------------

    def _strategies(self, variant: _Variant, batch: int) -> list[str]:
        strategies = []
        for name, node in variant.graph.nodes.items():
            shape = (batch, *node.in_shapes[0])
            try:
                strategies.append(variant.kernels[name].strategy(shape))
            except (ValueError, TypeError) as exc:
                raise ModelError(f"no strategy for input shape {shape}: {exc}", layer=node.layers[0],
                                 field=_blame(node, exc)) from exc
        return strategies

    def _pool(self, batch: int, variant: _Variant) -> _Pool:
        """The pool of (variant, batch), planned on first use; called with the lock held."""
        key = (variant.key, batch)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = _Pool(variant, batch, plan_memory(variant.graph, batch),
                                            self._strategies(variant, batch))
            while len(self._pools) > _PLANS_KEPT:
                self._pools.popitem(last=False)
        self._pools.move_to_end(key)
        return pool

    @contextmanager
    def _prepared(self, batch: int, variant: Optional[_Variant] = None) -> Iterator[_Prepared]:
        """An arena of (variant, batch) with its bound steps, held by the caller for the ``with`` block
        (see :meth:`_checkout`)."""
        prepared = self._checkout(batch, variant or self._base)
        try:
            yield prepared
        finally:
            self._checkin(prepared)

    def _checkout(self, batch: int, variant: _Variant) -> _Prepared:
        """An idle arena of the pool of (variant, batch), or a new one; the caller holds it until
        :meth:`_checkin`."""
        with self._lock:
            # Kept in use order by _checkin; a pool not yet planned (or evicted) is planned here.
            pool = self._pools.get((variant.key, batch)) or self._pool(batch, variant)
            if pool.idle:
                return pool.idle.pop()
        return self._make_prepared(pool)

    def _checkin(self, prepared: _Prepared) -> None:
        """Return an arena to its pool, unless the pool is full or no longer kept."""
        pool = prepared.pool
        with self._lock:
            # A pool evicted meanwhile (and perhaps made again) no longer takes the arenas of its runs.
            if self._pools.get(pool.key) is not pool:
                return
            self._pools.move_to_end(pool.key)
            if len(pool.idle) < _IDLE_PER_PLAN:
                pool.idle.append(prepared)
                if len(self._pools) > 1:
                    idle = sum(len(p.idle) for p in self._pools.values())
                    for other in list(self._pools.values()):
                        while idle > _IDLE_KEPT and other.idle:
                            other.idle.pop(0)
                            idle -= 1

    def _make_prepared(self, pool: _Pool) -> _Prepared:
        variant, batch, plan = pool.variant, pool.batch, pool.plan
        graph = variant.graph
        arena = aligned_empty(plan.arena_bytes // 4, mapped=True)
        # Touch every page now, when planning: the first run would otherwise take a page fault per 4 KiB.
        arena.fill(0.0)
        views = {t: arena[off:off + n].reshape(batch, *graph.nodes[t].out_shape)
                 for t, (off, n) in plan.offsets.items()}
        feeds, inputs = [], {}
        for name in self.spec.inputs:
            shape = (batch, *variant.info.outputs[name])
            transpose = self._transposed(variant, name)
            if name in variant.nchw_inputs:  # its readers take the caller's NCHW layout
                shape = (batch, shape[3], shape[1], shape[2])
            if transpose or 4 * math.prod(shape) <= _COPIED_INPUT_BYTES:
                inputs[name] = aligned_empty(shape, mapped=True)
            feeds.append((name, inputs.get(name), transpose))
        views.update(inputs)
        steps = [_Step(node, variant.kernels[name], [views.get(src, src) for src in node.inputs], views[name],
                       strategy)
                 for (name, node), strategy in zip(graph.nodes.items(), pool.strategies)]
        for step in steps:
            if step.kernel.bind is not None and not any(isinstance(s, str) for s in step.sources):
                try:
                    step.call = step.kernel.bind(step.sources, step.out)
                except (ValueError, TypeError) as exc:
                    raise ModelError(f"cannot run on input shape {(batch, *step.node.in_shapes[0])}: {exc}",
                                     layer=step.node.layers[0], field=_blame(step.node, exc)) from exc
        bound = all(step.call is not None for step in steps)
        collect = [(name, views.get(tensor, tensor), pads, shape)
                   for name, (tensor, pads, shape) in variant.views.items()]
        plain = self.spec.output_layout != "NCHW" and all(
            pads is None and shape is None and not isinstance(source, str) for _, source, pads, shape in collect)
        copies = [(name, source) for name, source, _, _ in collect] if plain else None
        return _Prepared(pool, arena, steps, inputs, feeds, bound, collect, copies)

    def plan(self, batch: int = 1, size: Size = None) -> MemoryPlan:
        """The memory plan for ``batch`` samples at the config's input size, or at ``size`` ((H, W), or a
        dict of them by input); computed, not allocated, if that shape has not run."""
        with self._lock:
            variant = self._variant(self._sizes(size))
            pool = self._pools.get((variant.key, batch))
        return pool.plan if pool is not None else plan_memory(variant.graph, batch)

    @property
    def memory_plan(self) -> MemoryPlan:
        """The memory plan for batch 1: peak activation bytes (the arena) against the naive sum."""
        return self.plan(1)

    # --- running -------------------------------------------------------------------------------------

    def _bind(self, x: Union[np.ndarray, Mapping[str, Any]]) -> tuple[list[np.ndarray], int, Sizes]:
        """The input arrays in the config's order, the batch size and the per-sample input shapes; the
        checks run once per (shapes, dtypes) of the arrays."""
        names = self.spec.inputs
        if type(x) is np.ndarray and len(names) == 1:  # the common case, without the generic steps
            checked = self._checked.get(((x.shape, x.dtype),))
            if checked is not None:
                return [x], checked[0], checked[1]
            arrays = [x]
        elif isinstance(x, Mapping):
            unknown = sorted(set(x) - set(names))
            if unknown:
                raise ModelError(f"expected inputs named {', '.join(names)}, found {unknown[0]!r}",
                                 layer=unknown[0], field="inputs")
            missing = [n for n in names if n not in x]
            if missing:
                raise ModelError("no array given for this model input", layer=missing[0], field="inputs")
            arrays = [np.asarray(x[name]) for name in names]
        elif len(names) == 1:
            arrays = [np.asarray(x)]
        else:
            raise ModelError(f"this model has {len(names)} inputs; pass a dict keyed by "
                             f"{', '.join(repr(n) for n in names)}", field="inputs")
        key = tuple([(a.shape, a.dtype) for a in arrays])
        checked = self._checked.get(key)
        if checked is None:
            checked = self._check_arrays(arrays)
            if len(self._checked) >= _CHECKED_KEPT:
                self._checked.clear()
            self._checked[key] = checked
        return arrays, checked[0], checked[1]

    def _check_arrays(self, arrays: list[np.ndarray]) -> tuple[int, Sizes]:
        """The batch size and per-sample input shapes of input ``arrays``; a clear error for a dtype or
        shape the model cannot take."""
        batch, sizes = None, []
        for name, declared, array in zip(self.spec.inputs, self._declared, arrays):
            check_input_dtype(f"model input {name!r}", array.dtype)
            if not np.issubdtype(array.dtype, np.floating):
                raise TypeError(f"model input {name!r}: expected real numbers, found dtype {array.dtype}")
            layout = self.spec.layers[name].attrs["layout"]
            size = _per_sample(array.shape, declared, layout)
            if size is None or array.shape[0] < 1:
                want = self.input_shape(name)
                hint = f"pass an array of shape {want}, or a batch of them"
                if array.shape == want[1:]:
                    hint = "add the batch axis, e.g. x[None]"
                elif len(want) == 4 and array.ndim == 4 and _per_sample(array.shape, declared, _OTHER[layout]):
                    hint = (f"this looks like {_OTHER[layout]}: transpose it, or declare that layout on the input "
                            f"layer")
                other = f"; H and W may differ, C = {declared[2]}" if len(want) == 4 else ""
                raise ModelError(f"expected an array of shape (N, {', '.join(map(str, want[1:]))}) ({layout}{other}), "
                                 f"found {array.shape}", layer=name, field="shape", hint=hint)
            if batch is not None and array.shape[0] != batch:
                raise ModelError(f"expected the batch size {batch} of the other inputs, found {array.shape[0]}",
                                 layer=name, field="shape")
            batch = array.shape[0]
            sizes.append(size)
        return batch, tuple(sizes)

    def _transposed(self, variant: _Variant, name: str) -> bool:
        """Whether input ``name`` is transposed from NCHW to NHWC on every run of ``variant``."""
        return (self.spec.layers[name].attrs["layout"] == "NCHW" and len(variant.info.outputs[name]) == 3
                and name not in variant.nchw_inputs)

    def _load(self, prepared: _Prepared, arrays: list[np.ndarray], threads: int) -> dict[str, np.ndarray]:
        """Copy (or transpose) each input into its buffer; the arrays the unbound steps read for the
        others, as C-contiguous float32 arrays, by input name."""
        env = {}
        for (name, buffer, transpose), array in zip(prepared.feeds, arrays):
            if buffer is None:
                env[name] = np.ascontiguousarray(array, dtype=np.float32)
            elif transpose:
                nchw_to_nhwc(array, out=buffer, threads=threads)
            else:
                buffer[...] = array  # same shape (checked); half the time of np.copyto on tiny arrays
        return env

    def _execute(self, prepared: _Prepared, env: dict[str, np.ndarray], threads: int,
                 times: Optional[list[float]] = None) -> None:
        if prepared.bound and times is None:
            for step in prepared.steps:
                step.call(threads)
            return
        for step in prepared.steps:
            t0 = time.perf_counter() if times is not None else 0.0
            if step.call is not None:
                step.call(threads)
            else:
                step.run_on([env[s] if isinstance(s, str) else s for s in step.sources], threads)
            if times is not None:
                times.append(time.perf_counter() - t0)

    def _collect(self, prepared: _Prepared, env: dict[str, np.ndarray], threads: int) -> dict[str, np.ndarray]:
        """A fresh array per returned name (the arena is reused by the next run)."""
        if prepared.copies is not None:
            return {name: array.copy() for name, array in prepared.copies}
        nchw = self.spec.output_layout == "NCHW"
        result = {}
        for name, source, pads, shape in prepared.collect:
            array = env[source] if isinstance(source, str) else source
            if pads is None and shape is None and not nchw:
                result[name] = array.copy()  # arena views and input buffers are C-contiguous float32
                continue
            if pads is not None:
                array = np.pad(array, ((0, 0), *pads, (0, 0)))
            if shape is not None:
                array = array.reshape(array.shape[0], *shape)
            if nchw and array.ndim == 4:
                result[name] = nhwc_to_nchw(array, threads=threads)
            else:
                result[name] = np.array(array, dtype=np.float32, order="C")
        return result

    def run(self, x: Union[np.ndarray, Mapping[str, Any]], *, outputs: Union[None, str, Sequence[str]] = None,
            threads: Optional[int] = None) -> ArrayOrDict:
        """Run the model on ``x``: an array ``(N, H, W, C)`` (``(N, C, H, W)`` for an NCHW input layer),
        or a dict of them keyed by input layer name; H and W may differ from the config's (see the module
        docstring). Returns a fresh array, or a dict keyed by output layer name when the model has
        several outputs.

        ``outputs``: the tensors to return instead, by name (layer names; for imported models the ONNX
        tensor names as well): a list gives a dict keyed by those names, one name its array. Requested
        tensors are computed even where the model would otherwise fuse them away (the output of a
        convolution before its relu); an unknown name raises a ``KeyError`` listing close matches."""
        threads = self.threads if threads is None else resolve_threads(threads)
        requested = None if outputs is None else self._requested(outputs)
        arrays, batch, sizes = self._bind(x)
        variant = self._base if requested is None and sizes == self._declared else self._variant(sizes, requested)
        prepared = self._checkout(batch, variant)
        try:
            env = self._load(prepared, arrays, threads)
            self._execute(prepared, env, threads)
            result = self._collect(prepared, env, threads)
        finally:
            self._checkin(prepared)
        if isinstance(outputs, str) or (outputs is None and len(result) == 1):
            return next(iter(result.values()))
        return result

    __call__ = run

    def example_input(self, batch: int = 1, seed: int = 0, size: Size = None) -> ArrayOrDict:
        """A deterministic image-like input in [0, 1] (smooth blobs plus a little noise), in each input's
        layout, at the config's input size or at ``size``; a dict when the model has several inputs."""
        arrays = {}
        for name, shape in zip(self.spec.inputs, self._sizes(size)):
            if len(shape) == 3:
                h, w, c = shape
                cell = max(1, min(h, w) // 8)
                coarse = _uniform(seed, name, "coarse", (batch, -(-h // cell), -(-w // cell), c))
                draw = seeded_stream(seed, f"example input {name}", "fine")
                nchw = self.spec.layers[name].attrs["layout"] == "NCHW"
                x = np.empty((batch, c, h, w) if nchw else (batch, h, w, c), np.float32)
                # A block of rows at a time: a large input is made without float64 copies of it whole.
                rows = max(1, _EXAMPLE_BLOCK // (w * c))
                for n in range(batch):
                    for y0 in range(0, h, rows):
                        y1 = min(h, y0 + rows)
                        smooth = coarse[n].repeat(cell, axis=0).repeat(cell, axis=1)[y0:y1, :w]
                        fine = draw((y1 - y0) * w * c).reshape(y1 - y0, w, c)
                        block = np.clip(0.85 * smooth + 0.15 * fine, 0.0, 1.0)
                        if nchw:
                            x[n, :, y0:y1] = block.transpose(2, 0, 1)
                        else:
                            x[n, y0:y1] = block
            else:
                x = _uniform(seed, name, "fine", (batch, *shape)).astype(np.float32)
            arrays[name] = x
        return arrays if len(arrays) > 1 else arrays[self.spec.inputs[0]]

    # --- reporting -----------------------------------------------------------------------------------

    def summary(self, batch: int = 1, size: Size = None) -> str:
        """A Keras-style table of the nodes that run: config layers they compute, output shape,
        parameters (of the original layers), MACs per batch and the strategy chosen for ``batch``; at
        the config's input size, or at ``size`` ((H, W), or a dict of them by input)."""
        variant = self._variant(self._sizes(size))
        spec, info, graph = variant.spec, variant.info, variant.graph
        rows = []
        for node, strategy in zip(graph.nodes.values(), self._strategies(variant, batch)):
            params = sum(math.prod(p.shape) for layer in node.layers for p in info.params[layer].values())
            macs = batch * sum(info.macs[layer] for layer in node.layers)
            rows.append((f"{node.layers[0]} ({spec.layers[node.layers[0]].type})",
                         str((batch, *node.out_shape)), f"{params:,}", _si(macs), strategy,
                         [f"{n} ({spec.layers[n].type})" for n in node.layers[1:]]))
        head = ("Layer (type)", "Output shape", "Params", "MACs", "Strategy")
        widths = [max(len(head[i]), *(len(r[i]) for r in rows)) for i in range(5)]
        fmt = f"{{:<{widths[0]}}}  {{:<{widths[1]}}}  {{:>{widths[2]}}}  {{:>{widths[3]}}}  {{:<{widths[4]}}}"
        rule = "-" * (sum(widths) + 8)
        inputs = ", ".join(f"{n} {self.input_shape(n, batch, size)} {self.spec.layers[n].attrs['layout']}"
                           for n in self.spec.inputs)
        lines = [f"Model: {self.name or '(unnamed)'}   inputs: {inputs}", rule, fmt.format(*head), rule]
        for *cells, fused in rows:
            lines.append(fmt.format(*cells))
            if fused:
                lines.append("    + " + ", ".join(fused))
        plan = self.plan(batch, size)
        held = sum(kernel.weight_bytes() for kernel in {id(k): k for k in variant.kernels.values()}.values())
        total_params = sum(math.prod(p.shape) for ps in info.params.values() for p in ps.values())
        total_macs = batch * sum(info.macs[layer] for node in graph.nodes.values() for layer in node.layers)
        fused = sum(len(n.layers) - 1 for n in graph.nodes.values())
        lines += [rule,
                  f"Total params: {total_params:,}   Total MACs: {_si(total_macs)} (batch {batch})   "
                  f"threads: {self.threads}",
                  f"{len(spec.layers)} config layers run as {len(graph.nodes)} nodes "
                  f"({fused} layers merged into their neighbours, {len(graph.folded)} of them batch norms "
                  f"or scale_shifts)",
                  str(plan),
                  f"memory: weights {held / 2**20:.2f} MiB (as the kernels hold them, packed), arena "
                  f"{plan.arena_bytes / 2**20:.2f} MiB (batch {batch}), "
                  f"total {(held + plan.arena_bytes) / 2**20:.2f} MiB"]
        return "\n".join(lines)

    def profile(self, x: Union[None, np.ndarray, Mapping[str, Any]] = None, *, repeat: int = 10,
                warmup: int = 1, threads: Optional[int] = None) -> Profile:
        """Time every node over ``repeat`` runs (after ``warmup`` untimed ones) on ``x`` (by default
        :meth:`example_input`); returns per-node medians, GFLOP/s and each strategy's share of time."""
        if repeat < 1:
            raise ValueError(f"repeat: expected a positive integer, found {repeat}")
        threads = self.threads if threads is None else resolve_threads(threads)
        arrays, batch, sizes = self._bind(self.example_input() if x is None else x)
        samples: list[list[float]] = []
        with self._prepared(batch, self._variant(sizes)) as prepared:
            env = self._load(prepared, arrays, threads)
            for _ in range(warmup):
                self._execute(prepared, env, threads)
            for _ in range(repeat):
                times: list[float] = []
                self._execute(prepared, env, threads, times)
                samples.append(times)
        medians = np.median(np.array(samples), axis=0) if prepared.steps else np.zeros(0)
        total = float(np.median([sum(t) for t in samples])) if prepared.steps else 0.0
        denominator = float(medians.sum()) or 1.0
        rows, share = [], {}
        for step, seconds in zip(prepared.steps, medians):
            macs = batch * sum(prepared.variant.info.macs[layer] for layer in step.node.layers)
            rows.append(ProfileRow(step.node.layers[0], step.node.type, step.strategy, float(seconds),
                                   2e-9 * macs / seconds if seconds > 0 else 0.0, float(seconds) / denominator))
            share[step.strategy] = share.get(step.strategy, 0.0) + float(seconds) / denominator
        return Profile(self.name, batch, threads, repeat, tuple(rows), total, share)

    # --- saving --------------------------------------------------------------------------------------

    def save(self, config_path: Union[str, Path]) -> None:
        """Write the config to ``config_path`` and the original (unfolded) weights beside it, as an
        ``.npz`` with the config's stem; the config's ``weights`` field names that file.

        Each file is written under a temporary name in its directory, then renamed over the target:
        an interrupted save leaves the old files whole. A ``config_path`` ending in ``.npz``, or one
        whose config or weights file is the weights file this model was loaded from, is a ValueError
        (saving over the weights being saved would lose the model if anything went wrong)."""
        path = Path(config_path)
        if path.suffix.lower() == ".npz":
            raise ValueError(f"save: expected a config path (.json), found {str(path)!r}: the weights go beside "
                             f"it, as {path.with_suffix('.npz').name} for {path.with_suffix('.json').name}")
        weights_path = path.with_suffix(".npz")
        if self._weights_file is not None:
            for target, what in ((path, "config"), (weights_path, "weights")):
                if _same_file(target, self._weights_file):
                    raise ValueError(f"save: the {what} file {str(target)!r} would overwrite {str(self._weights_file)!r}, "
                                     f"the weights file this model was loaded from; save under another name")
        doc = copy.deepcopy(self.spec.document)
        doc["weights"] = weights_path.name
        path.parent.mkdir(parents=True, exist_ok=True)
        save_weights(weights_path, self.weights)
        text = (json.dumps(doc, indent=2) + "\n").encode("utf-8")
        write_atomically(path, lambda file: file.write(text))


def _node_key(spec: ModelSpec, node: Node, padding: bool = True) -> tuple:
    """What a node's operator depends on: nodes of equal keys (at two input sizes, or for two sets of
    requested tensors) share one operator. The layers it computes, with their config, determine its
    weights; the input shapes count only for layer types whose operator is built for one size. Without
    ``padding``: what its weights depend on (operators that differ only in padding share them)."""
    def config(attrs: dict[str, Any]) -> str:
        return repr(sorted((k, v) for k, v in attrs.items() if padding or k != "padding"))
    return (node.type, config(node.attrs), tuple(node.inputs),
            tuple((name, config(spec.layers[name].attrs)) for name in node.layers),
            None if node.type in _SIZE_FREE else tuple(node.in_shapes))


def _check_params(declared: ShapeInfo, info: ShapeInfo, where: str) -> None:
    """Every layer expects the weights it has: a size that changes a weight's shape (a dense layer after
    a flatten) cannot run."""
    for layer, params in info.params.items():
        for param, p in params.items():
            if param not in declared.params.get(layer, {}):
                raise ModelError(f"{where} gives the model a weight {param!r} of shape {list(p.shape)} that it does "
                                 f"not have at its own size", layer=layer, field=param)
            want = declared.params[layer][param].shape
            if p.shape == want:
                continue
            if param == "kernel" and len(want) == 2:
                message = f"expects {want[0]} inputs, {where} gives {p.shape[0]}"
            else:
                message = f"expects {param} of shape {list(want)} (its weights), {where} needs {list(p.shape)}"
            raise ModelError(message, layer=layer, field="inputs",
                             hint="a layer after flatten or reshape fixes the input size; global_avg_pool "
                                  "instead of flatten makes a head that takes any size")


def _view(spec: ModelSpec, name: str) -> tuple[str, Any, Optional[tuple[int, ...]]]:
    """A requested tensor as (layer, pads, shape), see :class:`_Variant`."""
    if name in spec.layers:
        return name, None, None
    view = spec.tensors.get(name)
    if view is None:  # a name of the config's own size that the config at another size does not hold
        raise UnknownTensorError(f"no tensor named {name!r} in the model at this input size", layer=name,
                                 field="outputs")
    pads = tuple(tuple(p) for p in view["pads"]) if "pads" in view else None
    return view["layer"], pads, tuple(view["shape"]) if "shape" in view else None


_OTHER = {"NHWC": "NCHW", "NCHW": "NHWC"}


def _per_sample(shape: tuple[int, ...], declared: Shape, layout: str) -> Optional[Shape]:
    """The per-sample NHWC shape of an input array of ``shape`` in ``layout``, if its rank and channels
    match the input layer's ``declared`` shape (H and W may differ); else None."""
    if len(shape) != len(declared) + 1:
        return None
    if len(declared) != 3:
        return tuple(shape[1:]) if tuple(shape[1:]) == tuple(declared) else None
    h, w, c = shape[1:] if layout == "NHWC" else (shape[2], shape[3], shape[1])
    return (h, w, c) if c == declared[2] and h >= 1 and w >= 1 else None


def _same_file(a: Path, b: Path) -> bool:
    """Whether paths ``a`` and ``b`` name one file (through links or relative parts too)."""
    try:
        return a.samefile(b)
    except OSError:  # one of them does not exist (yet)
        return a.resolve() == b.resolve()


def _blame(node: Node, exc: Exception) -> Optional[str]:
    return "strategy" if node.attrs.get("strategy", "auto") != "auto" and "strateg" in str(exc).lower() else None


def _uniform(seed: int, layer: str, what: str, shape: tuple[int, ...]) -> np.ndarray:
    return seeded_uniform(seed, f"example input {layer}", what, math.prod(shape)).reshape(shape)


def _si(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return f"{n:.0f}"
