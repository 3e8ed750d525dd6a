"""How far a 5-draw learning-curve mean moves with the draws' seed.

The spread of the mean of 5 draws of the "no views" curve on amulet6 (which
is the default at issue 21's filing time on every draw, see
``bench_learning_curve.py --baseline-commit cf0b537``) over the seeds of the
draws, at 3, 5 and 10 photos per class: where a figure measured on 5 other
draws would fall. Uses the cached features of ``bench_learning_curve.py``
(run that first)::

    cd benchmarks && ../.venv/bin/python _curve_seeds.py 500
"""

import sys

import numpy as np
from _curve_data import load_amulet6, view_features
from _curve_methods import run_method
from bench_learning_curve import draw_split
from threadpoolctl import threadpool_limits

FILED = {3: 0.57, 5: 0.66, 10: 0.81}  # issue 21's figures, 5 draws


def main(n_seeds):
    images, y, groups, _ = load_amulet6()
    features, _ = view_features("amulet6", images, ["id"])
    means = {k: [] for k in FILED}
    with threadpool_limits(1, user_api="blas"):
        for seed in range(1, n_seeds + 1):
            for k in FILED:
                rng = np.random.default_rng([seed, k])
                accuracy = []
                for _ in range(5):
                    train, test = draw_split(y, groups, k, rng)
                    pred = run_method({"clf": "ridge"}, features, y, train, test)
                    accuracy.append(np.mean(pred == y[test]))
                means[k].append(np.mean(accuracy))
    for k, m in means.items():
        m = np.array(m)
        print(f"k = {k}: 5-draw means over {len(m)} seeds: mean {m.mean():.3f}, "
              f"sd {m.std():.3f}, 5% {np.quantile(m, 0.05):.3f}, 95% "
              f"{np.quantile(m, 0.95):.3f}, range {m.min():.3f}-{m.max():.3f}; "
              f"at most {FILED[k]}: {np.mean(m < FILED[k] + 0.005):.3f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
