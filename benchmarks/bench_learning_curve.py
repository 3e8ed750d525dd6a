"""Learning curve: accuracy against photos per class, for the default and others.

For k = 3, 5, 10 and 20 photos per class, each draw trains on k photos of
every class taken from randomly chosen duplicate groups and tests on every
photo of the groups not drawn (so a near-identical copy of a training photo
is never tested); "all" is grouped 5-fold cross-validation repeated 3 times.
Every method sees the same draws, so differences are paired: the tables give
the mean accuracy +/- its standard deviation over the draws, and each
method's mean paired difference from the default +/- its standard error.

Datasets: ``amulet6`` with the hand-checked groups of ``amulet6_groups.csv``
(``../shared/data`` or ``$HYBRIDCLF_DATA``), and scikit-learn's handwritten
digits (50 per class, enlarged to 224 x 224; each image its own group), which
needs no download.

Features of the fixed blocks (HOG, LBP, colour, the pretrained CNN) are
computed once per image and view (the photo views, mirror, small
rotations, crops) and kept in
``benchmarks/results/features/`` (gitignored), so a re-run costs only the
classifier fits. Before measuring, the cached path is checked against the real
pipeline, the default ``make_hybrid_pipeline()``, on one draw.

It rewrites its section of ``docs/benchmarks.md``::

    .venv/bin/python benchmarks/bench_learning_curve.py  # ~90 min, 2 busy cores
    .venv/bin/python benchmarks/bench_learning_curve.py --quick   # smoke test
    .venv/bin/python benchmarks/bench_learning_curve.py --datasets amulet6
    .venv/bin/python benchmarks/bench_learning_curve.py --rows 4  # a few rows
    .venv/bin/python benchmarks/bench_learning_curve.py --predict-time

``--baseline DIR`` adds the row of another checkout's default pipeline, run
with its own code in its own process on the very same draws (see
``_curve_baseline.py``), and the paired differences of the default and of
"no views" from it; with ``--rows`` that row and its paired table are put
into the docs' tables beside the rows already there (refused when this run's
default or "no views" row differs from the docs', which would mean other
draws). ``--baseline-commit REV`` takes the ``hybridclf`` folder of a commit
of this repository (``git archive``), for example the code of an issue's
filing time::

    .venv/bin/python benchmarks/bench_learning_curve.py --rows \\
        --baseline-commit cf0b537 --datasets amulet6
"""

import argparse
import json
import shlex
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import _common
import numpy as np
from _curve_baseline import extract_commit, paired_lines, patch_docs, score_checkout
from _curve_data import BLOCKS, add_map_blocks, load_amulet6, load_digits_photos
from _curve_data import view_features as cached_view_features
from _curve_methods import DEFAULT_BLOCKS, run_method
from _dn4 import add_local_blocks
from sklearn.model_selection import StratifiedGroupKFold
from threadpoolctl import threadpool_limits

from hybridclf import make_hybrid_pipeline

START, END = "<!-- bench_learning_curve:start -->", "<!-- bench_learning_curve:end -->"
CHOOSING = _common.REPO_ROOT / "docs" / "choosing-features.md"
C_START, C_END = "<!-- choosing:curve:start -->", "<!-- choosing:curve:end -->"
JSON_FILE = _common.RESULTS_DIR / "learning_curve.json"
COMMAND = ".venv/bin/python benchmarks/bench_learning_curve.py"
KS = (3, 5, 10, 20, "all")
GEO = ["hflip", "rot+12", "rot-12"]  # mirror, +/-12 degrees (the old --views)
DV = ["zoom_out", "hue_turn", "darken"]  # ViewAugmenter's DEFAULT_VIEWS
OBJ = [*GEO, "blur"]  # its OBJECT_VIEWS, which --views adds

