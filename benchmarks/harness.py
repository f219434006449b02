"""The engines a benchmark compares, and the alternating, settled measurement that times them.

A kernel *case* is one layer-table row run by one pyconv operator/strategy at one thread count. Every
engine of the case (pyconv, then the peers: numpy matmul at the GEMM shape, ONNX Runtime, PyTorch,
OpenVINO on the same one-Conv ONNX model as ONNX Runtime, TFLite's XNNPACK on the TFLite conversion of
the layer's Keras twin) works on the same input and weights, each in its native layout, with the same
thread count, and must agree with pyconv's result before anything is timed. A case runs at one
instruction-set level of pyconv (``pyconv.isa.use``); beside the peers it can time pyconv at a reference
level in the same rounds (engine ``pyconv_<level>``), and at the AVX2 level the peers held to AVX2
(numpy's OpenBLAS with its Haswell kernel, OpenVINO with oneDNN capped at AVX2), which run in child
processes (peer_process.py).

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
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable, ContextManager, Dict, List, Optional, Sequence

import numpy as np

import peer_process
from layer_tables import ConvLayer, network_of

HERE = Path(__file__).resolve().parent
PEER_NAMES = ("numpy", "numpy_avx2", "onnxruntime", "torch", "openvino", "openvino_avx2", "xnnpack")
# Peers held to an instruction set by an environment variable their library reads when it loads: each
# runs in a child process started with that variable, and only in the rows of pyconv's matching level.
HELD_PEERS = {"numpy_avx2": ("avx2", {"OPENBLAS_CORETYPE": "Haswell"}),
              "openvino_avx2": ("avx2", {"ONEDNN_MAX_CPU_ISA": "AVX2"})}
SETTLE_POLL_S = 0.001
SETTLE_CAP_S = 1.0
MAX_ROUNDS = 200
CALLS_PER_STEP = 3
AGREEMENT_RTOL = 2e-3  # max |peer - pyconv| over max |pyconv|; Winograd's rounding stays well inside


def _runnable(pid: str, skip: int = -1) -> int:
    """How many threads of process ``pid`` ("self" or a number), other than ``skip``, are running or
    runnable; raises OSError without /proc."""
    running = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        if int(tid) == skip:
            continue
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                stat = f.read()
        except OSError:  # the thread exited meanwhile
            continue
        running += stat[stat.rindex(")") + 2] == "R"
    return running


def _others_runnable() -> Optional[int]:
    """How many threads of this process other than the caller, and of its peer processes, are running or
    runnable (None: unknown)."""
    try:
        running = _runnable("self", threading.get_native_id())
    except OSError:
        return None
    for pid in peer_process.child_pids():
        try:
            running += _runnable(str(pid))
        except OSError:  # the child exited; its engines will say so
            pass
    return running


def settle() -> float:
    """Wait until every worker pool of the process and of its peer processes has stopped spinning;
    returns the seconds waited.

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
    ``step(warmup, calls)``, when set, runs a whole step elsewhere and returns the timed calls' seconds
    (an engine in a peer process times itself: a pipe round trip is no part of its call). ``scope`` is
    entered around each of the engine's steps and checks (pyconv at another level than the case's).
    """

    name: str
    call: Callable[[], object]
    result: Optional[Callable[[], np.ndarray]]
    info: Dict[str, object]
    step: Optional[Callable[[int, int], List[float]]] = None
    scope: Callable[[], ContextManager] = field(default=nullcontext)


def at_level(level: Optional[str]) -> ContextManager:
    """pyconv's kernels on ``level`` inside the block (None: leave the level alone)."""
    if level is None:
        return nullcontext()
    import pyconv.isa

    return pyconv.isa.use(level)


