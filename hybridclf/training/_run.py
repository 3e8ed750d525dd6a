"""What the phases of :func:`~hybridclf.training.train_model` share, and phase 1.

``_Run`` is one small record of the data and its splits (with the feature
cache, the timings and the Future of the novelty index's views), and
``_split`` makes it: the grouped test split, drawn from the images' content,
and the folds of ``StratifiedGroupKFold`` on the training part.
"""

import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from ._feature_cache import image_digest
from ._groups import join_groups
from ._split import cv_splits, grouped_train_test_split


@dataclass
class _Run:
    """What the phases of one :func:`train_model` call share: data and splits."""

    X: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    train: np.ndarray
    test: np.ndarray
    splits: list
    random_state: int
    n_jobs: object
    progress: bool
    digests: list = None
    cache: object = None
    thumbnails: bool = True
    started: float = field(default_factory=time.perf_counter)
    timings: dict = field(default_factory=dict)
    cache_use: dict = field(default_factory=dict)
    views: object = None  # the Future of the novelty index's views, or None
    while_waiting: object = None  # train_model's ``while_waiting``
    # per image: the id of the photo it is (an augmented copy or a repeated
    # file shares its original's) and whether it counts as that photo
    photos: np.ndarray = None
    counted: np.ndarray = None

    @property
    def X_train(self):
        return self.X[self.train]

    @property
    def y_train(self):
        return self.y[self.train]

    @contextmanager
    def timed(self, phase):
        """Record the seconds the ``with`` block takes as ``timings[phase]``."""
        t0 = time.perf_counter()
        yield
        self.timings[phase] = time.perf_counter() - t0


def _rows(paths):
    """The images as an array with one row per image.

    A list of paths or of arrays of any sizes becomes a 1-D object array;
    ``np.asarray(..., dtype=object)`` would turn a list of equal-sized image
    arrays into one 4-D array of objects, which the loader cannot read.
    """
    if not isinstance(paths, (list, tuple)):
        return np.asarray(paths)
    X = np.empty(len(paths), dtype=object)
    for i, item in enumerate(paths):
        X[i] = item
    return X


def _photos(origins, digests):
    """Which photo each image is, and whether it counts as that photo.

    An image made from another (``origins``: an augmented copy's source) and
    byte-identical files (equal ``digests``) are one photo. Its original
    counts (the first image of the photo that is no one's copy); the copies
    are trained on but never scored or flagged as photos of their own.
    """
    n = len(digests)
    origins = np.arange(n) if origins is None else np.asarray(origins, dtype=np.int64)
    if origins.shape != (n,) or (n and (origins.min() < 0 or origins.max() >= n)):
        raise ValueError(
            "The 'origins' parameter of train_model must hold one index into the "
            f"images per image (0 to {n - 1}; an image's own for a photo). Got "
            f"{origins!r} instead.")
    same = np.unique([f"row:{i}" if d is None else d for i, d in enumerate(digests)],
                     return_inverse=True)[1].reshape(-1)
    photos = join_groups(origins, same[origins])
    photos = join_groups(photos, same)
    original = origins == np.arange(n)
    counted = np.zeros(n, dtype=bool)
    for members in np.split(np.argsort(photos, kind="stable"),
                            np.flatnonzero(np.diff(np.sort(photos))) + 1):
        first = members[original[members]]
        counted[first[0] if len(first) else members[0]] = True
    return photos, counted


def _split(paths, labels, groups, *, test_size, cv_folds, random_state, n_jobs,
           progress, origins=None, train_only=None):
    """Phase 1: the grouped test split and the cross-validation folds."""
    started = time.perf_counter()
    X = _rows(paths)
    y = np.asarray(labels)
    groups = np.arange(len(y)) if groups is None else np.asarray(groups)
    # the images' content: the key of the split, and of the feature cache
    digests = [image_digest(x) for x in X]
    photos, counted = _photos(origins, digests)
    if origins is not None:  # a copy on the other side of a split is leakage
        groups = join_groups(groups, photos)
    if test_size:
        train, test = grouped_train_test_split(y, groups, test_size=test_size,
                                               random_state=random_state,
                                               keys=digests, train_only=train_only)
    else:
        train, test = np.arange(len(y)), np.array([], dtype=int)
    splits = cv_splits(y[train], groups[train], cv_folds=cv_folds,
                       random_state=random_state)
    return _Run(X=X, y=y, groups=groups, train=train, test=test, splits=splits,
                random_state=random_state, n_jobs=n_jobs, progress=progress,
                digests=digests, started=started, photos=photos, counted=counted)