# (label, method, amulet6 only); the first is the default pipeline, the
# differences are from the second (REFERENCE), the default before issue 21
METHODS = [
    ("default: cnn, hog, lbp, color + ridge; each photo also shrunk, hue turned, "
     "darkened, blurred when the smallest class < 15 (`sampler=\"auto\"`), left "
     "out with its views in the ridge's leave-one-out",
     {"clf": "ridge", "aug": [*DV, "blur"], "aug_below": 15, "groups": True},
     False),
    ("no views (`sampler=None`, `--no-views`; the default before)",
     {"clf": "ridge"}, False),
    ("+ photo views (`--photo-views`, `sampler=\"views\"`): each photo also "
     "shrunk, hue turned, darkened when smallest class < 15",
     {"clf": "ridge", "aug": DV, "aug_below": 15}, False),
    ("+ `--views`: mirror, +/-12 deg, blur beside the photo views (< 15)",
     {"clf": "ridge", "aug": [*OBJ, *DV], "aug_below": 15}, False),
    ("photo views + blur (< 15), plain leave-one-out (a photo's views stay in)",
     {"clf": "ridge", "aug": [*DV, "blur"], "aug_below": 15}, False),
    ("mirror, +/-12 deg only (`--views` before issue 21, then < 20; here < 15)",
     {"clf": "ridge", "aug": GEO, "aug_below": 15}, False),
    ("photo views always (also from 15 photos per class on)",
     {"clf": "ridge", "aug": DV}, True),
    ("photo views + mirror TTA (2x predict cost)",
     {"clf": "ridge", "aug": DV, "aug_below": 15, "tta": ["hflip"]}, True),
    ("no views, 90/180/270 deg rotations in fit and TTA (4x predict cost)",
     {"clf": "ridge", "aug": ["rot90", "rot180", "rot270"],
      "tta": ["rot90", "rot180", "rot270"]}, True),
    ("no views, nearest class mean (cosine)", {"clf": "ncm"}, True),
    ("no views, shrinkage LDA (Ledoit-Wolf, in the training span)",
     {"clf": "lda"}, True),
    ("photo views, shrinkage LDA",
     {"clf": "lda", "aug": DV, "aug_below": 15}, True),
    ("no views, + CNN block -4 pooled on a 2x2 grid",
     {"clf": "ridge", "blocks": ("cnn", "grid2", "hog", "lbp", "color")}, True),
    ("no views, + VLAD of CNN block -4 (16 words learned per draw)",
     {"clf": "ridge", "blocks": ("cnn", "vlad", "hog", "lbp", "color")}, True),
    ("no views, CNN at 320 px (about 1.6x its cost)",
     {"clf": "ridge", "blocks": ("cnn_320", "hog", "lbp", "color")}, True),
    ("no views, signed HOG, 18 orientations",
     {"clf": "ridge", "blocks": ("cnn", "hog_signed", "lbp", "color")}, True),
    ("no views, CNN block weight (0.5 to 8) and penalty chosen by the ridge's "
     "leave-one-out error in fit", {"clf": "ridge", "weights": "loo"}, True),
    ("no views, + EfficientNet-Lite0 embedding beside Lite2's (about 1.8x the "
     "CNN cost)", {"clf": "ridge", "blocks": (*DEFAULT_BLOCKS, "cnn_lite0_gem")},
     True),
    ("no views, CNN at 260 px (Lite2's own input size; about 1.4x its cost)",
     {"clf": "ridge", "blocks": ("cnn_260", "hog", "lbp", "color")}, True),
    ("no views, signed square root of every feature before scaling",
     {"clf": "ridge", "power": True}, True),
    ("`--views` + signed square root", {"clf": "ridge", "aug": [*OBJ, *DV],
                                        "aug_below": 15, "power": True}, True),
    ("`--views` + CNN at 260 px + signed HOG",
     {"clf": "ridge", "aug": [*OBJ, *DV], "aug_below": 15,
      "blocks": ("cnn_260", "hog_signed", "lbp", "color")}, True),
    ("`--views` + CNN at 260 px + signed HOG + signed square root",
     {"clf": "ridge", "aug": [*OBJ, *DV], "aug_below": 15, "power": True,
      "blocks": ("cnn_260", "hog_signed", "lbp", "color")}, True),
]
# issue 21, second round: the default's views, one block changed at a time
DEFAULT = {"clf": "ridge", "aug": [*DV, "blur"], "aug_below": 15, "groups": True}
SIGNED = ("cnn", "hog_signed", "lbp", "color")


def _blocks(*swap):
    """The signed-HOG blocks with ``old -> new`` pairs swapped in or added."""
    blocks = list(SIGNED)
    for old, new in swap:
        if old in blocks:
            blocks[blocks.index(old)] = new
        else:
            blocks.append(new)
    return tuple(blocks)


