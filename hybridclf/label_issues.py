"""Likely wrong labels, from out-of-fold probabilities (confident learning).

A label is suspect when a model that never saw the image gives its class a
low probability and another class a high one, more than the model's own
confusion between the two classes explains. That is confident learning
(Northcutt et al., 2021), which :mod:`cleanlab` implements; this module feeds
it the grouped out-of-fold probabilities that training computes anyway and
turns its answer into rows a person can check: the file, its label, the class
the model suggests, and a score. The default filter, cleanlab's
"low_self_confidence", is computed here with cleanlab's steps, without
importing it (which imports pandas): the same rows, a test checks.

:func:`find_label_issues` ranks the images; :func:`label_issues_csv` writes
them as ``label_issues.csv`` (a file of every model directory that
``hybridclf train`` writes, and of ``hybridclf inspect --labels``).

The probabilities must be out-of-fold, and the folds grouped by
near-duplicates: with a copy of an image in the training fold, the model
learns the copy's label, right or wrong, and the wrong one goes unnoticed.

References
----------
.. [1] C. Northcutt, L. Jiang and I. Chuang, "Confident Learning: Estimating
   Uncertainty in Dataset Labels", Journal of Artificial Intelligence
   Research 70, 2021, pp. 1373-1411.
"""

import io
import logging

import numpy as np

from .utils import import_or_raise
from .utils._csv import csv_writer

__all__ = ["LABEL_ISSUES_COLUMNS", "LABEL_ISSUES_FILE", "find_label_issues",
           "label_issues_csv"]

logger = logging.getLogger(__name__)

#: Name of the file of likely wrong labels in a model directory.
LABEL_ISSUES_FILE = "label_issues.csv"

#: Its columns, in order.
LABEL_ISSUES_COLUMNS = ("file", "given_label", "suggested_label", "score")

# cleanlab's constants (cleanlab.internal.constants)
_TOLERANCE = 1e-6
_MIN_THRESHOLD = 2 * _TOLERANCE

_FILTERS = ("low_self_confidence", "low_normalized_margin", "prune_by_noise_rate",
            "prune_by_class", "both", "confident_learning", "predicted_neq_given")


def find_label_issues(labels, pred_proba, classes, *,
                      filter_by="low_self_confidence"):
    """Rank the images whose label the out-of-fold predictions contradict.

    Parameters
    ----------
    labels : array-like of shape (n_samples,)
        The given labels, each one of ``classes``.

    pred_proba : array-like of shape (n_samples, n_classes)
        Out-of-fold probabilities (every row predicted by a model that was not
        fitted on it, nor on a near-duplicate of it), columns in the order of
        ``classes``.

    classes : array-like of shape (n_classes,)
        The class labels of the columns.

    filter_by : str, default="low_self_confidence"
        How cleanlab decides which labels are issues
        (``cleanlab.filter.find_label_issues``): "low_self_confidence" (as
        many as confident learning estimates are wrong in each class, the
        lowest probabilities of the given label), "low_normalized_margin",
        "prune_by_noise_rate", "prune_by_class", "both",
        "confident_learning", or "predicted_neq_given" (every image whose most
        probable class is not its label); those two run without importing
        cleanlab. On amulet6 with 5% of the labels moved at random,
        "low_self_confidence" found 80% of them with a precision of 0.93,
        against 0.78 and 0.86 for cleanlab's default "prune_by_noise_rate"
        (``benchmarks/bench_label_issues.py``, which
        compares them all).

    Returns
    -------
    issues : dict of ndarray
        ``index`` (rows of ``labels``, most suspicious first),
        ``given_label``, ``suggested_label`` (the most probable class other
        than the given one) and ``score`` (cleanlab's self-confidence: the
        out-of-fold probability of the given label; the lower, the more likely
        wrong), all of length ``n_flagged``.

    Raises
    ------
    ValueError
        When the shapes disagree, a label is not among ``classes``, or
        ``filter_by`` is unknown.

    Examples
    --------
    >>> import numpy as np
    >>> from hybridclf.label_issues import find_label_issues
    >>> proba = np.array([[0.9, 0.1]] * 10 + [[0.1, 0.9]] * 10 + [[0.05, 0.95]])
    >>> labels = ["cat"] * 10 + ["dog"] * 10 + ["cat"]
    >>> issues = find_label_issues(labels, proba, ["cat", "dog"])
    >>> issues["index"].tolist(), issues["suggested_label"].tolist()
    ([20], ['dog'])
    """
    if filter_by not in _FILTERS:
        raise ValueError(
            "The 'filter_by' parameter of find_label_issues must be a str among "
            f"{list(_FILTERS)}. Got {filter_by!r} instead.")
    labels, classes = np.asarray(labels), np.asarray(classes)
    proba = np.asarray(pred_proba, dtype=float)
    if proba.shape != (len(labels), len(classes)):
        raise ValueError(
            f"The 'pred_proba' parameter of find_label_issues must have the shape "
            f"(n_samples, n_classes) = ({len(labels)}, {len(classes)}) of "
            f"'labels' and 'classes'. Got {proba.shape} instead.")
    codes = _encode(labels, classes)
    index = _flag(codes, proba, filter_by)
    own = proba[index, codes[index]]
    others = proba[index].copy()
    others[np.arange(len(index)), codes[index]] = -np.inf
    return {
        "index": index,
        "given_label": labels[index],
        "suggested_label": classes[others.argmax(axis=1)],
        "score": own,
    }


