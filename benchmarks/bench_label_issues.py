"""How well likely wrong labels are found: injected label noise on real data.

Labels of real labelled sets are moved on purpose, and each method's flagged
set is compared with the moved set (precision, recall, F1):

- **amulet6** (``../shared/data/amulet6``, 173 photos, 6 classes), folds
  grouped by the hand-checked ``amulet6_groups.csv``;
- **digits** (scikit-learn's 8x8 hand-written digits, the first 60 of each
  of the 10 classes, drawn as 224-pixel RGB images; every image its own
  group).

Noise: 2%, 5% and 10% of the labels moved, either **uniformly** (a random
image to a random other class) or between the **most-confused class pairs**
(an image of class a to the class b that the clean out-of-fold predictions
confuse most with a: the hard case, where a wrong label looks plausible), with
several seeds.

Methods, all on 5-fold out-of-fold probabilities:

- **hybridclf**: the default pipeline (CNN, HOG, LBP and colour blocks, each
  scaled alone, ridge classifier), folds grouped (``StratifiedGroupKFold``),
  then :func:`hybridclf.label_issues.find_label_issues` with each
  ``filter_by``; this is what ``hybridclf train`` does on its training part;
- **cleanlab, plain pipeline**: the same blocks concatenated, one
  ``StandardScaler`` and ``LogisticRegression``, ungrouped
  ``StratifiedKFold``, ``cleanlab.filter.find_label_issues`` with its
  defaults: what a cleanlab user would write with scikit-learn;
- **baseline**: the hybridclf predictions, every image whose predicted class
  differs from its label.

Then the grouped CV accuracy (scored against the true labels) of the
hybridclf pipeline trained on the clean labels, on the noisy labels, and on
the noisy labels without what hybridclf flagged.

The features of each image are computed once and cached in
``benchmarks/results/`` (the per-image path of ``bench_accuracy.py``: the same
predictions as the pipeline). It rewrites its section of
``docs/benchmarks.md``::

    .venv/bin/python benchmarks/bench_label_issues.py            # about 15 min
    .venv/bin/python benchmarks/bench_label_issues.py --quick    # smoke test
"""

import argparse
import json
import sys
import time
from datetime import datetime, timezone

import _common
import numpy as np
from bench_accuracy import FeatureStore, scaled_fold
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import (
    StratifiedGroupKFold,
    StratifiedKFold,
    cross_val_predict,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from hybridclf import load_image_folder, make_hybrid_pipeline
from hybridclf.io import ImageLoader
from hybridclf.label_issues import find_label_issues
from hybridclf.pipeline import DEFAULT_FEATURES
from hybridclf.training import read_groups_csv

START, END = "<!-- bench_label_issues:start -->", "<!-- bench_label_issues:end -->"
COMMAND = ".venv/bin/python benchmarks/bench_label_issues.py"
RESULTS = _common.REPO_ROOT / "benchmarks" / "results"
RATES = (0.02, 0.05, 0.10)
KINDS = ("uniform", "confused")
FILTERS = ("low_self_confidence", "low_normalized_margin", "prune_by_noise_rate",
           "prune_by_class", "both", "confident_learning")
DEFAULT_FILTER = "low_self_confidence"  # hybridclf.label_issues' default
BLOCKS = list(DEFAULT_FEATURES)
DIGITS_PER_CLASS = 60  # 600 images: the plain pipeline's fits stay affordable


def load_amulet6():
    folder = _common.find_dataset("amulet6")
    if folder is None:
        return None
    paths, labels = load_image_folder(folder)
    groups = read_groups_csv(folder.parent / "amulet6_groups.csv", paths,
                             root=folder)
    return paths, np.asarray(labels), np.asarray(groups)


def load_digits_images():
    import cv2
    from sklearn.datasets import load_digits

    digits = load_digits()
    first = np.concatenate([np.flatnonzero(digits.target == d)[:DIGITS_PER_CLASS]
                            for d in range(10)])
    grey = (digits.images[first] * (255 / 16)).astype(np.uint8)
    images = [cv2.cvtColor(cv2.resize(g, (64, 64), interpolation=cv2.INTER_LINEAR),
                           cv2.COLOR_GRAY2RGB) for g in grey]
    labels = np.array([f"digit_{d}" for d in digits.target[first]])
    return images, labels, np.arange(len(labels))


def feature_store(name, sources):
    """Per-image features of the default blocks, cached on disk."""
    cache = RESULTS / f"label_issues_features_{name}.npz"
    store = FeatureStore(None)
    if cache.exists():
        with np.load(cache) as data:
            store.fixed = {block: data[block] for block in BLOCKS}
        return store
    t0 = time.perf_counter()
    store.images = ImageLoader(size=224, n_jobs=2).fit_transform(sources)
    everything = np.arange(len(store.images))
    for block in BLOCKS:
        store.get(block, 0, everything, everything)
    store.images = None
    RESULTS.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **store.fixed)
    print(f"{name}: features of {len(everything)} images in "
          f"{time.perf_counter() - t0:.0f} s, cached in {cache}", flush=True)
    return store


