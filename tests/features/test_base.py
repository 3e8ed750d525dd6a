"""Input handling shared by every feature extractor."""

import numpy as np
import pytest

from hybridclf.features import ColorHistogram, HOGFeatures, LBPFeatures, SIFTBoVW

EXTRACTORS = [HOGFeatures(), LBPFeatures(), ColorHistogram(),
              SIFTBoVW(n_words=8, random_state=0)]


@pytest.mark.parametrize("extractor", EXTRACTORS, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_images_in_unit_range_equal_uint8(extractor, dtype, real_images):
    as_float = real_images.astype(dtype) / 255
    expected = extractor.fit(real_images).transform(real_images)
    np.testing.assert_allclose(extractor.transform(as_float), expected, atol=1e-6)


@pytest.mark.parametrize("extractor", EXTRACTORS, ids=lambda e: type(e).__name__)
def test_greyscale_batch_equals_grey_rgb(extractor, real_images):
    grey = real_images[..., 1]
    expected = extractor.fit(np.repeat(grey[..., None], 3, axis=-1))
    expected = expected.transform(np.repeat(grey[..., None], 3, axis=-1))
    np.testing.assert_allclose(extractor.transform(grey), expected, atol=1e-6)


@pytest.mark.parametrize("extractor", EXTRACTORS, ids=lambda e: type(e).__name__)
def test_threads_give_the_same_features(extractor, real_images):
    one = extractor.set_params(n_jobs=1).fit(real_images).transform(real_images)
    two = extractor.set_params(n_jobs=2).transform(real_images)
    np.testing.assert_array_equal(one, two)


def test_paths_are_rejected_with_a_hint():
    with pytest.raises(TypeError, match="Put an ImageLoader before it"):
        HOGFeatures().fit(["a.jpg", "b.jpg"])


def test_a_list_of_images_of_several_sizes_names_the_fix():
    # found by the API audit: numpy's "inhomogeneous shape" error named
    # neither the extractor nor the fix
    images = [np.zeros((20, 20, 3), np.uint8), np.zeros((24, 24, 3), np.uint8)]
    with pytest.raises(ValueError, match=r"one shape.*\(24, 24, 3\).*ImageLoader"):
        HOGFeatures().fit(images)
    assert ColorHistogram().fit_transform(images[:1] * 2).shape == (2, 256)


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError, match=r"\(n_images, height, width, 3\)"):
        ColorHistogram().fit(np.zeros((2, 8, 8, 5), np.uint8))
    with pytest.raises(ValueError, match="at least 1 image"):
        ColorHistogram().fit(np.zeros((0, 8, 8, 3), np.uint8))


@pytest.mark.parametrize("extractor", EXTRACTORS, ids=lambda e: type(e).__name__)
def test_parts_cover_the_columns_of_transform(extractor, real_images):
    expected = extractor.fit(real_images).transform(real_images[:2])
    parts = extractor.transform_parts(real_images[:2])
    assert [columns.start for columns, _ in parts] == [0] + [
        columns.stop for columns, _ in parts[:-1]]
    assert parts[-1][0].stop == expected.shape[1]
    got = np.hstack([np.asarray(func(), dtype=np.float32) for _, func in parts])
    np.testing.assert_array_equal(got, expected)


class _HalvedHOG(HOGFeatures):
    def transform(self, X):
        return super().transform(X) / 2


def test_parts_follow_a_subclass_transform(real_images):
    extractor = _HalvedHOG().fit(real_images)
    (columns, func), = extractor.transform_parts(real_images[:1])
    np.testing.assert_array_equal(func(), extractor.transform(real_images[:1]))
    assert columns == slice(0, extractor.n_features_out_)
