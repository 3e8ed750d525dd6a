"""Training time and open-set threshold of the default at small k, views or none.

For each k given (photos per class), one draw of ``bench_learning_curve.py``
(the first, seed 0) on amulet6: ``train_model`` (``test_size=0``, grouped
``min(5, k)``-fold cross-validation) and ``pipe.fit`` of
``make_hybrid_pipeline()`` (views + blur below 15 photos per class) and of
``make_hybrid_pipeline(sampler=None)``, each timed, with the accuracy on the
photos of the other groups, their mean top probability, the confidence
threshold ``train_model`` learned and the share of those (known-class) test
photos below it::

    .venv/bin/python benchmarks/_small_k_training.py 3 5 10
"""

import sys
import time
import warnings

import numpy as np
from _common import find_dataset, shared_data_dir
from bench_learning_curve import draw_split

from hybridclf import load_image_folder, make_hybrid_pipeline
from hybridclf.training import read_groups_csv, train_model


def main(argv=None):
    ks = [int(a) for a in (sys.argv[1:] if argv is None else argv)] or [3, 5, 10]
    folder = find_dataset("amulet6")
    if folder is None:
        print("amulet6 not found (set HYBRIDCLF_DATA)")
        return 0
    paths, labels = load_image_folder(folder)
    paths, labels = np.asarray(paths, dtype=object), np.asarray(labels)
    groups = np.asarray(read_groups_csv(shared_data_dir() / "amulet6_groups.csv",
                                        paths, root=folder))
    warnings.simplefilter("ignore")
    for k in ks:
        train, test = draw_split(labels, groups, k, np.random.default_rng([0, k]))
        for name, sampler in [("default", "auto"), ("no views", None)]:
            started = time.perf_counter()
            result = train_model(make_hybrid_pipeline(sampler=sampler),
                                 paths[train], labels[train], groups=groups[train],
                                 test_size=0, cv_folds=min(5, k))
            seconds = time.perf_counter() - started
            proba = result.pipeline.predict_proba(paths[test])
            right = result.pipeline.classes_[proba.argmax(1)] == labels[test]
            top, limit = proba.max(1), result.open_set["proba_threshold"]
            started = time.perf_counter()
            make_hybrid_pipeline(sampler=sampler).fit(paths[train], labels[train],
                                                      groups=groups[train])
            print(f"k={k} {name:8s} train_model {seconds:5.1f} s, pipe.fit "
                  f"{time.perf_counter() - started:5.1f} s; test accuracy "
                  f"{right.mean():.3f}, mean top probability {top.mean():.3f}; "
                  f"threshold {limit:.3f}, test photos below it "
                  f"{np.mean(top < limit):.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
