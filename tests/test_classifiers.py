"""RidgeSoftmaxClassifier: ridge decisions, calibrated probabilities."""

import numpy as np
import pytest
from sklearn.datasets import load_digits, make_classification
from sklearn.linear_model import RidgeClassifierCV
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split
from sklearn.utils.estimator_checks import check_estimator

from hybridclf.classifiers import RidgeSoftmaxClassifier


def test_sklearn_estimator_checks():
    check_estimator(RidgeSoftmaxClassifier(), expected_failed_checks={
        # by design: a row of weight 2 is left out of the leave-one-out as a
        # whole, where one of two copies of it would stay in and vouch for it
        "check_sample_weight_equivalence_on_dense_data":
            "leave-one-out leaves a weighted row out whole, not one copy of it",
    })


def test_predictions_are_the_ridge_classifiers():
    X, y = load_digits(return_X_y=True)
    clf = RidgeSoftmaxClassifier().fit(X, y)
    ridge = RidgeClassifierCV(alphas=clf.alphas).fit(X, y)
    assert clf.alpha_ == ridge.alpha_
    np.testing.assert_array_equal(clf.predict(X), ridge.predict(X))
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], clf.predict(X))


@pytest.mark.parametrize("dataset", ["digits", "two_classes", "float32_wide"])
def test_one_fit_gives_the_model_of_the_chosen_penalty_alone(dataset):
    # the penalty is chosen and the leave-one-out decision values of the
    # temperature are kept by one RidgeClassifierCV fit: the weights, the
    # penalty and the temperature are those of RidgeClassifierCV's choice and
    # of a fit given that penalty alone, to the bit
    if dataset == "digits":
        X, y = load_digits(return_X_y=True)
    elif dataset == "two_classes":
        X, y = make_classification(n_samples=40, n_features=30, random_state=0)
        y = np.array(["cat", "dog"])[y]
    else:
        X, y = make_classification(n_samples=60, n_features=400, n_informative=20,
                                   n_classes=3, random_state=0)
        X = X.astype(np.float32)
    clf = RidgeSoftmaxClassifier().fit(X, y)
    ridge = RidgeClassifierCV(alphas=clf.alphas).fit(X, y)
    assert clf.alpha_ == ridge.alpha_
    np.testing.assert_array_equal(clf.coef_, np.atleast_2d(ridge.coef_))
    alone = RidgeSoftmaxClassifier(alphas=(clf.alpha_,)).fit(X, y)
    assert clf.temperature_ == alone.temperature_
    np.testing.assert_array_equal(clf.predict_proba(X), alone.predict_proba(X))


def test_probabilities_are_calibrated_on_unseen_images():
    # the temperature is fitted on leave-one-out decisions, so held-out log
    # loss is far better than a plain softmax of the training decisions
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0,
                                                        stratify=y)
    clf = RidgeSoftmaxClassifier().fit(X_train, y_train)
    calibrated = log_loss(y_test, clf.predict_proba(X_test), labels=clf.classes_)
    raw = np.exp(clf.decision_function(X_test))
    raw /= raw.sum(axis=1, keepdims=True)
    assert calibrated < 0.8 * log_loss(y_test, raw, labels=clf.classes_)
    assert clf.temperature_ < 1.0  # ridge decisions live in [-1, 1]: sharpen


def test_two_classes_and_tiny_classes():
    X, y = make_classification(n_samples=12, n_features=30, random_state=0)
    clf = RidgeSoftmaxClassifier().fit(X, y)
    assert clf.predict_proba(X).shape == (12, 2)
    assert clf.decision_function(X).shape == (12,)
    # two images per class still fit (leave-one-out needs no folds)
    X3 = np.random.default_rng(0).normal(size=(6, 40))
    RidgeSoftmaxClassifier().fit(X3, ["a", "a", "b", "b", "c", "c"])


def test_bad_alphas_name_the_parameter():
    X, y = make_classification(n_samples=20, random_state=0)
    with pytest.raises(ValueError, match="'alphas' parameter of RidgeSoftmax"):
        RidgeSoftmaxClassifier(alphas=(0.0, 1.0)).fit(X, y)


