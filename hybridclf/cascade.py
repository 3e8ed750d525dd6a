"""A calibrated cascade: cheap feature blocks answer the easy photos alone.

:class:`CascadePipeline` is the hybrid pipeline (steps ``load``, ``augment``,
``features``, ``clf``, so every accessor of :mod:`hybridclf.pipeline` works on
it) with a second, cheap classifier on some of its feature blocks (HOG, LBP
and colour by default). At prediction the cheap blocks run first; a photo
whose calibrated top probability from the cheap classifier reaches
``threshold_`` is answered there, and only the other photos run the remaining
blocks (the CNN) and the full classifier. The cheap blocks' features are
reused by the full stage: no block runs twice on a photo.

The threshold is learned in ``fit`` from grouped out-of-fold predictions of
both stages: the lowest threshold at which the cascade's out-of-fold accuracy,
and that of every higher threshold, stays within ``tolerance`` of the full
model's, counting only the photos it loses (:func:`select_threshold`).
"""

import logging

import numpy as np
from imblearn.pipeline import Pipeline
from sklearn.base import clone
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from .pipeline import (
    get_block_extractor,
    get_classifier,
    get_feature_union,
    get_loader,
    get_sampler,
    iter_feature_blocks,
)

__all__ = [
    "CHEAP_FEATURES",
    "CascadePipeline",
    "block_columns",
    "is_cascade",
    "out_of_fold_stages",
    "select_threshold",
]

logger = logging.getLogger(__name__)

#: The blocks of the cheap stage by default: about 2 ms a photo together.
CHEAP_FEATURES = ("hog", "lbp", "color")


def is_cascade(pipe):
    """Whether ``pipe`` is a :class:`CascadePipeline`."""
    return isinstance(pipe, CascadePipeline)


def block_columns(blocks, names):
    """Column indices of the blocks ``names`` in a table of ``blocks``.

    Parameters
    ----------
    blocks : list of (str, int)
        Block names and widths in column order, as from
        :func:`hybridclf.prediction.feature_blocks`.

    names : sequence of str
        The blocks wanted.

    Returns
    -------
    columns : ndarray of int
        In the order of ``blocks``.

    Examples
    --------
    >>> from hybridclf.cascade import block_columns
    >>> block_columns([("cnn", 3), ("hog", 2)], ["hog"])
    array([3, 4])
    """
    columns, start = [], 0
    for name, width in blocks:
        if name in names:
            columns.extend(range(start, start + width))
        start += width
    return np.asarray(columns, dtype=np.intp)


def select_threshold(y, full_proba, cheap_proba, classes, *, tolerance=0.005):
    """The cheap stage's confidence threshold, from out-of-fold probabilities.

    The cascade answers with the cheap stage when its top probability is at
    least the threshold, else with the full model. Scanning thresholds from
    high (nothing answered early) to low, the threshold kept is the last one
    before the photos the cascade loses (the cheap stage wrong where the full
    model is right) first exceed ``tolerance`` times the photos; photos the
    cheap stage alone gets right do not offset them. So the cascade's
    out-of-fold accuracy is at least the full model's minus ``tolerance``.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        True labels.

    full_proba, cheap_proba : ndarray of shape (n_samples, n_classes)
        Out-of-fold probabilities of the full model and of the cheap stage,
        columns in ``classes`` order.

    classes : ndarray of shape (n_classes,)
        The class labels.

    tolerance : float, default=0.005
        Accuracy the cascade may lose against the full model.

    Returns
    -------
    stats : dict
        ``threshold`` (``inf`` when no photo can be answered early),
        ``early_share``, ``cheap_accuracy``, ``early_accuracy``,
        ``full_accuracy`` and ``cascade_accuracy``, all out of fold.
    """
    y = np.asarray(y)
    classes = np.asarray(classes)
    full_ok = classes[np.argmax(full_proba, axis=1)] == y
    cheap_ok = classes[np.argmax(cheap_proba, axis=1)] == y
    top = np.max(cheap_proba, axis=1)
    order = np.argsort(-top, kind="stable")
    # photos answered early at each cut: the k most confident. Only losses
    # count (the cheap stage wrong where the full model is right): a photo
    # the cheap stage gets right by luck does not buy room for a mistake.
    losses = np.cumsum(~cheap_ok[order] & full_ok[order])
    threshold, k_best = np.inf, 0
    for k in range(1, len(y) + 1):
        if k < len(y) and top[order[k]] == top[order[k - 1]]:
            continue  # a threshold cannot split tied confidences
        if losses[k - 1] > tolerance * len(y) + 1e-9:
            break
        threshold, k_best = float(top[order[k - 1]]), k
    early = top >= threshold
    cascade_ok = np.where(early, cheap_ok, full_ok)
    return {
        "threshold": threshold,
        "early_share": float(k_best / len(y)),
        "cheap_accuracy": float(cheap_ok.mean()),
        "early_accuracy": float(cheap_ok[early].mean()) if k_best else float("nan"),
        "full_accuracy": float(full_ok.mean()),
        "cascade_accuracy": float(cascade_ok.mean()),
    }


