"""The same job on a Ray cluster (``pip install 'pyconv[ray]'``): a Ray Data pipeline over a pool of
pyconv actors.

The dataset holds one record per batch -- the batch's index and its paths, cut exactly as the local
pipeline cuts them -- and ``map_batches`` hands each record to an actor of the pool (:class:`_Actor`, a
callable class: each loads the model once, from the config document and weights the driver put in the
object store, so the model files need not exist on the workers). The actor reads the batch's images
(local paths, or URIs through fsspec: ``s3://...`` is read by the worker that runs the batch), decodes
them on its own threads, runs the model with ``threads`` threads and returns one record per image. An
actor takes two batches at a time, so that it decodes one while it runs the other. The driver streams
the records back in dataset order (``preserve_order``) and yields them per batch, so the writers and the
progress bar work as in a local run. Batches being the same and pyconv's results depending only on the
batch they ran in, the output equals the local run's row for row.

Local paths must be readable at the same path on every node that runs an actor (a shared file system,
or the same copy on each node); URIs of an object store need no such care.
"""
from __future__ import annotations

import inspect
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator, Optional, Sequence

import numpy as np

from ..graph import Model
from .engine import BatchPredictor, Settings, load_payload, model_payload
from .rows import Result, Row, Skipped

__all__ = ["run_ray", "connect"]

_MAX_BLOCKS = 512


def _ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise ImportError("--ray needs Ray Data: pip install 'pyconv[ray]' (or pip install 'ray[data]')") from None
    return ray


def connect(address: Optional[str] = None) -> None:
    """Join the Ray cluster at ``address`` ("auto": the one this machine runs, an error when none does;
    ``ray://host:10001``: a remote one); None: that one if it runs, else a local instance started for this
    process. Nothing when already connected."""
    ray = _ray()
    if not ray.is_initialized():
        ray.init(address=address, logging_level="ERROR", log_to_driver=False)


class _Actor:
    """One pyconv model per actor; called on a batch of batch records, returns a record per image."""

    def __init__(self, payload: Any, settings: Settings, threads: int, workers: int) -> None:
        model = load_payload(payload, threads=threads)
        self.predictor = BatchPredictor(model, settings, threads=threads)
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pyconv-decode")

    def __call__(self, records: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out_index, out_path, out_result = [], [], []
        for index, paths in zip(records["index"], records["paths"]):
            paths = [str(p) for p in paths]
            for result in self.predictor.finish(self.predictor.decode(self.pool, paths)):
                out_index.append(int(index))
                out_path.append(result.path)
                out_result.append(json.dumps(["skipped", result.reason] if isinstance(result, Skipped)
                                             else ["row", result.ids, result.names, result.probs]))
        return {"batch": np.array(out_index, dtype=np.int64), "path": np.array(out_path, dtype=object),
                "result": np.array(out_result, dtype=object)}


# An actor takes two batches at once (two threads in it): one decodes while the other runs the model.
# Ray >= 2.5x names that on the pool strategy; earlier versions take the actor's max_concurrency.
def _two_calls_per_actor(ray: Any, actors: int) -> Any:
    parameters = inspect.signature(ray.data.ActorPoolStrategy).parameters
    if "max_concurrent_calls_per_actor" in parameters:
        return ray.data.ActorPoolStrategy(size=actors, max_tasks_in_flight_per_actor=2,
                                          max_concurrent_calls_per_actor=2)
    return ray.data.ActorPoolStrategy(size=actors, max_tasks_in_flight_per_actor=2)


def _threaded_actor(ray: Any) -> dict[str, Any]:
    parameters = inspect.signature(ray.data.ActorPoolStrategy).parameters
    return {} if "max_concurrent_calls_per_actor" in parameters else {"max_concurrency": 2}


def _result(path: str, encoded: str) -> Result:
    kind, *fields = json.loads(encoded)
    if kind == "skipped":
        return Skipped(path, fields[0])
    ids, names, probs = fields
    return Row(path, tuple(ids), tuple(names), tuple(probs))


def run_ray(model: Model, settings: Settings, paths: Sequence[str], *, batch: int = 16, threads: int = 1,
            actors: int = 2, workers: int = 2, address: Optional[str] = None) -> Iterator[list[Result]]:
    """The results of ``paths`` in order, one list per batch, computed by ``actors`` actors of ``threads``
    threads each (``workers`` decoding threads each) on the Ray cluster at ``address`` (see
    :func:`connect`)."""
    if batch < 1 or threads < 1 or actors < 1 or workers < 1:
        raise ValueError(f"batch, threads, actors and workers: expected positive integers, found {batch}, "
                         f"{threads}, {actors} and {workers}")
    BatchPredictor(model, settings)  # the model's input and output checked here, before any actor starts
    if not paths:
        return
    ray = _ray()
    connect(address)
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False  # the run's own progress bar counts the images
    # Ray Data's per-dataset lines (and its notice that its bars are off) would break into that progress.
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    chunks = [list(paths[i:i + batch]) for i in range(0, len(paths), batch)]
    # A block per batch lets every actor start at once; past a few hundred, blocks only cost bookkeeping.
    dataset = ray.data.from_items([{"index": i, "paths": chunk} for i, chunk in enumerate(chunks)],
                                  override_num_blocks=min(len(chunks), _MAX_BLOCKS))
    predicted = dataset.map_batches(
        _Actor, batch_size=1, batch_format="numpy", compute=_two_calls_per_actor(ray, actors),
        fn_constructor_args=(model_payload(model), settings, threads, workers), num_cpus=threads,
        **_threaded_actor(ray))
    current: list[Result] = []
    current_chunk = 0
    for record in predicted.iter_rows():
        chunk = int(record["batch"])
        if chunk != current_chunk and current:
            yield current
            current = []
        current_chunk = chunk
        current.append(_result(str(record["path"]), str(record["result"])))
    if current:
        yield current
