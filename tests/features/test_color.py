"""ColorHistogram."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hybridclf.features import ColorHistogram

from ..strategies import image_batches


@settings(max_examples=30, deadline=None)
@given(images=image_batches(min_side=1, max_side=40),
       space=st.sampled_from(["hsv", "lab", "rgb"]),
       bins=st.tuples(st.integers(1, 9), st.integers(1, 9), st.integers(1, 9)))
def test_histogram_is_normalised(images, space, bins):
    l1 = ColorHistogram(color_space=space, bins=bins, normalize="l1")
    out = l1.fit_transform(images)
    assert out.shape == (len(images), bins[0] * bins[1] * bins[2])
    assert (out >= 0).all()
    np.testing.assert_allclose(out.sum(axis=1), 1, rtol=1e-5)
    hellinger = ColorHistogram(color_space=space, bins=bins).fit_transform(images)
    np.testing.assert_allclose(hellinger, np.sqrt(out), rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(hellinger, axis=1), 1, rtol=1e-5)


def test_pure_red_falls_in_one_hand_computed_bin():
    red = np.zeros((1, 6, 6, 3), np.uint8)
    red[..., 0] = 255
    hist = ColorHistogram(bins=(16, 4, 4)).fit_transform(red)[0]
    # hue 0 -> h bin 0; saturation 255 -> s bin 3; value 255 -> v bin 3
    assert hist[0 * 16 + 3 * 4 + 3] == 1.0 and hist.sum() == 1.0


def test_half_black_half_white_in_rgb():
    img = np.zeros((1, 4, 4, 3), np.uint8)
    img[:, :2] = 255
    hist = ColorHistogram(color_space="rgb", bins=2, normalize="l1").fit_transform(
        img)[0]
    np.testing.assert_array_equal(hist, [0.5, 0, 0, 0, 0, 0, 0, 0.5])


def test_feature_names_say_the_bin():
    hist = ColorHistogram(bins=(2, 3, 4)).fit(np.zeros((1, 4, 4, 3), np.uint8))
    names = hist.get_feature_names_out()
    assert len(names) == 24 and names[0] == "hsv_h0_s0_v0" and names[-1] == (
        "hsv_h1_s2_v3")


def test_bad_bins_use_the_template():
    with pytest.raises(ValueError, match="The 'bins' parameter of ColorHistogram"):
        ColorHistogram(bins=(4, 4)).fit(np.zeros((1, 4, 4, 3), np.uint8))
