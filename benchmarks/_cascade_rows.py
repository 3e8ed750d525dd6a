"""The cascade beside the full default: ``bench_accuracy.py --cascade``.

On every grouped fold, from the benchmark's cached per-block features: the
full default (CNN, HOG, LBP, colour + ridge) and ``make_hybrid_pipeline(
cascade=True)``, whose threshold is chosen inside the training part by the
same grouped out-of-fold procedure as ``CascadePipeline.fit``. Checked
against the real ``CascadePipeline`` on fold 0 (same predictions). Predict
time is measured on the real pipelines, photo by photo from the files,
alternating the two models so that both see the same load on the CPU.
"""

import time

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.preprocessing import StandardScaler

from hybridclf import make_hybrid_pipeline
from hybridclf.cascade import (
    CHEAP_FEATURES,
    block_columns,
    out_of_fold_stages,
    select_threshold,
)
from hybridclf.classifiers import RidgeSoftmaxClassifier
from hybridclf.pipeline import DEFAULT_FEATURES

START = "<!-- bench_accuracy_cascade:start -->"
END = "<!-- bench_accuracy_cascade:end -->"


def _tables(store, fold, rows_a, rows_b):
    """Scaled (a, b) tables of the default blocks and their (name, width)."""
    parts_a, parts_b, widths = [], [], []
    for name in DEFAULT_FEATURES:
        a, b, _ = store.get(name, fold, rows_a, rows_b)
        scaler = StandardScaler().fit(a)
        parts_a.append(scaler.transform(a).astype(np.float32))
        parts_b.append(scaler.transform(b).astype(np.float32))
        widths.append((name, a.shape[1]))
    return np.hstack(parts_a), np.hstack(parts_b), widths


def cached_cascade_fold(store, fold, train, test, y, groups):
    """(full predictions, cascade predictions, early mask, threshold) of a fold."""
    y_train = y[train]
    n_splits = min(5, len(np.unique(groups[train])),
                   int(np.unique(y_train, return_counts=True)[1].min()))
    inner = StratifiedGroupKFold(n_splits, shuffle=True, random_state=0).split(
        np.zeros(len(train)), y_train, groups[train])
    tables = []
    for a, b in inner:
        tx, vx, widths = _tables(store, fold, train[a], train[b])
        tables.append((b, tx, y_train[a], vx))
    cheap_cols = block_columns(widths, CHEAP_FEATURES)
    classes = np.unique(y_train)
    full_oof, cheap_oof = out_of_fold_stages(
        tables, len(train), classes, cheap_cols, RidgeSoftmaxClassifier(),
        RidgeSoftmaxClassifier())
    stats = select_threshold(y_train, full_oof, cheap_oof, classes)
    train_x, test_x, _ = _tables(store, fold, train, test)
    full = RidgeSoftmaxClassifier().fit(train_x, y_train)
    cheap = RidgeSoftmaxClassifier().fit(train_x[:, cheap_cols], y_train)
    cheap_proba = cheap.predict_proba(test_x[:, cheap_cols])
    early = cheap_proba.max(axis=1) >= stats["threshold"]
    full_pred = full.predict(test_x)
    pred = np.where(early, cheap.classes_[cheap_proba.argmax(axis=1)], full_pred)
    return full_pred, pred, early, stats


def timed_real_fold(paths, y, groups, train, test):
    """Fit the real default and cascade on a fold; time predictions per photo.

    Returns the cascade's test predictions and, per model, the milliseconds
    of each one-photo ``predict`` from its file.
    """
    full = make_hybrid_pipeline().fit(paths[train], y[train])
    cascade = make_hybrid_pipeline(cascade=True).fit(
        paths[train], y[train], groups=groups[train])
    for model in (full, cascade):  # warm-up: ONNX Runtime session, caches
        model.predict(paths[test[:2]])
    ms = {"full": [], "cascade": []}
    for i in test:
        for name, model in (("full", full), ("cascade", cascade)):
            t = time.perf_counter()
            model.predict(paths[[i]])
            ms[name].append((time.perf_counter() - t) * 1000)
    return cascade.predict(paths[test]), cascade.threshold_, ms


