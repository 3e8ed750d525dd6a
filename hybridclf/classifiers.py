"""Classifiers made for wide, standardised feature tables with few images."""

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax
from sklearn import config_context
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import RidgeClassifierCV
from sklearn.utils import check_consistent_length
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .utils._validation import StrOptions, _check_sample_weight, _fit_context

__all__ = ["RidgeSoftmaxClassifier"]


class _LeaveOneOutSquaredError:
    """The score RidgeClassifierCV gives a penalty by default, as a scorer.

    Minus the mean squared error of the leave-one-out decision values
    against the +/-1 targets of each class (one column for two classes, as
    RidgeClassifierCV encodes them). With a scorer, RidgeClassifierCV keeps
    those decision values (``store_cv_results``); without one it keeps only
    their squared errors, which lose the sign.
    """

    def __init__(self, y):
        classes = np.unique(y)
        targets = np.where(np.asarray(y)[:, None] == classes[None, :], 1.0, -1.0)
        self.targets = targets[:, 1:] if len(classes) == 2 else targets

    def __call__(self, estimator, decisions, y_true, sample_weight=None):
        # RidgeSoftmaxClassifier uses RidgeClassifierCV only without weights
        # (weighted fits take RidgeSoftmaxClassifier._fit_exact): always None
        decisions = np.asarray(decisions).reshape(self.targets.shape)
        return -float(np.mean((self.targets - decisions) ** 2))