def out_of_fold_stages(fold_features, n_samples, classes, cheap_columns,
                       full_classifier, cheap_classifier):
    """Out-of-fold probabilities of the full model and of the cheap stage.

    Parameters
    ----------
    fold_features : iterable of (test_index, train_x, train_y, test_x)
        Per fold: the test rows and the scaled feature tables of all blocks
        (the input of the full classifier).

    n_samples : int
        Rows of the out-of-fold tables.

    classes : ndarray of shape (n_classes,)
        The class labels (columns of the returned tables).

    cheap_columns : ndarray of int
        The columns of the cheap blocks.

    full_classifier, cheap_classifier : classifier
        Unfitted; cloned for each fold. ``full_classifier`` may be None when
        the full model's out-of-fold probabilities are known already.

    Returns
    -------
    full_proba, cheap_proba : ndarray of shape (n_samples, n_classes)
        ``full_proba`` is None without ``full_classifier``.
    """
    full = np.zeros((n_samples, len(classes)))
    cheap = np.zeros((n_samples, len(classes)))
    stages = [(cheap, cheap_classifier, cheap_columns)]
    if full_classifier is not None:
        stages.append((full, full_classifier, slice(None)))
    for test, train_x, train_y, test_x in fold_features:
        for out, clf, cols in stages:
            model = clone(clf).fit(train_x[:, cols], train_y)
            columns = np.searchsorted(classes, model.classes_)
            out[np.ix_(test, columns)] = model.predict_proba(test_x[:, cols])
    return (full if full_classifier is not None else None), cheap


def _scaled_folds(images, y, blocks, splits, sampler):
    """Yield (test, train_x, train_y, test_x) per fold, each block scaled.

    A block that learns nothing from the images is computed once for all
    photos (without a sampler); the others, and every scaler, are fitted on
    each training fold, as fitting the pipeline there would.
    """
    fixed = {}
    if sampler is None:
        for name, block in blocks:
            extract = get_block_extractor(block)
            if not getattr(extract, "learns_from_images", lambda: True)():
                fixed[name] = np.asarray(clone(extract).fit_transform(images))
    for train, test in splits:
        train_images, train_y = images[train], y[train]
        if sampler is not None:
            train_images, train_y = clone(sampler).fit_resample(train_images, train_y)
        parts_train, parts_test = [], []
        for name, block in blocks:
            if name in fixed:
                a, b = fixed[name][train], fixed[name][test]
            else:
                extract = clone(get_block_extractor(block))
                a = extract.fit_transform(train_images, train_y)
                b = extract.transform(images[test])
            scaler = StandardScaler().fit(a)
            parts_train.append(scaler.transform(a))
            parts_test.append(scaler.transform(b))
        yield (test, np.hstack(parts_train).astype(np.float32), train_y,
               np.hstack(parts_test).astype(np.float32))


