"""The Python entry points: :func:`predict` (a list of rows) and :func:`iter_predict` (results per batch,
streamed, with the skipped images), over the local pipeline or Ray, writing an output file on the way
when asked (resuming what it holds)."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Sequence, Union

from ..graph import Model, load
from ..preprocess import Preset
from .engine import BatchPredictor, Settings
from .local import default_layout, run_local
from .rows import Result, Row, Skipped
from .sources import expand
from .writers import open_writer

__all__ = ["predict", "iter_predict", "load_model"]

Inputs = Union[str, os.PathLike, Iterable[Union[str, os.PathLike]]]
ModelLike = Union[Model, str, os.PathLike]


def load_model(model: ModelLike, threads: Optional[int] = None) -> Model:
    """``model`` itself, or the model at a path: an ONNX file (``.onnx``) or a pyconv config."""
    if isinstance(model, Model):
        return model
    if not isinstance(model, (str, os.PathLike)):
        raise TypeError(f"model: expected a pyconv Model or the path of a config or .onnx file, found "
                        f"{type(model).__name__}")
    if Path(model).suffix.lower() == ".onnx":
        from ..onnx import from_onnx
        return from_onnx(model, threads=threads)
    return load(model, threads=threads)


def iter_predict(model: ModelLike, inputs: Union[Inputs, Sequence[str]], *,
                 preset: Union[None, str, Preset] = None, top: int = 5, batch: int = 16,
                 threads: Optional[int] = None, activation: str = "auto", labels: Optional[Sequence[str]] = None,
                 workers: Optional[int] = None, prefetch: int = 2, callers: Optional[int] = None,
                 skip: Iterable[str] = (), ray: Union[None, bool, str] = None, actors: int = 2,
                 expanded: bool = False, draft: bool = False) -> Iterator[list[Result]]:
    """The results (:class:`Row` or :class:`Skipped`) of every image ``inputs`` names, in order, one list
    per batch; the paths in ``skip`` are left out. See :func:`predict` for the arguments; ``expanded``:
    ``inputs`` is already the list of images (:func:`pyconv.predict.sources.expand`)."""
    settings = Settings(preset=preset, top=top, activation=activation,
                        labels=None if labels is None else tuple(labels), draft=draft)
    local = ray is None or ray is False
    # On Ray the driver's model only checks the input and travels to the actors: one thread is enough.
    model = load_model(model, threads if local else 1)
    paths = list(inputs) if expanded else expand(inputs)  # type: ignore[arg-type]
    done = set(skip)
    paths = [p for p in paths if p not in done]
    if local:
        threads, callers = default_layout(threads, callers)
        return run_local(BatchPredictor(model, settings, threads=threads), paths, batch=batch, workers=workers,
                         prefetch=prefetch, callers=callers)
    from .ray_pipeline import run_ray
    return run_ray(model, settings, paths, batch=batch, threads=threads or 1, actors=actors, workers=workers or 2,
                   address=None if ray is True else str(ray))


def _warn(skipped: Skipped) -> None:
    print(f"pyconv predict: skipped {skipped.describe()}", file=sys.stderr)


def predict(model: ModelLike, inputs: Inputs, *, preset: Union[None, str, Preset] = None, top: int = 5,
            batch: int = 16, threads: Optional[int] = None, activation: str = "auto",
            labels: Optional[Sequence[str]] = None, output: Union[None, str, os.PathLike] = None,
            overwrite: bool = False, workers: Optional[int] = None, prefetch: int = 2, callers: Optional[int] = None,
            ray: Union[None, bool, str] = None, actors: int = 2, draft: bool = False,
            on_skip: Optional[Callable[[Skipped], None]] = _warn) -> list[Row]:
    """Classify every image ``inputs`` names; one :class:`Row` (path, top-k ids, names, probabilities)
    per image, in order.

    ``model``: a :class:`~pyconv.Model` or the path of a config or ``.onnx`` file. ``inputs``: files, folders
    (searched recursively for images), globs and URIs (:mod:`pyconv.predict.sources`). ``preset``: the
    preprocessing (:data:`pyconv.preprocess.PRESETS`; default: the model's own, else torchvision). ``top``:
    classes per row. ``batch``: images per model run. ``threads``: the model's threads (per actor with Ray,
    default 1 there). ``activation``: ``auto``, ``softmax`` or ``none`` (:mod:`pyconv.predict.rows`).
    ``labels``: class names (default: the model's own, else the ImageNet names for 1000 or 1001 classes, else
    the ids). ``output``: a ``.csv``, ``.jsonl`` or ``.parquet`` file the rows are written to as well, resuming
    it: images it already holds are not predicted again and not returned (``overwrite`` starts it again).
    ``workers``: decoding threads; ``prefetch``: batches decoded ahead; ``callers``: model runs at once, each
    with ``threads`` threads (with neither given, nor ``OMP_NUM_THREADS``: one single-threaded run per usable
    core, at most 8, the faster layout beside decoding; :func:`pyconv.predict.local.default_layout`).
    ``ray``: run on Ray (True: a local instance; an address such as ``"auto"``: that cluster) with ``actors``
    actors. ``draft``: decode JPEGs at 1/2, 1/4 or 1/8 of their size where the preset's resize still gets
    its size: faster for photos much larger than the model's input, pixels a little off the preset's
    reference transform (:func:`pyconv.preprocess.load_image`). An image that cannot be read is passed to
    ``on_skip`` (by default a line on stderr) and left out.
    """
    writer = open_writer(output, top, overwrite=overwrite) if output is not None else None
    rows: list[Row] = []
    try:
        for results in iter_predict(model, inputs, preset=preset, top=top, batch=batch, threads=threads,
                                    activation=activation, labels=labels, workers=workers, prefetch=prefetch,
                                    callers=callers, skip=writer.done if writer else (), ray=ray, actors=actors,
                                    draft=draft):
            new = [r for r in results if isinstance(r, Row)]
            for r in results:
                if isinstance(r, Skipped) and on_skip is not None:
                    on_skip(r)
            if writer is not None:
                writer.write(new)
            rows.extend(new)
    finally:
        if writer is not None:
            writer.close()
    return rows
