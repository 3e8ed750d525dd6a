"""From request images to answers: decoding, one model call, the response body.

Every image of a request is a :class:`Upload` (its bytes, or why there are
none); the model answers each readable one with an :class:`ItemResult`;
:func:`prediction_body` turns either into the JSON of one prediction. No
exception travels between the images of a batch: an unreadable image is a
result like the others, so the rest of its batch is predicted in the same
model call. :func:`classify_stages` hands the answers on as they are ready:
a cascade's early answers before the CNN has run on the other photos. This
module does not import FastAPI.
"""

import base64
import binascii
import dataclasses
import time
from dataclasses import dataclass, field

import anyio
import numpy as np

from .. import prediction
from ..pipeline import get_classifier, get_loader
from ..quality import quality_answer, quality_message

__all__ = ["ItemResult", "Upload", "class_names", "classify", "classify_stages",
           "decode_base64", "decode_uploads", "neighbour_answers",
           "prediction_body"]

# Base64 text above this many characters is decoded in a worker thread: a
# 10 MB body takes milliseconds that the event loop owes other requests,
# while a photo of a few hundred KB decodes faster than the hand-over.
_ON_LOOP_CHARS = 1 << 20


@dataclass(frozen=True)
class Upload:
    """One image of a request: its encoded bytes, or why there are none.

    Attributes
    ----------
    data : bytes or None
        The encoded image file.

    error : str or None
        Why the request holds no image here (invalid base64, ...).
    """

    data: bytes | None = None
    error: str | None = None


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


def decode_base64(text, what="image_data"):
    """The image bytes of a base64 field, or why it holds none.

    Parameters
    ----------
    text : str
        The field's value; a ``data:image/...;base64,`` prefix is accepted.

    what : str, default="image_data"
        The field's name, for the message.

    Returns
    -------
    upload : Upload
        The bytes, or the error message naming ``what``.

    Examples
    --------
    >>> from hybridclf.serve._predict import decode_base64
    >>> decode_base64("aGk=").data
    b'hi'
    >>> decode_base64("%%", what="images[1]").error
    "The 'images[1]' field is not valid base64 (...). Send the image ..."
    """
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    try:
        data = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        return Upload(error=f"The '{what}' field is not valid base64 ({exc}). Send "
                      "the image file's bytes encoded with standard base64.")
    if not data:
        return Upload(error=f"The '{what}' field decodes to no bytes. Send a "
                      "non-empty image file.")
    return Upload(data=data)


async def decode_uploads(texts, whats):
    """:func:`decode_base64` of every field, off the event loop when large.

    Parameters
    ----------
    texts : list of str
        The base64 fields of a request.

    whats : list of str
        Their names, for the messages.

    Returns
    -------
    uploads : list of Upload
        One per field, in order.
    """
    def decode_all():
        return [decode_base64(text, what) for text, what in zip(texts, whats)]

    if sum(len(text) for text in texts) <= _ON_LOOP_CHARS:
        return decode_all()
    return await anyio.to_thread.run_sync(decode_all)


def neighbour_answers(found, ks):
    """The nearest training photos of each image, as the service answers them.

    Parameters
    ----------
    found : list of list of dict or None
        Per image, its nearest training photos, as many as the most any image
        asked for (``predict_with_reasons(..., neighbours=K)``); None when
        none were looked up.

    ks : list of int
        How many each image asked for.

    Returns
    -------
    neighbours : list of list of dict
        Per image, ``label``, ``similarity``, ``file`` and ``thumbnail`` (a
        ``data:image/jpeg;base64,`` URI, or None when the model was trained
        without thumbnails).

    Examples
    --------
    >>> from hybridclf.serve._predict import neighbour_answers
    >>> near = {"label": "a", "similarity": 0.9, "file": "a/1.jpg",
    ...         "thumbnail": b"jpeg"}
    >>> neighbour_answers([[near], [near]], [0, 1])
    [[], [{'label': 'a', ..., 'thumbnail': 'data:image/jpeg;base64,anBlZw=='}]]
    """
    if found is None:
        return [[] for _ in ks]
    return [[{**n, "thumbnail": _data_uri(n["thumbnail"])} for n in row[:k]]
            for row, k in zip(found, ks)]


def _data_uri(jpeg):
    if jpeg is None:
        return None
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def classify_stages(pipe, items, *, ood_thresholds=None, novelty=None, index=None,
                    neighbours=None):
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

    items : list of bytes
        Encoded image files (of one or several requests).

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

    Yields
    ------
    ready : dict of int to ItemResult
        Item positions and their results, with the photo quality of each
        readable one; together the dicts cover every item once.
    """
    start = time.perf_counter()
    # the quality is measured on each photo as decoded, not on the copy
    # resized for the model
    images, reasons, qualities = get_loader(pipe).read_each(
        items, measure=quality_answer)
    readable = np.flatnonzero([reason is None for reason in reasons])
    asked = neighbours if neighbours and index is not None else [0] * len(items)
    ks = np.array([asked[i] for i in readable], dtype=int)
    ready = {i: ItemResult(error=reason) for i, reason in enumerate(reasons)
             if reason is not None}
    stages = prediction.iter_stages(pipe, images, full=ks > 0)
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
             neighbours=None):
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

    Returns
    -------
    results : list of ItemResult
        One per item, in order, with the photo quality of each readable one.
    """
    results = {}
    for ready in classify_stages(pipe, items, ood_thresholds=ood_thresholds,
                                 novelty=novelty, index=index,
                                 neighbours=neighbours):
        results.update(ready)
    return [results[i] for i in range(len(items))]


def prediction_body(result, *, name, classes, threshold, with_proba):
    """The JSON fields of one prediction (``PredictResponse``), timing aside.

    The one place where a prediction's answer is built: a new field of
    ``PredictResponse`` is filled here.

    Parameters
    ----------
    result : ItemResult
        What the model said.

    name : str
        The image in an error message: "the uploaded image", "image 3".

    classes : list of str
        The model's classes, in the columns of ``result.proba``.

    threshold : float
        Below this top probability, scaled by the novelty
        (:func:`~hybridclf.prediction.confidence_limits`), the class is
        "unknown".

    with_proba : bool
        Include the probability of every class.

    Returns
    -------
    body : dict
        ``success`` and either the prediction or ``error_message``.
    """
    if result.error is not None:
        return {"success": False,
                "error_message": f"Cannot decode {name}: {result.error}."}
    top = float(result.proba.max())
    label, reason = str(result.label), result.reason
    if not reason and top < prediction.confidence_limits(threshold,
                                                         result.novelty):
        label, reason = prediction.UNKNOWN, prediction.LOW_CONFIDENCE
    quality = result.quality
    return {
        "success": True,
        "predicted_class": label,
        "unknown_reason": reason or None,
        "quality": None if quality is None else {
            **quality, "message": quality_message(quality["issues"])},
        "confidence": top,
        "probabilities": ({c: float(v) for c, v in zip(classes, result.proba)}
                          if with_proba else None),
        "neighbours": result.neighbours,
    }


def class_names(pipe):
    """The classes of a fitted pipeline as strings, in its probability columns."""
    return [str(c) for c in get_classifier(pipe).classes_]
