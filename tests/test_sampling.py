"""ClassAwareAugmenter: class counts, sources, determinism, quality, pipeline."""

import pickle
import warnings
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.utils import estimator_checks as sk_checks

from hybridclf import ClassAwareAugmenter, load_image_folder, make_hybrid_pipeline
from hybridclf.io import ImageLoader
from hybridclf.utils._validation import (
    InvalidParameterError,
    generate_invalid_param_val,
    make_constraint,
)
from hybridclf.utils.estimator_checks import (
    check_clone_round_trip,
    check_constraints_cover_params,
    check_init_stores_params,
)

from .conftest import require_shared
from .strategies import image_batches

# 8 real crops: class 0 has 4, class 1 has 3, class 2 has 1
Y = np.array([0, 0, 0, 0, 1, 1, 1, 2])


def resample(X, y, **params):
    sampler = ClassAwareAugmenter(random_state=0, **params)
    X_res, y_res = sampler.fit_resample(X, y)
    return sampler, X_res, y_res


def counts(y):
    return dict(sorted(Counter(np.asarray(y).tolist()).items()))


def double_each_class(y):
    return {c: 2 * n for c, n in Counter(y).items()}


@pytest.mark.parametrize(
    "params, expected",
    [
        ({}, {0: 4, 1: 4, 2: 4}),
        ({"sampling_strategy": "auto"}, {0: 4, 1: 4, 2: 4}),
        ({"sampling_strategy": "not majority"}, {0: 4, 1: 4, 2: 4}),
        ({"sampling_strategy": "minority"}, {0: 4, 1: 3, 2: 4}),
        ({"sampling_strategy": "all"}, {0: 4, 1: 4, 2: 4}),
        ({"sampling_strategy": {1: 5, 2: 2}}, {0: 4, 1: 5, 2: 2}),
        ({"sampling_strategy": double_each_class}, {0: 8, 1: 6, 2: 2}),
        ({"target_samples": 3}, {0: 4, 1: 3, 2: 3}),
        ({"target_samples": 6}, {0: 6, 1: 6, 2: 6}),
        # the factor caps the growth of every class: 1 -> floor(2.5 * 1) = 2
        ({"augmentation_factor": 2.5}, {0: 4, 1: 4, 2: 2}),
        ({"target_samples": 10, "augmentation_factor": 2.0}, {0: 8, 1: 6, 2: 2}),
        ({"target_samples": 10, "augmentation_factor": 1.0}, {0: 4, 1: 3, 2: 1}),
    ],
)
def test_class_counts_follow_the_strategy(real_images, params, expected):
    sampler, X_res, y_res = resample(real_images, Y, **params)
    assert counts(y_res) == expected
    assert len(X_res) == len(y_res) == sum(expected.values())
    assert sampler.sampling_strategy_ == {
        c: n - counts(Y)[c] for c, n in expected.items()
        if n > counts(Y)[c] or c in sampler.sampling_strategy_
    }
    assert sum(sampler.n_dropped_.values()) == 0


def test_float_strategy_on_two_classes(real_images):
    X, y = real_images[:6], np.array(["a", "a", "a", "a", "b", "b"])
    _, _, y_res = resample(X, y, sampling_strategy=0.75)
    assert counts(y_res) == {"a": 4, "b": 3}


@pytest.mark.parametrize("layout", ["rgb", "gray", "gray1", "float32", "float64"])
def test_keeps_shape_dtype_and_input(real_images, layout):
    X = {
        "rgb": real_images,
        "gray": real_images[..., 0],
        "gray1": real_images[..., :1],
        "float32": real_images.astype(np.float32) / 255,
        "float64": real_images.astype(np.float64) / 255,
    }[layout].copy()
    X.setflags(write=False)
    before = X.copy()
    _, X_res, y_res = resample(X, Y)
    assert X_res.shape == (12, *X.shape[1:]) and X_res.dtype == X.dtype
    np.testing.assert_array_equal(X, before)
    np.testing.assert_array_equal(X_res[: len(X)], X)
    assert not np.shares_memory(X_res, X)
    if X.dtype != np.uint8:
        assert 0 <= X_res.min() and X_res.max() <= 1


def test_sample_indices_point_to_a_same_class_source(real_images):
    sampler, X_res, y_res = resample(real_images, Y, target_samples=9)
    idx = sampler.sample_indices_
    assert idx.shape == (len(X_res),)
    np.testing.assert_array_equal(idx[: len(Y)], np.arange(len(Y)))
    np.testing.assert_array_equal(y_res, Y[idx])
    # sources are used in turn: within a class, copies differ by at most one
    for label in (0, 1):
        per_source = Counter(idx[len(Y):][Y[idx[len(Y):]] == label]).values()
        assert max(per_source) - min(per_source) <= 1
    # the generated images are new, and look like their source more than others
    for row in range(len(Y), len(X_res)):
        assert not np.array_equal(X_res[row], real_images[idx[row]])
    assert len(sampler.similarity_) == len(X_res) - len(Y)
    assert len(sampler.augmentation_params_) == len(X_res) - len(Y)
    assert (sampler.similarity_ >= sampler.quality_threshold).all()


