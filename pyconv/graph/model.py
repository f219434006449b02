"""The model runtime: :func:`load` a config, then run, summarise, profile or save the :class:`Model`.

Loading does all the work that does not depend on the batch size: parsing and validation, shape
inference, weights, the fold/fuse passes, and operator construction (weights packed once); it also
plans batch 1. Planning a batch size allocates the arena for it (one float32 buffer), binds every
node's output to a fixed view of it and every node that reads only the arena to its arrays; the first
run with another batch size plans it, and later runs allocate nothing but the returned copies.
"""
from __future__ import annotations

import copy
import json
import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Union

import numpy as np

from .._kernels import start_threads
from ..memory import aligned_empty
from ..ops import nchw_to_nhwc, nhwc_to_nchw
from ..threads import resolve_threads
from .errors import ModelError
from .format import ModelSpec, parse_config, read_config
from .layers import LAYER_TYPES, Kernel, Shape
from .passes import Graph, Node, lower
from .planner import MemoryPlan, plan_memory
from .shapes import ShapeInfo, infer_shapes
from .weights import LayerWeights, check_weights, read_npz, save_weights, seeded_uniform, seeded_weights

__all__ = ["Model", "Profile", "ProfileRow", "load"]

ArrayOrDict = Union[np.ndarray, dict[str, np.ndarray]]
Strategy = Union[None, str, Mapping[str, str]]

# Batch sizes whose arenas are kept; a model run on many batch sizes keeps only the latest few.
_PLANS_KEPT = 4


def load(config_path: Union[str, Path], weights: Union[None, str, Path, Mapping[str, Any]] = None, *,
         threads: Optional[int] = None, strategy: Strategy = None, optimize: bool = True) -> "Model":
    """Load a model config (JSON) and its weights.

    ``weights``: an ``.npz`` path, or a mapping ``"<layer>/<param>" -> array`` (or nested
    ``layer -> param -> array``, the form of :attr:`Model.weights`); by default the file the config
    names (relative to the config), or seeded weights if it names none. ``strategy``: a conv2d
    strategy for every conv2d layer, or a mapping from conv2d layer name to strategy, overriding the
    config. ``optimize=False`` skips batch-norm folding and fusion (every layer runs on its own).
    """
    path = Path(config_path)
    return Model(read_config(path), weights=weights, base_dir=path.parent, threads=threads, strategy=strategy,
                 optimize=optimize)


@dataclass
class _Step:
    node: Node
    kernel: Kernel
    sources: list[Union[str, np.ndarray]]  # a model input's name, a view into the arena or an input buffer
    out: np.ndarray
    strategy: str
    call: Optional[Callable[[int], object]] = None  # bound once when every source is in the arena
    # A node reading a model input is bound to the caller's arrays of the last run, kept alive here so
    # that their identity proves them unchanged: the same array again (a benchmark, a capture loop
    # refilling one buffer) skips the argument checks, 4-6 us a node.
    last_sources: Optional[list[np.ndarray]] = None
    last_call: Optional[Callable[[int], object]] = None

    def run_on(self, sources: list[np.ndarray], threads: int) -> None:
        if self.kernel.bind is None:
            self.kernel.run(sources, self.out, threads)
            return
        if self.last_sources is None or any(a is not b for a, b in zip(sources, self.last_sources)):
            self.last_call = self.kernel.bind(sources, self.out)
            self.last_sources = sources
        self.last_call(threads)


