"""Which ridge penalty grid: ``train --search``'s, a lower one, or leave-one-out?

``hybridclf train --search grid`` tries each penalty of the ridge's grid in
:data:`hybridclf.pipeline.CLASSIFIERS` (``clf__alphas``: one penalty per
candidate, so the ridge's own leave-one-out choice is switched off) on
grouped inner folds and keeps the one of best mean accuracy (the first on a
tie, as :func:`hybridclf.training._search.grid_search` does). Without
``--search`` the ridge picks its penalty among ``(10, ..., 3000)`` by its
grouped leave-one-out squared error in one fit.

On ``amulet6`` (``../shared/data/amulet6`` or ``$HYBRIDCLF_DATA/amulet6``),
outer folds grouped by ``amulet6_groups.csv`` (``StratifiedGroupKFold(5)``,
3 shuffles), default blocks (cnn, hog, lbp, colour) each standardised on the
training rows (no views: every class has 15 photos or more in a training
part), this compares on the same outer folds:

- the default ridge (leave-one-out over 10 ... 3000);
- the ridge's leave-one-out over a grid reaching 1e-2;
- the search over the current grid (``logspace(0, 4, 20)``) on 5 grouped
  inner folds of the training part;
- the same search over a grid reaching 1e-2 (``logspace(-2, 4, 25)``).

Reported: outer accuracy, its paired difference per fold with the default
(mean +/- standard error, wins / ties / losses), which penalties were
chosen, and how many candidates tied for the best inner accuracy. Features
are cached (``_curve_data``). It rewrites its section of
``docs/benchmarks.md``::

    .venv/bin/python benchmarks/bench_ridge_grid.py           # a few minutes
"""

import argparse
import sys
import warnings
from collections import Counter
from datetime import datetime, timezone

import _common
import numpy as np
from _curve_data import BLOCKS, load_amulet6, view_features
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.preprocessing import StandardScaler

from hybridclf.classifiers import RidgeSoftmaxClassifier
from hybridclf.pipeline import CLASSIFIERS

START = "<!-- bench_ridge_grid:start -->"
END = "<!-- bench_ridge_grid:end -->"
LOW_GRID = tuple(float(a) for a in np.logspace(-2, 4, 25))
LOW_LOO = tuple(float(a) for a in np.logspace(-2, 3.5, 12))


def tables(features, train, test):
    parts_a, parts_b = [], []
    for block in BLOCKS:
        scaler = StandardScaler().fit(features[block][train])
        parts_a.append(scaler.transform(features[block][train]))
        parts_b.append(scaler.transform(features[block][test]))
    return np.hstack(parts_a), np.hstack(parts_b)


def ridge_predictions(a, ya, b, alphas):
    """Predictions of ``RidgeClassifier(alpha)`` for every alpha, in one go."""
    classes = np.unique(ya)
    targets = np.where(ya[:, None] == classes[None, :], 1.0, -1.0)
    x_mean, t_mean = a.mean(axis=0), targets.mean(axis=0)
    ac, tc = a - x_mean, targets - t_mean
    values, vectors = np.linalg.eigh(ac @ ac.T)
    values = np.clip(values, 0.0, None)
    projected = vectors.T @ tc
    cross = (b - x_mean) @ ac.T
    out = []
    for alpha in alphas:
        dual = vectors @ (projected / (values + alpha)[:, None])
        out.append(classes[np.argmax(cross @ dual + t_mean, axis=1)])
    return out


def search(features, y, groups, train, alphas, seed):
    """The penalty of best mean inner accuracy (first on ties), and the ties."""
    scores = np.zeros(len(alphas))
    inner = StratifiedGroupKFold(5, shuffle=True, random_state=seed).split(
        train, y[train], groups[train])
    for tr, te in inner:
        a, b = tables(features, train[tr], train[te])
        for i, pred in enumerate(ridge_predictions(a, y[train[tr]], b, alphas)):
            scores[i] += np.mean(pred == y[train[te]])
    best = int(np.argmax(scores))
    return alphas[best], int(np.sum(np.isclose(scores, scores[best])))


