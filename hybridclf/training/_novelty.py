"""The open set's novelty check: the embedding index and its threshold.

A pipeline with a ``"cnn"`` block judges "unlike any training photo" in the
CNN embedding (see :mod:`hybridclf.neighbours`): the final pipeline embeds
every training photo and its degraded views into an
:class:`~hybridclf.neighbours.EmbeddingIndex`, saved beside the model, and
the threshold comes from grouped out-of-fold scores
(:func:`novelty_threshold`). Pipelines without a CNN block keep the per-block
OOD check of the other thresholds.

The embeddings of the views come from :mod:`._novelty_views` (with a
:class:`FeatureCache`, for new photos only; in ``train_model``, in a thread
while the classifiers are fitted).
"""

import logging
import os
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np
from joblib import effective_n_jobs
from threadpoolctl import threadpool_limits

from ..neighbours import (
    THUMBNAIL_QUALITY,
    THUMBNAIL_SIDE,
    index_with_views,
    jpeg_thumbnails,
    novelty_scores,
)
from ..pipeline import get_loader
from ..prediction import embed_images
from ._feature_cache import image_digest, unchanged_digest
from ._novelty_views import EMBEDDING_BLOCK, embed_views, view_keys

__all__ = ["EMBEDDING_BLOCK", "novelty_index", "novelty_threshold"]

logger = logging.getLogger(__name__)


