"""Tests of ViewAugmenter: fixed views added in fit when the classes are small."""

import numpy as np
import pytest

from hybridclf import make_hybrid_pipeline
from hybridclf.classifiers import RidgeSoftmaxClassifier
from hybridclf.utils.estimator_checks import image_sampler_checks
from hybridclf.view_sampling import (
    DEFAULT_VIEWS,
    OBJECT_VIEWS,
    VIEWS,
    ViewAugmenter,
    make_view,
)


def _labels(n_per_class):
    return np.repeat(np.arange(len(n_per_class)), n_per_class)


@pytest.mark.parametrize("check", image_sampler_checks(),
                         ids=lambda c: c.__name__)
def test_sampler_api(check, real_images):
    check(ViewAugmenter(), real_images)


def test_views_added_below_the_threshold(real_images):
    y = _labels([3, len(real_images) - 3])
    sampler = ViewAugmenter(views=OBJECT_VIEWS[:3], max_smallest_class=4)
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
    for view in set(VIEWS) - {"darken"}:  # a flat image looks the same
        np.testing.assert_array_equal(make_view(flat, view), flat)
    assert make_view(flat, "darken").max() < 77
    red = np.zeros((4, 4, 3), np.uint8)
    red[..., 0] = 200
    turned = make_view(red, "hue_turn")  # red becomes cyan
    assert turned[0, 0, 0] < 10 and turned[0, 0, 1] > 190 and turned[0, 0, 2] > 190
    ring = np.zeros((32, 32), np.uint8)
    ring[8:24, 8:24] = 255  # a square in the middle looks smaller zoomed out
    assert make_view(ring, "zoom_out").sum() < ring.sum()
    assert make_view(ring, "blur")[8, 16] < 255


@pytest.mark.parametrize("dtype, top", [(np.float64, 1.0), (np.float32, 1.0),
                                        (np.uint16, 65535)])
def test_hue_turn_of_float_and_16_bit_images(real_images, dtype, top):
    # found by the API audit: ViewAugmenter on float images in [0, 1] (which
    # every feature block takes) added an unchanged copy as the "hue_turn" view
    image = real_images[0]
    expected = make_view(image, "hue_turn").astype(np.float64)
    turned = make_view((image / 255.0 * top).astype(dtype), "hue_turn")
    assert turned.dtype == dtype
    # the same colours as the uint8 view, within OpenCV's 2-degree uint8 hues
    np.testing.assert_allclose(turned / top * 255, expected, atol=4)


def test_default_views_keep_the_class_of_any_photo():
    # no mirror, no turn (they change a digit), no blur (it erases a texture)
    assert not set(DEFAULT_VIEWS) & set(OBJECT_VIEWS)
    assert ViewAugmenter().views == DEFAULT_VIEWS


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
    pipe = make_hybrid_pipeline(features=["color"], sampler="views")
    pipe.set_params(load="passthrough").fit(real_images, y)
    assert pipe["augment"].views_ == DEFAULT_VIEWS
    assert pipe.predict(real_images).shape == (len(real_images),)


@pytest.fixture(scope="module")
def textures(texture_folder):
    from hybridclf import load_image_folder

    paths, labels = load_image_folder(texture_folder)
    return np.asarray(paths, dtype=object), np.asarray(labels)


def test_shared_features_of_added_views_give_exactly_the_pipeline_folds(textures):
    from hybridclf.training._fold_features import fold_features
    from hybridclf.training._shared_features import SharedFeatures

    paths, labels = textures
    pipe = make_hybrid_pipeline(features=["hog", "color"],
                                sampler=ViewAugmenter(max_smallest_class=None))
    pipe.set_params(load__size=64)
    assert SharedFeatures.applies(pipe)
    train, test = np.arange(len(paths))[::2], np.arange(len(paths))[1::2]
    expected, _ = fold_features(pipe, paths[train], labels[train],
                                paths[test], labels[test])
    got, _ = SharedFeatures(pipe, paths, labels).fold(pipe, train, test, labels)
    assert len(got[0]) == 4 * len(train)  # the images and 3 views of each
    for i in (0, 2):  # features
        np.testing.assert_allclose(got[i], expected[i], rtol=1e-5, atol=1e-6)
    for i in (1, 3):  # labels
        np.testing.assert_array_equal(got[i], expected[i])
    # a block that learns from the images would need their views: no shortcut
    assert not SharedFeatures.applies(
        make_hybrid_pipeline(features=["hog", "sift"], sampler=ViewAugmenter()))


