"""CascadePipeline: early exits skip the expensive block; the threshold is kept."""

import re

import numpy as np
import pytest
from joblib import Memory
from sklearn.base import BaseEstimator, TransformerMixin, clone

from hybridclf import load_image_folder, load_model, make_hybrid_pipeline, save_model
from hybridclf.cascade import is_cascade, select_threshold
from hybridclf.features import ColorHistogram
from hybridclf.io import ImageLoader
from hybridclf.pipeline import get_classifier, set_n_jobs
from hybridclf.prediction import feature_blocks, predict_open_set, transform_features

#: rows each call of ExpensiveBlock.transform received
CALLS = []


class ExpensiveBlock(TransformerMixin, BaseEstimator):
    """Stands in for the CNN: records its calls, raises when ``fail`` is set."""

    def __init__(self, fail=False):
        self.fail = fail

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        if self.fail:
            raise AssertionError("the expensive block ran")
        CALLS.append(len(X))
        X = np.asarray(X, dtype=np.float64)
        return np.column_stack([X.mean(axis=(1, 2)), X.std(axis=(1, 2))])

    def get_feature_names_out(self, input_features=None):
        return np.array(["mean_r", "mean_g", "mean_b", "std_r", "std_g", "std_b"],
                        dtype=object)


@pytest.fixture(scope="module")
def textures(texture_folder):
    paths, labels = load_image_folder(texture_folder)
    return np.asarray(paths, dtype=object), np.asarray(labels)


@pytest.fixture(scope="module")
def fitted(textures):
    paths, labels = textures
    pipe = make_hybrid_pipeline(
        features=["hog", "color", ("cnn", ExpensiveBlock())], cascade=True,
    ).set_params(load__size=64, cheap_features=("hog", "color"), cv=3)
    groups = np.arange(len(labels)) // 2  # neighbouring crops as one group
    return pipe.fit(paths[::2], labels[::2], groups=groups[::2])


def test_threshold_is_learned_with_its_statistics(fitted):
    assert 0.0 < fitted.threshold_ <= 1.0
    assert 0.0 < fitted.early_share_ <= 1.0
    for name in ["cheap_accuracy_", "full_accuracy_", "cascade_accuracy_"]:
        assert 0.0 <= getattr(fitted, name) <= 1.0
    assert fitted.cascade_accuracy_ >= fitted.full_accuracy_ - 0.005 - 1e-9


def test_a_sure_photo_never_runs_the_expensive_block(fitted, textures):
    paths, _ = textures
    _, proba, early = fitted.predict_stages(paths[1::2])
    assert early.any()
    sure = paths[1::2][early]
    fitted.set_params(features__cnn__extract__fail=True)
    try:
        assert len(fitted.predict(sure)) == len(sure)
        labels, _, scores = predict_open_set(fitted, sure, ood_thresholds={
            "hog": 1e9, "color": 1e9, "cnn": 1e9})
        assert np.all(labels != "unknown") and np.all(scores < 1)
    finally:
        fitted.set_params(features__cnn__extract__fail=False)


def test_an_unsure_photo_runs_the_full_model(fitted, textures):
    paths, labels = textures
    fitted.threshold_, kept = 1.01, fitted.threshold_  # no photo is sure enough
    try:
        CALLS.clear()
        proba = fitted.predict_proba(paths[1::2])
        assert CALLS == [len(paths[1::2])]
        full = get_classifier(fitted).predict_proba(
            transform_features(fitted, paths[1::2]))
        np.testing.assert_allclose(proba, full)
    finally:
        fitted.threshold_ = kept