def test_deterministic_for_a_random_state(real_images):
    _, a, _ = resample(real_images, Y, n_jobs=1)
    _, b, _ = resample(real_images, Y, n_jobs=2)
    np.testing.assert_array_equal(a, b)
    other, _ = ClassAwareAugmenter(random_state=1).fit_resample(real_images, Y)
    assert not np.array_equal(a, other)


def test_rejected_images_are_counted_then_dropped(real_images):
    # noise on every image: none is identical to its source, none passes SSIM 1
    with pytest.warns(UserWarning, match="dropped 4 of 4 generated images"):
        sampler, X_res, y_res = resample(
            real_images, Y, quality_threshold=1.0, max_attempts=2,
            techniques={"noise": (1.0, (4.0, 8.0))})
    assert sampler.n_dropped_ == {0: 0, 1: 1, 2: 3}
    assert sampler.n_regenerated_ == {0: 0, 1: 1, 2: 3}
    assert sampler.n_generated_ == {0: 0, 1: 0, 2: 0}
    assert sampler.rejections_["dissimilar"] == 8
    assert len(X_res) == len(Y) and len(sampler.similarity_) == 0


@pytest.mark.parametrize(
    "brightness, reason", [(-1.0, "blank"), (0.6, "saturated")]
)
def test_blank_and_saturated_images_are_caught(real_images, brightness, reason):
    techniques = {"brightness": (1.0, (brightness, brightness))}
    with pytest.warns(UserWarning, match="dropped"):
        sampler, _, _ = resample(real_images[:6], Y[:6], techniques=techniques,
                                 quality_threshold=0.0, max_attempts=1)
    assert sampler.rejections_[reason] == 2
    assert sampler.n_dropped_ == {0: 0, 1: 2}


def test_retries_recover_an_unlucky_draw(real_images):
    # half the draws darken the image to black; a retry usually succeeds
    techniques = {"brightness": (0.5, (-1.0, -1.0))}
    sampler, _, y_res = resample(real_images, Y, techniques=techniques,
                                 target_samples=8, max_attempts=10)
    assert sum(sampler.n_regenerated_.values()) > 0
    # a black image with noise on it is taken as saturated rather than blank
    assert sampler.rejections_["blank"] > 0
    assert sum(sampler.rejections_.values()) == sum(sampler.n_regenerated_.values())
    assert counts(y_res) == {0: 8, 1: 8, 2: 8}


@pytest.mark.parametrize(
    "X, y, params, error, match",
    [
        (np.zeros((8, 64)), Y, {}, ValueError, "Put it after the ImageLoader"),
        (np.zeros((8, 8, 8, 4), np.uint8), Y, {}, ValueError, "shape \\(8, 8, 8, 4\\)"),
        (list(np.zeros((8, 8, 8, 3), np.uint8)), Y, {}, TypeError, "numpy.stack"),
        (np.zeros((8, 8, 8, 3), np.int16), Y, {}, TypeError, "got int16"),
        (np.full((8, 8, 8, 3), 2.0), Y, {}, ValueError, "Divide 8-bit values by 255"),
        (np.zeros((7, 8, 8, 3), np.uint8), Y, {}, ValueError, "inconsistent numbers"),
        (None, Y, {"target_samples": 5, "sampling_strategy": "minority"},
         ValueError, "replaces 'sampling_strategy'"),
        (None, Y, {"techniques": {"swirl": 0.5}}, ValueError, "unknown technique"),
    ],
)
def test_bad_input_is_explained(real_images, X, y, params, error, match):
    X = real_images if X is None else X
    with pytest.raises(error, match=match):
        ClassAwareAugmenter(**params).fit_resample(X, y)


# -- API checks -------------------------------------------------------------------
@pytest.mark.parametrize(
    "check",
    [check_clone_round_trip, check_init_stores_params, check_constraints_cover_params,
     sk_checks.check_estimator_cloneable, sk_checks.check_estimator_repr,
     sk_checks.check_no_attributes_set_in_init,
     sk_checks.check_get_params_invariance, sk_checks.check_set_params],
    ids=lambda c: c.__name__,
)
def test_api_checks(check, real_images):
    estimator = ClassAwareAugmenter(target_samples=5, techniques={"jpeg": 0.0})
    if check.__module__.startswith("sklearn"):
        check("ClassAwareAugmenter", estimator)
    else:
        check(estimator, real_images)


