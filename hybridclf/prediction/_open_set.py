"""Predicting with the open-set checks: a class, or "unknown" with its reason.

:func:`predict_open_set` and :func:`predict_with_reasons` predict images;
:func:`open_set_answers` turns features and probabilities into the answers
(novelty, confidence, neighbours), as the service does stage by stage. The
photo quality is measured on each photo as the loader decodes it.
"""

import numpy as np

from ..pipeline import get_classifier, get_loader
from ..quality import quality_answer, read_quality
from ._checks import (
    LOW_CONFIDENCE,
    NOVEL,
    UNKNOWN,
    confidence_limits,
    ood_scores,
)
from ._embedding import embedding_of
from ._features import feature_blocks, transform_features

__all__ = ["open_set_answers", "predict_open_set", "predict_with_reasons"]

def predict_open_set(pipe, X, *, proba_threshold=0.0, ood_thresholds=None,
                     novelty=None, unknown=UNKNOWN):
    """Predict classes, answering ``unknown`` for images unlike every class.

    Parameters
    ----------
    pipe : fitted Pipeline
        A hybrid pipeline whose classifier has ``predict_proba``.

    X : sequence of images or paths
        What ``pipe.predict`` takes.

    proba_threshold : float, default=0.0
        Images whose top class probability is below it are unknown ("low
        confidence"); with ``novelty``, it is scaled by each image's novelty
        score (:func:`confidence_limits`). 0 turns the check off.

    ood_thresholds : dict of str to float or None, default=None
        Per feature block, the largest in-distribution score (see
        :func:`ood_scores`); images above any are unknown. None turns the
        check off. Models trained before the novelty check had only this one;
        it is ignored when ``novelty`` is given.

    novelty : dict or None, default=None
        The novelty check ("unlike any training photo"): ``index`` (an
        :class:`~hybridclf.neighbours.EmbeddingIndex` of the training
        embeddings), ``threshold`` and ``k``, as :func:`read_open_set`
        reads them from a model directory. Images whose novelty score (see
        :func:`~hybridclf.neighbours.novelty_scores`) is above the threshold
        are unknown. None turns the check off.

    unknown : str, default="unknown"
        The label given to rejected images.

    Returns
    -------
    labels : ndarray of shape (n_samples,), dtype object
        The predicted class, or ``unknown``.

    proba : ndarray of shape (n_samples, n_classes)
        The class probabilities (columns in ``pipe.classes_`` order).

    scores : ndarray of shape (n_samples,)
        The novelty (or, without it, out-of-distribution) score over its
        threshold: above 1 means unlike the training images. NaN when
        neither check is on.

    See Also
    --------
    predict_with_reasons : The same, with the reason of each "unknown" and
        the photo quality.
    """
    result = predict_with_reasons(pipe, X, proba_threshold=proba_threshold,
                                  ood_thresholds=ood_thresholds, novelty=novelty,
                                  unknown=unknown)
    return result["labels"], result["proba"], result["scores"]


def predict_with_reasons(pipe, X, *, proba_threshold=0.0, ood_thresholds=None,
                         novelty=None, quality=False, neighbours=0, index=None,
                         unknown=UNKNOWN):
    """Predict classes with the reason of each "unknown" and the photo quality.

    An image is "unknown" for one of two reasons, given in words:

    - :data:`NOVEL` ("unlike any training photo"): its CNN embedding is
      further from every training photo than the novelty threshold (or, for
      a model without novelty, a block's OOD score is over its threshold);
      the photo shows something the model was not trained on;
    - :data:`LOW_CONFIDENCE` ("low confidence"): it resembles the training
      photos, but the classifier hesitates between classes: its top
      probability is under the confidence threshold scaled by its novelty
      (:func:`confidence_limits`).

    The quality of the photo (:func:`hybridclf.quality.photo_quality`) is
    returned beside the class and never changes it: a blurred photo of a
    known amulet keeps its class, with the issue ``"blurry"``.

    Parameters
    ----------
    pipe, X, proba_threshold, ood_thresholds, novelty, unknown
        As in :func:`predict_open_set`.

    quality : bool, default=False
        Also measure the quality of each photo, as the pipeline's loader
        decodes it (:meth:`~hybridclf.io.ImageLoader.read_measured`).

    neighbours : int, default=0
        Also find the nearest training photos of each image, this many
        (:meth:`~hybridclf.neighbours.EmbeddingIndex.neighbours`), from the
        embedding computed for the answer.

    index : EmbeddingIndex or None, default=None
        The index they come from; None takes the novelty check's.

    Returns
    -------
    result : dict
        ``labels``, ``proba``, ``scores`` (as from :func:`predict_open_set`),
        ``reasons`` (list of str: ``""`` for a known answer, else
        :data:`NOVEL` or :data:`LOW_CONFIDENCE`), ``quality`` (list of
        ``{"ok": bool, "issues": [...]}``, or None without ``quality``) and
        ``neighbours`` (per image, a list of dicts ``label``,
        ``similarity``, ``file``, ``thumbnail``; None when ``neighbours`` is
        0). A cascade runs every block when neighbours are asked for: they
        come from the CNN's embedding (its answers are then the full
        model's).
    """
    qualities = None
    if quality:
        X, qualities = _load_with_quality(pipe, X)
    if hasattr(pipe, "predict_stages"):
        # a cascade: the blocks that did not run on a photo are NaN there;
        # neighbours come from the CNN's embedding, so every block runs then
        # photos the cheap stage is less sure of than proba_threshold go on
        # to the full model, which may be sure enough
        features, proba, _ = pipe.predict_stages(
            X, full=np.full(len(X), True) if neighbours else None,
            min_confidence=proba_threshold)
    else:
        features = transform_features(pipe, X)
        proba = get_classifier(pipe).predict_proba(features)
    result = open_set_answers(pipe, features, proba,
                              proba_threshold=proba_threshold,
                              ood_thresholds=ood_thresholds, novelty=novelty,
                              neighbours=neighbours, index=index, unknown=unknown)
    result["quality"] = qualities
    return result


