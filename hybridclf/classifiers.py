"""Classifiers made for wide, standardised feature tables with few images."""

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import RidgeClassifierCV
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .utils._validation import _fit_context

__all__ = ["RidgeSoftmaxClassifier"]


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

    def __init__(self, *, alphas=(10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0)):
        self.alphas = alphas

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Fit the ridge classifier and its softmax temperature.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training features.

        y : array-like of shape (n_samples,)
            Class labels; at least two classes.

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
        # the penalty by leave-one-out squared error (smoother than accuracy)
        search = RidgeClassifierCV(alphas=alphas).fit(X, y)
        # the same fit again, keeping the exact leave-one-out decision values
        ridge = RidgeClassifierCV(
            alphas=[search.alpha_], scoring="accuracy", store_cv_results=True
        ).fit(X, y)
        self.classes_ = ridge.classes_
        self.alpha_ = float(search.alpha_)
        self.coef_ = np.atleast_2d(ridge.coef_)
        self.intercept_ = np.atleast_1d(ridge.intercept_)
        loo = self._logits(ridge.cv_results_[:, :, 0])
        codes = np.searchsorted(self.classes_, y)

        def loss(log_t):
            scores = log_softmax(loo / np.exp(log_t), axis=1)
            return -scores[np.arange(len(codes)), codes].mean()

        best = minimize_scalar(loss, bounds=(-7.0, 7.0), method="bounded")
        self.temperature_ = float(np.exp(best.x))
        return self

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