def test_train_model_with_views_predicts_like_a_refit(textures):
    from hybridclf.training import train_model

    paths, labels = textures
    pipe = make_hybrid_pipeline(features=["hog", "color"], sampler=ViewAugmenter())
    pipe.set_params(load__size=64)
    result = train_model(pipe, paths, labels, test_size=0.25, cv_folds=3)
    assert "features_shared" in result.timings  # the views' features shared too
    assert result.pipeline["augment"].views_ == DEFAULT_VIEWS
    refit = make_hybrid_pipeline(features=["hog", "color"], sampler=ViewAugmenter())
    refit.set_params(load__size=64).fit(paths[result.train_indices],
                                        labels[result.train_indices])
    np.testing.assert_allclose(result.pipeline.predict_proba(paths),
                               refit.predict_proba(paths), atol=1e-6)


def test_views_with_every_feature_read_from_the_cache(textures, tmp_path):
    from hybridclf.training import train_model

    paths, labels = textures

    def train():
        pipe = make_hybrid_pipeline(features=["hog", "color"],
                                    sampler=ViewAugmenter())
        return train_model(pipe.set_params(load__size=64), paths, labels,
                           test_size=0.25, cv_folds=3,
                           feature_cache=tmp_path / "cache")

    first, second = train(), train()
    # no photo decoded for the fixed blocks: the views load them themselves
    assert second.feature_cache["n_computed"] == 0
    assert second.pipeline["augment"].views_ == first.pipeline["augment"].views_
    assert (second.cv_scores["accuracy"]["folds"]
            == pytest.approx(first.cv_scores["accuracy"]["folds"]))
    np.testing.assert_allclose(second.pipeline.predict_proba(paths),
                               first.pipeline.predict_proba(paths), atol=1e-5)


class _RecordingRidge(RidgeSoftmaxClassifier):
    """The ridge classifier, keeping the ``groups`` of every fit."""

    seen = []

    def fit(self, X, y, groups=None):
        _RecordingRidge.seen.append((len(X), None if groups is None
                                     else np.asarray(groups)))
        return super().fit(X, y, groups=groups)


def _one_image_per_group(n_rows, groups, n_views):
    """Every fit got groups: one per image, with the image and its views."""
    assert groups is not None and len(groups) == n_rows
    sizes = np.unique(groups, return_counts=True)[1]
    assert np.all(sizes == 1 + n_views)


@pytest.mark.parametrize("cascade", [False, True])
def test_the_classifier_leaves_each_image_out_with_its_views(textures, cascade):
    from hybridclf.view_sampling import AUTO_VIEWS

    paths, labels = textures
    pipe = make_hybrid_pipeline(features=["hog", "color"], cascade=cascade,
                                classifier=_RecordingRidge())
    if cascade:
        pipe.set_params(cheap_features=("color",))
    _RecordingRidge.seen.clear()
    pipe.set_params(load__size=64).fit(paths, labels)
    assert pipe["augment"].views_ == AUTO_VIEWS  # the default: 8 photos a class
    # the pipeline's fit (and with a cascade, the out-of-fold fits too)
    assert len(_RecordingRidge.seen) == 1 or cascade
    for n_rows, groups in _RecordingRidge.seen:
        _one_image_per_group(n_rows, groups, len(AUTO_VIEWS))
    # the same classifier as fitted by hand with the sampler's groups
    features = pipe["features"].transform(
        pipe["augment"].fit_resample(pipe["load"].transform(paths), labels)[0])
    by_hand = RidgeSoftmaxClassifier().fit(
        features, np.tile(labels, 5), groups=pipe["augment"].sample_indices_)
    assert pipe["clf"].temperature_ == pytest.approx(by_hand.temperature_)
    # without views: no groups
    _RecordingRidge.seen.clear()
    make_hybrid_pipeline(features=["color"], sampler=None, cascade=False,
                         classifier=_RecordingRidge()).set_params(
        load__size=32).fit(paths, labels)
    assert _RecordingRidge.seen == [(len(paths), None)]


