"""The fold-feature cache of train_model: SharedFeatures and fold_features."""

import numpy as np
import pytest

from hybridclf import ClassAwareAugmenter, load_image_folder, make_hybrid_pipeline
from hybridclf.features import ColorHistogram
from hybridclf.training._fold_features import fold_features
from hybridclf.training._shared_features import SharedFeatures


@pytest.fixture(scope="module")
def textures(texture_folder):
    paths, labels = load_image_folder(texture_folder)
    return np.asarray(paths, dtype=object), np.asarray(labels)


def test_shared_fixed_features_give_exactly_the_folds_of_the_pipeline(textures):
    paths, labels = textures
    pipe = make_hybrid_pipeline(features=["hog", "sift", "color"],
                                sampler=None).set_params(
        load__size=64, features__sift__extract__random_state=0,
        features__sift__extract__n_words=16)
    assert SharedFeatures.applies(pipe)
    assert sorted(SharedFeatures(pipe, paths, labels).fixed) == ["color", "hog"]
    train, test = np.arange(len(paths))[::2], np.arange(len(paths))[1::2]
    expected, blocks = fold_features(pipe, paths[train], labels[train],
                                      paths[test], labels[test])
    got, shared_blocks = SharedFeatures(pipe, paths, labels).fold(
        pipe, train, test, labels)
    assert shared_blocks == blocks
    train_x, train_y, test_x, test_y = got
    np.testing.assert_allclose(train_x, expected[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(test_x, expected[2], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(train_y, expected[1])
    np.testing.assert_array_equal(test_y, expected[3])
    # an augmenting sampler changes the images: no shortcut
    assert not SharedFeatures.applies(pipe.set_params(augment=ClassAwareAugmenter()))


def test_no_shortcut_for_blocks_that_all_learn_or_are_not_image_extractors():
    from sklearn.preprocessing import FunctionTransformer

    assert not SharedFeatures.applies(make_hybrid_pipeline(features=["sift"]))
    own = ("mine", FunctionTransformer(lambda X: X.reshape(len(X), -1)))
    assert not SharedFeatures.applies(make_hybrid_pipeline(features=[own, "hog"]))
    assert SharedFeatures.applies(
        make_hybrid_pipeline(features=[("colour", ColorHistogram())]))


def test_cached_features_spare_decoding_the_photos_a_view_sampler_skips(
        textures, tmp_path, monkeypatch):
    """With every feature in the cache, the folds decode no photo to decide
    that a ViewAugmenter adds no views (it decides from the labels), and
    the photos decoded for new features are not decoded again."""
    from hybridclf import ViewAugmenter
    from hybridclf.training import FeatureCache

    paths, labels = textures
    pipe = make_hybrid_pipeline(
        features=["color"], sampler=ViewAugmenter(max_smallest_class=2),
    ).set_params(load__size=32)
    cache = FeatureCache(tmp_path / "cache")
    SharedFeatures(pipe, paths[2:], labels[2:], cache=cache)  # fills the cache
    decoded = []
    load = SharedFeatures._load
    monkeypatch.setattr(SharedFeatures, "_load", lambda self, rows: (
        decoded.extend(np.asarray(rows).tolist()), load(self, rows))[1])
    shared = SharedFeatures(pipe, paths, labels, cache=cache)
    assert sorted(decoded) == [0, 1]  # the two photos the cache lacks
    train, test = np.arange(len(paths))[::2], np.arange(len(paths))[1::2]
    (train_x, train_y, _, _), _ = shared.fold(pipe, train, test, labels)
    assert len(train_x) == len(train) and sorted(decoded) == [0, 1]
    np.testing.assert_array_equal(shared.loaded([1, 0]),
                                  load(shared, np.array([1, 0])))
    assert sorted(decoded) == [0, 1]
    # a sampler that does add views needs every photo's pixels
    pipe.set_params(augment__max_smallest_class=None)
    (train_x, _, _, _), _ = SharedFeatures(pipe, paths, labels, cache=cache).fold(
        pipe, train, test, labels)
    assert len(train_x) > len(train)


def test_the_shared_cnn_features_show_a_progress_bar(textures, capsys):
    # hybridclf train computed the CNN features of every photo (10 of 39 s on
    # the demo's digits, minutes on thousands of photos) with nothing on the
    # screen; the block's own parameters stay as they were
    paths, labels = textures
    pipe = make_hybrid_pipeline(features=["cnn"], sampler=None, cascade=False)
    pipe.set_params(load__size=32, features__cnn__extract__batch_size=2,
                    features__cnn__extract__backbone="efficientnet_lite0",
                    features__cnn__extract__engine="torch")
    SharedFeatures(pipe, paths[:3], labels[:3], progress=True)
    assert "CNN features" in capsys.readouterr().err
    assert pipe.get_params()["features__cnn__extract__verbose"] is False
