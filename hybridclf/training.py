"""Training a hybrid pipeline honestly: grouped split, cross-validation, search.

:func:`train_model` is what ``hybridclf train`` runs:

1. a test part is split off by **groups** of near-identical images
   (:func:`duplicate_groups` or a CSV read by :func:`read_groups_csv`), so no
   copy of a test image is trained on (:func:`grouped_train_test_split`);
2. the training part is cross-validated with ``StratifiedGroupKFold``. The
   features of each fold are computed **once** and kept in memory; the
   default classifier and every candidate of a classifier search are fitted
   on them, so a search over 20 values of ``C`` costs 20 small fits per fold,
   not 20 feature extractions. A grid over feature parameters falls back to
   scikit-learn's searches with the pipeline's ``memory`` cache;
3. the out-of-fold predictions set the open-set thresholds (see
   :mod:`hybridclf.prediction`);
4. the final pipeline is fitted on the whole training part and scored on the
   test part.
"""

import hashlib
import logging
import os
import time
import warnings
from dataclasses import dataclass, field
from itertools import product

import numpy as np
from sklearn.base import clone
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score
from sklearn.model_selection import ParameterGrid, StratifiedGroupKFold
from threadpoolctl import threadpool_limits

from .neighbours import degraded_views, index_with_views, novelty_scores
from .prediction import (
    _is_off,
    block_ood_scores,
    embed_images,
    feature_blocks,
    transform_features,
)

__all__ = [
    "SEARCH_GRIDS",
    "TrainingResult",
    "data_fingerprint",
    "duplicate_groups",
    "grouped_train_test_split",
    "novelty_threshold",
    "read_groups_csv",
    "train_model",
]

logger = logging.getLogger(__name__)

#: The grids of ``train_model(search="grid" | "halving")``, by classifier name
#: of :func:`~hybridclf.make_hybrid_pipeline`. Each has about 20 candidates;
#: all tune the classifier only, so fold features are computed once.
SEARCH_GRIDS = {
    "ridge": {"clf__alphas": [(float(a),) for a in np.logspace(0, 4, 20)]},
    "logistic": {"clf__C": np.logspace(-3, 3, 20).tolist()},
    "svc": {
        "clf__estimator__C": [0.1, 1.0, 10.0, 100.0],
        "clf__estimator__gamma": ["scale", 1e-4, 1e-3, 1e-2, 1e-1],
    },
    "random_forest": {
        "clf__max_features": ["sqrt", "log2", 0.05, 0.1, 0.2],
        "clf__min_samples_leaf": [1, 2, 4, 8],
    },
    "extra_trees": {
        "clf__max_features": ["sqrt", "log2", 0.05, 0.1, 0.2],
        "clf__min_samples_leaf": [1, 2, 4, 8],
    },
    "hist_gradient_boosting": {
        "clf__learning_rate": [0.03, 0.1, 0.3, 0.5],
        "clf__max_leaf_nodes": [7, 15, 31, 63, 127],
    },
    "soft_voting": {
        "clf__logistic__C": np.logspace(-2, 2, 5).tolist(),
        "clf__weights": [None, [2, 1, 1, 1], [1, 2, 1, 1], [1, 1, 2, 1]],
    },
    "stacking": {"clf__final_estimator__C": np.logspace(-3, 3, 20).tolist()},
}

_SEARCHES = ("none", "grid", "halving")


# -- groups --------------------------------------------------------------------
def _content_groups(paths):
    """Group ids of byte-identical files (the fallback without the inspector)."""
    ids, groups = {}, np.empty(len(paths), dtype=np.int64)
    for i, path in enumerate(paths):
        try:
            with open(path, "rb") as fh:
                key = hashlib.sha256(fh.read()).hexdigest()
        except OSError:
            key = f"unreadable:{i}"
        groups[i] = ids.setdefault(key, len(ids))
    return groups


def duplicate_groups(paths, *, n_jobs=None):
    """One group id per image; near-identical images share one.

    Uses the dataset inspector's ``hybridclf.dataset.find_duplicate_groups``.
    Where that is not available, only byte-identical files are grouped, and a
    warning says so.

    Parameters
    ----------
    paths : sequence of str
        Image files.

    n_jobs : int, default=None
        Threads for the inspector. ``None`` means 1 unless in a
        :func:`joblib.parallel_config` context; ``-1`` means all processors.

    Returns
    -------
    groups : ndarray of shape (n_images,), dtype int
        Group id of each image.
    """
    try:
        from .dataset import find_duplicate_groups
    except ImportError:
        warnings.warn(
            "hybridclf.dataset.find_duplicate_groups is not available; only "
            "byte-identical files are grouped, so near-identical photos may land "
            "on both sides of a split. Pass a groups CSV to group them.",
            UserWarning,
            stacklevel=2,
        )
        return _content_groups(paths)
    return np.asarray(find_duplicate_groups(list(paths), n_jobs=n_jobs))


