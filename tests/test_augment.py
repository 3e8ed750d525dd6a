"""hybridclf.augment: each technique, the random combinations, their checks."""

import numpy as np
import pytest
import skimage.data
from hypothesis import given, settings
from hypothesis import strategies as st

from hybridclf import augment
from hybridclf.augment import (
    DEFAULT_TECHNIQUES,
    apply_geometry,
    apply_photometry,
    brightness_contrast,
    check_techniques,
    draw_params,
    flip,
    gamma,
    gaussian_blur,
    gaussian_noise,
    hue_saturation,
    jpeg,
    perspective,
    random_augment,
    rotate,
    scale,
    translate,
)

from .strategies import image_batches

RGB = skimage.data.chelsea()[50:114, 100:164].copy()
GRAY = skimage.data.camera()[100:164, 100:164].copy()

# each technique with a value that changes the image
TECHNIQUES = {
    "rotate": lambda im, rng: rotate(im, 12.0),
    "flip": lambda im, rng: flip(im, vertical=True),
    "scale": lambda im, rng: scale(im, 1.1),
    "translate": lambda im, rng: translate(im, 0.05, -0.05),
    "perspective": lambda im, rng: perspective(im, np.full((4, 2), 0.03)),
    "brightness_contrast": lambda im, rng: brightness_contrast(im, 0.1, 1.2),
    "gamma": lambda im, rng: gamma(im, 1.2),
    "hue_saturation": lambda im, rng: hue_saturation(im, 10.0, 0.8),
    "gaussian_blur": lambda im, rng: gaussian_blur(im, 1.0),
    "gaussian_noise": lambda im, rng: gaussian_noise(im, 5.0, rng),
    "jpeg": lambda im, rng: jpeg(im, 70),
    "random_augment": lambda im, rng: random_augment(im, rng),
}


@pytest.mark.parametrize("image", [RGB, GRAY], ids=["rgb", "gray"])
@pytest.mark.parametrize("name", list(TECHNIQUES))
def test_keeps_shape_dtype_and_input(name, image):
    before = image.copy()
    out = TECHNIQUES[name](image, np.random.default_rng(0))
    assert out.shape == image.shape and out.dtype == np.uint8
    assert out is not image and not np.shares_memory(out, image)
    np.testing.assert_array_equal(image, before)


def test_values_worked_out_by_hand():
    image = np.arange(9, dtype=np.uint8).reshape(3, 3)
    np.testing.assert_array_equal(rotate(image, 90), [[2, 5, 8], [1, 4, 7], [0, 3, 6]])
    np.testing.assert_array_equal(rotate(image, 0), image)
    np.testing.assert_array_equal(flip(image), image[:, ::-1])
    np.testing.assert_array_equal(flip(image, horizontal=False, vertical=True),
                                  image[::-1])
    np.testing.assert_array_equal(scale(image, 1.0), image)
    np.testing.assert_array_equal(translate(image, 0.0, 0.0), image)
    np.testing.assert_array_equal(perspective(image, np.zeros((4, 2))), image)
    # (100 - 150) * 0.5 + 150 = 125, (200 - 150) * 0.5 + 150 = 175
    np.testing.assert_array_equal(
        brightness_contrast(np.array([[100, 200]], np.uint8), contrast=0.5),
        [[125, 175]])
    np.testing.assert_array_equal(
        brightness_contrast(np.array([[10, 250]], np.uint8), brightness=0.1),
        [[36, 255]])  # + 25.5, rounded and clipped
    np.testing.assert_array_equal(gamma(np.array([[0, 64, 255]], np.uint8), 0.5),
                                  [[0, 128, 255]])
    np.testing.assert_array_equal(gaussian_blur(image, 0), image)


def test_flips_are_exact_and_undo_themselves():
    np.testing.assert_array_equal(flip(flip(RGB)), RGB)
    twice = apply_geometry(apply_geometry(RGB, {"hflip": True}), {"hflip": True})
    np.testing.assert_array_equal(twice, RGB)


