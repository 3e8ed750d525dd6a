"""make_hybrid_pipeline: fitting, predicting, tuning and caching."""

import numpy as np
import pytest
from imblearn import FunctionSampler
from imblearn.pipeline import Pipeline
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_validate

from hybridclf import ImageLoadError, load_image_folder, make_hybrid_pipeline
from hybridclf.features import ColorHistogram

from .conftest import require_shared

FAST = ["hog", "lbp", "color"]


@pytest.fixture(scope="module")
def textures(texture_folder):
    paths, labels = load_image_folder(texture_folder)
    return np.asarray(paths, dtype=object), np.asarray(labels)


def test_steps_and_parameter_names():
    pipe = make_hybrid_pipeline()
    assert isinstance(pipe, Pipeline)
    assert [name for name, _ in pipe.steps] == ["load", "augment", "features", "clf"]
    params = pipe.get_params()
    for name in ["load__size", "features__cnn__extract__backbone",
                 "features__hog__extract__orientations",
                 "features__lbp__extract__grid", "features__color__scale__with_mean",
                 "clf__alphas"]:
        assert name in params
    pipe.set_params(features__hog__extract__orientations=12)
    assert pipe["features"].transformer_list[1][1]["extract"].orientations == 12


def test_set_image_params_sets_the_image_steps_not_the_classifier():
    from hybridclf.pipeline import set_image_params
    from hybridclf.sampling import ClassAwareAugmenter

    pipe = make_hybrid_pipeline(features=["hog", "color"], classifier="logistic",
                                sampler=ClassAwareAugmenter())
    set_image_params(pipe, n_jobs=3, max_pixels=1000)
    params = pipe.get_params()
    assert params["load__n_jobs"] == params["augment__n_jobs"] == 3
    assert params["features__hog__extract__n_jobs"] == 3
    assert params["clf__n_jobs"] is None
    assert params["load__max_pixels"] == 1000
    set_image_params(pipe)  # None leaves everything as it is
    assert pipe.get_params()["load__n_jobs"] == 3