def novelty_threshold(embeddings, views, splits, *, quantile=0.995, k=1,
                      n_jobs=None):
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

    n_jobs : int or None, default=None
        Folds indexed at once, in threads (NumPy and LAPACK work outside
        Python's lock); None: one after the other. Each fold's index is
        the same either way.

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
    with _threads(n_jobs) as pool:
        return _threshold(pool, embeddings, views, splits, quantile, k)


def _threshold(pool, embeddings, views, splits, quantile, k=1):
    """:func:`novelty_threshold`, its folds indexed and scored in ``pool``."""
    embeddings = np.asarray(embeddings)

    def fold_scores(split):
        train, test = split
        return novelty_scores(index_with_views(embeddings[train],
                                               [v[train] for v in views]),
                              embeddings[test], k=k)

    scores = list(pool.map(fold_scores, splits))
    return {"threshold": float(np.quantile(np.concatenate(scores), quantile)),
            "k": int(k), "quantile": float(quantile)}


class _InOrder:
    """A stand-in for a thread pool that runs each task at once, in the caller."""

    map = staticmethod(map)

    @staticmethod
    def submit(fn, *args, **kwargs):
        future = Future()
        future.set_result(fn(*args, **kwargs))
        return future


@contextmanager
def _threads(n_jobs):
    """A pool of ``n_jobs`` threads, or :class:`_InOrder` for None or 1.

    BLAS runs one thread meanwhile: the threads are the parallelism (and the
    searches of few queries, which set one BLAS thread themselves, then
    restore one).
    """
    n = 1 if n_jobs is None else effective_n_jobs(n_jobs)
    if n <= 1:
        yield _InOrder()
        return
    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(
            max_workers=n, thread_name_prefix="hybridclf-novelty") as pool:
        yield pool


def novelty_index(final, X_train, y_train, splits, quantile, *, embeddings=None,
                  images=None, thumbnails=True, batch=256, cache=None,
                  digests=None, views=None, n_jobs=None, photos=None):
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
        The training photos as loaded for the folds; None loads them (only
        those whose views are not in ``cache``). The views are made from
        these.

    thumbnails : bool, default=True
        Keep a JPEG thumbnail of every training photo in the index
        (:func:`~hybridclf.neighbours.jpeg_thumbnails`, made from the loaded
        photos; with ``cache``, kept beside the cached features), to show it
        as evidence.

    batch : int, default=256
        Photos loaded and viewed at once (bounds the memory of the views).

    cache : FeatureCache or None, default=None
        Where the embeddings of the views are kept, under a key derived from
        the CNN block's (:meth:`FeatureCache.derived_key`), when the block is
        cached at all and ``embeddings`` is given: only the photos missing
        there are loaded, viewed and embedded.

    digests : sequence of str or None, default=None
        The training photos' :func:`image_digest`; computed when None and
        ``cache`` is used.

    views : ViewEmbeddings or None, default=None
        The views' embeddings (and the thumbnails made on the way), computed
        beforehand by :func:`~hybridclf.training._novelty_views.embed_views`
        with the final pipeline's CNN extractor and ``embeddings`` given
        (``train_model`` does it in a thread while the classifiers are
        fitted); None embeds them here.

    n_jobs : int or None, default=None
        Threads that build the index and the folds' indexes of
        :func:`novelty_threshold` at once; None: one after the other.

    photos : sequence or None, default=None
        One id per training photo; equal ids are one photo (byte-identical
        files, augmented copies of one photo) and fill one slot of the
        index's nearest photos (:meth:`EmbeddingIndex.neighbours`). None:
        each its own.

    Returns
    -------
    index : EmbeddingIndex
        The photos and their views, with their labels, their file names as
        given in ``X_train`` (``""`` for arrays) and their thumbnails.

    novelty : dict
        As from :func:`novelty_threshold`.
    """
    if views is None:
        keys = None if embeddings is None else view_keys(final, cache)
        if keys is not None and digests is None:
            digests = [image_digest(x) for x in X_train]
        views = embed_views(
            lambda loaded: embed_images(final, loaded),
            lambda rows: _loaded(final, X_train, images, rows), len(X_train),
            width=None if embeddings is None else np.shape(embeddings)[1],
            keys=keys, cache=cache, digests=digests, thumbnails=thumbnails,
            photos=embeddings is None, batch=batch, sources=X_train)
    if embeddings is None:
        embeddings = views.photos
    embeddings = np.asarray(embeddings, dtype=np.float32)
    thumbs = (_thumbnails(final, X_train, images, views.thumbnails, cache,
                          digests, batch) if thumbnails else None)
    with _threads(n_jobs) as pool:
        index = pool.submit(index_with_views, embeddings, views.views, y_train,
                            files=_file_names(X_train), thumbnails=thumbs,
                            photos=photos)
        novelty = _threshold(pool, embeddings, views.views, splits, quantile)
        return index.result(), novelty


def _file_names(X):
    """The names of inputs given as paths, with "/" separators; "" for arrays."""
    return [os.fspath(x).replace(os.sep, "/") if isinstance(x, (str, os.PathLike))
            else "" for x in X]


def _thumbnails(final, X_train, images, made, cache, digests, batch):
    """A JPEG thumbnail per training photo.

    Those made while embedding (``made``, by row), else read from the cache
    folder (``thumbnails/<side>-<quality>/<sha256>.jpg``), else made from the
    photo loaded again; the new ones are written to the cache.
    """
    thumbs = [made.get(i) for i in range(len(X_train))]
    folder = None
    if cache is not None and digests is not None:
        folder = os.path.join(cache.directory, "thumbnails",
                              f"{THUMBNAIL_SIDE}-{THUMBNAIL_QUALITY}")
        for i, thumb in enumerate(thumbs):
            path = os.path.join(folder, f"{digests[i]}.jpg")
            if thumb is None and os.path.isfile(path):
                with open(path, "rb") as fh:
                    thumbs[i] = fh.read()
    rest = [i for i, thumb in enumerate(thumbs) if thumb is None]
    for start in range(0, len(rest), batch):
        rows = np.asarray(rest[start:start + batch])
        loaded = _loaded(final, X_train, images, rows)
        for i, thumb in zip(rows.tolist(), jpeg_thumbnails(loaded)):
            thumbs[i] = thumb
    if folder is not None:
        _store_thumbnails(folder, [unchanged_digest(d, x) for d, x in
                                   zip(digests, X_train)],
                          thumbs, set(made) | set(rest))
    return thumbs


def _store_thumbnails(folder, digests, thumbs, rows):
    """Write the thumbnails of ``rows`` into the cache folder, atomically."""
    try:
        os.makedirs(folder, exist_ok=True)
        for i in sorted(i for i in rows if digests[i] is not None):
            tmp = os.path.join(folder, f".{uuid.uuid4().hex}.tmp")
            with open(tmp, "wb") as fh:
                fh.write(thumbs[i])
            os.replace(tmp, os.path.join(folder, f"{digests[i]}.jpg"))
    except OSError as exc:  # a cache that cannot be written only costs time
        logger.warning("Cannot keep thumbnails in %s (%s); the next training "
                       "makes them again", folder, exc)


def _loaded(final, X_train, images, rows):
    """Training photos ``rows`` as the pipeline's loader gives them."""
    if images is not None:
        return images[rows]
    loader = get_loader(final)
    chunk = X_train[rows]
    return chunk if loader is None else loader.transform(chunk)
