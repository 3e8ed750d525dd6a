"""The grouped split: the train/test split, the folds and the dataset's fingerprint.

Every split keeps a group of near-identical images whole (the group ids come
from ``_groups``): :func:`grouped_train_test_split` for the test part,
:func:`cv_splits` for the cross-validation folds. :func:`data_fingerprint`
identifies the dataset that a model was trained on.
"""

import hashlib
import logging
import os
import warnings

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

__all__ = ["cv_splits", "data_fingerprint", "grouped_train_test_split"]

logger = logging.getLogger(__name__)


def grouped_train_test_split(labels, groups, *, test_size=0.2, random_state=0,
                             keys=None, train_only=None):
    """Split indices into a training and a test part that share no group.

    Classes keep about their proportions, and every group lies wholly on one
    side. Without ``keys``, the split is the first fold of a shuffled
    ``StratifiedGroupKFold`` with ``round(1 / test_size)`` folds. With
    ``keys`` (a content key per sample, such as its file's SHA-256), the
    groups are taken in an order drawn from their keys and ``random_state``
    (:func:`_stable_test_groups`), so the split depends on what the samples
    are, not on how many others there are: adding 20 photos to 1,000 moves
    only a few of the old ones across, a retrained model is tested on mostly
    the same photos, and the work cached for the training photos stays
    useful.

    Parameters
    ----------
    labels : array-like of shape (n_samples,)
        Class of each sample.

    groups : array-like of shape (n_samples,)
        Group id of each sample.

    test_size : float, default=0.2
        About the share of samples in the test part, in (0, 0.5].

    random_state : int, default=0
        Seeds the shuffle, or the order drawn from ``keys``.

    keys : sequence of str or None, default=None
        A key of each sample's content; None splits by position.

    train_only : array-like of bool of shape (n_samples,) or None, default=None
        Samples that must be trained on, such as corrections from a feedback
        folder (the photos the model got wrong): their groups never join the
        test part. The test part is drawn from the other groups, to about
        ``test_size`` of every sample. None: any group may be drawn.

    Returns
    -------
    train : ndarray of int
        Indices of the training part.

    test : ndarray of int
        Indices of the test part.

    Examples
    --------
    >>> from hybridclf.training import grouped_train_test_split
    >>> labels = ["a"] * 6 + ["b"] * 6
    >>> groups = [0, 0, 1, 2, 3, 4, 5, 5, 6, 7, 8, 9]
    >>> train, test = grouped_train_test_split(labels, groups, test_size=0.25)
    >>> set(groups[i] for i in train) & set(groups[i] for i in test)
    set()
    >>> keys = [f"photo {i}" for i in range(12)]
    >>> train, test = grouped_train_test_split(labels, groups, test_size=0.25,
    ...                                        keys=keys)
    >>> more = grouped_train_test_split(labels + ["a"], groups + [10],
    ...                                 test_size=0.25, keys=keys + ["new"])[1]
    >>> set(test) <= set(more)
    True
    """
    if not 0 < test_size <= 0.5:
        raise ValueError(
            "The 'test_size' parameter of grouped_train_test_split must be a float "
            f"in the range (0, 0.5]. Got {test_size!r} instead."
        )
    labels = np.asarray(labels)
    groups = np.asarray(groups)
    held = (np.zeros(len(labels), dtype=bool) if train_only is None
            else np.isin(groups, groups[np.asarray(train_only, dtype=bool)]))
    if keys is not None:
        test = _stable_test_groups(labels, groups, keys, test_size, random_state,
                                   held)
        return np.flatnonzero(~test), np.flatnonzero(test)
    n_splits = max(2, int(round(1 / test_size)))
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True,
                                    random_state=random_state)
    with warnings.catch_warnings():
        # a class smaller than n_splits is fine: it is simply not in every fold
        warnings.simplefilter("ignore", UserWarning)
        train, test = next(splitter.split(np.zeros(len(labels)), labels, groups))
    # a group to train on goes back to the training part
    return np.sort(np.concatenate([train, test[held[test]]])), test[~held[test]]


def _stable_test_groups(labels, groups, keys, test_size, random_state, held):
    """Whether each sample is in the test part, drawn from its group's keys.

    Each group's rank is the smallest SHA-256 of ``random_state`` and a
    member's key; in rank order, a group joins the test part when that brings
    the test count of each of its classes closer to ``test_size`` times the
    class's size. A new sample changes the rank of its own group only, so it
    moves at most the group that its class's quota then leaves out. The
    groups of ``held`` samples are never drawn.
    """
    if len(keys) != len(labels):
        raise ValueError(
            f"grouped_train_test_split got {len(keys)} keys for {len(labels)} "
            "samples; pass one key per sample."
        )
    _, group = np.unique(groups, return_inverse=True)
    _, label = np.unique(labels, return_inverse=True)
    counts = np.zeros((group.max() + 1, label.max() + 1), dtype=int)
    np.add.at(counts, (group, label), 1)
    rank = {}
    for g, key in zip(group.tolist(), keys):
        digest = hashlib.sha256(f"{random_state}:{key}".encode()).hexdigest()
        rank[g] = min(rank.get(g, digest), digest)
    quota = test_size * counts.sum(axis=0)
    taken = np.zeros(len(quota))
    chosen = []
    never = set(group[held].tolist())
    for g in sorted(rank, key=rank.__getitem__):
        if g in never:
            continue
        present = counts[g] > 0
        if np.all(counts[g][present] <= 2 * (quota - taken)[present]):
            taken += counts[g]
            chosen.append(g)
    return np.isin(group, chosen)