def read_groups_csv(csv_path, paths, *, root=None):
    """Read group ids from a CSV with the columns ``file`` and ``group``.

    A ``file`` may be given as the path itself, relative to ``root``, or by a
    path that resolves to the same file. Images that the CSV does not name
    get a group of their own. ``hybridclf augment``'s ``manifest.csv`` also
    works: its ``source`` column is taken when there is no ``group`` column.

    Parameters
    ----------
    csv_path : str or os.PathLike
        The CSV file.

    paths : sequence of str
        The images to group.

    root : str or os.PathLike, default=None
        Folder that relative names in the CSV start from; default: the CSV's
        folder and the current folder are both tried.

    Returns
    -------
    groups : ndarray of shape (n_images,), dtype int
        Group id of each image.

    Raises
    ------
    ValueError
        When the CSV lacks a ``file`` or a ``group`` (or ``source``) column.
    """
    import csv

    with open(csv_path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    columns = set(rows[0]) if rows else set()
    group_column = "group" if "group" in columns else "source"
    if "file" not in columns or group_column not in columns:
        raise ValueError(
            f"The groups CSV {os.fspath(csv_path)!r} must have the columns 'file' "
            f"and 'group'. Got the columns {sorted(columns)!r} instead."
        )
    bases = [os.fspath(root)] if root is not None else [
        os.path.dirname(os.path.abspath(csv_path)), os.getcwd()]
    by_file = {}
    for row in rows:
        name = row["file"]
        candidates = [name] if os.path.isabs(name) else [
            os.path.join(base, name) for base in bases]
        for candidate in candidates:
            by_file[os.path.realpath(candidate)] = row[group_column]
    labels, missing = [], 0
    for i, path in enumerate(paths):
        key = by_file.get(os.path.realpath(path))
        if key is None:
            missing += 1
            key = f"\0own:{i}"
        labels.append(key)
    if missing:
        logger.warning("%d of %d images are not in %s; each gets its own group",
                       missing, len(paths), csv_path)
    _, groups = np.unique(np.asarray(labels, dtype=object).astype(str),
                          return_inverse=True)
    return groups.astype(np.int64)


def grouped_train_test_split(labels, groups, *, test_size=0.2, random_state=0):
    """Split indices into a training and a test part that share no group.

    The split is the first fold of a shuffled ``StratifiedGroupKFold`` with
    ``round(1 / test_size)`` folds: classes keep about their proportions,
    and every group lies wholly on one side.

    Parameters
    ----------
    labels : array-like of shape (n_samples,)
        Class of each sample.

    groups : array-like of shape (n_samples,)
        Group id of each sample.

    test_size : float, default=0.2
        About the share of samples in the test part, in (0, 0.5].

    random_state : int, default=0
        Seeds the shuffle.

    Returns
    -------
    train : ndarray of int
        Indices of the training part.

    test : ndarray of int
        Indices of the test part.

    Examples
    --------
    >>> from hybridclf.training import grouped_train_test_split
    >>> labels = ["a"] * 6 + ["b"] * 6
    >>> groups = [0, 0, 1, 2, 3, 4, 5, 5, 6, 7, 8, 9]
    >>> train, test = grouped_train_test_split(labels, groups, test_size=0.25)
    >>> set(groups[i] for i in train) & set(groups[i] for i in test)
    set()
    """
    if not 0 < test_size <= 0.5:
        raise ValueError(
            "The 'test_size' parameter of grouped_train_test_split must be a float "
            f"in the range (0, 0.5]. Got {test_size!r} instead."
        )
    labels = np.asarray(labels)
    n_splits = max(2, int(round(1 / test_size)))
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True,
                                    random_state=random_state)
    with warnings.catch_warnings():
        # a class smaller than n_splits is fine: it is simply not in every fold
        warnings.simplefilter("ignore", UserWarning)
        train, test = next(splitter.split(np.zeros(len(labels)), labels, groups))
    return train, test


