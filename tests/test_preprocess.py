"""pyconv.preprocess: every preset against its library's transform on real photos (scikit-image's CC0 /
public-domain samples), within one pixel level (1/255 of the [0, 1] range). The references are written
here from the libraries' documentation on torch tensors: torchvision's resize of a uint8 tensor
(``interpolate(antialias=True)``, rounded back to uint8), run one axis at a time as Pillow resamples --
pyconv reproduces Pillow's resize (tests/test_resample.py), which is torchvision's path for PIL images
and Keras' ``load_img`` -- and,
for the bilinear presets, also both axes at once (torchvision's tensor path proper). Then sizes,
layouts, EXIF orientation, model inputs and errors naming the file."""
from __future__ import annotations

import io
import math

import numpy as np
import pytest

PIL_Image = pytest.importorskip("PIL.Image")
ImageOps = pytest.importorskip("PIL.ImageOps")
torch = pytest.importorskip("torch")
skimage_data = pytest.importorskip("skimage.data")

import pyconv.preprocess as preprocess_module  # noqa: E402
from pyconv import load  # noqa: E402
from pyconv.preprocess import (PRESETS, ImageError, Preset, load_image, model_input, model_preset,  # noqa: E402
                               preprocess)

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406])
IMAGENET_STD = np.array([0.229, 0.224, 0.225])


def photos() -> dict[str, np.ndarray]:
    cat = skimage_data.chelsea()
    return {"chelsea": cat, "chelsea_portrait": np.ascontiguousarray(cat.transpose(1, 0, 2)),
            "coffee": skimage_data.coffee(), "astronaut": skimage_data.astronaut()}


PHOTOS = photos()


def tensor_resize(pixels: np.ndarray, h: int, w: int, mode: str, separable: bool = True) -> np.ndarray:
    """torchvision.transforms.functional.resize on a uint8 (C, H, W) tensor, antialias=True: float
    interpolation, clamped and rounded back to uint8; returns (H, W, C) float64. ``separable``: one axis
    at a time, width first, rounded to uint8 in between, as Pillow's resampling does (what torchvision
    runs on PIL images); else both axes at once, torchvision's tensor path proper."""
    x = torch.from_numpy(pixels).permute(2, 0, 1)[None].to(torch.float32)
    for size in ([(x.shape[2], w), (h, w)] if separable else [(h, w)]):
        x = torch.nn.functional.interpolate(x, size=size, mode=mode, align_corners=False, antialias=True)
        x = x.clamp(0, 255).round()
    return x[0].permute(1, 2, 0).double().numpy()


def reference_torchvision(pixels: np.ndarray, resize: int, crop: int, mode: str, mean: np.ndarray,
                          std: np.ndarray) -> np.ndarray:
    """Resize(resize) (smaller edge to ``resize``, the other ``int(resize * long / short)``),
    CenterCrop(crop), ToTensor() (/255), Normalize(mean, std); (H, W, C)."""
    h, w = pixels.shape[:2]
    new_h, new_w = (int(resize * h / w), resize) if w <= h else (resize, int(resize * w / h))
    x = tensor_resize(pixels, new_h, new_w, mode)
    top, left = int(round((new_h - crop) / 2.0)), int(round((new_w - crop) / 2.0))
    x = x[top:top + crop, left:left + crop] / 255.0
    return (x - mean) / std


def reference_keras(pixels: np.ndarray, size: int) -> np.ndarray:
    """load_img(target_size=(size, size), interpolation="bilinear"), img_to_array, then
    keras.applications.mobilenet.preprocess_input: x / 127.5 - 1."""
    return tensor_resize(pixels, size, size, "bilinear") / 127.5 - 1.0


def reference_caffe(pixels: np.ndarray, size: int) -> np.ndarray:
    """Keras preprocess_input in "caffe" mode: RGB -> BGR, minus the ImageNet BGR mean, no scaling."""
    return tensor_resize(pixels, size, size, "bilinear")[..., ::-1] - np.array([103.939, 116.779, 123.68])


