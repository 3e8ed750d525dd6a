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

``_Run`` and phase 1 are in ``_run.py``, phases 3 to 5 in ``_cv_phases.py``,
phases 6 to 8 in ``_final_phases.py``; their names stay importable from here.
Phase 2 stays here, where it starts the views with :func:`start_views`.
"""

import logging
import time

import numpy as np
from sklearn.base import clone
from threadpoolctl import threadpool_limits

from ..cascade import is_cascade
from ..io._folders import layout_hint
from ..pipeline import (
    get_block_extractor,
    get_block_scaler,
    get_classifier,
    get_sampler,
    iter_feature_blocks,
)
from ..prediction import UNKNOWN
from ..utils._docstrings import Substitution, n_jobs_docstring
from ._cv_phases import (
    _label_issues,
    _open_set,
    _out_of_fold,
    _search_classifier,
    _views_decided,
)
from ._feature_cache import FeatureCache
from ._final_phases import (
    _fit_cascade,
    _fit_final,
    _novelty_phase,
    _score_test,
    _scored,
    _test_part,
)
from ._fold_features import compute_folds, on_cluster
from ._novelty import EMBEDDING_BLOCK
from ._novelty_views import start_views, view_keys
from ._result import TrainingResult
from ._run import _Run, _split  # noqa: F401 (importable from here)
from ._search import default_grid, is_classifier_grid, pipeline_search
from ._shared_features import SharedFeatures

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
    progress=False, feature_cache=None, thumbnails=True, while_waiting=None,
    origins=None, train_only=None,
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

    while_waiting : callable or None, default=None
        With a CNN block, called once without arguments where the training
        waits for the thread that embeds the novelty index's views (ONNX
        Runtime's threads, which leave Python's lock free, while one core is
        often idle): work of the caller's that needs Python, such as an
        import for what it does next, runs there instead of after the
        training. ``hybridclf train`` starts the import of what saving the
        model needs (:func:`hybridclf.persistence.import_skops_early`).

    origins : array-like of int of shape (n_samples,) or None, default=None
        The image each image was made from, as an index into ``paths``: an
        augmented copy's source (``hybridclf augment``'s ``manifest.csv``,
        :func:`~hybridclf.training.augment_origins`), its own index for a
        photo. A copy joins its source's group (never on the other side of a
        split), is trained on, but is not a photo of its own: the test
        metrics score the photos of the test part, not their copies, the
        likely wrong labels are those of photos, and the nearest training
        photos of an answer give a photo and its copies one slot. Byte-
        identical files are one photo too, with or without ``origins``. None:
        every image is a photo.

    train_only : array-like of bool of shape (n_samples,) or None, default=None
        Images that must be trained on: their groups never join the test
        part (:func:`grouped_train_test_split`). ``hybridclf train`` passes
        the photos of a feedback folder, the corrections of wrong answers,
        which a test part would otherwise hold out of the model that was
        retrained to learn them. None: any image may be drawn.

    Returns
    -------
    result : TrainingResult
        The fitted pipeline, scores, chosen parameters, thresholds, timings.
    """
    _check_options(search, cv_folds)
    _check_classes(labels, paths)
    # One BLAS/OpenMP thread: the parallelism comes from n_jobs. Several BLAS
    # threads made each LogisticRegression fit on amulet6 7 to 25 times slower
    # on 2 busy cores (2.8-10.8 s against 0.4 s), and SIFT's k-means too.
    with threadpool_limits(limits=1):
        run = _split(paths, labels, groups, test_size=test_size, cv_folds=cv_folds,
                     random_state=random_state, n_jobs=n_jobs, progress=progress,
                     origins=origins, train_only=train_only)
        if feature_cache is not None and not isinstance(feature_cache, FeatureCache):
            feature_cache = FeatureCache(feature_cache)
        run.cache = feature_cache
        run.thumbnails = thumbnails
        run.while_waiting = while_waiting
        return _train(run, pipe, search, param_grid, open_set_quantile)


def _check_classes(labels, paths=()):
    """A classifier needs two classes; one would fail deep in the folds.

    No class may be called "unknown" (in any case): that is the answer of a
    rejected photo, so the service, ``predict`` and the page could not tell
    that class's answers from rejections (feedback labels are refused alike).
    """
    classes = np.unique(np.asarray(labels, dtype=object).astype(str))
    named = [c for c in classes.tolist() if c.casefold() == UNKNOWN]
    if named:
        raise ValueError(
            f"train_model cannot learn a class named {named[0]!r}: "
            f"{UNKNOWN!r} is the answer for a photo the model rejects, so its "
            "answers could not be told from rejections. Rename that class "
            "folder (for example to 'other') and train again.")
    if len(classes) < 2:
        found = (f"one class, {str(classes[0])!r} ({len(labels)} images)"
                 if len(classes) else "no image")
        raise ValueError(
            "train_model needs images of at least two classes; got "
            f"{found}. " + (layout_hint(labels, paths) or
                            "Add a folder of images for each other class "
                            "(<data folder>/<class>/<image>).")
        )


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


def _train(run, pipe, search, param_grid, open_set_quantile):
    """Phases 2 to 8, in order; see the module's docstring."""
    grid = param_grid
    if search != "none" and grid is None:
        grid = default_grid(get_classifier(pipe))
    on_features = search != "none" and not is_classifier_grid(grid)
    best_params, search_info = {}, {}
    if on_features:
        # the search's folds add views as the final fit will (decide_views);
        # the chosen pipeline keeps the sampler as given
        with run.timed("search"):
            _, best_params, search_info = pipeline_search(
                _views_decided(pipe, run.y_train), grid, search, run.X_train,
                run.y_train, run.splits, run.random_state)
        pipe = clone(pipe).set_params(**best_params)
    folds, blocks, shared = _fold_phase(run, _views_decided(pipe, run.y_train))
    if search != "none" and not on_features:
        pipe, best_params, search_info = _search_classifier(
            run, pipe, grid, search, folds)
    if search != "none":
        # the search picked the candidate with the best score on these very
        # folds, so their score of it is biased upward (the test part is not)
        search_info["cv_scores_optimistic"] = True
    with run.timed("cv_classifier"):
        oof_proba, oof_ood, cv_scores = _out_of_fold(
            run, get_classifier(pipe), folds, blocks, get_sampler(pipe))
    classes = np.unique(run.y_train)
    open_set = _open_set(run.y_train, classes, oof_proba, oof_ood, blocks,
                         open_set_quantile)
    with run.timed("label_issues"):
        issues = _label_issues(run, classes, oof_proba)
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
        test_part=_test_part(run, classes, test_metrics),
        scored_test_indices=_scored(run),
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
                                digests=run.digests, progress=run.progress)
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
        thumbnails=run.thumbnails, sources=run.X_train,
        progress=run.progress)
