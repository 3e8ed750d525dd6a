"""From request images to answers: one model call for a batch of images.

The model answers each readable image of a request with an
:class:`ItemResult`. No exception travels between the images of a batch: an
unreadable image is a result like the others, so the rest of its batch is
predicted in the same model call. :func:`classify_stages` hands the answers
on as they are ready: a cascade's early answers before the CNN has run on the
other photos. The images of a request (:class:`Upload`) are decoded in
:mod:`hybridclf.serve._uploads`; a result becomes the JSON of a prediction in
:mod:`hybridclf.serve._answers` (:func:`prediction_body`); those names stay
importable from here. This module does not import FastAPI.
"""

import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np

from .. import prediction
from ..pipeline import get_loader
from ..quality import quality_answer
from ._answers import class_names, neighbour_answers, prediction_body
from ._uploads import Upload, decode_base64, decode_uploads

__all__ = ["ItemResult", "Upload", "class_names", "classify", "classify_stages",
           "decode_base64", "decode_uploads", "neighbour_answers",
           "prediction_body", "read_images"]


@dataclass(frozen=True)
class ItemResult:
    """What the model says about one image, or why it could not read it.

    Attributes
    ----------
    label : str or None
        The class, or "unknown" from the novelty (or out-of-distribution)
        check.

    proba : ndarray of shape (n_classes,) or None
        The class probabilities.

    reason : str
        Why ``label`` is "unknown" (:data:`~hybridclf.prediction.NOVEL`), or
        "" (the probability threshold is each request's).

    novelty : float
        The novelty score over its threshold, which scales each request's
        probability threshold (:func:`~hybridclf.prediction.confidence_limits`);
        NaN without the novelty check.

    quality : dict or None
        The photo quality, ``{"ok": bool, "issues": [...]}``
        (:func:`~hybridclf.quality.quality_answer`).

    error : str or None
        Why the image could not be decoded (then ``label`` is None).

    neighbours : list of dict
        The nearest training photos asked for, most similar first (see
        :func:`neighbour_answers`); empty when none were asked for or the
        model has no embedding index.

    early : bool
        Answered by a cascade's cheap stage, without the CNN (so without
        novelty score or neighbours, which need its embedding).

    seconds : float
        From the start of the model call this image was part of to its
        answer.
    """

    label: str | None = None
    proba: np.ndarray | None = None
    reason: str = ""
    novelty: float = float("nan")
    quality: dict | None = None
    error: str | None = None
    neighbours: list = field(default_factory=list)
    early: bool = False
    seconds: float = 0.0


def read_images(pipe, items):
    """Decode and resize images for ``pipe``; the quality of each as decoded.

    The first part of :func:`classify_stages`, which the service runs in the
    request's own thread (see ``Service.predict``), so that a costly image
    (tens of megapixels) never holds up the model calls of other requests.

    Parameters
    ----------
    pipe : fitted Pipeline
        The served model; its loader decodes.

    items : list of bytes
        Encoded image files.

    Returns
    -------
    images : ndarray of shape (n_read, height, width, 3)
        The readable images, resized for the model, in order.

    reasons : list of str or None
        One per item: why it could not be read, or None.

    qualities : list of dict
        The photo quality of each readable image, in the order of ``images``.
    """
    # the quality is measured on each photo as decoded, not on the copy
    # resized for the model
    return get_loader(pipe).read_each(items, measure=quality_answer)