def test_only_the_unsure_photos_reach_the_expensive_block(fitted, textures):
    paths, _ = textures
    features, proba, early = fitted.predict_stages(paths)
    CALLS.clear()
    fitted.predict(paths)
    assert sum(CALLS) == int((~early).sum())
    assert np.isnan(features[early][:, -6:]).all()
    assert not np.isnan(features[~early]).any()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_threshold_survives_save_and_load(textures, tmp_path):
    paths, labels = textures
    pipe = make_hybrid_pipeline(features=["hog", "color", "lbp"], cascade=True)
    pipe.set_params(load__size=64, cheap_features=("hog", "color"), cv=3)
    pipe.fit(paths[::2], labels[::2])
    save_model(pipe, tmp_path)
    loaded = load_model(tmp_path)
    assert type(loaded).__name__ == "CascadePipeline"
    assert loaded.threshold_ == pipe.threshold_
    assert loaded.early_share_ == pipe.early_share_
    np.testing.assert_allclose(loaded.predict_proba(paths[1::2]),
                               pipe.predict_proba(paths[1::2]))


def test_select_threshold_keeps_accuracy_within_tolerance():
    classes = np.array(["a", "b"])
    y = np.array(["a"] * 6 + ["b"] * 4)
    full = np.tile([0.9, 0.1], (10, 1))
    full[6:] = [0.1, 0.9]  # the full model is always right
    # the cheap stage: right and sure on 5, wrong but fairly sure on one more
    cheap = np.tile([0.55, 0.45], (10, 1))
    cheap[:5] = [0.99, 0.01]
    cheap[6] = [0.9, 0.1]  # a "b" called "a" with 0.9
    stats = select_threshold(y, full, cheap, classes, tolerance=0.005)
    assert stats["threshold"] == 0.99
    assert stats["early_share"] == 0.5
    assert stats["cascade_accuracy"] == 1.0
    loose = select_threshold(y, full, cheap, classes, tolerance=0.1)
    assert loose["threshold"] == 0.9 and loose["cascade_accuracy"] == 0.9


def test_cheap_features_must_leave_a_block_for_the_full_stage(textures):
    paths, labels = textures
    pipe = make_hybrid_pipeline(features=["hog", "color"], cascade=True)
    # no costly block to wait for: the fix is no cascade, not the same value
    with pytest.raises(ValueError, match=r"cheap_features.*cascade=False") as err:
        pipe.set_params(cheap_features=("hog", "color")).fit(paths, labels)
    assert "pass e.g." not in str(err.value)
    # a block it does not have: the example offered is one that would pass
    pipe = make_hybrid_pipeline(features=["cnn", "color"], cascade=True)
    with pytest.raises(ValueError,
                       match=re.escape("pass e.g. cheap_features=('color',)")):
        pipe.set_params(cheap_features=("hog",)).fit(paths, labels)


def test_train_model_fits_the_cascade_and_the_model_card_reports_it(
        textures, tmp_path):
    from hybridclf.persistence import read_model_info
    from hybridclf.training import train_model

    paths, labels = textures
    # without views: on 24 textures they leave HOG + colour never sure enough
    pipe = make_hybrid_pipeline(features=["hog", "color", "lbp"], cascade=True,
                                sampler=None)
    pipe.set_params(load__size=64, cheap_features=("hog", "color"))
    result = train_model(pipe, paths, labels, test_size=0.25, cv_folds=3)
    final = result.pipeline
    assert 0.0 < final.threshold_ <= 1.0
    assert final.predict(paths[:3]).shape == (3,)
    # the test part is scored from the training's feature table: the same
    # answers as the cascade's own predict
    test = result.test_indices
    assert result.test_metrics["accuracy"] == pytest.approx(
        np.mean(final.predict(paths[test]) == labels[test]))
    save_model(final, tmp_path, metadata=result.metadata())
    info = read_model_info(tmp_path)
    assert info["cascade"]["threshold"] == final.threshold_
    assert "## Cascade" in (tmp_path / "README.md").read_text()


def test_evaluate_reports_the_cascade(fitted, textures):
    from hybridclf.evaluation import evaluate_model

    paths, labels = textures
    report = evaluate_model(fitted, paths[1::2], labels[1::2], n_repeats=1)
    cascade = report["cascade"]
    _, _, early = fitted.predict_stages(paths[1::2])
    assert cascade["early_share"] == pytest.approx(early.mean())
    assert report["metrics"]["accuracy"] == pytest.approx(
        fitted.score(paths[1::2], labels[1::2]))
    assert cascade["ms_per_image_estimated"] <= cascade["ms_per_image_full"]