@dataclass
class _Prepared:
    plan: MemoryPlan
    arena: np.ndarray
    steps: list[_Step]
    outputs: dict[str, Union[str, np.ndarray]]
    # NCHW inputs transposed on every run go into these NHWC buffers, so that their readers are bound
    # once and the transpose writes memory that stays warm (a fresh 3 MB array cost page faults).
    inputs: dict[str, np.ndarray]


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
    """A loaded model; see :func:`load`. Call it (or :meth:`run`) on NHWC numpy arrays.

    ``weights`` holds the original (unfolded) weights by layer and param, ``graph`` the nodes that run,
    ``info`` the per-layer shapes, parameters and MACs. Runs of one model share its arena, so runs from
    several Python threads take turns (a lock); for inference in parallel, load one model per thread.
    """

    def __init__(self, config: Mapping[str, Any], *, weights: Union[None, str, Path, Mapping[str, Any]] = None,
                 base_dir: Union[str, Path] = ".", threads: Optional[int] = None, strategy: Strategy = None,
                 optimize: bool = True) -> None:
        self.spec: ModelSpec = parse_config(copy.deepcopy(dict(config) if isinstance(config, Mapping) else config))
        self.info: ShapeInfo = infer_shapes(self.spec)
        self._apply_strategy(strategy)
        self.weights: LayerWeights = self._read_weights(weights, Path(base_dir))
        self.graph: Graph = lower(self.spec, self.info, self.weights, optimize=optimize)
        self.kernels: dict[str, Kernel] = {name: self._build(node) for name, node in self.graph.nodes.items()}
        self._nchw_inputs = self._read_nchw_in_place() if optimize else set()
        for node in self.graph.nodes.values():
            # The operators hold what they need; folded kernels would otherwise stay alive a second time.
            node.weights = {}
        self.threads = resolve_threads(threads)
        self._plans: OrderedDict[int, _Prepared] = OrderedDict()
        self._lock = threading.Lock()
        # Batch 1, the common case, is planned and bound now, and the OpenMP workers started: the first
        # run then costs what later ones do.
        self._prepare(1)
        start_threads(self.threads)

    def __repr__(self) -> str:
        inputs = ", ".join(f"{n} {self.input_shape(n)[1:]} {self.spec.layers[n].attrs['layout']}"
                           for n in self.spec.inputs)
        return (f"<pyconv Model {self.name!r}: {len(self.spec.layers)} layers as {len(self.graph.nodes)} nodes, "
                f"inputs {inputs}, outputs {self.spec.outputs}, {self.threads} thread(s)>")

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def input_names(self) -> list[str]:
        return list(self.spec.inputs)

    @property
    def output_names(self) -> list[str]:
        return list(self.spec.outputs)

    def input_shape(self, name: Optional[str] = None, batch: int = 1) -> Shape:
        """The array shape the caller passes for input ``name`` (the only input by default), in its layout."""
        name = name or self.spec.inputs[0]
        h_w_c = self.info.outputs[name]
        if self.spec.layers[name].attrs["layout"] == "NCHW" and len(h_w_c) == 3:
            return (batch, h_w_c[2], h_w_c[0], h_w_c[1])
        return (batch, *h_w_c)

    # --- loading -------------------------------------------------------------------------------------

    def _apply_strategy(self, strategy: Strategy) -> None:
        if strategy is None:
            return
        if isinstance(strategy, str):
            strategy = {n: strategy for n, layer in self.spec.layers.items() if layer.type == "conv2d"}
        for name, value in strategy.items():
            layer = self.spec.layers.get(name)
            if layer is None or layer.type != "conv2d":
                found = "no such layer" if layer is None else f"a {layer.type} layer"
                raise ModelError(f"strategy overrides apply to conv2d layers, found {found}", layer=name,
                                 field="strategy")
            layer.attrs["strategy"] = value

    def _read_weights(self, weights: Union[None, str, Path, Mapping[str, Any]], base_dir: Path) -> LayerWeights:
        if isinstance(weights, Mapping):
            flat = {f"{layer}/{name}": array for layer, params in weights.items() if isinstance(params, Mapping)
                    for name, array in params.items()}
            flat.update({key: array for key, array in weights.items() if not isinstance(array, Mapping)})
            return check_weights(flat, self.info.params, "the weights mapping")
        path = Path(weights) if weights is not None else (
            base_dir / self.spec.weights if self.spec.weights else None)
        if path is None:
            signals = {name: self.info.signals[layer.inputs[0]] for name, layer in self.spec.layers.items()
                       if layer.inputs}
            return seeded_weights(self.spec.seed, self.info.params, signals)
        return check_weights(read_npz(path), self.info.params, path.name)

    def _build(self, node: Node) -> Kernel:
        try:
            return LAYER_TYPES[node.type].build(node.attrs, node.weights, node.in_shapes)
        except (ValueError, TypeError) as exc:
            raise ModelError(f"cannot prepare the {node.type} operator: {exc}", layer=node.layers[0],
                             field=_blame(node, exc)) from exc

    def _read_nchw_in_place(self) -> set[str]:
        """The NCHW inputs whose every reader can take them as they are (a first convolution of an RGB
        image): their readers switch to that kernel, and runs skip the transpose to NHWC."""
        direct = set()
        for name in self.spec.inputs:
            readers = self.graph.consumers(name)
            if (self.spec.layers[name].attrs["layout"] == "NCHW" and readers
                    and name not in self.graph.outputs.values()
                    and all(r.inputs == [name] and self.kernels[r.name].nchw is not None for r in readers)):
                direct.add(name)
                for reader in readers:
                    self.kernels[reader.name] = self.kernels[reader.name].nchw
        return direct

    # --- planning ------------------------------------------------------------------------------------

    def _strategies(self, batch: int) -> list[str]:
        strategies = []
        for name, node in self.graph.nodes.items():
            shape = (batch, *node.in_shapes[0])
            try:
                strategies.append(self.kernels[name].strategy(shape))
            except (ValueError, TypeError) as exc:
                raise ModelError(f"no strategy for input shape {shape}: {exc}", layer=node.layers[0],
                                 field=_blame(node, exc)) from exc
        return strategies

    def _prepare(self, batch: int) -> _Prepared:
        prepared = self._plans.get(batch)
        if prepared is not None:
            self._plans.move_to_end(batch)
            return prepared
        plan = plan_memory(self.graph, batch)
        arena = aligned_empty(plan.arena_bytes // 4)
        # Touch every page now, when planning: the first run would otherwise take a page fault per 4 KiB.
        arena.fill(0.0)
        views = {t: arena[off:off + n].reshape(batch, *self.graph.nodes[t].out_shape)
                 for t, (off, n) in plan.offsets.items()}
        inputs = {name: aligned_empty((batch, *self.info.outputs[name])) for name in self.spec.inputs
                  if self._transposed(name)}
        views.update(inputs)
        steps = [_Step(node, self.kernels[name], [views.get(src, src) for src in node.inputs], views[name], strategy)
                 for (name, node), strategy in zip(self.graph.nodes.items(), self._strategies(batch))]
        for step in steps:
            if step.kernel.bind is not None and not any(isinstance(s, str) for s in step.sources):
                try:
                    step.call = step.kernel.bind(step.sources, step.out)
                except (ValueError, TypeError) as exc:
                    raise ModelError(f"cannot run on input shape {(batch, *step.node.in_shapes[0])}: {exc}",
                                     layer=step.node.layers[0], field=_blame(step.node, exc)) from exc
        outputs = {o: views.get(t, t) for o, t in self.graph.outputs.items()}
        prepared = _Prepared(plan, arena, steps, outputs, inputs)
        self._plans[batch] = prepared
        while len(self._plans) > _PLANS_KEPT:
            self._plans.popitem(last=False)
        return prepared

    def plan(self, batch: int = 1) -> MemoryPlan:
        """The memory plan for ``batch`` samples (computed, not allocated, if that batch size has not run)."""
        prepared = self._plans.get(batch)
        return prepared.plan if prepared is not None else plan_memory(self.graph, batch)

    @property
    def memory_plan(self) -> MemoryPlan:
        """The memory plan for batch 1: peak activation bytes (the arena) against the naive sum."""
        return self.plan(1)

    # --- running -------------------------------------------------------------------------------------

    def _bind(self, x: Union[np.ndarray, Mapping[str, Any]]) -> tuple[dict[str, np.ndarray], int]:
        names = self.spec.inputs
        if isinstance(x, Mapping):
            unknown = sorted(set(x) - set(names))
            if unknown:
                raise ModelError(f"expected inputs named {', '.join(names)}, found {unknown[0]!r}",
                                 layer=unknown[0], field="inputs")
            missing = [n for n in names if n not in x]
            if missing:
                raise ModelError("no array given for this model input", layer=missing[0], field="inputs")
            given = dict(x)
        elif len(names) == 1:
            given = {names[0]: x}
        else:
            raise ModelError(f"this model has {len(names)} inputs; pass a dict keyed by "
                             f"{', '.join(repr(n) for n in names)}", field="inputs")
        env, batch = {}, None
        for name in names:
            array = np.asarray(given[name])
            if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
                raise TypeError(f"model input {name!r}: expected real numbers, found dtype {array.dtype}")
            layout = self.spec.layers[name].attrs["layout"]
            want = self.input_shape(name, batch=array.shape[0] if array.ndim else 0)
            if array.shape != want or array.shape[0] < 1:
                hint = f"pass an array of shape {(1, *want[1:])}, or a batch of them"
                if array.shape == want[1:]:
                    hint = "add the batch axis, e.g. x[None]"
                elif len(want) == 4 and array.shape[1:] == _other_layout(want[1:], layout):
                    hint = (f"this looks like {'NHWC' if layout == 'NCHW' else 'NCHW'}: transpose it, or declare "
                            f"that layout on the input layer")
                raise ModelError(f"expected an array of shape (N, {', '.join(map(str, want[1:]))}) ({layout}), "
                                 f"found {array.shape}", layer=name, field="shape", hint=hint)
            if batch is not None and array.shape[0] != batch:
                raise ModelError(f"expected the batch size {batch} of the other inputs, found {array.shape[0]}",
                                 layer=name, field="shape")
            batch = array.shape[0]
            env[name] = array
        return env, batch

    def _transposed(self, name: str) -> bool:
        """Whether input ``name`` is transposed from NCHW to NHWC on every run."""
        return (self.spec.layers[name].attrs["layout"] == "NCHW" and len(self.info.outputs[name]) == 3
                and name not in self._nchw_inputs)

    def _load(self, prepared: _Prepared, given: dict[str, np.ndarray], threads: int) -> dict[str, np.ndarray]:
        """The arrays the steps read: each transposed input written into its buffer, the others as
        C-contiguous float32 arrays."""
        env = {}
        for name, array in given.items():
            if name in prepared.inputs:
                env[name] = nchw_to_nhwc(array, out=prepared.inputs[name], threads=threads)
            else:
                env[name] = np.ascontiguousarray(array, dtype=np.float32)
        return env

    def _execute(self, prepared: _Prepared, env: dict[str, np.ndarray], threads: int,
                 times: Optional[list[float]] = None) -> None:
        for step in prepared.steps:
            t0 = time.perf_counter() if times is not None else 0.0
            if step.call is not None:
                step.call(threads)
            else:
                step.run_on([env[s] if isinstance(s, str) else s for s in step.sources], threads)
            if times is not None:
                times.append(time.perf_counter() - t0)

    def _collect(self, prepared: _Prepared, env: dict[str, np.ndarray], threads: int) -> ArrayOrDict:
        result = {}
        for name, source in prepared.outputs.items():
            array = env[source] if isinstance(source, str) else source
            if self.spec.output_layout == "NCHW" and array.ndim == 4:
                result[name] = nhwc_to_nchw(array, threads=threads)
            else:
                result[name] = np.array(array, dtype=np.float32, order="C")  # a copy: the arena is reused
        return result if len(result) > 1 else next(iter(result.values()))

    def run(self, x: Union[np.ndarray, Mapping[str, Any]], *, threads: Optional[int] = None) -> ArrayOrDict:
        """Run the model on ``x``: an array ``(N, H, W, C)`` (``(N, C, H, W)`` for an NCHW input layer),
        or a dict of them keyed by input layer name. Returns a fresh array, or a dict keyed by output
        layer name when the model has several outputs."""
        threads = self.threads if threads is None else resolve_threads(threads)
        given, batch = self._bind(x)
        with self._lock:
            prepared = self._prepare(batch)
            env = self._load(prepared, given, threads)
            self._execute(prepared, env, threads)
            return self._collect(prepared, env, threads)

    __call__ = run

    def example_input(self, batch: int = 1, seed: int = 0) -> ArrayOrDict:
        """A deterministic image-like input in [0, 1] (smooth blobs plus a little noise), in each input's
        layout; a dict when the model has several inputs."""
        arrays = {}
        for name in self.spec.inputs:
            shape = self.info.outputs[name]
            if len(shape) == 3:
                h, w, c = shape
                cell = max(1, min(h, w) // 8)
                coarse = _uniform(seed, name, "coarse", (batch, -(-h // cell), -(-w // cell), c))
                smooth = coarse.repeat(cell, axis=1).repeat(cell, axis=2)[:, :h, :w]
                fine = _uniform(seed, name, "fine", (batch, h, w, c))
                x = np.clip(0.85 * smooth + 0.15 * fine, 0.0, 1.0).astype(np.float32)
                if self.spec.layers[name].attrs["layout"] == "NCHW":
                    x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
            else:
                x = _uniform(seed, name, "fine", (batch, *shape)).astype(np.float32)
            arrays[name] = x
        return arrays if len(arrays) > 1 else arrays[self.spec.inputs[0]]

    # --- reporting -----------------------------------------------------------------------------------

    def summary(self, batch: int = 1) -> str:
        """A Keras-style table of the nodes that run: config layers they compute, output shape,
        parameters (of the original layers), MACs per batch and the strategy chosen for ``batch``."""
        rows = []
        for node, strategy in zip(self.graph.nodes.values(), self._strategies(batch)):
            params = sum(math.prod(p.shape) for layer in node.layers for p in self.info.params[layer].values())
            macs = batch * sum(self.info.macs[layer] for layer in node.layers)
            rows.append((f"{node.layers[0]} ({self.spec.layers[node.layers[0]].type})",
                         str((batch, *node.out_shape)), f"{params:,}", _si(macs), strategy,
                         [f"{n} ({self.spec.layers[n].type})" for n in node.layers[1:]]))
        head = ("Layer (type)", "Output shape", "Params", "MACs", "Strategy")
        widths = [max(len(head[i]), *(len(r[i]) for r in rows)) for i in range(5)]
        fmt = f"{{:<{widths[0]}}}  {{:<{widths[1]}}}  {{:>{widths[2]}}}  {{:>{widths[3]}}}  {{:<{widths[4]}}}"
        rule = "-" * (sum(widths) + 8)
        inputs = ", ".join(f"{n} {self.input_shape(n, batch)} {self.spec.layers[n].attrs['layout']}"
                           for n in self.spec.inputs)
        lines = [f"Model: {self.name or '(unnamed)'}   inputs: {inputs}", rule, fmt.format(*head), rule]
        for *cells, fused in rows:
            lines.append(fmt.format(*cells))
            if fused:
                lines.append("    + " + ", ".join(fused))
        total_params = sum(math.prod(p.shape) for ps in self.info.params.values() for p in ps.values())
        total_macs = batch * sum(self.info.macs[layer] for node in self.graph.nodes.values() for layer in node.layers)
        fused = sum(len(n.layers) - 1 for n in self.graph.nodes.values())
        lines += [rule,
                  f"Total params: {total_params:,}   Total MACs: {_si(total_macs)} (batch {batch})   "
                  f"threads: {self.threads}",
                  f"{len(self.spec.layers)} config layers run as {len(self.graph.nodes)} nodes "
                  f"({fused} layers merged into their neighbours, {len(self.graph.folded)} of them batch norms "
                  f"or scale_shifts)",
                  str(self.plan(batch))]
        return "\n".join(lines)

    def profile(self, x: Union[None, np.ndarray, Mapping[str, Any]] = None, *, repeat: int = 10,
                warmup: int = 1, threads: Optional[int] = None) -> Profile:
        """Time every node over ``repeat`` runs (after ``warmup`` untimed ones) on ``x`` (by default
        :meth:`example_input`); returns per-node medians, GFLOP/s and each strategy's share of time."""
        if repeat < 1:
            raise ValueError(f"repeat: expected a positive integer, found {repeat}")
        threads = self.threads if threads is None else resolve_threads(threads)
        given, batch = self._bind(self.example_input() if x is None else x)
        samples: list[list[float]] = []
        with self._lock:
            prepared = self._prepare(batch)
            env = self._load(prepared, given, threads)
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
            macs = batch * sum(self.info.macs[layer] for layer in step.node.layers)
            rows.append(ProfileRow(step.node.layers[0], step.node.type, step.strategy, float(seconds),
                                   2e-9 * macs / seconds if seconds > 0 else 0.0, float(seconds) / denominator))
            share[step.strategy] = share.get(step.strategy, 0.0) + float(seconds) / denominator
        return Profile(self.name, batch, threads, repeat, tuple(rows), total, share)

    # --- saving --------------------------------------------------------------------------------------

    def save(self, config_path: Union[str, Path]) -> None:
        """Write the config to ``config_path`` and the original (unfolded) weights beside it, as an
        ``.npz`` with the config's stem; the config's ``weights`` field names that file."""
        path = Path(config_path)
        weights_path = path.with_suffix(".npz")
        doc = copy.deepcopy(self.spec.document)
        doc["weights"] = weights_path.name
        path.parent.mkdir(parents=True, exist_ok=True)
        save_weights(weights_path, self.weights)
        path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")


def _blame(node: Node, exc: Exception) -> Optional[str]:
    return "strategy" if node.attrs.get("strategy", "auto") != "auto" and "strateg" in str(exc).lower() else None


def _other_layout(shape: Shape, layout: str) -> Shape:
    """The per-sample shape of the same image in the layout other than ``layout``."""
    a, b, c = shape
    return (c, a, b) if layout == "NHWC" else (b, c, a)


def _uniform(seed: int, layer: str, what: str, shape: tuple[int, ...]) -> np.ndarray:
    return seeded_uniform(seed, f"example input {layer}", what, math.prod(shape)).reshape(shape)


def _si(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return f"{n:.0f}"
