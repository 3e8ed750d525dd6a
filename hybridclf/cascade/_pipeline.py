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
predictions of both stages (:mod:`hybridclf.cascade._threshold`).
"""

import logging
import warnings

import numpy as np
from imblearn.pipeline import Pipeline
from sklearn.base import clone
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.utils.validation import check_is_fitted

from ..pipeline import (
    fit_classifier,
    get_block_scaler,
    get_classifier,
    get_loader,
    get_sampler,
    iter_feature_blocks,
    view_groups,
)
from ..prediction import block_ood_scores, transform_blocks
from ..view_sampling import ViewAugmenter
from ._threshold import (
    block_columns,
    fixed_features,
    fixed_rows,
    ood_limits,
    out_of_fold_stages,
    resample,
    scaled_folds,
    select_threshold,
)

__all__ = ["CHEAP_FEATURES", "CascadePipeline", "is_cascade"]

logger = logging.getLogger(__name__)

#: The blocks of the cheap stage by default: about 2 ms a photo together.
CHEAP_FEATURES = ("hog", "lbp", "color")

#: The out-of-fold statistics kept as attributes (``<key>_``) and in model.json.
_STATS = ("threshold", "early_share", "cheap_accuracy", "early_accuracy",
          "full_accuracy", "cascade_accuracy", "worst_fold_loss")


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

    ood_quantile : float or None, default=0.99
        The gate: a photo whose out-of-distribution score in a cheap block
        (:func:`~hybridclf.prediction.block_ood_scores`) is above this
        quantile of the out-of-fold scores goes on to the full model, however
        sure the cheap stage is. So a photo unlike the training photos meets
        the novelty check in the CNN embedding, which the cheap stage cannot
        run. None answers early by confidence alone.

    cv : int, default=5
        Grouped folds (``StratifiedGroupKFold``) of the out-of-fold
        predictions that choose the threshold; fewer when there are fewer
        groups.

    random_state : int, default=0
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

    def __init__(self, steps, *, cheap_features=CHEAP_FEATURES,
                 cheap_classifier=None, tolerance=0.005, ood_quantile=0.99, cv=5,
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
    def _cheap_blocks(self):
        names = [name for name, _ in iter_feature_blocks(self)]
        cheap = tuple(self.cheap_features)
        if not cheap or set(cheap) - set(names) or set(names) <= set(cheap):
            raise ValueError(
                "The 'cheap_features' parameter of CascadePipeline must name some "
                f"but not all of the feature blocks {names}. Got {cheap!r} instead; "
                "pass e.g. cheap_features=('hog', 'lbp', 'color')."
            )
        return cheap

    def cheap_classifier_template(self):
        """A new unfitted cheap-stage classifier (``cheap_classifier`` or ridge)."""
        if self.cheap_classifier is not None:
            return clone(self.cheap_classifier)
        from ..classifiers import RidgeSoftmaxClassifier

        return RidgeSoftmaxClassifier()

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
            out-of-fold split; None puts each photo in its own group.

        **params : dict
            Fit parameters of the steps (``step__param``).

        Returns
        -------
        self : CascadePipeline
        """
        cheap = self._cheap_blocks()
        y = np.asarray(y)
        loader = get_loader(self)
        images = X if loader is None else loader.fit_transform(X, y)
        images = np.asarray(images)
        groups = np.arange(len(y)) if groups is None else np.asarray(groups)
        n_splits = min(self.cv, len(np.unique(groups)),
                       int(np.unique(y, return_counts=True)[1].min()))
        if n_splits < 2:
            return self._fit_without_early_exit(images, y, params)
        splits = list(StratifiedGroupKFold(
            n_splits, shuffle=True, random_state=self.random_state,
        ).split(images, y, groups))
        blocks = list(iter_feature_blocks(self))
        sampler = get_sampler(self)
        fixed = fixed_features(images, blocks) if sampler is None or isinstance(
            sampler, ViewAugmenter) else {}
        folds = list(scaled_folds(images, y, blocks, splits, sampler, fixed))
        train_x, train_y, view_rows = self._fit_steps(images, y, params, fixed)
        oof = out_of_fold_stages(
            folds, len(y), get_classifier(self).classes_, self._block_widths(),
            cheap, get_classifier(self), self.cheap_classifier_template())
        return self.fit_cheap_stage(train_x, train_y, y, oof, groups=view_rows)

    def _fit_without_early_exit(self, images, y, params):
        """Too few photos for out-of-fold answers: fit the full model only."""
        warnings.warn(
            "CascadePipeline.fit needs at least 2 groups and 2 photos per class "
            "to choose its threshold out of fold; every photo will run every "
            "block. Add photos, or build the pipeline with cascade=False.",
            UserWarning, stacklevel=3)
        self._fit_steps(images, y, params, {})
        self.cheap_classifier_, self.ood_limits_ = None, None
        for key in _STATS:
            setattr(self, f"{key}_", np.inf if key == "threshold" else np.nan)
        self.worst_fold_loss_ = 0
        return self

    def _fit_steps(self, images, y, params, fixed):
        """Fit the steps after ``load`` as ``Pipeline.fit`` would.

        Returns the features, their labels and the image each row was made
        from (None when the sampler added no rows).

        The blocks of ``fixed`` take their fitted extractor from there and
        fit only their scaler: no photo is extracted twice.
        """
        if params:
            raise TypeError(
                "CascadePipeline.fit takes no step fit parameters; got "
                f"{sorted(params)}. Set them with set_params instead."
            )
        sampler, n_images, loaded = get_sampler(self), len(y), images
        blocks = list(iter_feature_blocks(self))
        if sampler is not None:
            images, y = resample(sampler, images, y, blocks, fixed)
        groups = view_groups(sampler, n_images, len(y))
        parts = []
        for name, block in blocks:
            if name in fixed:
                block.steps[0] = (block.steps[0][0], fixed[name][0])
                parts.append(get_block_scaler(block).fit_transform(fixed_rows(
                    fixed, name, np.arange(n_images), sampler, loaded)))
            else:
                parts.append(block.fit_transform(images, y))
        train_x = np.hstack(parts).astype(np.float32)
        fit_classifier(get_classifier(self), train_x, y, groups)
        return train_x, y, groups

    def _block_widths(self):
        return [(name, int(block[-1].n_features_in_) if hasattr(block, "steps")
                 else int(len(block.get_feature_names_out())))
                for name, block in iter_feature_blocks(self)]

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
        cheap = self._cheap_blocks()
        blocks = self._block_widths()
        self.cheap_classifier_ = fit_classifier(
            self.cheap_classifier_template(),
            np.asarray(train_x)[:, block_columns(blocks, cheap)], train_y, groups)
        self.ood_limits_ = ood_limits(
            oof["cheap_ood"], [name for name, _ in blocks if name in cheap],
            self.ood_quantile)
        stats = select_threshold(
            y_oof, oof["full_proba"], oof["cheap_proba"],
            get_classifier(self).classes_, tolerance=self.tolerance,
            fold=oof["fold"], eligible=self._in_gate(oof["cheap_ood"]))
        for key in _STATS:
            setattr(self, f"{key}_", stats[key])
        logger.info(
            "Cascade: threshold %.3f answers %.0f%% of the photos early; out of "
            "fold accuracy %.3f (full %.3f, cheap %.3f)", self.threshold_,
            100 * self.early_share_, self.cascade_accuracy_, self.full_accuracy_,
            self.cheap_accuracy_)
        return self

    def _in_gate(self, cheap_ood):
        """Whether each photo's cheap-block OOD scores are within the gate."""
        if self.ood_limits_ is None:
            return np.ones(len(cheap_ood), dtype=bool)
        limits = np.array(list(self.ood_limits_.values()))
        return np.all(cheap_ood <= limits, axis=1)

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
    def iter_stages(self, X, *, full=None):
        """The cascade's answers stage by stage: the early answers first.

        Parameters
        ----------
        X : sequence of images or paths
            What ``predict`` takes.

        full : array-like of bool of shape (n_samples,) or None, default=None
            Photos that must run every block (their CNN embedding is
            wanted); never answered early.

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
        check_is_fitted(self, "threshold_")
        loader = get_loader(self)
        images = np.asarray(X if loader is None else loader.transform(X))
        blocks = list(iter_feature_blocks(self))
        cheap = [(name, block) for name, block in blocks
                 if name in self.cheap_features]
        parts = dict(zip([name for name, _ in cheap], transform_blocks(
            [block for _, block in cheap], images)))
        cheap_proba, early = self._cheap_stage(
            np.hstack([parts[name] for name, _ in cheap]))
        if full is not None:
            early &= ~np.asarray(full, dtype=bool)
        widths = dict(self._block_widths())
        rows = np.flatnonzero(early)
        if len(rows):
            table = np.hstack([
                parts[name][rows] if name in parts
                else np.full((len(rows), widths[name]), np.nan, dtype=np.float32)
                for name, _ in blocks])
            yield rows, table, self._early_proba(cheap_proba[rows]), True
        rows = np.flatnonzero(~early)
        if len(rows):
            rest = [(name, block) for name, block in blocks if name not in parts]
            late = dict(zip([name for name, _ in rest], transform_blocks(
                [block for _, block in rest], images[rows])))
            table = np.hstack([parts[name][rows] if name in parts else late[name]
                               for name, _ in blocks])
            yield rows, table, get_classifier(self).predict_proba(table), False

    def predict_stages(self, X, *, full=None):
        """Features, probabilities and early exits of the cascade.

        Parameters
        ----------
        X : sequence of images or paths
            What ``predict`` takes.

        full : array-like of bool of shape (n_samples,) or None, default=None
            Photos that must run every block, as in :meth:`iter_stages`.

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
        n_samples = len(X)
        features = np.zeros((n_samples, sum(w for _, w in self._block_widths())),
                            dtype=np.float32)
        proba = np.zeros((n_samples, len(get_classifier(self).classes_)))
        early = np.zeros(n_samples, dtype=bool)
        for rows, table, stage_proba, stage_early in self.iter_stages(X,
                                                                      full=full):
            features[rows], proba[rows], early[rows] = table, stage_proba, stage_early
        return features, proba, early

    def _cheap_stage(self, cheap_x):
        """The cheap stage's probabilities, and which photos it answers."""
        if self.cheap_classifier_ is None:  # fitted on too few photos
            n_classes = len(get_classifier(self).classes_)
            return (np.full((len(cheap_x), n_classes), 1.0 / n_classes),
                    np.zeros(len(cheap_x), dtype=bool))
        cheap_proba = self.cheap_classifier_.predict_proba(cheap_x)
        early = cheap_proba.max(axis=1) >= self.threshold_
        if self.ood_limits_ is not None:
            cheap = [(name, width) for name, width in self._block_widths()
                     if name in self.cheap_features]
            early &= self._in_gate(block_ood_scores(cheap_x, cheap))
        return cheap_proba, early

    def _early_proba(self, cheap_proba):
        """The cheap stage's probabilities in the columns of ``classes_``."""
        classes = get_classifier(self).classes_
        proba = np.zeros((len(cheap_proba), len(classes)))
        proba[:, np.searchsorted(classes, self.cheap_classifier_.classes_)] = (
            cheap_proba)
        return proba

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
        check_is_fitted(self, "threshold_")
        columns = block_columns(self._block_widths(), tuple(self.cheap_features))
        cheap_proba, early = self._cheap_stage(np.asarray(features)[:, columns])
        proba = np.array(full_proba, dtype=np.float64)
        if early.any():
            proba[early] = self._early_proba(cheap_proba[early])
        return proba, early

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

    def score(self, X, y, sample_weight=None, **params):
        """Accuracy of :meth:`predict`."""
        from sklearn.metrics import accuracy_score

        return accuracy_score(y, self.predict(X), sample_weight=sample_weight)
