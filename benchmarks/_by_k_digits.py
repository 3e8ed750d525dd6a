"""Where signed HOG stops losing on digits: the threshold T read off a curve.

Issue 21 allows blocks chosen by the training set's smallest class. Signed
HOG (12 orientations) loses on the learning curve's digits (50 per class) at
every k, 40 per class included, so a threshold read off that curve would lie
above 40. This extends the digits curve with all 1797 of scikit-learn's
digits (174 to 183 per class): k = 15, 20, 40, 80 and 160 training digits per
class, 20 draws each, tested on every other digit; and amulet6 at k = 15
(the rule's T) beside 20. The default (no views from 15 per class on) against
it with signed HOG, with and without the CNN mirror-averaged, paired per draw
on cached features (the path ``bench_learning_curve.py`` checks against the
pipeline). Run from the repository root::

    nice -n 19 .venv/bin/python benchmarks/_by_k_digits.py
"""

import sys

import numpy as np
from _curve_data import load_amulet6, load_digits_photos, view_features
from _curve_methods import run_method
from bench_learning_curve import DEFAULT, draw_split, resolve
from threadpoolctl import threadpool_limits

ROWS = {
    "signed HOG (12)": ("cnn", "hog_s_12", "lbp", "color"),
    "signed HOG (12) + CNN mirror-averaged": ("cnn_tta", "hog_s_12", "lbp", "color"),
}
BLOCKS = ("cnn", "hog", "lbp", "color", "hog_s_12", "cnn_tta")


def curve(name, images, y, groups, ks, n_draws=20):
    features, _ = view_features(name, images, ["id"], BLOCKS)
    for k in ks:
        rng = np.random.default_rng([0, k])
        draws = [draw_split(y, groups, k, rng) for _ in range(n_draws)]
        acc = {"default": [], **{r: [] for r in ROWS}}
        for train, test in draws:
            base = resolve(DEFAULT, y[train])
            assert not base["aug"], "no views from 15 per class on"
            for row, blocks in [("default", base["blocks"] if "blocks" in base
                                 else ("cnn", "hog", "lbp", "color")),
                                *ROWS.items()]:
                pred = run_method({**base, "blocks": blocks}, features, y, train, test)
                acc[row].append(float(np.mean(pred == y[test])))
        base = np.array(acc["default"])
        line = f"{name} k = {k:3d} (test {np.mean([len(t) for _, t in draws]):.0f}):"
        line += f" default {base.mean():.3f}"
        for row in ROWS:
            d = np.array(acc[row]) - base
            line += (f"; {row} {np.mean(acc[row]):.3f} ({d.mean():+.3f} +/- "
                     f"{d.std() / np.sqrt(len(d)):.3f}, W/T/L {np.sum(d > 1e-9)}/"
                     f"{np.sum(np.abs(d) <= 1e-9)}/{np.sum(d < -1e-9)})")
        print(line, flush=True)


def main():
    with threadpool_limits(1, user_api="blas"):
        amulet = load_amulet6()
        if amulet is not None:
            curve("amulet6", *amulet[:3], ks=(15, 20))
        images, y, groups, _ = load_digits_photos(per_class=200)
        curve("digits1797", images, y, groups, ks=(15, 20, 40, 80, 160))
    return 0


if __name__ == "__main__":
    sys.exit(main())