def reference(name: str, pixels: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The reference output and the scale of one pixel level (1/255 of the [0, 1] range) in it."""
    half = np.full(3, 0.5)
    if name == "torchvision":
        return reference_torchvision(pixels, math.floor(size / 0.875), size, "bilinear", IMAGENET_MEAN,
                                     IMAGENET_STD), 1 / 255 / IMAGENET_STD
    if name == "timm-efficientnet":     # timm transforms_imagenet_eval: scale_size = floor(size / crop_pct)
        return reference_torchvision(pixels, math.floor(size / 0.875), size, "bicubic", IMAGENET_MEAN,
                                     IMAGENET_STD), 1 / 255 / IMAGENET_STD
    if name == "tf-efficientnet-lite":  # timm tf_efficientnet_lite0.in1k: mean = std = 0.5, bicubic
        return reference_torchvision(pixels, math.floor(size / 0.875), size, "bicubic", half, half), 1 / 255 / half
    if name == "keras":
        return reference_keras(pixels, size), np.full(3, 1 / 127.5)
    assert name == "caffe"
    return reference_caffe(pixels, size), np.ones(3)


@pytest.mark.parametrize("photo", sorted(PHOTOS))
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_matches_its_library(name, photo):
    pixels = PHOTOS[photo]
    ours = preprocess(PIL_Image.fromarray(pixels), name)
    want, level = reference(name, pixels, 224)
    assert ours.shape == (224, 224, 3) and ours.dtype == np.float32
    error = np.abs(ours - want) / level       # in pixel levels
    assert error.max() <= 1.0 + 1e-3, (name, photo, error.max())
    assert error.mean() < 0.25, (name, photo, error.mean())   # Pillow's fixed-point rounding: off by one at most


@pytest.mark.parametrize("photo", ["chelsea", "coffee"])
def test_bilinear_presets_match_torchvisions_tensor_path(photo):
    """Both axes interpolated at once, as torchvision does on tensors: still within one level, though
    Pillow's rounding between its two passes shows in a tenth of the pixels. (Bicubic differs by up to
    5 levels that way, where Pillow clips the kernel's overshoot between passes.)"""
    pixels = PHOTOS[photo]
    image = PIL_Image.fromarray(pixels)
    x = tensor_resize(pixels, 224, 224, "bilinear", separable=False)
    assert np.abs(preprocess(image, "keras") - (x / 127.5 - 1)).max() <= 1 / 127.5 + 1e-5
    h, w = pixels.shape[:2]
    new_w = int(256 * w / h)
    x = tensor_resize(pixels, 256, new_w, "bilinear", separable=False)
    left = int(round((new_w - 224) / 2.0))
    x = (x[16:240, left:left + 224] / 255 - IMAGENET_MEAN) / IMAGENET_STD
    assert (np.abs(preprocess(image, "torchvision") - x) * IMAGENET_STD * 255).max() <= 1 + 1e-3


@pytest.mark.parametrize("name,size", [("torchvision", 240), ("timm-efficientnet", 260), ("keras", 192),
                                       ("caffe", 160)])
def test_presets_at_a_model_input_size(name, size):
    pixels = PHOTOS["chelsea"]
    ours = preprocess(PIL_Image.fromarray(pixels), name, size=size)
    want, level = reference(name, pixels, size)
    assert ours.shape == (size, size, 3)
    assert (np.abs(ours - want) / level).max() <= 1.0 + 1e-3
    if PRESETS[name].resize == "shorter":
        assert PRESETS[name].at(size).resize_to == math.floor(size / 0.875)


def test_torchvision_resizes_to_256_then_crops_224():
    assert PRESETS["torchvision"].resize_to == 256 and PRESETS["timm-efficientnet"].resize_to == 256


def test_nchw_is_nhwc_transposed_and_arrays_are_accepted():
    image = PIL_Image.fromarray(PHOTOS["coffee"])
    nhwc = preprocess(image, "keras")
    nchw = preprocess(image, "keras", layout="NCHW")
    assert nchw.shape == (3, 224, 224) and nchw.flags.c_contiguous
    np.testing.assert_array_equal(nchw, nhwc.transpose(2, 0, 1))
    np.testing.assert_array_equal(preprocess(PHOTOS["coffee"], "keras"), nhwc)


def test_custom_preset_and_modes_converted_to_rgb():
    grey = PIL_Image.fromarray(PHOTOS["chelsea"]).convert("L")
    unit = Preset("unit", resize="stretch", interpolation="bilinear", crop_fraction=1.0, mean=(0, 0, 0),
                  std=(255, 255, 255), size=32)
    x = preprocess(grey, unit)
    assert x.shape == (32, 32, 3) and 0 <= x.min() and x.max() <= 1
    np.testing.assert_array_equal(x[..., 0], x[..., 1])
    rgba = PIL_Image.fromarray(PHOTOS["chelsea"]).convert("RGBA")
    np.testing.assert_array_equal(preprocess(rgba), preprocess(PIL_Image.fromarray(PHOTOS["chelsea"])))


def test_load_image_decodes_files_and_streams(tmp_path):
    image = PIL_Image.fromarray(PHOTOS["chelsea"])
    image.save(tmp_path / "cat.png")
    want = preprocess(image)
    np.testing.assert_array_equal(load_image(tmp_path / "cat.png"), want)
    np.testing.assert_array_equal(load_image(str(tmp_path / "cat.png")), want)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    buffer.seek(0)
    np.testing.assert_array_equal(load_image(buffer), want)
    image.save(tmp_path / "cat.jpg", quality=95)
    jpeg = load_image(tmp_path / "cat.jpg", "keras", "NCHW", 128)
    assert jpeg.shape == (3, 128, 128)
    assert np.abs(jpeg - preprocess(image, "keras", "NCHW", 128)).mean() < 0.02   # JPEG loss only


def test_load_image_applies_exif_orientation(tmp_path):
    upright = PIL_Image.fromarray(PHOTOS["chelsea"])
    # Stored turned a quarter to the left, with the tag that says "rotate 90 degrees clockwise to view".
    stored = upright.transpose(PIL_Image.Transpose.ROTATE_90)
    exif = PIL_Image.Exif()
    exif[0x0112] = 6
    stored.save(tmp_path / "turned.jpg", exif=exif, quality=98)
    upright.save(tmp_path / "upright.jpg", quality=98)
    turned = load_image(tmp_path / "turned.jpg", "keras")
    plain = load_image(tmp_path / "upright.jpg", "keras")
    assert np.abs(turned - plain).mean() < 0.03


JPEG_VARIANTS = {
    "4:2:0": {"subsampling": 2}, "4:2:2": {"subsampling": 1}, "4:4:4": {"subsampling": 0},
    "progressive": {"progressive": True}, "optimized q60": {"optimize": True, "quality": 60},
}


@pytest.mark.parametrize("variant", sorted(JPEG_VARIANTS))
@pytest.mark.parametrize("mode", ["RGB", "L", "CMYK"])
def test_jpeg_pixels_are_pillows_whichever_decoder_runs(tmp_path, variant, mode):
    # simplejpeg, where installed, decodes RGB and greyscale JPEGs; Pillow the rest. Either way the pixels
    # are exactly Pillow's.
    for name in ("chelsea_portrait", "coffee"):
        path = tmp_path / f"{name}.jpg"
        PIL_Image.fromarray(PHOTOS[name]).convert(mode).save(path, **JPEG_VARIANTS[variant])
        decoded = np.asarray(PIL_Image.open(path).convert("RGB"))
        for preset in ("torchvision", "caffe"):
            np.testing.assert_array_equal(load_image(path, preset, "NCHW"), preprocess(decoded, preset, "NCHW"))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientations_turn_the_pixels_as_pillow_does(tmp_path, orientation):
    exif = PIL_Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"turned_{orientation}.jpg"
    PIL_Image.fromarray(PHOTOS["astronaut"][:300:2, :, :]).save(path, exif=exif)   # 150 x 512: not square
    with PIL_Image.open(path) as image:
        upright = np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
    # "stretch" presets keep every pixel's place in view: a wrong turn changes the output.
    np.testing.assert_array_equal(load_image(path, "keras", size=(100, 60)),
                                  preprocess(upright, "keras", size=(100, 60)))


def test_simplejpeg_decodes_jpegs_when_installed(tmp_path, monkeypatch):
    simplejpeg = pytest.importorskip("simplejpeg", reason="simplejpeg not installed (pyconv[image] brings it)")
    calls = []

    def counting(*args, **kwargs):
        calls.append(kwargs)
        return simplejpeg.decode_jpeg(*args, **kwargs)

    monkeypatch.setattr(preprocess_module, "_jpeg_decoder", lambda: counting)
    PIL_Image.fromarray(PHOTOS["coffee"]).save(tmp_path / "coffee.jpg")
    PIL_Image.fromarray(PHOTOS["coffee"]).save(tmp_path / "coffee.png")
    PIL_Image.fromarray(PHOTOS["coffee"]).convert("CMYK").save(tmp_path / "cmyk.jpg")
    load_image(tmp_path / "coffee.png")
    load_image(tmp_path / "cmyk.jpg")
    assert calls == []
    load_image(tmp_path / "coffee.jpg")
    # Pillow decodes with the accurate DCT and smooth upsampling: so must simplejpeg, for the same pixels.
    assert calls == [{"colorspace": "RGB", "fastdct": False, "fastupsample": False, "min_width": 0,
                      "min_height": 0}]
    data = (tmp_path / "coffee.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[:len(data) // 2])
    with pytest.raises(ImageError, match="cannot decode") as info:
        load_image(tmp_path / "cut.jpg")
    assert info.value.path == str(tmp_path / "cut.jpg")


@pytest.mark.parametrize("orientation", [1, 6])
def test_draft_decodes_large_jpegs_smaller_and_close(tmp_path, orientation, monkeypatch):
    exif = PIL_Image.Exif()
    exif[0x0112] = orientation
    big = tmp_path / "big.jpg"
    PIL_Image.fromarray(PHOTOS["astronaut"]).resize((1700, 1300), PIL_Image.BICUBIC).save(big, exif=exif)
    shapes = []
    decoder = preprocess_module._jpeg_decoder()
    if decoder is not None:
        def recording(*args, **kwargs):
            pixels = decoder(*args, **kwargs)
            shapes.append(pixels.shape[:2])
            return pixels

        monkeypatch.setattr(preprocess_module, "_jpeg_decoder", lambda: recording)
    keras_level, torchvision_level = np.full(3, 1 / 127.5), 1 / 255 / IMAGENET_STD
    for preset, factor, level in (("torchvision", 4, torchvision_level), ("keras", 4, keras_level),
                                  (PRESETS["keras"].at((600, 400)), 2, keras_level)):
        exact = load_image(big, preset)
        draft = load_image(big, preset, draft=True)
        assert draft.shape == exact.shape
        levels = np.abs(draft - exact) / level
        assert levels.mean() < 1.5 and levels.max() <= 40, (preset, levels.mean(), levels.max())
        if shapes:   # simplejpeg decoded it, at the factor Pillow's draft picks
            assert shapes[-1] == (-(-1300 // factor), -(-1700 // factor))
        # Pillow's own draft gives the same pixels.
        with monkeypatch.context() as patched:
            patched.setattr(preprocess_module, "_jpeg_decoder", lambda: None)
            np.testing.assert_array_equal(load_image(big, preset, draft=True), draft)


def test_draft_leaves_small_jpegs_and_other_files_exact(tmp_path):
    # 451x300: halving it would leave the shorter side under 256.
    PIL_Image.fromarray(PHOTOS["chelsea"]).save(tmp_path / "cat.jpg")
    PIL_Image.fromarray(PHOTOS["astronaut"]).resize((1700, 1300)).save(tmp_path / "big.png")
    for path in (tmp_path / "cat.jpg", tmp_path / "big.png"):
        np.testing.assert_array_equal(load_image(path, draft=True), load_image(path))


def test_load_image_writes_into_a_batch_row(tmp_path):
    PIL_Image.fromarray(PHOTOS["coffee"]).save(tmp_path / "coffee.jpg")
    batch = np.zeros((3, 3, 160, 160), np.float32)
    row = load_image(tmp_path / "coffee.jpg", "caffe", "NCHW", 160, out=batch[2])
    assert np.shares_memory(row, batch)
    np.testing.assert_array_equal(batch[2], load_image(tmp_path / "coffee.jpg", "caffe", "NCHW", 160))
    assert not batch[:2].any()
    with pytest.raises(ValueError, match=r"out: expected .* float32 array of shape \(160, 160, 3\)"):
        load_image(tmp_path / "coffee.jpg", "caffe", "NHWC", 160, out=batch[0])
    with pytest.raises(ValueError, match="out: expected"):
        preprocess(PHOTOS["coffee"], out=np.zeros((224, 224, 3), np.float64))


@pytest.mark.parametrize("content,words", [
    (None, "no such file"),
    (b"definitely not an image", "not an image file"),
    ("truncated", "cannot decode"),
])
def test_unreadable_files_name_the_path(tmp_path, content, words):
    path = tmp_path / "bad.png"
    if content == "truncated":
        buffer = io.BytesIO()
        PIL_Image.fromarray(PHOTOS["chelsea"]).save(buffer, format="PNG")
        path.write_bytes(buffer.getvalue()[:2000])
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(ImageError, match=words) as info:
        load_image(path)
    assert isinstance(info.value, ValueError) and str(path) in str(info.value) and info.value.path == str(path)


def test_bad_arguments_are_clear_errors():
    image = PIL_Image.fromarray(PHOTOS["chelsea"])
    with pytest.raises(ValueError, match="unknown preprocessing preset 'pytorch'.*torchvision"):
        preprocess(image, "pytorch")
    with pytest.raises(ValueError, match="layout"):
        preprocess(image, layout="HWC")
    with pytest.raises(ValueError, match="size"):
        preprocess(image, size=0)
    with pytest.raises(ImageError, match="uint8"):
        preprocess(np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="interpolation"):
        Preset("x", interpolation="lanczos")
    with pytest.raises(ValueError, match="crop_fraction"):
        Preset("x", crop_fraction=1.5)


def toy(layout: str, h: int = 40, w: int = 40, c: int = 3, metadata: dict | None = None) -> dict:
    config = {"format": "pyconv-model", "version": 1, "name": "toy",
              "layers": [{"name": "image", "type": "input", "shape": [h, w, c], "layout": layout},
                         {"name": "gap", "type": "global_avg_pool", "inputs": ["image"]}],
              "outputs": ["gap"]}
    if metadata is not None:
        config["metadata"] = metadata
    return config


def test_model_input_gives_layout_and_size():
    assert model_input(load(toy("NHWC"))) == ("NHWC", 40)
    model = load(toy("NCHW", 64, 64, metadata={"preprocess": "caffe"}))
    assert model_input(model) == ("NCHW", 64) and model_preset(model) == "caffe"
    x = preprocess(PIL_Image.fromarray(PHOTOS["chelsea"]), model_preset(model), *model_input(model))
    assert model.run(x[None]).shape == (1, 3)
    assert model_preset(load(toy("NHWC"))) is None
    with pytest.raises(ImageError, match="not an RGB image"):
        model_input(load(toy("NHWC", c=1)))
    assert model_input(load(toy("NHWC", 40, 30))) == ("NHWC", (40, 30))


@pytest.mark.parametrize("name", ["keras", "torchvision"])
def test_non_square_sizes(name):
    """(H, W): stretched to it, or the shorter side to floor(max(H, W) / 0.875) and a centre crop."""
    pixels = PHOTOS["chelsea"]
    ours = preprocess(PIL_Image.fromarray(pixels), name, size=(40, 30))
    assert ours.shape == (40, 30, 3)
    if name == "keras":
        want = tensor_resize(pixels, 40, 30, "bilinear") / 127.5 - 1
        assert np.abs(ours - want).max() <= 1 / 127.5 + 1e-5
    else:
        resized = tensor_resize(pixels, 45, int(45 * 451 / 300), "bilinear")   # floor(40 / 0.875) = 45
        left = int(round((int(45 * 451 / 300) - 30) / 2.0))
        want = (resized[2:42, left:left + 30] / 255 - IMAGENET_MEAN) / IMAGENET_STD
        assert (np.abs(ours - want) * IMAGENET_STD * 255).max() <= 1 + 1e-3
