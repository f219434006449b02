"""One batch of images through a model, shared by the local pipeline and the Ray actors: the model's image
input (:class:`BatchPredictor` reads its layout and size once), decoding a batch's images on a thread
pool, running the model on those that decoded, and the rows of the result. Also how a model travels to
another process (:func:`model_payload`, :func:`load_payload`): its config document and its weights.
"""
from __future__ import annotations

import math
from concurrent.futures import Executor, Future
from dataclasses import dataclass, replace
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np

from ..graph import Model, load
from ..labels import model_labels
from ..preprocess import Preset, model_input, model_preset, resolve_preset
from .rows import ACTIVATIONS, Result, Skipped, class_names, top_rows
from .sources import UnreadableImage, open_image

__all__ = ["Settings", "BatchPredictor", "model_payload", "load_payload"]


@dataclass(frozen=True)
class Settings:
    """What a run computes for each image (see :func:`pyconv.predict.predict`); ``preset`` None: the
    model's own (its config's ``metadata.preprocess``), else ``"torchvision"``."""
    preset: Union[None, str, Preset] = None
    top: int = 5
    activation: str = "auto"
    labels: Optional[tuple[str, ...]] = None

    def __post_init__(self) -> None:
        if not isinstance(self.top, int) or self.top < 1:
            raise ValueError(f"top: expected a positive integer, found {self.top!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation: expected one of {', '.join(ACTIVATIONS)}, found {self.activation!r}")


class BatchPredictor:
    """Predicts batches of images with ``model``: decoding on a pool (:meth:`decode`), then the model
    (:meth:`finish`). The model needs one RGB image input (:func:`pyconv.preprocess.model_input`) and a
    (N, classes) output (its first output if it has several; 1-sized axes are dropped). Names: the
    model's own (:func:`pyconv.labels.model_labels`) when they fit, else :func:`.rows.class_names`."""

    def __init__(self, model: Model, settings: Settings, threads: Optional[int] = None) -> None:
        if len(model.input_names) != 1:
            raise ValueError(f"predict needs a model with one image input; {model.name or 'this model'} has "
                             f"{len(model.input_names)} ({', '.join(model.input_names)})")
        self.model = model
        self.threads = threads
        self.layout, self.size = model_input(model)
        preset = settings.preset or model_preset(model) or "torchvision"
        resolve_preset(preset, self.size)  # an unknown preset is the run's error, not every image's
        self.settings = replace(settings, preset=preset)
        self.sample_shape = tuple(model.input_shape())[1:]
        self.output = model.output_names[0]
        out = tuple(model.info.outputs[self.output])
        self.classes = math.prod(out)
        if self.classes != max(out, default=0):
            raise ValueError(f"predict needs a (N, classes) output; output {self.output!r} is {list(out)} per image")
        own = model_labels(model) if settings.labels is None else None
        self.names = own if own is not None and len(own) == self.classes else class_names(self.classes,
                                                                                          settings.labels)

    def read(self, path: str) -> np.ndarray:
        """One image preprocessed for the model; :class:`UnreadableImage` when it cannot be."""
        x = open_image(path, preset=self.settings.preset, layout=self.layout, size=self.size)
        if x.shape != self.sample_shape:
            raise UnreadableImage(f"{path}: preprocessed to {list(x.shape)}, the model takes {list(self.sample_shape)}")
        return x

    def decode(self, pool: Executor, paths: Sequence[str]) -> list[Future]:
        """Start reading ``paths`` on ``pool``."""
        return [pool.submit(self.read, path) for path in paths]

    def finish(self, paths: Sequence[str], decoded: Sequence[Future]) -> list[Result]:
        """The rows of ``paths`` (in order) once their images are read: a :class:`Skipped` for each that
        could not be, a row for each other, all of those run as one batch."""
        results: list[Optional[Result]] = []
        arrays, good = [], []
        for path, future in zip(paths, decoded):
            try:
                arrays.append(future.result())
            except UnreadableImage as exc:
                results.append(Skipped(path, str(exc)))
                continue
            results.append(None)
            good.append(path)
        if good:
            scores = self.model.run(np.stack(arrays), threads=self.threads)
            if isinstance(scores, dict):
                scores = scores[self.output]
            rows = iter(top_rows(good, scores.reshape(len(good), -1), self.settings.top, self.names,
                                 self.settings.activation))
            results = [r if r is not None else next(rows) for r in results]
        return results  # type: ignore[return-value]


def model_payload(model: Model) -> tuple[dict[str, Any], dict[str, dict[str, np.ndarray]]]:
    """What rebuilds ``model`` in another process: its config document (without a weights file name) and
    its original weights."""
    document = dict(model.spec.document)
    document.pop("weights", None)
    # Plain dicts of arrays: the model's own mapping may read its arrays lazily from a file.
    weights = model.weights
    return document, {layer: dict(weights[layer]) for layer in weights}


def load_payload(payload: tuple[Mapping[str, Any], Mapping[str, Any]], threads: Optional[int] = None) -> Model:
    """The model :func:`model_payload` described."""
    document, weights = payload
    return load(dict(document), weights, threads=threads)
