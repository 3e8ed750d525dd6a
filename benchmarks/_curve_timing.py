"""Predict time per photo of the default and of block variants, side by side.

For ``bench_learning_curve.py --predict-time``: the full model
(``cascade=False``, no views) fitted on every other amulet6 photo with one
block's extractor swapped, then 40 held-out photos predicted one at a time,
each photo by every variant in turn, so that the machine's load shifts them
alike. The first pass warms up and is not counted.
"""

import time

import numpy as np

from hybridclf import make_hybrid_pipeline
from hybridclf.features import CNNFeatures, HOGFeatures

#: (label, {block: extractor}) swapped into the default pipeline
VARIANTS = [
    ("default", {}),
    ("signed HOG, 12 orientations",
     {"hog": HOGFeatures(signed_gradient=True, orientations=12)}),
    ("CNN mirror-averaged", {"cnn": CNNFeatures(flip_tta=True)}),
    ("signed HOG (12) + CNN mirror-averaged",
     {"hog": HOGFeatures(signed_gradient=True, orientations=12),
      "cnn": CNNFeatures(flip_tta=True)}),
]


def predict_times(images, y, n_test=40):
    """{label: (mean ms, median ms)} per photo, predicted one at a time."""
    train, test = np.arange(0, len(y), 2), np.arange(1, len(y), 2)[:n_test]
    pipes = {}
    for label, swap in VARIANTS:
        pipe = make_hybrid_pipeline(cascade=False).set_params(
            load="passthrough", augment="passthrough")
        pipe.set_params(**{f"features__{b}__extract": e for b, e in swap.items()})
        pipes[label] = pipe.fit(images[train], y[train])
    times = {label: [] for label in pipes}
    for repeat in range(2):
        for i in test:
            for label, pipe in pipes.items():
                start = time.perf_counter()
                pipe.predict(images[i:i + 1])
                if repeat:
                    times[label].append((time.perf_counter() - start) * 1000)
    return {label: (float(np.mean(t)), float(np.median(t)))
            for label, t in times.items()}