def data_fingerprint(paths, labels, *, root=None):
    """A fingerprint of a dataset: SHA-256 of its file names, sizes and labels.

    Parameters
    ----------
    paths : sequence of str
        Image files.

    labels : sequence
        Their classes.

    root : str, default=None
        Names are taken relative to it, so moving the folder keeps the print.

    Returns
    -------
    fingerprint : dict
        ``sha256``, ``n_images`` and ``class_counts``.
    """
    digest = hashlib.sha256()
    entries = []
    for path, label in zip(paths, labels):
        name = os.path.relpath(path, root) if root else os.path.basename(path)
        try:
            size = os.path.getsize(path)
        except (OSError, TypeError):
            size = -1
        entries.append(f"{name}\t{size}\t{label}")
    for entry in sorted(entries):
        digest.update(entry.encode() + b"\n")
    classes, counts = np.unique(np.asarray(labels).astype(str), return_counts=True)
    return {"sha256": digest.hexdigest(), "n_images": len(entries),
            "class_counts": dict(zip(classes.tolist(), counts.tolist()))}


# -- fitting in steps ------------------------------------------------------------
def _fit_features(pipe, X, y):
    """Fit every step but the classifier; return (pipe, features, y after sampling)."""
    pipe = clone(pipe)
    steps = dict(pipe.steps)
    images = X if _is_off(steps["load"]) else steps["load"].fit_transform(X, y)
    y_fit = np.asarray(y)
    if not _is_off(steps["augment"]):
        images, y_fit = steps["augment"].fit_resample(images, y_fit)
    features = steps["features"].fit_transform(images, y_fit)
    return pipe, np.asarray(features, dtype=np.float32), y_fit


def _fold_features(pipe, X_train, y_train, X_test, y_test):
    """((train_x, train_y, test_x, test_y), blocks) of one cross-validation fold."""
    fitted, train_x, train_y = _fit_features(pipe, X_train, y_train)
    test_x = transform_features(fitted, X_test)
    return (train_x, train_y, test_x, y_test), feature_blocks(fitted)


class _SharedFeatures:
    """Features of the blocks that learn nothing, computed once for all folds.

    HOG, LBP, colour and a pretrained CNN map an image to the same vector
    whatever images they were fitted on, so cross-validation and the final fit
    can slice one table instead of extracting each image once per fold (the
    CNN dominates training time otherwise). Blocks that learn (SIFT's
    vocabulary, a fine-tuned CNN, a transformer of your own) and the per-block
    scalers are still fitted on each training fold, so the folds are exactly
    what fitting the pipeline on them would give.
    """

    def __init__(self, pipe, X, y):
        steps = dict(pipe.steps)
        self.images = X if _is_off(steps["load"]) else clone(
            steps["load"]).fit_transform(X, y)
        self.fixed = {}
        for name, block in steps["features"].transformer_list:
            extract = block.named_steps["extract"]
            if not extract._learns_from_images():
                self.fixed[name] = clone(extract).fit_transform(self.images)

    @staticmethod
    def applies(pipe):
        """Whether the pipeline has the shape this shortcut reproduces exactly."""
        from .features._base import ImageFeatureExtractor

        steps = dict(pipe.steps)
        union = steps.get("features")
        if (set(steps) != {"load", "augment", "features", "clf"}
                or not _is_off(steps["augment"])
                or getattr(union, "transformer_weights", None) is not None
                or not hasattr(union, "transformer_list")):
            return False
        for _, block in union.transformer_list:
            names = [n for n, _ in getattr(block, "steps", [])]
            if names != ["extract", "scale"] or not isinstance(
                    block.named_steps["extract"], ImageFeatureExtractor):
                return False
        return any(
            not block.named_steps["extract"]._learns_from_images()
            for _, block in union.transformer_list
        )

    def _block_features(self, block, name, rows, y, fit):
        """Fit (when ``fit``) and apply one block's extract and scale steps."""
        extract, scale = block.named_steps["extract"], block.named_steps["scale"]
        images = self.images[rows]
        if name in self.fixed:
            raw = self.fixed[name][rows]
            if fit:
                extract.fit(images[:1])
        elif fit:
            raw = extract.fit_transform(images, y)
        else:
            raw = extract.transform(images)
        return scale.fit_transform(raw, y) if fit else scale.transform(raw)

    def fit_pipeline(self, pipe, rows, y):
        """Fit a clone of ``pipe`` but its classifier on images ``rows``."""
        pipe = clone(pipe)
        steps = dict(pipe.steps)
        if not _is_off(steps["load"]):
            steps["load"].fit()
        blocks = [
            self._block_features(block, name, rows, y, fit=True)
            for name, block in steps["features"].transformer_list
        ]
        return pipe, np.hstack(blocks).astype(np.float32, copy=False)

    def transform(self, fitted, rows):
        """Features of images ``rows`` through a pipeline from fit_pipeline."""
        union = dict(fitted.steps)["features"]
        blocks = [
            self._block_features(block, name, rows, None, fit=False)
            for name, block in union.transformer_list
        ]
        return np.hstack(blocks).astype(np.float32, copy=False)

    def fold(self, pipe, train, test, y):
        """Like :func:`_fold_features` for rows of the shared images."""
        fitted, train_x = self.fit_pipeline(pipe, train, y[train])
        test_x = self.transform(fitted, test)
        return (train_x, y[train], test_x, y[test]), feature_blocks(fitted)