def test_metadata_routing_keeps_the_views_groups_and_the_cv_groups(textures):
    # found by the API audit: with sklearn's metadata routing on, the pipeline
    # fitted its classifier without the views' groups (the routed parameters
    # were a stand-in that dropped them; leave-one-out kept views in), and
    # cross_validate(..., params={"groups": g}) raised UnsetMetadataPassedError
    # for RidgeSoftmaxClassifier.fit, then RidgeClassifierCV's scorer did
    import sklearn
    from sklearn.model_selection import StratifiedGroupKFold, cross_validate

    from hybridclf.view_sampling import AUTO_VIEWS

    paths, labels = textures
    groups = np.arange(len(paths)) // 2
    cv = StratifiedGroupKFold(3)
    with sklearn.config_context(enable_metadata_routing=True):
        _RecordingRidge.seen.clear()
        make_hybrid_pipeline(features=["color"], cascade=False,
                             classifier=_RecordingRidge()).set_params(
            load__size=32).fit(paths, labels)
        n_rows, seen = _RecordingRidge.seen[0]
        _one_image_per_group(n_rows, seen, len(AUTO_VIEWS))
        pipe = make_hybrid_pipeline(features=["color"], cascade=False)
        routed = cross_validate(pipe.set_params(load__size=32), paths, labels,
                                params={"groups": groups}, cv=cv)["test_score"]
    plain = cross_validate(pipe, paths, labels, groups=groups, cv=cv)["test_score"]
    np.testing.assert_allclose(routed, plain)



@pytest.mark.parametrize("cascade", [False, True])
def test_a_search_routes_near_duplicate_groups_to_the_classifier(textures, cascade):
    # the scikit-learn way to give the classifier's leave-one-out the groups
    # of near-identical photos inside a search: request them on the
    # classifier; the pipeline (the cascade's too) takes them as its fit's
    # groups, so each fit leaves a pair out whole with its views. Not
    # requested, they reach the splitter only
    import sklearn
    from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold

    from hybridclf.pipeline import get_classifier
    from hybridclf.view_sampling import AUTO_VIEWS

    paths, labels = textures
    pairs = np.arange(len(paths)) // 2  # near-identical photos, two by two
    rows_per_image = 1 + len(AUTO_VIEWS)
    for request in (False, True):
        pipe = make_hybrid_pipeline(features=["hog", "color"], cascade=cascade,
                                    classifier=_RecordingRidge())
        pipe.set_params(load__size=32)
        if cascade:
            pipe.set_params(cheap_features=("color",), cv=2)
        _RecordingRidge.seen.clear()
        with sklearn.config_context(enable_metadata_routing=True):
            if request:
                get_classifier(pipe).set_fit_request(groups=True)
            GridSearchCV(pipe, {"clf__alphas": [(10.0,)]}, refit=False,
                         cv=StratifiedGroupKFold(2)).fit(paths, labels,
                                                         groups=pairs)
        assert len(_RecordingRidge.seen) >= 2  # one per fold (and the cascade's)
        for n_rows, groups in _RecordingRidge.seen:
            n_images = n_rows // rows_per_image
            assert len(np.unique(groups)) == (n_images // 2 if request
                                              else n_images)


