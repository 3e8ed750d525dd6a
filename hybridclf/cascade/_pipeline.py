"""The cascade as a pipeline: :class:`CascadePipeline`.

:class:`CascadePipeline` is the hybrid pipeline (steps ``load``, ``augment``,
``features``, ``clf``, so every accessor of :mod:`hybridclf.pipeline` works on
it) with a second, cheap classifier on some of its feature blocks (HOG, LBP
and colour by default). At prediction the cheap blocks run first; a photo
whose calibrated top probability from the cheap classifier reaches
``threshold_``, and whose cheap blocks look like the training photos' (the
gate, ``ood_limits_``), is answered there; only the other photos run the
remaining blocks (the CNN) and the full classifier. The cheap blocks'
features are reused by the full stage: no block runs twice on a photo.

The threshold and the gate are learned in ``fit`` from grouped out-of-fold
predictions of both stages (:mod:`hybridclf.cascade._threshold`). The bodies
of ``fit`` and ``fit_cheap_stage`` are in :mod:`hybridclf.cascade._fit`, those
of the staged prediction (``iter_stages``, ``predict_stages``,
``stages_from_features``) in :mod:`hybridclf.cascade._stages`.
"""

from numbers import Integral, Real

import numpy as np
from imblearn.pipeline import Pipeline
from sklearn.base import clone
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from ..pipeline import get_classifier
from ..utils._validation import HasMethods, Interval, _fit_context
from . import _fit, _stages
from ._fit import _STATS

__all__ = ["CHEAP_FEATURES", "CascadePipeline", "is_cascade"]

#: The blocks of the cheap stage by default: about 2 ms a photo together.
CHEAP_FEATURES = ("hog", "lbp", "color")


def is_cascade(pipe):
    """Whether ``pipe`` is a :class:`CascadePipeline`."""
    return isinstance(pipe, CascadePipeline)