def _on_cluster():
    """Whether joblib's active backend is Dask (``parallel_config("dask")``)."""
    from joblib.parallel import get_active_backend

    return type(get_active_backend()[0]).__name__ == "DaskDistributedBackend"


def _scores(y_true, y_pred):
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
        "f1_macro": float(f1_score(y_true, y_pred, average="macro")),
    }


def _fit_score(clf, params, fold):
    """Fit a clone of ``clf`` with ``params`` on one fold; return its accuracy."""
    train_x, train_y, test_x, test_y = fold
    params = dict(params)
    model = clone(params.pop("", clf)).set_params(**params).fit(train_x, train_y)
    return float(accuracy_score(test_y, model.predict(test_x)))


def _strip(params):
    """Classifier parameters of pipeline parameters; "" for "clf" itself."""
    return {"" if k == "clf" else k.removeprefix("clf__"): v
            for k, v in params.items()}


def _run_parallel(jobs, n_jobs):
    from joblib import Parallel, delayed

    return Parallel(n_jobs=n_jobs, prefer="threads")(
        delayed(_fit_score)(*job) for job in jobs)


def _path_scores(clf, key, values, fold):
    """Accuracies along a regularisation path, each fit warm-started.

    The values are fitted in increasing order, each starting from the
    previous solution: the same optima (the problems are convex), in a
    fraction of the iterations.
    """
    train_x, train_y, test_x, test_y = fold
    model = clone(clf).set_params(warm_start=True)
    scores = {}
    for value in sorted(values):
        model.set_params(**{key: value}).fit(train_x, train_y)
        scores[value] = float(accuracy_score(test_y, model.predict(test_x)))
    return [scores[v] for v in values]


def _grid_search(clf, grid, folds, n_jobs):
    """Every candidate on every fold; return the table of mean accuracies."""
    from joblib import Parallel, delayed

    candidates = list(ParameterGrid(grid))
    (key, values), = grid.items() if len(grid) == 1 else ((None, None),)
    if (key is not None and key.startswith("clf__") and "warm_start" in
            clf.get_params() and all(isinstance(v, (int, float)) for v in values)):
        # one numeric parameter of a warm-startable model: follow its path
        per_fold = Parallel(n_jobs=n_jobs, prefer="threads")(
            delayed(_path_scores)(clf, key.removeprefix("clf__"), list(values), f)
            for f in folds)
        order = [values.index(c[key]) for c in candidates]
        means = np.asarray(per_fold).mean(axis=0)[order]
        return candidates, means, len(candidates) * len(folds), int(np.argmax(means))
    jobs = [(clf, _strip(c), fold) for c, fold in product(candidates, folds)]
    means = np.asarray(_run_parallel(jobs, n_jobs)).reshape(
        len(candidates), -1).mean(axis=1)
    return candidates, means, len(jobs), int(np.argmax(means))


