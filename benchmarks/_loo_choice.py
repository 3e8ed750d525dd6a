"""Blocks chosen in fit by the ridge's grouped leave-one-out (issue 21, fifth round).

The second round chose between unsigned and signed HOG by the leave-one-out
*squared error* of ``RidgeClassifierCV`` on the photos alone (no views), with
no margin, at every size: it lost at every k on digits. Here the criterion is
the one the default classifier itself fits on: each candidate block set is
scaled as the pipeline scales it, the training table holds the default's
views where the default adds them (below 15 photos in the smallest class),
and :func:`grouped_loo` leaves each photo out *with its views*, exactly, as
``RidgeSoftmaxClassifier.fit(groups=)`` does, at the penalty that classifier
would choose. From those leave-one-out decisions come, on the photos (not
their views), the right/wrong answer of every photo and the log loss after
the classifier's softmax temperature.

A challenger replaces the default only when it wins by a margin (``rule``):

- ``("sq", 0)``: the lower mean squared error (as the second round, but with
  the views and grouped);
- ``("z", z)``: a paired sign test on the photos: with ``w`` photos the
  challenger answers right and the default wrong, ``l`` the other way, the
  challenger when ``(w - l) / sqrt(w + l) >= z`` (McNemar's statistic);
- ``("ll", r)``: the log loss at least ``r`` (relative) below the default's;
- ``("both", z)``: ``("z", z)`` and a lower log loss.

``from_`` (the smallest class at which the choice is made at all; below it,
the default) keeps the choice off where the photos are too few for it.
"""

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

from hybridclf.classifiers import RidgeSoftmaxClassifier

ALPHAS = np.asarray(RidgeSoftmaxClassifier().alphas, dtype=np.float64)


def grouped_loo(X, y, groups):
    """(classes, leave-one-group-out decisions, their mean squared error, alpha).

    The penalty among ``ALPHAS`` of least leave-one-group-out squared error,
    as ``RidgeSoftmaxClassifier._fit_exact`` picks it (one group per row is
    plain leave-one-out).
    """
    X = np.asarray(X, dtype=np.float64)
    classes = np.unique(y)
    targets = np.where(y[:, None] == classes[None, :], 1.0, -1.0)
    Xc, Tc = X - X.mean(axis=0), targets - targets.mean(axis=0)
    values, vectors = np.linalg.eigh(Xc @ Xc.T)
    values = np.clip(values, 0.0, None)
    projected = vectors.T @ Tc
    members = [np.flatnonzero(groups == g) for g in np.unique(groups)]
    best = None
    for alpha in ALPHAS:
        shrink = values / (values + alpha)
        residuals = Tc - vectors @ (shrink[:, None] * projected)
        loo = np.empty_like(residuals)
        for rows in members:
            hat = (vectors[rows] * shrink) @ vectors[rows].T + 1.0 / len(X)
            loo[rows] = np.linalg.solve(np.eye(len(rows)) - hat, residuals[rows])
        error = float(np.mean(loo ** 2))
        if best is None or error < best[0]:
            best = (error, targets - loo, float(alpha))
    return classes, best[1], best[0], best[2]


def loo_stats(train_x, y_train, n_views, photo_groups=None):
    """Per photo right/wrong, log loss and squared error, left out with its views.

    ``train_x``: the scaled training rows, the photos first and then each view
    of them in turn (as ``_curve_methods._tables`` stacks them).
    ``photo_groups``: photos left out together (near-duplicates, as
    ``fit(groups=)`` gets them); None: each photo alone.
    """
    n = len(y_train)
    Y = np.tile(y_train, n_views)
    photo_groups = np.arange(n) if photo_groups is None else np.unique(
        photo_groups, return_inverse=True)[1]
    groups = np.tile(photo_groups, n_views)
    classes, decisions, error, alpha = grouped_loo(train_x, Y, groups)
    codes = np.searchsorted(classes, Y)

    def loss(log_t, rows=slice(None)):
        scores = log_softmax(decisions[rows] / np.exp(log_t), axis=1)
        return -scores[np.arange(len(codes))[rows], codes[rows]].mean()

    # the temperature as the classifier fits it (on every row), the loss on photos
    log_t = minimize_scalar(loss, bounds=(-7.0, 7.0), method="bounded").x
    photos = slice(0, n)
    right = decisions[photos].argmax(axis=1) == codes[photos]
    return {"right": right, "log_loss": float(loss(log_t, photos)), "sq": error,
            "alpha": alpha}


def prefers(challenger, default, rule):
    """Whether ``challenger``'s leave-one-out stats beat ``default``'s by ``rule``."""
    kind, margin = rule
    wins = int(np.sum(challenger["right"] & ~default["right"]))
    losses = int(np.sum(~challenger["right"] & default["right"]))
    z = (wins - losses) / np.sqrt(wins + losses) if wins + losses else 0.0
    if kind == "sq":
        return challenger["sq"] < default["sq"] * (1 - margin)
    if kind == "z":
        return z >= margin
    if kind == "ll":
        return challenger["log_loss"] < default["log_loss"] * (1 - margin)
    if kind == "both":
        return z >= margin and challenger["log_loss"] < default["log_loss"]
    raise ValueError(f"unknown rule {rule!r}")


def choose(sets, stats, rule):
    """The block set chosen: ``sets[0]`` (the default) unless one beats it.

    Among the challengers that beat the default by ``rule``, the one of least
    leave-one-out log loss.
    """
    winners = [i for i in range(1, len(sets)) if prefers(stats[i], stats[0], rule)]
    if not winners:
        return sets[0]
    return sets[min(winners, key=lambda i: stats[i]["log_loss"])]


def choose_blocks(method, features, y, train, test):
    """The block set a ``choose_loo`` method fits with on these training photos.

    ``method["choose_loo"]``: ``{"sets": [default, challenger, ...], "rule":
    (kind, margin), "from": T}``; below ``T`` photos in the smallest class,
    the default set without looking. ``method["aug"]`` (already resolved by
    the smallest class) gives the views each candidate is fitted with.
    """
    from _curve_methods import _tables

    spec = method["choose_loo"]
    sets = [tuple(s) for s in spec["sets"]]
    if np.unique(y[train], return_counts=True)[1].min() < spec.get("from", 0):
        return sets[0]
    aug = ["id", *method.get("aug", ())]
    stats = []
    for blocks in sets:
        train_x, _ = _tables(features, blocks, train, test, aug, ["id"], None)
        stats.append(loo_stats(np.vstack(train_x), y[train], len(aug)))
    return choose(sets, stats, tuple(spec["rule"]))
