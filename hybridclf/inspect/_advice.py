"""Class distribution and cross-validation advice of
:func:`~hybridclf.inspect_dataset`.
"""

import logging

import numpy as np

logger = logging.getLogger(__name__)

# below this many images, one k-fold split is too noisy: repeat it
_SMALL_SET = 500
# a class with fewer images than this gains from augmentation
_FEW_IMAGES = 100


def distribution(labels, sizes):
    """Counts per class, imbalance ratio and image size statistics.

    Parameters
    ----------
    labels : list of str
        Class of each readable image.

    sizes : list of (int, int)
        (width, height) of each readable image.

    Returns
    -------
    stats : dict
        ``class_counts`` (class -> count, largest first), ``n_images``,
        ``n_classes``, ``imbalance_ratio`` (largest / smallest class) and
        ``size`` (min, median and max of width and height).
    """
    names, counts = np.unique(np.asarray(labels, dtype=str), return_counts=True)
    order = np.argsort(-counts, kind="stable")
    class_counts = {str(names[i]): int(counts[i]) for i in order}
    stats = {"class_counts": class_counts, "n_images": int(counts.sum()),
             "n_classes": len(names),
             "imbalance_ratio": (float(counts.max() / counts.min())
                                 if len(counts) else None)}
    if sizes:
        arr = np.asarray(sizes, dtype=np.float64)
        stats["size"] = {
            axis: {"min": int(arr[:, k].min()), "median": float(np.median(arr[:, k])),
                   "max": int(arr[:, k].max())}
            for k, axis in enumerate(("width", "height"))
        }
    return stats


def cv_advice(labels, groups, *, max_folds=5):
    """A cross-validation plan for images with these classes and duplicate groups.

    Parameters
    ----------
    labels : list of str
        Class of each readable training image.

    groups : list of int
        Duplicate group of each image (see
        :func:`hybridclf.find_duplicate_groups`).

    max_folds : int, default=5
        The most folds to advise.

    Returns
    -------
    advice : dict
        ``splitter`` (a scikit-learn class name), ``n_splits``, ``n_repeats``,
        ``use_groups``, ``augment`` (bool), ``augment_to`` (images per class,
        or None), ``code`` (a Python snippet) and ``reasons`` (list of str).
    """
    labels = np.asarray(labels, dtype=str)
    groups = np.asarray(groups)
    if labels.size == 0:
        return {"splitter": None, "n_splits": 0, "n_repeats": 0, "use_groups": False,
                "augment": False, "augment_to": None, "code": "",
                "reasons": ["No readable image: nothing to cross-validate."]}
    names, counts = np.unique(labels, return_counts=True)
    reasons = []
    if len(names) < 2:
        reasons.append(
            f"Only one class ({str(names[0])!r}): a classifier needs two or more; the "
            "plan below applies once other classes are added."
        )
    splitter, n_splits, use_groups = _folds(labels, groups, names, max_folds,
                                            reasons)
    n_repeats = _repeats(labels.size, n_splits, reasons)
    augment, augment_to = _augmentation(counts, reasons)
    code = _code(splitter, n_splits, n_repeats, use_groups)
    return {"splitter": splitter, "n_splits": int(n_splits),
            "n_repeats": int(n_repeats), "use_groups": use_groups,
            "augment": augment, "augment_to": augment_to, "code": code,
            "reasons": reasons}


def _folds(labels, groups, names, max_folds, reasons):
    """The splitter and its number of folds; appends the reasons to ``reasons``.

    Grouped folds when any duplicate group has two or more images; as many
    folds as the smallest class has independent images (duplicate groups, not
    files), at most ``max_folds``.
    """
    n_dup_groups = sum(1 for g in np.unique(groups) if (groups == g).sum() > 1)
    use_groups = n_dup_groups > 0
    # a fold needs one independent group of each class: count groups, not files
    groups_per_class = {str(name): len(np.unique(groups[labels == name]))
                        for name in names}
    smallest = min(groups_per_class, key=groups_per_class.get)
    n_splits = min(max_folds, groups_per_class[smallest])
    if use_groups:
        splitter = "StratifiedGroupKFold"
        reasons.append(
            f"{n_dup_groups} group(s) of duplicate training images: keep each "
            "group in one fold, or the score is inflated by images seen in "
            "training. Pass the 'group' column of duplicate_groups.csv as `groups`."
        )
    else:
        splitter = "RepeatedStratifiedKFold" if labels.size < _SMALL_SET else (
            "StratifiedKFold")
        reasons.append("No duplicates found: plain stratified folds are honest.")
    if n_splits < 2:
        reasons.append(
            f"Class {smallest!r} has {groups_per_class[smallest]} independent "
            "image(s): too few for any cross-validation. Add images to it."
        )
    else:
        reasons.append(
            f"{n_splits} folds: the smallest class, {smallest!r}, has "
            f"{groups_per_class[smallest]} independent image(s)."
        )
    return splitter, n_splits, use_groups


def _repeats(n_images, n_splits, reasons):
    """How often to repeat the folds: more often the fewer the images."""
    if n_images >= _SMALL_SET or n_splits < 2:
        return 1
    n_repeats = 5 if n_images < 200 else 3
    reasons.append(
        f"{n_images} images: repeat the folds {n_repeats} times (different "
        "shuffles) and report the mean and spread."
    )
    return n_repeats


def _augmentation(counts, reasons):
    """Whether to augment, and to about how many images per class (or None)."""
    imbalance = counts.max() / counts.min()
    augment = bool(imbalance > 1.5 or counts.min() < _FEW_IMAGES)
    if not augment:
        return augment, None
    # the largest class, raised towards 100 images but at most doubled
    augment_to = int(max(counts.max(), min(_FEW_IMAGES, 2 * counts.max())))
    reasons.append(
        f"Imbalance ratio {imbalance:.1f}, smallest class {counts.min()} images:"
        f" augment each class to about {augment_to} images inside the training "
        "folds only (ClassAwareAugmenter in the pipeline does this)."
    )
    return augment, augment_to


def _code(splitter, n_splits, n_repeats, use_groups):
    """A snippet that runs the advised cross-validation."""
    if n_splits < 2:
        return ""
    if use_groups:
        return (
            "import numpy as np\n"
            "import pandas as pd\n"
            "from sklearn.model_selection import StratifiedGroupKFold, "
            "cross_val_score\n"
            "groups = pd.read_csv('duplicate_groups.csv').set_index('file')"
            ".loc[paths, 'group']\n"
            "scores = []\n"
            f"for seed in range({n_repeats}):\n"
            f"    cv = StratifiedGroupKFold(n_splits={n_splits}, shuffle=True, "
            "random_state=seed)\n"
            "    scores += list(cross_val_score(pipe, paths, labels, groups=groups, "
            "cv=cv))\n"
            'print(f"accuracy {np.mean(scores):.3f} +/- {np.std(scores):.3f} "\n'
            '      f"(standard deviation over {len(scores)} folds)")'
        )
    if splitter == "RepeatedStratifiedKFold":
        return (
            "from sklearn.model_selection import RepeatedStratifiedKFold\n"
            f"cv = RepeatedStratifiedKFold(n_splits={n_splits}, "
            f"n_repeats={n_repeats}, random_state=0)"
        )
    return (
        "from sklearn.model_selection import StratifiedKFold\n"
        f"cv = StratifiedKFold(n_splits={n_splits}, shuffle=True, random_state=0)"
    )
