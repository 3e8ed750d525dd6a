"""The grouped split: group ids, the train/test split and the dataset's fingerprint.

Near-identical photos of one object must not sit on both sides of a split, or
the scores measure memory, not recognition. Each image gets a **group** id
(:func:`duplicate_groups` finds them, :func:`read_groups_csv` reads them) and
every split keeps a group whole (:func:`grouped_train_test_split`,
:func:`cv_splits`).
"""

import hashlib
import logging
import os
import warnings

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from ..utils._docstrings import Substitution, n_jobs_docstring

__all__ = [
    "cv_splits",
    "data_fingerprint",
    "duplicate_groups",
    "grouped_train_test_split",
    "join_identical_files",
    "read_groups_csv",
]

logger = logging.getLogger(__name__)


def _content_groups(paths):
    """Group ids of byte-identical files (the fallback without the inspector)."""
    ids, groups = {}, np.empty(len(paths), dtype=np.int64)
    for i, path in enumerate(paths):
        try:
            with open(path, "rb") as fh:
                key = hashlib.sha256(fh.read()).hexdigest()
        except OSError:
            key = f"unreadable:{i}"
        groups[i] = ids.setdefault(key, len(ids))
    return groups


@Substitution(n_jobs=n_jobs_docstring("Threads for the inspector."))
def duplicate_groups(paths, *, n_jobs=None, cache_dir=None):
    """One group id per image; near-identical images share one.

    Uses the dataset inspector's :func:`hybridclf.find_duplicate_groups`.
    Where that is not available, only byte-identical files are grouped, and a
    warning says so.

    Parameters
    ----------
    paths : sequence of str
        Image files.

    {n_jobs}

    cache_dir : str, os.PathLike or None, default=None
        Where the search keeps each photo's measures and hashes and the
        aligned pairs, so that a second search decodes only new photos (the
        folder of a :class:`FeatureCache`); None keeps nothing.

    Returns
    -------
    groups : ndarray of shape (n_images,), dtype int
        Group id of each image.
    """
    try:
        # the public name: it stays valid wherever the inspector keeps it
        from .. import find_duplicate_groups
    except ImportError:
        warnings.warn(
            "hybridclf.find_duplicate_groups is not available; only "
            "byte-identical files are grouped, so near-identical photos may land "
            "on both sides of a split. Pass a groups CSV to group them.",
            UserWarning,
            stacklevel=2,
        )
        return _content_groups(paths)
    return np.asarray(find_duplicate_groups(list(paths), n_jobs=n_jobs,
                                            cache_dir=cache_dir))