def _encode(labels, classes):
    codes = np.searchsorted(classes, labels) if len(classes) else np.zeros(0, int)
    codes = np.minimum(codes, max(len(classes) - 1, 0))
    unknown = classes[codes] != labels if len(labels) else np.zeros(0, bool)
    if np.any(unknown):
        raise ValueError(
            "Every label passed to find_label_issues must be one of 'classes' "
            f"(sorted). Got {labels[unknown][0].item()!r}, which is not among "
            f"{classes.tolist()!r}.")
    return codes


def _flag(codes, proba, filter_by):
    """Indices of the flagged rows, lowest self-confidence first."""
    n_classes = proba.shape[1]
    if len(codes) == 0 or n_classes < 2:
        return np.zeros(0, dtype=int)
    if filter_by == "predicted_neq_given":
        flagged = np.flatnonzero(proba.argmax(axis=1) != codes)
    else:
        # cleanlab wants probabilities that sum to 1
        proba = proba / np.maximum(proba.sum(axis=1, keepdims=True), 1e-12)
        if filter_by == "low_self_confidence":
            flagged = _low_self_confidence(codes, proba)
        else:
            flt = import_or_raise("cleanlab.filter", "find_label_issues")
            mask = flt.find_label_issues(codes, proba, filter_by=filter_by,
                                         n_jobs=1)
            flagged = np.flatnonzero(mask)
    order = np.argsort(proba[flagged, codes[flagged]], kind="stable")
    return flagged[order]


def _low_self_confidence(codes, proba):
    """cleanlab's ``filter_by="low_self_confidence"``, without importing it.

    The same steps as ``cleanlab.filter.find_label_issues`` (2.x) with that
    filter: the number of issues is the count of confident off-diagonal rows
    (``cleanlab.count.num_label_issues``: a row is confident for a class when
    its probability reaches the mean probability of the class over the rows
    labelled with it; with several, the most probable wins), less the rows
    whose given label is, within 1e-6, the most probable; the rows flagged are
    that many of the lowest probability of the given label, in the order of
    ``np.argsort``. The default training needs only this filter, and
    importing cleanlab imports pandas (0.3 s of CPU time, a tenth of a warm
    retraining's); ``tests/test_label_issues.py`` checks that both flag the
    same rows.
    """
    rows = np.arange(len(codes))
    present = np.bincount(codes, minlength=proba.shape[1]) > 0
    thresholds = np.full(proba.shape[1], 2.0)  # cleanlab's for an absent class
    for k in np.flatnonzero(present):
        thresholds[k] = np.mean(proba[codes == k, k])
    thresholds = np.clip(thresholds, _MIN_THRESHOLD, None)
    confident = proba >= thresholds - _TOLERANCE
    n_confident = confident.sum(axis=1)
    guess = np.where(n_confident > 1, proba.argmax(axis=1),
                     confident.argmax(axis=1))
    off_diagonal = (n_confident > 0) & (guess != codes)
    nudged = proba.copy()
    nudged[rows, codes] += _TOLERANCE
    off_diagonal &= nudged.argmax(axis=1) != codes
    n_issues = int(off_diagonal.sum())
    return np.sort(np.argsort(proba[rows, codes])[:n_issues])


def label_issues_csv(issues, files):
    """The text of ``label_issues.csv``: one row per flagged image.

    Parameters
    ----------
    issues : dict of ndarray
        What :func:`find_label_issues` returned.

    files : sequence of str
        The file name of every row of the ``labels`` given to
        :func:`find_label_issues` (relative to the data folder, so that the
        list means the same on another machine).

    Returns
    -------
    text : str
        CSV with the columns :data:`LABEL_ISSUES_COLUMNS`, most suspicious
        first; the score has 4 decimals.
    """
    out = io.StringIO()
    writer = csv_writer(out, lineterminator="\n")
    writer.writerow(LABEL_ISSUES_COLUMNS)
    for i, given, suggested, score in zip(issues["index"], issues["given_label"],
                                          issues["suggested_label"],
                                          issues["score"]):
        writer.writerow([files[i], given, suggested, f"{score:.4f}"])
    return out.getvalue()