def classify_stages(pipe, items, *, ood_thresholds=None, novelty=None, index=None,
                    neighbours=None, read=None, thresholds=None):
    """Decode every image, predict the readable ones; yield answers when ready.

    The images are predicted in one model call. A cascade answers the photos
    its cheap stage is sure of first: their answers (and those of the
    unreadable images) are yielded before the CNN runs on the others (see
    :func:`~hybridclf.prediction.iter_stages`). A photo whose neighbours are
    asked for runs the CNN: they come from its embedding.

    Parameters
    ----------
    pipe : fitted Pipeline
        The served model.

    items : list of bytes or None
        Encoded image files (of one or several requests); None with ``read``.

    ood_thresholds, novelty : dict or None, default=None
        The "unlike any training photo" check (see
        :func:`~hybridclf.prediction.predict_with_reasons`); "unknown" from
        the probability threshold is left to each request.

    index : EmbeddingIndex or None, default=None
        The model's index of its training photos, for ``neighbours``; None
        answers none.

    neighbours : list of int or None, default=None
        How many nearest training photos each item asked for (0: none);
        None asks for none.

    read : tuple or None, default=None
        What :func:`read_images` answered for ``items``, when they are
        decoded already; they are not decoded again.

    thresholds : list of float or None, default=None
        The confidence threshold each item's answer will be held to (its
        request's ``confidence_threshold``): a cascade answers an item early
        only when its cheap stage is that sure, else its full model answers
        (:func:`~hybridclf.prediction.iter_stages`). None: the cascade's
        own threshold alone.

    Yields
    ------
    ready : dict of int to ItemResult
        Item positions and their results, with the photo quality of each
        readable one; together the dicts cover every item once.
    """
    start = time.perf_counter()
    images, reasons, qualities = read if read is not None else read_images(pipe,
                                                                           items)
    readable = np.flatnonzero([reason is None for reason in reasons])
    asked = neighbours if neighbours and index is not None else [0] * len(reasons)
    ks = np.array([asked[i] for i in readable], dtype=int)
    ready = {i: ItemResult(error=reason) for i, reason in enumerate(reasons)
             if reason is not None}
    least = None if thresholds is None else np.array(
        [thresholds[i] for i in readable], dtype=np.float64)
    stages = prediction.iter_stages(pipe, images, full=ks > 0, min_confidence=least)
    for rows, features, proba, early in stages if len(images) else ():
        # the neighbours come from the embedding computed for the answer
        result = prediction.open_set_answers(
            pipe, features, proba, ood_thresholds=ood_thresholds, novelty=novelty,
            neighbours=int(ks[rows].max()), index=index)
        found = neighbour_answers(result["neighbours"], ks[rows].tolist())
        for k, row in enumerate(rows):
            ready[int(readable[row])] = ItemResult(
                label=result["labels"][k], proba=proba[k],
                reason=result["reasons"][k], early=early,
                novelty=float(result["scores"][k]) if novelty else float("nan"),
                quality=qualities[row], neighbours=found[k])
        yield _timed(ready, time.perf_counter() - start)
        ready = {}
    if ready:
        yield _timed(ready, time.perf_counter() - start)


def _timed(results, seconds):
    return {i: dataclasses.replace(result, seconds=seconds)
            for i, result in results.items()}


def classify(pipe, items, *, ood_thresholds=None, novelty=None, index=None,
             neighbours=None, thresholds=None):
    """Decode every image, then predict the readable ones in one model call.

    Parameters
    ----------
    pipe : fitted Pipeline
        The served model.

    items : list of bytes
        Encoded image files (of one or several requests).

    ood_thresholds, novelty : dict or None, default=None
        As in :func:`classify_stages`.

    index : EmbeddingIndex or None, default=None
        The model's index of its training photos, for ``neighbours``; None
        answers none.

    neighbours : list of int or None, default=None
        How many nearest training photos each item asked for (0: none);
        None asks for none.

    thresholds : list of float or None, default=None
        As in :func:`classify_stages`.

    Returns
    -------
    results : list of ItemResult
        One per item, in order, with the photo quality of each readable one.
    """
    results = {}
    for ready in classify_stages(pipe, items, ood_thresholds=ood_thresholds,
                                 novelty=novelty, index=index,
                                 neighbours=neighbours, thresholds=thresholds):
        results.update(ready)
    return [results[i] for i in range(len(items))]
