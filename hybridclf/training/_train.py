"""Training a hybrid pipeline honestly: grouped split, cross-validation, search.

:func:`train_model` is what ``hybridclf train`` runs, in phases that share one
small record of the data and its splits (``_Run``):

1. a test part is split off by **groups** of near-identical images, so no
   copy of a test image is trained on, drawn from the images' content so that
   it stays the same when images are added (``_split.py``); the training part
   is divided into the folds of ``StratifiedGroupKFold``;
2. the features of each fold are computed **once** and kept in memory
   (``_fold_features.py``);
3. the default classifier and every candidate of a classifier search are
   fitted on them (``_search.py``). A grid over feature parameters falls back
   to scikit-learn's searches with the pipeline's ``memory`` cache, before
   phase 2;
4. out-of-fold predictions give the cross-validation scores,
5. and the open-set thresholds (see :mod:`hybridclf.prediction`), and the
   likely wrong labels (see :mod:`hybridclf.label_issues`);
6. the final pipeline is fitted on the whole training part;
7. with a CNN block, it embeds the training photos and their degraded views
   into the index of the novelty check, whose threshold comes from the
   folds (``_novelty.py``; the views of photos seen before come from the
   feature cache, the others are embedded in a thread from phase 2 on,
   while phases 3 to 6 run: ``_novelty_views.py``);
8. and the final pipeline is scored on the test part.
"""

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
from sklearn.base import clone
from threadpoolctl import threadpool_limits

from ..cascade import is_cascade, out_of_fold_stages
from ..label_issues import find_label_issues
from ..pipeline import (
    fit_classifier,
    get_block_extractor,
    get_block_scaler,
    get_classifier,
    get_sampler,
    iter_feature_blocks,
    set_classifier,
    view_groups,
)
from ..prediction import block_ood_scores
from ..utils._docstrings import Substitution, n_jobs_docstring
from ..view_sampling import ViewAugmenter
from ._feature_cache import FeatureCache, image_digest
from ._fold_features import SharedFeatures, compute_folds, fit_features, on_cluster
from ._novelty import EMBEDDING_BLOCK, novelty_index
from ._novelty_views import start_views, view_keys
from ._result import TrainingResult, plain, scores
from ._search import (
    default_grid,
    grid_search,
    halving_search,
    is_classifier_grid,
    pipeline_search,
)
from ._split import cv_splits, grouped_train_test_split

__all__ = ["train_model"]

logger = logging.getLogger(__name__)

_SEARCHES = ("none", "grid", "halving")


@Substitution(n_jobs=n_jobs_docstring(
    "Threads for candidate fits.",
    'Inside ``joblib.parallel_config(backend="dask")`` the features of each fold '
    "and the candidate fits are joblib tasks on the Dask workers instead (each "
    "fold's features are still computed once); see :mod:`hybridclf.distributed`."))