def hybrid_oof(store, y, groups, folds, classes):
    """Out-of-fold probabilities of the default pipeline (per-block scaling).

    The ridge gets the groups, as ``hybridclf train`` gives them: its
    leave-one-out leaves a photo out with its near-duplicates.
    """
    ridge = make_hybrid_pipeline()["clf"]
    proba = np.zeros((len(y), len(classes)))
    for fold, (train, test) in enumerate(folds):
        features_a, features_b, _ = scaled_fold(store, BLOCKS, fold, train, test)
        clf = clone(ridge).fit(features_a, y[train], groups=groups[train])
        proba[np.ix_(test, np.searchsorted(classes, clf.classes_))] = (
            clf.predict_proba(features_b))
    return proba


def grouped_accuracy(store, y_fit, y_true, groups, folds, keep=None):
    """Mean fold accuracy against ``y_true`` of fits on ``y_fit`` (``keep`` only)."""
    ridge = make_hybrid_pipeline()["clf"]
    accuracies = []
    for fold, (train, test) in enumerate(folds):
        if keep is not None:
            train = train[keep[train]]
        features_a, features_b, _ = scaled_fold(store, BLOCKS, fold, train, test)
        pred = clone(ridge).fit(features_a, y_fit[train],
                                groups=groups[train]).predict(features_b)
        accuracies.append(np.mean(pred == y_true[test]))
    return float(np.mean(accuracies))


def plain_cleanlab(store, y, classes, seed):
    """cleanlab's defaults on a plain scikit-learn pipeline, ungrouped folds."""
    from cleanlab.filter import find_label_issues as cleanlab_issues

    features = np.hstack([store.fixed[block] for block in BLOCKS])
    plain = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    proba = cross_val_predict(plain, features, y, method="predict_proba",
                              cv=StratifiedKFold(5, shuffle=True, random_state=seed))
    return set(np.flatnonzero(cleanlab_issues(np.searchsorted(classes, y), proba,
                                              n_jobs=1)).tolist())


def confused_pairs(y, proba, classes):
    """Class pairs, most confused first, from clean out-of-fold predictions."""
    pred = classes[proba.argmax(axis=1)]
    k = len(classes)
    counts = np.zeros((k, k))
    np.add.at(counts, (np.searchsorted(classes, y), np.searchsorted(classes, pred)), 1)
    symmetric = counts + counts.T
    pairs = [(symmetric[a, b], a, b) for a in range(k) for b in range(a + 1, k)]
    return [(classes[a], classes[b]) for _, a, b in sorted(pairs, reverse=True)]


def inject(y, classes, rate, kind, pairs, rng):
    """Noisy labels and the set of moved indices."""
    n_moved = max(1, round(rate * len(y)))
    noisy = y.copy()
    if kind == "uniform":
        moved = rng.choice(len(y), n_moved, replace=False)
        for i in moved:
            noisy[i] = rng.choice(classes[classes != y[i]])
        return noisy, set(moved.tolist())
    candidates = {}  # image -> its partner in the most confused pair it is in
    for a, b in pairs:
        for cls, other in ((a, b), (b, a)):
            for i in np.flatnonzero(y == cls):
                candidates.setdefault(int(i), other)
        if len(candidates) >= 3 * n_moved:
            break
    moved = rng.choice(sorted(candidates), n_moved, replace=False)
    for i in moved:
        noisy[i] = candidates[int(i)]
    return noisy, set(moved.tolist())


def prf(flagged, moved):
    hits = len(flagged & moved)
    precision = hits / len(flagged) if flagged else 0.0
    recall = hits / len(moved)
    f1 = 2 * precision * recall / (precision + recall) if hits else 0.0
    return {"precision": precision, "recall": recall, "f1": f1,
            "n_flagged": len(flagged)}


