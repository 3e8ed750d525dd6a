"""SIFTBoVW."""

import numpy as np
import pytest

from hybridclf.features import SIFTBoVW


def test_codebook_and_normalised_histograms(real_images):
    bovw = SIFTBoVW(n_words=12, random_state=0).fit(real_images)
    assert bovw.codebook_.shape == (12, 128)
    out = bovw.transform(real_images)
    assert out.shape == (len(real_images), 12) and (out >= 0).all()
    np.testing.assert_allclose(out.sum(axis=1), 1, rtol=1e-5)
    # 64x64 images, dense grid every 8 pixels: 64 descriptors each
    np.testing.assert_allclose(out * 64, np.round(out * 64), atol=1e-4)


def test_root_sift_descriptors_are_unit_l2(real_images):
    bovw = SIFTBoVW(n_words=4, random_state=0)
    import cv2

    desc = bovw._describe(cv2.SIFT_create(), real_images[0])
    np.testing.assert_allclose(np.linalg.norm(desc, axis=1), 1, rtol=1e-3)


@pytest.mark.parametrize("descriptor, n_dims", [("sift", 128), ("orb", 256)])
def test_detected_keypoints(real_images, descriptor, n_dims):
    bovw = SIFTBoVW(n_words=8, descriptor=descriptor, keypoints="detect",
                    random_state=0)
    big = np.repeat(np.repeat(real_images, 3, axis=1), 3, axis=2)  # 192 x 192
    out = bovw.fit_transform(big)
    assert bovw.codebook_.shape == (8, n_dims)
    sums = out.sum(axis=1)
    assert ((np.abs(sums - 1) < 1e-5) | (sums == 0)).all()


def test_image_without_keypoints_gives_zeros(real_images):
    bovw = SIFTBoVW(n_words=8, keypoints="detect", random_state=0).fit(
        np.repeat(np.repeat(real_images, 2, axis=1), 2, axis=2))
    flat = np.full((1, 128, 128, 3), 30, np.uint8)
    assert (bovw.transform(flat) == 0).all()


def test_different_seeds_give_different_codebooks(real_images):
    a = SIFTBoVW(n_words=8, random_state=0).fit(real_images).codebook_
    b = SIFTBoVW(n_words=8, random_state=1).fit(real_images).codebook_
    assert not np.allclose(a, b)


def test_too_few_descriptors_names_the_fix():
    flat = np.full((2, 32, 32, 3), 30, np.uint8)
    with pytest.raises(ValueError, match="fewer than n_words=256"):
        SIFTBoVW(keypoints="detect").fit(flat)


def test_images_smaller_than_the_dense_grid_are_explained():
    # found by the API audit: 2x2 images (no grid point) made OpenCV's SIFT raise
    # "vector::_M_default_append" instead of the error that names the fix
    tiny = np.random.default_rng(0).integers(0, 256, (3, 2, 2, 3), np.uint8)
    with pytest.raises(ValueError, match="found 0 local descriptors.*dense_step"):
        SIFTBoVW(n_words=2).fit(tiny)
