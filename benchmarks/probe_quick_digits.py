"""How often the guide's ``--quick`` digits model answers a held-out digit "unknown".

The getting-started guide (``docs/guide.md``) writes scikit-learn's digits as
a class-per-folder dataset (12 per class, other ones held out), inspects it,
trains ``hybridclf train --quick`` (HOG and colour, no CNN) and predicts the
held-out digits. A model without a CNN block has no novelty index: it answers
"unlike any training photo" when a feature block's out-of-distribution score
(the mean squared standardised feature, :func:`hybridclf.prediction.
block_ood_scores`) is over the 0.995 quantile of its out-of-fold scores. This
runs those steps for a few seeds of the digits (10 held out per class), with
the guide's blocks and with HOG alone, and prints per seed: the held-out
digits answered "unlike any training photo" (and how many of them the
classifier got right), those answered "low confidence", the closed-set
accuracy, which block was over its threshold, and how many of each block's
columns vary at all over the training photos. It writes nothing under
``docs/``; run it from the repository root (about 2 minutes on 2 cores)::

    .venv/bin/python benchmarks/probe_quick_digits.py
    .venv/bin/python benchmarks/probe_quick_digits.py --seeds 0 1 --features hog color
"""

import argparse
import contextlib
import csv
import io
import json
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from hybridclf import load_model  # noqa: E402
from hybridclf.cli import main  # noqa: E402
from hybridclf.pipeline import iter_feature_blocks  # noqa: E402
from hybridclf.prediction import NOVEL, block_ood_scores  # noqa: E402
from hybridclf.prediction._features import (  # noqa: E402
    feature_blocks,
    transform_features,
)
from hybridclf.sample_data import write_digits_folder  # noqa: E402


def run_seed(folder, seed, features, n_per_class, n_holdout):
    """The guide's steps 1 to 5 on one draw of the digits; one result row."""
    data, held_out = os.path.join(folder, "my_photos"), os.path.join(folder, "held_out")
    write_digits_folder(data, n_per_class=n_per_class, holdout_root=held_out,
                        n_holdout=n_holdout, random_state=seed)
    inspection, model_dir = (os.path.join(folder, name)
                             for name in ("inspection", "model"))
    output = os.path.join(folder, "predictions.csv")
    quiet = ["--n-jobs", "2"]
    for argv in (
        ["inspect", "--data-dir", data, "--test-data-dir", held_out,
         "--output-dir", inspection, "--quick", *quiet],
        ["train", "--data-dir", data, "--output-dir", model_dir, "--groups",
         os.path.join(inspection, "duplicate_groups.csv"), "--quick",
         "--features", *features, *quiet],
        ["predict", "--model-dir", model_dir, held_out, "--output", output],
    ):
        with contextlib.redirect_stdout(io.StringIO()):
            code = main(argv)
        if code != 0:
            raise SystemExit(f"hybridclf {argv[0]} failed")
    with open(output, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    truth = np.array([os.path.basename(os.path.dirname(r["file"])) for r in rows])
    top = np.array([r["top"].split(":")[0] for r in rows])
    novel = np.array([r["unknown_reason"] == NOVEL for r in rows])
    low = np.array([r["unknown_reason"] == "low confidence" for r in rows])
    with open(os.path.join(model_dir, "model.json"), encoding="utf-8") as fh:
        thresholds = json.load(fh)["open_set"]["ood_thresholds"]
    model = load_model(model_dir)
    blocks = feature_blocks(model)
    scores = block_ood_scores(transform_features(model, [r["file"] for r in rows]),
                              blocks)
    over = {name: int((scores[:, b] > thresholds[name]).sum())
            for b, (name, _) in enumerate(blocks)}
    # the columns of each block that vary at all over the training photos
    varying = {name: f"{int((block.named_steps['scale'].var_ > 0).sum())} of "
               f"{len(block.named_steps['scale'].var_)}"
               for name, block in iter_feature_blocks(model)}
    return {"seed": seed, "n": len(rows), "novel": int(novel.sum()),
            "novel_right": int((novel & (truth == top)).sum()),
            "low": int(low.sum()), "accuracy": float(np.mean(truth == top)),
            "over": over, "varying": varying}


def main_(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--features", nargs="+", default=None,
                        help="one set of blocks (default: 'hog color', then 'hog')")
    parser.add_argument("--n-per-class", type=int, default=12)
    parser.add_argument("--n-holdout", type=int, default=10)
    args = parser.parse_args(argv)
    sets = [args.features] if args.features else [["hog", "color"], ["hog"]]
    for features in sets:
        print(f"\n--quick --features {' '.join(features)}: held-out digits "
              f"({args.n_per_class} per class trained on, {args.n_holdout} per "
              "class held out)")
        print("seed  n    unlike-any (class right)  low-conf  accuracy  over by block"
              "  columns that vary in training")
        totals, accuracy = np.zeros(3, dtype=int), []
        for seed in args.seeds:
            with tempfile.TemporaryDirectory() as folder:
                r = run_seed(folder, seed, features, args.n_per_class, args.n_holdout)
            totals += (r["n"], r["novel"], r["novel_right"])
            accuracy.append(r["accuracy"])
            print(f"{r['seed']:<5} {r['n']:<4} {r['novel']:>3} ({r['novel_right']})"
                  f"{'':17} {r['low']:>3}       {r['accuracy']:.3f}     "
                  f"{r['over']}  {r['varying']}")
        print(f"all   {totals[0]:<4} {totals[1]:>3} ({totals[2]}){'':27}"
              f"{np.mean(accuracy):.3f}")


if __name__ == "__main__":
    main_()
