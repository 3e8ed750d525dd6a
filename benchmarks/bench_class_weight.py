"""Does ``class_weight="balanced"`` help the ridge when a class has few photos?

An imbalanced collection made from ``amulet6`` (``../shared/data/amulet6`` or
``$HYBRIDCLF_DATA/amulet6``): one class (each of the six in turn) or two
(three fixed pairs) cut down to ``k`` photos (4 and 6, drawn at random; the
other classes keep all theirs), then 5 folds grouped by
``amulet6_groups.csv`` (``StratifiedGroupKFold``; photos of one amulet are
never on both sides). On every fold the default classifier
(``RidgeSoftmaxClassifier()``) and ``RidgeSoftmaxClassifier(class_weight=
"balanced")`` are fitted on the same rows, as the default pipeline makes
them: the default blocks (cnn, hog, lbp, colour), each standardised on the
training rows, and the views of :class:`~hybridclf.ViewAugmenter` (the
smallest class is under its bar of 15 photos, so it adds them), each photo
left out with its views and near-duplicates (``groups``). The cascade's
early exit is not part of it: this is the full model's classifier.

Reported: accuracy, balanced accuracy (mean recall over the classes) and
the recall of the cut-down classes, paired per fold (per draw for the
recall, whose photos are spread over the folds): mean difference
(balanced minus default) +/- its standard error, and wins / ties / losses.

Features are those of ``bench_learning_curve.py`` (``_curve_data``), cached
in ``benchmarks/results/features/``. It rewrites its section of
``docs/benchmarks.md``::

    .venv/bin/python benchmarks/bench_class_weight.py          # 20 min, 2 busy CPUs
    .venv/bin/python benchmarks/bench_class_weight.py --quick  # no docs update
"""

import argparse
import sys
import warnings
from datetime import datetime, timezone

import _common
import numpy as np
from _curve_data import BLOCKS, load_amulet6, view_features
from sklearn.metrics import accuracy_score, balanced_accuracy_score
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.preprocessing import StandardScaler

from hybridclf.classifiers import RidgeSoftmaxClassifier
from hybridclf.view_sampling import AUTO_VIEWS

START = "<!-- bench_class_weight:start -->"
END = "<!-- bench_class_weight:end -->"
PAIRS = ((0, 1), (2, 3), (4, 5))


def tables(features, views, train, test):
    """Training rows (the photos, then each view of them) and test rows."""
    parts_a, parts_b = [], []
    for block in BLOCKS:
        a = np.vstack([features[v][block][train] for v in views])
        scaler = StandardScaler().fit(a)
        parts_a.append(scaler.transform(a))
        parts_b.append(scaler.transform(features["id"][block][test]))
    return np.hstack(parts_a), np.hstack(parts_b)


def run(features, y, groups, keep, seed, views):
    """Per-fold (accuracy, balanced accuracy) and pooled predictions, both models."""
    folds = StratifiedGroupKFold(5, shuffle=True, random_state=seed).split(
        keep, y[keep], groups[keep])
    per_fold = {"default": [], "balanced": []}
    pred = {"default": np.empty(len(keep), dtype=y.dtype),
            "balanced": np.empty(len(keep), dtype=y.dtype)}
    for train, test in folds:
        a, b = tables(features, views, keep[train], keep[test])
        rows_y = np.tile(y[keep[train]], len(views))
        rows_groups = np.tile(groups[keep[train]], len(views))
        for name, cw in (("default", None), ("balanced", "balanced")):
            clf = RidgeSoftmaxClassifier(class_weight=cw).fit(
                a, rows_y, groups=rows_groups)
            p = clf.predict(b)
            pred[name][test] = p
            per_fold[name].append((accuracy_score(y[keep[test]], p),
                                   balanced_accuracy_score(y[keep[test]], p)))
    return per_fold, pred


