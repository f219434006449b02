"""Batch prediction over many images, locally or on a Ray cluster (``pyconv predict``; docs/predict.md).

- :mod:`.sources`: files, folders, globs and URIs to the list of images; reading one;
- :mod:`.rows`: :class:`Row` / :class:`Skipped` and the activation rule;
- :mod:`.engine`: one batch through the model (decode on a pool, run, rows);
- :mod:`.local`: the local pipeline (decoding overlapped with the model, bounded prefetch);
- :mod:`.ray_pipeline`: the same on Ray Data over a pool of actors;
- :mod:`.writers`: CSV, JSON Lines, Parquet and the terminal table, with resume;
- :mod:`.progress`: the progress bar or periodic lines;
- :mod:`.api`: :func:`predict` and :func:`iter_predict`.

``pyconv.predict`` is the function :func:`predict` (exported by :mod:`pyconv`); reach the modules with
``from pyconv.predict import sources`` or ``from pyconv.predict.sources import expand`` (not with
``import pyconv.predict.sources as ...``, which finds the function).
"""
from .api import iter_predict, load_model, predict
from .rows import ACTIVATIONS, Result, Row, Skipped
from .sources import IMAGE_EXTENSIONS, UnreadableImage, expand

__all__ = ["predict", "iter_predict", "load_model", "Row", "Skipped", "Result", "ACTIVATIONS", "expand",
           "IMAGE_EXTENSIONS", "UnreadableImage"]