def test_param_validation_uses_the_house_message(real_images):
    # estimator_checks.check_param_validation calls fit(X) without y, which
    # a sampler cannot take; the same check with y:
    class NotAValue:
        pass

    estimator = ClassAwareAugmenter()
    for param, constraints in estimator._parameter_constraints.items():
        bad_values = [NotAValue()]
        for constraint in constraints:
            try:
                bad_values.append(generate_invalid_param_val(make_constraint(constraint)))
            except NotImplementedError:
                continue
        for value in bad_values:
            sampler = clone(estimator).set_params(**{param: value})
            with pytest.raises(InvalidParameterError,
                               match=f"The '{param}' parameter of ClassAwareAugmenter"):
                sampler.fit_resample(real_images, Y)


def test_fit_sets_the_strategy_and_pickling_keeps_the_fitted_state(real_images):
    sampler = ClassAwareAugmenter(target_samples=5).fit(real_images, Y)
    assert sampler.sampling_strategy_ == {0: 1, 1: 2, 2: 4}
    sampler, _, _ = resample(real_images, Y)
    restored = pickle.loads(pickle.dumps(sampler))
    np.testing.assert_array_equal(restored.sample_indices_, sampler.sample_indices_)
    assert restored.n_generated_ == sampler.n_generated_
    tags = sampler.__sklearn_tags__()
    assert not tags.input_tags.two_d_array and tags.input_tags.three_d_array


@settings(max_examples=10, deadline=None)
@given(batch=image_batches(min_side=8, max_side=32, max_images=3),
       seed=st.integers(0, 1000))
def test_any_image_batch_keeps_shape_and_dtype(batch, seed):
    X = np.concatenate([batch, batch[:1]])
    y = np.array([0] * len(batch) + [1])
    sampler = ClassAwareAugmenter(random_state=seed, quality_threshold=0.0)
    with warnings.catch_warnings():
        # a flat light image brightened to white is rightly dropped as saturated
        warnings.simplefilter("ignore", UserWarning)
        X_res, y_res = sampler.fit_resample(X, y)
    assert X_res.shape[1:] == X.shape[1:] and X_res.dtype == np.uint8
    assert counts(y_res)[1] + sampler.n_dropped_[1] == len(batch)
    assert len(sampler.sample_indices_) == len(X_res)


# -- in a pipeline ----------------------------------------------------------------
class SpyAugmenter(ClassAwareAugmenter):
    """Records the number of images of every fit_resample call."""

    calls = []

    def _fit_resample(self, X, y):
        type(self).calls.append(len(X))
        return super()._fit_resample(X, y)


def test_pipeline_augments_in_fit_and_not_in_predict(texture_folder):
    paths, labels = load_image_folder(texture_folder)
    paths, labels = np.asarray(paths, dtype=object), np.asarray(labels)
    # an imbalanced training set: 8 brick, 3 grass, 2 gravel
    train = np.r_[0:8, 8:11, 16:18]
    test = np.setdiff1d(np.arange(len(paths)), train)
    SpyAugmenter.calls = []
    pipe = make_hybrid_pipeline(features=["color"],
                                sampler=SpyAugmenter(random_state=0))
    pipe.set_params(load__size=48).fit(paths[train], labels[train])
    assert SpyAugmenter.calls == [len(train)]
    fitted = pipe.named_steps["augment"]
    assert fitted.n_generated_ == {"brick": 0, "grass": 5, "gravel": 6}
    assert len(fitted.sample_indices_) == 24
    predicted = pipe.predict(paths[test])
    assert len(predicted) == len(test) and set(predicted) <= set(labels)
    assert SpyAugmenter.calls == [len(train)]
    np.testing.assert_array_equal(pipe.named_steps["augment"].sample_indices_,
                                  fitted.sample_indices_)


def test_real_amulet_photos_pass_the_quality_check():
    root = require_shared("amulet6")
    paths, labels = load_image_folder(root)
    keep = np.r_[0:6, 40:42]  # 6 of one class, 2 of the next
    X = ImageLoader(size=128).transform([paths[i] for i in keep])
    y = np.asarray(labels)[keep]
    sampler, X_res, y_res = resample(X, y, n_jobs=2)
    assert counts(y_res) == {labels[0]: 6, labels[40]: 6}
    assert sum(sampler.n_regenerated_.values()) == 0
    assert sampler.similarity_.min() > 0.75


