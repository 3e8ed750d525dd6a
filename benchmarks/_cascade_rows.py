"""The cascade beside the full model: ``bench_accuracy.py --cascade``.

On every grouped fold, from the benchmark's cached per-block features: the
full model (``make_hybrid_pipeline(cascade=False)``: CNN, HOG, LBP, colour +
ridge) and the cascade (``make_hybrid_pipeline()``, the default), whose
threshold and gate are chosen inside the training part by the same grouped
out-of-fold procedure as ``CascadePipeline.fit`` (the library's
``out_of_fold_stages``, ``ood_limits`` and ``select_threshold``), with the
photos' groups in the ridges' leave-one-out and the default sampler's views
decided once on the training part (``decide_views``) and followed by the
threshold's inner folds, as there.
Checked against the real ``CascadePipeline`` on fold 0 (same predictions).
Predict time is measured on the real pipelines, photo by photo from the
files, alternating the two models so that both see the same load on the CPU.

Open set: the photos of other domains and the perturbed known photos of
``bench_open_set.py`` (features cached there) go through each fold's cheap
stage: the share it would answer early, with the gate and without it (the
same threshold), since an early answer skips the CNN's novelty check.
"""

import time

import _common
import numpy as np
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.preprocessing import StandardScaler

from hybridclf import make_hybrid_pipeline
from hybridclf.cascade import (
    CHEAP_FEATURES,
    block_columns,
    ood_limits,
    out_of_fold_stages,
    select_threshold,
)
from hybridclf.classifiers import RidgeSoftmaxClassifier
from hybridclf.pipeline import DEFAULT_FEATURES
from hybridclf.prediction import block_ood_scores
from hybridclf.view_sampling import decide_views, make_view

START = "<!-- bench_accuracy_cascade:start -->"
END = "<!-- bench_accuracy_cascade:end -->"
GATE_QUANTILE = 0.95  # CascadePipeline(ood_quantile=...)'s default (0.99 before)
#: bench_open_set's sets measured here: other domains, and perturbed photos
#: (of which each fold measures its test photos)
FAR_SETS = ["scikit-image samples", "digits (upscaled)", "generated textures",
            "somdej_fatherguay"]
PERTURBED_SETS = ["blur sigma 2", "rotated +15", "darkened x0.5"]


class _Scaled:
    """The per-block scalers of a training part, applied to any feature set."""

    def __init__(self, raw, rows):
        self.scalers = [StandardScaler().fit(raw[name][rows])
                        for name in DEFAULT_FEATURES]
        self.widths = [(name, raw[name].shape[1]) for name in DEFAULT_FEATURES]

    def __call__(self, raw, rows=slice(None)):
        return np.hstack([s.transform(raw[name][rows]) for s, name in
                          zip(self.scalers, DEFAULT_FEATURES)]).astype(np.float32)


def _raw(store, fold):
    """Every image's raw features of the default blocks (all fixed blocks)."""
    everything = np.arange(len(store.images))
    return {name: store.get(name, fold, everything, everything[:0])[0]
            for name in DEFAULT_FEATURES}


def _views(store):
    """The default sampler and each of its views' raw features of every image.

    ``make_hybrid_pipeline()``'s ``ViewAugmenter`` (``sampler="auto"``) adds
    its views to a training set whose smallest class is under its
    ``max_smallest_class``, and the threshold's inner folds follow the
    decision taken on the training part (``decide_views``).
    """
    sampler = make_hybrid_pipeline().get_params()["augment"]
    views = {}
    for view in sampler.views:
        seen = np.stack([make_view(image, view, angle=sampler.angle,
                                   crop_fraction=sampler.crop_fraction)
                         for image in store.images])
        views[view] = {name: _common.block_features(
            name, seen, cache_key=f"amulet6-view-{view}")[0]
            for name in DEFAULT_FEATURES}
    return sampler, views