def _with_views(X, y, rng):
    """Each row and two noisy copies of it, as ViewAugmenter adds views."""
    views = [X] + [X + rng.normal(0, 2.0, X.shape) for _ in range(2)]
    return np.vstack(views), np.tile(y, 3), np.tile(np.arange(len(y)), 3)


def test_groups_leave_each_photo_out_with_its_views():
    # the temperature is the one fitted on leave-one-group-out refits
    from scipy.optimize import minimize_scalar
    from scipy.special import log_softmax
    from sklearn.linear_model import RidgeClassifier

    X, y = load_digits(return_X_y=True)
    X, y = X[:60], y[:60]
    Xv, yv, groups = _with_views(X, y, np.random.default_rng(0))
    clf = RidgeSoftmaxClassifier(alphas=(30.0,)).fit(Xv, yv, groups=groups)
    loo = np.empty((len(yv), 10))
    for g in range(len(y)):
        out = groups == g
        ridge = RidgeClassifier(alpha=30.0).fit(Xv[~out], yv[~out])
        loo[out] = ridge.decision_function(Xv[out])
    codes = np.searchsorted(clf.classes_, yv)
    best = minimize_scalar(
        lambda t: -log_softmax(loo / np.exp(t), axis=1)[np.arange(len(yv)),
                                                         codes].mean(),
        bounds=(-7.0, 7.0), method="bounded")
    assert clf.temperature_ == pytest.approx(np.exp(best.x), rel=1e-3)
    # the weights are those of the ridge classifier on every row
    ridge = RidgeClassifier(alpha=30.0).fit(Xv, yv)
    np.testing.assert_allclose(clf.decision_function(Xv),
                               ridge.decision_function(Xv), atol=1e-8)


def test_groups_keep_probabilities_honest_with_views():
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, train_size=100, random_state=0, stratify=y)
    Xv, yv, groups = _with_views(X_train, y_train, np.random.default_rng(0))
    plain = RidgeSoftmaxClassifier().fit(Xv, yv)
    grouped = RidgeSoftmaxClassifier().fit(Xv, yv, groups=groups)
    assert grouped.temperature_ > plain.temperature_  # less overconfident
    loss = [log_loss(y_test, c.predict_proba(X_test), labels=c.classes_)
            for c in (plain, grouped)]
    assert loss[1] < loss[0]
    # one row per group is plain leave-one-out
    ones = RidgeSoftmaxClassifier().fit(X_train, y_train,
                                        groups=np.arange(len(y_train)))
    assert ones.temperature_ == RidgeSoftmaxClassifier().fit(
        X_train, y_train).temperature_


def _weighted_leave_group_out(X, y, groups, weights, alpha, classes):
    """Decisions of weighted ridge refits without each group, and their error."""
    from sklearn.linear_model import RidgeClassifier

    loo = np.empty((len(y), len(classes)))
    for g in np.unique(groups):
        out = groups == g
        ridge = RidgeClassifier(alpha=alpha).fit(X[~out], y[~out],
                                                 sample_weight=weights[~out])
        loo[out] = ridge.decision_function(X[out])
    targets = np.where(y[:, None] == classes[None, :], 1.0, -1.0)
    return loo, np.sum(weights[:, None] * (targets - loo) ** 2)