def train_model(
    pipe, paths, labels, *, groups=None, test_size=0.2, cv_folds=5, search="none",
    param_grid=None, open_set_quantile=0.995, random_state=0, n_jobs=None,
    progress=False, feature_cache=None, thumbnails=True,
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
        test metrics. The part is drawn from the images' content
        (:func:`grouped_train_test_split` with their SHA-256 as ``keys``), so
        it stays about the same when images are added.

    cv_folds : int, default=5
        Folds of ``StratifiedGroupKFold`` on the training part; at least 2.

    search : {{"none", "grid", "halving"}}, default="none"
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

    open_set_quantile : float, default=0.995
        The open-set thresholds keep this share of the out-of-fold images
        known: the top-probability threshold is the ``1 - q`` quantile over
        correctly classified images, the novelty threshold the ``q`` quantile
        of the out-of-fold novelty scores (:func:`novelty_threshold`), each
        block's OOD threshold the ``q`` quantile of its out-of-fold scores.
        0.995 rather than 0.99 keeps more brightened and tilted photos of
        known classes known, and other domains still rejected (measured in
        ``docs/benchmarks.md``, "Open set").

    random_state : int, default=0
        Seeds the split and the folds.

    {n_jobs}

    progress : bool, default=False
        Show a progress bar over the folds (not on Dask).

    feature_cache : FeatureCache, str, os.PathLike or None, default=None
        Keep the features of single images of the blocks that learn nothing
        on disk (a :class:`FeatureCache` or its folder), and the CNN
        embeddings of the novelty index's views, so a second training on
        mostly the same photos computes only the new ones. None computes
        everything. Not used on Dask or with an augmenting sampler.

    thumbnails : bool, default=True
        With a CNN block, keep a small JPEG thumbnail of every training photo
        in the embedding index (``result.neighbours``), so that the nearest
        training photos of an answer can be shown (about 3 KB per photo; see
        :func:`hybridclf.neighbours.explain`). False keeps only their
        embeddings, labels and file names.

    Returns
    -------
    result : TrainingResult
        The fitted pipeline, scores, chosen parameters, thresholds, timings.
    """
    _check_options(search, cv_folds)
    # One BLAS/OpenMP thread: the parallelism comes from n_jobs. Several BLAS
    # threads made each LogisticRegression fit on amulet6 7 to 25 times slower
    # on 2 busy cores (2.8-10.8 s against 0.4 s), and SIFT's k-means too.
    with threadpool_limits(limits=1):
        run = _split(paths, labels, groups, test_size=test_size, cv_folds=cv_folds,
                     random_state=random_state, n_jobs=n_jobs, progress=progress)
        if feature_cache is not None and not isinstance(feature_cache, FeatureCache):
            feature_cache = FeatureCache(feature_cache)
        run.cache = feature_cache
        run.thumbnails = thumbnails
        return _train(run, pipe, search, param_grid, open_set_quantile)


def _check_options(search, cv_folds):
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


@dataclass
class _Run:
    """What the phases of one :func:`train_model` call share: data and splits."""

    X: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    train: np.ndarray
    test: np.ndarray
    splits: list
    random_state: int
    n_jobs: object
    progress: bool
    digests: list = None
    cache: object = None
    thumbnails: bool = True
    started: float = field(default_factory=time.perf_counter)
    timings: dict = field(default_factory=dict)
    cache_use: dict = field(default_factory=dict)
    views: object = None  # the Future of the novelty index's views, or None

    @property
    def X_train(self):
        return self.X[self.train]

    @property
    def y_train(self):
        return self.y[self.train]

    @contextmanager
    def timed(self, phase):
        """Record the seconds the ``with`` block takes as ``timings[phase]``."""
        t0 = time.perf_counter()
        yield
        self.timings[phase] = time.perf_counter() - t0


def _split(paths, labels, groups, *, test_size, cv_folds, random_state, n_jobs,
           progress):
    """Phase 1: the grouped test split and the cross-validation folds."""
    started = time.perf_counter()
    X = np.asarray(paths, dtype=object) if isinstance(paths, (list, tuple)) else (
        np.asarray(paths))
    y = np.asarray(labels)
    groups = np.arange(len(y)) if groups is None else np.asarray(groups)
    # the images' content: the key of the split, and of the feature cache
    digests = [image_digest(x) for x in X]
    if test_size:
        train, test = grouped_train_test_split(y, groups, test_size=test_size,
                                               random_state=random_state,
                                               keys=digests)
    else:
        train, test = np.arange(len(y)), np.array([], dtype=int)
    splits = cv_splits(y[train], groups[train], cv_folds=cv_folds,
                       random_state=random_state)
    return _Run(X=X, y=y, groups=groups, train=train, test=test, splits=splits,
                random_state=random_state, n_jobs=n_jobs, progress=progress,
                digests=digests, started=started)


def _train(run, pipe, search, param_grid, open_set_quantile):
    """Phases 2 to 8, in order; see the module's docstring."""
    grid = param_grid
    if search != "none" and grid is None:
        grid = default_grid(get_classifier(pipe))
    on_features = search != "none" and not is_classifier_grid(grid)
    best_params, search_info = {}, {}
    if on_features:
        with run.timed("search"):
            pipe, best_params, search_info = pipeline_search(
                pipe, grid, search, run.X_train, run.y_train, run.splits,
                run.random_state)
    folds, blocks, shared = _fold_phase(run, _views_decided(pipe, run.y_train))
    if search != "none" and not on_features:
        pipe, best_params, search_info = _search_classifier(
            run, pipe, grid, search, folds)
    with run.timed("cv_classifier"):
        oof_proba, oof_ood, cv_scores = _out_of_fold(
            run, get_classifier(pipe), folds, blocks, get_sampler(pipe))
    classes = np.unique(run.y_train)
    open_set = _open_set(run.y_train, classes, oof_proba, oof_ood, blocks,
                         open_set_quantile)
    with run.timed("label_issues"):
        issues = find_label_issues(run.y_train, oof_proba, classes)
        issues["index"] = run.train[issues["index"]]
    with run.timed("final_fit"):
        final, train_x, train_y = _fit_final(run, pipe, shared)
        if is_cascade(final):
            _fit_cascade(run, final, folds, blocks, train_x, train_y, oof_proba)
    neighbours = _novelty_phase(run, final, blocks, shared, open_set)
    test_metrics = _score_test(run, final, shared)
    run.timings["total"] = time.perf_counter() - run.started
    return TrainingResult(
        pipeline=final, classes=classes.tolist(), train_indices=run.train,
        test_indices=run.test, groups=run.groups, cv_scores=cv_scores,
        test_metrics=test_metrics, best_params=best_params, search=search_info,
        open_set=open_set, oof_proba=oof_proba, label_issues=issues,
        timings=run.timings, feature_cache=run.cache_use, neighbours=neighbours,
    )


def _fold_phase(run, pipe):
    """Phase 2: the features of every fold, computed once.

    Returns the folds, the blocks and the shared features of all images (the
    test part too, so it is scored from the same table), or None.
    """
    t0 = time.perf_counter()
    shared = None
    if not on_cluster() and SharedFeatures.applies(pipe):
        shared = SharedFeatures(pipe, run.X, run.y, cache=run.cache,
                                digests=run.digests)
        run.timings["features_shared"] = shared.seconds
        if run.cache is not None:
            run.cache_use = {"n_images": len(run.y),
                             "n_computed": shared.n_computed}
            logger.info("Feature cache %s: %d of %d images computed",
                        run.cache.directory, shared.n_computed, len(run.y))
        run.views = _start_views(run, pipe, shared)
    folds, blocks, _ = compute_folds(
        pipe, run.X_train, run.y_train, run.splits, n_jobs=run.n_jobs,
        progress=run.progress,
        shared=None if shared is None else shared.subset(run.train))
    run.timings["features_cv"] = time.perf_counter() - t0
    return folds, blocks, shared


def _start_views(run, pipe, shared):
    """Start embedding the novelty index's views in a thread; None: not here.

    Only where phase 7 would embed them with the CNN block's extractor, as
    the folds and the final pipeline share it (``SharedFeatures.fitted``):
    a CNN block with a scaler whose features the folds computed once.
    """
    block = dict(iter_feature_blocks(pipe)).get(EMBEDDING_BLOCK)
    if (block is None or get_block_scaler(block) is None
            or EMBEDDING_BLOCK not in shared.fixed):
        return None
    extract = shared.fitted(EMBEDDING_BLOCK, get_block_extractor(block))
    train = run.train
    keys = view_keys(pipe, run.cache)
    return start_views(
        lambda images: np.asarray(extract.transform(images), dtype=np.float32),
        lambda rows: shared.loaded(train[rows]), len(train),
        width=shared.fixed[EMBEDDING_BLOCK].shape[1], keys=keys,
        cache=run.cache, digests=[run.digests[i] for i in train],
        thumbnails=run.thumbnails)


def _search_classifier(run, pipe, grid, search, folds):
    """Phase 3: search the classifier's grid on the cached fold features."""
    clf = get_classifier(pipe)
    t0 = time.perf_counter()
    if search == "grid":
        candidates, means, n_fits, best = grid_search(clf, grid, folds, run.n_jobs)
    else:
        candidates, means, n_fits, best = halving_search(
            clf, grid, folds, run.n_jobs, run.random_state)
    best_params = candidates[best]
    run.timings["search"] = time.perf_counter() - t0
    info = {
        "kind": search, "n_candidates": len(candidates), "n_fits": n_fits,
        "seconds": round(run.timings["search"], 3),
        "best_score": float(means[best]),
        "candidates": [
            {"params": {k: plain(v) for k, v in c.items()}, "accuracy": float(m)}
            for c, m in zip(candidates, means)
        ],
    }
    logger.info("Search (%s): best %s with CV accuracy %.3f", search,
                best_params, means[best])
    return clone(pipe).set_params(**best_params), best_params, info


def _views_decided(pipe, y_train):
    """The pipeline for the folds, with its views decided on the training part.

    A :class:`~hybridclf.ViewAugmenter` adds views when the smallest class
    it is fitted on is small. Each fold holds fewer photos per class than the
    whole training part, so a fold may add views where the final fit does not
    (on amulet6, 16 photos of the smallest class in the training part and
    about 13 in a fold's): the cross-validation would then score another
    model than the one saved, at up to twice the cost. The decision is taken
    once, on the training part, and every fold follows it.
    """
    sampler = get_sampler(pipe)
    if not isinstance(sampler, ViewAugmenter) or sampler.max_smallest_class is None:
        return pipe
    smallest = np.unique(y_train, return_counts=True)[1].min()
    pipe = clone(pipe)
    if smallest < sampler.max_smallest_class:
        get_sampler(pipe).set_params(max_smallest_class=None)
    else:
        get_sampler(pipe).set_params(views=())
    return pipe


def _out_of_fold(run, clf, folds, blocks, sampler=None):
    """Phase 4: out-of-fold probabilities, OOD scores and CV scores."""
    y_train = run.y_train
    classes = np.unique(y_train)
    oof_proba = np.zeros((len(y_train), len(classes)))
    oof_ood = np.zeros((len(y_train), len(blocks)))
    fold_scores = []
    for (fold_train, fold_test), (train_x, train_y, test_x, test_y) in zip(
            run.splits, folds):
        groups = view_groups(sampler, len(fold_train), len(train_y))
        model = fit_classifier(clone(clf), train_x, train_y, groups)
        proba = model.predict_proba(test_x)
        columns = np.searchsorted(classes, model.classes_)
        oof_proba[np.ix_(fold_test, columns)] = proba
        oof_ood[fold_test] = block_ood_scores(test_x, blocks)
        fold_scores.append(scores(test_y, model.classes_[proba.argmax(axis=1)]))
    cv_scores = {
        metric: {"mean": float(np.mean([s[metric] for s in fold_scores])),
                 "std": float(np.std([s[metric] for s in fold_scores])),
                 "folds": [s[metric] for s in fold_scores]}
        for metric in fold_scores[0]
    }
    return oof_proba, oof_ood, cv_scores


def _open_set(y_train, classes, oof_proba, oof_ood, blocks, quantile):
    """Phase 5: the open-set thresholds from the out-of-fold predictions."""
    correct = classes[oof_proba.argmax(axis=1)] == y_train
    top = oof_proba.max(axis=1)
    return {
        "quantile": quantile,
        "proba_threshold": float(np.quantile(top[correct], 1 - quantile))
        if correct.any() else 0.0,
        "ood_thresholds": {
            name: float(np.quantile(oof_ood[:, b], quantile))
            for b, (name, _) in enumerate(blocks)
        },
    }


def _fit_final(run, pipe, shared):
    """Phase 6: fit the pipeline on the whole training part."""
    if shared is not None:
        final, train_x, train_y = shared.fit_pipeline(pipe, run.train, run.y_train)
    else:
        final, train_x, train_y = fit_features(pipe, run.X_train, run.y_train)
    groups = view_groups(get_sampler(final), len(run.train), len(train_y))
    clf = fit_classifier(clone(get_classifier(pipe)), train_x, train_y, groups)
    return set_classifier(final, clf), train_x, train_y


def _fit_cascade(run, final, folds, blocks, train_x, train_y, oof_proba):
    """Phase 6b: a cascade's cheap stage and threshold, on the same folds."""
    classes = get_classifier(final).classes_
    sampler = get_sampler(final)
    fold_tables = [(test, tx, ty, vx, view_groups(sampler, len(train), len(ty)))
                   for (train, test), (tx, ty, vx, _) in zip(run.splits, folds)]
    oof = out_of_fold_stages(fold_tables, len(run.y_train), classes, blocks,
                             final.cheap_features, None,
                             final.cheap_classifier_template())
    oof["full_proba"] = oof_proba
    final.fit_cheap_stage(train_x, train_y, run.y_train, oof, groups=view_groups(
        sampler, len(run.train), len(train_y)))


def _novelty_phase(run, final, blocks, shared, open_set):
    """Phase 7: the embedding index and ``open_set["novelty"]``; None without CNN."""
    if EMBEDDING_BLOCK not in dict(blocks):
        return None
    # reuse what the folds computed: the CNN's output, and the loaded photos
    # (a feature cache may have spared loading them)
    fixed = {} if shared is None else shared.fixed
    embeddings = fixed.get(EMBEDDING_BLOCK)
    images = None if shared is None else shared.images
    with run.timed("novelty"):
        views = None if run.views is None else run.views.result()
        index, open_set["novelty"] = novelty_index(
            final, run.X_train, run.y_train, run.splits, open_set["quantile"],
            embeddings=None if embeddings is None else embeddings[run.train],
            images=None if images is None else images[run.train],
            thumbnails=run.thumbnails, cache=run.cache,
            digests=[run.digests[i] for i in run.train], views=views,
            n_jobs=run.n_jobs)
    if views is not None:  # embedded beside phases 3 to 6
        run.timings["novelty_views"] = views.seconds
    return index


def _score_test(run, final, shared):
    """Phase 8: the metrics on the test part (none without one)."""
    if not len(run.test):
        return {}
    with run.timed("test"):
        if shared is None:
            return scores(run.y[run.test], final.predict(run.X[run.test]))
        # what final.predict computes, from the shared table (a cascade's
        # answers too: its cheap stage reads the cheap blocks' columns)
        features = shared.transform(final, run.test)
        clf = get_classifier(final)
        if is_cascade(final):
            proba, _ = final.stages_from_features(features,
                                                  clf.predict_proba(features))
            predicted = clf.classes_[proba.argmax(axis=1)]
        else:
            predicted = clf.predict(features)
        return scores(run.y[run.test], predicted)
