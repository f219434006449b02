"""What a prediction produces: a :class:`Row` per image (path, top-k class ids, names, probabilities) or a
:class:`Skipped` for an image that could not be read, and the rule turning a model's output into them.

Activation rule (``activation``): ``"softmax"`` applies softmax to every output row, ``"none"`` takes the
scores as they are, and ``"auto"`` (the default) keeps a row that already is a probability distribution
(no negative entry, sum 1 within 1e-3: a model ending in a softmax layer) and applies softmax to any other
(logits). The rule looks at each row on its own, so a row's result does not depend on the batch it ran in.

Names (:func:`class_names`): ``labels`` when given; else the ImageNet names for a 1000-class output, the
same preceded by ``"background"`` for a 1001-class one (the TF-slim convention), and the class id as text
otherwise. A model that carries its own names gets those first (:class:`.engine.BatchPredictor`).
"""
from __future__ import annotations

from typing import NamedTuple, Optional, Sequence, Union

import numpy as np

from ..labels import imagenet_labels

__all__ = ["ACTIVATIONS", "Row", "Skipped", "Result", "class_names", "probabilities", "top_rows"]

ACTIVATIONS = ("auto", "softmax", "none")

# How far from 1 a row may sum and still count as a distribution under activation="auto".
_SUM_TOLERANCE = 1e-3


class Row(NamedTuple):
    """One image's prediction: the ``top`` classes, most probable first."""
    path: str
    ids: tuple[int, ...]
    names: tuple[str, ...]
    probs: tuple[float, ...]


class Skipped(NamedTuple):
    """An image that was not predicted, and why (it could not be read or decoded)."""
    path: str
    reason: str

    def describe(self) -> str:
        """``path: reason``, the path once (readers' messages often name it already)."""
        return self.reason if self.path in self.reason else f"{self.path}: {self.reason}"


Result = Union[Row, Skipped]


def class_names(classes: int, labels: Optional[Sequence[str]] = None) -> list[str]:
    """The name of each of ``classes`` output classes (see the module docstring)."""
    if labels is not None:
        names = [str(name) for name in labels]
        if len(names) != classes:
            raise ValueError(f"labels: expected {classes} names (one per output class), found {len(names)}")
        return names
    if classes in (1000, 1001):
        imagenet = list(imagenet_labels())
        return imagenet if classes == 1000 else ["background", *imagenet]
    return [str(i) for i in range(classes)]


def probabilities(scores: np.ndarray, activation: str = "auto") -> np.ndarray:
    """``scores`` (N, classes) as probabilities (float64) under the activation rule."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation: expected one of {', '.join(ACTIVATIONS)}, found {activation!r}")
    x = np.asarray(scores, dtype=np.float64)
    if activation == "none":
        return x
    shifted = np.exp(x - x.max(axis=1, keepdims=True))
    soft = shifted / shifted.sum(axis=1, keepdims=True)
    if activation == "softmax":
        return soft
    is_distribution = (x.min(axis=1) >= 0) & (np.abs(x.sum(axis=1) - 1.0) <= _SUM_TOLERANCE)
    return np.where(is_distribution[:, None], x, soft)


def top_rows(paths: Sequence[str], scores: np.ndarray, top: int, names: Sequence[str],
             activation: str = "auto") -> list[Row]:
    """A :class:`Row` per path from the model's output ``scores`` (N, classes); ties go to the lower id."""
    probs = probabilities(scores, activation)
    k = min(top, probs.shape[1])
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return [Row(path, tuple(int(i) for i in ids), tuple(names[i] for i in ids), tuple(float(p[i]) for i in ids))
            for path, ids, p in zip(paths, order, probs)]