SECOND_ROUND = len(METHODS)  # from here on, compared with the default (row 0)
METHODS += [
    ("default + signed HOG, 18 orientations", {**DEFAULT, "blocks": SIGNED}, False),
    ("default + signed HOG, cells of 8 px", {**DEFAULT, "blocks": _blocks(
        ("hog_signed", "hog_s_c8"))}, False),
    ("default + signed HOG + a second signed HOG of 32 px cells", {
        **DEFAULT, "blocks": _blocks((None, "hog_s_c32"))}, False),
    ("default + signed HOG at 192 px", {**DEFAULT, "blocks": _blocks(
        ("hog_signed", "hog_s_192"))}, False),
    ("default + signed HOG, blocks of 1 cell", {**DEFAULT, "blocks": _blocks(
        ("hog_signed", "hog_s_b1"))}, False),
    ("default + signed HOG, 12 orientations", {**DEFAULT, "blocks": _blocks(
        ("hog_signed", "hog_s_12"))}, False),
    ("default + signed HOG of the colour image", {**DEFAULT, "blocks": _blocks(
        ("hog_signed", "hog_s_color"))}, False),
    ("default + signed HOG + LBP at radii 1, 2, 3", {**DEFAULT, "blocks": _blocks(
        ("lbp", "lbp_3"))}, False),
    ("default + signed HOG + LBP non-rotation-invariant uniform", {
        **DEFAULT, "blocks": _blocks(("lbp", "lbp_nri"))}, False),
    ("default + signed HOG + Lab histogram, whole and 2x2", {
        **DEFAULT, "blocks": _blocks(("color", "color_lab_grid"))}, False),
    ("default + signed HOG + HSV histogram, whole and 2x2", {
        **DEFAULT, "blocks": _blocks(("color", "color_hsv_grid"))}, False),
    ("default + signed HOG, HOG weight 1.5", {
        **DEFAULT, "blocks": SIGNED, "weights": {
            "cnn": 1.0, "hog_signed": 1.5, "lbp": 1.0, "color": 1.0}}, False),
    ("default + signed HOG, HOG weight 0.7", {
        **DEFAULT, "blocks": SIGNED, "weights": {
            "cnn": 1.0, "hog_signed": 0.7, "lbp": 1.0, "color": 1.0}}, False),
    # the default's unsigned HOG (signed HOG loses on digits)
    ("default + CNN mirror-averaged (2x CNN cost)", {
        **DEFAULT, "blocks": ("cnn_tta", "hog", "lbp", "color")}, False),
    ("default + CNN at 260 px (1.4x CNN cost)", {
        **DEFAULT, "blocks": ("cnn_260", "hog", "lbp", "color")}, False),
    ("default + CNN average pooling", {
        **DEFAULT, "blocks": ("cnn_avg", "hog", "lbp", "color")}, False),
    ("default, its ridge's probabilities averaged with a second ridge's on "
     "HOG, LBP, colour", {**DEFAULT, "blocks": DEFAULT_BLOCKS, "late": [
         DEFAULT_BLOCKS, DEFAULT_BLOCKS[1:]]}, False),
    ("default, a ridge on the CNN and one on HOG, LBP, colour, probabilities "
     "averaged", {**DEFAULT, "blocks": DEFAULT_BLOCKS, "late": [
         DEFAULT_BLOCKS[:1], DEFAULT_BLOCKS[1:]]}, False),
    ("default + HOG 12 orientations", {
        **DEFAULT, "blocks": ("cnn", "hog_12", "lbp", "color")}, False),
    ("default + a second HOG of 32 px cells", {
        **DEFAULT, "blocks": (*DEFAULT_BLOCKS, "hog_c32")}, False),
    ("default + LBP at radii 1, 2, 3", {
        **DEFAULT, "blocks": ("cnn", "hog", "lbp_3", "color")}, False),
    ("default + HSV histogram, whole and 2x2", {
        **DEFAULT, "blocks": ("cnn", "hog", "lbp", "color_hsv_grid")}, False),
    ("default + signed HOG beside the unsigned", {
        **DEFAULT, "blocks": (*DEFAULT_BLOCKS, "hog_signed")}, False),
    ("default, HOG unsigned or signed (12 orientations), chosen by the ridge's "
     "leave-one-out error in fit", {**DEFAULT, "blocks": (
         *DEFAULT_BLOCKS, "hog_s_12"), "choose": [
         DEFAULT_BLOCKS, ("cnn", "hog_s_12", "lbp", "color")]}, False),
    ("default + signed HOG (12 orientations) + CNN mirror-averaged", {
        **DEFAULT, "blocks": ("cnn_tta", "hog_s_12", "lbp", "color")}, False),
    ("default + signed HOG (12 orientations) + CNN at 260 px", {
        **DEFAULT, "blocks": ("cnn_260", "hog_s_12", "lbp", "color")}, False),
    # issue 21, third round: the blocks chosen by the smallest class, as
    # make_hybrid_pipeline() would in fit; T = 15 fixed beforehand (the views'
    # threshold), not chosen on these draws
    ("by the smallest class: the default below 15 photos, signed HOG (12 "
     "orientations) from 15 on", {**DEFAULT, "blocks_from": (
         15, ("cnn", "hog_s_12", "lbp", "color"))}, False),
    ("by the smallest class: the default below 15 photos, signed HOG (12 "
     "orientations) + CNN mirror-averaged from 15 on", {**DEFAULT, "blocks_from": (
         15, ("cnn_tta", "hog_s_12", "lbp", "color"))}, False),
]
# issue 21, fourth round: an image-to-class measure over local CNN descriptors
# (DN4, Li et al. CVPR 2019; NBNN, Boiman et al. CVPR 2008), chosen on 5 other
# draws (benchmarks/_dn4_screen.py, seed 1): block -10 (14 x 14, 120 channels),
# 1 nearest descriptor, the default's views in the class pools below 15
DN4 = {"layer": -10, "knn": 1}
METHODS += [
    ("DN4 alone: local descriptors of CNN block -10 (14 x 14), image-to-class "
     "sum of nearest cosines, the default's views in the class pools (< 15)",
     {**DEFAULT, "dn4": DN4}, False),
    ("default, its ridge's probabilities averaged with the softmax of the "
     "standardised DN4 scores", {**DEFAULT, "dn4": {**DN4, "fuse": "avg"}}, False),
]
# issue 21, fifth round: signed HOG chosen in fit by the data, by the ridge's
# grouped leave-one-out (each photo left out with its views, at the penalty the
# default picks) with a margin; rules screened on other draws (seed 1,
# benchmarks/_loo_choice_screen.py) before these rows were measured
UNSIGNED_SIGNED = [DEFAULT_BLOCKS, ("cnn", "hog_s_12", "lbp", "color")]
METHODS += [
    ("default, signed HOG (12) instead when it answers more training photos "
     "right in the grouped leave-one-out by McNemar's z >= 1, from 15 photos "
     "per class", {**DEFAULT, "blocks": (*DEFAULT_BLOCKS, "hog_s_12"),
                   "choose_loo": {"sets": UNSIGNED_SIGNED, "rule": ("z", 1.0),
                                  "from": 15}}, False),
    ("default, signed HOG (12) instead when its grouped leave-one-out log loss "
     "is 10% lower, from 15 photos per class", {
         **DEFAULT, "blocks": (*DEFAULT_BLOCKS, "hog_s_12"), "choose_loo": {
             "sets": UNSIGNED_SIGNED, "rule": ("ll", 0.1), "from": 15}}, False),
    ("default, signed HOG (12) instead by McNemar's z >= 1 in the grouped "
     "leave-one-out, at every size", {
         **DEFAULT, "blocks": (*DEFAULT_BLOCKS, "hog_s_12"), "choose_loo": {
             "sets": UNSIGNED_SIGNED, "rule": ("z", 1.0), "from": 0}}, False),
    ("default, signed HOG (12) or signed HOG + CNN mirror-averaged instead by "
     "McNemar's z >= 1 in the grouped leave-one-out, from 15 photos per class "
     "(2x CNN cost in fit)", {
         **DEFAULT, "blocks": (*DEFAULT_BLOCKS, "hog_s_12", "cnn_tta"),
         "choose_loo": {"sets": [*UNSIGNED_SIGNED, ("cnn_tta", "hog_s_12", "lbp",
                                                    "color")],
                        "rule": ("z", 1.0), "from": 15}}, False),
]
REFERENCE = 1  # the row that the others are compared with
# (label, method): the ridge classifier's probabilities with views, its
# leave-one-out plain (a photo's views stay in) or grouped (they leave with it)
CALIBRATION = [
    ("no views", {"clf": "ridge"}),
    ("photo views + blur, plain leave-one-out", {"clf": "ridge",
                                                 "aug": [*DV, "blur"]}),
    ("photo views + blur, grouped (the default)", {"clf": "ridge",
                                                   "aug": [*DV, "blur"],
                                                   "groups": True}),
    ("photo views, plain leave-one-out", {"clf": "ridge", "aug": DV}),
    ("photo views, grouped (`fit(groups=)`)", {"clf": "ridge", "aug": DV,
                                               "groups": True}),
    ("`--views`, plain leave-one-out", {"clf": "ridge", "aug": [*OBJ, *DV]}),
    ("`--views`, grouped (`fit(groups=)`)", {"clf": "ridge", "aug": [*OBJ, *DV],
                                             "groups": True}),
]
CAL_KS = (3, 5, 10)  # the views are added below 15 photos per class
MAP_BLOCKS = ("grid2", "vlad")  # from the CNN's maps (amulet6), see add_map_blocks


