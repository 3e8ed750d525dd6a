"""The scores of a test set's predictions.

:func:`reliability_bins` bins the top-class probabilities (the reliability
curve and the ECE); ``_metrics`` and ``_per_class`` score the predictions
(accuracy, top-k, log loss, per-class precision / recall / F1, the confusion
matrix); ``_block_importance`` permutes each feature block; ``_open_set``
counts the images the model's open-set thresholds call unknown.
"""

import warnings

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)

from ..prediction import confidence_limits, embedding_of, ood_scores

__all__ = ["FEW_TEST_IMAGES", "accuracy_interval", "few_test_images",
           "reliability_bins"]


def accuracy_interval(n_correct, n, *, n_groups=None, confidence=0.95):
    """The confidence interval of an accuracy measured on ``n`` test images.

    Wilson's score interval of a binomial proportion (scipy's
    ``binomtest(...).proportion_ci(method="wilson")``): an accuracy of 1.000
    on 13 images is 0.772 to 1.000 at 95%, on 35 images 0.900 to 1.000. It
    says how far the accuracy of the same model on other images of the same
    kind may be, from the test set's size alone.

    Near-identical photos of one object (a photo and its greyscale copy, two
    shots of one amulet) are not independent draws: the model gets them
    right or wrong together. Given the number of groups they fall in, the
    interval counts each group once (Wilson's interval of the accuracy over
    ``n_groups`` draws: the effective sample size of groups whose photos are
    alike), so that 8 photos in 4 pairs go as far as 4 photos: 1.000 is
    0.510 to 1.000, not 0.676 to 1.000.

    Parameters
    ----------
    n_correct : int
        Test images classified right.

    n : int
        Test images.

    n_groups : int or None, default=None
        The groups of near-identical photos the test images fall in; None
        (or ``n``) counts each image as one draw.

    confidence : float, default=0.95
        Confidence level.

    Returns
    -------
    interval : list of float
        ``[low, high]``; ``[0.0, 1.0]`` without test images.

    Examples
    --------
    >>> from hybridclf.evaluation import accuracy_interval
    >>> [round(v, 3) for v in accuracy_interval(33, 35)]
    [0.814, 0.984]
    >>> [round(v, 3) for v in accuracy_interval(8, 8, n_groups=4)]
    [0.51, 1.0]
    """
    if not n:
        return [0.0, 1.0]
    if n_groups is None or n_groups >= n:
        from scipy.stats import binomtest

        ci = binomtest(int(n_correct), int(n)).proportion_ci(confidence, "wilson")
        return [float(ci.low), float(ci.high)]
    from scipy.stats import norm

    # Wilson's score interval with the groups as the draws
    p, m = n_correct / n, int(n_groups)
    z2 = norm.ppf(0.5 + confidence / 2) ** 2
    centre = (p + z2 / (2 * m)) / (1 + z2 / m)
    half = np.sqrt(z2 * p * (1 - p) / m + z2 * z2 / (4 * m * m)) / (1 + z2 / m)
    return [float(max(0.0, centre - half)), float(min(1.0, centre + half))]


def reliability_bins(confidence, correct, *, n_bins=10):
    """Bin the top-class probabilities and measure the accuracy in each bin.

    Parameters
    ----------
    confidence : array-like of shape (n_samples,)
        Top-class probability of each prediction.

    correct : array-like of shape (n_samples,), dtype bool
        Whether each prediction is right.

    n_bins : int, default=10
        Equal-width bins over [0, 1].

    Returns
    -------
    bins : list of dict
        Per bin: ``low``, ``high``, ``count``, ``confidence`` (mean) and
        ``accuracy`` (None for empty bins).

    ece : float
        Expected calibration error: the count-weighted mean of
        ``|accuracy - confidence|``.

    Examples
    --------
    >>> from hybridclf.evaluation import reliability_bins
    >>> bins, ece = reliability_bins([0.95, 0.95, 0.55], [True, True, False],
    ...                              n_bins=2)
    >>> [b["count"] for b in bins], round(ece, 3)
    ([0, 3], 0.15)
    """
    confidence = np.asarray(confidence, dtype=float)
    correct = np.asarray(correct, dtype=bool)
    edges = np.linspace(0, 1, n_bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, n_bins - 1)
    bins, ece = [], 0.0
    for b in range(n_bins):
        mask = index == b
        count = int(mask.sum())
        conf = float(confidence[mask].mean()) if count else None
        acc = float(correct[mask].mean()) if count else None
        if count:
            ece += count / len(confidence) * abs(acc - conf)
        bins.append({"low": float(edges[b]), "high": float(edges[b + 1]),
                     "count": count, "confidence": conf, "accuracy": acc})
    return bins, float(ece)