class CascadePipeline(Pipeline):
    """The hybrid pipeline with an early exit for photos the cheap blocks know.

    Build it with ``make_hybrid_pipeline(cascade=True)``. It has the steps of
    the hybrid pipeline and, after ``fit``, a second classifier on the
    blocks ``cheap_features`` (scaled by the pipeline's own block scalers).
    ``predict`` and ``predict_proba`` run those blocks first and answer
    every photo whose cheap top probability reaches ``threshold_``; only the
    other photos run the remaining blocks and the full classifier.

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
        Out-of-fold accuracy the cascade may lose against the full model.

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

    early_share_ : float
        Out-of-fold share of the training photos answered early.

    cheap_accuracy_, early_accuracy_, full_accuracy_, cascade_accuracy_ : float
        Out-of-fold accuracy of the cheap stage on every photo, of the cheap
        stage on the photos it answers, of the full model, and of the
        cascade.

    See Also
    --------
    hybridclf.make_hybrid_pipeline : Builds it with ``cascade=True``.

    Examples
    --------
    >>> from hybridclf import make_hybrid_pipeline
    >>> pipe = make_hybrid_pipeline(cascade=True)
    >>> type(pipe).__name__, pipe.cheap_features
    ('CascadePipeline', ('hog', 'lbp', 'color'))
    """

    def __init__(self, steps, *, cheap_features=CHEAP_FEATURES,
                 cheap_classifier=None, tolerance=0.005, cv=5, random_state=0,
                 transform_input=None, memory=None, verbose=False):
        super().__init__(steps, transform_input=transform_input, memory=memory,
                         verbose=verbose)
        self.cheap_features = cheap_features
        self.cheap_classifier = cheap_classifier
        self.tolerance = tolerance
        self.cv = cv
        self.random_state = random_state

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
        from .classifiers import RidgeSoftmaxClassifier

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
            raise ValueError(
                "CascadePipeline.fit needs at least 2 groups and 2 photos per class "
                "to choose its threshold out of fold. Add photos or fewer groups."
            )
        splits = list(StratifiedGroupKFold(
            n_splits, shuffle=True, random_state=self.random_state,
        ).split(images, y, groups))
        blocks = list(iter_feature_blocks(self))
        folds = list(_scaled_folds(images, y, blocks, splits, get_sampler(self)))
        train_x, train_y = self._fit_steps(images, y, params)
        classes = get_classifier(self).classes_
        full_proba, cheap_proba = out_of_fold_stages(
            folds, len(y), classes, block_columns(self._block_widths(), cheap),
            get_classifier(self), self.cheap_classifier_template())
        return self.fit_cheap_stage(train_x, train_y, y, full_proba, cheap_proba)

    def _fit_steps(self, images, y, params):
        """Fit the steps after ``load`` as ``Pipeline.fit`` would; return features."""
        if params:
            raise TypeError(
                "CascadePipeline.fit takes no step fit parameters; got "
                f"{sorted(params)}. Set them with set_params instead."
            )
        sampler = get_sampler(self)
        if sampler is not None:
            images, y = sampler.fit_resample(images, y)
        train_x = np.asarray(get_feature_union(self).fit_transform(images, y),
                             dtype=np.float32)
        get_classifier(self).fit(train_x, y)
        return train_x, y

    def _block_widths(self):
        return [(name, int(block[-1].n_features_in_) if hasattr(block, "steps")
                 else int(len(block.get_feature_names_out())))
                for name, block in iter_feature_blocks(self)]

    def fit_cheap_stage(self, train_x, train_y, y_oof, full_proba, cheap_proba):
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

        full_proba, cheap_proba : ndarray of shape (n_oof, n_classes)
            Out-of-fold probabilities of both stages
            (:func:`out_of_fold_stages`).

        Returns
        -------
        self : CascadePipeline
        """
        cheap = self._cheap_blocks()
        columns = block_columns(self._block_widths(), cheap)
        self.cheap_classifier_ = self.cheap_classifier_template().fit(
            np.asarray(train_x)[:, columns], train_y)
        stats = select_threshold(y_oof, full_proba, cheap_proba,
                                 get_classifier(self).classes_,
                                 tolerance=self.tolerance)
        for key, value in stats.items():
            setattr(self, f"{key}_", value)
        logger.info(
            "Cascade: threshold %.3f answers %.0f%% of the photos early; out of "
            "fold accuracy %.3f (full %.3f, cheap %.3f)", self.threshold_,
            100 * self.early_share_, self.cascade_accuracy_, self.full_accuracy_,
            self.cheap_accuracy_)
        return self

    def cascade_summary(self):
        """The threshold and out-of-fold statistics, for ``model.json``.

        Returns
        -------
        summary : dict
            ``cheap_features``, ``threshold``, ``early_share`` and the
            out-of-fold accuracies ``cheap_accuracy``, ``early_accuracy``,
            ``full_accuracy`` and ``cascade_accuracy``.
        """
        check_is_fitted(self, "threshold_")
        keys = ["threshold", "early_share", "cheap_accuracy", "early_accuracy",
                "full_accuracy", "cascade_accuracy"]
        summary = {"cheap_features": list(self.cheap_features)}
        for key in keys:
            value = float(getattr(self, f"{key}_"))
            summary[key] = value if np.isfinite(value) else None
        return summary

    # -- predict ---------------------------------------------------------------
    def predict_stages(self, X):
        """Features, probabilities and early exits of the cascade.

        Parameters
        ----------
        X : sequence of images or paths
            What ``predict`` takes.

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
        check_is_fitted(self, "threshold_")
        loader = get_loader(self)
        images = np.asarray(X if loader is None else loader.transform(X))
        cheap = tuple(self.cheap_features)
        blocks = list(iter_feature_blocks(self))
        parts = {name: np.asarray(block.transform(images), dtype=np.float32)
                 for name, block in blocks if name in cheap}
        cheap_proba, early = self._cheap_stage(
            np.hstack([parts[name] for name, _ in blocks if name in cheap]))
        late = np.flatnonzero(~early)
        for name, block in blocks:
            if name not in parts:
                width = dict(self._block_widths())[name]
                part = np.full((len(images), width), np.nan, dtype=np.float32)
                if len(late):
                    part[late] = block.transform(images[late])
                parts[name] = part
        features = np.hstack([parts[name] for name, _ in blocks])
        clf = get_classifier(self)
        full_proba = np.zeros((len(images), len(clf.classes_)))
        if len(late):
            full_proba[late] = clf.predict_proba(features[late])
        return features, self._merge(cheap_proba, full_proba, early), early

    def _cheap_stage(self, cheap_x):
        cheap_proba = self.cheap_classifier_.predict_proba(cheap_x)
        return cheap_proba, cheap_proba.max(axis=1) >= self.threshold_

    def _merge(self, cheap_proba, full_proba, early):
        """The cheap stage's probabilities on early rows, the full model's else."""
        proba = np.array(full_proba, dtype=np.float64)
        columns = np.searchsorted(get_classifier(self).classes_,
                                  self.cheap_classifier_.classes_)
        rows = np.flatnonzero(early)
        proba[rows] = 0.0
        proba[np.ix_(rows, columns)] = cheap_proba[early]
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
        return self._merge(cheap_proba, full_proba, early), early

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