class CascadePipeline(Pipeline):
    """The hybrid pipeline with an early exit for photos the cheap blocks know.

    Build it with ``make_hybrid_pipeline(cascade=True)``. It has the steps of
    the hybrid pipeline and, after ``fit``, a second classifier on the
    blocks ``cheap_features`` (scaled by the pipeline's own block scalers).
    ``predict`` and ``predict_proba`` run those blocks first and answer
    every photo whose cheap top probability reaches ``threshold_`` and whose
    cheap blocks stay within ``ood_limits_``; only the other photos run the
    remaining blocks and the full classifier.

    Parameters
    ----------
    steps : list of (str, estimator)
        The steps ``load``, ``augment``, ``features`` and ``clf``.

    cheap_features : tuple of str, default=("hog", "lbp", "color")
        The feature blocks of the cheap stage; names of blocks of the
        ``features`` step. At least one block must be left for the full
        stage only.

    cheap_classifier : classifier or None, default=None
        The cheap stage's classifier; it needs calibrated ``predict_proba``.
        None uses :class:`~hybridclf.classifiers.RidgeSoftmaxClassifier`,
        calibrated by a temperature on leave-one-out decisions.

    tolerance : float, default=0.005
        Out-of-fold accuracy the cascade may lose against the full model
        (see :func:`~hybridclf.cascade.select_threshold` for the other two
        rules of the threshold).

    ood_quantile : float or None, default=0.95
        The gate: a photo whose out-of-distribution score in a cheap block
        (:func:`~hybridclf.prediction.block_ood_scores`) is above this
        quantile of the out-of-fold scores goes on to the full model, however
        sure the cheap stage is. So a photo unlike the training photos meets
        the novelty check in the CNN embedding, which the cheap stage cannot
        run. None answers early by confidence alone.

        0.95 rather than 0.99 (the default before) so that the cascade says
        "unknown" where the full model does: with 0.99 it answered with a
        class 2.4% of the photos of a class left out of training (and 1.1%
        of somdej_fatherguay) that the full model calls unknown; with 0.95,
        0.8% and 0.0%, for fewer photos answered early (75.7% -> 68.8% of
        known photos) and the same accuracy on its five folds
        (``benchmarks/bench_open_set.py --cascade``, docs/benchmarks.md,
        "Open set of the served default"). On 15 grouped folds
        (``benchmarks/bench_accuracy.py --cascade``, "Cascade") the share
        answered early goes from 0.749 to 0.666 and the accuracy from 0.929
        to 0.927 (one photo of 519; the full model's is 0.929).

    cv : int, default=5
        Grouped folds (``StratifiedGroupKFold``) of the out-of-fold
        predictions that choose the threshold; fewer when there are fewer
        groups. A :class:`~hybridclf.ViewAugmenter` in the ``augment`` step
        adds its views in every fold exactly when it does in the fit on all
        the photos (:func:`~hybridclf.view_sampling.decide_views`), so the
        threshold is learned on models like the one it is applied to.

    random_state : int, RandomState instance or None, default=0
        Shuffles the folds.

    transform_input, memory, verbose
        As for :class:`imblearn.pipeline.Pipeline`.

    Attributes
    ----------
    cheap_classifier_ : classifier
        The fitted cheap stage.

    threshold_ : float
        The cheap stage answers photos whose top probability is at least
        this; ``inf`` when no threshold kept the accuracy.

    ood_limits_ : dict of str to float or None
        The gate: the largest OOD score of each cheap block of a photo
        answered early; None without a gate.

    early_share_ : float
        Out-of-fold share of the training photos answered early.

    cheap_accuracy_, early_accuracy_, full_accuracy_, cascade_accuracy_ : float
        Out-of-fold accuracy of the cheap stage on every photo, of the cheap
        stage on the photos it answers, of the full model, and of the
        cascade.

    worst_fold_loss_ : int
        Photos the cascade lost against the full model on its worst
        out-of-fold fold; -1 for a model saved before it was recorded.

    See Also
    --------
    hybridclf.make_hybrid_pipeline : Builds it with ``cascade=True``.

    Notes
    -----
    For one or two photos, the first layers of the CNN start as the cheap
    stage does, on a thread at the lowest priority (on a core the cheap stage
    leaves idle); they are stopped, their output unused, when every photo is
    answered early, and a photo passed on runs only the other layers
    (``hybridclf.cascade._ahead``). The answers are the same.

    Open set: the confidence check (``proba_threshold``) applies to the
    cheap stage's probabilities as to the full model's. The novelty check
    needs the CNN embedding, which a photo answered early does not have; the
    gate stands in for it: only photos that every cheap block finds like
    the training photos are answered early, the others meet the novelty
    check of the full stage.

    Examples
    --------
    >>> from hybridclf import make_hybrid_pipeline
    >>> pipe = make_hybrid_pipeline(cascade=True)
    >>> type(pipe).__name__, pipe.cheap_features
    ('CascadePipeline', ('hog', 'lbp', 'color'))
    """

    _parameter_constraints: dict = {
        **Pipeline._parameter_constraints,
        "cheap_features": [tuple, list],
        "cheap_classifier": [HasMethods(["fit", "predict_proba"]), None],
        "tolerance": [Interval(Real, 0, 1, closed="both")],
        "ood_quantile": [Interval(Real, 0, 1, closed="both"), None],
        "cv": [Interval(Integral, 2, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(self, steps, *, cheap_features=CHEAP_FEATURES,
                 cheap_classifier=None, tolerance=0.005, ood_quantile=0.95, cv=5,
                 random_state=0, transform_input=None, memory=None, verbose=False):
        super().__init__(steps, transform_input=transform_input, memory=memory,
                         verbose=verbose)
        self.cheap_features = cheap_features
        self.cheap_classifier = cheap_classifier
        self.tolerance = tolerance
        self.ood_quantile = ood_quantile
        self.cv = cv
        self.random_state = random_state

    def __setstate__(self, state):
        if "threshold_" in state:  # saved before the gate: none, fold unknown
            state.setdefault("ood_limits_", None)
            state.setdefault("worst_fold_loss_", -1)
        super().__setstate__(state)

    # -- fit -------------------------------------------------------------------
    def cheap_classifier_template(self):
        """A new unfitted cheap-stage classifier (``cheap_classifier`` or ridge)."""
        if self.cheap_classifier is not None:
            return clone(self.cheap_classifier)
        from ..classifiers import RidgeSoftmaxClassifier

        return RidgeSoftmaxClassifier()

    # the steps validate their own parameters when they are fitted
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, groups=None, **params):
        """Fit the pipeline, the cheap stage and the threshold.

        Parameters
        ----------
        X : sequence of images or paths
            What the ``load`` step takes.

        y : array-like of shape (n_samples,)
            Class labels.

        groups : array-like of shape (n_samples,) or None, default=None
            Groups of near-identical photos, kept on one side of each
            out-of-fold split and left out together by the classifiers'
            leave-one-out (the ridge's penalty and calibration); None puts
            each photo in its own group.

        **params : dict
            None are taken: a ``TypeError`` says what to do instead. Per-photo
            weights (``clf__sample_weight``) need the pipeline without the
            cascade (``make_hybrid_pipeline(cascade=False)``); weights of
            the classes are a setting
            (``set_params(clf__class_weight='balanced')``).

        Returns
        -------
        self : CascadePipeline
        """
        return _fit.fit_cascade(self, X, y, groups, params)

    def fit_cheap_stage(self, train_x, train_y, y_oof, oof, groups=None):
        """Fit the cheap stage on a fitted pipeline's features; set the threshold.

        :meth:`fit` calls it; :func:`hybridclf.train_model`, which fits the
        pipeline on cached features, calls it with its own folds.

        Parameters
        ----------
        train_x : ndarray of shape (n_samples, n_features)
            The ``features`` step's output on the training photos.

        train_y : ndarray of shape (n_samples,)
            Their labels.

        y_oof : ndarray of shape (n_oof,)
            Labels of the out-of-fold rows.

        oof : dict
            The out-of-fold answers of both stages, as
            :func:`~hybridclf.cascade.out_of_fold_stages` returns them, with
            ``full_proba`` filled in.

        groups : ndarray of shape (n_samples,) or None, default=None
            The image each row of ``train_x`` was made from, when the
            ``augment`` step added views (:func:`~hybridclf.pipeline.view_groups`).

        Returns
        -------
        self : CascadePipeline
        """
        self._validate_params()  # train_model calls it without fit
        return _fit.fit_cheap_stage(self, train_x, train_y, y_oof, oof,
                                    groups=groups)

    def cascade_summary(self):
        """The threshold, the gate and out-of-fold statistics, for ``model.json``.

        Returns
        -------
        summary : dict
            ``cheap_features``, ``ood_limits``, ``threshold``,
            ``early_share``, the out-of-fold accuracies ``cheap_accuracy``,
            ``early_accuracy``, ``full_accuracy`` and ``cascade_accuracy``,
            and ``worst_fold_loss``.
        """
        check_is_fitted(self, "threshold_")
        summary = {"cheap_features": list(self.cheap_features),
                   "ood_limits": self.ood_limits_}
        for key in _STATS:
            value = float(getattr(self, f"{key}_"))
            summary[key] = value if np.isfinite(value) else None
        summary["worst_fold_loss"] = int(self.worst_fold_loss_)
        return summary

    # -- predict ---------------------------------------------------------------
    def iter_stages(self, X, *, full=None, min_confidence=None):
        """The cascade's answers stage by stage: the early answers first.

        Parameters
        ----------
        X : sequence of images or paths
            What ``predict`` takes.

        full : array-like of bool of shape (n_samples,) or None, default=None
            Photos that must run every block (their CNN embedding is
            wanted); never answered early.

        min_confidence : float, array-like of shape (n_samples,) or None, \
                default=None
            The caller's confidence threshold (``predict --threshold``, the
            service's ``confidence_threshold``), for all photos or each: a
            photo is answered early only when its cheap top probability
            reaches it too, else the full model answers it (the cheap
            stage's answer would be "low confidence" where the full model
            may be sure). None: ``threshold_`` alone.

        Yields
        ------
        rows : ndarray of int
            The photos of the stage, as indices into ``X``; never empty. The
            photos answered early come first (if any), then the others.

        features : ndarray of shape (len(rows), n_features), dtype float32
            The ``features`` step's output; NaN in the columns of the blocks
            that did not run (the full stage's, on photos answered early).

        proba : ndarray of shape (len(rows), n_classes)
            Class probabilities (``classes_`` order): the cheap stage's, then
            the full model's.

        early : bool
            Whether the stage is the cheap stage's (the early answers).
        """
        yield from _stages.iter_stages(self, X, full=full,
                                       min_confidence=min_confidence)

    def predict_stages(self, X, *, full=None, min_confidence=None):
        """Features, probabilities and early exits of the cascade.

        Parameters
        ----------
        X : sequence of images or paths
            What ``predict`` takes.

        full : array-like of bool of shape (n_samples,) or None, default=None
            Photos that must run every block, as in :meth:`iter_stages`.

        min_confidence : float, array-like of shape (n_samples,) or None, \
                default=None
            The caller's confidence threshold, as in :meth:`iter_stages`.

        Returns
        -------
        features : ndarray of shape (n_samples, n_features), dtype float32
            The ``features`` step's output; NaN in the columns of blocks that
            did not run (the full stage's blocks on photos answered early).

        proba : ndarray of shape (n_samples, n_classes)
            Class probabilities (``classes_`` order): the cheap stage's for
            photos answered early, the full model's for the others.

        early : ndarray of shape (n_samples,), dtype bool
            Whether each photo was answered by the cheap stage.
        """
        return _stages.predict_stages(self, X, full=full,
                                      min_confidence=min_confidence)

    def stages_from_features(self, features, full_proba):
        """The cascade's answers from the full feature table (for evaluation).

        Parameters
        ----------
        features : ndarray of shape (n_samples, n_features)
            The ``features`` step's output with every block computed, as
            from :func:`hybridclf.prediction.transform_features`.

        full_proba : ndarray of shape (n_samples, n_classes)
            The full classifier's probabilities on them.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            What :meth:`predict_proba` gives for these photos.

        early : ndarray of shape (n_samples,), dtype bool
            Photos the cheap stage answers.
        """
        return _stages.stages_from_features(self, features, full_proba)

    def predict_proba(self, X, **params):
        """Class probabilities, from the cheap stage where it is confident."""
        return self.predict_stages(X)[1]

    def predict(self, X, **params):
        """Class labels, from the cheap stage where it is confident."""
        proba = self.predict_proba(X)
        return get_classifier(self).classes_[proba.argmax(axis=1)]

    def predict_log_proba(self, X, **params):
        """Logarithm of :meth:`predict_proba`."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def _has_decision_function(self):
        # the error hasattr() and getattr(..., None) see: scikit-learn then
        # takes predict_proba (scorers, CalibratedClassifierCV)
        raise AttributeError(
            "CascadePipeline has no decision_function: its answers come from "
            "the cheap classifier or the full one, photo by photo. Use "
            "predict_proba (the cascade's), or the full model's decision values: "
            "get_classifier(pipe).decision_function(transform_features(pipe, X)).")

    @available_if(_has_decision_function)
    def decision_function(self, X, **params):
        """Not available: use :meth:`predict_proba`.

        ``Pipeline.decision_function`` would run the full model on every
        photo, whose decision values ``predict`` does not follow where the
        cheap stage answers. Without it, scikit-learn's tools that prefer
        decision values (``CalibratedClassifierCV``, the ``"roc_auc"``,
        ``"average_precision"`` and ``"top_k_accuracy"`` scorers) use the
        cascade's :meth:`predict_proba`, with its early exits.
        """

    def score(self, X, y, sample_weight=None, **params):
        """Accuracy of :meth:`predict`."""
        from sklearn.metrics import accuracy_score

        return accuracy_score(y, self.predict(X), sample_weight=sample_weight)
