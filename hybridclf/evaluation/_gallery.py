"""The error gallery of an evaluation report: each misclassified test photo,
its top guesses and, with the model's embedding index, its nearest training
photos (:meth:`hybridclf.neighbours.EmbeddingIndex.neighbours`).

The nearest training photos show why the model answered what it did: a test
photo of class A whose nearest training photos are all labelled B is either
a hard case or evidence that some of those labels are wrong.
"""

import io
import os

import numpy as np

__all__ = ["GALLERY_MAX", "error_gallery"]

#: Most misclassified images drawn in the gallery (all are listed).
GALLERY_MAX = 24
# side of the test photos' thumbnails in the gallery, in pixels
_THUMB = 96


def error_gallery(X, y, images, classes, proba, *, embeddings=None, index=None,
                  k=3):
    """The misclassified images, their top guesses and nearest training photos.

    Parameters
    ----------
    X : sequence of str or images
        The test images as given (their names, for paths).

    y : ndarray of shape (n_samples,)
        Their true classes.

    images : ndarray of shape (n_samples, height, width, 3)
        The loaded images.

    classes : ndarray of shape (n_classes,)
        The classifier's classes, the columns of ``proba``.

    proba : ndarray of shape (n_samples, n_classes)
        The class probabilities.

    embeddings : ndarray of shape (n_samples, n_features) or None, default=None
        The images' embeddings in the space of ``index``.

    index : EmbeddingIndex or None, default=None
        The model's index of its training photos; None lists no neighbours.

    k : int, default=3
        Nearest training photos per misclassified image.

    Returns
    -------
    errors : list of dict
        ``file``, ``true``, ``predicted``, ``top`` (three (class,
        probability)) and, with an index and ``k`` > 0, ``neighbours`` (``file``,
        ``label``, ``similarity``, most similar first).

    thumbnails : list of ndarray
        Small copies of the first :data:`GALLERY_MAX` misclassified images.

    neighbour_thumbnails : list of list of ndarray or None
        For each of those, the thumbnails of its nearest training photos
        (None where the index keeps no thumbnails).
    """
    predicted = classes[proba.argmax(axis=1)]
    order = np.argsort(-proba, axis=1)
    wrong = np.flatnonzero(predicted != y)
    listed = index is not None and k > 0
    near = [[] for _ in wrong]
    if listed and len(wrong):
        near = index.neighbours(np.asarray(embeddings)[wrong], k)
    errors, thumbnails, neighbour_thumbnails = [], [], []
    for i, nearest in zip(wrong, near):
        name = (os.fspath(X[i]) if isinstance(X[i], (str, os.PathLike))
                else f"<image {i}>")
        entry = {"file": name, "true": str(y[i]), "predicted": str(predicted[i]),
                 "top": [(str(classes[j]), float(proba[i, j])) for j in order[i, :3]]}
        if listed:
            entry["neighbours"] = [{key: n[key] for key in ("file", "label",
                                                           "similarity")}
                                   for n in nearest]
        errors.append(entry)
        if len(thumbnails) < GALLERY_MAX:
            thumbnails.append(_thumbnail(images[i]))
            neighbour_thumbnails.append([_decode(n["thumbnail"]) for n in nearest])
    return errors, thumbnails, neighbour_thumbnails


def _thumbnail(image):
    import cv2

    return cv2.resize(image, (_THUMB, _THUMB), interpolation=cv2.INTER_AREA)


def _decode(jpeg):
    """A thumbnail's JPEG as an RGB array, or None without one (or a broken one).

    The index checked its size (``EmbeddingIndex.neighbours``); a JPEG cut
    short after its header draws the caption alone, not a traceback.
    """
    if jpeg is None:
        return None
    from PIL import Image

    try:
        with Image.open(io.BytesIO(jpeg)) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, SyntaxError, ValueError):
        return None
