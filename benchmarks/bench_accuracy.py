"""Leak-free accuracy benchmark of feature blocks, classifiers and options.

Repeated 5-fold cross-validation on ``amulet6`` (``../shared/data/amulet6`` or
``$HYBRIDCLF_DATA/amulet6``) with folds grouped by ``amulet6_groups.csv``, the
hand-checked groups of photos of one physical amulet (``StratifiedGroupKFold``;
photos of one amulet are never on both sides; without the file, by the
inspector's duplicate groups), for: each feature block alone, the classical
union, the CNN alone, the full union, the default, each classifier and
ensemble on the default blocks, and the default with class-aware
augmentation, flip test-time augmentation, another CNN and fine-tuning. Mean
and standard deviation of accuracy, balanced accuracy and macro-F1, fit and
predict time, and paired per-fold differences against the default.

How it stays exact and affordable: a block whose ``fit`` learns nothing from
the images (HOG, LBP, colour, a pretrained CNN) maps each image to the same
vector in every fold, so its features are computed once per image and sliced
per fold; blocks that learn (SIFT's vocabulary) are fitted on each training
fold. Every fold then fits the per-block ``StandardScaler`` and the classifier
exactly as the pipeline does. The script checks this against
``make_hybrid_pipeline(cascade=False).fit(...).predict(...)`` on the first fold (same
predictions) before it measures. Configurations whose fit changes the images
(augmentation, fine-tuning) run the real pipeline on every fold.

Fit and predict times are per configuration: the measured extraction time of
each block per image times the images, plus the measured fold fits.

It rewrites its section of ``docs/benchmarks.md`` and writes every fold to
``docs/bench_accuracy.json``::

    .venv/bin/python benchmarks/bench_accuracy.py              # about 1 hour
    .venv/bin/python benchmarks/bench_accuracy.py --fine-tune  # + fine-tuning
    .venv/bin/python benchmarks/bench_accuracy.py --reuse-slow # about 10 min

The rows that run on the first repeat only (gradient boosting, soft voting
and stacking: three quarters of a full run, 2026-12-07: 44 min of fits on a
quiet 2-CPU machine) can be copied from the last ``docs/bench_accuracy.json``
with ``--reuse-slow`` (so can fine-tuning, when ``--fine-tune`` is not
given): the table marks them with that run's date. Those classifiers take
no ``groups``; a change that does not touch them or the default blocks
leaves them as they were. ``--rerun-slow NAME ...`` (``hist_gradient_boosting``,
``soft_voting``, ``stacking``, ``fine_tune``) copies the others alike but
measures the named ones again, after every other row and in the order given,
and writes the section and the JSON after each of them: a run stopped before
the end (the time was up) leaves the ones it finished, the rest marked with
the date they were measured::

    .venv/bin/python benchmarks/bench_accuracy.py --rerun-slow fine_tune \
        soft_voting hist_gradient_boosting stacking

Without ``--rerun-slow`` the section is written at the end only. When the
section's text changes, ``--render`` rewrites it from ``docs/bench_accuracy.json``
without measuring anything.

    .venv/bin/python benchmarks/bench_accuracy.py --quick      # a smoke test
    .venv/bin/python benchmarks/bench_accuracy.py --cascade    # cascade vs default

``--cascade`` measures only the cascade beside the full default, on folds
grouped by ``amulet6_groups.csv`` (hand-checked groups), and rewrites its own
section (see ``_cascade_rows.py``); on 2 CPUs (2026-12-07) it took 3 min 36 s
the first time, 76 s once the block features were cached in
``benchmarks/results/features/``. While iterating, ``--cascade --quick
--timing-folds 0`` takes seconds once the features are cached (5 folds,
accuracy only, no docs update).
"""

import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone

import _common
import numpy as np
from _common import find_dataset
from sklearn.base import clone
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from hybridclf import ClassAwareAugmenter, load_image_folder, make_hybrid_pipeline
from hybridclf.grouped_fit import fit_classifier
from hybridclf.io import ImageLoader
from hybridclf.pipeline import DEFAULT_FEATURES
from hybridclf.training import read_groups_csv

