"""Screen rules that choose the HOG block in fit by grouped leave-one-out (issue 21).

For each draw, every candidate block set (the default; signed HOG with 12
orientations; signed HOG with the CNN mirror-averaged) is fitted as the
default is (its views below 15 photos per class, each photo left out with
its views), scored on the test photos, and its grouped leave-one-out stats on
the training photos are kept (``_loo_choice.loo_stats``). The rules of
``RULES`` are then played on those records: each picks a candidate per draw
from the leave-one-out stats alone, and its paired difference from the
default on the test photos is printed.

The draws come from ``make_splits(..., seed=1)``, not the seed 0 of the
learning curve's tables, so choosing a rule here does not tune it to the
draws it is then measured on. Uses the feature cache of
``bench_learning_curve.py`` (run its rows 53 to 56 first). From
``benchmarks/``::

    nice -n 19 ../.venv/bin/python _loo_choice_screen.py --draws 10
    nice -n 19 ../.venv/bin/python _loo_choice_screen.py --picks --seed 0 --draws 20
"""

import argparse
import json
import sys

import numpy as np
from _common import RESULTS_DIR
from _curve_data import load_amulet6, load_digits_photos
from _curve_data import view_features as cached_view_features
from _curve_methods import _tables, run_method
from _loo_choice import choose, choose_blocks, loo_stats
from bench_learning_curve import DEFAULT, DV, KS, METHODS, make_splits, resolve
from threadpoolctl import threadpool_limits

VIEWS = ["id", *DV, "blur"]
CANDIDATES = {
    "default": ("cnn", "hog", "lbp", "color"),
    "signed": ("cnn", "hog_s_12", "lbp", "color"),
    "signed+tta": ("cnn_tta", "hog_s_12", "lbp", "color"),
}
RULES = [("sq", 0.0), ("z", 0.0), ("z", 0.5), ("z", 1.0), ("z", 1.5), ("z", 2.0),
         ("ll", 0.0), ("ll", 0.02), ("ll", 0.05), ("ll", 0.1), ("both", 0.5),
         ("both", 1.0), ("both", 1.5)]
SETS = [("default", "signed"), ("default", "signed", "signed+tta")]
GATES = (0, 15)


def records(name, images, y, groups, n_draws, seed):
    blocks = sorted({b for c in CANDIDATES.values() for b in c})
    features, _ = cached_view_features(name, images, VIEWS, blocks)
    splits = make_splits(y, groups, n_draws, seed=seed)
    out = {}
    with threadpool_limits(1, user_api="blas"):
        for k in KS:
            out[str(k)] = []
            for tr, te in splits[k]:
                method = resolve(DEFAULT, y[tr])
                aug = ["id", *method.get("aug", ())]
                smallest = int(np.unique(y[tr], return_counts=True)[1].min())
                row = {"smallest": smallest}
                for cand, cblocks in CANDIDATES.items():
                    pred = run_method({**method, "blocks": cblocks}, features, y,
                                      tr, te)
                    train_x, _ = _tables(features, cblocks, tr, te, aug, ["id"],
                                         None)
                    row[cand] = {"acc": float(np.mean(pred == y[te]))}
                    for key, pg in (("photo", None), ("dup", groups[tr])):
                        stats = loo_stats(np.vstack(train_x), y[tr], len(aug), pg)
                        row[cand][key] = {"right": stats["right"].tolist(),
                                          "log_loss": stats["log_loss"],
                                          "sq": stats["sq"]}
                out[str(k)].append(row)
            print(name, k, "done", flush=True)
    return out


