"""The engines a benchmark compares, and the alternating, settled measurement that times them.

A kernel *case* is one layer-table row run by one pyconv operator/strategy at one thread count. Every
engine of the case (pyconv, then the peers: numpy matmul at the GEMM shape, ONNX Runtime, PyTorch) works
on the same input and weights, each in its native layout, with the same thread count, and must agree
with pyconv's result before anything is timed.

Fairness: libgomp (pyconv, PyTorch), OpenBLAS (numpy) and ONNX Runtime keep their worker threads spinning
after a call (measured here: OpenBLAS about 100 ms, ONNX Runtime about 30 ms, libgomp a few ms), and a
spinning pool steals a core from whoever runs next. So each round runs every engine in turn as a *step*:
wait until no other thread of the process is runnable (:func:`settle`), one untimed warm-up call (wakes
the engine's own pool and pulls its data into cache), a few timed calls. pyconv's timed calls are
pytest-benchmark's rounds (``benchmark.pedantic``); the peers' steps run in its ``setup``, in an order
that rotates every round. The per-engine medians therefore come from the same run, the same rounds and
the same conditions.
"""
from __future__ import annotations

import gc
import os
import statistics
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from layer_tables import ConvLayer, network_of

PEER_NAMES = ("numpy", "onnxruntime", "torch")
SETTLE_POLL_S = 0.001
SETTLE_CAP_S = 1.0
MAX_ROUNDS = 200
CALLS_PER_STEP = 3
AGREEMENT_RTOL = 2e-3  # max |peer - pyconv| over max |pyconv|; Winograd's rounding stays well inside


def _others_runnable() -> Optional[int]:
    """How many threads of this process, other than the caller, are running or runnable (None: unknown)."""
    me = threading.get_native_id()
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return None
    running = 0
    for tid in tids:
        if int(tid) == me:
            continue
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                stat = f.read()
        except OSError:  # the thread exited meanwhile
            continue
        running += stat[stat.rindex(")") + 2] == "R"
    return running


def settle() -> float:
    """Wait until every worker pool of the process has stopped spinning; returns the seconds waited.

    Spinning workers are runnable ("R" in /proc), sleeping ones are not. Two idle polls in a row are
    required so that a worker caught in a short sleep inside its spin loop does not end the wait early.
    Without /proc, waits the cap.
    """
    start = time.perf_counter()
    idle_polls = 0
    while idle_polls < 2:
        time.sleep(SETTLE_POLL_S)
        running = _others_runnable()
        if running is None or time.perf_counter() - start > SETTLE_CAP_S:
            time.sleep(max(0.0, SETTLE_CAP_S - (time.perf_counter() - start)))
            break
        idle_polls = idle_polls + 1 if running == 0 else 0
    return time.perf_counter() - start


@dataclass
class Engine:
    """One way to compute a case: ``call`` runs it once; ``result`` returns the last result in pyconv's
    layout (NHWC for a layer).

    ``result`` is None for an engine that computes something else on purpose (the G=1 reference of the
    group sweep), which is then timed but not compared; its ``info["macs"]`` says how much work it does.
    """

    name: str
    call: Callable[[], object]
    result: Optional[Callable[[], np.ndarray]]
    info: Dict[str, object]


def layer_data(row: ConvLayer, seed: int = 0):
    """Input (1, H, W, C_in) and HWIO weights (k, k, C_in / groups, C_out), unit-variance outputs."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, row.H, row.W, row.C_in), dtype=np.float32)
    fan_in = row.kernel * row.kernel * (row.C_in // row.groups)
    w = rng.standard_normal((row.kernel, row.kernel, row.C_in // row.groups, row.C_out), dtype=np.float32)
    return x, w * np.float32(1.0 / np.sqrt(fan_in))


def pyconv_engine(row: ConvLayer, x: np.ndarray, w: np.ndarray, threads: int, operator: str,
                  strategy: str = "auto", name: str = "pyconv") -> Engine:
    """pyconv's prepared operator for ``row``: ``operator`` is conv2d, pointwise or depthwise."""
    import pyconv

    if operator == "pointwise" and row.stride != 1:
        raise ValueError(f"{row.name}: PointwiseConv2D has no stride; benchmark it as conv2d")
    if operator == "pointwise":
        op = pyconv.PointwiseConv2D(w[0, 0])
    elif operator == "depthwise":
        op = pyconv.DepthwiseConv2D(w[:, :, 0, :], stride=row.stride, padding=row.padding)
    else:
        op = pyconv.Conv2D(w, stride=row.stride, padding=row.padding, groups=row.groups, strategy=strategy)
    # Only Conv2D chooses among strategies; its explain() also says which micro-kernel serves the shape.
    choice = op.explain(x.shape) if hasattr(op, "explain") else None
    out = np.empty(op.output_shape(x.shape), dtype=np.float32)
    return Engine(name, lambda: op(x, out=out, threads=threads), lambda: out,
                  {"operator": operator, "strategy": choice.strategy if choice else operator,
                   "strategy_requested": strategy, "strategy_reason": choice.reason if choice else ""})


