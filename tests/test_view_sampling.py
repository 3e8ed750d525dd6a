"""Tests of ViewAugmenter: fixed views added in fit when the classes are small."""

import numpy as np
import pytest

from hybridclf import make_hybrid_pipeline
from hybridclf.utils.estimator_checks import image_sampler_checks
from hybridclf.view_sampling import VIEWS, ViewAugmenter, make_view


def _labels(n_per_class):
    return np.repeat(np.arange(len(n_per_class)), n_per_class)


@pytest.mark.parametrize("check", image_sampler_checks(),
                         ids=lambda c: c.__name__)
def test_sampler_api(check, real_images):
    check(ViewAugmenter(), real_images)


def test_views_added_below_the_threshold(real_images):
    y = _labels([3, len(real_images) - 3])
    sampler = ViewAugmenter(max_smallest_class=4)
    X_new, y_new = sampler.fit_resample(real_images, y)
    n = len(real_images)
    assert sampler.smallest_class_ == 3
    assert sampler.views_ == ("hflip", "rotate_left", "rotate_right")
    assert X_new.shape == (4 * n, *real_images.shape[1:])
    assert X_new.dtype == real_images.dtype
    np.testing.assert_array_equal(X_new[:n], real_images)
    np.testing.assert_array_equal(y_new, np.tile(y, 4))
    np.testing.assert_array_equal(sampler.sample_indices_, np.tile(np.arange(n), 4))
    # the second block is the mirror image of each input, in order
    np.testing.assert_array_equal(X_new[n:2 * n], real_images[:, :, ::-1])


def test_no_views_from_the_threshold_on(real_images):
    y = _labels([3, len(real_images) - 3])
    sampler = ViewAugmenter(max_smallest_class=3)
    X_new, y_new = sampler.fit_resample(real_images, y)
    assert sampler.views_ == ()
    np.testing.assert_array_equal(X_new, real_images)
    np.testing.assert_array_equal(y_new, y)
    always = ViewAugmenter(max_smallest_class=None, views=("vflip",))
    X_new, _ = always.fit_resample(real_images, y)
    np.testing.assert_array_equal(X_new[len(y):], real_images[:, ::-1])


def test_input_not_modified(real_images):
    before = real_images.copy()
    ViewAugmenter(views=VIEWS).fit_resample(real_images,
                                            np.arange(len(real_images)) % 2)
    np.testing.assert_array_equal(real_images, before)


def test_views_by_hand():
    image = np.zeros((6, 6), np.uint8)
    image[1, 0] = 200  # one bright pixel on the left edge
    assert make_view(image, "hflip")[1, 5] == 200
    assert make_view(image, "vflip")[4, 0] == 200
    flat = np.full((8, 8, 3), 77, np.uint8)
    for view in VIEWS:  # a flat image looks the same from every view
        np.testing.assert_array_equal(make_view(flat, view), flat)


def test_unknown_view_is_named():
    images = np.zeros((4, 8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="'views' parameter of ViewAugmenter.*"
                       "'mirror'"):
        ViewAugmenter(views=("mirror",)).fit_resample(images, [0, 0, 1, 1])


def test_not_images():
    with pytest.raises(ValueError, match="ViewAugmenter expects images"):
        ViewAugmenter().fit_resample(np.zeros((4, 8)), [0, 0, 1, 1])


def test_in_the_pipeline_predict_sees_originals(real_images):
    y = np.arange(len(real_images)) % 2
    pipe = make_hybrid_pipeline(features=["color"], sampler=ViewAugmenter())
    pipe.set_params(load="passthrough").fit(real_images, y)
    assert pipe["augment"].views_ == ("hflip", "rotate_left", "rotate_right")
    assert pipe.predict(real_images).shape == (len(real_images),)
