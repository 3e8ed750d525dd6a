"""The answers of the service: a prediction's JSON body and its parts.

:func:`prediction_body` turns what the model said about one image (an
:class:`~hybridclf.serve._predict.ItemResult`) into the JSON of one
prediction (``PredictResponse``), applying each request's probability
threshold; :func:`neighbour_answers` gives the nearest training photos as
the service answers them (thumbnails as data URIs); :func:`class_names` the
model's classes as strings. This module does not import FastAPI.
"""

import base64

from .. import prediction
from ..pipeline import get_classifier
from ..quality import quality_message
from ..utils._csv import utf8_text

__all__ = ["class_names", "neighbour_answers", "prediction_body"]


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
    # JSON is UTF-8: a training photo's name that is not keeps its other
    # bytes as \xNN (the answer failed with 500 otherwise)
    return [[{**n, "file": utf8_text(n["file"]),
              "thumbnail": _data_uri(n["thumbnail"])} for n in row[:k]]
            for row, k in zip(found, ks)]


def _data_uri(jpeg):
    if jpeg is None:
        return None
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


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