def open_set_answers(pipe, features, proba, *, proba_threshold=0.0,
                     ood_thresholds=None, novelty=None, neighbours=0, index=None,
                     unknown=UNKNOWN):
    """The answers of :func:`predict_with_reasons`, from the features.

    Parameters
    ----------
    pipe : fitted Pipeline
        A hybrid pipeline.

    features : ndarray of shape (n_samples, n_features)
        As from :func:`transform_features`; a cascade's photos answered
        early have NaN in the blocks that did not run (:func:`iter_stages`).
        Their novelty is not measured (score NaN; the cascade's gate
        admitted them as like the training photos) and they have no
        neighbours (empty lists).

    proba : ndarray of shape (n_samples, n_classes)
        The class probabilities.

    proba_threshold, ood_thresholds, novelty, neighbours, index, unknown
        As in :func:`predict_with_reasons`.

    Returns
    -------
    result : dict
        ``labels``, ``proba``, ``scores``, ``reasons`` and ``neighbours``, as
        from :func:`predict_with_reasons`.
    """
    if index is None and novelty:
        index = novelty["index"]
    if neighbours and index is None:
        raise ValueError(
            f"predict_with_reasons got neighbours={neighbours!r} but no embedding "
            "index; pass index=EmbeddingIndex.load(model_dir) or the novelty "
            "check of read_open_set."
        )
    clf = get_classifier(pipe)
    labels = np.asarray(clf.classes_, dtype=object)[proba.argmax(axis=1)]
    scores = np.full(len(labels), np.nan)
    embeddings = embedding_of(pipe, features) if novelty or neighbours else None
    near = None
    if novelty:
        from ..neighbours import novelty_and_neighbours, novelty_scores

        distance = np.full(len(labels), np.nan)
        ran = np.isfinite(embeddings).all(axis=1)  # not a cascade's early answer
        if ran.all() and neighbours and index is novelty["index"]:
            # one search for both
            distance, near = novelty_and_neighbours(
                index, embeddings, novelty_k=novelty.get("k", 1), k=neighbours)
        elif ran.any():
            distance[ran] = novelty_scores(novelty["index"], embeddings[ran],
                                           k=novelty.get("k", 1))
        scores = distance / max(float(novelty["threshold"]), 1e-12)
    elif ood_thresholds:
        scores = ood_scores(features, feature_blocks(pipe), ood_thresholds)
    novel = scores > 1.0  # False where NaN
    low = proba.max(axis=1) < confidence_limits(proba_threshold,
                                                scores if novelty else None)
    reasons = [NOVEL if n else LOW_CONFIDENCE if lo else ""
               for n, lo in zip(novel, low)]
    labels[novel | low] = unknown
    return {"labels": labels, "proba": proba, "scores": scores,
            "reasons": reasons,
            "neighbours": near if near is not None else
            index.neighbours(embeddings, neighbours) if neighbours else None}


def _load_with_quality(pipe, X):
    """The photos decoded once: as the pipeline loads them, and their quality.

    The quality is measured on each photo as decoded, before the loader
    resizes it for the model; the loaded images then pass through the
    pipeline (its loader leaves images of its size as they are).
    """
    loader = get_loader(pipe)
    if loader is None:  # X holds images already: nothing is decoded
        return X, [read_quality(item) for item in X]
    return loader.read_measured(X, quality_answer)