def fmt_alpha(a):
    return f"{a:.3g}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true",
                        help="one shuffle, no docs update")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message="The least populated class")
    data = load_amulet6()
    if data is None:
        print("amulet6 not found (set HYBRIDCLF_DATA); nothing measured")
        return 0
    images, y, groups, _ = data
    features = view_features("amulet6", images, ["id"])[0]["id"]
    current = tuple(a for (a,) in CLASSIFIERS["ridge"].search_grid["clf__alphas"])
    methods = ["default (leave-one-out, 10 ... 3000)",
               f"leave-one-out, {len(LOW_LOO)} penalties 0.01 ... 3162",
               f"search, current grid ({len(current)} penalties "
               f"{fmt_alpha(current[0])} ... {fmt_alpha(current[-1])})",
               f"search, {len(LOW_GRID)} penalties 0.01 ... 10000"]
    acc = {m: [] for m in methods}
    chosen = {m: Counter() for m in methods}
    ties = {m: [] for m in methods}
    repeats = 1 if args.quick else args.repeats
    smallest = []  # smallest non-zero eigenvalue of each training Gram matrix
    for seed in range(repeats):
        outer = StratifiedGroupKFold(5, shuffle=True, random_state=seed).split(
            y, y, groups)
        for train, test in outer:
            a, b = tables(features, train, test)
            centred = a - a.mean(axis=0)
            values = np.linalg.eigvalsh(centred @ centred.T)
            smallest.append(float(np.sort(values)[1]))  # one is 0 (centring)
            for m, alphas in zip(methods[:2], (RidgeSoftmaxClassifier().alphas,
                                               LOW_LOO)):
                clf = RidgeSoftmaxClassifier(alphas=alphas).fit(
                    a, y[train], groups=groups[train])
                acc[m].append(np.mean(clf.predict(b) == y[test]))
                chosen[m][clf.alpha_] += 1
            for m, alphas in zip(methods[2:], (current, LOW_GRID)):
                alpha, n_tied = search(features, y, groups, train, alphas, seed)
                pred = ridge_predictions(a, y[train], b, [alpha])[0]
                acc[m].append(np.mean(pred == y[test]))
                chosen[m][alpha] += 1
                ties[m].append(n_tied)
        print(f"shuffle {seed}:", {m: np.mean(v) for m, v in acc.items()},
              flush=True)
    base = np.asarray(acc[methods[0]])
    lines = [START,
             "## Ridge penalty: search grid or leave-one-out "
             "(`benchmarks/bench_ridge_grid.py`)",
             "",
             "amulet6, default blocks (no views), outer folds grouped by "
             f"`amulet6_groups.csv` (StratifiedGroupKFold(5), {repeats} "
             "shuffles); a search scores each penalty by mean accuracy on 5 "
             "grouped inner folds of the training part and keeps the first "
             "best, as `hybridclf train --search grid` does. Paired: "
             "the row minus the default per outer fold, mean +/- standard "
             "error (wins / ties / losses).", "",
             "| method | accuracy | paired vs default | penalties chosen "
             "(times) | candidates tied for best (median) |",
             "| --- | --- | --- | --- | --- |"]
    for m in methods:
        v = np.asarray(acc[m])
        d = v - base
        se = d.std(ddof=1) / np.sqrt(len(d))
        paired = ("-" if m == methods[0] else
                  f"{d.mean():+.4f} +/- {se:.4f} ({(d > 1e-12).sum()} / "
                  f"{(np.abs(d) <= 1e-12).sum()} / {(d < -1e-12).sum()})")
        picks = ", ".join(f"{fmt_alpha(a)} ({n})"
                          for a, n in sorted(chosen[m].items()))
        tie = f"{np.median(ties[m]):.0f}" if ties[m] else "-"
        lines.append(f"| {m} | {v.mean():.4f} | {paired} | {picks} | {tie} |")
        print(lines[-1])
    low = float(np.median(smallest))
    lines += ["", "Why the penalties below about 30 tie: with "
              f"{a.shape[1]} standardised features and about {len(a)} training "
              "photos, the smallest non-zero eigenvalue of the centred Gram "
              f"matrix is {low:.0f} (median over the folds; least "
              f"{min(smallest):.0f}), and a penalty alpha shrinks each "
              "direction by at most alpha / (eigenvalue + alpha): "
              f"{10 / (low + 10):.1%} at 10, {1 / (low + 1):.2%} at 1. Below "
              "about 30 (where the ties above end) every penalty gives nearly "
              "the interpolating model, the same predictions; a search keeps "
              "the first of the tied ones, the lowest of its grid."]
    print(lines[-1])
    if args.quick:
        return 0
    when = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M+00:00")
    lines += ["", f"Measured {when} with "
              "`.venv/bin/python benchmarks/bench_ridge_grid.py`.", END]
    _common.write_section(_common.REPO_ROOT / "docs" / "benchmarks.md",
                          "\n".join(lines) + "\n", START, END)
    return 0


if __name__ == "__main__":
    sys.exit(main())