def play(recs, key):
    """Paired difference from the default of each rule, one line per rule.

    ``key``: "photo" (each photo left out with its views) or "dup" (with its
    duplicate group). Each cell: mean paired difference in points (draws won
    / tied / lost; draws where a challenger was picked). The "always" lines:
    the challenger on every draw, its leave-one-out accuracy difference, the
    correlation over draws of that with the test difference, and the training
    photos the two answer differently in the leave-one-out (mean per draw).
    """
    lines = ["k: " + " | ".join(recs)]
    for cand in ("signed", "signed+tta"):
        cells = []
        for draws in recs.values():
            d = np.array([r[cand]["acc"] - r["default"]["acc"] for r in draws])
            lo = np.array([np.mean(r[cand][key]["right"])
                           - np.mean(r["default"][key]["right"]) for r in draws])
            corr = np.corrcoef(d, lo)[0, 1] if d.std() and lo.std() else np.nan
            # training photos right by one candidate and wrong by the other
            apart = np.mean([np.sum(np.array(r[cand][key]["right"])
                                    != np.array(r["default"][key]["right"]))
                             for r in draws])
            se = 100 * d.std() / np.sqrt(len(d))
            cells.append(f"{100 * d.mean():+.1f}+/-{se:.1f} loo "
                         f"{100 * lo.mean():+.1f} r {corr:+.2f} apart {apart:.1f}")
        lines.append(f"always {cand:24s} " + " | ".join(cells))
    for sets in SETS:
        for gate in GATES:
            for rule in RULES:
                cells = []
                for draws in recs.values():
                    diffs, picked = [], 0
                    for r in draws:
                        stats = [{**r[c][key], "right": np.array(
                            r[c][key]["right"])} for c in sets]
                        pick = (sets[0] if r["smallest"] < gate
                                else choose(sets, stats, rule))
                        picked += pick != "default"
                        diffs.append(r[pick]["acc"] - r["default"]["acc"])
                    d = np.array(diffs)
                    won, lost = int(np.sum(d > 1e-9)), int(np.sum(d < -1e-9))
                    cells.append(f"{100 * d.mean():+.1f} ({won}/{len(d) - won - lost}"
                                 f"/{lost}; {picked})")
                name = "+".join(s[:6] if s == "signed" else "tta" for s in sets[1:])
                lines.append(f"{name:10s} >={gate:2d} {rule[0]:4s} {rule[1]:4.2f}  "
                             + " | ".join(cells))
    return lines


def picks(name, images, y, groups, n_draws, seed, rows=(53, 54, 55, 56)):
    """How often each ``choose_loo`` row of METHODS picks each block set, per k.

    With ``--seed 0 --draws 20``: the draws of the learning curve's tables.
    """
    blocks = sorted({b for c in CANDIDATES.values() for b in c})
    features, _ = cached_view_features(name, images, VIEWS, blocks)
    splits = make_splits(y, groups, n_draws, seed=seed)
    with threadpool_limits(1, user_api="blas"):
        for i in rows:
            sets = [tuple(b) for b in METHODS[i][1]["choose_loo"]["sets"]]
            cells = []
            for k in KS:
                chosen = [choose_blocks(resolve(METHODS[i][1], y[tr]), features,
                                        y, tr, te) for tr, te in splits[k]]
                cells.append(f"k={k}: " + ", ".join(
                    str(sum(c == s for c in chosen)) for s in sets))
            print(f"{name} row {i} picks (default, challengers): "
                  + " | ".join(cells), flush=True)


def paired_counts(rows=(49, 53, 54, 55, 56)):
    """Draws won / tied / lost against the default, from the last ``--rows`` run.

    Reads ``results/learning_curve_rows.json`` (``bench_learning_curve.py
    --rows ...`` writes it) and prints, for these rows of METHODS, the mean
    paired difference from the default +/- its standard error and the counts.
    """
    path = RESULTS_DIR / "learning_curve_rows.json"
    if not path.exists():
        return
    report = json.loads(path.read_text())
    for result in report["results"]:
        accuracy = {row["label"]: row["accuracy"] for row in result["rows"]}
        base = accuracy[METHODS[0][0]]
        for i in rows:
            if METHODS[i][0] not in accuracy:
                continue
            cells = []
            for k in map(str, KS):
                d = np.array(accuracy[METHODS[i][0]][k]) - np.array(base[k])
                won, lost = int(np.sum(d > 1e-9)), int(np.sum(d < -1e-9))
                cells.append(f"k={k}: {d.mean():+.3f} +/- "
                             f"{d.std() / np.sqrt(len(d)):.3f} ({won} / "
                             f"{len(d) - won - lost} / {lost})")
            print(f"{result['name']} row {i} ({report['date']}): "
                  + " | ".join(cells))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--datasets", nargs="+", default=["amulet6", "digits"])
    parser.add_argument("--picks", action="store_true",
                        help="only count the block sets that METHODS' rows 53 "
                        "to 56 pick on these draws, and the draws they won, "
                        "tied and lost in the last bench_learning_curve --rows "
                        "run")
    args = parser.parse_args(argv)
    if args.picks:
        paired_counts()
    for name in args.datasets:
        if args.picks:
            images, y, groups, _ = (load_amulet6() if name == "amulet6"
                                    else load_digits_photos())
            picks(name, images, y, groups, args.draws, args.seed)
            continue
        path = RESULTS_DIR / f"loo_choice_{name}_seed{args.seed}.json"
        if path.exists():
            recs = json.loads(path.read_text())
        else:
            images, y, groups, _ = (load_amulet6() if name == "amulet6"
                                    else load_digits_photos())
            recs = records(name, images, y, groups, args.draws, args.seed)
            path.write_text(json.dumps(recs))
        for key in ("photo", "dup"):
            print(f"## {name}, left out: {key}")
            print("\n".join(play(recs, key)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
