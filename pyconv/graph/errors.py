"""The one exception the graph runtime raises for a bad model, a bad weights file or a bad input."""
from __future__ import annotations

from typing import Optional

__all__ = ["ModelError", "UnknownTensorError"]


class ModelError(ValueError):
    """A model config, its weights or a model input is invalid.

    ``layer`` and ``field`` name where the problem is (either may be ``None`` for whole-model problems
    such as malformed JSON); ``hint`` is an optional suggestion for fixing it. ``str(error)`` is one line
    that already names the layer and field.
    """

    def __init__(self, message: str, *, layer: Optional[str] = None, field: Optional[str] = None,
                 hint: Optional[str] = None) -> None:
        where = []
        if layer is not None:
            where.append(f"layer {layer!r}")
        if field is not None:
            where.append(f"field {field!r}")
        text = f"{', '.join(where)}: {message}" if where else message
        super().__init__(text)
        self.message = message
        self.layer = layer
        self.field = field
        self.hint = hint


class UnknownTensorError(ModelError, KeyError):
    """A tensor name a model does not know (``model.run(x, outputs=[...])``); a ``KeyError`` too, whose
    message lists the closest names the model has."""

    __str__ = BaseException.__str__  # KeyError's own would quote the whole message
