"""The open-set checks: their scores, the confidence limit, their thresholds.

The reasons an image is unknown (:data:`NOVEL`, :data:`LOW_CONFIDENCE`); the
per-block out-of-distribution scores of models trained before the novelty
check (:func:`block_ood_scores`, :func:`ood_scores`); the confidence
threshold scaled by the novelty (:func:`confidence_limits`); and the
thresholds and index a model directory holds (:func:`read_open_set`).
"""

import logging
import os
from numbers import Integral, Real

import numpy as np

from ..exceptions import ModelLoadError

__all__ = ["LOW_CONFIDENCE", "NOVEL", "UNKNOWN", "block_ood_scores",
           "confidence_limits", "ood_scores", "read_open_set"]

logger = logging.getLogger(__name__)

#: The label given to images that the open-set checks reject.
UNKNOWN = "unknown"
#: Why an image is unknown: its embedding is unlike every training photo.
NOVEL = "unlike any training photo"
#: Why an image is unknown: the top class probability is under the threshold.
LOW_CONFIDENCE = "low confidence"


def block_ood_scores(features, blocks):
    """Out-of-distribution score of each row in each feature block.

    The mean of the squared standardised features of the block: about 1 for
    an image like the training images, larger for one unlike them all.

    Parameters
    ----------
    features : ndarray of shape (n_samples, n_features)
        Output of the pipeline's ``features`` step (every block standardised
        on the training images), as from :func:`transform_features`.

    blocks : list of (str, int)
        Block names and widths, as from :func:`feature_blocks`.

    Returns
    -------
    scores : ndarray of shape (n_samples, n_blocks)
        The scores.

    Examples
    --------
    >>> import numpy as np
    >>> from hybridclf.prediction import block_ood_scores
    >>> block_ood_scores(np.array([[1.0, -1.0, 4.0]]), [("a", 2), ("b", 1)])
    array([[ 1., 16.]])
    """
    features = np.asarray(features, dtype=np.float64)
    out, start = [], 0
    for _, width in blocks:
        out.append(np.mean(features[:, start : start + width] ** 2, axis=1))
        start += width
    return np.stack(out, axis=1)


def ood_scores(features, blocks, thresholds):
    """Out-of-distribution score: the largest block score over its threshold.

    Each block is compared with its own threshold, so that a block of few
    informative columns (a colour histogram whose bins were all empty in
    training) is not drowned by a long one. Above 1 means out of
    distribution.

    Parameters
    ----------
    features : ndarray of shape (n_samples, n_features)
        Output of the pipeline's ``features`` step.

    blocks : list of (str, int)
        Block names and widths, as from :func:`feature_blocks`.

    thresholds : dict of str to float
        The largest in-distribution score of each block (``hybridclf train``
        stores them in ``model.json`` under ``open_set``).

    Returns
    -------
    scores : ndarray of shape (n_samples,)
        The scores.
    """
    per_block = block_ood_scores(features, blocks)
    limits = np.array([thresholds[name] for name, _ in blocks], dtype=np.float64)
    # NaN: a block that did not run (a cascade's early exit) is not scored
    return np.nanmax(per_block / np.maximum(limits, 1e-12), axis=1)


def confidence_limits(proba_threshold, novelty=None):
    """The top probability each image needs not to be "low confidence".

    The confidence threshold scaled by the image's novelty score over the
    novelty threshold, at most 1: a photo at the novelty threshold needs the
    whole ``proba_threshold``, a copy of a training photo nothing. Photos
    of known classes taken tilted, brighter or compressed stay close to a
    training photo (or to one of its views in the index) while the
    classifier may hesitate; a photo of an unknown class is further from
    every training photo, so it still needs nearly the whole threshold.

    Parameters
    ----------
    proba_threshold : float
        The confidence threshold (``open_set["proba_threshold"]`` of
        ``model.json``, ``hybridclf predict --threshold``, the service's
        ``confidence_threshold``).

    novelty : array-like of shape (n_samples,) or None, default=None
        Each image's novelty score over the novelty threshold (the
        ``scores`` of :func:`predict_open_set` with the novelty check). None,
        or NaN for an image, leaves the threshold as it is: models without
        the novelty check compare the top probability with it directly.

    Returns
    -------
    limits : float or ndarray of shape (n_samples,)
        Images whose top probability is below their limit are unknown.

    Examples
    --------
    >>> import numpy as np
    >>> from hybridclf.prediction import confidence_limits
    >>> confidence_limits(0.5, [0.2, 1.0, 3.0, np.nan]).tolist()
    [0.1, 0.5, 0.5, 0.5]
    >>> confidence_limits(0.5)
    0.5
    """
    if novelty is None:
        return proba_threshold
    novelty = np.asarray(novelty, dtype=np.float64)
    scale = np.where(np.isnan(novelty), 1.0, np.clip(novelty, 0.0, 1.0))
    return proba_threshold * scale