def draw_split(y, groups, k, rng):
    """k training photos per class from random groups; test: the other groups."""
    train, used = [], set()
    for label in np.unique(y):
        rows = np.flatnonzero(y == label)
        taken = 0
        for group in rng.permutation(np.unique(groups[rows])):
            if taken >= k:
                break
            members = rng.permutation(rows[groups[rows] == group])[: k - taken]
            train.extend(members.tolist())
            taken += len(members)
            used.add(group)
    test = np.flatnonzero(~np.isin(groups, list(used)))
    return np.asarray(train), test


def make_splits(y, groups, n_draws, seed=0):
    splits = {}
    for k in KS:
        if k == "all":
            splits[k] = [s for r in range(3) for s in StratifiedGroupKFold(
                5, shuffle=True, random_state=seed + r).split(y, y, groups)]
        else:
            rng = np.random.default_rng([seed, k])
            splits[k] = [draw_split(y, groups, k, rng) for _ in range(n_draws)]
    return splits


def resolve(method, y_train):
    """The method as fitted on ``y_train``.

    ``aug_below`` decides the views, ``blocks_from`` (T, blocks) the blocks:
    both by the training set's smallest class.
    """
    smallest = np.unique(y_train, return_counts=True)[1].min()
    method = {k: v for k, v in method.items() if k != "blocks_from"} | (
        {"blocks": method["blocks_from"][1]}
        if "blocks_from" in method and smallest >= method["blocks_from"][0] else {})
    below = method.get("aug_below")
    if below is None:
        return method
    return {**method, "aug": method["aug"] if smallest < below else []}


