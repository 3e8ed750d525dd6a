"""HOGFeatures."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hybridclf.features import HOGFeatures

from ..strategies import image_batches


def _expected_length(h, w, cell, block, orientations):
    cells = (h // cell, w // cell)
    blocks = (cells[0] - block + 1) * (cells[1] - block + 1)
    return blocks * block * block * orientations


@settings(max_examples=30, deadline=None)
@given(images=image_batches(min_side=16), cell=st.sampled_from([4, 8]),
       block=st.sampled_from([1, 2]), orientations=st.integers(4, 12))
def test_length_matches_formula_for_any_size(images, cell, block, orientations):
    hog = HOGFeatures(image_size=None, pixels_per_cell=cell, cells_per_block=block,
                      orientations=orientations)
    out = hog.fit_transform(images)
    h, w = images.shape[1:3]
    assert out.shape == (len(images), _expected_length(h, w, cell, block,
                                                       orientations))
    assert hog.n_features_out_ == out.shape[1]
    assert np.isfinite(out).all() and (out >= 0).all()
    # L2-Hys: every block's vector has norm at most 1
    norms = np.linalg.norm(out.reshape(len(images), -1, block * block * orientations),
                           axis=-1)
    assert (norms <= 1 + 1e-4).all()


def test_image_size_fixes_the_length_for_any_input_size(real_images):
    small = HOGFeatures(image_size=64).fit_transform(real_images[:, :40, :50])
    large = HOGFeatures(image_size=64).fit_transform(real_images)
    assert small.shape[1] == large.shape[1] == _expected_length(64, 64, 16, 2, 9)


def test_flat_image_has_no_gradient():
    out = HOGFeatures(image_size=None).fit_transform(np.full((1, 64, 64, 3), 128,
                                                             np.uint8))
    assert (out == 0).all()


@pytest.mark.parametrize("axis, expected_bins", [(1, {0, 8}), (0, {4})])
def test_edges_vote_for_their_gradient_orientation(axis, expected_bins):
    # stripes across `axis`: gradient along it, 0 degrees (x) or 90 degrees (y)
    ramp = ((np.arange(64) // 8) % 2 * 255).astype(np.uint8)
    image = np.broadcast_to(ramp[None, :] if axis == 1 else ramp[:, None], (64, 64))
    images = np.repeat(np.ascontiguousarray(image)[None, ..., None], 3, axis=-1)
    out = HOGFeatures(image_size=None, pixels_per_cell=8,
                      transform_sqrt=False).fit_transform(images)
    per_bin = out.reshape(-1, 9).sum(axis=0)
    assert int(per_bin.argmax()) in expected_bins


def test_too_small_image_names_the_fix():
    with pytest.raises(ValueError, match="Use a larger 'image_size'"):
        HOGFeatures(image_size=16).fit(np.zeros((1, 64, 64, 3), np.uint8))


@pytest.mark.parametrize("params", [
    {"cells_per_block": (0, 2)}, {"cells_per_block": (1, 2, 3)},
    {"pixels_per_cell": (0, 8)}, {"pixels_per_cell": (8,)},
    {"pixels_per_cell": (8.0, 8.0)},
])
def test_bad_cell_and_block_pairs_are_explained(params):
    # found by the API audit: cells_per_block=(0, 2) crashed the Python process
    # inside OpenCV (segmentation fault, so a grid search died with it); other
    # bad pairs raised ZeroDivisionError, IndexError or a broadcast error
    name = next(iter(params))
    with pytest.raises(ValueError, match=f"The '{name}' parameter of HOGFeatures"):
        HOGFeatures(**params).fit(np.zeros((2, 64, 64, 3), np.uint8))