def _halving_search(clf, grid, folds, n_jobs, random_state, factor=3):
    """Successive halving over cached fold features; the resource is samples.

    Each round fits the surviving candidates on a stratified share of each
    fold's training rows (growing ``factor`` times per round, all rows in the
    last round) and keeps the best ``1 / factor`` of them. ``means`` holds
    each candidate's accuracy in the last round it ran.
    """
    candidates = list(ParameterGrid(grid))
    n_rounds = int(np.ceil(np.log(max(len(candidates), 1)) / np.log(factor))) + 1
    rng = np.random.RandomState(random_state)
    alive = list(range(len(candidates)))
    n_fits, means = 0, np.full(len(candidates), -np.inf)
    for r in range(n_rounds):
        share = factor ** (r - n_rounds + 1)
        round_folds = []
        for train_x, train_y, test_x, test_y in folds:
            keep = np.sort(np.concatenate([
                rng.permutation(np.flatnonzero(train_y == c))[
                    : max(2, int(np.ceil(share * np.sum(train_y == c))))]
                for c in np.unique(train_y)
            ]))
            round_folds.append((train_x[keep], train_y[keep], test_x, test_y))
        jobs = [(clf, _strip(candidates[i]), fold)
                for i, fold in product(alive, round_folds)]
        scores = np.asarray(_run_parallel(jobs, n_jobs)).reshape(len(alive), -1)
        n_fits += len(jobs)
        for i, s in zip(alive, scores.mean(axis=1)):
            means[i] = s
        if len(alive) == 1:
            break
        order = np.argsort(-scores.mean(axis=1), kind="stable")
        alive = [alive[i] for i in order[: max(1, len(alive) // factor)]]
    return candidates, means, n_fits, alive[0]


# -- result ----------------------------------------------------------------------
@dataclass
class TrainingResult:
    """What :func:`train_model` returns.

    Attributes
    ----------
    pipeline : Pipeline
        The final pipeline, fitted on the training part.

    classes : list
        The class labels, in the order of ``predict_proba``'s columns.

    train_indices, test_indices : ndarray of int
        The two parts of the grouped split (``test_indices`` is empty with
        ``test_size=0``).

    groups : ndarray of int
        The group id of every image.

    cv_scores : dict
        Per metric (accuracy, balanced_accuracy, f1_macro): ``mean``, ``std``
        and ``folds``, for the chosen parameters.

    test_metrics : dict
        The same metrics on the test part (empty without one).

    best_params : dict
        Parameters chosen by the search (empty with ``search="none"``).

    search : dict
        ``kind``, ``n_candidates``, ``n_fits``, ``seconds`` and the mean CV
        accuracy of each candidate.

    open_set : dict
        ``proba_threshold``, ``novelty`` (see :func:`novelty_threshold`) and
        ``ood_thresholds`` (per block, the rule of older models), learned
        from out-of-fold predictions; see
        :func:`hybridclf.prediction.predict_open_set`.

    oof_proba : ndarray of shape (n_train, n_classes)
        Out-of-fold probabilities on the training part.

    timings : dict
        Seconds spent: ``groups``, ``features_cv``, ``search``, ``final_fit``,
        ``test``, ``total``.

    neighbours : EmbeddingIndex or None
        The embeddings of the training images and their degraded views, for
        the novelty check; save it with ``save_model(...,
        index=result.neighbours)``. None for a pipeline without a ``"cnn"``
        block, whose open set keeps the per-block OOD check.
    """

    pipeline: object
    classes: list
    train_indices: np.ndarray
    test_indices: np.ndarray
    groups: np.ndarray
    cv_scores: dict
    test_metrics: dict
    best_params: dict = field(default_factory=dict)
    search: dict = field(default_factory=dict)
    open_set: dict = field(default_factory=dict)
    oof_proba: np.ndarray = None
    timings: dict = field(default_factory=dict)
    neighbours: object = None

    def metadata(self):
        """The entries of ``model.json`` for :func:`~hybridclf.save_model`.

        Returns
        -------
        metadata : dict
            ``metrics``, ``cv_scores``, ``best_params``, ``search``,
            ``open_set`` and ``training`` (sizes and timings).
        """
        return {
            "metrics": self.test_metrics,
            "cv_scores": self.cv_scores,
            "best_params": {k: _plain(v) for k, v in self.best_params.items()},
            "search": {k: v for k, v in self.search.items() if k != "candidates"},
            "open_set": self.open_set,
            "training": {
                "n_train": int(len(self.train_indices)),
                "n_test": int(len(self.test_indices)),
                "n_groups": int(len(np.unique(self.groups))),
                **{f"seconds_{k}": round(v, 2) for k, v in self.timings.items()},
            },
        }


def _plain(value):
    return value.item() if hasattr(value, "item") else value


# -- training ----------------------------------------------------------------------
def train_model(
    pipe, paths, labels, *, groups=None, test_size=0.2, cv_folds=5, search="none",
    param_grid=None, open_set_quantile=0.99, random_state=0, n_jobs=None,
    progress=False,
):
    """Split, cross-validate, optionally search, and fit a hybrid pipeline.

    Parameters
    ----------
    pipe : Pipeline
        An unfitted pipeline from :func:`~hybridclf.make_hybrid_pipeline`
        (steps ``load``, ``augment``, ``features``, ``clf``).

    paths : sequence of str or images
        The images, as ``pipe.fit`` takes them.

    labels : array-like of shape (n_samples,)
        Their classes.

    groups : array-like of shape (n_samples,) or None, default=None
        Group ids (near-identical images share one); None gives every image
        its own group. See :func:`duplicate_groups`.

    test_size : float, default=0.2
        Share held out as the test part; 0 fits on everything and skips the
        test metrics.

    cv_folds : int, default=5
        Folds of ``StratifiedGroupKFold`` on the training part; at least 2.

    search : {"none", "grid", "halving"}, default="none"
        Hyper-parameter search over ``param_grid``:

        - "none": keep the pipeline's parameters.
        - "grid": every candidate on every fold.
        - "halving": successive halving; candidates start on a third of the
          rows and only the best third goes on each round.

    param_grid : dict or None, default=None
        The grid; ``None`` takes :data:`SEARCH_GRIDS` for the classifier's
        name. Keys starting with ``clf__``, and ``clf`` itself (a list of
        classifiers to compare), are searched on cached fold features; any
        other key makes the search use scikit-learn's
        ``GridSearchCV`` or ``HalvingGridSearchCV`` on the whole pipeline
        (give it a ``memory`` to cache features).

    open_set_quantile : float, default=0.99
        The open-set thresholds keep this share of the out-of-fold images
        known: the top-probability threshold is the ``1 - q`` quantile over
        correctly classified images, the novelty threshold the ``q`` quantile
        of the out-of-fold novelty scores (:func:`novelty_threshold`), each
        block's OOD threshold the ``q`` quantile of its out-of-fold scores.

    random_state : int, default=0
        Seeds the split and the folds.

    n_jobs : int, default=None
        Threads for candidate fits. ``None`` means 1 unless in a
        :func:`joblib.parallel_config` context; ``-1`` means all processors.
        Inside ``joblib.parallel_config(backend="dask")`` the features of
        each fold and the candidate fits are joblib tasks on the Dask
        workers instead (each fold's features are still computed once); see
        :mod:`hybridclf.distributed`.

    progress : bool, default=False
        Show a progress bar over the folds (not on Dask).

    Returns
    -------
    result : TrainingResult
        The fitted pipeline, scores, chosen parameters, thresholds, timings.
    """
    if search not in _SEARCHES:
        raise ValueError(
            "The 'search' parameter of train_model must be a str among "
            f"{list(_SEARCHES)}. Got {search!r} instead."
        )
    if not isinstance(cv_folds, int) or cv_folds < 2:
        raise ValueError(
            "The 'cv_folds' parameter of train_model must be an int >= 2. Got "
            f"{cv_folds!r} instead."
        )
    # One BLAS/OpenMP thread: the parallelism comes from n_jobs. Several BLAS
    # threads made each LogisticRegression fit on amulet6 7 to 25 times slower
    # on 2 busy cores (2.8-10.8 s against 0.4 s), and SIFT's k-means too.
    with threadpool_limits(limits=1):
        return _train(pipe, paths, labels, groups, test_size, cv_folds, search,
                      param_grid, open_set_quantile, random_state, n_jobs,
                      progress)


def _train(pipe, paths, labels, groups, test_size, cv_folds, search, param_grid,
           open_set_quantile, random_state, n_jobs, progress):
    started = time.perf_counter()
    timings = {}
    X = np.asarray(paths, dtype=object) if isinstance(paths, (list, tuple)) else (
        np.asarray(paths))
    y = np.asarray(labels)
    groups = np.arange(len(y)) if groups is None else np.asarray(groups)
    if test_size:
        train, test = grouped_train_test_split(y, groups, test_size=test_size,
                                               random_state=random_state)
    else:
        train, test = np.arange(len(y)), np.array([], dtype=int)
    X_train, y_train, g_train = X[train], y[train], groups[train]
    counts = np.unique(y_train, return_counts=True)[1]
    folds_n = min(cv_folds, len(np.unique(g_train)))
    if counts.min() < 2 or folds_n < 2:
        raise ValueError(
            f"train_model needs at least 2 images per class in the training part "
            f"for cross-validation; the smallest class has {counts.min()}. Add "
            "images or lower 'test_size'."
        )
    if folds_n < cv_folds:
        logger.warning("Only %d groups: using %d folds instead of %d", folds_n,
                       folds_n, cv_folds)
    splitter = StratifiedGroupKFold(n_splits=folds_n, shuffle=True,
                                    random_state=random_state)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        splits = list(splitter.split(np.zeros(len(y_train)), y_train, g_train))

    clf = pipe.named_steps["clf"]
    grid = param_grid
    if search != "none" and grid is None:
        grid = SEARCH_GRIDS.get(_classifier_name(clf))
        if grid is None:
            raise ValueError(
                f"train_model has no default grid for the classifier {clf!r}; "
                f"pass 'param_grid' or use one of {sorted(SEARCH_GRIDS)}."
            )
    feature_grid = search != "none" and any(
        not (k == "clf" or k.startswith("clf__")) for k in grid)

    search_info, best_params = {}, {}
    if feature_grid:
        t0 = time.perf_counter()
        pipe, best_params, search_info = _pipeline_search(
            pipe, grid, search, X_train, y_train, g_train, splits, random_state)
        timings["search"] = time.perf_counter() - t0
        clf = pipe.named_steps["clf"]

    # features of each fold, computed once and reused by every classifier fit
    t0 = time.perf_counter()
    jobs = [(pipe, X_train[tr], y_train[tr], X_train[te], y_train[te])
            for tr, te in splits]
    shared = None
    if _SharedFeatures.applies(pipe) and not _on_cluster():
        shared = _SharedFeatures(pipe, X_train, y_train)
        timings["features_shared"] = time.perf_counter() - t0
        splits_iter = splits
        if progress:
            from tqdm.auto import tqdm

            splits_iter = tqdm(splits, desc="cross-validation folds", unit="fold")
        done = [shared.fold(pipe, tr, te, y_train) for tr, te in splits_iter]
    elif _on_cluster():
        # one fold per worker; the image steps' threads stay inside each fold
        from joblib import Parallel, delayed

        done = Parallel(n_jobs=n_jobs)(delayed(_fold_features)(*j) for j in jobs)
    else:
        if progress:
            from tqdm.auto import tqdm

            jobs = tqdm(jobs, desc="cross-validation features", unit="fold")
        done = [_fold_features(*job) for job in jobs]
    folds = [fold for fold, _ in done]
    blocks = done[0][1]
    timings["features_cv"] = time.perf_counter() - t0

    if search != "none" and not feature_grid:
        t0 = time.perf_counter()
        if search == "grid":
            candidates, means, n_fits, best = _grid_search(clf, grid, folds, n_jobs)
        else:
            candidates, means, n_fits, best = _halving_search(
                clf, grid, folds, n_jobs, random_state)
        best_params = candidates[best]
        timings["search"] = time.perf_counter() - t0
        search_info = {
            "kind": search, "n_candidates": len(candidates), "n_fits": n_fits,
            "seconds": round(timings["search"], 3),
            "best_score": float(means[best]),
            "candidates": [
                {"params": {k: _plain(v) for k, v in c.items()}, "accuracy": float(m)}
                for c, m in zip(candidates, means)
            ],
        }
        logger.info("Search (%s): best %s with CV accuracy %.3f", search,
                    best_params, means[best])
        pipe = clone(pipe).set_params(**best_params)
        clf = pipe.named_steps["clf"]

    # out-of-fold predictions of the chosen classifier
    t0 = time.perf_counter()
    classes = np.unique(y_train)
    oof_proba = np.zeros((len(y_train), len(classes)))
    oof_ood = np.zeros((len(y_train), len(blocks)))
    fold_scores = []
    for (_, fold_test), (train_x, train_y, test_x, test_y) in zip(splits, folds):
        model = clone(clf).fit(train_x, train_y)
        proba = model.predict_proba(test_x)
        columns = np.searchsorted(classes, model.classes_)
        oof_proba[np.ix_(fold_test, columns)] = proba
        oof_ood[fold_test] = block_ood_scores(test_x, blocks)
        fold_scores.append(_scores(test_y, model.classes_[proba.argmax(axis=1)]))
    cv_scores = {
        metric: {"mean": float(np.mean([s[metric] for s in fold_scores])),
                 "std": float(np.std([s[metric] for s in fold_scores])),
                 "folds": [s[metric] for s in fold_scores]}
        for metric in fold_scores[0]
    }
    timings["cv_classifier"] = time.perf_counter() - t0
    correct = classes[oof_proba.argmax(axis=1)] == y_train
    top = oof_proba.max(axis=1)
    open_set = {
        "quantile": open_set_quantile,
        "proba_threshold": float(np.quantile(top[correct], 1 - open_set_quantile))
        if correct.any() else 0.0,
        "ood_thresholds": {
            name: float(np.quantile(oof_ood[:, b], open_set_quantile))
            for b, (name, _) in enumerate(blocks)
        },
    }

    t0 = time.perf_counter()
    if shared is not None:
        final, train_x = shared.fit_pipeline(pipe, np.arange(len(y_train)), y_train)
        train_y = y_train
    else:
        final, train_x, train_y = _fit_features(pipe, X_train, y_train)
    final.steps[-1] = ("clf", clone(clf).fit(train_x, train_y))
    timings["final_fit"] = time.perf_counter() - t0
    neighbours = None
    if "cnn" in dict(blocks):
        t0 = time.perf_counter()
        neighbours, open_set["novelty"] = _novelty_index(
            final, X_train, y_train, splits, open_set_quantile, shared)
        timings["novelty"] = time.perf_counter() - t0

    test_metrics = {}
    if len(test):
        t0 = time.perf_counter()
        test_metrics = _scores(y[test], final.predict(X[test]))
        timings["test"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - started
    return TrainingResult(
        pipeline=final, classes=classes.tolist(), train_indices=train,
        test_indices=test, groups=groups, cv_scores=cv_scores,
        test_metrics=test_metrics, best_params=best_params, search=search_info,
        open_set=open_set, oof_proba=oof_proba, timings=timings,
        neighbours=neighbours,
    )


# -- open set: the novelty index and threshold -----------------------------------
def novelty_threshold(embeddings, views, splits, *, quantile=0.99, k=1):
    """The novelty threshold learned from out-of-fold embeddings.

    For each fold, the photos of its test part are scored
    (:func:`hybridclf.neighbours.novelty_scores`) against an index of the
    photos of its training part and of their degraded views
    (:func:`hybridclf.neighbours.index_with_views`); the threshold is the
    ``quantile`` of these scores. Grouped folds keep near-identical photos on
    one side, so the scores are those of new photos of known classes.

    Parameters
    ----------
    embeddings : ndarray of shape (n_images, n_features)
        The embeddings of the training photos
        (:func:`hybridclf.prediction.embed_images`).

    views : list of ndarray of shape (n_images, n_features)
        The embeddings of their degraded views.

    splits : list of (train_rows, test_rows)
        The cross-validation folds.

    quantile : float, default=0.99
        Share of the out-of-fold photos kept known.

    k : int, default=1
        Nearest entries averaged by the score.

    Returns
    -------
    novelty : dict
        ``threshold``, ``k`` and ``quantile``, as stored under
        ``open_set["novelty"]`` in ``model.json``.
    """
    scores = [novelty_scores(index_with_views(embeddings[tr], [v[tr] for v in views]),
                             embeddings[te], k=k)
              for tr, te in splits]
    return {"threshold": float(np.quantile(np.concatenate(scores), quantile)),
            "k": int(k), "quantile": float(quantile)}


def _novelty_index(final, X_train, y_train, splits, quantile, shared, batch=256):
    """The embedding index of the fitted pipeline and its novelty threshold.

    Only for a pipeline with a ``"cnn"`` block (the blocks without one judge
    novelty by their OOD scores, as before). The embedding (a pretrained
    CNN's) does not depend on the fold, so every photo and view is embedded
    once, by the final pipeline; with a fine-tuned CNN the threshold is
    therefore slightly optimistic. The photos loaded and embedded for the
    folds (``shared``, a ``_SharedFeatures``) are reused when there are some.
    """
    steps = dict(final.steps)
    fixed = getattr(shared, "fixed", {})
    parts, view_parts = [], []
    for start in range(0, len(X_train), batch):
        rows = slice(start, start + batch)
        if "cnn" in fixed:
            images = shared.images[rows]
            parts.append(np.asarray(fixed["cnn"][rows], dtype=np.float32))
        else:
            chunk = X_train[rows]
            images = chunk if _is_off(steps["load"]) else steps["load"].transform(
                chunk)
            parts.append(embed_images(final, images))
        view_parts.append([embed_images(final, v) for v in degraded_views(images)])
    embeddings = np.vstack(parts)
    views = [np.vstack(v) for v in zip(*view_parts)]
    novelty = novelty_threshold(embeddings, views, splits, quantile=quantile)
    return index_with_views(embeddings, views, y_train), novelty


def _classifier_name(clf):
    """The make_hybrid_pipeline name of a classifier, or None."""
    from sklearn.calibration import CalibratedClassifierCV

    names = {
        "RidgeSoftmaxClassifier": "ridge",
        "LogisticRegression": "logistic",
        "RandomForestClassifier": "random_forest",
        "ExtraTreesClassifier": "extra_trees",
        "HistGradientBoostingClassifier": "hist_gradient_boosting",
        "VotingClassifier": "soft_voting",
        "StackingClassifier": "stacking",
    }
    if isinstance(clf, CalibratedClassifierCV):
        return "svc"
    return names.get(type(clf).__name__)


def _pipeline_search(pipe, grid, search, X, y, groups, splits, random_state):
    """Search a grid that touches feature parameters with scikit-learn."""
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.model_selection import GridSearchCV, HalvingGridSearchCV

    t0 = time.perf_counter()
    if search == "grid":
        searcher = GridSearchCV(pipe, grid, cv=splits, refit=False,
                                error_score="raise")
    else:
        searcher = HalvingGridSearchCV(pipe, grid, cv=splits, refit=False,
                                       random_state=random_state,
                                       error_score="raise")
    searcher.fit(X, y)
    best = searcher.best_params_
    results = searcher.cv_results_
    info = {
        "kind": search, "n_candidates": len(results["params"]),
        "n_fits": int(len(results["params"]) * len(splits)),
        "seconds": round(time.perf_counter() - t0, 3),
        "best_score": float(searcher.best_score_),
    }
    return clone(pipe).set_params(**best), best, info
