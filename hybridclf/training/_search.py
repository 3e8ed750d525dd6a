"""Hyper-parameter search over cached fold features, or over the whole pipeline.

A grid that tunes only the classifier (keys ``clf`` and ``clf__...``) is
searched on the fold features computed once (:func:`grid_search`,
:func:`halving_search`); any other grid goes to scikit-learn's searches over
the whole pipeline (:func:`pipeline_search`).
"""

import time
from itertools import product

import numpy as np
from sklearn.base import clone
from sklearn.metrics import accuracy_score
from sklearn.model_selection import ParameterGrid

from ..pipeline import CLASSIFIERS, classifier_name

__all__ = [
    "SEARCH_GRIDS",
    "default_grid",
    "grid_search",
    "halving_search",
    "is_classifier_grid",
    "pipeline_search",
]

#: The grids of ``train_model(search="grid" | "halving")``, by classifier name
#: of :func:`~hybridclf.make_hybrid_pipeline` (from
#: :data:`hybridclf.pipeline.CLASSIFIERS`). Each has about 20 candidates;
#: all tune the classifier only, so fold features are computed once.
SEARCH_GRIDS = {name: spec.search_grid for name, spec in CLASSIFIERS.items()}


def default_grid(clf):
    """The :data:`SEARCH_GRIDS` entry of a classifier; ValueError if none."""
    grid = SEARCH_GRIDS.get(classifier_name(clf))
    if grid is None:
        raise ValueError(
            f"train_model has no default grid for the classifier {clf!r}; "
            f"pass 'param_grid' or use one of {sorted(SEARCH_GRIDS)}."
        )
    return grid


def is_classifier_grid(grid):
    """Whether every key of ``grid`` is ``clf`` or a ``clf__`` parameter."""
    return all(k == "clf" or k.startswith("clf__") for k in grid)


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


def grid_search(clf, grid, folds, n_jobs):
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


def halving_search(clf, grid, folds, n_jobs, random_state, factor=3):
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


def pipeline_search(pipe, grid, search, X, y, splits, random_state):
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