def numpy_engine(row: ConvLayer, x: np.ndarray, w: np.ndarray, threads: int) -> Engine:
    """numpy matmul at the layer's GEMM shape: M = OH * OW, K = C_in, N = C_out (1x1 layers only).

    A strided 1x1 layer is timed on its already subsampled input: the peer gets the GEMM alone.
    BLAS threads are pinned by the caller (:func:`measure`) for the whole case.
    """
    if not row.is_pointwise:
        raise ValueError(f"{row.name}: numpy matmul is a peer of 1x1 convolutions only")
    a = np.ascontiguousarray(x[0, ::row.stride, ::row.stride]).reshape(-1, row.C_in)
    b = np.ascontiguousarray(w[0, 0])
    c = np.empty((a.shape[0], row.C_out), dtype=np.float32)
    oh, ow = row.out_hw
    return Engine("numpy", lambda: np.matmul(a, b, out=c), lambda: c.reshape(1, oh, ow, row.C_out),
                  {"gemm_mkn": [a.shape[0], row.C_in, row.C_out]})


def ort_session(model, threads: int):
    """An ONNX Runtime CPU session for ``model`` (a path or serialized bytes): ``threads`` intra-op
    threads, one inter-op thread, sequential execution, every graph optimisation on."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def onnxruntime_engine(row: ConvLayer, x: np.ndarray, w: np.ndarray, threads: int) -> Engine:
    """ONNX Runtime on a one-Conv NCHW model of ``row`` (explicit pads, group attribute), all graph
    optimisations on, input and a preallocated output bound once (no per-call allocation)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    (top, bottom), (left, right) = row.pads
    oh, ow = row.out_hw
    node = helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[row.kernel, row.kernel],
                            strides=[row.stride, row.stride], pads=[top, left, bottom, right],
                            dilations=[1, 1], group=row.groups)
    graph = helper.make_graph(
        [node], row.name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, row.C_in, row.H, row.W])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, row.C_out, oh, ow])],
        [numpy_helper.from_array(np.ascontiguousarray(w.transpose(3, 2, 0, 1)), "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # what every supported onnxruntime reads
    onnx.checker.check_model(model)

    session = ort_session(model.SerializeToString(), threads)
    x_nchw = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    y = np.empty((1, row.C_out, oh, ow), dtype=np.float32)
    binding = session.io_binding()
    binding.bind_cpu_input("x", x_nchw)
    binding.bind_output("y", "cpu", 0, np.float32, list(y.shape), y.ctypes.data)
    return Engine("onnxruntime", lambda: session.run_with_iobinding(binding),
                  lambda: y.transpose(0, 2, 3, 1), {"intra_op_threads": threads})


def torch_engine(row: ConvLayer, x: np.ndarray, w: np.ndarray, threads: int) -> Engine:
    """``torch.nn.functional.conv2d`` on NCHW tensors with ``torch.set_num_threads(threads)``.

    torch takes symmetric pads only: TensorFlow-"same" pads that are not (stride 2 on an even size) are
    applied to the input once, outside the timed call, which if anything favours torch.
    """
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    (top, bottom), (left, right) = row.pads
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    wt = torch.from_numpy(np.ascontiguousarray(w.transpose(3, 2, 0, 1)))
    if (top, left) == (bottom, right):
        padding = (top, left)
    else:
        xt = F.pad(xt, (left, right, top, bottom)).contiguous()
        padding = (0, 0)
    result: List[torch.Tensor] = []

    def call():
        result[:] = [F.conv2d(xt, wt, None, row.stride, padding, 1, row.groups)]

    return Engine("torch", call, lambda: result[0].numpy().transpose(0, 2, 3, 1),
                  {"torch_threads": torch.get_num_threads()})


PEER_BUILDERS = {"numpy": numpy_engine, "onnxruntime": onnxruntime_engine, "torch": torch_engine}


def available_peers(requested: Sequence[str]) -> Dict[str, str]:
    """Which requested peers can run here: name -> version, or name -> "missing: <why>"."""
    modules = {"numpy": ("numpy", "threadpoolctl"), "onnxruntime": ("onnxruntime", "onnx"), "torch": ("torch",)}
    found = {}
    for name in requested:
        try:
            versions = [__import__(m).__version__ for m in modules[name]]
        except ImportError as exc:
            found[name] = f"missing: {exc}"
        else:
            found[name] = versions[0]
    return found


def _step(engine: Engine, warmup: int, calls: int, times: Dict[str, List[float]],
          waits: Dict[str, List[float]]) -> None:
    waits[engine.name].append(settle())
    for _ in range(warmup):
        engine.call()
    for _ in range(calls):
        start = time.perf_counter()
        engine.call()
        times[engine.name].append(time.perf_counter() - start)


def check_agreement(main: Engine, peers: Sequence[Engine], rtol: float = AGREEMENT_RTOL) -> None:
    """Run every engine once; fail unless each comparable peer's result matches pyconv's within ``rtol``
    (max |diff| over max |pyconv|): timing engines that compute different things would mean nothing."""
    main.call()
    ref = np.array(main.result(), copy=True)
    scale = float(np.abs(ref).max()) or 1.0
    for peer in peers:
        if peer.result is None:
            continue
        peer.call()
        got = peer.result()
        if got.shape != ref.shape:
            raise AssertionError(f"{peer.name} output {got.shape} != {main.name} output {ref.shape}")
        err = float(np.abs(got - ref).max()) / scale
        if not err <= rtol:
            raise AssertionError(f"{peer.name} and {main.name} disagree: max |diff| / max |{main.name}| = "
                                 f"{err:.2e} > {rtol:.0e}; refusing to time different results")


def rounds_for(round_s: float, seconds: float, min_rounds: int) -> int:
    """How many rounds of ``round_s`` fit in ``seconds``: at least ``min_rounds``, at most MAX_ROUNDS."""
    return max(min_rounds, min(MAX_ROUNDS, int(seconds / max(round_s, 1e-9))))


@contextmanager
def gc_paused():
    """No garbage collection inside: one landing in an engine's timed call would be charged to it alone."""
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def alternate(benchmark, main: Engine, peers: Sequence[Engine], seconds: float, min_rounds: int,
              warmup: int = 1, calls: int = CALLS_PER_STEP) -> Optional[Dict[str, object]]:
    """Time ``main`` (as pytest-benchmark's rounds) and ``peers`` in alternating settled steps.

    A step: settle, ``warmup`` untimed calls, ``calls`` timed calls (several per settle: settling is
    what a round costs, and a lone sample is easily hit by another process). The number of rounds (one
    step of every engine) is what fits in ``seconds``, at least ``min_rounds``, from one calibration
    round. Returns the per-engine statistics for extra_info, or None under --benchmark-disable.
    """
    engines = [*peers, main]
    times: Dict[str, List[float]] = {e.name: [] for e in engines}
    waits: Dict[str, List[float]] = {e.name: [] for e in engines}
    with gc_paused():
        calibration_start = time.perf_counter()
        for engine in engines:
            _step(engine, warmup, calls, times, waits)
        rounds = rounds_for(time.perf_counter() - calibration_start, seconds, min_rounds)
        for engine in engines:
            times[engine.name].clear()
            waits[engine.name].clear()
        order = list(peers)
        timed_calls = [0]

        def before_each_call():
            # pyconv's step is spread over pytest-benchmark's rounds: the peers, its settle and warm-up
            # run before the first of its ``calls`` timed calls; the others follow back to back.
            if timed_calls[0] % calls == 0:
                for peer in order:
                    _step(peer, warmup, calls, times, waits)
                if order:
                    order.append(order.pop(0))
                waits[main.name].append(settle())
                for _ in range(warmup):
                    main.call()
            timed_calls[0] += 1

        benchmark.pedantic(main.call, setup=before_each_call, rounds=rounds * calls, warmup_rounds=0,
                           iterations=1)
    if benchmark.stats is None:
        return None
    times[main.name] = list(benchmark.stats.stats.data)
    return {**summarise(times, waits, main.name, rounds), "calls_per_step": calls}


def summarise(times: Dict[str, List[float]], waits: Dict[str, List[float]], main: str,
              rounds: int) -> Dict[str, object]:
    """The extra_info timing fields shared by every benchmark: per-engine median and min seconds,
    pyconv's speed relative to each peer (peer median / pyconv median), median settle wait."""
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    return {
        "rounds": rounds,
        "median_s": medians,
        "min_s": {name: min(ts) for name, ts in times.items()},
        "pyconv_over_peer": {name: t / medians[main] for name, t in medians.items() if name != main},
        "settle_ms": {name: 1e3 * statistics.median(ws) for name, ws in waits.items() if ws},
        "loadavg_1m": os.getloadavg()[0],
    }


def run_case(benchmark, *, module: str, row: ConvLayer, threads: int, main: Engine, peers: Sequence[Engine],
             seconds: float, min_rounds: int) -> None:
    """Check agreement, :func:`alternate`, and fill the benchmark's extra_info for one layer case."""
    check_agreement(main, peers)
    timing = alternate(benchmark, main, peers, seconds, min_rounds)
    if timing is None:  # --benchmark-disable: the case ran once, nothing was timed
        return
    medians = timing["median_s"]
    macs = {e.name: e.info.get("macs", row.macs) for e in [*peers, main]}
    oh, ow = row.out_hw
    info = benchmark.extra_info
    info.update(main.info)
    info.update(timing)
    info.update({
        "module": module,
        "network": network_of(row),
        "layer": row.name,
        "shape": {"H": row.H, "W": row.W, "C_in": row.C_in, "C_out": row.C_out, "kernel": row.kernel,
                  "stride": row.stride, "padding": row.padding, "groups": row.groups, "OH": oh, "OW": ow},
        "threads": threads,
        "macs": row.macs,
        "gflops": 2 * row.macs / medians[main.name] / 1e9,
        "gflops_by_engine": {name: 2 * macs[name] / t / 1e9 for name, t in medians.items()},
        "peer_info": {p.name: p.info for p in peers},
    })


@dataclass(frozen=True)
class Case:
    """One benchmark case but for the thread count: a layer run by one pyconv operator and strategy.

    ``label`` starts the benchmark id (``<label>-<layer tag>-t<threads>``): the module's strategy name.
    """

    module: str
    label: str
    row: ConvLayer
    operator: str
    strategy: str = "auto"

    @property
    def id(self) -> str:
        return f"{self.label}-{self.row.tag}"


def measure(benchmark, case: Case, threads: int, peer_names: Sequence[str], seconds: float,
            min_rounds: int, extra: Sequence[Engine] = ()) -> None:
    """Build pyconv's engine and the peers for ``case`` on shared data, then :func:`run_case` them with
    numpy's BLAS pinned to ``threads``. ``extra`` engines (built by the caller) run as further peers."""
    import pytest

    x, w = layer_data(case.row)
    try:
        main = pyconv_engine(case.row, x, w, threads, case.operator, case.strategy)
    except ValueError as exc:
        if case.strategy == "auto":
            raise
        pytest.skip(f"strategy {case.strategy!r} does not apply to {case.row.tag}: {exc}")
    peers = [PEER_BUILDERS[name](case.row, x, w, threads) for name in peer_names] + list(extra)
    benchmark.group = f"{case.label} t{threads}"
    with blas_limits(threads) as blas_threads:
        run_case(benchmark, module=case.module, row=case.row, threads=threads, main=main, peers=peers,
                 seconds=seconds, min_rounds=min_rounds)
    benchmark.extra_info["blas_threads"] = blas_threads


@contextmanager
def blas_limits(threads: int):
    """Pin numpy's BLAS pools to ``threads``; yields the thread counts they then report (None: unknown)."""
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:
        yield None
        return
    with threadpool_limits(limits=threads, user_api="blas"):
        yield [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