def layer_data(row: ConvLayer, seed: int = 0):
    """Input (1, H, W, C_in) and HWIO weights (k, k, C_in / groups, C_out), unit-variance outputs."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, row.H, row.W, row.C_in), dtype=np.float32)
    fan_in = row.kernel * row.kernel * (row.C_in // row.groups)
    w = rng.standard_normal((row.kernel, row.kernel, row.C_in // row.groups, row.C_out), dtype=np.float32)
    return x, w * np.float32(1.0 / np.sqrt(fan_in))


def pyconv_engine(row: ConvLayer, x: np.ndarray, w: np.ndarray, threads: int, operator: str,
                  strategy: str = "auto", name: str = "pyconv") -> Engine:
    """pyconv's prepared operator for ``row``, bound to its input and output (``op.bind``) as ONNX Runtime
    is to its I/O binding: ``operator`` is conv2d, pointwise or depthwise."""
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
    bound = op.bind(x)
    return Engine(name, lambda: bound(threads), lambda: bound.out,
                  {"operator": operator, "strategy": choice.strategy if choice else operator,
                   "strategy_requested": strategy, "strategy_reason": choice.reason if choice else ""})


def _gemm_operands(row: ConvLayer, x: np.ndarray, w: np.ndarray):
    if not row.is_pointwise:
        raise ValueError(f"{row.name}: numpy matmul is a peer of 1x1 convolutions only")
    a = np.ascontiguousarray(x[0, ::row.stride, ::row.stride]).reshape(-1, row.C_in)
    return a, np.ascontiguousarray(w[0, 0])


def numpy_engine(row: ConvLayer, x: np.ndarray, w: np.ndarray, threads: int) -> Engine:
    """numpy matmul at the layer's GEMM shape: M = OH * OW, K = C_in, N = C_out (1x1 layers only).

    A strided 1x1 layer is timed on its already subsampled input: the peer gets the GEMM alone.
    BLAS threads are pinned by the caller (:func:`measure`) for the whole case.
    """
    a, b = _gemm_operands(row, x, w)
    c = np.empty((a.shape[0], row.C_out), dtype=np.float32)
    oh, ow = row.out_hw
    return Engine("numpy", lambda: np.matmul(a, b, out=c), lambda: c.reshape(1, oh, ow, row.C_out),
                  {"gemm_mkn": [a.shape[0], row.C_in, row.C_out], "blas": blas_kernels()})


def blas_kernels() -> List[str]:
    """numpy's BLAS libraries in this process as "<api> <version> <kernel>" (threadpoolctl's view)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return [f"{lib['internal_api']} {lib['version']} {lib.get('architecture', '?')}"
            for lib in threadpool_info() if lib["user_api"] == "blas"]


def remote_engine(name: str, kind: str, post: Callable = lambda r: r, **kwargs) -> Engine:
    """Engine ``name`` (a key of HELD_PEERS) built in its peer process by ``peer_process.BUILDERS[kind]``;
    ``post`` turns the child's result into pyconv's layout. The child drops its engine when this one is
    collected."""
    import weakref

    proc = peer_process.process_for(HELD_PEERS[name][1])
    handle, info = proc.build(kind, **kwargs)
    engine = Engine(name, lambda: proc.request("call", handle), lambda: post(proc.request("result", handle)),
                    {**info, "env": proc.env},
                    step=lambda warmup, calls: proc.request("step", handle, warmup, calls))
    weakref.finalize(engine, proc.drop, handle)
    return engine


def numpy_avx2_engine(row: ConvLayer, x: np.ndarray, w: np.ndarray, threads: int) -> Engine:
    """:func:`numpy_engine` in a process whose OpenBLAS was loaded with OPENBLAS_CORETYPE=Haswell (its
    AVX2 kernel), BLAS pinned to ``threads`` there; fails unless OpenBLAS reports the Haswell kernel."""
    a, b = _gemm_operands(row, x, w)
    oh, ow = row.out_hw
    engine = remote_engine("numpy_avx2", "matmul", lambda c: c.reshape(1, oh, ow, row.C_out),
                           a=a, b=b, threads=threads)
    if not engine.info["blas"] or not all(k.endswith(" Haswell") for k in engine.info["blas"]):
        raise RuntimeError(f"numpy_avx2: OPENBLAS_CORETYPE=Haswell did not hold: {engine.info['blas']}")
    return engine


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


def conv_onnx_model(row: ConvLayer, w: np.ndarray) -> bytes:
    """A one-Conv NCHW ONNX model of ``row`` (explicit pads, group attribute), serialized."""
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
    return model.SerializeToString()


def onnxruntime_engine(row: ConvLayer, x: np.ndarray, w: np.ndarray, threads: int) -> Engine:
    """ONNX Runtime on :func:`conv_onnx_model`, all graph optimisations on, input and a preallocated
    output bound once (no per-call allocation)."""
    session = ort_session(conv_onnx_model(row, w), threads)
    oh, ow = row.out_hw
    x_nchw = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    y = np.empty((1, row.C_out, oh, ow), dtype=np.float32)
    binding = session.io_binding()
    binding.bind_cpu_input("x", x_nchw)
    binding.bind_output("y", "cpu", 0, np.float32, list(y.shape), y.ctypes.data)
    return Engine("onnxruntime", lambda: session.run_with_iobinding(binding),
                  lambda: y.transpose(0, 2, 3, 1), {"intra_op_threads": threads})


