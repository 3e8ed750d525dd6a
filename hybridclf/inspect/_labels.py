"""The inspector's label check: likely wrong labels before any training.

``inspect_dataset(..., labels=True)`` (``hybridclf inspect --labels``) fits a
quick model out of fold and asks :func:`hybridclf.label_issues.find_label_issues`
(confident learning, cleanlab) which labels its probabilities contradict,
as ``hybridclf train`` does with the full model:

- the quick model is the one of ``hybridclf train --quick-mode``: HOG and
  colour histogram blocks on 128-pixel images, each block scaled, ridge
  classifier; the blocks learn nothing from the images, so each image's
  features are computed once and the folds only refit scalers and ridge;
- the folds are ``StratifiedGroupKFold`` over the inspector's duplicate
  groups, so a copy of an image never vouches for the image's label;
- for each flagged image, the nearest images (cosine similarity of the scaled
  features, the features the model used) labelled with the suggested class,
  for the report to show side by side.

Classes with fewer independent images (duplicate groups) than folds are not
checked (a model cannot learn them out of fold, and the folds cannot be
made); the report says which.
"""

import dataclasses
import logging

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.preprocessing import StandardScaler, normalize

from ..io import ImageLoader, call_on_readable
from ..label_issues import find_label_issues
from ..pipeline import (
    FEATURE_BLOCKS,
    fit_classifier,
    get_classifier,
    make_hybrid_pipeline,
)

logger = logging.getLogger(__name__)

#: The quick model: blocks, image side, folds (as ``train --quick-mode``).
QUICK_BLOCKS = ("hog", "color")
QUICK_SIZE = 128
N_FOLDS = 3
#: Nearest images of the suggested class shown per flagged image.
N_NEIGHBOURS = 3


@dataclasses.dataclass
class LabelCheck:
    """What the label check found.

    Attributes
    ----------
    issues : list of dict
        Flagged images, most suspicious first: ``file``, ``given_label``,
        ``suggested_label``, ``score`` (out-of-fold probability of the given
        label) and ``neighbours`` (``file`` and ``similarity`` of the nearest
        images of the suggested class).
    n_checked : int
        Images the check covered.
    cv_accuracy : float or None
        Out-of-fold accuracy of the quick model on the given labels.
    skipped_classes : list of str
        Classes with fewer than ``N_FOLDS`` independent readable images
        (duplicate groups), not checked.
    left_out : list of (str, str)
        Images the quick model's loader cannot read (smaller than its
        ``min_size``, say), with the reason: not checked.
    """

    issues: list
    n_checked: int
    cv_accuracy: object = None
    skipped_classes: list = dataclasses.field(default_factory=list)
    left_out: list = dataclasses.field(default_factory=list)


def check_labels(paths, labels, groups, *, n_jobs=None, random_state=0,
                 copies=None):
    """Flag likely wrong labels with a quick grouped out-of-fold model.

    Parameters
    ----------
    paths : sequence of str
        Readable training images.
    labels : sequence of str
        Their classes.
    groups : array-like of int
        Their duplicate groups (images of one group share a fold).
    n_jobs : int, default=None
        Threads for loading and the feature blocks.
    random_state : int, default=0
        Seeds the folds.
    copies : array-like of bool or None, default=None
        Images that ``hybridclf augment`` generated from another image (its
        ``manifest.csv``): the model learns from them, but they are not
        checked, since each shares its photo's label and would repeat its
        flag. None: every image is checked.

    Returns
    -------
    check : LabelCheck
    """
    # an image the inspector decoded may still be refused by the loader (a
    # 1x1 photo, under its min_size): left out and named, not the end of
    # the inspection
    images, read, left_out = call_on_readable(
        lambda p: ImageLoader(size=QUICK_SIZE, n_jobs=n_jobs).fit_transform(p),
        list(paths))
    paths = np.asarray(paths, dtype=object)[read]
    labels, groups = np.asarray(labels)[read], np.asarray(groups)[read]
    classes = np.unique(labels)
    # copies count once: the grouped folds cannot split a class of N_FOLDS copies
    counts = np.array([len(np.unique(groups[labels == c])) for c in classes])
    skipped = sorted(classes[counts < N_FOLDS].tolist())
    kept = np.flatnonzero(~np.isin(labels, skipped))
    classes = classes[counts >= N_FOLDS]
    if len(classes) < 2:
        return LabelCheck([], 0, None, skipped, left_out)
    paths, labels = paths[kept], labels[kept]
    checked = (np.arange(len(kept)) if copies is None
               else np.flatnonzero(~np.asarray(copies, dtype=bool)[read][kept]))
    blocks = _features(images[kept], n_jobs)
    folds = StratifiedGroupKFold(N_FOLDS, shuffle=True, random_state=random_state)
    proba = _out_of_fold(blocks, labels, groups[kept], classes, folds)
    found = find_label_issues(labels[checked], proba[checked], classes)
    found["index"] = checked[found["index"]]
    embedding = normalize(np.hstack([StandardScaler().fit_transform(b)
                                     for b in blocks]))
    issues = [
        {"file": paths[i], "given_label": given, "suggested_label": suggested,
         "score": float(score),
         "neighbours": _neighbours(embedding, paths, labels, i, suggested)}
        for i, given, suggested, score in zip(
            found["index"], found["given_label"], found["suggested_label"],
            found["score"])
    ]
    accuracy = float(np.mean(classes[proba[checked].argmax(axis=1)]
                             == labels[checked]))
    logger.info("Label check: %d of %d images flagged (quick model, out-of-fold "
                "accuracy %.3f)", len(issues), len(checked), accuracy)
    return LabelCheck(issues, len(checked), accuracy, skipped, left_out)


def _features(images, n_jobs):
    """The raw features of each quick block, once per image."""
    out = []
    for name in QUICK_BLOCKS:
        block = FEATURE_BLOCKS[name]().set_params(n_jobs=n_jobs)
        out.append(block.fit(images[:1]).transform(images))
    return out


def _out_of_fold(blocks, labels, groups, classes, folds):
    """Out-of-fold probabilities: per fold, scalers and ridge on the training part."""
    ridge = get_classifier(make_hybrid_pipeline(features=list(QUICK_BLOCKS)))
    proba = np.zeros((len(labels), len(classes)))
    for train, test in folds.split(labels, labels, groups):
        scalers = [StandardScaler().fit(b[train]) for b in blocks]
        fit_x = np.hstack([s.transform(b[train]) for s, b in zip(scalers, blocks)])
        test_x = np.hstack([s.transform(b[test]) for s, b in zip(scalers, blocks)])
        # the ridge's leave-one-out (its penalty and calibration) leaves a
        # photo out with its duplicates, as the folds do
        clf = fit_classifier(clone(ridge), fit_x, labels[train], groups[train])
        columns = np.searchsorted(classes, clf.classes_)
        proba[np.ix_(test, columns)] = clf.predict_proba(test_x)
    return proba


def _neighbours(embedding, paths, labels, index, suggested):
    """The nearest images labelled ``suggested``: file and similarity."""
    candidates = np.flatnonzero(labels == suggested)
    candidates = candidates[candidates != index]
    similarity = embedding[candidates] @ embedding[index]
    best = np.argsort(-similarity, kind="stable")[:N_NEIGHBOURS]
    return [{"file": paths[candidates[j]], "similarity": float(similarity[j])}
            for j in best]