def _true_rank(y, classes, proba):
    """(whether each true class is known, its column, its rank among guesses).

    An unknown class ranks after every guess (``len(classes)``), so it is never
    within a top-k.
    """
    order = np.argsort(-proba, axis=1)
    known = np.isin(y, classes)
    true_column = np.full(len(y), -1)
    true_column[known] = np.searchsorted(classes, y[known])
    rank = np.where(known, (order == true_column[:, None]).argmax(axis=1),
                    len(classes))
    return known, true_column, rank


def _metrics(y, classes, proba, *, top_k, n_bins):
    """The summary metrics and the reliability bins."""
    predicted = classes[proba.argmax(axis=1)]
    known, true_column, rank = _true_rank(y, classes, proba)
    with warnings.catch_warnings():
        # a model class without test images: the report lists it (absent_classes),
        # and the balanced accuracy averages the classes tested, as scikit-learn's
        warnings.filterwarnings("ignore", "y_pred contains classes not in y_true")
        # one test class, all right: scikit-learn's advice to pass 'labels' is
        # for its confusion matrix, which the balanced accuracy does not return
        warnings.filterwarnings("ignore", "A single label was found in 'y_true'")
        balanced = float(balanced_accuracy_score(y, predicted))
    metrics = {
        "accuracy": float(accuracy_score(y, predicted)),
        "balanced_accuracy": balanced,
        "f1_macro": float(f1_score(y, predicted, average="macro")),
    }
    for k in top_k:
        if k < len(classes):
            metrics[f"top_{k}_accuracy"] = float(np.mean(rank < k))
    bins, ece = reliability_bins(proba.max(axis=1), predicted == y, n_bins=n_bins)
    metrics["expected_calibration_error"] = ece
    metrics["log_loss"] = float(-np.mean(np.log(np.clip(
        proba[np.arange(len(y))[known], true_column[known]], 1e-15, 1)))) \
        if known.any() else None
    return metrics, bins


def _per_class(y, predicted, classes, groups=None):
    """Per-class precision, recall, F1 and support; the labels and confusion matrix.

    Classes of the test set that the model does not know come after its own.
    A class without test images has no recall (None); one that is also never
    predicted has no precision nor F1 either, as ``f1_macro`` leaves it out
    (a 0 there read as a class the model fails, and the rows' mean F1 was
    not the macro F1). ``recall_interval`` is the recall's 95% interval
    (:func:`accuracy_interval` over the class's test images, each group of
    ``groups`` counted once): a class of 4 photos with 1 tested read as
    "recall 1.000" beside an accuracy interval of the other classes' photos.
    """
    all_labels = list(classes) + sorted(set(y.tolist()) - set(classes.tolist()))
    precision, recall, f1, support = precision_recall_fscore_support(
        y, predicted, labels=all_labels, zero_division=0)
    seen = set(predicted.tolist())
    per_class = {}
    for c, p, r, f, s in zip(all_labels, precision, recall, f1, support):
        scored = s > 0 or c in seen
        mine = y == c
        n_groups = None if groups is None else len(set(np.asarray(groups)[mine]
                                                       .tolist()))
        per_class[str(c)] = {
            "precision": float(p) if scored else None,
            "recall": float(r) if s > 0 else None,
            "recall_interval": accuracy_interval(
                int((predicted[mine] == c).sum()), int(s), n_groups=n_groups)
            if s > 0 else None,
            "f1": float(f) if scored else None, "support": int(s)}
    return per_class, all_labels, confusion_matrix(y, predicted, labels=all_labels)


#: A test class with fewer images than this is named beside the scores.
FEW_TEST_IMAGES = 10


def few_test_images(counts):
    """The test classes with fewer than :data:`FEW_TEST_IMAGES` images.

    A class of 4 photos keeps 1 for the test part: its recall of 1.000, and
    the balanced accuracy and macro-F1 that average it, rest on that one
    photo.

    Parameters
    ----------
    counts : dict of str to int
        Test images of each class.

    Returns
    -------
    few : dict of str to int
        The classes with at least one and fewer than
        :data:`FEW_TEST_IMAGES` test images, with their counts.

    Examples
    --------
    >>> from hybridclf.evaluation import few_test_images
    >>> few_test_images({"a": 40, "b": 1, "c": 0})
    {'b': 1}
    """
    return {str(c): int(n) for c, n in counts.items() if 0 < n < FEW_TEST_IMAGES}