def _openvino_layer_engine(build: Callable, row: ConvLayer, x: np.ndarray, w: np.ndarray,
                           threads: int) -> Engine:
    """``build(path, inputs, threads, post)`` (:func:`openvino_engine` or :func:`openvino_avx2_engine`)
    on :func:`conv_onnx_model`, written to a file the plugin reads once while compiling."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, f"{row.name}.onnx")
        with open(path, "wb") as f:
            f.write(conv_onnx_model(row, w))
        inputs = {"x": np.ascontiguousarray(x.transpose(0, 3, 1, 2))}
        return build(path, inputs, threads, lambda outputs: outputs[0].transpose(0, 2, 3, 1))


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


def openvino_model(path: str, inputs: Dict[str, np.ndarray], threads: int):
    """OpenVINO's CPU plugin on the ONNX file ``path``: ``threads`` inference threads, one stream, the
    latency hint, float32 inference (it would pick bf16 on CPUs with AVX512_BF16). Returns (call, result,
    info): ``result`` gives the outputs in model order; info names the kernels the plugin chose, counted
    over the executable graph as ``<layer type>:<primitiveType>`` (``Convolution:brgconv_avx512_f32``)."""
    import openvino as ov

    core = ov.Core()
    compiled = core.compile_model(path, "CPU", {"INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1,
                                                "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"})
    request = compiled.create_infer_request()
    outputs = len(compiled.outputs)
    kernels = Counter()
    for op in compiled.get_runtime_model().get_ordered_ops():
        rt_info = op.get_rt_info()
        kernel = rt_info["primitiveType"].astype(str) if "primitiveType" in rt_info else "unknown"
        if not kernel.startswith("unknown"):
            kernels[f"{rt_info['layerType'].astype(str)}:{kernel}"] += 1
    info = {"inference_threads": compiled.get_property("INFERENCE_NUM_THREADS"), "openvino": ov.__version__,
            "kernels": dict(kernels.most_common())}
    return (lambda: request.infer(inputs),
            lambda: [np.array(request.get_output_tensor(i).data) for i in range(outputs)], info)


def openvino_engine(path: str, inputs: Dict[str, np.ndarray], threads: int, post: Callable) -> Engine:
    """OpenVINO in this process (oneDNN at the best ISA of this CPU); ``post`` maps its list of outputs
    into pyconv's layout."""
    call, result, info = openvino_model(path, inputs, threads)
    return Engine("openvino", call, lambda: post(result()), info)


def openvino_avx2_engine(path: str, inputs: Dict[str, np.ndarray], threads: int, post: Callable) -> Engine:
    """:func:`openvino_engine` in a process started with ONEDNN_MAX_CPU_ISA=AVX2.

    The cap holds oneDNN's kernels, the convolutions among them; a few of the plugin's own kernels do
    not read it (OpenVINO 2026.4 on Zen 4: Reduce as ``jit_avx512_f32``; FullyConnected through MLAS,
    which picks its ISA itself). Those are listed in ``info["not_held"]``; a convolution among them fails
    the case, since the comparison would then be with AVX-512 after all.
    """
    engine = remote_engine("openvino_avx2", "openvino", post, path=path, inputs=inputs, threads=threads)
    not_held = [k for k in engine.info["kernels"] if any(m in k for m in ("avx512", "amx", "mlas"))]
    engine.info["not_held"] = not_held
    if any("Convolution" in k for k in not_held):
        raise RuntimeError(f"openvino_avx2: ONEDNN_MAX_CPU_ISA=AVX2 did not hold the convolutions: {not_held}")
    return engine


def _installed(*distributions: str) -> Optional[str]:
    """The version of the first of ``distributions`` installed (read from its metadata, not imported)."""
    from importlib import metadata

    for name in distributions:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


TENSORFLOW_DISTRIBUTIONS = ("tensorflow", "tensorflow-cpu")
TFLITE_CACHE = Path(tempfile.gettempdir()) / "pyconv-bench-tflite"


