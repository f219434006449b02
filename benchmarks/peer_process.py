"""Peer engines that must run in a process of their own, because an environment variable read when
their library loads decides which kernels they use (numpy's OpenBLAS held to its AVX2 kernel by
``OPENBLAS_CORETYPE=Haswell``, OpenVINO's oneDNN held to AVX2 by ``ONEDNN_MAX_CPU_ISA=AVX2``).

The benchmark process starts one child per environment (:func:`process_for`) and keeps it for the
session. The child builds engines on request and times their steps itself, so a step's timings carry no
pipe round trip; the parent's :func:`harness.settle` also watches the child's threads, so a child's
spinning pool delays the next step exactly as an in-process pool would. Messages are pickled
``(command, *args)`` tuples over the child's stdin/stdout; the child's own stdout goes to stderr, so a
library printing cannot corrupt the protocol.

Run as a script, this file is the child.
"""
from __future__ import annotations

import atexit
import gc
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

HERE = Path(__file__).resolve().parent


class PeerProcessError(RuntimeError):
    """The child could not build or run an engine (its message says why)."""


class PeerProcess:
    """The parent's handle on one child process started with ``env`` added to this environment."""

    def __init__(self, env: Dict[str, str]):
        self.env = dict(env)
        self._proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve())], cwd=str(HERE),
                                      env={**os.environ, **self.env}, stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE)

    @property
    def alive(self) -> bool:
        return self._proc.poll() is None

    def request(self, *message):
        if self._proc.poll() is not None:
            raise PeerProcessError(f"peer process {self.env} exited with code {self._proc.returncode}")
        pickle.dump(message, self._proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
        self._proc.stdin.flush()
        try:
            status, payload = pickle.load(self._proc.stdout)
        except EOFError:
            raise PeerProcessError(f"peer process {self.env} died during {message[0]!r}") from None
        if status != "ok":
            raise PeerProcessError(f"peer process {self.env}: {payload}")
        return payload

    def build(self, kind: str, **kwargs):
        """Build ``BUILDERS[kind](**kwargs)`` in the child: returns (handle, info)."""
        return self.request("build", kind, kwargs)

    def drop(self, handle: int) -> None:
        if self.alive:
            self.request("drop", handle)

    def close(self) -> None:
        if self.alive:
            self._proc.stdin.close()
            self._proc.wait(timeout=30)


_processes: Dict[tuple, PeerProcess] = {}


def process_for(env: Dict[str, str]) -> PeerProcess:
    """The session's child for ``env`` (started on first use, closed at exit)."""
    key = tuple(sorted(env.items()))
    proc = _processes.get(key)
    if proc is None or not proc.alive:
        proc = _processes[key] = PeerProcess(env)
    return proc


def child_pids() -> List[int]:
    """The running children, whose threads :func:`harness.settle` waits for as for its own."""
    return [proc._proc.pid for proc in _processes.values() if proc.alive]


@atexit.register
def _close_all() -> None:
    for proc in _processes.values():
        proc.close()


# ----------------------------------------------------------------------------------------------- child

def time_calls(call: Callable[[], object], warmup: int, calls: int) -> List[float]:
    """``warmup`` untimed calls of ``call``, then ``calls`` timed ones: their seconds."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


class _Child:
    """One engine in the child: ``call`` runs it once, ``result`` returns its last result."""

    def __init__(self, call: Callable[[], object], result: Callable[[], object]):
        self.call, self.result = call, result

    def step(self, warmup: int, calls: int) -> List[float]:
        return time_calls(self.call, warmup, calls)


def _build_matmul(a, b, threads: int):
    """numpy's matmul of ``a`` by ``b`` into a preallocated output, BLAS pinned to ``threads``; the info
    names the BLAS kernel actually loaded (threadpoolctl's ``architecture``)."""
    import numpy as np
    from threadpoolctl import threadpool_info, threadpool_limits

    threadpool_limits(limits=threads, user_api="blas")
    c = np.empty((a.shape[0], b.shape[1]), dtype=np.float32)
    blas = [lib for lib in threadpool_info() if lib["user_api"] == "blas"]
    info = {"gemm_mkn": [a.shape[0], a.shape[1], b.shape[1]], "blas_threads": [lib["num_threads"] for lib in blas],
            "blas": [f"{lib['internal_api']} {lib['version']} {lib.get('architecture', '?')}" for lib in blas]}
    return _Child(lambda: np.matmul(a, b, out=c), lambda: c), info


def _build_openvino(path: str, inputs: dict, threads: int):
    import harness

    call, result, info = harness.openvino_model(path, inputs, threads)
    return _Child(call, result), info


BUILDERS = {"matmul": _build_matmul, "openvino": _build_openvino}


def _serve(inp, out) -> None:
    engines: Dict[int, _Child] = {}
    next_handle = 0
    while True:
        try:
            command, *args = pickle.load(inp)
        except EOFError:
            return
        try:
            if command == "build":
                kind, kwargs = args
                engine, info = BUILDERS[kind](**kwargs)
                engines[next_handle] = engine
                reply = (next_handle, info)
                next_handle += 1
            elif command == "call":
                engines[args[0]].call()
                reply = None
            elif command == "result":
                reply = engines[args[0]].result()
            elif command == "step":
                handle, warmup, calls = args
                gc.disable()  # a collection inside a timed call would be charged to this engine
                try:
                    reply = engines[handle].step(warmup, calls)
                finally:
                    gc.enable()
            elif command == "drop":
                engines.pop(args[0], None)
                reply = None
            else:
                raise ValueError(f"unknown command {command!r}")
            message = ("ok", reply)
        except Exception as exc:  # the parent raises it; the child stays up for the next case
            message = ("error", f"{type(exc).__name__}: {exc}")
        pickle.dump(message, out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()


def main() -> Optional[int]:
    protocol_out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    _serve(sys.stdin.buffer, protocol_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
