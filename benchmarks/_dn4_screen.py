"""Screen DN4 variants on a few draws, paired with the default (issue 21).

The draws come from ``make_splits(..., seed=1)``, not the seed 0 of the
learning curve's tables, so that choosing a variant here does not tune it to
the draws it is then measured on. The runs behind docs/benchmarks.md's
"Fourth round" (from ``benchmarks/``, ``PYTHONPATH`` at the checkout)::

    nice -n 19 ../.venv/bin/python _dn4_screen.py --draws 5 \
        --layers -7 -4 -2 -1 head --knns 1 3 --centre 0
    nice -n 19 ../.venv/bin/python _dn4_screen.py --draws 5 \
        --layers -14 -10 -7 -4 --knns 1 --pools id mirror
    nice -n 19 ../.venv/bin/python _dn4_screen.py --draws 5 \
        --layers -10 -7 --knns 1 --centre 0 --pools views
    nice -n 19 ../.venv/bin/python _dn4_screen.py --draws 5 \
        --layers -10 -7 --knns 1 --block 1 3 10
    nice -n 19 ../.venv/bin/python _dn4_screen.py --time \
        --layers -10 -7 -4 --knns 1 3
"""

import argparse
import itertools
import sys

import numpy as np
from _curve_data import load_amulet6
from _curve_data import view_features as cached_view_features
from _curve_methods import _tables, run_method
from _dn4 import (
    LAYERS,
    centred,
    class_pools,
    descriptors,
    dn4_scores,
    local_maps,
    softmax_rows,
    standardised,
)
from bench_learning_curve import DV, METHODS, make_splits, resolve
from threadpoolctl import threadpool_limits

from hybridclf.classifiers import RidgeSoftmaxClassifier

VIEWS = ["id", *DV, "blur"]


def block_method(features, desc, y, tr, te, knn, weight, pool_views=("id",)):
    """The default with DN4 class scores as a fifth block (probabilities).

    A training row's scores leave its own photo out (its descriptors and
    those of its views), so the ridge learns from scores like a new photo's.
    """
    method = resolve(METHODS[0][1], y[tr])
    aug = ["id", *method.get("aug", ())]
    classes = np.unique(y[tr])
    train_x, test_x = _tables(features, ("cnn", "hog", "lbp", "color"), tr, te,
                              aug, ["id"], None)
    pools = class_pools(desc, y, tr, classes, pool_views)
    train_s = [dn4_scores(desc[v][tr], pools, knn, exclude=tr) for v in aug]
    test_s = dn4_scores(desc["id"][te], pools, knn)
    mu = np.vstack(train_s).mean(0)
    sd = np.vstack(train_s).std(0) + 1e-12
    X = np.vstack([np.hstack([t, weight * (s - mu) / sd])
                   for t, s in zip(train_x, train_s)])
    Y = np.tile(y[tr], len(aug))
    groups = np.tile(np.arange(len(tr)), len(aug)) if len(aug) > 1 else None
    clf = RidgeSoftmaxClassifier().fit(X, Y, groups=groups)
    return clf.predict_proba(np.hstack([test_x[0], weight * (test_s - mu) / sd]))


def screen_block(images, y, groups, n_draws, ks, layers, knns, weights):
    """DN4 scores as an extra block of the default's ridge."""
    from _curve_data import VIEWS as MAKE

    features, _ = cached_view_features("amulet6", images, VIEWS)
    desc = {}
    for view in VIEWS:
        maps = local_maps("amulet6", MAKE[view](images), view)
        for layer in layers:
            desc.setdefault(layer, {})[view] = descriptors(maps[layer])
    splits = make_splits(y, groups, n_draws, seed=1)
    results = {}
    for k in ks:
        for tr, te in splits[k]:
            classes = np.unique(y[tr])
            truth = np.searchsorted(classes, y[te])
            proba = run_method(resolve(METHODS[0][1], y[tr]), features, y, tr, te,
                               proba=True)
            acc = {"default": np.mean(proba.argmax(1) == truth)}
            for layer, knn, w in itertools.product(layers, knns, weights):
                p = block_method(features, desc[layer], y, tr, te, knn, w)
                acc[f"block L{layer} k{knn} w{w:g}"] = np.mean(p.argmax(1) == truth)
            for key, value in acc.items():
                results.setdefault(key, {}).setdefault(k, []).append(value)
        print(f"k = {k} done", flush=True)
    report(results, ks)


def report(results, ks):
    base = results["default"]
    print(f"{'method':34s}" + "".join(f"   k = {k:<14}" for k in ks))
    for key, per_k in results.items():
        cells = []
        for k in ks:
            a, d = np.array(per_k[k]), np.array(per_k[k]) - np.array(base[k])
            se = d.std() / np.sqrt(len(d))
            cells.append(f"{a.mean():.3f} ({d.mean():+.3f}+/-{se:.3f})")
        print(f"{key:34s} " + " ".join(cells), flush=True)