def test_sample_weight_of_the_images_weighs_their_views(textures):
    # clf__sample_weight holds one weight per photo; with views the
    # classifier has five rows a photo, and its fit raised
    # "sample_weight.shape == (24,), expected (120,)!"
    from hybridclf.view_sampling import AUTO_VIEWS

    paths, labels = textures
    weights = np.linspace(0.5, 2.0, len(paths))
    pipe = make_hybrid_pipeline(features=["color"], cascade=False)
    pipe.set_params(load__size=32).fit(paths, labels, clf__sample_weight=weights)
    rows = pipe["features"].transform(
        pipe["augment"].fit_resample(pipe["load"].transform(paths), labels)[0])
    n_rows = 1 + len(AUTO_VIEWS)
    by_hand = RidgeSoftmaxClassifier().fit(
        rows, np.tile(labels, n_rows), sample_weight=np.tile(weights, n_rows),
        groups=np.tile(np.arange(len(paths)), n_rows))
    assert pipe["clf"].alpha_ == by_hand.alpha_
    assert pipe["clf"].temperature_ == pytest.approx(by_hand.temperature_)
    np.testing.assert_allclose(pipe["clf"].coef_, by_hand.coef_, rtol=1e-5,
                               atol=1e-8)

def test_train_model_passes_the_views_groups_to_every_fit(textures):
    from hybridclf.training import train_model
    from hybridclf.view_sampling import AUTO_VIEWS

    paths, labels = textures
    pipe = make_hybrid_pipeline(features=["hog", "color"], cascade=False,
                                classifier=_RecordingRidge())
    _RecordingRidge.seen.clear()
    train_model(pipe.set_params(load__size=64), paths, labels, test_size=0.25,
                cv_folds=3)
    assert len(_RecordingRidge.seen) >= 4  # 3 out-of-fold fits and the final
    for n_rows, groups in _RecordingRidge.seen:
        _one_image_per_group(n_rows, groups, len(AUTO_VIEWS))


@pytest.fixture
def view_decisions(monkeypatch):
    """Whether each ViewAugmenter.fit of the test added views, in order."""
    decisions = []
    fit = ViewAugmenter.fit

    def recording_fit(self, X, y):
        fitted = fit(self, X, y)
        decisions.append(bool(fitted.views_))
        return fitted

    monkeypatch.setattr(ViewAugmenter, "fit", recording_fit)
    return decisions


def _views_for_the_final_fit(labels, final_adds_views):
    """A ViewAugmenter whose bar sits just above or below the training part's
    smallest class (3/4 of the photos, test_size=0.25): the final fit adds
    views exactly when ``final_adds_views``, the folds' smaller parts always."""
    n_train = int(np.unique(labels, return_counts=True)[1].min() * 0.75)
    return ViewAugmenter(max_smallest_class=n_train + 1 if final_adds_views
                         else n_train - 1)


@pytest.mark.parametrize("cascade", [False, True])
@pytest.mark.parametrize("final_adds_views", [False, True])
def test_folds_add_views_as_the_final_fit_does(textures, view_decisions,
                                               final_adds_views, cascade):
    # a fold holds fewer photos per class than the training part: deciding the
    # views per fold would cross-validate another model than the one saved;
    # a cascade's threshold is learned on the same folds (hybridclf train)
    from hybridclf.training import train_model

    paths, labels = textures
    sampler = _views_for_the_final_fit(labels, final_adds_views)
    pipe = make_hybrid_pipeline(features=["hog", "color"], sampler=sampler,
                                cascade=cascade)
    if cascade:
        pipe.set_params(cheap_features=("color",))
    result = train_model(pipe.set_params(load__size=64), paths, labels,
                         test_size=0.25, cv_folds=3)
    assert hasattr(result.pipeline, "threshold_") == cascade
    smallest = np.unique(labels[result.train_indices], return_counts=True)[1].min()
    assert (smallest < sampler.max_smallest_class) == final_adds_views
    assert bool(result.pipeline["augment"].views_) == final_adds_views
    assert len(view_decisions) > 3  # every fold, then the final fit
    assert set(view_decisions) == {final_adds_views}