def _training_rows(raw, views, rows, y, groups, decided_on):
    """The training table's raw features, labels and groups, as the sampler makes them.

    The images, then each view of all of them in turn (as
    ``ViewAugmenter.fit_resample``) when the smallest class of ``decided_on``
    (the training part, whose decision its inner folds follow) is under the
    sampler's ``max_smallest_class``; else the images alone.
    """
    sampler, view_raw = views
    small = decide_views(sampler, y[decided_on]).max_smallest_class is None
    parts = [raw] + (list(view_raw.values()) if small else [])
    table = {name: np.vstack([part[name][rows] for part in parts])
             for name in DEFAULT_FEATURES}
    return table, np.tile(y[rows], len(parts)), np.tile(groups[rows], len(parts))


def _within(scores, limits):
    return np.all(scores <= np.array(list(limits.values())), axis=1)


def cached_cascade_fold(raw, views, train, test, y, groups, gate=GATE_QUANTILE):
    """The fold's cascade, fitted as CascadePipeline.fit fits it, on cached features.

    Returns the full and cascade predictions on the test photos, the early
    mask, the statistics of ``select_threshold`` and a function giving the
    early mask (with and without the gate) of any raw feature set. ``gate``
    is ``CascadePipeline``'s ``ood_quantile``.
    """
    y_train = y[train]
    n_splits = min(5, len(np.unique(groups[train])),
                   int(np.unique(y_train, return_counts=True)[1].min()))
    inner = StratifiedGroupKFold(n_splits, shuffle=True, random_state=0).split(
        np.zeros(len(train)), y_train, groups[train])
    # the classifiers get the groups, as CascadePipeline.fit gives them: their
    # leave-one-out leaves a photo out (with its views) with its near-duplicates;
    # the sampler's views are decided on the training part, and every inner
    # fold follows the decision, as there
    tables = []
    for a, b in inner:
        table, table_y, table_groups = _training_rows(raw, views, train[a], y,
                                                      groups, train)
        scale = _Scaled(table, slice(None))
        tables.append((b, scale(table), table_y, scale(raw, train[b]),
                       table_groups))
    widths, classes = scale.widths, np.unique(y_train)
    oof = out_of_fold_stages(tables, len(train), classes, widths, CHEAP_FEATURES,
                             RidgeSoftmaxClassifier(), RidgeSoftmaxClassifier())
    limits = ood_limits(oof["cheap_ood"], list(CHEAP_FEATURES), gate)
    stats = select_threshold(y_train, oof["full_proba"], oof["cheap_proba"],
                             classes, fold=oof["fold"],
                             eligible=_within(oof["cheap_ood"], limits))
    ungated = select_threshold(y_train, oof["full_proba"], oof["cheap_proba"],
                               classes, fold=oof["fold"])
    table, table_y, table_groups = _training_rows(raw, views, train, y, groups,
                                                  train)
    scale = _Scaled(table, slice(None))
    cols = block_columns(widths, CHEAP_FEATURES)
    cheap_widths = [(n, w) for n, w in widths if n in CHEAP_FEATURES]
    train_x = scale(table)
    full = RidgeSoftmaxClassifier().fit(train_x, table_y, groups=table_groups)
    cheap = RidgeSoftmaxClassifier().fit(train_x[:, cols], table_y,
                                         groups=table_groups)

    def early_of(feats, rows=slice(None), threshold=stats["threshold"]):
        x = scale(feats, rows)[:, cols]
        sure = cheap.predict_proba(x).max(axis=1) >= threshold
        return sure & _within(block_ood_scores(x, cheap_widths), limits), sure

    test_x = scale(raw, test)
    early, _ = early_of(raw, test)
    full_pred = full.predict(test_x)
    cheap_pred = cheap.predict(test_x[:, cols])
    ungated_early = early_of(raw, test, ungated["threshold"])[1]
    return {"full": full_pred, "cascade": np.where(early, cheap_pred, full_pred),
            "ungated": np.where(ungated_early, cheap_pred, full_pred),
            "early": early, "ungated_early": ungated_early, "stats": stats,
            "early_of": early_of}


