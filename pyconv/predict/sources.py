"""Where the images come from: :func:`expand` turns files, folders, globs and URIs into the list of images
to predict, and :func:`open_image` reads one of them as a preprocessed array.

Expansion rules, in the order the inputs are given, each image once (its first place):

- a file is taken as it is, whatever its extension (a file that is no image is reported when read);
- a folder is searched recursively for files with an image extension (:data:`IMAGE_EXTENSIONS`, any
  case), in sorted path order;
- a pattern with ``*``, ``?`` or ``[`` that names no existing file is a glob (``**`` crosses folders);
  the folders it matches are searched as above, and it must match something;
- ``scheme://...`` (``s3://``, ``gs://``, ``file://``, ``memory://``, ...) is read through fsspec (and its
  backend, e.g. s3fs), with the same rules for folders and globs.

Paths are kept as given (a relative path stays relative), so the same command names its images the same
way twice: the output's resume relies on it.
"""
from __future__ import annotations

import glob
import io
import os
from pathlib import Path
from typing import Any, Iterable, Optional, Union

import numpy as np

from ..preprocess import Size

__all__ = ["IMAGE_EXTENSIONS", "UnreadableImage", "expand", "is_uri", "open_image"]

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm",
                              ".pbm", ".pnm"})
_GLOB_CHARS = frozenset("*?[")


class UnreadableImage(ValueError):
    """An image that could not be read or decoded; the message names it and says why."""


def is_uri(source: str) -> bool:
    """Whether ``source`` is a URI with a scheme (``s3://bucket/key``) rather than a local path."""
    scheme, sep, _ = source.partition("://")
    return bool(sep) and len(scheme) > 1 and scheme.replace("+", "").replace("-", "").isalnum()


def _is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _expand_local(source: str) -> list[str]:
    path = Path(source)
    if path.is_file():
        return [source]
    if path.is_dir():
        return sorted(str(p) for p in path.rglob("*") if p.is_file() and _is_image_name(p.name))
    if _GLOB_CHARS & set(source):
        found: list[str] = []
        for match in sorted(glob.glob(source, recursive=True)):
            found.extend(_expand_local(match) if os.path.isdir(match) else [match])
        if not found:
            raise FileNotFoundError(f"no file matches the pattern {source!r}")
        return found
    raise FileNotFoundError(f"no such file or folder: {source!r}")


def _filesystem(uri: str) -> tuple[Any, str]:
    try:
        import fsspec
    except ImportError:
        raise ImportError(f"reading {uri} needs fsspec (and the backend of its scheme, e.g. s3fs for s3://): "
                          "pip install fsspec") from None
    fs, path = fsspec.core.url_to_fs(uri)
    return fs, path


def _expand_uri(uri: str) -> list[str]:
    fs, path = _filesystem(uri)
    scheme = uri.split("://", 1)[0]

    def full(p: str) -> str:
        return fs.unstrip_protocol(p) if "://" not in p else p

    if _GLOB_CHARS & set(path) and not fs.exists(path):
        matches = sorted(fs.glob(path))
        if not matches:
            raise FileNotFoundError(f"no file matches the pattern {uri!r}")
        found: list[str] = []
        for match in matches:
            found.extend(_expand_uri(full(match)) if fs.isdir(match) else [full(match)])
        return found
    if fs.isdir(path):
        return sorted(full(p) for p in fs.find(path) if _is_image_name(p))
    if fs.exists(path):
        return [uri]
    raise FileNotFoundError(f"no such file or folder: {uri!r} (read with {type(fs).__name__} for {scheme}://)")


def expand(inputs: Union[str, os.PathLike, Iterable[Union[str, os.PathLike]]]) -> list[str]:
    """The images named by ``inputs`` (files, folders, globs, URIs; see the module docstring), each once.

    A name that matches nothing is a ``FileNotFoundError`` naming it; a folder without images is fine (it
    adds none)."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    seen: dict[str, None] = {}
    for item in inputs:
        source = os.fspath(item)
        for path in (_expand_uri(source) if is_uri(source) else _expand_local(source)):
            seen.setdefault(path, None)
    return list(seen)


def open_image(source: str, preset: Any = "torchvision", layout: str = "NHWC",
               size: Optional[Size] = None, out: Optional[np.ndarray] = None, draft: bool = False) -> np.ndarray:
    """One image, preprocessed (:func:`pyconv.preprocess.load_image`, into ``out`` where given, a JPEG at a
    reduced size with ``draft``); a URI is read through fsspec.

    An image that cannot be read or decoded raises :class:`UnreadableImage` (a ``ValueError``) naming it."""
    from ..preprocess import load_image

    try:
        if not is_uri(source):
            return load_image(source, preset, layout, size, out=out, draft=draft)
        fs, path = _filesystem(source)
        with fs.open(path, "rb") as file:
            data = io.BytesIO(file.read())
        data.name = source  # type: ignore[attr-defined]  # the name load_image's errors give
        return load_image(data, preset, layout, size, out=out, draft=draft)
    except ImportError:
        raise
    except Exception as exc:  # noqa: BLE001
        # A missing file, a decoder's error on a truncated or malformed one (OSError, SyntaxError, EOFError,
        # DecompressionBombError, ...), an object store's: whatever one image raises skips that image only.
        message = str(exc) or type(exc).__name__
        raise UnreadableImage(message if source in message else f"{source}: {message}") from None