def read_open_set(info, directory=None):
    """The open-set checks of a model, as keyword arguments of prediction.

    Parameters
    ----------
    info : dict
        The model's ``model.json``, as from
        :func:`~hybridclf.persistence.read_model_info`.

    directory : str, os.PathLike or None, default=None
        The model directory, where the embedding index of the novelty check
        is read; None leaves the novelty check out.

    Returns
    -------
    options : dict
        ``proba_threshold``, ``ood_thresholds`` and ``novelty`` for
        :func:`predict_open_set`: the novelty check with the index when the
        model has one, else the per-block OOD check of older models.

    Examples
    --------
    >>> from hybridclf.prediction import read_open_set
    >>> read_open_set({"open_set": {"proba_threshold": 0.4}})
    {'proba_threshold': 0.4, 'ood_thresholds': None, 'novelty': None}
    """
    from ..neighbours import INDEX_FILE, EmbeddingIndex

    open_set = _checked_open_set(info.get("open_set") or {})
    options = {"proba_threshold": open_set.get("proba_threshold", 0.0),
               "ood_thresholds": open_set.get("ood_thresholds"), "novelty": None}
    novelty = open_set.get("novelty")
    if not novelty or directory is None:
        return options
    index = EmbeddingIndex.load(directory)
    if index is not None:
        options["novelty"] = {**novelty, "index": index}
        options["ood_thresholds"] = None
    else:
        logger.warning("%s has no embedding index (%s): the 'unlike any training "
                       "photo' check uses the per-block OOD scores instead; "
                       "retrain to restore it", os.fspath(directory), INDEX_FILE)
    return options


def _number(value, low=-np.inf, high=np.inf):
    return (isinstance(value, Real) and not isinstance(value, bool)
            and low <= value <= high)


def _checked_open_set(open_set):
    """The ``open_set`` entry of a model.json, its values checked.

    A hand-edited model.json (a model saved before manifests has its
    model.json unchecked) otherwise failed deep in a prediction with a numpy
    error, and an ``/admin/reload`` answered 500.
    """
    def refuse(entry, value, kind):
        return ModelLoadError(
            f"The '{entry}' entry of model.json must be {kind}. Got "
            f"{value!r} instead. Restore the model directory's model.json or "
            "retrain the model.")

    if not isinstance(open_set, dict):
        raise refuse("open_set", open_set, "an object")
    threshold = open_set.get("proba_threshold", 0.0)
    if not _number(threshold, 0.0, 1.0):
        raise refuse("open_set.proba_threshold", threshold, "a number in [0, 1]")
    ood = open_set.get("ood_thresholds")
    if ood is not None and not (isinstance(ood, dict)
                                and all(_number(v) for v in ood.values())):
        raise refuse("open_set.ood_thresholds", ood, "null or an object of numbers")
    novelty = open_set.get("novelty")
    if novelty and not (isinstance(novelty, dict)
                        and _number(novelty.get("threshold"), 0.0)
                        and isinstance(novelty.get("k", 1), Integral)
                        and novelty.get("k", 1) >= 1):
        raise refuse("open_set.novelty", novelty,
                     "null or an object with a 'threshold' >= 0 and a 'k' >= 1")
    return open_set