def run_noisy(store, y, groups, classes, rate, kind, pairs, seed):
    """Every method on one noisy labelling; the accuracies before and after."""
    rng = np.random.default_rng(seed)
    noisy, moved = inject(y, classes, rate, kind, pairs, rng)
    folds = list(StratifiedGroupKFold(5, shuffle=True, random_state=seed).split(
        y, noisy, groups))
    proba = hybrid_oof(store, noisy, groups, folds, classes)
    scores, flags = {}, {}
    for filter_by in (*FILTERS, "predicted_neq_given"):
        found = find_label_issues(noisy, proba, classes, filter_by=filter_by)
        flags[filter_by] = set(found["index"].tolist())
        scores[filter_by] = prf(flags[filter_by], moved)
    scores["cleanlab_plain"] = prf(plain_cleanlab(store, noisy, classes, seed), moved)
    keep = np.ones(len(y), bool)
    keep[sorted(flags[DEFAULT_FILTER])] = False
    accuracy = {
        "clean": grouped_accuracy(store, y, y, groups, folds),
        "noisy": float(np.mean(classes[proba.argmax(axis=1)] == y)),
        "noisy_minus_flagged": grouped_accuracy(store, noisy, y, groups, folds, keep),
        "n_removed": int((~keep).sum()),
        "n_removed_wrong": len(moved & flags[DEFAULT_FILTER]),
    }
    return {"rate": rate, "kind": kind, "seed": seed, "n_moved": len(moved),
            "scores": scores, "accuracy": accuracy}


def run_dataset(name, data, seeds, rates):
    sources, y, groups = data
    store = feature_store(name, sources)
    classes = np.unique(y)
    clean_folds = list(StratifiedGroupKFold(5, shuffle=True, random_state=0).split(
        y, y, groups))
    clean_proba = hybrid_oof(store, y, groups, clean_folds, classes)
    pairs = confused_pairs(y, clean_proba, classes)
    clean_flags = find_label_issues(y, clean_proba, classes)
    runs = []
    for rate in rates:
        for kind in KINDS:
            for seed in seeds:
                runs.append(run_noisy(store, y, groups, classes, rate, kind, pairs,
                                      seed))
                s = runs[-1]["scores"]
                print(f"{name} {kind:8s} {rate:.0%} seed {seed}: hybridclf P "
                      f"{s[DEFAULT_FILTER]['precision']:.2f} R "
                      f"{s[DEFAULT_FILTER]['recall']:.2f}; plain cleanlab P "
                      f"{s['cleanlab_plain']['precision']:.2f} R "
                      f"{s['cleanlab_plain']['recall']:.2f}", flush=True)
    return {"name": name, "n_images": len(y), "n_classes": len(classes),
            "n_groups": len(np.unique(groups)), "top_pairs": pairs[:3],
            "flagged_clean": len(clean_flags["index"]), "runs": runs}


METHOD_LABELS = [
    (DEFAULT_FILTER, f"hybridclf (grouped, `{DEFAULT_FILTER}`, the default)"),
    *[(f, f"hybridclf (grouped, `{f}`)") for f in FILTERS if f != DEFAULT_FILTER],
    ("cleanlab_plain", "cleanlab defaults, plain pipeline (ungrouped)"),
    ("predicted_neq_given", "baseline: prediction differs from label"),
]


def _mean_std(values):
    return f"{np.mean(values):.2f} +/- {np.std(values):.2f}"


def _cells(runs, key):
    return [_mean_std([r["scores"][key][m] for r in runs])
            for m in ("precision", "recall", "f1")] + [
        f"{np.mean([r['scores'][key]['n_flagged'] for r in runs]):.1f}"]