def test_block_importance_of_a_cascade_is_the_full_models(fitted, textures):
    # the blocks are permuted under the full model's classifier, but the drop
    # was taken from the cascade's accuracy: a cascade whose cheap stage
    # answered differently showed other importances for the same classifier
    import copy

    from sklearn.dummy import DummyClassifier

    from hybridclf.evaluation import evaluate_model

    paths, labels = textures
    worse = copy.deepcopy(fitted)  # a cheap stage sure of one class, always
    worse.cheap_classifier_ = DummyClassifier(strategy="most_frequent").fit(
        np.zeros((len(labels[::2]), 1)), labels[::2])
    reports = [evaluate_model(cascade, paths[1::2], labels[1::2], n_repeats=2)
               for cascade in (fitted, worse)]
    assert reports[0]["metrics"]["accuracy"] != reports[1]["metrics"]["accuracy"]
    assert reports[0]["block_importance"] == reports[1]["block_importance"]


def test_select_threshold_stays_above_the_cheap_stage_accuracy():
    # no photo is lost: the accuracy rule alone would answer all of them early
    classes = np.array(["a", "b"])
    y = np.array(["a"] * 5 + ["b"] * 5)
    full = np.where(y[:, None] == classes, 0.9, 0.1)
    cheap = np.tile([0.6, 0.4], (10, 1))
    cheap[:3] = [0.95, 0.05]
    cheap[5:7] = [0.3, 0.7]  # 7 of 10 right: floor 0.7
    cheap[7:] = [0.55, 0.45]  # wrong, where the full model is wrong too
    full[7:] = [0.8, 0.2]
    stats = select_threshold(y, full, cheap, classes)
    assert stats["cheap_accuracy"] == pytest.approx(0.7)
    assert stats["threshold"] == pytest.approx(0.7)
    assert stats["early_share"] == pytest.approx(0.5)  # the 0.95s and the 0.7s


def test_select_threshold_loses_at_most_one_photo_per_fold():
    classes = np.array(["a", "b"])
    y = np.array(["a"] * 10 + ["b"] * 10)
    full = np.where(y[:, None] == classes, 0.9, 0.1)  # always right
    cheap = np.where(y[:, None] == classes, 0.99, 0.01)
    cheap[[10, 11, 12]] = [0.98, 0.02]  # three "b" called "a", confidently
    fold = np.arange(20) % 4
    fold[[10, 11]] = 0  # two of them in one fold
    fold[12] = 1
    loose = select_threshold(y, full, cheap, classes, tolerance=0.5)
    assert loose["threshold"] <= 0.98  # one fold loses two photos
    per_fold = select_threshold(y, full, cheap, classes, tolerance=0.5, fold=fold)
    assert per_fold["threshold"] == 0.99
    assert per_fold["worst_fold_loss"] == 0


def test_an_unfamiliar_photo_goes_on_to_the_full_model(fitted, textures):
    # a photo unlike every training texture: the cheap stage may be sure of
    # it, but the gate sends it on, where the novelty check can see it
    paths, _ = textures
    stranger = np.zeros((64, 64, 3), np.uint8)
    stranger[::4] = 255  # stripes: unlike any texture's HOG and colour
    kept = fitted.threshold_, fitted.ood_limits_
    try:
        fitted.threshold_ = 0.0  # the cheap stage answers whatever it can
        _, _, early = fitted.predict_stages(np.stack([stranger] * 2))
        assert not early.any()
        fitted.ood_limits_ = None  # without the gate it answers it
        _, _, early = fitted.predict_stages(np.stack([stranger] * 2))
        assert early.all()
    finally:
        fitted.threshold_, fitted.ood_limits_ = kept


