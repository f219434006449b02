"""The rule every fuzzed input follows, the corpus, and a worker process for inputs that may crash.

An input is loaded (``pyconv.load`` for a config, ``pyconv.from_onnx`` for ONNX bytes) and, where it
loads, run once on its example input (and once more for the extra tensor names it declares, if any). It must either work or raise one of :data:`ALLOWED`; anything
else escaping (KeyError, IndexError, numpy's errors, RecursionError, MemoryError ...), a hang past
:data:`TIMEOUT` seconds or a crash of the interpreter is a failure.

Inputs are ``(kind, data)`` pairs: ``"config"`` (a config document, passed as a dict), ``"config-bytes"``
(the bytes of a config file, perhaps not even JSON), ``"onnx"`` (the bytes of an ONNX file) and ``"npz"``
(the bytes of a weights file, loaded with :data:`NPZ_CONFIG`). The corpus holds one file per input under
``corpus/<kind>/``, the kind named by the directory; every file there is replayed by the default run.
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing
import signal
import tempfile
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional

import pyconv
from pyconv.graph import shapes

# The exceptions a loader or a run may raise for a bad input: pyconv's own (ModelError and its
# subclasses OnnxImportError, UnknownTensorError; all ValueErrors). Nothing else.
ALLOWED: tuple[type[BaseException], ...] = (pyconv.ModelError,)

# Seconds one input may take to load and run once (the inputs are a few layers of a few pixels).
TIMEOUT = 20.0

# Fuzzed sizes must fail at validation before anything is allocated: with the limit this low, an
# input that gets past it allocates at most a few hundred MB, and one that should not shows.
FUZZ_MAX_ELEMENTS = 1 << 24

CORPUS = Path(__file__).resolve().parent / "corpus"
KINDS = {"config": ".json", "config-bytes": ".json", "onnx": ".onnx", "npz": ".npz"}

# The config an "npz" input is the weights of: a conv, a batch norm and a dense head.
NPZ_CONFIG = {"format": "pyconv-model", "version": 1, "name": "npz", "outputs": ["fc"], "layers": [
    {"name": "x", "type": "input", "shape": [4, 4, 2]},
    {"name": "conv", "type": "conv2d", "inputs": ["x"], "filters": 3, "kernel": 3, "padding": "same"},
    {"name": "bn", "type": "batch_norm", "inputs": ["conv"]},
    {"name": "flat", "type": "flatten", "inputs": ["bn"]},
    {"name": "fc", "type": "dense", "inputs": ["flat"], "units": 2}]}


class Hang(Exception):
    """An input ran past :data:`TIMEOUT` (raised by the alarm in :func:`time_limit`)."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`Hang` in the block after ``seconds`` (where Python code runs to see it; the worker
    process catches hangs in native code)."""
    def expire(signum, frame):
        raise Hang(f"no result after {seconds:g} s")
    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextmanager
def fuzz_limits() -> Iterator[None]:
    """The element limit lowered to :data:`FUZZ_MAX_ELEMENTS` in the block."""
    saved = shapes.MAX_ELEMENTS
    shapes.MAX_ELEMENTS = FUZZ_MAX_ELEMENTS
    try:
        yield
    finally:
        shapes.MAX_ELEMENTS = saved


def _load(kind: str, data: Any, folder: Path) -> pyconv.Model:
    if kind == "onnx":
        return pyconv.from_onnx(data, threads=1)
    if kind == "npz":
        path = folder / "weights.npz"
        path.write_bytes(data)
        return pyconv.load(NPZ_CONFIG, path, threads=1)
    if kind == "config":
        return pyconv.load(data, threads=1)
    path = folder / "model.json"
    path.write_bytes(data)
    return pyconv.load(path, threads=1)


def attempt(kind: str, data: Any) -> None:
    """Load the input and run it once; raises whatever either raises."""
    with tempfile.TemporaryDirectory() as folder, fuzz_limits(), time_limit(TIMEOUT):
        model = _load(kind, data, Path(folder))
        model.run(model.example_input())
        if model.spec.tensors:  # the extra names (ONNX tensors) are views computed on request only
            model.run(model.example_input(), outputs=list(model.spec.tensors))


def outcome(kind: str, data: Any) -> Optional[str]:
    """None when the input follows the rule, else what went wrong (the traceback)."""
    try:
        attempt(kind, data)
    except ALLOWED:
        return None
    except BaseException as exc:  # noqa: B902 - everything else is the finding, SystemExit included
        if isinstance(exc, KeyboardInterrupt):
            raise
        return "".join(traceback.format_exception(exc))
    return None


def check(kind: str, data: Any) -> None:
    """Assert the rule; a failing input is saved to the corpus first."""
    problem = outcome(kind, data)
    if problem is not None:
        path = save(kind, data)
        raise AssertionError(f"{kind} input saved as {path}:\n{problem}")


def to_json(doc: Any) -> bytes:
    """A config as the JSON text of a file (NaN and infinities as Python's json writes them)."""
    return json.dumps(doc).encode()


def save(kind: str, data: Any) -> Path:
    """Keep ``data`` in the corpus under a name derived from its content (a config as its JSON text)."""
    if kind == "config":
        data = to_json(data)
    folder = CORPUS / ("config" if kind == "config-bytes" else kind)
    path = folder / f"{hashlib.sha256(data).hexdigest()[:16]}{KINDS[kind]}"
    folder.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def corpus() -> list[tuple[str, Path]]:
    """Every corpus file with its kind (configs are replayed as files: they may not parse)."""
    kinds = {"config": "config-bytes", "onnx": "onnx", "npz": "npz"}
    return [(kinds[folder.name], path) for folder in sorted(CORPUS.iterdir()) if folder.name in kinds
            for path in sorted(folder.iterdir()) if path.suffix in KINDS.values()]


# --- isolation: a worker process -------------------------------------------------------------------

def _serve(conn) -> None:
    while True:
        try:
            kind, data = conn.recv()
        except EOFError:
            return
        conn.send(outcome(kind, data))


class Worker:
    """A process that checks inputs one at a time, so that a crash or a hang in native code is
    reported (and the process replaced) instead of taking the test run down."""

    def __init__(self, timeout: float = 2 * TIMEOUT) -> None:
        self.timeout = timeout
        self._context = multiprocessing.get_context("spawn")  # never fork a process running OpenMP threads
        self._start()

    def _start(self) -> None:
        self._conn, child = self._context.Pipe()
        self._process = self._context.Process(target=_serve, args=(child,), daemon=True)
        self._process.start()
        child.close()

    def check(self, kind: str, data: Any) -> Optional[str]:
        """What went wrong with the input (see :func:`outcome`), a crash or a hang included."""
        try:
            self._conn.send((kind, data))
            if self._conn.poll(self.timeout):
                return self._conn.recv()
            problem = f"no answer after {self.timeout:g} s (a hang in native code)"
        except (EOFError, OSError):  # the pipe closed: the process died
            self._process.join(5)
            problem = f"the interpreter crashed (exit code {self._process.exitcode})"
        self._process.kill()
        self._process.join()
        self._start()
        return problem

    def close(self) -> None:
        self._conn.close()
        self._process.join(5)
        if self._process.is_alive():
            self._process.kill()