class RidgeSoftmaxClassifier(ClassifierMixin, BaseEstimator):
    """Ridge classifier with its penalty chosen and probabilities calibrated.

    A one-vs-all ridge regression onto +/-1 targets, the penalty ``alpha``
    picked among ``alphas`` by efficient leave-one-out cross-validation
    (:class:`~sklearn.linear_model.RidgeClassifierCV`). Its decision values
    become probabilities by a softmax with one temperature, fitted to the
    exact leave-one-out decision values of the training images, so that the
    probabilities are calibrated on images the model did not see. The
    temperature does not change the order of the classes: ``predict`` is the
    ridge classifier's.

    When the training rows include several views of one photo (as
    :class:`~hybridclf.ViewAugmenter` adds them), leaving out one row leaves
    its photo's other views in, and the leave-one-out decisions come out
    overconfident. Pass ``groups`` to ``fit`` (the sampler's
    ``sample_indices_``): each group is then left out as a whole, exactly and
    in closed form, for the penalty and the temperature alike. The pipelines
    of :func:`~hybridclf.make_hybrid_pipeline` and
    :func:`~hybridclf.training.train_model` pass them (see
    :mod:`hybridclf.grouped_fit`).

    With thousands of standardised features from a few hundred images, the
    squared loss with a strong penalty generalises better than the logistic
    loss: on the amulet benchmark (``docs/benchmarks.md``) it is the default
    pipeline's most accurate classifier.

    Weights (``sample_weight``, ``class_weight``) weigh each row's squared
    error in the ridge fit (rows scaled by the square root of their weight),
    the leave-one-out (or leave-one-group-out) error that chooses the
    penalty, and the log loss that fits the temperature. A row or a group is
    left out as a whole, whatever its weight: a weight says how much a photo
    counts, not how many copies of it there are (a row of weight 2 is not two
    rows, one of which would stay in when the other is left out).

    Parameters
    ----------
    alphas : tuple of float, default=(10, 30, 100, 300, 1000, 3000)
        The penalties tried.

    class_weight : dict, "balanced" or None, default=None
        Weights of the classes, as scikit-learn's classifiers take them: a
        dict ``{class_label: weight}``, or ``"balanced"`` for
        ``n_samples / (n_classes * np.bincount(y))`` (each class weighs as
        much as the others together, however few its photos), or None for
        weight one. Multiplied with ``sample_weight``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels.

    alpha_ : float
        The penalty chosen.

    temperature_ : float
        Decision values are divided by it before the softmax.

    coef_ : ndarray of shape (n_classes, n_features) or (1, n_features)
        Weights of the ridge classifier.

    intercept_ : ndarray of shape (n_classes,) or (1,)
        Its intercepts.

    n_features_in_ : int
        Number of features seen in ``fit``.

    See Also
    --------
    sklearn.linear_model.RidgeClassifierCV : The classifier without
        probabilities.
    sklearn.calibration.CalibratedClassifierCV : Calibration by
        cross-validation, with more fits.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from hybridclf.classifiers import RidgeSoftmaxClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = RidgeSoftmaxClassifier(alphas=(0.1, 1.0)).fit(X, y)
    >>> clf.predict_proba(X[:1]).round(2).sum()
    np.float64(1.0)
    """

    _parameter_constraints: dict = {
        "alphas": ["array-like"],
        "class_weight": [dict, StrOptions({"balanced"}), None],
    }
    # 'groups' are the rows made from one image, which the pipeline passes
    # (hybridclf.grouped_fit); with metadata routing on, the groups of a
    # cross-validation are for its splitter and are not routed here unless
    # requested (set_fit_request(groups=True): the pipeline's fit then takes
    # them, as tests/test_view_sampling.py checks)
    __metadata_request__fit = {"groups": False}

    def __init__(self, *, alphas=(10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0),
                 class_weight=None):
        self.alphas = alphas
        self.class_weight = class_weight

    def __setstate__(self, state):
        # classifiers saved before 'class_weight' existed weighed every class one
        state.setdefault("class_weight", None)
        super().__setstate__(state)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None, groups=None):
        """Fit the ridge classifier and its softmax temperature.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training features.

        y : array-like of shape (n_samples,)
            Class labels; at least two classes.

        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows (>= 0; a row of weight 0 counts for nothing),
            multiplied by ``class_weight``'s. None weighs every row one.

        groups : array-like of shape (n_samples,), default=None
            Rows that must be left out together (the views of one photo share
            a group: pass ``ViewAugmenter``'s ``sample_indices_``). None, or
            all groups of one row, is plain leave-one-out.

        Returns
        -------
        self : object
            Fitted classifier.
        """
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32])
        check_classification_targets(y)
        alphas = np.asarray(self.alphas, dtype=np.float64).ravel()
        if alphas.size == 0 or not np.all(alphas > 0):
            raise ValueError(
                "The 'alphas' parameter of RidgeSoftmaxClassifier must hold "
                f"numbers > 0. Got {self.alphas!r} instead."
            )
        weights = self._weights(X, y, sample_weight)
        if groups is not None:
            groups = np.asarray(groups)
            check_consistent_length(X, groups)
            if weights is not None or len(np.unique(groups)) < len(groups):
                return self._fit_exact(X, y, alphas, groups, weights)
        if weights is not None:
            return self._fit_exact(X, y, alphas, np.arange(len(y)), weights)
        # without metadata routing: with it on, RidgeClassifierCV passes its
        # own sample_weight to the scorer, which has not requested it, and raises
        with config_context(enable_metadata_routing=False):
            # one fit: the penalty by leave-one-out squared error (smoother
            # than accuracy), keeping every penalty's exact leave-one-out
            # decision values (a second fit at the chosen penalty, to keep
            # them, cost as much as the first)
            ridge = RidgeClassifierCV(
                alphas=alphas, scoring=_LeaveOneOutSquaredError(y),
                store_cv_results=True,
            ).fit(X, y)
        self.classes_ = ridge.classes_
        self.alpha_ = float(ridge.alpha_)
        self.coef_ = np.atleast_2d(ridge.coef_)
        self.intercept_ = np.atleast_1d(ridge.intercept_)
        chosen = int(np.flatnonzero(alphas == ridge.alpha_)[0])
        self._fit_temperature(ridge.cv_results_[:, :, chosen], y)
        return self

    def _weights(self, X, y, sample_weight):
        """The weight of each row, or None when every row weighs one."""
        if sample_weight is None and self.class_weight is None:
            return None
        weights = _check_sample_weight(sample_weight, X, dtype=np.float64,
                                       ensure_non_negative=True)
        if self.class_weight is not None:
            weights = weights * compute_sample_weight(self.class_weight, y)
        if not np.any(weights > 0):
            raise ValueError(
                "The 'sample_weight' of RidgeSoftmaxClassifier.fit (times its "
                "'class_weight') is 0 for every row: nothing to fit. Give some "
                "rows a weight > 0.")
        return None if np.all(weights == 1.0) else weights

    def _fit_exact(self, X, y, alphas, groups, weights=None):
        """Penalty, weights and temperature by exact leave-one-group-out.

        The weighted ridge regression scales each centred row (the means
        weighted) by the square root of its weight; a group's exact
        leave-out residuals come from the hat matrix of that scaled problem,
        and are scaled back. Rows of weight 0 change nothing and are dropped.
        """
        X = np.asarray(X, dtype=np.float64)
        self.classes_ = np.unique(y)
        if weights is None:
            weights = np.ones(len(y))
        keep = weights > 0
        X, y, groups, weights = X[keep], y[keep], groups[keep], weights[keep]
        targets = np.where(y[:, None] == self.classes_[None, :], 1.0, -1.0)
        if len(self.classes_) == 2:  # one column, as RidgeClassifierCV
            targets = targets[:, 1:]
        total, root = weights.sum(), np.sqrt(weights)
        x_mean, t_mean = weights @ X / total, weights @ targets / total
        Xc = root[:, None] * (X - x_mean)
        Tc = root[:, None] * (targets - t_mean)
        # with an unpenalised intercept the hat matrix of the scaled problem
        # is root root^T / total + K (K + aI)^-1
        values, vectors = np.linalg.eigh(Xc @ Xc.T)
        values = np.clip(values, 0.0, None)
        projected = vectors.T @ Tc
        group_ids, codes = np.unique(groups, return_inverse=True)
        sizes = np.bincount(codes)
        alone = sizes[codes] == 1
        members = [np.flatnonzero(codes == g) for g in np.flatnonzero(sizes > 1)]
        best = None
        for alpha in alphas:
            shrink = values / (values + alpha)
            residuals = Tc - vectors @ (shrink[:, None] * projected)
            loo = np.empty_like(residuals)
            # a row alone in its group: residual / (1 - its leverage)
            leverage = (vectors[alone] ** 2) @ shrink + weights[alone] / total
            loo[alone] = residuals[alone] / (1.0 - leverage)[:, None]
            for rows in members:  # a group's exact leave-out residuals
                hat = ((vectors[rows] * shrink) @ vectors[rows].T
                       + np.outer(root[rows], root[rows]) / total)
                loo[rows] = np.linalg.solve(np.eye(len(rows)) - hat, residuals[rows])
            error = float(np.sum(loo ** 2) / total)  # sum of w * loo**2, unscaled
            if best is None or error < best[0]:
                best = (error, alpha, targets - loo / root[:, None])
        _, alpha, decisions = best
        dual = vectors @ (projected / (values + alpha)[:, None])
        self.alpha_ = float(alpha)
        self.coef_ = (Xc.T @ dual).T
        self.intercept_ = t_mean - x_mean @ self.coef_.T
        self._fit_temperature(decisions, y, weights)
        return self

    def _fit_temperature(self, loo_decisions, y, weights=None):
        loo = self._logits(loo_decisions)
        codes = np.searchsorted(self.classes_, y)

        def loss(log_t):
            scores = log_softmax(loo / np.exp(log_t), axis=1)
            return -np.average(scores[np.arange(len(codes)), codes],
                               weights=weights)

        best = minimize_scalar(loss, bounds=(-7.0, 7.0), method="bounded")
        self.temperature_ = float(np.exp(best.x))

    def _logits(self, decision):
        decision = np.asarray(decision, dtype=np.float64)
        if decision.ndim == 1 or decision.shape[1] == 1:
            decision = decision.reshape(-1)
            return np.column_stack([-decision, decision])
        return decision

    def decision_function(self, X):
        """Ridge decision values (one column per class; one for two classes)."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        scores = X @ self.coef_.T + self.intercept_
        return scores.ravel() if scores.shape[1] == 1 else scores

    def predict(self, X):
        """The class of highest decision value."""
        logits = self._logits(self.decision_function(X))
        return self.classes_[logits.argmax(axis=1)]

    def predict_proba(self, X):
        """Class probabilities: softmax of the decision values / ``temperature_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns in ``classes_`` order.
        """
        logits = self._logits(self.decision_function(X))
        return softmax(logits / self.temperature_, axis=1)

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`."""
        logits = self._logits(self.decision_function(X))
        return log_softmax(logits / self.temperature_, axis=1)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = True
        return tags