def test_fit_generate_takes_images_of_different_sizes():
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (20 + 4 * i, 24, 3), dtype=np.uint8)
              for i in range(6)]
    y = np.array(["a", "a", "a", "a", "b", "b"])
    augmenter = ClassAwareAugmenter(random_state=0, quality_threshold=0.0)
    generated, sources = augmenter.fit_generate(images, y)
    # class b is brought up to class a's four images
    assert augmenter.sampling_strategy_ == {"b": 2}
    assert len(generated) == len(sources) == 2
    assert set(sources.tolist()) <= {4, 5}
    for image, source in zip(generated, sources):
        assert image.shape == images[source].shape and image.dtype == np.uint8
    with pytest.raises(TypeError, match="Image 1 of 'images' must have dtype uint8"):
        augmenter.fit_generate([images[0], images[1].astype(np.float32)], y[:2])
    with pytest.raises(ValueError, match="inconsistent numbers"):
        augmenter.fit_generate(images, y[:3])


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_images_made_one_source_at_a_time_are_those_made_in_memory(n_jobs):
    # hybridclf augment makes them so (never every photo in memory at once):
    # the same images, the same fitted attributes, with any number of threads
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (20 + 4 * i, 24, 3), dtype=np.uint8)
              for i in range(6)]
    y = np.array(["a", "a", "a", "a", "a", "b"])
    in_memory = ClassAwareAugmenter(random_state=0, n_jobs=n_jobs)
    generated, sources = in_memory.fit_generate(images, y)
    made, loaded = {}, []

    def load(i):
        loaded.append(i)
        return images[i]

    each = ClassAwareAugmenter(random_state=0, n_jobs=n_jobs)
    written, each_sources = each.fit_generate_each(
        load, y, lambda k, i, image: made.setdefault(k, (i, image)))
    assert sorted(made) == written.tolist()
    assert each_sources.tolist() == sources.tolist() == [5] * 4
    for (source, image), expected in zip((made[k] for k in written), generated):
        assert source == 5 and np.array_equal(image, expected)
    assert set(loaded) == {5}  # class a has no new images: never loaded
    assert np.array_equal(each.similarity_, in_memory.similarity_)
    assert each.n_generated_ == in_memory.n_generated_ == {"a": 0, "b": 4}


def test_a_model_saved_when_the_sampler_was_a_module_still_loads(tmp_path,
                                                                  monkeypatch):
    # models saved before hybridclf.sampling became a package name the class
    # hybridclf.sampling.ClassAwareAugmenter; load_model must still trust it
    from hybridclf import load_model, save_model
    from hybridclf.persistence._formats import _skops_io

    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (12, 32, 32, 3), dtype=np.uint8)
    y = np.array([0] * 8 + [1] * 4)
    pipe = make_hybrid_pipeline(
        features=["color"], classifier="logistic",
        sampler=ClassAwareAugmenter(random_state=0, quality_threshold=0.0))
    pipe.set_params(load="passthrough").fit(X, y)
    with monkeypatch.context() as patch:
        patch.setattr(ClassAwareAugmenter, "__module__", "hybridclf.sampling")
        save_model(pipe, tmp_path)
    names = _skops_io().get_untrusted_types(file=tmp_path / "model.skops")
    assert "hybridclf.sampling.ClassAwareAugmenter" in names
    loaded = load_model(tmp_path)
    assert type(loaded["augment"]) is ClassAwareAugmenter
    assert loaded["augment"].n_generated_ == pipe["augment"].n_generated_
    np.testing.assert_allclose(loaded.predict_proba(X), pipe.predict_proba(X))


def test_ctrl_c_stops_the_generation_at_the_next_image(monkeypatch):
    """Ctrl+C during ``hybridclf augment`` printed "interrupted", then the
    threads made every image left in their chunks: 35 s more on a messy
    amulet folder before the prompt came back. They stop at the next image."""
    import signal
    import threading
    import time

    from hybridclf.sampling._augmenter import ClassAwareAugmenter as Augmenter

    calls, lock = [], threading.Lock()

    def make_one(self, image, source_gray, policy, rng):
        with lock:
            calls.append(1)
            n = len(calls)
        time.sleep(0.002)
        if n == 10:
            # Ctrl+C: SIGINT to the main thread, waiting for the chunks
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
        return image, [], 1.0, {}

    monkeypatch.setattr(Augmenter, "_make_one", make_one)
    X = np.zeros((6, 8, 8, 3), np.uint8)
    y = np.array(["a"] * 5 + ["b"])
    with pytest.raises(KeyboardInterrupt):
        Augmenter(target_samples=400, n_jobs=2).fit_resample(X, y)
    time.sleep(0.2)  # what the other thread still makes
    assert len(calls) < 20