def data_fingerprint(paths, labels, *, root=None, names=None):
    """A fingerprint of a dataset: SHA-256 of its file names, sizes and labels.

    Parameters
    ----------
    paths : sequence of str
        Image files.

    labels : sequence
        Their classes.

    root : str, default=None
        Names are taken relative to it, so moving the folder keeps the print.

    names : sequence of str, default=None
        The files' names, as :func:`~hybridclf.io.load_image_folders` gives
        them for several folders; they replace ``root``.

    Returns
    -------
    fingerprint : dict
        ``sha256``, ``n_images`` and ``class_counts``.
    """
    digest = hashlib.sha256()
    entries = []
    if names is None:
        names = [os.path.relpath(p, root) if root else os.path.basename(p)
                 for p in paths]
    for path, label, name in zip(paths, labels, names):
        try:
            size = os.path.getsize(path)
        except (OSError, TypeError):
            size = -1
        entries.append(f"{name}\t{size}\t{label}")
    for entry in sorted(entries):
        digest.update(entry.encode("utf-8", "surrogateescape") + b"\n")
    classes, counts = np.unique(np.asarray(labels).astype(str), return_counts=True)
    return {"sha256": digest.hexdigest(), "n_images": len(entries),
            "class_counts": dict(zip(classes.tolist(), counts.tolist()))}


def cv_splits(labels, groups, *, cv_folds=5, random_state=0):
    """The folds of grouped cross-validation on the training part.

    Parameters
    ----------
    labels : ndarray of shape (n_samples,)
        Class of each sample.

    groups : ndarray of shape (n_samples,)
        Group id of each sample.

    cv_folds : int, default=5
        Folds wanted; fewer when there are fewer groups, or fewer images in
        the largest class (a warning is logged).

    random_state : int, default=0
        Seeds the shuffle.

    Returns
    -------
    splits : list of (ndarray, ndarray)
        The (train, test) indices of each fold of a shuffled
        ``StratifiedGroupKFold``.

    Raises
    ------
    ValueError
        When a class has fewer than 2 images, or there are fewer than 2 groups.
    """
    classes, counts = np.unique(labels, return_counts=True)
    n_groups = len(np.unique(groups))
    # StratifiedGroupKFold refuses more folds than the largest class has images
    n_folds = min(cv_folds, n_groups, counts.max())
    if counts.min() < 2 or n_folds < 2:
        small = ", ".join(f"{c!r} has {n}" for c, n in zip(classes.tolist(), counts)
                          if n < 2) or f"there are {n_groups} groups"
        raise ValueError(
            f"train_model needs at least 2 images per class in the training part "
            f"for cross-validation; {small}. Add images to that class or leave "
            "it out, or, if the test part took some, lower the 'test_size' "
            "parameter (--test-size on the command line)."
        )
    if n_folds < cv_folds:
        why = (f"only {n_groups} groups" if n_folds == n_groups else
               f"no class has more than {counts.max()} images in the training part")
        logger.warning("Using %d folds instead of %d ('cv_folds'): %s", n_folds,
                       cv_folds, why)
    _warn_thin_classes(labels, groups, n_folds)
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True,
                                    random_state=random_state)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return list(splitter.split(np.zeros(len(labels)), labels, groups))


def _warn_thin_classes(labels, groups, n_folds):
    """Warn of the classes in fewer groups than folds: some folds test none.

    A class of one group (one photo and its copies) gets its own warning: the
    fold that tests it has none of it to learn from.

    Their cross-validation scores rest on those few images, and the folds'
    balanced accuracy and macro-F1 average different classes (scikit-learn
    leaves a class out of a fold that tests none of it).
    """
    labels, groups, thin, one_group = np.asarray(labels), np.asarray(groups), {}, []
    for c in np.unique(labels).tolist():
        n_groups = len(np.unique(groups[labels == c]))
        if n_groups == 1:
            one_group.append(c)
        elif n_groups < n_folds:
            thin[c] = n_groups
    if one_group:
        logger.warning(
            "Class(es) %s hold one photo and its copies (one group): the fold "
            "that tests such a class has no image of it to learn from, so its "
            "images count as errors there. Add photos of other objects of the "
            "class.", ", ".join(map(repr, one_group)))
    if thin:
        it, its = ("them", "their") if len(thin) > 1 else ("it", "its")
        logger.warning(
            "Fewer groups of images than the %d folds in the training part for "
            "%s: some folds test none of %s, and %s cross-validation scores rest "
            "on those images alone.", n_folds,
            ", ".join(f"{c!r} ({n})" for c, n in thin.items()), it, its)