def _block_importance(clf, features, y, widths, *, n_repeats, random_state,
                      groups=None, confidence=0.95):
    """Permutation importance of whole blocks: shuffle the rows of its columns.

    The drop is from the accuracy of ``clf`` itself: a cascade's accuracy
    (its cheap stage answers some photos) is not the baseline of its full
    model's classifier.

    Each block gets ``mean`` (the accuracy drop, over the ``n_repeats``
    permutations), ``std`` (its spread over the permutations: how much the
    shuffle moves it) and ``interval``: how far it may move on other test
    photos of the same kind, the spread that matters on a small test set
    (on 8 photos one photo is 0.125 of accuracy; "hog 0.125" there read as a
    block that matters). It is the 95% interval of the mean of each test
    image's drop (right before, and the share of permutations that make it
    wrong), Student's t over the groups of ``groups`` (each group one draw,
    its photos' drops summed, as :func:`accuracy_interval` counts them; each
    image one draw without groups). With fewer than
    :data:`FEW_TEST_IMAGES` draws the interval is None: such a t interval
    is itself a guess (on 4 groups of photos that all stay right, it is 0.0
    to 0.0).
    """
    from scipy.stats import t as student

    rng = np.random.RandomState(random_state)
    n = len(y)
    right = clf.predict(features) == y
    draws = np.unique(np.arange(n) if groups is None else np.asarray(groups),
                      return_inverse=True)[1].ravel()
    m = int(draws.max()) + 1 if n else 0
    importance, start = {}, 0
    for name, width in widths.items():
        wrong = np.zeros(n)  # per image: the share of permutations it is lost in
        drops = []
        for _ in range(n_repeats):
            shuffled = features.copy()
            shuffled[:, start : start + width] = features[rng.permutation(n),
                                                          start : start + width]
            permuted = clf.predict(shuffled) == y
            drops.append(right.mean() - permuted.mean())
            wrong += (right.astype(float) - permuted) / n_repeats
        interval = None
        if m >= FEW_TEST_IMAGES:
            # the mean drop as a ratio of group sums; its cluster-robust error
            mean = wrong.mean()
            residual = np.bincount(draws, wrong - mean, minlength=m)
            error = np.sqrt(m / (m - 1) * np.sum(residual ** 2)) / n
            half = student.ppf(0.5 + confidence / 2, m - 1) * error
            interval = [float(max(-1.0, mean - half)), float(min(1.0, mean + half))]
        importance[name] = {"mean": float(np.mean(drops)), "std": float(np.std(drops)),
                            "interval": interval, "n_features": int(width)}
        start += width
    return importance


def _open_set(pipe, proba, features, widths, y, classes, model_info, novelty):
    """With the model's open-set thresholds: the images answered unknown.

    The novelty check (with its index) replaces the per-block OOD check of
    ``model_info`` when given. Besides the shares over all images, the
    images answered unknown are counted per test class, and
    ``open_set_accuracy`` scores the answers as ``hybridclf predict`` gives
    them: a photo of a class the model does not know is answered right by
    "unknown", one of its classes by its class. Without them, ten photos of
    an unknown class of which none was rejected read as an open-set check
    that caught one wrong answer in eleven.
    """
    thresholds = (model_info or {}).get("open_set") or {}
    if not thresholds:
        return {}
    scores = None
    if novelty:
        from ..neighbours import novelty_scores

        scores = novelty_scores(novelty["index"], embedding_of(pipe, features),
                                k=novelty.get("k", 1)) / novelty["threshold"]
        rejected = scores > 1.0
    elif thresholds.get("ood_thresholds"):
        rejected = ood_scores(features, list(widths.items()),
                              thresholds["ood_thresholds"]) > 1.0
    else:
        rejected = np.zeros(len(proba), dtype=bool)
    # the confidence threshold scaled by the novelty, as predict does
    rejected |= proba.max(axis=1) < confidence_limits(
        thresholds.get("proba_threshold", 0.0), scores)
    known = np.isin(y, classes)
    correct = classes[proba.argmax(axis=1)] == y
    answered_right = np.where(known, correct & ~rejected, rejected)
    by_class = {str(c): {"n_images": int((y == c).sum()),
                         "n_unknown": int(rejected[y == c].sum())}
                for c in [*classes, *sorted(set(y[~known].tolist()))]}
    return {
        **{k: thresholds[k] for k in ("proba_threshold", "ood_thresholds")
           if k in thresholds and not (novelty and k == "ood_thresholds")},
        **({"novelty_threshold": novelty["threshold"]} if novelty else {}),
        "unknown_share": float(rejected.mean()),
        "accuracy_of_accepted": float(correct[~rejected].mean())
        if (~rejected).any() else None,
        "wrong_share_rejected": float(rejected[~correct].mean())
        if (~correct).any() else None,
        "open_set_accuracy": float(answered_right.mean()),
        "unknown_class_share_rejected": float(rejected[~known].mean())
        if (~known).any() else None,
        "unknown_by_class": by_class,
    }
