"""Phases 6 to 8 of :func:`~hybridclf.training.train_model`: the final pipeline.

The pipeline fitted on the whole training part (``_fit_final``) and a
cascade's cheap stage and threshold (``_fit_cascade``), the embedding index
of the novelty check (``_novelty_phase``) and the scores on the test part
(``_score_test``).
"""

import numpy as np
from sklearn.base import clone

from ..cascade import is_cascade, out_of_fold_stages
from ..evaluation import accuracy_interval, few_test_images
from ..pipeline import (
    fit_classifier,
    get_classifier,
    get_sampler,
    set_classifier,
    view_groups,
)
from ._fold_features import fit_features
from ._novelty import EMBEDDING_BLOCK, novelty_index
from ._result import scores


def _fit_final(run, pipe, shared):
    """Phase 6: fit the pipeline on the whole training part."""
    if shared is not None:
        final, train_x, train_y = shared.fit_pipeline(pipe, run.train, run.y_train)
    else:
        final, train_x, train_y = fit_features(pipe, run.X_train, run.y_train)
    groups = view_groups(get_sampler(final), len(run.train), len(train_y),
                         run.groups[run.train])
    clf = fit_classifier(clone(get_classifier(pipe)), train_x, train_y, groups)
    return set_classifier(final, clf), train_x, train_y


def _fit_cascade(run, final, folds, blocks, train_x, train_y, oof_proba):
    """Phase 6b: a cascade's cheap stage and threshold, on the same folds."""
    classes = get_classifier(final).classes_
    sampler = get_sampler(final)
    groups = run.groups[run.train]
    fold_tables = [(test, tx, ty, vx, view_groups(sampler, len(train), len(ty),
                                                  groups[train]))
                   for (train, test), (tx, ty, vx, _) in zip(run.splits, folds)]
    oof = out_of_fold_stages(fold_tables, len(run.y_train), classes, blocks,
                             final.cheap_features, None,
                             final.cheap_classifier_template())
    oof["full_proba"] = oof_proba
    final.fit_cheap_stage(train_x, train_y, run.y_train, oof, groups=view_groups(
        sampler, len(run.train), len(train_y), groups))


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
        if run.while_waiting is not None:  # the caller's work, on the idle core
            run.while_waiting()
        views = None if run.views is None else run.views.result()
        index, open_set["novelty"] = novelty_index(
            final, run.X_train, run.y_train, run.splits, open_set["quantile"],
            embeddings=None if embeddings is None else embeddings[run.train],
            images=None if images is None else images[run.train],
            thumbnails=run.thumbnails, cache=run.cache,
            digests=[run.digests[i] for i in run.train], views=views,
            n_jobs=run.n_jobs, photos=_photo_ids(run))
    if views is not None:  # embedded beside phases 3 to 6
        run.timings["novelty_views"] = views.seconds
    return index


def _photo_ids(run):
    """One id per training photo; byte-identical files and copies share one.

    The evidence beside an answer (the nearest training photos) then shows
    a photo filed twice, or a photo and its augmented copies, once, not in
    several of its slots.
    """
    return run.photos[run.train]


def _score_test(run, final, shared):
    """Phase 8: the metrics on the test part (none without one)."""
    # the photos of the test part: a copy of one (augmented, or the same file
    # again) is not another photo to score
    test = _scored(run)
    if not len(test):
        return {}
    with run.timed("test"):
        if shared is None:
            return scores(run.y[test], final.predict(run.X[test]))
        # what final.predict computes, from the shared table (a cascade's
        # answers too: its cheap stage reads the cheap blocks' columns)
        features = shared.transform(final, test)
        clf = get_classifier(final)
        if is_cascade(final):
            proba, _ = final.stages_from_features(features,
                                                  clf.predict_proba(features))
            predicted = clf.classes_[proba.argmax(axis=1)]
        else:
            predicted = clf.predict(features)
        return scores(run.y[test], predicted)


def _scored(run):
    """The rows of the test part that are photos, not copies of one."""
    return run.test[run.counted[run.test]]


def _test_part(run, classes, metrics):
    """Phase 8's account of the test part: its size, accuracy interval, gaps.

    ``n_images``, ``n_groups`` (the groups of near-identical photos they
    fall in), the 95% ``accuracy_interval`` (:func:`accuracy_interval`,
    counting each group once: the photos of one object are not independent
    draws), ``few_test_images`` (the classes with fewer than 10 test images:
    :func:`few_test_images`) and ``untested_classes``: the classes with no
    test image, which the test metrics do not score (a class of 2 photos
    keeps both for training; its balanced accuracy was then the mean of the
    other classes'), and
    ``n_copies``: images of the test part that are copies of its photos
    (augmented, or the same file again), held out with them but not scored.
    Empty without a test part.
    """
    test = _scored(run)
    if not len(test):
        return {}
    n = len(test)
    n_groups = len(np.unique(run.groups[test]))
    tested = set(run.y[test].tolist())
    names, counts = np.unique(run.y[test], return_counts=True)
    part = {
        "n_images": n,
        "n_groups": n_groups,
        "few_test_images": few_test_images(dict(zip(names, counts))),
        "accuracy_interval": accuracy_interval(round(metrics["accuracy"] * n), n,
                                               n_groups=n_groups),
        "untested_classes": [str(c) for c in classes if c not in tested],
    }
    if len(run.test) > n:
        part["n_copies"] = int(len(run.test) - n)
    return part
