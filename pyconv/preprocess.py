"""Photos to model inputs: the resize, crop and normalisation conventions models are trained with.

A :class:`Preset` describes one convention; :data:`PRESETS` holds the named ones:

- ``"torchvision"``: shorter side resized to 256 (bilinear, antialiased), centre crop 224, ``/255``,
  ImageNet mean and std -- ``transforms.Resize(256), CenterCrop(224), ToTensor(), Normalize(...)``;
- ``"keras"``: stretched to 224x224 (bilinear), scaled to [-1, 1] -- Keras' ``load_img(target_size=...,
  interpolation="bilinear")`` then ``mobilenet.preprocess_input`` (``x / 127.5 - 1``); also TensorFlow's
  MobileNet v1/v2 and Inception convention;
- ``"caffe"``: stretched to 224x224 (bilinear), RGB -> BGR, the ImageNet mean (103.939, 116.779, 123.68)
  subtracted, no scaling -- Keras' ``preprocess_input`` in "caffe" mode (VGG, ResNet50);
- ``"timm-efficientnet"``: shorter side resized to ``floor(224 / 0.875)`` = 256 (bicubic), centre crop
  224, ImageNet mean and std -- timm's eval transform for ``efficientnet_b0`` and the other
  timm-trained EfficientNets;
- ``"tf-efficientnet-lite"``: as ``timm-efficientnet`` with mean and std 0.5 (so [-1, 1]) -- timm's
  defaults for ``tf_efficientnet_lite0`` (weights ported from TensorFlow, whose own eval pipeline,
  ``(x - 127) / 128`` after a bicubic crop of 224/256 of the shorter side, differs by under 1/255).

Every preset takes a ``size`` (the crop, or the stretched size; 224 by default) so that a model trained
at another input size uses the same convention: a ``"shorter"`` resize scales the shorter side to
``floor(size / crop_fraction)`` first. Resizing is Pillow's (antialiased when shrinking), which is what
torchvision, timm and Keras do when handed PIL images, reproduced pixel for pixel by a compiled step
(:mod:`pyconv._resample`) that fuses it with the crop and the normalisation; channel means and stds are
in pixel units (0-255) in the output channel order.

:func:`preprocess` turns one PIL image (or ``(H, W, 3)`` uint8 array) into a float32 ``(H, W, C)`` or
``(C, H, W)`` array, no batch axis; :func:`load_image` decodes a file first (EXIF orientation applied,
converted to RGB) and raises :class:`ImageError` naming the file when it cannot. :func:`model_input`
reads the layout and size a :class:`~pyconv.graph.Model` input expects, and :func:`model_preset`
the preset its config names (``metadata.preprocess``, see docs/model-format.md). Pillow is an optional
dependency: ``pip install "pyconv[image]"``.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import os
from dataclasses import dataclass
from types import MappingProxyType
from typing import IO, TYPE_CHECKING, Any, Mapping, Optional, Union

import numpy as np

from ._resample import resize_crop

if TYPE_CHECKING:
    from PIL import Image as _PILImage

    from .graph import Model

__all__ = ["ImageError", "Preset", "PRESETS", "preprocess", "load_image", "model_input", "model_preset",
           "resolve_preset"]

_IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
_IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)
_LAYOUTS = ("NHWC", "NCHW")
# The EXIF orientation tag, and its values that rotate or flip the stored pixels.
_ORIENTATION = 0x0112
_TRANSPOSED = frozenset(range(2, 9))


Size = Union[int, tuple[int, int]]


def _check_size(size: Any) -> Size:
    def positive(n: Any) -> bool:
        return not isinstance(n, bool) and isinstance(n, (int, np.integer)) and n >= 1

    if positive(size):
        return int(size)
    if isinstance(size, (tuple, list)) and len(size) == 2 and all(positive(n) for n in size):
        return int(size[0]), int(size[1])
    raise ValueError(f"size must be a positive int (or an (H, W) pair), found {size!r}")


class ImageError(ValueError):
    """An image that cannot be read or preprocessed; ``path`` names the file where there is one, and
    ``hint`` suggests a fix."""

    def __init__(self, message: str, *, path: Optional[str] = None, hint: Optional[str] = None) -> None:
        super().__init__(f"{path}: {message}" if path is not None else message)
        self.path = path
        self.hint = hint


@dataclass(frozen=True)
class Preset:
    """One preprocessing convention.

    ``resize``: ``"shorter"`` scales the shorter side to ``floor(size / crop_fraction)`` (aspect kept)
    and then crops ``size x size`` from the centre; ``"stretch"`` resizes to ``size x size``.
    ``interpolation``: ``"bilinear"`` or ``"bicubic"`` (Pillow's, antialiased when shrinking).
    ``channels``: ``"RGB"`` or ``"BGR"``, the output channel order. The output is
    ``(pixel - mean) / std`` per channel, pixels in 0-255, ``mean`` and ``std`` in the output order.
    ``size`` may also be an ``(H, W)`` pair: stretched to it, or cropped to it after the shorter side
    is scaled to ``floor(max(H, W) / crop_fraction)``.
    """

    name: str
    resize: str = "shorter"
    interpolation: str = "bilinear"
    crop_fraction: float = 0.875
    mean: tuple[float, float, float] = _IMAGENET_MEAN
    std: tuple[float, float, float] = _IMAGENET_STD
    channels: str = "RGB"
    size: Size = 224

    def __post_init__(self) -> None:
        if self.resize not in ("shorter", "stretch"):
            raise ValueError(f"preset {self.name!r}: resize must be 'shorter' or 'stretch', found {self.resize!r}")
        if self.interpolation not in ("bilinear", "bicubic"):
            raise ValueError(f"preset {self.name!r}: interpolation must be 'bilinear' or 'bicubic', "
                             f"found {self.interpolation!r}")
        if not 0 < self.crop_fraction <= 1:
            raise ValueError(f"preset {self.name!r}: crop_fraction must be in (0, 1], found {self.crop_fraction}")
        if self.channels not in ("RGB", "BGR"):
            raise ValueError(f"preset {self.name!r}: channels must be 'RGB' or 'BGR', found {self.channels!r}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError(f"preset {self.name!r}: mean and std need 3 values each, std positive")
        object.__setattr__(self, "size", _check_size(self.size))

    def at(self, size: Size) -> "Preset":
        """This convention at another input size."""
        return dataclasses.replace(self, size=_check_size(size))

    @property
    def output_size(self) -> tuple[int, int]:
        """(H, W) of the output."""
        return self.size if isinstance(self.size, tuple) else (self.size, self.size)

    @property
    def resize_to(self) -> int:
        """The shorter side's length before the crop (``"shorter"`` only)."""
        side = max(self.output_size)
        # The 1e-9 keeps exact quotients (224 / 0.875 = 256) from flooring one short through rounding.
        return max(side, math.floor(side / self.crop_fraction + 1e-9))


PRESETS: Mapping[str, Preset] = MappingProxyType({p.name: p for p in (
    Preset("torchvision", "shorter", "bilinear", 0.875),
    Preset("keras", "stretch", "bilinear", 1.0, (127.5,) * 3, (127.5,) * 3),
    Preset("caffe", "stretch", "bilinear", 1.0, (103.939, 116.779, 123.68), (1.0,) * 3, "BGR"),
    Preset("timm-efficientnet", "shorter", "bicubic", 0.875),
    Preset("tf-efficientnet-lite", "shorter", "bicubic", 0.875, (127.5,) * 3, (127.5,) * 3),
)})


def resolve_preset(preset: Union[str, Preset], size: Optional[Size] = None) -> Preset:
    """The :class:`Preset` named ``preset`` (or ``preset`` itself), at ``size`` where given."""
    if isinstance(preset, str):
        try:
            preset = PRESETS[preset]
        except KeyError:
            raise ValueError(f"unknown preprocessing preset {preset!r}; expected one of "
                             f"{', '.join(PRESETS)} or a pyconv.preprocess.Preset") from None
    elif not isinstance(preset, Preset):
        raise TypeError(f"preset must be a name or a Preset, found {type(preset).__name__}")
    return preset if size is None else preset.at(size)


def _pil() -> Any:
    try:
        from PIL import Image
    except ImportError:
        raise ImportError('reading images needs Pillow: pip install "pyconv[image]"') from None
    return Image


@functools.lru_cache(maxsize=None)
def _table(mean: tuple[float, float, float], std: tuple[float, float, float]) -> np.ndarray:
    """``(v - mean) / std`` for every pixel value ``v`` and output channel, in float32 arithmetic."""
    values = np.arange(256, dtype=np.float32)[None, :]
    table = (values - np.asarray(mean, np.float32)[:, None]) / np.asarray(std, np.float32)[:, None]
    table.flags.writeable = False
    return table


@functools.lru_cache(maxsize=None)
def _pillow_orders_passes() -> bool:
    """Whether the installed Pillow (13 on) runs the vertical pass first when the height shrinks more than
    twice as much as the width; without Pillow, the newest behaviour."""
    try:
        from PIL import __version__
    except ImportError:
        return True
    return int(__version__.split(".")[0]) >= 13


def _vertical_first(h: int, w: int, new_h: int, new_w: int) -> bool:
    """Whether Pillow resizes an ``h x w`` image to ``new_h x new_w`` with its vertical pass first."""
    return _pillow_orders_passes() and h - new_h > 0 and h - new_h > (w - new_w) * 2


def preprocess(image: Union["_PILImage.Image", np.ndarray], preset: Union[str, Preset] = "torchvision",
               layout: str = "NHWC", size: Optional[Size] = None, *, out: Optional[np.ndarray] = None) -> np.ndarray:
    """One image as a model input: float32 ``(H, W, C)`` (``layout="NHWC"``) or ``(C, H, W)``
    (``"NCHW"``), no batch axis. ``image`` is a PIL image (converted to RGB) or an ``(H, W, 3)``
    uint8 array; ``size`` overrides the preset's (224; an int, or an ``(H, W)`` pair). ``out``: a
    writeable C-contiguous float32 array of that shape to write into and return, such as ``batch[i]``
    (a ValueError if it is not one).

    The resize, crop and normalisation run as one compiled step (:mod:`pyconv._resample`) that gives
    Pillow's resized pixels exactly while computing only those the crop keeps; it releases the GIL."""
    spec = resolve_preset(preset, size)
    if layout not in _LAYOUTS:
        raise ValueError(f"layout must be 'NHWC' or 'NCHW', found {layout!r}")
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ImageError(f"expected an (H, W, 3) uint8 array, found {image.shape} {image.dtype}")
        pixels = np.ascontiguousarray(image)
    else:
        Image = _pil()
        if not isinstance(image, Image.Image):
            raise TypeError(f"expected a PIL image or an (H, W, 3) uint8 array, found {type(image).__name__}")
        pixels = np.asarray(image if image.mode == "RGB" else image.convert("RGB"))
    h, w = pixels.shape[:2]
    if w < 1 or h < 1:
        raise ImageError(f"the image is empty ({w}x{h})")
    out_h, out_w = spec.output_size
    if out is not None:
        shape = (3, out_h, out_w) if layout == "NCHW" else (out_h, out_w, 3)
        if not (isinstance(out, np.ndarray) and out.shape == shape and out.dtype == np.float32
                and out.flags.c_contiguous and out.flags.writeable):
            found = (f"{out.dtype} {out.shape}, C-contiguous {out.flags.c_contiguous}, writeable "
                     f"{out.flags.writeable}" if isinstance(out, np.ndarray) else type(out).__name__)
            raise ValueError(f"out: expected a writeable C-contiguous float32 array of shape {shape}, found {found}")
    if spec.resize == "stretch":
        new_h, new_w, top, left = out_h, out_w, 0, 0
    else:
        # torchvision's Resize(int): the shorter side to the size, the longer scaled and truncated.
        short = spec.resize_to
        new_w, new_h = (short, max(1, int(short * h / w))) if w <= h else (max(1, int(short * w / h)), short)
        # torchvision's CenterCrop: offsets rounded half to even, as Python's round does.
        top = int(round((new_h - out_h) / 2.0))
        left = int(round((new_w - out_w) / 2.0))
    try:
        return resize_crop(pixels, new_h, new_w, top, left, out_h, out_w, spec.interpolation,
                           _vertical_first(h, w, new_h, new_w), _table(spec.mean, spec.std),
                           bgr=spec.channels == "BGR", nchw=layout == "NCHW", out=out)
    except ValueError as exc:  # an image too thin to scale its shorter side up to the size
        raise ImageError(f"cannot resize the {w}x{h} image to {new_w}x{new_h}: {exc}") from None


def load_image(path: Union[str, "os.PathLike[str]", IO[bytes]], preset: Union[str, Preset] = "torchvision",
               layout: str = "NHWC", size: Optional[Size] = None, *, out: Optional[np.ndarray] = None,
               draft: bool = False) -> np.ndarray:
    """Decode an image file (PNG, JPEG, ...; EXIF orientation applied, converted to RGB) and
    :func:`preprocess` it (into ``out`` where given). An unreadable or corrupt file is an
    :class:`ImageError` naming it.

    With simplejpeg installed (``pyconv[image]``), colour and greyscale JPEGs are decoded by it: the same
    libjpeg-turbo settings as Pillow's decoder (accurate DCT, smooth chroma upsampling), so the same
    pixels, in about 60% of the time Pillow takes to decode and hand them over.

    ``draft``: decode a JPEG at 1/2, 1/4 or 1/8 of its size (libjpeg's scaling in the DCT, as Pillow's
    ``Image.draft``), the smallest that still leaves the preset's resize at least its size. A photo
    several times larger than the model's input then decodes faster (a 12-megapixel one at 1/8, about
    3x: the entropy decoding is not scaled), but its pixels are no longer the preset's reference
    transform: on a 1700x1300 photo, 0.5-0.8 pixel levels apart on average, up to 15."""
    spec = resolve_preset(preset, size)
    Image = _pil()
    from PIL import ImageFile, ImageOps, UnidentifiedImageError

    name = os.fspath(path) if isinstance(path, (str, os.PathLike)) else getattr(path, "name", "<stream>")
    name = name if isinstance(name, str) else repr(name)
    try:
        with Image.open(path) as image:
            orientation = image.getexif().get(_ORIENTATION, 1)
            # The decoded size the preset needs at least, (width, height) as the file stores the image.
            least = _least_decoded(spec, orientation) if draft and image.format == "JPEG" else None
            decode = _jpeg_decoder()
            if (decode is not None and image.format == "JPEG" and image.mode in ("RGB", "L")
                    and not ImageFile.LOAD_TRUNCATED_IMAGES):
                # Pillow read the header from the start of the stream (it seeks there); the decoder
                # takes the whole file.
                image.fp.seek(0)
                # simplejpeg takes the smallest of libjpeg's scales (k/8) that keeps the sizes asked for:
                # asking for the size that Pillow's draft factor gives makes both decode alike.
                factor = _draft_factor(image.size, least) if least else 1
                width, height = (-(-side // factor) if factor > 1 else 0 for side in image.size)
                pixels = _orient(decode(image.fp.read(), colorspace="RGB", fastdct=False, fastupsample=False,
                                        min_width=width, min_height=height), orientation)
            else:
                if least is not None:
                    image.draft(image.mode, least)
                # exif_transpose copies an image it leaves as it is: call it only for a rotation or a flip.
                if orientation in _TRANSPOSED:
                    image = ImageOps.exif_transpose(image)
                if image.mode != "RGB":
                    image = image.convert("RGB")
                image.load()
                pixels = np.asarray(image)
    except FileNotFoundError:
        raise ImageError("no such file", path=name, hint="check the path") from None
    except IsADirectoryError:
        raise ImageError("is a directory, not an image file", path=name) from None
    except UnidentifiedImageError:
        raise ImageError("not an image file Pillow can read", path=name,
                         hint="pass a PNG, JPEG, BMP, GIF, TIFF or WebP file") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        # Truncated or corrupt data surfaces while decoding, as any of these.
        raise ImageError(f"cannot decode the image: {exc}", path=name) from None
    return preprocess(pixels, spec, layout, out=out)


def _least_decoded(spec: Preset, orientation: int) -> tuple[int, int]:
    """The least (width, height) a stored image must keep for ``spec``'s resize to shrink it, not enlarge
    it: both sides at least the shorter side's target ("shorter"), or the output's sides ("stretch"),
    swapped where the EXIF orientation turns the image a quarter."""
    if spec.resize == "shorter":
        return spec.resize_to, spec.resize_to
    out_h, out_w = spec.output_size
    return (out_h, out_w) if orientation in (5, 6, 7, 8) else (out_w, out_h)


def _draft_factor(size: tuple[int, int], least: tuple[int, int]) -> int:
    """The factor (8, 4, 2 or 1) Pillow's ``Image.draft`` shrinks a JPEG of ``size`` by, asked for
    ``least`` (both (width, height)): the largest that leaves each side at least that long."""
    fits = min(size[0] // least[0], size[1] // least[1])
    return next((factor for factor in (8, 4, 2) if fits >= factor), 1)


@functools.lru_cache(maxsize=None)
def _jpeg_decoder() -> Any:
    """simplejpeg's ``decode_jpeg`` when it is installed, else None."""
    try:
        from simplejpeg import decode_jpeg
    except ImportError:
        return None
    return decode_jpeg


def _orient(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """``(H, W, C)`` pixels as Pillow's ``exif_transpose`` turns an image stored with the EXIF
    ``orientation`` (1-8): 2 mirrored, 3 upside down, 4 flipped, 5 transposed, 6 to turn a quarter
    clockwise, 7 transversed, 8 a quarter anticlockwise."""
    if orientation not in _TRANSPOSED:
        return pixels
    mirrored = orientation in (2, 3, 7)     # columns reversed before any transposition
    flipped = orientation in (3, 4, 6, 7)   # rows reversed
    view = pixels[::-1 if flipped else 1, ::-1 if mirrored else 1]
    if orientation >= 5:
        view = view.transpose(1, 0, 2)
        if orientation == 8:
            view = view[::-1]
    return np.ascontiguousarray(view)


def model_input(model: "Model", name: Optional[str] = None) -> tuple[str, Size]:
    """The layout (``"NHWC"`` or ``"NCHW"``) and the size of ``model``'s image input ``name`` (the only
    input by default; an int when square, else ``(H, W)``), to pass to :func:`preprocess` or
    :func:`load_image`."""
    name = name or model.input_names[0]
    layout = model.spec.layers[name].attrs["layout"]
    shape = model.info.outputs[name]
    if len(shape) != 3 or shape[2] != 3:
        raise ImageError(f"input {name!r} is {list(shape)} (H, W, C), not an RGB image",
                         hint="preprocess images only for 3-channel image inputs")
    h, w = int(shape[0]), int(shape[1])
    return layout, (h if h == w else (h, w))


def model_preset(model: "Model") -> Optional[str]:
    """The preset ``model``'s config names in ``metadata.preprocess``, if any."""
    metadata = model.spec.document.get("metadata") or {}
    value = metadata.get("preprocess") if isinstance(metadata, dict) else None
    return value if isinstance(value, str) and value in PRESETS else None