def screen(images, y, groups, n_draws, ks, layers, knns, mirror, centres):
    features, _ = cached_view_features("amulet6", images, VIEWS)
    from _curve_data import VIEWS as MAKE

    desc = {}
    pool_sets = {"id": ("id",), "mirror": ("id", "hflip"), "views": tuple(VIEWS)}
    pool_sets = [pool_sets[p] for p in mirror]
    for view in sorted({v for p in pool_sets for v in p}):
        maps = local_maps("amulet6", MAKE[view](images), view)
        for layer in layers:
            desc.setdefault(layer, {})[view] = descriptors(maps[layer])
    splits = make_splits(y, groups, n_draws, seed=1)
    results = {}
    for k in ks:
        for tr, te in splits[k]:
            classes = np.unique(y[tr])
            truth = np.searchsorted(classes, y[te])
            proba = run_method(resolve(METHODS[0][1], y[tr]), features, y, tr, te,
                               proba=True)
            acc = {"default": np.mean(proba.argmax(1) == truth)}
            for layer, knn, pool_views, centre in itertools.product(
                    layers, knns, pool_sets, centres):
                d = desc[layer]
                if centre:
                    d = {v: centred(d[v], tr) for v in d}
                pools = class_pools(d, y, tr, classes, pool_views)
                s = dn4_scores(d["id"][te], pools, knn)
                name = (f"L{layer} k{knn} {'+'.join(pool_views)[:12]}"
                        f"{' centred' if centre else ''}")
                acc[f"dn4 {name}"] = np.mean(s.argmax(1) == truth)
                z = standardised(s)
                for t in (1.0, 2.0, 4.0):
                    fused = 0.5 * proba + 0.5 * softmax_rows(t * z)
                    acc[f"avg t{t:g} {name}"] = np.mean(fused.argmax(1) == truth)
                for a in (0.5, 1.0, 2.0):
                    fused = np.log(np.clip(proba, 1e-12, None)) + a * z
                    acc[f"log+{a:g}z {name}"] = np.mean(fused.argmax(1) == truth)
            for key, value in acc.items():
                results.setdefault(key, {}).setdefault(k, []).append(value)
        print(f"k = {k} done", flush=True)
    report(results, ks)


def time_predict(images, y, layers, knns, n_test=40):
    """ms per photo of the DN4 scores, one photo at a time, all other photos pooled.

    The cost the DN4 step adds to a prediction (its CNN maps come from the
    pass the default's CNN block makes anyway); it grows with the number of
    training photos.
    """
    import time

    from _curve_data import VIEWS as MAKE

    rng = np.random.default_rng(0)
    test = rng.choice(len(y), n_test, replace=False)
    train = np.setdiff1d(np.arange(len(y)), test)
    maps = local_maps("amulet6", MAKE["id"](images), "id")
    for layer, knn in itertools.product(layers, knns):
        desc = {"id": descriptors(maps[layer])}
        pools = class_pools(desc, y, train, np.unique(y[train]))
        times = []
        for i in test:
            t = time.perf_counter()
            dn4_scores(desc["id"][i:i + 1], pools, knn)
            times.append((time.perf_counter() - t) * 1000)
        n_desc = sum(len(p[1]) * p[0].shape[1] for p in pools)
        print(f"L{layer} k{knn}: {len(train)} training photos, {n_desc} "
              f"descriptors of {desc['id'].shape[2]}; mean {np.mean(times):.1f} "
              f"ms, median {np.median(times):.1f} ms per photo", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--ks", type=int, nargs="+", default=[3, 5, 10])
    parser.add_argument("--layers", nargs="+", default=[str(x) for x in LAYERS])
    parser.add_argument("--knns", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--pools", nargs="+", default=["id"],
                        choices=["id", "mirror", "views"],
                        help="the views whose descriptors join the class pools")
    parser.add_argument("--centre", type=int, nargs="+", default=[0, 1],
                        help="0: raw descriptors, 1: less the training mean")
    parser.add_argument("--block", type=float, nargs="*", default=None,
                        metavar="W", help="DN4 scores as a fifth block of the "
                        "ridge, at these block weights")
    parser.add_argument("--time", action="store_true",
                        help="only time the DN4 scores per photo")
    args = parser.parse_args(argv)
    layers = [x if x == "head" else int(x) for x in args.layers]
    images, y, groups, _ = load_amulet6()
    with threadpool_limits(1, user_api="blas"):
        if args.time:
            time_predict(images, y, layers, args.knns)
            return 0
        if args.block is not None:
            screen_block(images, y, groups, args.draws, args.ks, layers, args.knns,
                         args.block)
            return 0
        screen(images, y, groups, args.draws, args.ks, layers, args.knns,
               args.pools, [bool(c) for c in args.centre])
    return 0


if __name__ == "__main__":
    sys.exit(main())