@pytest.mark.parametrize("final_adds_views", [False, True])
def test_a_search_over_feature_parameters_scores_folds_with_the_final_views(
        textures, view_decisions, final_adds_views):
    # train --search over a feature block's parameters runs scikit-learn's
    # search on the training part's folds: each fold decided its own views,
    # so the search compared other models than the one it chose for
    from hybridclf.training import train_model

    paths, labels = textures
    sampler = _views_for_the_final_fit(labels, final_adds_views)
    pipe = make_hybrid_pipeline(features=["hog", "color"], sampler=sampler,
                                cascade=False)
    bins = [(4, 2, 2), (8, 2, 2)]
    result = train_model(pipe.set_params(load__size=64), paths, labels,
                         test_size=0.25, cv_folds=3, search="grid",
                         param_grid={"features__color__extract__bins": bins})
    assert result.best_params["features__color__extract__bins"] in bins
    # the saved model keeps the sampler as given, deciding on its own data
    assert result.pipeline["augment"].max_smallest_class == sampler.max_smallest_class
    assert len(view_decisions) > 6  # 2 candidates x 3 folds, the folds, the final
    assert set(view_decisions) == {final_adds_views}


@pytest.mark.parametrize("cascade", [False, True])
def test_the_classifier_leaves_a_photo_out_with_its_near_duplicates(textures,
                                                                   cascade):
    # before, the groups given to fit (near-identical photos) reached only a
    # cascade's out-of-fold splits: the ridge's leave-one-out, which chooses
    # its penalty and calibrates its probabilities, left a photo out while its
    # near-duplicate stayed in (on amulet6 augmented to 40 per class, the
    # out-of-fold probabilities came out overconfident: temperature 0.208
    # against 0.226, the confidence threshold 0.349 against 0.331)
    from hybridclf.view_sampling import AUTO_VIEWS

    paths, labels = textures
    groups = np.arange(len(paths)) // 2  # neighbouring crops: one photo
    pipe = make_hybrid_pipeline(features=["hog", "color"], cascade=cascade,
                                classifier=_RecordingRidge())
    if cascade:
        pipe.set_params(cheap_features=("color",))
    _RecordingRidge.seen.clear()
    pipe.set_params(load__size=64).fit(paths, labels, groups=groups)
    assert _RecordingRidge.seen
    for n_rows, seen in _RecordingRidge.seen:
        sizes = np.unique(seen, return_counts=True)[1]
        assert np.all(sizes == 2 * (1 + len(AUTO_VIEWS)))
    features = pipe["features"].transform(
        pipe["augment"].fit_resample(pipe["load"].transform(paths), labels)[0])
    by_hand = RidgeSoftmaxClassifier().fit(
        features, np.tile(labels, 5),
        groups=groups[pipe["augment"].sample_indices_])
    assert pipe["clf"].temperature_ == pytest.approx(by_hand.temperature_)


def test_train_model_leaves_a_photo_out_with_its_near_duplicates(textures):
    from hybridclf.training import train_model

    paths, labels = textures
    groups = np.arange(len(paths)) // 2
    pipe = make_hybrid_pipeline(features=["color"], sampler=None, cascade=False,
                                classifier=_RecordingRidge()).set_params(
        load__size=32)
    _RecordingRidge.seen.clear()
    result = train_model(pipe, paths, labels, groups=groups, test_size=0.25,
                         cv_folds=3)
    train_groups = groups[result.train_indices]
    assert len(_RecordingRidge.seen) == 4  # the 3 folds and the final fit
    for n_rows, seen in _RecordingRidge.seen:
        assert seen is not None and np.all(
            np.unique(seen, return_counts=True)[1] == 2)
    np.testing.assert_array_equal(_RecordingRidge.seen[-1][1], train_groups)