def test_colour_changes():
    grey = hue_saturation(RGB, saturation=0.0)
    # no saturation: the three channels agree (within HSV rounding)
    assert np.abs(grey.astype(int) - grey[..., :1]).max() <= 1
    # a hue turn moves colours but keeps the value (brightness) channel
    turned = hue_saturation(RGB, hue=90.0)
    assert np.abs(turned.astype(int) - RGB).mean() > 5
    np.testing.assert_allclose(turned.max(axis=2), RGB.max(axis=2), atol=2)
    np.testing.assert_array_equal(hue_saturation(GRAY, hue=90.0), GRAY)


def test_noise_statistics_and_seed():
    flat = np.full((128, 128, 3), 128, np.uint8)
    noisy = gaussian_noise(flat, 6.0, np.random.default_rng(0))
    diff = noisy.astype(float) - 128
    assert abs(diff.mean()) < 0.1 and abs(diff.std() - 6.0) < 0.1
    np.testing.assert_array_equal(noisy, gaussian_noise(flat, 6.0, 0))
    assert not np.array_equal(noisy, gaussian_noise(flat, 6.0, 1))


@pytest.mark.parametrize("shape", [(7, 9, 3), (10, 11), (6, 8, 3), (1, 5)])
def test_noise_made_in_bands_is_the_noise_of_one_draw(shape, monkeypatch):
    # a seed gives the images it gave when the noise was drawn in one call:
    # bands of an odd number of values would shift the 16-bit draws
    from hybridclf.augment import _photometry

    monkeypatch.setattr(_photometry, "_NOISE_CHUNK", 50)  # many bands
    image = np.random.default_rng(3).integers(0, 256, shape, dtype=np.uint8)
    rng, reference_rng = np.random.default_rng(7), np.random.default_rng(7)
    noisy = gaussian_noise(image, 6.0, rng)
    draws = reference_rng.integers(0, 65536, size=shape, dtype=np.uint16)
    reference = _photometry._normal_quantiles()[draws] * np.float32(6.0) + image
    reference = np.rint(np.clip(reference, 0, 255)).astype(np.uint8)
    np.testing.assert_array_equal(noisy, reference)
    # and the draws after it (the next technique's) are unchanged too
    assert rng.integers(0, 2**31, 4).tolist() == (
        reference_rng.integers(0, 2**31, 4).tolist())