def render_dataset(result):
    lines = [
        f"### {result['name']}: {result['n_images']} images, {result['n_classes']} "
        f"classes, {result['n_groups']} groups",
        "",
        "Most confused class pairs (clean out-of-fold predictions): "
        + ", ".join(f"{a} / {b}" for a, b in result["top_pairs"]) + ". On the "
        f"clean labels hybridclf flags {result['flagged_clean']} image(s), counted "
        "as false positives in every run unless moved.",
        "",
        "| noise | moved | method | precision | recall | F1 | flagged |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    keyed = {}
    for run in result["runs"]:
        keyed.setdefault((run["kind"], run["rate"]), []).append(run)
    for (kind, rate), runs in keyed.items():
        for key, label in METHOD_LABELS:
            lines.append(f"| {kind} {rate:.0%} | {runs[0]['n_moved']} | {label} | "
                         + " | ".join(_cells(runs, key)) + " |")
    lines += ["", "Grouped CV accuracy (against the true labels) of the default "
              "pipeline trained on:", "",
              "| noise | clean labels | noisy labels | noisy minus flagged | "
              "removed (of them wrong) |",
              "| --- | ---: | ---: | ---: | ---: |"]
    for (kind, rate), runs in keyed.items():
        acc = [r["accuracy"] for r in runs]
        lines.append(
            f"| {kind} {rate:.0%} | "
            + " | ".join(_mean_std([a[k] for a in acc]) for k in
                         ("clean", "noisy", "noisy_minus_flagged"))
            + f" | {np.mean([a['n_removed'] for a in acc]):.1f} "
            f"({np.mean([a['n_removed_wrong'] for a in acc]):.1f}) |")
    return lines


def render(report):
    lines = [
        START,
        "## Likely wrong labels (`benchmarks/bench_label_issues.py`)",
        "",
        f"- Date: {report['date']}",
        f"- Machine: {report['machine']}",
        f"- Command: `{COMMAND}`",
        f"- Noise: {', '.join(f'{r:.0%}' for r in report['rates'])} of the labels "
        "moved, *uniform* (random image, random other class) or *confused* (an "
        "image of one of the most-confused class pairs moved to the other class "
        f"of its pair); seeds {report['seeds']} (digits: "
        f"{report['digits_seeds']}); mean +/- std over the seeds. "
        "Precision and recall of the flagged set against the moved set; a real "
        "wrong label of the original data that is flagged counts as a false "
        "positive.",
        "- hybridclf: default blocks (CNN, HOG, LBP, colour), ridge (given the "
        "groups: its leave-one-out leaves a photo out with its near-duplicates), "
        "5 grouped folds (amulet6: the hand-checked groups), then "
        "`hybridclf.label_issues.find_label_issues` (cleanlab) on the "
        "out-of-fold probabilities, as `hybridclf train` does on its training "
        "part. Plain pipeline: the same features concatenated, StandardScaler + "
        "LogisticRegression, ungrouped StratifiedKFold(5), "
        "`cleanlab.filter.find_label_issues` defaults. Baseline: the hybridclf "
        "out-of-fold prediction differs from the label.",
        "",
    ]
    for result in report["datasets"]:
        lines += render_dataset(result) + [""]
    lines += [*report.get("notes", []), END]
    return "\n".join(lines) + "\n"


def target_notes(report):
    """The issue's target (amulet6, 5% noise: precision and recall >= 0.8), checked."""
    notes = []
    for result in report["datasets"]:
        if result["name"] != "amulet6":
            continue
        for kind in KINDS:
            runs = [r for r in result["runs"]
                    if r["kind"] == kind and r["rate"] == 0.05]
            if not runs:
                continue
            p = np.mean([r["scores"][DEFAULT_FILTER]["precision"] for r in runs])
            r = np.mean([r["scores"][DEFAULT_FILTER]["recall"] for r in runs])
            met = "met" if p >= 0.8 and r >= 0.8 else "NOT met"
            notes.append(f"- Target on amulet6 at 5% {kind} noise (precision and "
                         f"recall >= 0.8): precision {p:.2f}, recall {r:.2f}: {met}.")
    notes.append(
        "- `low_self_confidence` became hybridclf's default on these amulet6 "
        "figures (cleanlab's own default is `prune_by_noise_rate`); digits, not "
        "used for that choice, is the check that it holds elsewhere.")
    return notes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="amulet6 only, 5%% noise, 2 seeds, no docs update")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--digits-seeds", type=int, default=3)
    parser.add_argument("--render", action="store_true",
                        help="rewrite the docs section from the last run's JSON")
    args = parser.parse_args(argv)
    if args.render:
        report = json.loads((RESULTS / "bench_label_issues.json").read_text())
        report["notes"] = target_notes(report)
        _common.write_section(_common.DOCS_FILE, render(report), START, END)
        print(f"wrote {_common.DOCS_FILE}")
        return 0
    rates = (0.05,) if args.quick else RATES
    datasets = []
    with threadpool_limits(1, user_api="blas"):
        amulet6 = load_amulet6()
        if amulet6 is None:
            print("amulet6 not found (set HYBRIDCLF_DATA); skipping it")
        else:
            datasets.append(run_dataset("amulet6", amulet6,
                                        list(range(2 if args.quick else args.seeds)),
                                        rates))
        if not args.quick:
            datasets.append(run_dataset("digits", load_digits_images(),
                                        list(range(args.digits_seeds)), rates))
    info = _common.machine_info()
    report = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M+00:00"),
        "machine": f"{info['nproc']} CPUs, {info['cpu_model']}; scikit-learn "
                   f"{info['scikit-learn']}",
        "rates": list(rates), "seeds": list(range(args.seeds)),
        "digits_seeds": list(range(args.digits_seeds)),
        "datasets": datasets,
    }
    report["notes"] = target_notes(report)
    if args.quick:
        print(render(report))
        return 0
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "bench_label_issues.json").write_text(json.dumps(report, indent=1))
    _common.write_section(_common.DOCS_FILE, render(report), START, END)
    print(f"wrote {_common.DOCS_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