def keras_twin_tflite(row: ConvLayer, w: np.ndarray) -> bytes:
    """The float32 TFLite model of ``row``'s Keras twin with HWIO weights ``w`` (:func:`convert_keras_twin`).

    TensorFlow is imported only in a child process that converts and exits: its thread pools and its
    half a gigabyte never share the process that times the engines. Each conversion is cached in
    TFLITE_CACHE under the row, a digest of the weights and the TensorFlow version.
    """
    version = _installed(*TENSORFLOW_DISTRIBUTIONS)
    if version is None:
        raise RuntimeError(f"{row.name}: converting to TFLite needs tensorflow (pip install tensorflow-cpu)")
    digest = hashlib.sha1(repr(row).encode() + w.tobytes() + version.encode()).hexdigest()[:16]
    path = TFLITE_CACHE / f"{row.tag}-{digest}.tflite"
    if not path.exists():
        TFLITE_CACHE.mkdir(exist_ok=True)
        with tempfile.TemporaryDirectory(dir=TFLITE_CACHE) as work:
            weights, model = os.path.join(work, "w.npy"), os.path.join(work, "model.tflite")
            np.save(weights, w)
            done = subprocess.run(
                [sys.executable, "-c", "import sys, harness; harness.convert_keras_twin(*sys.argv[1:])",
                 json.dumps(asdict(row)), weights, model],
                cwd=str(HERE), env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"{row.name}: converting the Keras twin to TFLite failed: "
                                   f"{done.stderr.strip()[-2000:]}")
            os.replace(model, path)  # whole or absent: a run beside this one never reads half a model
    return path.read_bytes()


def convert_keras_twin(row_json: str, weights_path: str, out_path: str) -> None:
    """Write the TFLite model of one layer's Keras twin (run in a child by :func:`keras_twin_tflite`).

    The twin is what a Keras model of the layer holds: ``Conv2D(groups=G)``, or ``DepthwiseConv2D`` for
    a depthwise row (TFLite's DEPTHWISE_CONV_2D, as a converted network has it), the row's stride and
    padding, no bias (the converter adds a zero one), the weights as given. Converted by
    ``TFLiteConverter.from_keras_model`` with its defaults: float32, no optimisations.
    """
    import keras
    import tensorflow as tf

    row = ConvLayer(**json.loads(row_json))
    w = np.load(weights_path)
    inputs = keras.Input((row.H, row.W, row.C_in), batch_size=1, dtype="float32")
    if row.is_depthwise:
        layer = keras.layers.DepthwiseConv2D(kernel_size=row.kernel, strides=row.stride, padding=row.padding,
                                             use_bias=False)
        weights = w.reshape(row.kernel, row.kernel, row.C_in, 1)  # HWIO (k, k, 1, C) -> (k, k, C, 1)
    else:
        layer = keras.layers.Conv2D(row.C_out, kernel_size=row.kernel, strides=row.stride, padding=row.padding,
                                    groups=row.groups, use_bias=False)
        weights = w
    model = keras.Model(inputs, layer(inputs))
    layer.set_weights([weights])
    with open(out_path, "wb") as f:
        f.write(tf.lite.TFLiteConverter.from_keras_model(model).convert())


def xnnpack_engine(row: ConvLayer, x: np.ndarray, w: np.ndarray, threads: int) -> Engine:
    """TFLite's interpreter (``ai_edge_litert``) on :func:`keras_twin_tflite`, ``threads`` threads, with
    its default delegate, XNNPACK, which takes every float32 convolution.

    The input is set once and only ``invoke()`` is timed: ``set_tensor``/``get_tensor`` copy, as
    ONNX Runtime is timed on an I/O binding and pyconv bound. Fails unless the model's output comes
    from a DELEGATE node (the convolution ran in XNNPACK, not in TFLite's own kernel). XNNPACK picks
    its instruction set itself: in the avx2 rows it still runs its best one on this CPU.
    """
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=keras_twin_tflite(row, w), num_threads=threads)
    interpreter.allocate_tensors()
    (given,), (wanted,) = interpreter.get_input_details(), interpreter.get_output_details()
    nodes = interpreter._get_ops_details()  # the only view of the delegation the API offers
    delegated = [n for n in nodes if n["op_name"] == "DELEGATE"]
    if not any(wanted["index"] in n["outputs"] for n in delegated):
        raise RuntimeError(f"xnnpack: XNNPACK did not take {row.name}: nodes {[n['op_name'] for n in nodes]}")
    interpreter.set_tensor(given["index"], x)
    ops = Counter(f"XNNPACK:{n['op_name']}" for n in nodes if n["op_name"] != "DELEGATE")
    return Engine("xnnpack", interpreter.invoke, lambda: interpreter.get_tensor(wanted["index"]),
                  {"num_threads": threads, "ai_edge_litert": _installed("ai-edge-litert"), "kernels": dict(ops)})