def test_iter_stages_gives_the_early_answers_first(fitted, textures):
    paths, _ = textures
    _, proba, early = fitted.predict_stages(paths)
    assert early.any() and not early.all()
    stages = list(fitted.iter_stages(paths))
    assert [s[3] for s in stages] == [True, False]
    np.testing.assert_array_equal(stages[0][0], np.flatnonzero(early))
    np.testing.assert_allclose(stages[1][2], proba[~early])
    # photos whose embedding is wanted run every block
    (rows, features, _, was_early), = fitted.iter_stages(
        paths, full=np.ones(len(paths), dtype=bool))
    assert not was_early and len(rows) == len(paths)
    assert not np.isnan(features).any()


def test_the_default_pipeline_is_a_cascade_when_it_has_a_cnn():
    from imblearn.pipeline import Pipeline

    from hybridclf.cascade import CascadePipeline

    default = make_hybrid_pipeline()
    assert isinstance(default, CascadePipeline)
    assert default.cheap_features == ("hog", "lbp", "color")
    plain = make_hybrid_pipeline(cascade=False)
    assert isinstance(plain, Pipeline) and not isinstance(plain, CascadePipeline)
    assert plain.get_params()["features__cnn__extract__backbone"] == (
        default.get_params()["features__cnn__extract__backbone"])
    assert not isinstance(make_hybrid_pipeline(features=["hog", "color"]),
                          CascadePipeline)
    assert make_hybrid_pipeline(features=["cnn", "color"]).cheap_features == (
        "color",)
    with pytest.raises(ValueError, match="'cascade' argument.*'auto', True or False"):
        make_hybrid_pipeline(cascade="sometimes")


def test_too_few_photos_fit_the_full_model_and_answer_nothing_early(textures):
    paths, labels = textures
    pipe = make_hybrid_pipeline(features=["hog", "color", ("cnn", ExpensiveBlock())],
                                cascade=True)
    pipe.set_params(load__size=64, cheap_features=("hog", "color"))
    one_each = [list(labels).index(c) for c in np.unique(labels)]
    with pytest.warns(UserWarning, match="2 photos per class") as record:
        pipe.fit(paths[one_each], labels[one_each])
    assert record[0].filename == __file__  # the warning points at the caller
    assert pipe.threshold_ == np.inf
    CALLS.clear()
    assert len(pipe.predict(paths[:4])) == 4
    assert CALLS == [4]  # every photo ran the expensive block


def test_sample_weight_is_refused_at_once_with_advice_that_works(textures):
    # "takes no step fit parameters ... Set them with set_params instead":
    # no way to give one weight per photo, and said after every threshold
    # fold's features
    from hybridclf.classifiers import RidgeSoftmaxClassifier

    paths, labels = textures
    features = ["hog", "color", ("cnn", ExpensiveBlock())]
    pipe = make_hybrid_pipeline(features=features, cascade=True).set_params(
        load__size=64, cheap_features=("hog", "color"), cv=2)
    weights = np.where(labels == labels[0], 2.0, 1.0)
    CALLS.clear()
    with pytest.raises(TypeError) as error:
        pipe.fit(paths, labels, clf__sample_weight=weights)
    message = str(error.value)
    assert "clf__sample_weight" in message and "cascade=False" in message
    assert "set_params(clf__class_weight='balanced')" in message
    assert CALLS == []  # refused before any work
    with pytest.raises(TypeError, match=r"set_params\(step__param=value\)"):
        pipe.fit(paths, labels, clf__alpha=1.0)
    # the advice works: the pipeline without the cascade takes the weights,
    # the cascade the classes' weights as settings
    plain = make_hybrid_pipeline(features=features, cascade=False)
    plain.set_params(load__size=64).fit(paths, labels, clf__sample_weight=weights)
    pipe.set_params(clf__class_weight="balanced", cheap_classifier=(
        RidgeSoftmaxClassifier(class_weight="balanced"))).fit(paths, labels)
    assert len(pipe.predict(paths[:2])) == len(plain.predict(paths[:2])) == 2