def test_noise_on_a_large_photo_needs_little_memory_beyond_its_output():
    # noise on a 48-megapixel photo held 2 GB at once (16-bit draws, their
    # int64 indices and the float32 noise of every value), now a band's worth
    import tracemalloc

    image = np.full((2400, 3200, 3), 128, np.uint8)  # 23 MB
    gaussian_noise(image[:8, :8], 5.0, 0)  # the quantile table, made once
    tracemalloc.start()
    try:
        noisy = gaussian_noise(image, 5.0, 0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < noisy.nbytes + 24_000_000  # was 14 times the image


def test_blur_and_jpeg_lose_detail_gradually():
    detail = np.abs(np.diff(GRAY.astype(float), axis=1)).mean()
    assert np.abs(np.diff(gaussian_blur(GRAY, 1.5).astype(float), axis=1)).mean() < (
        0.7 * detail)
    errors = [np.abs(jpeg(RGB, q).astype(float) - RGB).mean() for q in (95, 60, 10)]
    assert 0 < errors[0] < errors[1] < errors[2]


def test_draw_params_probabilities_and_determinism():
    assert draw_params(0, {n: 0.0 for n in DEFAULT_TECHNIQUES}) == {}
    only_rotate = {n: 0.0 for n in DEFAULT_TECHNIQUES} | {"rotate": (1.0, (5, 5))}
    assert draw_params(0, only_rotate) == {"rotate": 5.0}
    for seed in range(200):
        params = draw_params(seed)
        assert params, "the default policy must always change the image"
        assert set(params) <= set(DEFAULT_TECHNIQUES)
        assert "vflip" not in params  # off by default
    a, b = draw_params(np.random.default_rng(3)), draw_params(np.random.default_rng(3))
    assert a.keys() == b.keys()
    assert isinstance(draw_params(0, {"jpeg": (1.0, (60, 95))})["jpeg"], int)


def test_random_augment_is_deterministic_for_a_seed():
    a = random_augment(RGB, np.random.default_rng(7))
    np.testing.assert_array_equal(a, random_augment(RGB, np.random.default_rng(7)))
    assert not np.array_equal(a, random_augment(RGB, np.random.default_rng(8)))
    params = draw_params(np.random.default_rng(7))
    geo = apply_geometry(RGB, params)
    assert geo.shape == RGB.shape
    assert apply_photometry(geo, {}, 0) is not geo


@pytest.mark.parametrize(
    "techniques, match",
    [
        ({"twist": 0.5}, "unknown technique 'twist'. Known techniques: \\['blur'"),
        ({"rotate": 1.5}, "probability of technique 'rotate' must be a float in"),
        ({"rotate": (0.5, (10, -10))}, "low <= high"),
        ({"jpeg": (0.5, (0, 50))}, "1 <= low <= high <= 100"),
        ({"hflip": (0.5, (0, 1))}, "has no range"),
        ({"blur": "often"}, "must be a probability or a"),
    ],
)
def test_bad_techniques_are_explained(techniques, match):
    with pytest.raises(ValueError, match=match):
        check_techniques(techniques)


def test_check_techniques_merges_and_rejects_non_dict():
    merged = check_techniques({"jpeg": 0.0, "rotate": (0.8, [-5, 5])})
    assert merged["jpeg"] == (0.0, DEFAULT_TECHNIQUES["jpeg"][1])
    assert merged["rotate"] == (0.8, (-5.0, 5.0))
    assert merged["hflip"] == DEFAULT_TECHNIQUES["hflip"]
    with pytest.raises(TypeError, match="must be a dict"):
        check_techniques([("rotate", 0.5)])


@pytest.mark.parametrize(
    "image, error, match",
    [
        (RGB.astype(np.float32), TypeError, "dtype uint8; got float32"),
        (np.zeros((8, 8, 4), np.uint8), ValueError, "got shape \\(8, 8, 4\\)"),
        (RGB.tolist(), TypeError, "numpy array"),
    ],
)
def test_bad_images_are_explained(image, error, match):
    with pytest.raises(error, match=match):
        augment.rotate(image, 10)


@settings(max_examples=25, deadline=None)
@given(batch=image_batches(min_side=4, max_side=48, max_images=1),
       seed=st.integers(0, 2**16), gray=st.booleans())
def test_random_augment_keeps_shape_dtype_and_input(batch, seed, gray):
    image = batch[0, ..., 0].copy() if gray else batch[0]
    before = image.copy()
    out = random_augment(image, np.random.default_rng(seed))
    assert out.shape == image.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(image, before)


def test_random_flip_crop_of_tensor_batches_is_seeded_and_keeps_shape():
    torch = pytest.importorskip("torch")
    from hybridclf.augment._tensor import random_flip_crop

    batch = torch.arange(2 * 3 * 16 * 16, dtype=torch.float32).reshape(2, 3, 16, 16)
    before = batch.clone()
    runs = [random_flip_crop(batch, torch.Generator().manual_seed(0), torch)
            for _ in range(2)]
    assert runs[0].shape == batch.shape
    torch.testing.assert_close(runs[0], runs[1])
    torch.testing.assert_close(batch, before)
    # a crop resized back stays within the image's range of values
    assert runs[0].min() >= batch.min() and runs[0].max() <= batch.max()