START, END = "<!-- bench_accuracy:start -->", "<!-- bench_accuracy:end -->"
JSON_FILE = _common.REPO_ROOT / "docs" / "bench_accuracy.json"
COMMAND = ".venv/bin/python benchmarks/bench_accuracy.py"
LEARNED = {"sift"}  # blocks whose fit learns from the images
# the rows measured on the first repeat only, by the name --rerun-slow takes
SLOW = ("hist_gradient_boosting", "soft_voting", "stacking", "fine_tune")

# a block by name: FEATURE_BLOCKS and the variants measured here
block = _common.fixed_block


def configurations(fine_tune):
    """(label, blocks, classifier, mode) to measure; the default first."""
    default = list(DEFAULT_FEATURES)
    classical = ["hog", "lbp", "sift", "color"]
    rows = [("default: cnn, hog, lbp, color + ridge", default, "ridge", "cached")]
    for name in ["cnn", "hog", "lbp", "sift", "color"]:
        rows.append((f"{name} alone", [name], "ridge", "cached"))
    rows += [
        ("classical union (hog, lbp, sift, color)", classical, "ridge", "cached"),
        ("full union (cnn, hog, lbp, sift, color)", ["cnn", *classical], "ridge",
         "cached"),
        ("plain concatenation: Lite0 + 4 classical, logistic (reference)",
         ["cnn_lite0", *classical], "logistic", "cached"),
        ("previous default: 4 classical + logistic", classical, "logistic",
         "cached"),
        ("default, CNN head only (no block -4 map)",
         ["cnn_head_only", "hog", "lbp", "color"], "ridge", "cached"),
        ("default with flip TTA", ["cnn_tta", "hog", "lbp", "color"], "ridge",
         "cached"),
        # cheaper predictions: which blocks can go, and at what cost
        ("default without LBP (cnn, hog, color)", ["cnn", "hog", "color"], "ridge",
         "cached"),
        ("no CNN, no SIFT (hog, lbp, color)", ["hog", "lbp", "color"], "ridge",
         "cached"),
        ("hog, color", ["hog", "color"], "ridge", "cached"),
    ]
    for clf in ["logistic", "svc", "random_forest", "extra_trees"]:
        rows.append((f"default blocks + {clf}", default, clf, "cached"))
    # gradient boosting on thousands of columns takes about a minute per fit
    # here, 4 fits per fold when stacked: one repeat (5 folds) for these
    for clf in ["hist_gradient_boosting", "soft_voting", "stacking"]:
        rows.append((f"default blocks + {clf} (5 folds)", default, clf, "slow"))
    rows.append(("default + class-aware augmentation", default, "ridge", "augment"))
    if fine_tune:
        rows.append(("default, CNN fine-tuned (3 epochs)", default, "ridge",
                     "fine_tune"))
    return rows


class FeatureStore:
    """Per-image features of fixed blocks; per-fold ones of learned blocks."""

    def __init__(self, images, cache_key=None):
        self.images, self.cache_key = images, cache_key
        self.fixed, self.ms_per_image, self.per_fold = {}, {}, {}

    def get(self, name, fold, train, test):
        if name not in LEARNED:
            if name not in self.fixed:
                self.fixed[name], self.ms_per_image[name] = _common.block_features(
                    name, self.images, cache_key=self.cache_key)
            return self.fixed[name][train], self.fixed[name][test], 0.0
        key = (name, fold)
        if key not in self.per_fold:
            est = block(name).set_params(n_jobs=2, random_state=0)
            t = time.perf_counter()
            a = est.fit_transform(self.images[train])
            fit_s = time.perf_counter() - t
            t = time.perf_counter()
            b = est.transform(self.images[test])
            self.ms_per_image[name] = (time.perf_counter() - t) * 1000 / len(test)
            self.per_fold[key] = (a, b, fit_s)
        return self.per_fold[key]