def test_a_cascade_saved_before_the_gate_still_loads_and_predicts(fitted, textures):
    from hybridclf.cascade import CascadePipeline

    paths, _ = textures
    state = dict(fitted.__getstate__())  # a copy: fitted keeps its own
    del state["ood_limits_"], state["worst_fold_loss_"]  # as saved before them
    old = CascadePipeline.__new__(CascadePipeline)
    old.__setstate__(state)
    assert old.ood_limits_ is None and old.cascade_summary()["worst_fold_loss"] == -1
    kept = fitted.ood_limits_
    try:
        fitted.ood_limits_ = None
        np.testing.assert_array_equal(old.predict(paths), fitted.predict(paths))
    finally:
        fitted.ood_limits_ = kept


def test_one_photo_at_a_time_gets_the_features_of_a_batch(fitted, textures):
    # one photo's blocks run in parts side by side; a batch's block by block
    paths = textures[0][1::2][:6]
    features, proba, early = fitted.predict_stages(paths)
    saved = {k: v for k, v in fitted.get_params().items() if k.endswith("n_jobs")}
    set_n_jobs(fitted, 2)
    try:
        for i in range(len(paths)):
            one = fitted.predict_stages(paths[i : i + 1])
            np.testing.assert_array_equal(one[0], features[i : i + 1])
            np.testing.assert_allclose(one[1], proba[i : i + 1], rtol=1e-6)
            assert one[2][0] == early[i]
    finally:
        fitted.set_params(**saved)


def test_a_threshold_above_the_cascades_sends_the_less_sure_photos_on(fitted, textures):
    # before, a photo the cheap stage answered at a top probability between
    # the cascade's threshold and the caller's came out "low confidence" on
    # the cheap stage's word, though the full model might be sure of it
    from hybridclf.prediction import predict_with_reasons

    paths, _ = textures
    _, proba, early = fitted.predict_stages(paths)
    top = proba.max(axis=1)
    assert early.any()
    asked = float(np.median(top[early]))  # above the threshold, under some
    less_sure = early & (top < asked)
    assert less_sure.any() and asked > fitted.threshold_
    _, _, now_early = fitted.predict_stages(paths, min_confidence=asked)
    assert not now_early[less_sure].any()
    assert now_early[early & (top >= asked)].all()
    result = predict_with_reasons(fitted, paths, proba_threshold=asked)
    full = get_classifier(fitted).predict_proba(transform_features(fitted, paths))
    np.testing.assert_allclose(result["proba"][less_sure], full[less_sure])
    assert [r == "low confidence" for r in result["reasons"]] == (
        result["proba"].max(axis=1) < asked).tolist()


@pytest.mark.parametrize("bar, views", [(8, False), (9, True)])
def test_the_threshold_folds_add_views_exactly_when_the_final_fit_does(
        textures, monkeypatch, bar, views):
    # 8 photos a class: the default sampler's bar (max_smallest_class) at 8
    # adds no views to the final fit, but each threshold fold holds about 5 a
    # class and added views: the threshold was learned on other models than
    # the one it is applied to (amulet6: 16 photos, about 13 in a fold)
    from hybridclf.view_sampling import ViewAugmenter

    decided, fit = [], ViewAugmenter.fit

    def recording_fit(self, X, y):
        fit(self, X, y)
        decided.append(self.views_)
        return self

    monkeypatch.setattr(ViewAugmenter, "fit", recording_fit)
    paths, labels = textures
    pipe = make_hybrid_pipeline(
        features=["hog", "color", ("cnn", ExpensiveBlock())], cascade=True,
        sampler=ViewAugmenter(views=("darken",), max_smallest_class=bar),
    ).set_params(load__size=32, cheap_features=("hog", "color"), cv=3)
    pipe.fit(paths, labels)
    assert len(decided) == 4  # three folds, then the final fit
    assert decided[-1] == (("darken",) if views else ())
    assert decided[:3] == [decided[-1]] * 3