def check_exact(images, features, y, split):
    """The cached path predicts what the default pipeline predicts.

    On a draw of 3 photos per class, so the default adds its views.
    """
    train, test = split
    cached = run_method(resolve(METHODS[0][1], y[train]), features, y, train, test)
    # the full model: the cached path has no cascade (which answers as the full
    # model does within 0.005, see bench_accuracy --cascade)
    pipe = make_hybrid_pipeline(cascade=False).set_params(load="passthrough")
    real = pipe.fit(images[train], y[train]).predict(images[test])
    agree = float(np.mean(real == cached))
    print(f"cached path vs the default pipeline: {agree:.3f} agree", flush=True)
    if agree < 1.0:
        sys.exit("the cached path does not reproduce the pipeline; not measuring")
    return agree


def measure(name, images, y, groups, n_draws, amulet, rows=None, paths=None,
            baseline=None):
    methods = [m for i, m in enumerate(METHODS) if (amulet or not m[2])
               and (rows is None or i in rows)]
    views = sorted({"id", *(v for _, m, _ in methods
                            for v in [*m.get("aug", ()), *m.get("tta", ())])})
    features, ms = cached_view_features(name, images, views)
    used = {b for _, m, _ in methods for b in (*m.get("blocks", ()),
                                               *m.get("blocks_from", (0, ()))[1])}
    if amulet and used & {"grid2", "vlad"}:
        add_map_blocks(features, name, images, ["id"])
    for _, m, _ in methods:  # DN4: local descriptors of the views it pools
        if "dn4" in m:
            add_local_blocks(features, name, images, ["id", *m.get("aug", ())],
                             [m["dn4"]["layer"]])
    for block in sorted(used - {*BLOCKS, *MAP_BLOCKS}):
        # for the views of the methods that use it
        wanted = sorted({"id", *(v for _, m, _ in methods
                                 if block in (*m.get("blocks", ()), *m.get(
                                     "blocks_from", (0, ()))[1])
                                 for v in [*m.get("aug", ()), *m.get("tta", ())])})
        extra, _ = cached_view_features(name, images, wanted, (block,))
        for view in wanted:
            features[view].update(extra[view])
    splits = make_splits(y, groups, n_draws)
    exact = check_exact(images, features, y, splits[3][0])
    base = None
    if baseline is not None:  # another checkout's default, on these draws
        base = {**score_checkout(baseline["dir"], y, splits, paths=paths,
                                 images=images, check=baseline["check"],
                                 end_to_end=baseline["end_to_end"]),
                "label": baseline["label"], "dir": baseline["dir"],
                "commit": baseline.get("commit")}
    rows = []
    with threadpool_limits(1, user_api="blas"):
        for label, method, _ in methods:
            acc = {str(k): [float(np.mean(run_method(resolve(method, y[tr]),
                                                     features, y, tr, te) == y[te]))
                            for tr, te in splits[k]] for k in KS}
            rows.append({"label": label, "accuracy": acc})
            print(f"{name:8s} {label[:60]:60s}",
                  " ".join(f"{np.mean(acc[str(k)]):.3f}" for k in KS), flush=True)
    n_test = {str(k): float(np.mean([len(te) for _, te in splits[k]])) for k in KS}
    with threadpool_limits(1, user_api="blas"):
        cal = calibration(features, y, splits) if amulet else None
    return {"calibration": cal,
            "name": name, "n_images": len(y), "n_classes": len(np.unique(y)),
            "n_groups": len(np.unique(groups)), "n_draws": n_draws,
            "exact_check": exact, "ms_per_image": ms, "n_test": n_test,
            "rows": rows, "baseline": base}