def scaled_fold(store, blocks, fold, train, test):
    """The fold's features as the pipeline makes them: each block scaled alone."""
    parts_a, parts_b, fit_s = [], [], 0.0
    for name in blocks:
        a, b, s = store.get(name, fold, train, test)
        t = time.perf_counter()
        scaler = StandardScaler().fit(a)
        parts_a.append(scaler.transform(a))
        parts_b.append(scaler.transform(b))
        fit_s += s + time.perf_counter() - t
    return np.hstack(parts_a), np.hstack(parts_b), fit_s


def seeded(est, seed=0):
    """``est`` with every ``random_state`` set, as ``hybridclf train`` seeds
    its pipeline (``--seed``, 0 by default): unseeded, the rows of the
    forests and boosted trees came out different on every run."""
    return est.set_params(**{name: seed for name in est.get_params()
                             if name.endswith("random_state")})


def cached_fold(store, blocks, clf_name, fold, train, test, y, groups):
    features_a, features_b, fit_s = scaled_fold(store, blocks, fold, train, test)
    t = time.perf_counter()
    clf = seeded(clone(make_hybrid_pipeline(classifier=clf_name)["clf"]))
    # as the pipeline fits it with groups (``hybridclf train`` always has
    # them): a classifier whose fit takes them leaves a photo out with its
    # near-duplicates
    fit_classifier(clf, features_a, y[train], groups[train])
    fit_s += time.perf_counter() - t
    t = time.perf_counter()
    pred = clf.predict(features_b)
    clf_ms = (time.perf_counter() - t) * 1000 / len(test)
    extract_ms = sum(store.ms_per_image[n] for n in blocks)
    fit_s += extract_ms * len(train) / 1000
    return pred, fit_s, extract_ms + clf_ms


def pipeline_fold(blocks, clf_name, mode, images, y, groups, train, test):
    pipe = make_hybrid_pipeline(
        features=[(n, block(n)) for n in blocks], classifier=clf_name,
        sampler=ClassAwareAugmenter(random_state=0) if mode == "augment" else None,
        cascade=False,
    ).set_params(load="passthrough")
    seeded(pipe)
    for name in blocks:
        pipe.set_params(**{f"features__{name}__extract__n_jobs": 2})
    if mode == "fine_tune":
        pipe.set_params(features__cnn__extract__fine_tune_epochs=3,
                        features__cnn__extract__random_state=0)
    t = time.perf_counter()
    pipe.fit(images[train], y[train], groups=groups[train])
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    pred = pipe.predict(images[test])
    return pred, fit_s, (time.perf_counter() - t) * 1000 / len(test)


def check_exact(store, images, y, groups, folds):
    """The cached path predicts what the real default pipeline predicts."""
    fold, (train, test) = 0, folds[0]
    cached, _, _ = cached_fold(store, list(DEFAULT_FEATURES), "ridge", fold,
                               train, test, y, groups)
    pipe = make_hybrid_pipeline(cascade=False).set_params(load="passthrough")
    pipe.fit(images[train], y[train], groups=groups[train])
    real = pipe.predict(images[test])
    agree = float(np.mean(real == cached))
    print(f"cached path vs make_hybrid_pipeline(cascade=False) on fold 0: "
          f"{agree:.3f} agree",
          flush=True)
    if agree < 1.0:
        sys.exit("the cached path does not reproduce the pipeline; not measuring")
    return agree


def previous_rows(folds, files, fine_tune):
    """``--reuse-slow``: the last run's rows measured on the first repeat only.

    By label: the ``slow`` rows, and the fine-tuning row unless ``fine_tune``.
    Each gets ``reused_from`` (that run's date). Exits when that run's files
    or first five folds differ from ``folds``: its rows would not pair with
    this run's default.
    """
    if not JSON_FILE.is_file():
        sys.exit(f"--reuse-slow: {JSON_FILE} not found; run without it")
    last = json.loads(JSON_FILE.read_text())
    same = last["setup"]["files"] == files
    rows = {}
    for row in last["rows"]:
        if row["mode"] == "slow" or (row["mode"] == "fine_tune" and not fine_tune):
            same = same and all(
                fold["test"] == [int(i) for i in test]
                for fold, (_, test) in zip(row["folds"], folds, strict=True))
            rows[row["label"]] = {
                **row, "reused_from": row.get("reused_from", last["date"])}
    if not same:
        sys.exit(f"--reuse-slow: the folds of {JSON_FILE} are not this run's; "
                 "run without it")
    return rows