def timed_real_fold(paths, y, groups, train, test):
    """Fit the real default and cascade on a fold; time predictions per photo.

    Returns the cascade's test predictions and, per model, the milliseconds
    of each one-photo ``predict`` from its file.
    """
    full = make_hybrid_pipeline(cascade=False).fit(
        paths[train], y[train], groups=groups[train])
    cascade = make_hybrid_pipeline().fit(
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


def _open_set_fold(fold_result, open_feats, test, row):
    """Each open set's share answered early, with and without the gate."""
    for name, feats in open_feats.items():
        rows = slice(None) if name in FAR_SETS else test
        gated, sure = fold_result["early_of"](feats, rows)
        row["open"].setdefault(name, {"gate": [], "no gate": []})
        row["open"][name]["gate"].append(float(gated.mean()))
        row["open"][name]["no gate"].append(float(sure.mean()))


def run(store, paths, y, groups, folds, timing_folds, open_feats=None):
    """Every fold of the cascade comparison, as a report dict."""
    row = {"accuracy_full": [], "accuracy_cascade": [], "photos_worse": [],
           "accuracy_ungated": [], "ungated_early_share": [],
           "early_share": [], "early_accuracy": [], "threshold": [],
           "oof_early_share": [], "oof_worst_fold_loss": [], "ms_full": [],
           "ms_cascade": [], "open": {}}
    exact = None
    raw = _raw(store, 0)
    views = _views(store)
    for fold, (train, test) in enumerate(folds):
        r = cached_cascade_fold(raw, views, train, test, y, groups)
        right = {k: r[k] == y[test] for k in ("full", "cascade", "ungated")}
        row["accuracy_full"].append(float(right["full"].mean()))
        row["accuracy_cascade"].append(float(right["cascade"].mean()))
        row["accuracy_ungated"].append(float(right["ungated"].mean()))
        row["photos_worse"].append(int(right["full"].sum() - right["cascade"].sum()))
        row["early_share"].append(float(r["early"].mean()))
        row["ungated_early_share"].append(float(r["ungated_early"].mean()))
        row["early_accuracy"].append(float(right["cascade"][r["early"]].mean())
                                     if r["early"].any() else float("nan"))
        row["threshold"].append(r["stats"]["threshold"])
        row["oof_early_share"].append(r["stats"]["early_share"])
        row["oof_worst_fold_loss"].append(r["stats"]["worst_fold_loss"])
        if open_feats:
            _open_set_fold(r, open_feats, test, row)
        if fold < timing_folds:
            real, threshold, ms = timed_real_fold(paths, y, groups, train, test)
            if fold == 0:
                exact = {"agree": float(np.mean(real == r["cascade"])),
                         "threshold_real": float(threshold),
                         "threshold_cached": r["stats"]["threshold"]}
                print(f"cascade: real vs cached on fold 0: {exact}", flush=True)
            row["ms_full"] += ms["full"]
            row["ms_cascade"] += ms["cascade"]
        print(f"fold {fold}: full {row['accuracy_full'][-1]:.3f} cascade "
              f"{row['accuracy_cascade'][-1]:.3f} early {r['early'].mean():.2f}",
              flush=True)
    return {"row": row, "exact": exact}


def _diff_rows(row):
    """Table rows of the accuracy comparison."""
    full, casc = np.array(row["accuracy_full"]), np.array(row["accuracy_cascade"])
    diff, ungated = casc - full, np.array(row["accuracy_ungated"]) - full
    return [
        f"| accuracy | {full.mean():.3f} +/- {full.std():.3f} | "
        f"{casc.mean():.3f} +/- {casc.std():.3f} |",
        f"| paired difference (cascade - full) | | {diff.mean():+.4f} +/- "
        f"{diff.std():.4f} |",
        f"| folds better / same / worse | | {int(np.sum(diff > 1e-9))} / "
        f"{int(np.sum(np.abs(diff) <= 1e-9))} / {int(np.sum(diff < -1e-9))} |",
        f"| most photos lost on one fold (target <= 1) | | "
        f"{max(row['photos_worse'])} |",
        f"| share answered early (test) | | {np.mean(row['early_share']):.3f} |",
        f"| accuracy of the early answers | | "
        f"{np.nanmean(row['early_accuracy']):.3f} |",
        f"| threshold (median over folds) | | {np.median(row['threshold']):.3f} |",
        f"| out of fold in training: share early; most photos lost on one fold | | "
        f"{np.mean(row['oof_early_share']):.3f}; {max(row['oof_worst_fold_loss'])} |",
        f"| without the gate: paired difference; share early | | "
        f"{ungated.mean():+.4f}; {np.mean(row['ungated_early_share']):.3f} |",
    ]


def _time_rows(row):
    ms_f, ms_c = np.array(row["ms_full"]), np.array(row["ms_cascade"])
    if not len(ms_f):
        return []
    return [
        f"| predict ms per photo, mean ({len(ms_f)} photos, one at a time "
        f"from the file) | {ms_f.mean():.1f} | {ms_c.mean():.1f} "
        f"(x{ms_c.mean() / ms_f.mean():.2f}) |",
        f"| predict ms per photo, p50 | {np.median(ms_f):.1f} | "
        f"{np.median(ms_c):.1f} (x{np.median(ms_c) / np.median(ms_f):.2f}) |",
    ]


def _open_rows(row):
    if not row["open"]:
        return []
    lines = ["", "Open set: share of each set that the cascade of each fold would "
             "answer early, so without the CNN's novelty check (mean over the "
             "folds; the same threshold with and without the gate): the "
             "photos of other domains of `bench_open_set.py`, which should "
             "never be answered early, and each fold's test photos perturbed "
             "as there (for reference: unperturbed, "
             f"{np.mean(row['early_share']):.1%} with the gate).", "",
             "| set | early, with the gate | early, without it |",
             "| --- | ---: | ---: |"]
    for name, shares in row["open"].items():
        lines.append(f"| {name} | {np.mean(shares['gate']):.1%} | "
                     f"{np.mean(shares['no gate']):.1%} |")
    return lines


def render(report, command, setup):
    row, exact = report["row"], report["exact"]
    lines = [
        START,
        "## Cascade (`benchmarks/bench_accuracy.py --cascade`)",
        "",
        f"- Date: {setup['date']}; machine: {setup['machine']}; load average "
        f"at the start {setup['load']}"
        + (f", at the end {setup['load_end']}" if "load_end" in setup else "")
        + ": **the CPUs were shared with other jobs**, so compare the two "
        "models' times only as a ratio.",
        f"- Command: `{command}`",
        f"- Data: amulet6, {setup['n_images']} photos; groups from "
        f"`{setup['groups']}` ({setup['n_groups']} groups); "
        f"{len(row['accuracy_full'])} folds: StratifiedGroupKFold(5, "
        "shuffle=True), random_state 0, 1, 2. Both models on the same folds.",
        "- Cascade: `make_hybrid_pipeline()` (the default; *full*: "
        "`cascade=False`): a ridge (softmax "
        "calibrated by a temperature) on the HOG, LBP and colour blocks answers "
        "when its top probability reaches the threshold and each of the three "
        f"blocks' OOD score is within the {GATE_QUANTILE} quantile of its "
        "out-of-fold scores "
        "(the gate). The threshold is chosen on each training part from grouped "
        "5-fold out-of-fold predictions: the highest of (1) the lowest at which "
        "the photos lost against the full model stay within 0.005 of the "
        "photos, (2) the lowest at which no out-of-fold fold loses more than "
        "one photo, (3) the cheap stage's out-of-fold accuracy (a confidence "
        "floor; see `select_threshold`). As `hybridclf train` fits them, both "
        "models' ridges get the training photos' groups (their leave-one-out "
        "leaves a photo out with its near-duplicates), and the default "
        "sampler's views (`sampler=\"auto\"`) are added when the training "
        "part's smallest class is under 15 photos, a decision the threshold's "
        "inner folds follow (`decide_views`). Accuracy from the cached block "
        "features"
        + (f"; checked on fold 0 against the real `CascadePipeline`: "
           f"{exact['agree']:.0%} same predictions, threshold "
           f"{exact['threshold_real']:.3f} (real) vs "
           f"{exact['threshold_cached']:.3f} (cached)." if exact else "."),
        "",
        "| | full (`cascade=False`) | cascade (default) |",
        "| --- | ---: | ---: |",
        *_diff_rows(row),
        *_time_rows(row),
        "",
        "Per fold (cascade - full, in photos; share early): " + ", ".join(
            f"{-w:+d} ({s:.2f})" for w, s in
            zip(row["photos_worse"], row["early_share"])) + ".",
        *_open_rows(row),
        END,
    ]
    return "\n".join(lines) + "\n"
