"""Phases 3 to 5 of :func:`~hybridclf.training.train_model`, on the fold features.

The classifier's grid searched on the cached fold features
(``_search_classifier``), the views of a ViewAugmenter decided once on the
training part for every fold (``_views_decided``), the out-of-fold
probabilities, OOD scores and cross-validation scores (``_out_of_fold``) and
the open-set thresholds and the likely wrong labels from them (``_open_set``,
``_label_issues``).
"""

import logging
import time

import numpy as np
from sklearn.base import clone

from ..label_issues import find_label_issues
from ..pipeline import fit_classifier, get_classifier, get_sampler, view_groups
from ..prediction import block_ood_scores
from ..view_sampling import decide_views
from ._result import plain, scores
from ._search import grid_search, halving_search

# the records keep the logger name they had before this module was split off
logger = logging.getLogger("hybridclf.training._train")


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
    """The pipeline for the folds, its views decided on the training part.

    See :func:`~hybridclf.view_sampling.decide_views`: each fold adds views
    exactly when the fit on the whole training part does, so the
    cross-validation scores the model that is saved.
    """
    sampler = get_sampler(pipe)
    decided = decide_views(sampler, y_train)
    if decided is sampler:
        return pipe
    pipe = clone(pipe)
    get_sampler(pipe).set_params(**decided.get_params())
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
        # the photo's near-duplicates leave with it in the classifier's
        # leave-one-out, as in the folds
        groups = view_groups(sampler, len(fold_train), len(train_y),
                             run.groups[run.train][fold_train])
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


def _label_issues(run, classes, oof_proba):
    """Phase 5: the likely wrong labels, of the classes every fold learned.

    Only photos are checked: the copies of a photo (``run.counted`` false)
    are trained on and predicted, but share its label and would repeat its
    flag.

    A class missing from the training part of a fold (a class of one photo
    and its copies, or of fewer groups than folds) gets no probability in
    that fold, so each of its images would read as a wrong label; such
    classes are left out, with their column, and named in ``not_checked``.
    """
    y_train = run.y_train
    unseen = set()
    for fold_train, fold_test in run.splits:
        unseen.update(np.setdiff1d(y_train[fold_test], y_train[fold_train]).tolist())
    # a photo's copies (augmented, or the same file again) share its label:
    # one flag for the photo, not one per copy
    checked = np.flatnonzero(~np.isin(y_train, list(unseen))
                             & run.counted[run.train])
    columns = np.flatnonzero(~np.isin(classes, list(unseen)))
    issues = find_label_issues(y_train[checked],
                               oof_proba[np.ix_(checked, columns)], classes[columns])
    if unseen:
        logger.info("Label check: not checked (a fold had none of their images "
                    "to learn from): %s", ", ".join(sorted(unseen)))
    issues["index"] = run.train[checked[issues["index"]]]
    issues["n_checked"] = len(checked)
    issues["not_checked"] = sorted(unseen)
    return issues
