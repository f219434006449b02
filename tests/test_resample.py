"""pyconv._resample.resize_crop, the compiled resize + crop + normalisation behind pyconv.preprocess:
its uint8 pixels equal Pillow's ``Image.resize(...).crop(...)`` exactly (the installed Pillow is the
reference, pass order included) over a sweep of sizes -- shrinking and enlarging, odd sizes, 1xN and Nx1,
very thin images, sizes left unchanged, both filters -- and its float32 output equals the pixels put
through ``(v - mean) / std`` in numpy, in both layouts and channel orders; preprocess equals the Pillow
path (resize, crop, numpy normalisation) on real photos for every preset. Bad arguments are errors."""
from __future__ import annotations

import numpy as np
import pytest

PIL_Image = pytest.importorskip("PIL.Image")
skimage_data = pytest.importorskip("skimage.data")

from pyconv._resample import resize_crop  # noqa: E402
from pyconv.preprocess import PRESETS, ImageError, _table, _vertical_first, load_image, preprocess  # noqa: E402

FILTERS = {"bilinear": PIL_Image.Resampling.BILINEAR, "bicubic": PIL_Image.Resampling.BICUBIC}


def pillow(pixels: np.ndarray, new_h: int, new_w: int, box: tuple[int, int, int, int], filter: str) -> np.ndarray:
    """Pillow's resize to ``new_w x new_h`` then crop of ``box`` = (top, left, height, width)."""
    top, left, h, w = box
    image = PIL_Image.fromarray(pixels).resize((new_w, new_h), FILTERS[filter])
    return np.asarray(image.crop((left, top, left + w, top + h)))


def fused(pixels: np.ndarray, new_h: int, new_w: int, box: tuple[int, int, int, int], filter: str,
          **options) -> np.ndarray:
    h, w = pixels.shape[:2]
    return resize_crop(pixels, new_h, new_w, *box, filter, _vertical_first(h, w, new_h, new_w), **options)


