"""Classifiers made for wide, standardised feature tables with few images."""

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax
from sklearn import config_context
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import RidgeClassifierCV
from sklearn.utils import check_consistent_length
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .utils._validation import _fit_context

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
        # RidgeSoftmaxClassifier fits without sample weights: always None
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

    Parameters
    ----------
    alphas : tuple of float, default=(10, 30, 100, 300, 1000, 3000)
        The penalties tried.

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

    _parameter_constraints: dict = {"alphas": ["array-like"]}
    # 'groups' are the rows made from one image, which the pipeline passes
    # (hybridclf.grouped_fit); with metadata routing on, the groups of a
    # cross-validation are for its splitter and are not routed here
    __metadata_request__fit = {"groups": False}

    def __init__(self, *, alphas=(10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0)):
        self.alphas = alphas

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, groups=None):
        """Fit the ridge classifier and its softmax temperature.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training features.

        y : array-like of shape (n_samples,)
            Class labels; at least two classes.

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
        if groups is not None:
            groups = np.asarray(groups)
            check_consistent_length(X, groups)
            if len(np.unique(groups)) < len(groups):
                return self._fit_grouped(X, y, alphas, groups)
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

    def _fit_grouped(self, X, y, alphas, groups):
        """Penalty, weights and temperature by leave-one-group-out."""
        X = np.asarray(X, dtype=np.float64)
        self.classes_ = np.unique(y)
        targets = np.where(y[:, None] == self.classes_[None, :], 1.0, -1.0)
        if len(self.classes_) == 2:  # one column, as RidgeClassifierCV
            targets = targets[:, 1:]
        x_mean, t_mean = X.mean(axis=0), targets.mean(axis=0)
        Xc, Tc = X - x_mean, targets - t_mean
        # with an unpenalised intercept the hat matrix is 1/n + K (K + aI)^-1
        values, vectors = np.linalg.eigh(Xc @ Xc.T)
        values = np.clip(values, 0.0, None)
        projected = vectors.T @ Tc
        members = [np.flatnonzero(groups == g) for g in np.unique(groups)]
        best = None
        for alpha in alphas:
            shrink = values / (values + alpha)
            residuals = Tc - vectors @ (shrink[:, None] * projected)
            loo = np.empty_like(residuals)
            for rows in members:  # a group's exact leave-out residuals
                hat = (vectors[rows] * shrink) @ vectors[rows].T + 1.0 / len(X)
                loo[rows] = np.linalg.solve(np.eye(len(rows)) - hat, residuals[rows])
            error = float(np.mean(loo ** 2))
            if best is None or error < best[0]:
                best = (error, alpha, targets - loo)
        _, alpha, decisions = best
        dual = vectors @ (projected / (values + alpha)[:, None])
        self.alpha_ = float(alpha)
        self.coef_ = (Xc.T @ dual).T
        self.intercept_ = t_mean - x_mean @ self.coef_.T
        self._fit_temperature(decisions, y)
        return self

    def _fit_temperature(self, loo_decisions, y):
        loo = self._logits(loo_decisions)
        codes = np.searchsorted(self.classes_, y)

        def loss(log_t):
            scores = log_softmax(loo / np.exp(log_t), axis=1)
            return -scores[np.arange(len(codes)), codes].mean()

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