def test_fit_predict_proba_score(textures):
    paths, labels = textures
    pipe = make_hybrid_pipeline(features=FAST).set_params(load__size=96)
    pipe.fit(paths[::2], labels[::2])
    predicted = pipe.predict(paths[1::2])
    assert set(predicted) <= set(labels)
    proba = pipe.predict_proba(paths[1::2])
    assert proba.shape == (len(paths[1::2]), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    # brick, grass and gravel are easy to tell apart from held-out crops
    assert pipe.score(paths[1::2], labels[1::2]) >= 0.75


def test_cross_validate_and_grid_search(textures):
    paths, labels = textures
    pipe = make_hybrid_pipeline(features=["hog", "color"]).set_params(load__size=64)
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    scores = cross_validate(pipe, paths, labels, cv=cv, error_score="raise")
    assert scores["test_score"].mean() >= 0.75
    grid = {"clf__alphas": [(0.1,), (10.0,)]}
    search = GridSearchCV(pipe, grid, cv=cv, error_score="raise")
    search.fit(paths, labels)
    assert search.best_params_["clf__alphas"] in grid["clf__alphas"]
    assert search.predict(paths[:2]).shape == (2,)


def test_set_output_pandas_gives_named_feature_tables(textures):
    # found by the API audit: the loader's images were wrapped in a DataFrame
    # ("Must pass 2-d input"), so set_output(transform="pandas") broke fit
    paths, labels = textures
    pipe = make_hybrid_pipeline(features=["hog", "color"]).set_params(load__size=32)
    pipe.set_output(transform="pandas").fit(paths, labels)
    table = pipe[:-1].transform(paths[:2])
    assert list(table.columns) == list(pipe[:-1].get_feature_names_out())
    assert pipe.predict(paths[:2]).shape == (2,)
    assert isinstance(pipe["load"].transform(paths[:2]), np.ndarray)


class CountingBlock(ColorHistogram):
    """A colour histogram that counts how often it is fitted."""

    fits = 0

    def _fit(self, X):
        type(self).fits += 1


def test_memory_reuses_features_across_candidates(textures, tmp_path):
    paths, labels = textures
    CountingBlock.fits = 0
    pipe = make_hybrid_pipeline(features=[("count", CountingBlock())],
                                memory=str(tmp_path))
    pipe.set_params(load__size=32)
    grid = {"clf__alphas": [(1.0,), (10.0,), (100.0,), (1000.0,)]}
    search = GridSearchCV(pipe, grid, cv=2)
    search.fit(paths, labels)
    # 2 folds + the refit on all images; not 2 x 4 candidates + 1
    assert CountingBlock.fits == 3


@pytest.mark.parametrize("container", ["list", "frame", "column"])
def test_memory_sees_a_photo_replaced_under_the_same_name(texture_folder,
                                                         tmp_path, container):
    # joblib keyed the load step by the paths: a refit after photos were
    # replaced trained on their old pixels, with no error (still so for a
    # one-column DataFrame or a column array of paths, which ImageLoader takes)
    import shutil

    import pandas as pd

    root = tmp_path / "photos"
    shutil.copytree(texture_folder, root)
    paths, labels = load_image_folder(root)
    X = {"list": paths, "frame": pd.DataFrame({"path": paths}),
         "column": np.asarray(paths, dtype=object)[:, None]}[container]

    def fitted(memory):
        pipe = make_hybrid_pipeline(features=["color"], sampler=None,
                                    cascade=False, memory=memory)
        return pipe.set_params(load__size=32).fit(X, labels)

    fitted(str(tmp_path / "memory"))
    for i in range(8):  # every brick photo is now a grass photo
        shutil.copyfile(root / "grass" / f"{i}.png", root / "brick" / f"{i}.png")
    again = fitted(str(tmp_path / "memory"))
    fresh = fitted(None)
    np.testing.assert_allclose(again.predict_proba(paths),
                               fresh.predict_proba(paths), atol=1e-6)


def test_custom_block_and_classifier(textures):
    from sklearn.neighbors import KNeighborsClassifier

    paths, labels = textures
    pipe = make_hybrid_pipeline(
        features=["color", ("mine", ColorHistogram(color_space="lab", bins=3))],
        classifier=KNeighborsClassifier(n_neighbors=1),
    ).set_params(load__size=32)
    pipe.fit(paths, labels)
    names = pipe[:-1].get_feature_names_out()
    assert len(names) == 16 * 4 * 4 + 27
    assert names[-1].startswith("mine__")


@pytest.mark.parametrize("classifier", ["svc", "random_forest"])
def test_named_classifiers_give_probabilities(textures, classifier):
    paths, labels = textures
    pipe = make_hybrid_pipeline(features=["color"], classifier=classifier)
    pipe.set_params(load__size=32).fit(paths, labels)
    assert pipe.predict_proba(paths[:3]).shape == (3, 3)


def test_sampler_acts_only_during_fit(textures):
    paths, labels = textures
    seen = []

    def duplicate_first_class(X, y):
        seen.append(len(X))
        extra = y == y[0]
        return np.concatenate([X, X[extra]]), np.concatenate([y, y[extra]])

    sampler = FunctionSampler(func=duplicate_first_class, validate=False)
    pipe = make_hybrid_pipeline(features=["color"], sampler=sampler)
    pipe.set_params(load__size=32).fit(paths, labels)
    pipe.predict(paths)
    assert seen == [len(paths)]


def test_bad_arguments_are_explained():
    names = "\\['cnn', 'color', 'hog', 'lbp', 'sift'\\]"
    with pytest.raises(ValueError, match=f"among {names}"):
        make_hybrid_pipeline(features=["hog", "gabor"])
    with pytest.raises(ValueError, match="'classifier' argument"):
        make_hybrid_pipeline(classifier="xgboost")
    with pytest.raises(ValueError, match="names a block twice"):
        make_hybrid_pipeline(features=["hog", "hog"])
    with pytest.raises(TypeError, match="\\(name, transformer\\) pair"):
        make_hybrid_pipeline(features=[42])


def test_predicting_a_bad_file_names_it(textures, tmp_path):
    paths, labels = textures
    pipe = make_hybrid_pipeline(features=["color"]).set_params(load__size=32)
    pipe.fit(paths, labels)
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really")
    with pytest.raises(ImageLoadError, match="broken.jpg"):
        pipe.predict([paths[0], bad])


def test_default_pipeline_on_real_amulet_photos():
    root = require_shared("amulet6")
    paths, labels = load_image_folder(root)
    paths, labels = np.asarray(paths, dtype=object), np.asarray(labels)
    pipe = make_hybrid_pipeline().set_params(load__n_jobs=2)
    train, test = next(StratifiedKFold(4, shuffle=True, random_state=0).split(
        paths, labels))
    pipe.fit(paths[train], labels[train])
    # six classes (chance ~0.2); the default scores ~0.95 in grouped 5-fold CV
    assert pipe.score(paths[test], labels[test]) >= 0.8


def test_classifier_registry_names_factories_and_grids():
    from sklearn.model_selection import ParameterGrid

    from hybridclf.pipeline import CLASSIFIERS, classifier_name, get_classifier

    for name, spec in CLASSIFIERS.items():
        clf = get_classifier(make_hybrid_pipeline(features=["hog"], classifier=name))
        # the name is told back from the pipeline, which the search relies on
        assert classifier_name(clf) == name
        # every grid tunes the classifier only and is valid for it
        assert all(k.startswith("clf__") for k in spec.search_grid)
        for params in ParameterGrid(spec.search_grid):
            clf.set_params(**{k.removeprefix("clf__"): v for k, v in params.items()})
    assert classifier_name(ColorHistogram()) is None
    with pytest.raises(ValueError, match="among"):
        make_hybrid_pipeline(classifier="knn")


def test_accessors_find_the_steps_and_blocks():
    from hybridclf.io import ImageLoader
    from hybridclf.pipeline import (
        get_block_extractor,
        get_block_scaler,
        get_classifier,
        get_feature_union,
        get_loader,
        get_sampler,
        iter_feature_blocks,
        set_classifier,
    )
    from hybridclf.view_sampling import AUTO_VIEWS, DEFAULT_VIEWS, ViewAugmenter

    pipe = make_hybrid_pipeline(features=["hog", "color"])
    assert isinstance(get_loader(pipe), ImageLoader)
    # the default: the photo views and a blur, below 15 photos per class
    assert get_sampler(pipe).get_params() == ViewAugmenter(
        views=AUTO_VIEWS).get_params()
    assert get_sampler(make_hybrid_pipeline(features="hog", sampler=None)) is None
    views = make_hybrid_pipeline(features="hog", sampler="views")
    assert get_sampler(views).views == DEFAULT_VIEWS
    with pytest.raises(ValueError, match="'sampler' argument.*Got 'flips'"):
        make_hybrid_pipeline(sampler="flips")
    assert get_feature_union(pipe) is pipe["features"]
    assert get_classifier(pipe) is pipe["clf"]
    pipe.set_params(features__hog="passthrough")
    blocks = list(iter_feature_blocks(pipe))
    assert [name for name, _ in blocks] == ["color"]
    assert isinstance(get_block_extractor(blocks[0][1]), ColorHistogram)
    assert get_block_scaler(blocks[0][1]) is blocks[0][1]["scale"]
    assert get_block_extractor(ColorHistogram()).__class__ is ColorHistogram
    other = make_hybrid_pipeline(classifier="logistic")["clf"]
    assert get_classifier(set_classifier(pipe, other)) is other


def test_fit_takes_groups_as_the_cascade_does(textures):
    # README tells to pass groups=; make_hybrid_pipeline(cascade=False) raised
    # "Pipeline.fit does not accept the groups parameter"
    from hybridclf import ViewAugmenter

    paths, labels = textures
    groups = np.arange(len(paths)) // 2
    from hybridclf.classifiers import RidgeSoftmaxClassifier

    for sampler in (None, ViewAugmenter()):
        pipe = make_hybrid_pipeline(features=FAST, sampler=sampler).set_params(
            load__size=64)
        assert pipe.fit(paths, labels, groups=groups) is pipe
        # the groups reach the classifier's leave-one-out (its penalty and
        # calibration): a photo leaves with its near-duplicates (and views)
        if sampler is None:
            by_hand = RidgeSoftmaxClassifier().fit(
                pipe["features"].transform(pipe["load"].transform(paths)), labels,
                groups=groups)
            assert pipe["clf"].temperature_ == pytest.approx(by_hand.temperature_)
    with pytest.raises(ValueError, match="groups"):
        pipe.fit(paths, labels, groups=groups[:-1])
