"""The open set's novelty check: the embedding index and its threshold.

A pipeline with a ``"cnn"`` block judges "unlike any training photo" in the
CNN embedding (see :mod:`hybridclf.neighbours`): the final pipeline embeds
every training photo and its degraded views into an
:class:`~hybridclf.neighbours.EmbeddingIndex`, saved beside the model, and
the threshold comes from grouped out-of-fold scores
(:func:`novelty_threshold`). Pipelines without a CNN block keep the per-block
OOD check of the other thresholds.
"""

import os

import numpy as np

from ..neighbours import (
    degraded_views,
    index_with_views,
    jpeg_thumbnails,
    novelty_scores,
)
from ..pipeline import get_loader
from ..prediction import embed_images

__all__ = ["EMBEDDING_BLOCK", "novelty_index", "novelty_threshold"]

#: The feature block whose output is the embedding of the novelty check.
EMBEDDING_BLOCK = "cnn"


def novelty_threshold(embeddings, views, splits, *, quantile=0.995, k=1):
    """The novelty threshold learned from out-of-fold embeddings.

    For each fold, the photos of its test part are scored
    (:func:`hybridclf.neighbours.novelty_scores`) against an index of the
    photos of its training part and of their degraded views
    (:func:`hybridclf.neighbours.index_with_views`); the threshold is the
    ``quantile`` of these scores. Grouped folds keep near-identical photos on
    one side, so the scores are those of new photos of known classes.

    Parameters
    ----------
    embeddings : ndarray of shape (n_images, n_features)
        The embeddings of the training photos
        (:func:`hybridclf.prediction.embed_images`).

    views : list of ndarray of shape (n_images, n_features)
        The embeddings of their degraded views.

    splits : list of (train_rows, test_rows)
        The cross-validation folds.

    quantile : float, default=0.995
        Share of the out-of-fold photos kept known.

    k : int, default=1
        Nearest entries averaged by the score.

    Returns
    -------
    novelty : dict
        ``threshold``, ``k`` and ``quantile``, as stored under
        ``open_set["novelty"]`` in ``model.json``.

    Examples
    --------
    >>> import numpy as np
    >>> from hybridclf.training import novelty_threshold
    >>> emb = np.array([[1, 0], [1, 0.1], [0.1, 1], [0, 1]])
    >>> splits = [([0, 2], [1, 3]), ([1, 3], [0, 2])]
    >>> novelty_threshold(emb, [], splits, quantile=1.0)["threshold"] < 0.01
    True
    """
    embeddings = np.asarray(embeddings)
    scores = [novelty_scores(index_with_views(embeddings[tr],
                                              [v[tr] for v in views]),
                             embeddings[te], k=k)
              for tr, te in splits]
    return {"threshold": float(np.quantile(np.concatenate(scores), quantile)),
            "k": int(k), "quantile": float(quantile)}


def novelty_index(final, X_train, y_train, splits, quantile, *, embeddings=None,
                  images=None, thumbnails=True, batch=256):
    """The embedding index of the fitted pipeline and its novelty threshold.

    Only for a pipeline with a ``"cnn"`` block (the blocks without one judge
    novelty by their OOD scores, as before). The embedding (a pretrained
    CNN's) does not depend on the fold, so every photo and view is embedded
    once, by the final pipeline; with a fine-tuned CNN the threshold is
    therefore slightly optimistic.

    Parameters
    ----------
    final : fitted Pipeline
        The final pipeline.

    X_train, y_train : ndarray
        The training part.

    splits : list of (train_rows, test_rows)
        The cross-validation folds of the training part.

    quantile : float
        As in :func:`novelty_threshold`.

    embeddings : ndarray of shape (n_train, n_features) or None, default=None
        The CNN block's output for the training photos, when the folds
        computed it already (``SharedFeatures.fixed``); None embeds them.

    images : ndarray of shape (n_train, height, width, 3) or None, default=None
        The training photos as loaded for the folds; None loads them. The
        views are made from these.

    thumbnails : bool, default=True
        Keep a JPEG thumbnail of every training photo in the index
        (:func:`~hybridclf.neighbours.jpeg_thumbnails`, made from the loaded
        photos), to show it as evidence.

    batch : int, default=256
        Photos loaded and viewed at once (bounds the memory of the views).

    Returns
    -------
    index : EmbeddingIndex
        The photos and their views, with their labels, their file names as
        given in ``X_train`` (``""`` for arrays) and their thumbnails.

    novelty : dict
        As from :func:`novelty_threshold`.
    """
    loader = get_loader(final)
    parts, view_parts, thumbs = [], [], []
    for start in range(0, len(X_train), batch):
        rows = slice(start, start + batch)
        if images is not None:
            loaded = images[rows]
        else:
            chunk = X_train[rows]
            loaded = chunk if loader is None else loader.transform(chunk)
        parts.append(embed_images(final, loaded) if embeddings is None
                     else np.asarray(embeddings[rows], dtype=np.float32))
        view_parts.append([embed_images(final, v) for v in degraded_views(loaded)])
        if thumbnails:
            thumbs.extend(jpeg_thumbnails(loaded))
    embeddings = np.vstack(parts)
    views = [np.vstack(v) for v in zip(*view_parts)]
    novelty = novelty_threshold(embeddings, views, splits, quantile=quantile)
    index = index_with_views(embeddings, views, y_train, files=_file_names(X_train),
                             thumbnails=thumbs if thumbnails else None)
    return index, novelty


def _file_names(X):
    """The names of inputs given as paths, with "/" separators; "" for arrays."""
    return [os.fspath(x).replace(os.sep, "/") if isinstance(x, (str, os.PathLike))
            else "" for x in X]