def paired(diffs):
    diffs = np.asarray(diffs, dtype=float)
    se = diffs.std(ddof=1) / np.sqrt(len(diffs)) if len(diffs) > 1 else 0.0
    return (f"{diffs.mean():+.4f} +/- {se:.4f} ({(diffs > 1e-12).sum()} / "
            f"{(np.abs(diffs) <= 1e-12).sum()} / {(diffs < -1e-12).sum()})")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="one draw, k=4, single classes only; no docs update")
    parser.add_argument("--draws", type=int, default=2,
                        help="random cuts of each minority choice and k")
    parser.add_argument("--k", type=int, nargs="+", default=[4, 6])
    args = parser.parse_args(argv)
    # k=4 photos in 5 folds: one fold has none of them to test, as expected
    warnings.filterwarnings("ignore", message="The least populated class")
    data = load_amulet6()
    if data is None:
        print("amulet6 not found (set HYBRIDCLF_DATA); nothing measured")
        return 0
    images, y, groups, _ = data
    views = ["id", *AUTO_VIEWS]
    features, _ = view_features("amulet6", images, views)
    classes = np.unique(y)
    minorities = [(c,) for c in range(len(classes))]
    if not args.quick:
        minorities += list(PAIRS)
    draws = 1 if args.quick else args.draws
    ks = args.k[:1] if args.quick else args.k
    rows = {}
    for k in ks:
        acc, bal, rec = [], [], []
        hits = {"default": 0, "balanced": 0}
        n_minority = 0
        for minority in minorities:
            for draw in range(draws):
                rng = np.random.default_rng([k, draw, *minority])
                keep = [np.flatnonzero(y == classes[c]) for c in range(len(classes))]
                for c in minority:
                    keep[c] = np.sort(rng.choice(keep[c], k, replace=False))
                keep = np.concatenate(keep)
                per_fold, pred = run(features, y, groups, keep, draw, views)
                for (a0, b0), (a1, b1) in zip(per_fold["default"],
                                              per_fold["balanced"]):
                    acc.append(a1 - a0)
                    bal.append(b1 - b0)
                rare = np.isin(y[keep], classes[list(minority)])
                r = {n: float(np.mean(pred[n][rare] == y[keep][rare]))
                     for n in pred}
                rec.append(r["balanced"] - r["default"])
                for n in pred:
                    hits[n] += int(np.sum(pred[n][rare] == y[keep][rare]))
                n_minority += int(rare.sum())
        rows[k] = {"accuracy": paired(acc), "balanced accuracy": paired(bal),
                   "minority recall": paired(rec), "folds": len(acc),
                   "draws": len(rec), "hits": hits, "n_minority": n_minority}
        print(f"k={k}", rows[k], flush=True)
    if args.quick:
        return 0
    command = ".venv/bin/python benchmarks/bench_class_weight.py" + (
        "" if argv is None or not argv else " " + " ".join(argv))
    lines = [START,
             "## Class weights on an imbalanced collection "
             "(`benchmarks/bench_class_weight.py`)",
             "",
             "`RidgeSoftmaxClassifier(class_weight=\"balanced\")` minus the "
             "default `RidgeSoftmaxClassifier()` on amulet6 with one class "
             "(each in turn) or two (the pairs "
             + ", ".join(f"{classes[a]} + {classes[b]}" for a, b in PAIRS)
             + f") cut down to k photos at random ({draws} draws each), 5 folds "
             "grouped by `amulet6_groups.csv`; default blocks, views of "
             "`ViewAugmenter` (added: the smallest class is under 15), groups "
             "passed to the ridge's leave-one-out; the full model, no cascade. "
             "Each cell: mean paired difference +/- its standard error, and "
             "wins / ties / losses (per fold; per draw for the cut-down classes' "
             "recall, pooled over the draw's folds).", "",
             "| k | folds | accuracy | balanced accuracy | draws | recall of the "
             "cut-down classes | their photos right (default -> balanced) |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for k, r in rows.items():
        lines.append(
            f"| {k} | {r['folds']} | {r['accuracy']} | {r['balanced accuracy']} "
            f"| {r['draws']} | {r['minority recall']} | {r['hits']['default']} "
            f"-> {r['hits']['balanced']} of {r['n_minority']} |")
    when = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M+00:00")
    lines += ["", f"Measured {when} with `{command}`.", END]
    _common.write_section(_common.REPO_ROOT / "docs" / "benchmarks.md",
                          "\n".join(lines) + "\n", START, END)
    return 0


if __name__ == "__main__":
    sys.exit(main())
