"""One batch of images through a model, shared by the local pipeline and the Ray actors: the model's image
input (:class:`BatchPredictor` reads its layout and size once), decoding a batch's images on a thread
pool straight into the batch's array (:class:`PendingBatch`), running the model on those that decoded,
and the rows of the result. Also how a model travels to
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

__all__ = ["Settings", "BatchPredictor", "PendingBatch", "model_payload", "load_payload"]


@dataclass(frozen=True)
class Settings:
    """What a run computes for each image (see :func:`pyconv.predict.predict`); ``preset`` None: the
    model's own (its config's ``metadata.preprocess``), else ``"torchvision"``; ``draft``: JPEGs decoded
    at a reduced size (:func:`pyconv.preprocess.load_image`)."""
    preset: Union[None, str, Preset] = None
    top: int = 5
    activation: str = "auto"
    labels: Optional[tuple[str, ...]] = None
    draft: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.top, int) or self.top < 1:
            raise ValueError(f"top: expected a positive integer, found {self.top!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation: expected one of {', '.join(ACTIVATIONS)}, found {self.activation!r}")


@dataclass(frozen=True)
class PendingBatch:
    """A batch being decoded: its paths, the ``(N, ...)`` float32 array each image is written into (row
    ``i`` for ``paths[i]``) and one future per image, done when its row is written (or the image failed)."""
    paths: Sequence[str]
    images: np.ndarray
    futures: Sequence[Future]

    def cancel(self) -> None:
        """Cancel the decoding not yet started."""
        for future in self.futures:
            future.cancel()


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
        self.layout, size = model_input(model)
        preset = settings.preset or model_preset(model) or "torchvision"
        # Resolved once: an unknown preset is the run's error, not every image's.
        self.spec = spec = resolve_preset(preset, size)
        self.settings = replace(settings, preset=preset)
        self.sample_shape = tuple(model.input_shape())[1:]
        h, w = spec.output_size
        if self.sample_shape != ((3, h, w) if self.layout == "NCHW" else (h, w, 3)):
            raise ValueError(f"preset {spec.name!r} makes {self.layout} images of {h}x{w}; input "
                             f"{model.input_names[0]!r} takes {list(self.sample_shape)}")
        self.output = model.output_names[0]
        out = tuple(model.info.outputs[self.output])
        self.classes = math.prod(out)
        if self.classes != max(out, default=0):
            raise ValueError(f"predict needs a (N, classes) output; output {self.output!r} is {list(out)} per image")
        own = model_labels(model) if settings.labels is None else None
        self.names = own if own is not None and len(own) == self.classes else class_names(self.classes,
                                                                                          settings.labels)

    def read(self, path: str, out: Optional[np.ndarray] = None) -> np.ndarray:
        """One image preprocessed for the model (into ``out``, of the model's sample shape, where given);
        :class:`UnreadableImage` when it cannot be."""
        return open_image(path, preset=self.spec, layout=self.layout, out=out, draft=self.settings.draft)

    def decode(self, pool: Executor, paths: Sequence[str]) -> PendingBatch:
        """Start reading ``paths`` on ``pool``, each into its row of one batch array."""
        images = np.empty((len(paths), *self.sample_shape), np.float32)
        return PendingBatch(paths, images, [pool.submit(self.read, path, images[i]) for i, path in enumerate(paths)])

    def finish(self, pending: PendingBatch) -> list[Result]:
        """The rows of ``pending``'s paths (in order) once their images are read: a :class:`Skipped` for each
        that could not be, a row for each other, all of those run as one batch."""
        results: list[Optional[Result]] = []
        good: list[int] = []
        for i, (path, future) in enumerate(zip(pending.paths, pending.futures)):
            try:
                future.result()
            except UnreadableImage as exc:
                results.append(Skipped(path, str(exc)))
                continue
            results.append(None)
            good.append(i)
        if good:
            # The batch array as it is when every image was read, else its good rows (a copy).
            images = pending.images if len(good) == len(pending.paths) else pending.images[good]
            scores = self.model.run(images, threads=self.threads)
            if isinstance(scores, dict):
                scores = scores[self.output]
            rows = iter(top_rows([pending.paths[i] for i in good], scores.reshape(len(good), -1), self.settings.top,
                                 self.names, self.settings.activation))
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