PEER_BUILDERS = {"numpy": numpy_engine, "numpy_avx2": numpy_avx2_engine, "onnxruntime": onnxruntime_engine,
                 "torch": torch_engine,
                 "openvino": lambda *args: _openvino_layer_engine(openvino_engine, *args),
                 "openvino_avx2": lambda *args: _openvino_layer_engine(openvino_avx2_engine, *args),
                 "xnnpack": xnnpack_engine}


def runs_at(peer: str, level: Optional[str]) -> bool:
    """Whether ``peer`` belongs in a row at pyconv's ``level``: held peers only at their own level."""
    return peer not in HELD_PEERS or HELD_PEERS[peer][0] == level


@lru_cache(maxsize=None)
def _peer_version(name: str) -> str:
    if name == "xnnpack":  # read from metadata: importing tensorflow here would cost seconds and memory
        litert, tensorflow = _installed("ai-edge-litert"), _installed(*TENSORFLOW_DISTRIBUTIONS)
        if litert is None or tensorflow is None:
            return "missing: needs ai-edge-litert and tensorflow (pip install tensorflow-cpu ai-edge-litert)"
        return f"ai-edge-litert {litert} (XNNPACK delegate; models converted by tensorflow {tensorflow})"
    modules = {"numpy": ("numpy", "threadpoolctl"), "numpy_avx2": ("numpy", "threadpoolctl"),
               "onnxruntime": ("onnxruntime", "onnx"), "torch": ("torch",),
               "openvino": ("openvino",), "openvino_avx2": ("openvino",)}[name]
    try:
        version = [__import__(m).__version__ for m in modules][0]
    except ImportError as exc:
        return f"missing: {exc}"
    if name == "numpy":
        return f"{version} ({', '.join(blas_kernels())} kernel)"
    if name == "numpy_avx2":  # what the held process really loads, checked on a tiny product
        try:
            kernels = remote_engine(name, "matmul", a=np.ones((4, 4), np.float32), b=np.ones((4, 4), np.float32),
                                    threads=1).info["blas"]
        except peer_process.PeerProcessError as exc:
            return f"missing: {exc}"
        if not kernels or not all(k.endswith(" Haswell") for k in kernels):
            return f"missing: OPENBLAS_CORETYPE=Haswell gave {kernels}"
        return f"{version} ({', '.join(kernels)} kernel, OPENBLAS_CORETYPE=Haswell)"
    if name == "openvino_avx2":
        return f"{version} (ONEDNN_MAX_CPU_ISA=AVX2)"
    return version


def available_peers(requested: Sequence[str]) -> Dict[str, str]:
    """Which requested peers can run here: name -> version (for numpy, the BLAS kernel it loaded), or
    name -> "missing: <why>"."""
    return {name: _peer_version(name) for name in requested}


def timed_calls(engine: Engine, warmup: int, calls: int) -> List[float]:
    """``warmup`` untimed calls of ``engine``, then ``calls`` timed ones: their seconds."""
    with engine.scope():
        if engine.step is not None:
            return engine.step(warmup, calls)
        return peer_process.time_calls(engine.call, warmup, calls)


def _step(engine: Engine, warmup: int, calls: int, times: Dict[str, List[float]],
          waits: Dict[str, List[float]]) -> None:
    waits[engine.name].append(settle())
    times[engine.name] += timed_calls(engine, warmup, calls)