def calibration(features, y, splits):
    """Per method and k: accuracy, mean top probability, log loss, threshold.

    The threshold is what ``train_model`` would learn from these photos: the
    0.005 quantile of the top probability over the photos answered right.
    """
    rows = []
    for label, method in CALIBRATION:
        if any(view not in features for view in method.get("aug", ())):
            continue  # a subset of the methods (--rows): views not computed
        cells = {}
        for k in CAL_KS:
            stats = []
            for tr, te in splits[k]:
                proba = run_method(method, features, y, tr, te, proba=True)
                classes = np.unique(y[tr])
                right = classes[proba.argmax(1)] == y[te]
                truth = proba[np.arange(len(te)), np.searchsorted(classes, y[te])]
                stats.append([right.mean(), proba.max(1).mean(),
                              -np.log(np.clip(truth, 1e-12, None)).mean(),
                              np.quantile(proba.max(1)[right], 0.005)])
            cells[str(k)] = np.mean(stats, axis=0).tolist()
        rows.append({"label": label, "cells": cells})
        print(f"calibration {label[:50]:50s}", cells, flush=True)
    return rows


def calibration_table(rows):
    head = " | ".join(f"k = {k}" for k in CAL_KS)
    lines = [f"| ridge probabilities | {head} |", "| --- |" + " ---: |" * len(CAL_KS)]
    for row in rows:
        lines.append(f"| {row['label']} | " + " | ".join(
            "{:.3f} / {:.3f} / {:.2f} / {:.2f}".format(*row["cells"][str(k)])
            for k in CAL_KS) + " |")
    return lines


def table(result, reference=REFERENCE, methods=None):
    """Rows of mean +/- std, and the paired difference from the reference.

    ``methods``: the rows of METHODS shown (by default all measured), beside
    the reference.
    """
    before = next(row for row in result["rows"]
                  if row["label"] == METHODS[reference][0])
    base = before["accuracy"]
    shown = None if methods is None else {m[0] for m in methods}
    head = " | ".join(f"k = {k}" for k in KS)
    lines = [f"| method | {head} |", "| --- |" + " ---: |" * len(KS)]
    rows = list(result["rows"])
    baseline = result.get("baseline")
    if baseline and (methods is None or METHODS[0] in methods):
        rows.insert(rows.index(before) + 1, baseline)  # after the reference row
    for row in rows:
        if (shown is not None and row is not before and row is not baseline
                and row["label"] not in shown):
            continue
        cells = []
        for k in map(str, KS):
            acc = np.array(row["accuracy"][k])
            cell = f"{acc.mean():.3f} +/- {acc.std():.3f}"
            if row is not before:
                diff = acc - np.array(base[k])
                cell += (f" ({diff.mean():+.3f} +/- "
                         f"{diff.std() / np.sqrt(len(diff)):.3f})")
            cells.append(cell)
        lines.append(f"| {row['label']} | " + " | ".join(cells) + " |")
    return lines


def render_choosing(report):
    """The amulet6 curve of a few methods, for docs/choosing-features.md."""
    result = report["results"][0]
    keep = [0, 1, 2, 3, 4, 9, 11, 15, 16, 17, 18, 19, 20, 21, 22]
    short = {**result, "rows": [result["rows"][i] for i in keep
                                if i < len(result["rows"])]}
    return "\n".join([C_START, *table(short), C_END]) + "\n"