def test_a_block_switched_off_with_drop_is_left_out(textures):
    # "drop" is scikit-learn's way to switch off a FeatureUnion transformer
    # (set_params, or a grid over features__<block>); the cascade's fit
    # raised "Cannot clone object 'drop'", feature_blocks an AttributeError
    paths, labels = textures
    pipe = make_hybrid_pipeline(
        features=["hog", "lbp", "color", ("cnn", ExpensiveBlock())], cascade=True,
    ).set_params(load__size=64, cheap_features=("hog", "color"), cv=3,
                 features__lbp="drop")
    pipe.fit(paths, labels, groups=np.arange(len(labels)) // 2)
    names = [name for name, _ in feature_blocks(pipe)]
    assert names == ["hog", "color", "cnn"]
    proba = pipe.predict_proba(paths[:4])
    assert proba.shape == (4, 3)
    assert transform_features(pipe, paths[:4]).shape[1] == sum(
        width for _, width in feature_blocks(pipe))


class CountingColor(ColorHistogram):
    """A colour histogram that counts the images it computes features of."""

    images = 0

    def _extract(self, X):
        type(self).images += len(X)
        return super()._extract(X)


class CountingLoader(ImageLoader):
    """An image loader that counts the images it reads."""

    images = 0

    def transform(self, X):
        type(self).images += len(X)
        return super().transform(X)


def test_memory_keeps_the_images_and_features_for_the_next_fit(textures, tmp_path):
    # make_hybrid_pipeline(memory=...) caches loaded images and features so
    # that a search over the classifier computes them once; the cascade (the
    # default pipeline) ignored it and read and extracted every photo and
    # view again on every fit
    paths, labels = textures
    pipe = make_hybrid_pipeline(
        features=["hog", ("color", CountingColor()), ("cnn", ExpensiveBlock())],
        cascade=True, memory=str(tmp_path),
    ).set_params(load=CountingLoader(size=64), cheap_features=("hog", "color"),
                 cv=3)
    clone(pipe).fit(paths, labels)
    loaded, extracted = CountingLoader.images, CountingColor.images
    assert loaded == len(paths) and extracted > len(paths)  # photos and views
    second = clone(pipe).set_params(clf__alphas=(5.0,)).fit(paths, labels)
    assert (CountingLoader.images, CountingColor.images) == (loaded, extracted)
    assert second["clf"].alpha_ == 5.0
    without = clone(pipe).set_params(memory=None, clf__alphas=(5.0,)).fit(paths,
                                                                        labels)
    np.testing.assert_allclose(second.predict_proba(paths[:6]),
                               without.predict_proba(paths[:6]), rtol=1e-6)


class GraphBlock(TransformerMixin, BaseEstimator):
    """Stands in for a pretrained CNN: a big fitted graph, learns nothing from images.

    ``fit`` takes its graph from the class attribute ``version`` (as a CNN
    reads its weights file); ``states`` counts the times a fitted one was
    pickled or hashed by joblib (both go through ``__getstate__``).
    """

    version, states = 1, 0

    def learns_from_images(self):
        return False

    def fit(self, X, y=None):
        self.graph_ = bytes([type(self).version]) * 2_000_000
        return self

    def transform(self, X):
        X = np.asarray(X, dtype=np.float64)
        return X.mean(axis=(1, 2)) * self.graph_[0]

    def __getstate__(self):
        if hasattr(self, "graph_"):
            type(self).states += 1
        return super().__getstate__()


def test_memory_hashes_a_fitted_graph_once_and_keys_views_by_it(textures,
                                                                 tmp_path):
    # the cascade cached the features of each view under the fitted extractor
    # itself, so joblib hashed a CNN's whole ONNX graph at every view of every
    # fit: a grid search with memory was slower than one without
    from hybridclf.cascade._threshold import _fit_fixed_keyed

    paths, labels = textures
    pipe = make_hybrid_pipeline(
        features=["hog", ("cnn", GraphBlock())], cascade=True, memory=str(tmp_path),
    ).set_params(load__size=64, cheap_features=("hog",), cv=3)
    clone(pipe).fit(paths, labels)
    GraphBlock.states = 0
    clone(pipe).set_params(clf__alphas=(5.0,)).fit(paths, labels)
    assert GraphBlock.states == 0  # nothing of the fitted graph hashed again
    # a graph fitted anew (a weights file replaced) never gets the old
    # graph's views: their features are keyed by the graph's own hash
    GraphBlock.version = 3
    try:
        Memory(tmp_path, verbose=0).cache(_fit_fixed_keyed).clear(warn=False)
        cached = clone(pipe).fit(paths, labels)
        fresh = clone(pipe).set_params(memory=None).fit(paths, labels)
    finally:
        GraphBlock.version = 1
    np.testing.assert_allclose(cached.predict_proba(paths[:6]),
                               fresh.predict_proba(paths[:6]), rtol=1e-6)


@pytest.mark.parametrize("param, value", [
    ("tolerance", -1), ("ood_quantile", 5), ("cv", "five"), ("cv", 1),
    ("cheap_classifier", "ridge"), ("cheap_features", "hog"),
])
def test_bad_cascade_parameters_are_named(textures, param, value):
    # fit validated none of them: tolerance=-1 fitted without a word, cv="five"
    # raised "'<' not supported between instances of 'int' and 'str'" and
    # ood_quantile=5 numpy's "Quantiles must be in the range [0, 1]"
    from sklearn.utils._param_validation import InvalidParameterError

    paths, labels = textures
    pipe = make_hybrid_pipeline(
        features=["hog", "color", ("cnn", ExpensiveBlock())], cascade=True,
    ).set_params(load__size=64, cheap_features=("hog", "color"))
    assert set(pipe._parameter_constraints) == set(pipe.get_params(deep=False))
    pipe.set_params(**{param: value})
    with pytest.raises(InvalidParameterError,
                       match=f"The '{param}' parameter of CascadePipeline must be"):
        pipe.fit(paths[:6], labels[:6])


def test_an_unfitted_cascade_says_it_is_not_fitted(textures):
    # predict, predict_proba and score raised AttributeError ("'StandardScaler'
    # object has no attribute 'n_features_in_'"), which `except
    # NotFittedError` does not catch
    from sklearn.exceptions import NotFittedError

    paths, _ = textures
    pipe = make_hybrid_pipeline(
        features=["hog", "color", ("cnn", ExpensiveBlock())], cascade=True,
    ).set_params(load__size=64, cheap_features=("hog", "color"))
    for method in (pipe.predict, pipe.predict_proba, pipe.predict_log_proba):
        with pytest.raises(NotFittedError, match="CascadePipeline instance is not"):
            method(paths[:2])


def test_tools_that_prefer_decision_values_get_the_cascades_answers(fitted,
                                                                    textures):
    # Pipeline.decision_function ran the full model on every photo, and
    # CalibratedClassifierCV and the roc_auc, average_precision and
    # top_k_accuracy scorers took it over predict_proba: they scored and
    # calibrated another model than the cascade, and ran the CNN on every photo
    from sklearn.metrics import make_scorer, top_k_accuracy_score

    paths, labels = textures
    assert not hasattr(fitted, "decision_function")
    with pytest.raises(AttributeError, match="decision_function"):
        fitted.decision_function(paths[1::2])
    # the "top_k_accuracy" scorer, at k=1: the accuracy of the answers
    scorer = make_scorer(top_k_accuracy_score, k=1, labels=fitted.classes_,
                         response_method=("decision_function", "predict_proba"))
    early = fitted.predict_stages(paths[1::2])[2]
    assert early.any()
    CALLS.clear()
    top1 = scorer(fitted, paths[1::2], labels[1::2])
    assert sum(CALLS) == (~early).sum()  # the expensive block: unsure photos
    assert top1 == fitted.score(paths[1::2], labels[1::2])


def test_pandas_output_predicts_without_feature_name_warnings(textures):
    # with set_output(transform="pandas") (or sklearn.set_config), fit scaled
    # the cheap blocks' arrays and every prediction warned "X has feature
    # names, but StandardScaler was fitted without feature names"
    import warnings

    paths, labels = textures
    pipe = make_hybrid_pipeline(
        features=["hog", "color", ("cnn", ExpensiveBlock())], cascade=True,
    ).set_params(load__size=64, cheap_features=("hog", "color"), cv=3)
    pipe.set_output(transform="pandas").fit(paths[::2], labels[::2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        proba = pipe.predict_proba(paths[1::2])
    assert proba.shape == (len(paths[1::2]), 3)
    table = pipe[:-1].transform(paths[:2])
    assert list(table.columns) == list(pipe[:-1].get_feature_names_out())


def test_a_classifier_without_probabilities_makes_no_cascade(textures):
    # make_hybrid_pipeline(classifier=LinearSVC()) made a cascade, whose fit
    # computed every fold's features and then raised "'LinearSVC' object has
    # no attribute 'predict_proba'"
    from sklearn.svm import LinearSVC

    paths, labels = textures
    assert not is_cascade(make_hybrid_pipeline(classifier=LinearSVC()))
    assert is_cascade(make_hybrid_pipeline(classifier="logistic"))
    pipe = make_hybrid_pipeline(
        features=["hog", "color", ("cnn", ExpensiveBlock(fail=True))],
        cascade=True, classifier=LinearSVC(),
    ).set_params(load__size=64, cheap_features=("hog", "color"))
    with pytest.raises(TypeError, match="'clf' step of CascadePipeline must have "
                       "predict_proba.*Got LinearSVC.*cascade=False"):
        pipe.fit(paths, labels)


def test_verbose_prints_the_time_of_each_step(textures, capsys):
    # make_hybrid_pipeline(verbose=True) promises scikit-learn's pipeline
    # verbosity; the cascade's fit printed nothing
    paths, labels = textures
    pipe = make_hybrid_pipeline(
        features=["hog", "color", ("cnn", ExpensiveBlock())], cascade=True,
        verbose=True,
    ).set_params(load__size=64, cheap_features=("hog", "color"), cv=3)
    pipe.fit(paths, labels)
    out = capsys.readouterr().out
    for step in ("(step 1 of 4) Processing load", "Processing augment",
                 "Processing features", "(step 4 of 4) Processing clf",
                 "threshold folds' features", "cheap stage and threshold"):
        assert "[CascadePipeline] " in out and step in out, step


def test_evaluate_prints_and_pages_the_cascades_early_exit(fitted, textures,
                                                             tmp_path, monkeypatch,
                                                             capsys):
    # how many test images the cheap blocks answered alone, and how well, was
    # in report.json only: neither the command's summary nor the page said it
    import hybridclf.evaluation as evaluation
    from hybridclf.cli import main
    from hybridclf.evaluation import evaluate_model
    from hybridclf.evaluation._page import evaluation_page

    paths, labels = textures
    report = evaluate_model(fitted, paths[1::2], labels[1::2], n_repeats=1)
    _, _, early = fitted.predict_stages(paths[1::2])
    n, n_early = len(early), int(early.sum())
    said = (f"{n_early} of {n} test images ({early.mean():.0%}), accuracy "
            f"{report['cascade']['early_accuracy']:.3f} on them")
    page = evaluation_page(report, [], "t")
    assert "<h2>Cascade</h2>" in page and said in page
    files = {"html": str(tmp_path / "r.html"), "json": str(tmp_path / "r.json")}
    monkeypatch.setattr(evaluation, "evaluate_folder",
                        lambda *a, **k: ({**report, "unreadable": []}, files))
    assert main(["evaluate", "--model-dir", str(tmp_path), "--test-data-dir",
                 str(tmp_path), "--output-dir", str(tmp_path / "out")]) == 0
    line = [x for x in capsys.readouterr().out.splitlines()
            if x.startswith("cascade: ")]
    assert len(line) == 1 and said in line[0]
    assert f"the {n - n_early} passed on to every block" in line[0]
    assert ("within their OOD gate" in line[0]) == (fitted.ood_limits_ is not None)