def run(store, paths, y, groups, folds, timing_folds):
    """Every fold of the cascade comparison, as a report dict."""
    row = {"accuracy_full": [], "accuracy_cascade": [], "photos_worse": [],
           "early_share": [], "early_accuracy": [], "threshold": [],
           "oof_early_share": [], "ms_full": [], "ms_cascade": []}
    exact = None
    for fold, (train, test) in enumerate(folds):
        full_pred, pred, early, stats = cached_cascade_fold(
            store, fold, train, test, y, groups)
        row["accuracy_full"].append(float(np.mean(full_pred == y[test])))
        row["accuracy_cascade"].append(float(np.mean(pred == y[test])))
        row["photos_worse"].append(int(np.sum(full_pred == y[test])
                                       - np.sum(pred == y[test])))
        row["early_share"].append(float(early.mean()))
        row["early_accuracy"].append(float(np.mean(pred[early] == y[test][early]))
                                     if early.any() else float("nan"))
        row["threshold"].append(stats["threshold"])
        row["oof_early_share"].append(stats["early_share"])
        if fold < timing_folds:
            real, threshold, ms = timed_real_fold(paths, y, groups, train, test)
            if fold == 0:
                exact = {"agree": float(np.mean(real == pred)),
                         "threshold_real": float(threshold),
                         "threshold_cached": stats["threshold"]}
                print(f"cascade: real vs cached on fold 0: {exact}", flush=True)
            row["ms_full"] += ms["full"]
            row["ms_cascade"] += ms["cascade"]
        print(f"fold {fold}: full {row['accuracy_full'][-1]:.3f} cascade "
              f"{row['accuracy_cascade'][-1]:.3f} early {early.mean():.2f}",
              flush=True)
    return {"row": row, "exact": exact}


def render(report, command, setup):
    row, exact = report["row"], report["exact"]
    full, casc = np.array(row["accuracy_full"]), np.array(row["accuracy_cascade"])
    diff = casc - full
    ms_f, ms_c = np.array(row["ms_full"]), np.array(row["ms_cascade"])
    lines = [
        START,
        "## Cascade (`benchmarks/bench_accuracy.py --cascade`)",
        "",
        f"- Date: {setup['date']}; machine: {setup['machine']}; load average "
        f"at the start {setup['load']}: **the CPUs were shared with other "
        "jobs**, so compare the two models' times only as a ratio.",
        f"- Command: `{command}`",
        f"- Data: amulet6, {setup['n_images']} photos; groups from "
        f"`{setup['groups']}` ({setup['n_groups']} groups); "
        f"{len(full)} folds: StratifiedGroupKFold(5, shuffle=True), random_state "
        "0, 1, 2. Both models on the same folds.",
        "- Cascade: `make_hybrid_pipeline(cascade=True)`: a ridge (softmax "
        "calibrated by a temperature) on the HOG, LBP and colour blocks answers "
        "when its top probability reaches the threshold; the threshold is "
        "chosen on each training part by grouped 5-fold out-of-fold "
        "predictions (tolerance 0.005). Accuracy from the cached block features;"
        f" checked on fold 0 against the real `CascadePipeline`: "
        f"{exact['agree']:.0%} same predictions, threshold "
        f"{exact['threshold_real']:.3f} (real) vs "
        f"{exact['threshold_cached']:.3f} (cached)." if exact else "",
        "",
        "| | full default | cascade |",
        "| --- | ---: | ---: |",
        f"| accuracy | {full.mean():.3f} +/- {full.std():.3f} | "
        f"{casc.mean():.3f} +/- {casc.std():.3f} |",
        f"| paired difference (cascade - full) | | {diff.mean():+.4f} +/- "
        f"{diff.std():.4f} |",
        f"| folds better / same / worse | | {int(np.sum(diff > 1e-9))} / "
        f"{int(np.sum(np.abs(diff) <= 1e-9))} / {int(np.sum(diff < -1e-9))} |",
        f"| most photos lost on one fold | | {max(row['photos_worse'])} |",
        f"| share answered early (test) | | {np.mean(row['early_share']):.3f} |",
        f"| accuracy of the early answers | | "
        f"{np.nanmean(row['early_accuracy']):.3f} |",
        f"| threshold (median over folds) | | {np.median(row['threshold']):.3f} |",
    ]
    if len(ms_f):
        lines += [
            f"| predict ms per photo, mean ({len(ms_f)} photos, one at a time "
            f"from the file) | {ms_f.mean():.1f} | {ms_c.mean():.1f} "
            f"(x{ms_c.mean() / ms_f.mean():.2f}) |",
            f"| predict ms per photo, p50 | {np.median(ms_f):.1f} | "
            f"{np.median(ms_c):.1f} (x{np.median(ms_c) / np.median(ms_f):.2f}) |",
        ]
    lines += [
        "",
        "Per fold (cascade - full, in photos; share early): " + ", ".join(
            f"{-w:+d} ({s:.2f})" for w, s in
            zip(row["photos_worse"], row["early_share"])) + ".",
        END,
    ]
    return "\n".join(line for line in lines if line is not None) + "\n"