def check_agreement(main: Engine, peers: Sequence[Engine], rtol: float = AGREEMENT_RTOL) -> None:
    """Run every engine once; fail unless each comparable peer's result matches pyconv's within ``rtol``
    (max |diff| over max |pyconv|): timing engines that compute different things would mean nothing."""
    main.call()
    ref = np.array(main.result(), copy=True)
    scale = float(np.abs(ref).max()) or 1.0
    for peer in peers:
        if peer.result is None:
            continue
        with peer.scope():
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
            min_rounds: int, extra: Sequence[Engine] = (), level: Optional[str] = None,
            reference: Optional[str] = None) -> None:
    """Build pyconv's engine at ``level`` and the peers for ``case`` on shared data, then :func:`run_case`
    them with numpy's BLAS pinned to ``threads``, pyconv's kernels on ``level`` throughout. ``extra``
    engines (built by the caller) run as further peers; a ``reference`` level other than ``level`` adds
    pyconv at that level (engine ``pyconv_<reference>``) to the same rounds."""
    import pytest

    x, w = layer_data(case.row)
    with at_level(level):
        try:
            main = pyconv_engine(case.row, x, w, threads, case.operator, case.strategy)
        except ValueError as exc:
            if case.strategy == "auto":
                raise
            pytest.skip(f"strategy {case.strategy!r} does not apply to {case.row.tag}: {exc}")
        peers = [PEER_BUILDERS[name](case.row, x, w, threads) for name in peer_names if runs_at(name, level)]
        if reference is not None and reference != level:
            peers.insert(0, reference_engine(lambda name: pyconv_engine(case.row, x, w, threads, case.operator,
                                                                        case.strategy, name=name), reference))
        peers += list(extra)
        benchmark.group = f"{case.label} t{threads}"
        with blas_limits(threads) as blas_threads:
            run_case(benchmark, module=case.module, row=case.row, threads=threads, main=main, peers=peers,
                     seconds=seconds, min_rounds=min_rounds)
    benchmark.extra_info["blas_threads"] = blas_threads
    benchmark.extra_info.update(level_info(level, reference))


def reference_engine(build: Callable[[str], Engine], level: str) -> Engine:
    """pyconv at ``level`` as a peer of a case run at another level: ``build(name)`` makes the engine,
    which is then built and run on ``level`` (engine ``pyconv_<level>``)."""
    with at_level(level):
        engine = build(f"pyconv_{level}")
    engine.scope = lambda: at_level(level)
    return engine


def chosen_levels(text: str, scalar_by_default: bool = True) -> List[str]:
    """The levels a ``--levels`` value names, best first. Empty: every level this CPU runs, less
    ``scalar`` unless ``scalar_by_default``. Raises ValueError for a name that is no level at all; a
    level this build or CPU lacks stays in the list (its rows are skipped, see :func:`level_skip`)."""
    import pyconv.isa

    if not text.strip():
        levels = [lv for lv in pyconv.isa.supported() if scalar_by_default or lv != "scalar"]
        return levels or list(pyconv.isa.supported()[:1])
    levels = {lv.strip().lower() for lv in text.split(",") if lv.strip()}
    unknown = sorted(levels - set(pyconv.isa.LEVELS))
    if unknown:
        raise ValueError(f"--levels: {unknown} are not levels; known: {', '.join(pyconv.isa.LEVELS)}")
    return sorted(levels, key=pyconv.isa.LEVELS.index)


def level_params(items: Sequence, item_id: Callable[[object], str], thread_counts: Sequence[int],
                 levels: Sequence[str]) -> list:
    """``items`` crossed with the thread counts and levels as pytest params (item, level, threads), id
    ``<item id>-<level>-t<threads>``, a level's row next to the other levels' rows of the same item and
    thread count; rows at a level this build or CPU lacks are skipped with the reason."""
    import pytest

    params = []
    for item in items:
        for threads in thread_counts:
            for level in levels:
                why = level_skip(level)
                params.append(pytest.param(item, level, threads, id=f"{item_id(item)}-{level}-t{threads}",
                                           marks=[pytest.mark.skip(reason=why)] if why else []))
    return params


def level_skip(level: str) -> Optional[str]:
    """Why rows at ``level`` cannot run here, or None."""
    import pyconv.isa

    if level not in pyconv.isa.built():
        return f"this pyconv build holds no {level} kernels (built: {', '.join(pyconv.isa.built())})"
    if level not in pyconv.isa.supported():
        return f"this CPU cannot run {level} (it runs {', '.join(pyconv.isa.supported())})"
    return None


def reference_level(levels: Sequence[str]) -> Optional[str]:
    """The level timed beside every other level's rows: the best runnable one, when there are several."""
    runnable = [lv for lv in levels if level_skip(lv) is None]
    return runnable[0] if len(runnable) > 1 else None


def level_info(level: Optional[str], reference: Optional[str]) -> Dict[str, object]:
    """The extra_info fields naming the levels of a case: the one it ran at, the reference beside it,
    the best one this CPU runs."""
    import pyconv.isa

    return {"level": level or pyconv.isa.active(), "reference_level": reference,
            "isa_detected": pyconv.isa.detected()}


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