def textured(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Noise over a gradient with saturated patches: every rounding and clipping case shows."""
    y, x = np.mgrid[:h, :w]
    base = (y * 7 + x * 3)[..., None] + np.array([0, 80, 160])
    pixels = (base + rng.integers(-60, 60, (h, w, 3))) % 256
    pixels[::5, ::3] = 255
    pixels[2::7, 1::4] = 0
    return pixels.astype(np.uint8)


def sweep_cases(count: int, seed: int) -> list[tuple[int, int, int, int]]:
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(count):
        h, w = (int(v) for v in rng.integers(1, 90, 2))
        new_h, new_w = (int(v) for v in rng.integers(1, 130, 2))
        if i % 5 == 0:
            new_h = h
        if i % 7 == 0:
            new_w = w
        cases.append((h, w, new_h, new_w))
    return cases


def check(rng: np.random.Generator, h: int, w: int, new_h: int, new_w: int, filter: str) -> None:
    pixels = textured(rng, h, w)
    crop_h, crop_w = int(rng.integers(1, new_h + 1)), int(rng.integers(1, new_w + 1))
    box = (int(rng.integers(0, new_h - crop_h + 1)), int(rng.integers(0, new_w - crop_w + 1)), crop_h, crop_w)
    for b in (box, (0, 0, new_h, new_w)):
        np.testing.assert_array_equal(fused(pixels, new_h, new_w, b, filter), pillow(pixels, new_h, new_w, b, filter),
                                      err_msg=f"{w}x{h} to {new_w}x{new_h}, crop {b}, {filter}")


@pytest.mark.parametrize("filter", sorted(FILTERS))
def test_equals_pillow_over_a_sweep_of_sizes(filter):
    rng = np.random.default_rng(1)
    for h, w, new_h, new_w in sweep_cases(150, seed=0):
        check(rng, h, w, new_h, new_w, filter)


@pytest.mark.slow
@pytest.mark.parametrize("filter", sorted(FILTERS))
def test_equals_pillow_over_a_long_sweep(filter):
    rng = np.random.default_rng(2)
    for h, w, new_h, new_w in sweep_cases(3000, seed=3):
        check(rng, h, w, new_h, new_w, filter)


@pytest.mark.parametrize("filter", sorted(FILTERS))
@pytest.mark.parametrize("h, w, new_h, new_w", [
    (1, 1, 1, 1), (1, 1, 7, 5), (5, 7, 1, 1), (1, 40, 9, 13), (40, 1, 13, 9), (1, 500, 256, 224),
    (500, 1, 224, 256), (2, 900, 256, 300), (900, 3, 300, 256), (224, 224, 224, 224), (224, 300, 224, 256),
    (300, 224, 256, 224), (3000, 40, 100, 40), (40, 3000, 40, 100), (30, 20, 256, 171), (611, 509, 256, 213),
    (255, 257, 256, 256), (400, 100, 97, 98), (2, 20000, 1, 3), (9000, 2, 2, 1),
])
def test_equals_pillow_on_edge_sizes(filter, h, w, new_h, new_w):
    check(np.random.default_rng(h * 7 + w), h, w, new_h, new_w, filter)


@pytest.mark.parametrize("filter", sorted(FILTERS))
def test_float_output_is_the_table_of_the_pixels_in_each_layout_and_order(filter):
    pixels = textured(np.random.default_rng(4), 61, 47)
    box = (3, 5, 40, 33)
    u8 = fused(pixels, 50, 70, box, filter)
    mean, std = (10.5, 100.25, 3.0), (2.0, 0.5, 64.0)
    table = _table(mean, std)
    for bgr in (False, True):
        ordered = u8[..., ::-1] if bgr else u8
        expected = (ordered.astype(np.float32) - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
        nhwc = fused(pixels, 50, 70, box, filter, table=table, bgr=bgr)
        nchw = fused(pixels, 50, 70, box, filter, table=table, bgr=bgr, nchw=True)
        assert nhwc.dtype == np.float32 and nhwc.shape == (40, 33, 3) and nchw.shape == (3, 40, 33)
        np.testing.assert_array_equal(nhwc, expected)
        np.testing.assert_array_equal(nchw, expected.transpose(2, 0, 1))
        np.testing.assert_array_equal(fused(pixels, 50, 70, box, filter, bgr=bgr, nchw=True),
                                      ordered.transpose(2, 0, 1))


def pillow_preprocess(image, preset, layout: str) -> np.ndarray:
    """The Pillow path: resize, centre crop, then the normalisation in numpy float32."""
    h_out, w_out = preset.output_size
    w, h = image.size
    if preset.resize == "stretch":
        new_h, new_w, top, left = h_out, w_out, 0, 0
    else:
        short = preset.resize_to
        new_w, new_h = (short, max(1, int(short * h / w))) if w <= h else (max(1, int(short * w / h)), short)
        top, left = int(round((new_h - h_out) / 2.0)), int(round((new_w - w_out) / 2.0))
    x = pillow(np.asarray(image), new_h, new_w, (top, left, h_out, w_out), preset.interpolation).astype(np.float32)
    x = x[..., ::-1] if preset.channels == "BGR" else x
    x = (x - np.asarray(preset.mean, np.float32)) / np.asarray(preset.std, np.float32)
    return x.transpose(2, 0, 1) if layout == "NCHW" else x


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preprocess_equals_the_pillow_path_on_photos(name):
    cat = skimage_data.chelsea()
    photos = [cat, np.ascontiguousarray(cat.transpose(1, 0, 2)), skimage_data.coffee(), skimage_data.astronaut(),
              skimage_data.rocket()[::3, ::2]]
    for pixels in photos:
        image = PIL_Image.fromarray(np.ascontiguousarray(pixels))
        for size in (224, (160, 192), 331):
            preset = PRESETS[name].at(size)
            for layout in ("NHWC", "NCHW"):
                np.testing.assert_array_equal(preprocess(pixels, preset, layout),
                                              pillow_preprocess(image, preset, layout))


def test_load_image_equals_preprocess_of_the_decoded_pixels(tmp_path):
    pixels = skimage_data.coffee()
    for mode, suffix in (("RGB", ".jpg"), ("L", ".png"), ("P", ".png"), ("RGBA", ".png")):
        path = tmp_path / f"photo_{mode}{suffix}"
        PIL_Image.fromarray(pixels).convert(mode).save(path)
        decoded = np.asarray(PIL_Image.open(path).convert("RGB"))
        for name in ("torchvision", "caffe"):
            np.testing.assert_array_equal(load_image(path, name, "NCHW"), preprocess(decoded, name, "NCHW"))


def test_non_contiguous_arrays_are_accepted_by_preprocess():
    pixels = skimage_data.chelsea()
    view = pixels[::2, ::-1]
    np.testing.assert_array_equal(preprocess(view), preprocess(np.ascontiguousarray(view)))


def test_an_image_too_thin_to_resize_is_an_image_error():
    with pytest.raises(ImageError, match="70000x1"):
        preprocess(np.zeros((1, 70000, 3), np.uint8))


def test_bad_arguments_are_errors_not_crashes():
    pixels = np.zeros((8, 9, 3), np.uint8)
    table = _table((0.0,) * 3, (1.0,) * 3)
    with pytest.raises(ValueError, match="dtype"):
        resize_crop(pixels.astype(np.float32), 4, 4, 0, 0, 4, 4, "bilinear")
    with pytest.raises(ValueError, match="dimensions"):
        resize_crop(np.zeros((8, 9), np.uint8), 4, 4, 0, 0, 4, 4, "bilinear")
    with pytest.raises(ValueError, match="contiguous"):
        resize_crop(pixels[:, ::2], 4, 4, 0, 0, 4, 4, "bilinear")
    with pytest.raises(TypeError):
        resize_crop(None, 4, 4, 0, 0, 4, 4, "bilinear")
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        resize_crop(np.zeros((8, 9, 4), np.uint8), 4, 4, 0, 0, 4, 4, "bilinear")
    with pytest.raises(ValueError, match="empty"):
        resize_crop(np.zeros((0, 9, 3), np.uint8), 4, 4, 0, 0, 4, 4, "bilinear")
    with pytest.raises(ValueError, match="empty"):
        resize_crop(pixels, 0, 4, 0, 0, 1, 1, "bilinear")
    for box in ((1, 0, 4, 4), (0, -1, 4, 4), (0, 0, 5, 4), (0, 2, 4, 3)):
        with pytest.raises(ValueError, match="leaves"):
            resize_crop(pixels, 4, 4, *box, "bilinear")
    with pytest.raises(ValueError, match="filter"):
        resize_crop(pixels, 4, 4, 0, 0, 4, 4, "lanczos")
    with pytest.raises(ValueError, match="table"):
        resize_crop(pixels, 4, 4, 0, 0, 4, 4, "bilinear", table=table[:2])
    with pytest.raises(ValueError, match="dtype"):
        resize_crop(pixels, 4, 4, 0, 0, 4, 4, "bilinear", table=table.astype(np.float64))
    with pytest.raises(ValueError, match="not supported"):
        resize_crop(pixels, 1 << 25, 4, 0, 0, 4, 4, "bilinear")


def test_out_receives_the_result_and_bad_outs_are_errors():
    pixels = textured(np.random.default_rng(3), 37, 53)
    table = _table((10.0, 20.0, 30.0), (2.0, 3.0, 4.0))
    want = resize_crop(pixels, 40, 30, 3, 2, 32, 24, "bilinear", table=table, nchw=True)
    batch = np.full((2, 3, 32, 24), np.nan, np.float32)
    assert resize_crop(pixels, 40, 30, 3, 2, 32, 24, "bilinear", table=table, nchw=True, out=batch[1]) is not None
    np.testing.assert_array_equal(batch[1], want)
    assert np.isnan(batch[0]).all()
    u8 = np.zeros((32, 24, 3), np.uint8)
    np.testing.assert_array_equal(resize_crop(pixels, 40, 30, 3, 2, 32, 24, "bilinear", out=u8), u8)
    readonly = np.zeros((3, 32, 24), np.float32)
    readonly.flags.writeable = False
    for bad in (np.zeros((32, 24, 3), np.float32), np.zeros((3, 32, 24), np.float64),
                np.zeros((3, 24, 32), np.float32).transpose(0, 2, 1), readonly, [0.0]):
        with pytest.raises(ValueError, match="out must be"):
            resize_crop(pixels, 40, 30, 3, 2, 32, 24, "bilinear", table=table, nchw=True, out=bad)