def render(report, reference=REFERENCE):
    name = METHODS[reference][0].split(" (")[0].split(":")[0]
    lines = [
        START, "## Learning curve (`benchmarks/bench_learning_curve.py`)", "",
        f"- Date: {report['date']}", f"- Machine: {report['machine']}",
        f"- Command: `{report.get('command', COMMAND)}`",
        "- Each cell: mean accuracy +/- its standard deviation over the draws; in "
        f"brackets, the mean paired difference from the row \"{name}\" "
        "+/- its standard error (a 95% interval "
        "is about twice that). k = 3 ... 20: "
        "k training photos per class from random duplicate groups, tested on "
        "every photo of the other groups; *all*: grouped 5-fold "
        "cross-validation x 3 (15 folds). Every method sees the same draws.",
        "- Features of the fixed blocks are computed once per image and view; "
        "scalers and classifiers are fitted on each draw, as the pipeline does "
        "(checked: on one draw of 3 photos per class the cached path and the "
        "default `make_hybrid_pipeline()`, views included, agree on every "
        "test photo).",
    ]
    for result in report["results"]:
        lines += ["", f"### {result['name']}: {result['n_images']} images, "
                  f"{result['n_classes']} classes, {result['n_groups']} groups, "
                  f"{result['n_draws']} draws per k", "",
                  "Mean test photos per draw: " + ", ".join(
                      f"k = {k}: {v:.0f}" for k, v in result["n_test"].items())
                  + ".", "", *table(result, reference, METHODS[:SECOND_ROUND])]
        if result.get("baseline"):
            lines += ["", *baseline_paired(result)]
        second = {m[0] for m in METHODS[SECOND_ROUND:]}
        if any(row["label"] in second for row in result["rows"]):
            lines += ["", f"{result['name']}, second round: the default's views "
                      "kept, one thing changed; in brackets, the paired difference "
                      "from the default (the first row):", "",
                      *table(result, 0, METHODS[SECOND_ROUND:])]
        if result.get("calibration"):
            lines += [
                "", f"Calibration with views ({result['name']}): each cell is the "
                "accuracy / the mean top probability / the log loss on the test "
                "photos / the confidence threshold `train_model` would learn "
                "from them (the 0.005 quantile of the top probability over the "
                "photos answered right), means over the draws. Plain "
                "leave-one-out leaves a photo's views in when it leaves the photo "
                "out; grouped leaves them out with it "
                "(`RidgeSoftmaxClassifier.fit(X, y, groups=sample_indices_)`).",
                "", *calibration_table(result["calibration"])]
    lines += ["", *report.get("notes", []), END]
    return "\n".join(lines) + "\n"


def baseline_paired(result):
    """The default and "no views" minus the baseline, paired per draw."""
    short = {0: "the default (views + blur below 15 photos per class)",
             REFERENCE: "no views (`sampler=None`, this checkout's code)"}
    rows = [(short[i], next(r["accuracy"] for r in result["rows"]
                            if r["label"] == METHODS[i][0])) for i in short]
    base = result["baseline"]
    slug = (base.get("commit") or Path(base["dir"]).name)[:7]
    return paired_lines(result, rows,
                        f"bench_learning_curve:baseline:{result['name']}:{slug}")


def put_baseline_in_docs(report, command):
    """--rows --baseline: the baseline row and its paired table into the docs."""
    for result in report["results"]:
        lines = table(result)
        row = next(line for line in lines
                   if line.startswith(f"| {result['baseline']['label']} |"))
        keep = [line for line in lines if line.startswith((
            f"| {METHODS[0][0]} |", f"| {METHODS[REFERENCE][0]} |"))]
        paired = baseline_paired(result)
        paired[1] += (f" Measured {report['date']} with `{command}`; the other "
                      "rows of the table are from the runs named above, on the "
                      "same draws (this run's default and \"no views\" rows "
                      "matched theirs to the last digit).")
        patch_docs(_common.DOCS_FILE, (START, END), result["name"], row, paired,
                   METHODS[REFERENCE][0], keep)
        if result["name"] == "amulet6" and C_START in CHOOSING.read_text(
                encoding="utf-8"):
            patch_docs(CHOOSING, (C_START, C_END), None, row, None,
                       METHODS[REFERENCE][0], keep)
    print(f"put the baseline row into {_common.DOCS_FILE} and {CHOOSING}")


