"""Blocks chosen by the smallest class, through the real cascade (issue 21).

The rule measured: today's default below ``T`` photos in the training set's
smallest class, and from ``T`` on the default with signed HOG (12
orientations), optionally with the CNN averaged over the photo and its
mirror (``CNNFeatures(flip_tta=True)``). ``T`` = 15 is fixed beforehand: it is
the threshold at which the default's views stop (``AUTO_VIEWS``), not chosen
on these folds.

On the 15 grouped folds of amulet6 (5-fold x 3, ``amulet6_groups.csv``, the
folds of ``bench_accuracy.py --cascade`` and of the learning curve's *all*),
``make_hybrid_pipeline()`` as a user gets it (a cascade, fitted with
``groups=``) and the rule are fitted on every fold from the photo files and
compared paired per fold: accuracy, the share of test photos answered early
(without the CNN), fit seconds and the milliseconds of each one-photo
``predict`` from its file, every model in turn on each photo (ratios; the
machine is shared). Run from the repository root::

    nice -n 19 .venv/bin/python benchmarks/_by_k_real.py [--folds N]
"""

import argparse
import json
import os
import sys
import time

import _common
import numpy as np
from _common import shared_data_dir
from sklearn.model_selection import StratifiedGroupKFold

from hybridclf import load_image_folder, make_hybrid_pipeline
from hybridclf.training import read_groups_csv

T = 15  # the views' threshold (AUTO_VIEWS), fixed beforehand
SIGNED = {"features__hog__extract__signed_gradient": True,
          "features__hog__extract__orientations": 12}
RULES = {
    "default": {},
    "signed HOG (12) from 15": SIGNED,
    "signed HOG (12) + CNN mirror-averaged from 15": {
        **SIGNED, "features__cnn__extract__flip_tta": True},
}


def build(params, y_train):
    """The pipeline the rule gives for this training set."""
    pipe = make_hybrid_pipeline()
    smallest = np.unique(y_train, return_counts=True)[1].min()
    return pipe.set_params(**params) if smallest >= T else pipe


def fold(paths, y, groups, train, test):
    """Accuracy, early share, fit s and per-photo predict ms of each rule."""
    models, out = {}, {}
    for name, params in RULES.items():
        start = time.perf_counter()
        models[name] = build(params, y[train]).fit(
            paths[train], y[train], groups=groups[train])
        out[name] = {"fit_s": time.perf_counter() - start}
    for name, model in models.items():
        _, proba, early = model.predict_stages(paths[test])
        pred = model.classes_[proba.argmax(1)]
        out[name].update(accuracy=float(np.mean(pred == y[test])),
                         early=float(early.mean()), ms=[],
                         wrong=[int(i) for i in test[pred != y[test]]])
        model.predict(paths[test[:2]])  # warm-up
    for i in test:
        for name, model in models.items():
            start = time.perf_counter()
            model.predict(paths[[i]])
            out[name]["ms"].append((time.perf_counter() - start) * 1000)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=15)
    args = parser.parse_args(argv)
    folder = _common.find_dataset("amulet6")
    if folder is None:
        print("amulet6 not found (set HYBRIDCLF_DATA); nothing measured")
        return 0
    paths, labels = load_image_folder(folder)
    y = np.asarray(labels)
    groups = np.asarray(read_groups_csv(shared_data_dir() / "amulet6_groups.csv",
                                        paths, root=folder))
    paths = np.asarray(paths, dtype=object)
    folds = [s for seed in range(3) for s in StratifiedGroupKFold(
        5, shuffle=True, random_state=seed).split(y, y, groups)][: args.folds]
    load = " ".join(f"{v:.1f}" for v in os.getloadavg())
    results = []
    for i, (train, test) in enumerate(folds):
        smallest = int(np.unique(y[train], return_counts=True)[1].min())
        r = fold(paths, y, groups, train, test)
        results.append({"smallest": smallest, "n_test": len(test), **r})
        print(f"fold {i:2d} smallest {smallest} " + "  ".join(
            f"{n[:12]}: {v['accuracy']:.3f} early {v['early']:.2f} fit "
            f"{v['fit_s']:.1f} s ms {np.mean(v['ms']):.1f}" for n, v in r.items()),
            flush=True)
    load += " -> " + " ".join(f"{v:.1f}" for v in os.getloadavg())
    summarise(results, load)
    path = _common.RESULTS_DIR / "by_k_real.json"
    path.write_text(json.dumps({"load": load, "folds": results}))
    print(f"wrote {path}")
    return 0


def summarise(results, load):
    base = np.array([r["default"]["accuracy"] for r in results])
    base_ms = np.concatenate([r["default"]["ms"] for r in results])
    print(f"load average (start -> end): {load}")
    for name in RULES:
        acc = np.array([r[name]["accuracy"] for r in results])
        diff = acc - base
        photos = [round(d * r["n_test"]) for d, r in zip(diff, results)]
        ms = np.concatenate([r[name]["ms"] for r in results])
        print(f"{name}: accuracy {acc.mean():.3f} +/- {acc.std():.3f}; vs default "
              f"{diff.mean():+.4f} +/- {diff.std() / np.sqrt(len(diff)):.4f} (se), "
              f"W/T/L {np.sum(diff > 1e-9)}/{np.sum(np.abs(diff) <= 1e-9)}/"
              f"{np.sum(diff < -1e-9)}, photos per fold {photos}; early "
              f"{np.mean([r[name]['early'] for r in results]):.3f}; fit "
              f"{np.mean([r[name]['fit_s'] for r in results]):.1f} s; predict ms "
              f"mean {ms.mean():.1f} (x{ms.mean() / base_ms.mean():.2f}), p50 "
              f"{np.median(ms):.1f} (x{np.median(ms) / np.median(base_ms):.2f})")


if __name__ == "__main__":
    sys.exit(main())