@pytest.mark.parametrize("views", [False, True])
def test_sample_weight_weighs_the_fit_the_penalty_and_the_temperature(views):
    # the weighted ridge, the penalty of least weighted leave-one-(group-)out
    # squared error and the temperature of least weighted log loss, all on
    # exact refits without each photo (and its views)
    from scipy.optimize import minimize_scalar
    from scipy.special import log_softmax
    from sklearn.linear_model import RidgeClassifier

    X, y = load_digits(return_X_y=True)
    X, y = X[:40], y[:40]
    rng = np.random.default_rng(0)
    weights = rng.uniform(0.2, 3.0, len(y))
    groups = np.arange(len(y))
    if views:
        X, y, groups = _with_views(X, y, rng)
        weights = np.tile(weights, 3)
    alphas = (3.0, 100.0, 3000.0)
    clf = RidgeSoftmaxClassifier(alphas=alphas).fit(
        X, y, sample_weight=weights, groups=groups if views else None)
    classes = clf.classes_
    errors = [_weighted_leave_group_out(X, y, groups, weights, a, classes)[1]
              for a in alphas]
    assert clf.alpha_ == alphas[int(np.argmin(errors))]
    loo, _ = _weighted_leave_group_out(X, y, groups, weights, clf.alpha_, classes)
    codes = np.searchsorted(classes, y)
    best = minimize_scalar(
        lambda t: -np.average(log_softmax(loo / np.exp(t), axis=1)[
            np.arange(len(y)), codes], weights=weights),
        bounds=(-7.0, 7.0), method="bounded")
    assert clf.temperature_ == pytest.approx(np.exp(best.x), rel=1e-3)
    ridge = RidgeClassifier(alpha=clf.alpha_).fit(X, y, sample_weight=weights)
    np.testing.assert_allclose(clf.decision_function(X),
                               ridge.decision_function(X), atol=1e-8)


def test_class_weight_weighs_each_class():
    from sklearn.utils.class_weight import compute_sample_weight

    X, y = make_classification(n_samples=60, n_features=40, n_informative=10,
                               n_classes=3, weights=[0.6, 0.3, 0.1],
                               random_state=0)
    balanced = RidgeSoftmaxClassifier(class_weight="balanced").fit(X, y)
    by_hand = RidgeSoftmaxClassifier().fit(
        X, y, sample_weight=compute_sample_weight("balanced", y))
    np.testing.assert_allclose(balanced.predict_proba(X), by_hand.predict_proba(X))
    # a dict, multiplied with sample_weight
    weights = np.linspace(0.5, 2.0, len(y))
    as_dict = RidgeSoftmaxClassifier(class_weight={0: 1.0, 1: 2.0, 2: 5.0}).fit(
        X, y, sample_weight=weights)
    by_hand = RidgeSoftmaxClassifier().fit(
        X, y, sample_weight=weights * np.array([1.0, 2.0, 5.0])[y])
    np.testing.assert_allclose(as_dict.predict_proba(X), by_hand.predict_proba(X))
    # the rarest class gains recall on its own training photos
    rare = y == 2
    plain = RidgeSoftmaxClassifier().fit(X, y)
    assert (balanced.predict(X[rare]) == 2).sum() >= (plain.predict(X[rare]) == 2).sum()


def test_bad_weights_name_the_parameter():
    from sklearn.utils._param_validation import InvalidParameterError

    X, y = make_classification(n_samples=20, random_state=0)
    with pytest.raises(InvalidParameterError, match="'class_weight' parameter"):
        RidgeSoftmaxClassifier(class_weight="balance").fit(X, y)
    with pytest.raises(ValueError, match="Negative values.*sample_weight"):
        RidgeSoftmaxClassifier().fit(X, y, sample_weight=np.full(20, -1.0))
    with pytest.raises(ValueError, match="'sample_weight' of RidgeSoftmax"):
        RidgeSoftmaxClassifier(class_weight={0: 0.0, 1: 0.0}).fit(X, y)


def test_a_classifier_saved_before_class_weight_loads_with_none():
    import pickle

    import skops.io as sio

    X, y = make_classification(n_samples=30, random_state=0)
    old = RidgeSoftmaxClassifier().fit(X, y)
    del old.class_weight  # as saved before the parameter existed
    for loaded in (pickle.loads(pickle.dumps(old)),
                   sio.loads(sio.dumps(old), trusted=[
                       "hybridclf.classifiers.RidgeSoftmaxClassifier"])):
        assert loaded.get_params()["class_weight"] is None
        np.testing.assert_array_equal(loaded.predict(X), old.predict(X))