def slow_name(config):
    """The name of a configuration in :data:`SLOW`, or None."""
    _, _, clf_name, mode = config
    return {"slow": clf_name, "fine_tune": "fine_tune"}.get(mode)


def slow_row_name(row):
    """The name in :data:`SLOW` of a row of the report, or None."""
    return slow_name((row["label"], row["blocks"], row["classifier"], row["mode"]))


def schedule(configs, reused, rerun):
    """The configurations to measure, in order, and the rows to copy.

    ``reused`` are the last run's slow rows by label (``--reuse-slow``). The
    configurations named in ``rerun`` (``--rerun-slow``) are not copied: they
    are measured after all the others, in the order of ``rerun``.
    """
    by_name = {slow_name(c): c for c in configs if slow_name(c)}
    missing = [name for name in rerun if name not in by_name]
    if missing:
        raise ValueError(f"--rerun-slow: {missing} not among this run's rows "
                         f"{sorted(by_name)}")
    later = [by_name[name] for name in rerun]
    first = [c for c in configs if c not in later and c[0] not in reused]
    copied = {label: row for label, row in reused.items()
              if label not in {c[0] for c in later}}
    return first + later, copied


def in_order(configs, measured, fallback):
    """The rows in the order of ``configs``: measured, else the fallback copy."""
    rows = [measured.get(c[0]) or fallback.get(c[0]) for c in configs]
    return [row for row in rows if row is not None]


def notes(rows, rerun=()):
    """The lines under the table: which rows ran on fewer folds or another day.

    ``rerun``: the names given to ``--rerun-slow``; those whose rows are still
    copies had not been measured again when the section was written.
    """
    lines = [
        "Rows marked *(5 folds)*, and fine-tuning, ran on the first repeat only "
        "(5 folds): each costs minutes per fold on 2 cores. Their paired "
        "difference is against the default on the same 5 folds."]
    dates = sorted({when(r["reused_from"]) for r in rows if "reused_from" in r})
    if dates:
        lines.append(
            "Rows marked *not rerun* were copied, folds and all, from the "
            f"previous `docs/bench_accuracy.json` (run of {', '.join(dates)}; "
            "`--reuse-slow`, `--rerun-slow`): measured on the code of that "
            "date, not on this run's; their *vs default* is against this "
            "run's default on the same 5 folds, and their times, from that "
            "run, are not comparable with the other rows'.")
    pending = [r["label"] for r in rows
               if "reused_from" in r and slow_row_name(r) in rerun]
    if pending:
        lines.append(
            "When this section was written, the run had not measured again "
            f"{'; '.join(pending)} (named by `--rerun-slow`, measured one after "
            "another, the section rewritten after each; on shared CPUs the "
            "time given to the run was up): these are still the copies marked "
            "*not rerun*.")
    if not any(r["mode"] == "fine_tune" for r in rows):
        lines.append(
            "Fine-tuning is not in this run (add `--fine-tune`): on 2 cores it "
            "costs several minutes per fold.")
    return lines


def summarise(values):
    return float(np.mean(values)), float(np.std(values))


def command(setup):
    """The command line of the run that ``setup`` describes."""
    if "options" in setup:  # since --rerun-slow
        return f"{COMMAND} {setup['options']}".rstrip()
    return (f"{COMMAND}{' --fine-tune' if setup['fine_tune'] else ''}"
            f"{' --reuse-slow' if setup.get('reuse_slow') else ''}")


def when(date):
    """``2026-12-07T04:48+00:00`` as ``2026-12-07 04:48 UTC``."""
    return date[:16].replace("T", " ") + " UTC"