def read_groups_csv(csv_path, paths, *, root=None):
    """Read group ids from a CSV with the columns ``file`` and ``group``.

    A ``file`` may be given as the path itself, relative to ``root``, or by a
    path that resolves to the same file. Images that the CSV does not name
    get a group of their own. ``hybridclf augment``'s ``manifest.csv`` also
    works: its ``source`` column is taken when there is no ``group`` column.

    Parameters
    ----------
    csv_path : str or os.PathLike
        The CSV file.

    paths : sequence of str
        The images to group.

    root : str, os.PathLike or sequence of them, default=None
        Folder (or folders, each tried) that relative names in the CSV start
        from; default: the CSV's folder and the current folder are both tried.

    Returns
    -------
    groups : ndarray of shape (n_images,), dtype int
        Group id of each image.

    Raises
    ------
    ValueError
        When the CSV lacks a ``file`` or a ``group`` (or ``source``) column.
    """
    import csv

    with open(csv_path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    columns = set(rows[0]) if rows else set()
    group_column = "group" if "group" in columns else "source"
    if "file" not in columns or group_column not in columns:
        raise ValueError(
            f"The groups CSV {os.fspath(csv_path)!r} must have the columns 'file' "
            f"and 'group'. Got the columns {sorted(columns)!r} instead."
        )
    if root is None:
        bases = [os.path.dirname(os.path.abspath(csv_path)), os.getcwd()]
    elif isinstance(root, (str, os.PathLike)):
        bases = [os.fspath(root)]
    else:
        bases = [os.fspath(r) for r in root]
    by_file = {}
    for row in rows:
        name = row["file"]
        candidates = [name] if os.path.isabs(name) else [
            os.path.join(base, name) for base in bases]
        for candidate in candidates:
            by_file[os.path.realpath(candidate)] = row[group_column]
    labels, missing = [], 0
    for i, path in enumerate(paths):
        key = by_file.get(os.path.realpath(path))
        if key is None:
            missing += 1
            key = f"\0own:{i}"
        labels.append(key)
    if missing:
        logger.warning("%d of %d images are not in %s; each gets its own group",
                       missing, len(paths), csv_path)
    _, groups = np.unique(np.asarray(labels, dtype=object).astype(str),
                          return_inverse=True)
    return groups.astype(np.int64)


def grouped_train_test_split(labels, groups, *, test_size=0.2, random_state=0,
                             keys=None):
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
    if keys is not None:
        test = _stable_test_groups(labels, np.asarray(groups), keys, test_size,
                                   random_state)
        return np.flatnonzero(~test), np.flatnonzero(test)
    n_splits = max(2, int(round(1 / test_size)))
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True,
                                    random_state=random_state)
    with warnings.catch_warnings():
        # a class smaller than n_splits is fine: it is simply not in every fold
        warnings.simplefilter("ignore", UserWarning)
        train, test = next(splitter.split(np.zeros(len(labels)), labels, groups))
    return train, test


def _stable_test_groups(labels, groups, keys, test_size, random_state):
    """Whether each sample is in the test part, drawn from its group's keys.

    Each group's rank is the smallest SHA-256 of ``random_state`` and a
    member's key; in rank order, a group joins the test part when that brings
    the test count of each of its classes closer to ``test_size`` times the
    class's size. A new sample changes the rank of its own group only, so it
    moves at most the group that its class's quota then leaves out.
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
    for g in sorted(rank, key=rank.__getitem__):
        present = counts[g] > 0
        if np.all(counts[g][present] <= 2 * (quota - taken)[present]):
            taken += counts[g]
            chosen.append(g)
    return np.isin(group, chosen)


def join_identical_files(groups, paths):
    """``groups`` with the groups of byte-identical files joined into one.

    The same photo in two dataset folders (a data folder and a feedback
    folder) must not land on both sides of a split, whatever the groups say.

    Parameters
    ----------
    groups : array-like of int
        A group id per file.

    paths : sequence of str
        The files.

    Returns
    -------
    groups : ndarray of int
        Group ids numbered 0, 1, ... in order of first appearance.
    """
    groups = np.asarray(groups)
    parent = {}

    def find(g):
        while parent.setdefault(g, g) != g:
            g = parent[g]
        return g

    content = _content_groups(paths)
    first = {}
    for group, same in zip(groups.tolist(), content.tolist()):
        other = first.setdefault(same, group)
        parent[find(group)] = find(other)
    _, joined = np.unique([find(g) for g in groups.tolist()], return_inverse=True)
    return joined.astype(np.int64)


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
        digest.update(entry.encode() + b"\n")
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
        Folds wanted; fewer when there are fewer groups (a warning is logged).

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
    counts = np.unique(labels, return_counts=True)[1]
    n_folds = min(cv_folds, len(np.unique(groups)))
    if counts.min() < 2 or n_folds < 2:
        raise ValueError(
            f"train_model needs at least 2 images per class in the training part "
            f"for cross-validation; the smallest class has {counts.min()}. Add "
            "images or lower 'test_size'."
        )
    if n_folds < cv_folds:
        logger.warning("Only %d groups: using %d folds instead of %d", n_folds,
                       n_folds, cv_folds)
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True,
                                    random_state=random_state)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return list(splitter.split(np.zeros(len(labels)), labels, groups))