def print_predict_times():
    from _curve_timing import predict_times

    amulet = load_amulet6()
    if amulet is None:
        print("amulet6 absent (set HYBRIDCLF_DATA): nothing timed")
        return 0
    times = predict_times(amulet[0], amulet[1])
    base = times["default"][0]
    for label, (mean, median) in times.items():
        print(f"{label:40s} mean {mean:6.1f} ms (x{mean / base:.2f}), "
              f"median {median:6.1f} ms")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="3 draws, amulet6 only, no docs update")
    parser.add_argument("--draws", type=int, default=20)
    parser.add_argument("--rows", type=int, nargs="*", default=None,
                        metavar="I", help="measure only these rows of METHODS "
                        "(0: the default, 1: no views, always measured; none "
                        "given: only those two); prints "
                        "the tables and writes learning_curve_rows.json, not "
                        "the docs")
    parser.add_argument("--reference", type=int, default=REFERENCE, metavar="I",
                        help="with --rows: the row the paired differences are "
                        "from (default: 1, no views; 0: the default)")
    parser.add_argument("--predict-time", action="store_true",
                        help="only time predict per photo (amulet6) for the "
                        "default and the block variants of _curve_timing")
    parser.add_argument("--datasets", nargs="+", default=["amulet6", "digits"],
                        choices=["amulet6", "digits"])
    parser.add_argument("--baseline", default=None, metavar="DIR",
                        help="also score the default make_hybrid_pipeline() of "
                        "the hybridclf in DIR (DIR/hybridclf), with its own code "
                        "in its own process, on the same draws; with --rows, its "
                        "row goes into the docs beside the rows there")
    parser.add_argument("--baseline-commit", default=None, metavar="REV",
                        help="as --baseline, with the hybridclf folder of this "
                        "repository's commit REV (git archive into a temporary "
                        "folder)")
    parser.add_argument("--baseline-label", default=None, metavar="TEXT",
                        help="the baseline's row label (default: its folder or "
                        "commit)")
    parser.add_argument("--baseline-check", type=int, default=1, metavar="N",
                        help="fit the baseline's pipeline end to end on the first "
                        "N draws of every k and require the same answers as its "
                        "features computed once per image (default 1)")
    parser.add_argument("--baseline-end-to-end", action="store_true",
                        help="fit the baseline's whole pipeline on every draw "
                        "(any pipeline: a sampler, a cascade; slow)")
    args = parser.parse_args(argv)
    if args.predict_time:
        return print_predict_times()
    with tempfile.TemporaryDirectory(prefix="curve_baseline_") as tmp:
        baseline = None
        if args.baseline_commit is not None:
            sha = extract_commit(_common.REPO_ROOT, args.baseline_commit, tmp)
            baseline = {"dir": tmp, "commit": sha,
                        "label": f"default at {sha[:7]}"}
        elif args.baseline is not None:
            baseline = {"dir": args.baseline, "label": f"default of `{args.baseline}`"}
        if baseline is not None:
            baseline["check"] = args.baseline_check
            baseline["end_to_end"] = args.baseline_end_to_end
            baseline["label"] = args.baseline_label or baseline["label"]
        return run(args, baseline, argv)


def run(args, baseline, argv):
    """Measure the datasets asked, write the results and the docs."""
    n_draws = 3 if args.quick else args.draws
    rows = None if args.rows is None else {0, REFERENCE, *args.rows}
    results = []
    amulet = load_amulet6() if "amulet6" in args.datasets else None
    if amulet is None:
        print("amulet6 not measured (absent: set HYBRIDCLF_DATA, or not asked)")
    else:
        images, y, groups, paths = amulet
        results.append(measure("amulet6", images, y, groups, n_draws, True,
                               rows, paths, baseline))
    if not args.quick and "digits" in args.datasets:
        images, y, groups, _ = load_digits_photos()
        results.append(measure("digits", images, y, groups, n_draws, False,
                               rows, None, baseline))
    info = _common.machine_info()
    report = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M+00:00"),
              "machine": f"{info['nproc']} CPUs, {info['cpu_model']}; "
                         f"scikit-learn {info['scikit-learn']}",
              "results": results,
              "command": " ".join([COMMAND, shlex.join(
                  sys.argv[1:] if argv is None else argv)]).rstrip()}
    if args.quick or rows is not None:
        print(render(report, args.reference))
        if rows is not None:
            (_common.RESULTS_DIR / "learning_curve_rows.json").write_text(
                json.dumps(report))
        if baseline is not None and not args.quick:
            put_baseline_in_docs(report, report["command"])
        return 0
    JSON_FILE.write_text(json.dumps(report))
    _common.write_section(_common.DOCS_FILE, render(report), START, END)
    if results and results[0]["name"] == "amulet6" and C_START in CHOOSING.read_text(
            encoding="utf-8"):
        _common.write_section(CHOOSING, render_choosing(report), C_START, C_END)
    print(f"wrote {_common.DOCS_FILE}, {CHOOSING} and {JSON_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