def render(report):
    setup, rows = report["setup"], report["rows"]
    default = rows[0]
    lines = [
        START,
        "## Accuracy (`benchmarks/bench_accuracy.py`)",
        "",
        f"- Date: {report['date']}",
        f"- Machine: {setup['machine']}",
        f"- Command: `{command(setup)}`",
        f"- Data: amulet6, {setup['n_images']} photos, 6 classes, "
        f"{setup['n_groups']} groups of photos of one amulet "
        f"({setup.get('groups', 'the inspector')}).",
        f"- Folds: StratifiedGroupKFold(5, shuffle=True) with random_state "
        f"{setup['seeds']}: {setup['n_folds']} grouped folds; mean +/- std over "
        "them. Every fold of every configuration is in `docs/bench_accuracy.json`.",
        "- Fixed blocks (HOG, LBP, colour, pretrained CNN) are computed once per "
        "image; SIFT's vocabulary, the scalers and the classifier are fitted on "
        "each training fold; the classifier gets the training photos' groups, "
        "as `hybridclf train` gives them (the ridge's leave-one-out leaves a "
        "photo out with its near-duplicates). Checked: on fold 0 this path and "
        f"`make_hybrid_pipeline(cascade=False).fit(groups=...).predict()` agree on "
        f"{setup['exact_check']:.0%} of the test photos. Augmentation and "
        "fine-tuning run the real pipeline on every fold.",
        "- *fit s*: mean per fold (about 138 training photos): block extraction "
        "(measured ms per image x photos) plus the fits; *predict ms*: per "
        "photo, features and classifier, from decoded images (decoding adds "
        "about 0.5 ms). Times taken while the benchmark ran with n_jobs=2; "
        "compare them within this table only (the machine may have been "
        "shared); the default's cost on a quiet machine is measured by "
        "`bench_train.py` and `bench_serve.py`."
        + (f" Load average at the start {setup['load_start']}, at the end "
           f"{setup['load_end']} (2 CPUs): over 2, other jobs shared the CPUs; "
           "compare the times of this run's rows only side by side, as ratios, "
           "never with another run's."
           if "load_start" in setup else ""),
        "- *vs default*: paired per-fold accuracy difference, mean +/- std, and "
        "folds won / tied / lost against the default.",
        "",
        "| configuration | accuracy | balanced accuracy | macro-F1 | fit s | "
        "predict ms | vs default | W / T / L |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        acc = np.array(row["accuracy"])
        diff = acc - np.array(default["accuracy"])[: len(acc)]
        cells = [
            row["label"] + (f" (run of {when(row['reused_from'])}, not rerun)"
                            if "reused_from" in row else ""),
            "{:.3f} +/- {:.3f}".format(*summarise(acc)),
            "{:.3f} +/- {:.3f}".format(*summarise(row["balanced_accuracy"])),
            "{:.3f} +/- {:.3f}".format(*summarise(row["f1_macro"])),
            f"{np.mean(row['fit_s']):.1f}",
            f"{np.mean(row['predict_ms']):.1f}",
            "" if row is default else "{:+.3f} +/- {:.3f}".format(*summarise(diff)),
            "" if row is default else (f"{int(np.sum(diff > 1e-9))} / "
                                       f"{int(np.sum(np.abs(diff) <= 1e-9))} / "
                                       f"{int(np.sum(diff < -1e-9))}"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", *report.get("notes", []), END]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="one repeat, a few configurations, no docs update")
    parser.add_argument("--fine-tune", action="store_true",
                        help="also fine-tune the CNN on every fold (slow)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cascade", action="store_true",
                        help="only the cascade beside the default (own section)")
    parser.add_argument("--reuse-slow", action="store_true",
                        help="copy the rows that run on the first repeat only "
                        "(the slow ensembles; fine-tuning without --fine-tune) "
                        "from the last docs/bench_accuracy.json instead of "
                        "measuring them again; the table marks them with that "
                        "run's date")
    parser.add_argument("--rerun-slow", nargs="+", choices=SLOW, metavar="NAME",
                        help="copy the slow rows as --reuse-slow does, but "
                        f"measure these again ({', '.join(SLOW)}), last and in "
                        "this order, writing the docs after each")
    parser.add_argument("--render", action="store_true",
                        help="only rewrite the section from "
                        "docs/bench_accuracy.json (after a change to its text)")
    parser.add_argument("--timing-folds", type=int, default=3,
                        help="folds on which --cascade times the real pipelines")
    args = parser.parse_args(argv)
    if args.render:
        return render_only()
    folder = find_dataset("amulet6")
    if folder is None:
        print("amulet6 not found (set HYBRIDCLF_DATA); nothing measured")
        return 0
    paths, labels = load_image_folder(folder)
    y = np.asarray(labels)
    if args.cascade:
        return cascade_main(args, folder, paths, y)
    load_start = " ".join(f"{v:.1f}" for v in os.getloadavg())
    groups, source = _common.fold_groups(folder, paths)
    images = ImageLoader(size=224, n_jobs=2).fit_transform(paths)
    seeds = list(range(1 if args.quick else args.repeats))
    folds = [split for seed in seeds for split in StratifiedGroupKFold(
        5, shuffle=True, random_state=seed).split(images, y, groups)]
    store = FeatureStore(images)
    rerun = args.rerun_slow or []
    fine_tune = args.fine_tune or "fine_tune" in rerun
    configs = configurations(fine_tune)
    files = [os.path.relpath(p, folder) for p in paths]
    # copied rows: the table shows them until (if ever) a rerun replaces them
    fallback = (previous_rows(folds[:5], files, args.fine_tune)
                if args.reuse_slow or rerun else {})
    if args.quick:
        configs = configs[:2] + configs[6:8]
    todo, copied = schedule(configs, fallback, rerun)
    setup = {"machine": None, "n_images": len(paths),
             "n_groups": len(set(groups.tolist())), "groups": source,
             # fold "test" entries index this list (relative to amulet6)
             "files": files, "seeds": seeds, "n_folds": len(folds),
             "fine_tune": fine_tune, "reuse_slow": bool(fallback),
             "options": " ".join(argv if argv is not None else sys.argv[1:]),
             "block_ms_per_image": store.ms_per_image, "load_start": load_start}
    with threadpool_limits(1, user_api="blas"):
        setup["exact_check"] = check_exact(store, images, y, groups, folds)
        measured = {}
        for label, blocks, clf_name, mode in todo:
            row = {"label": label, "blocks": blocks, "classifier": clf_name,
                   "mode": mode, "accuracy": [], "balanced_accuracy": [],
                   "f1_macro": [], "fit_s": [], "predict_ms": [], "folds": []}
            use = folds[:5] if mode in ("fine_tune", "slow") else folds
            for fold, (train, test) in enumerate(use):
                if mode in ("cached", "slow"):
                    pred, fit_s, pred_ms = cached_fold(store, blocks, clf_name, fold,
                                                       train, test, y, groups)
                else:
                    pred, fit_s, pred_ms = pipeline_fold(blocks, clf_name, mode,
                                                         images, y, groups, train,
                                                         test)
                row["accuracy"].append(accuracy_score(y[test], pred))
                row["balanced_accuracy"].append(balanced_accuracy_score(y[test], pred))
                row["f1_macro"].append(f1_score(y[test], pred, average="macro"))
                row["fit_s"].append(fit_s)
                row["predict_ms"].append(pred_ms)
                row["folds"].append({"test": [int(i) for i in test],
                                     "predicted": [str(p) for p in pred]})
            print(f"{label:60s} {np.mean(row['accuracy']):.3f} +/- "
                  f"{np.std(row['accuracy']):.3f}  fit {np.mean(row['fit_s']):.1f} s"
                  f"  predict {np.mean(row['predict_ms']):.1f} ms", flush=True)
            measured[label] = row
            if slow_name((label, blocks, clf_name, mode)) in rerun and not args.quick:
                # so that a run stopped later keeps this row
                write_report(setup, in_order(configurations(True), measured,
                                             fallback))
    rows = in_order(configurations(True), measured, copied)
    if args.quick:
        print(render(make_report(setup, rows)))
        return 0
    write_report(setup, rows)
    return 0


def make_report(setup, rows):
    """The report of the rows measured so far (and the copied ones)."""
    info = _common.machine_info()
    setup = {**setup, "machine": f"{info['nproc']} CPUs, {info['cpu_model']}; "
                                 f"scikit-learn {info['scikit-learn']}",
             "load_end": " ".join(f"{v:.1f}" for v in os.getloadavg())}
    report = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M+00:00"),
              "setup": setup, "rows": rows}
    report["notes"] = notes(rows, rerun_names(setup))
    return report


def rerun_names(setup):
    """The names given to ``--rerun-slow`` in the run that ``setup`` describes."""
    options = setup.get("options", "").split()
    if "--rerun-slow" not in options:
        return []
    names = []
    for option in options[options.index("--rerun-slow") + 1:]:
        if option.startswith("-"):
            break
        names.append(option)
    return names


def render_only():
    """``--render``: the section again from ``docs/bench_accuracy.json``."""
    report = json.loads(JSON_FILE.read_text())
    report["notes"] = notes(report["rows"], rerun_names(report["setup"]))
    _common.write_section(_common.DOCS_FILE, render(report), START, END)
    print(f"wrote {_common.DOCS_FILE} from {JSON_FILE}")
    return 0


def write_report(setup, rows):
    """``docs/bench_accuracy.json`` and this script's section of the docs."""
    report = make_report(setup, rows)
    JSON_FILE.write_text(json.dumps(report, separators=(",", ":")))
    _common.write_section(_common.DOCS_FILE, render(report), START, END)
    print(f"wrote {_common.DOCS_FILE} and {JSON_FILE}", flush=True)


def cascade_main(args, folder, paths, y):
    """``--cascade``: the cascade beside the default on the hand-checked groups."""
    import _cascade_rows

    csv = folder.parent / "amulet6_groups.csv"
    groups = read_groups_csv(csv, paths, root=folder)
    paths = np.asarray(paths, dtype=object)
    images = ImageLoader(size=224, n_jobs=2).fit_transform(paths)
    seeds = list(range(1 if args.quick else args.repeats))
    folds = [split for seed in seeds for split in StratifiedGroupKFold(
        5, shuffle=True, random_state=seed).split(images, y, groups)]
    info = _common.machine_info()
    setup = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M+00:00"),
        "machine": f"{info['nproc']} CPUs, {info['cpu_model']}",
        "load": " ".join(f"{v:.1f}" for v in os.getloadavg()),
        "n_images": len(paths), "groups": csv.name,
        "n_groups": len(set(groups.tolist())),
    }
    open_feats = None if args.quick else _open_set_features(folder)
    with threadpool_limits(1, user_api="blas"):
        # features cached on disk: a rerun (--quick --timing-folds 0) is seconds
        report = _cascade_rows.run(FeatureStore(images, cache_key="amulet6"),
                                   paths, y, groups, folds, args.timing_folds,
                                   open_feats)
    setup["load_end"] = " ".join(f"{v:.1f}" for v in os.getloadavg())
    command = f"{COMMAND} --cascade" + (" --quick" if args.quick else "")
    section = _cascade_rows.render(report, command, setup)
    print(section)
    if not args.quick:
        path = JSON_FILE.with_name("bench_accuracy_cascade.json")
        path.write_text(json.dumps({"setup": setup, **report}, indent=1))
        _common.write_section(_common.DOCS_FILE, section, _cascade_rows.START,
                              _cascade_rows.END)
        print(f"wrote {_common.DOCS_FILE} and {path}")
    return 0


def _open_set_features(folder):
    """Cached features of bench_open_set's other domains and perturbed photos."""
    import _cascade_rows
    import bench_open_set

    _, _, sets = bench_open_set.image_sets(folder)
    names = _cascade_rows.FAR_SETS + _cascade_rows.PERTURBED_SETS
    return {name: bench_open_set.features_of(name, sets[name])
            for name in names if name in sets}


if __name__ == "__main__":
    sys.exit(main())
