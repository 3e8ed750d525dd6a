"""The nearest training images of a query, by cosine similarity of embeddings.

:class:`EmbeddingIndex` keeps one embedding per training image (the CNN
features of a fitted pipeline), L2-normalised and stored as float16, with
the label of each. :meth:`EmbeddingIndex.query` answers the ``k`` most
similar training images of each query by exact search (one matrix product
in NumPy; a few thousand training images take well under a millisecond per
query). It serves two uses:

- **novelty**: :func:`novelty_scores`, one minus the mean similarity to the
  ``k`` nearest training images. A photo of a known class, even blurred or
  tilted, stays close to some training photo; a photo of something else
  does not. ``hybridclf train`` learns the threshold from out-of-fold
  scores (see :func:`hybridclf.training.novelty_threshold`).
- **evidence**: :meth:`EmbeddingIndex.neighbours` and :func:`explain` give
  the nearest training photos of an image (label, similarity, file name and
  a small JPEG thumbnail), so that a person can see why the model answered
  what it did.

A blurred or tilted photo moves away from its sharp, upright training photos
in the CNN embedding too (less than in HOG or LBP, but enough to pass for a
stranger). So the index also holds two blurred views of every training
photo and two turned by 10 degrees, one each way (:data:`VIEWS`,
:func:`degraded_views`); ``sources_`` maps each entry back to its training
photo. On amulet6 this cut the share of blurred known photos taken for
strangers from 20-61% to 1-3% while every photo of other domains stayed
rejected (``docs/benchmarks.md``).

The search of a trained index runs in :data:`SEARCH_DIMENSIONS` dimensions,
on principal axes learned from its training photos and views (the novelty
threshold is learned in the same space, fold by fold): a quarter of the
float16 storage at 128 of the default CNN's 1488 values, and a search that
reads a twelfth as much memory. Searches of fewer than 64 queries run on
one BLAS thread.

The index is saved in a model directory as its own file,
:data:`INDEX_FILE`, a NumPy ``.npz`` archive without pickled objects. It also
keeps, per training photo, its file name relative to the data folder and a
JPEG thumbnail of at most :data:`THUMBNAIL_SIDE` pixels (``hybridclf train
--no-thumbnails`` leaves them out), so that a model directory served on
another machine can still show its evidence.
"""

import io
import os

import numpy as np

from ._embedding_index import (
    INDEX_FILE,
    EmbeddingIndex,
    _check_neighbours_k,
    _top_k,
)

__all__ = [
    "INDEX_FILE",
    "SEARCH_DIMENSIONS",
    "THUMBNAIL_QUALITY",
    "THUMBNAIL_SIDE",
    "VIEWS",
    "EmbeddingIndex",
    "degraded_views",
    "explain",
    "index_with_views",
    "jpeg_thumbnails",
    "novelty_and_neighbours",
    "novelty_scores",
]

#: The degraded views of each training photo that the index also holds:
#: (kind, amount) with kind "blur" (Gaussian sigma in pixels at 224 pixels)
#: or "rotate" (degrees, counter-clockwise).
VIEWS = (("blur", 1.2), ("blur", 2.5), ("rotate", 10.0), ("rotate", -10.0))
#: The dimensions of the search of a trained index (:func:`index_with_views`):
#: the CNN embeddings projected on their first principal axes. On amulet6 the
#: novelty decisions are those of the full space and most of the nearest
#: photos too, and the index of 10,000 photos searches fast enough for every
#: prediction (``docs/benchmarks.md``: the nearest training photos).
SEARCH_DIMENSIONS = 128
#: Longest side, in pixels, of the thumbnail kept per training photo.
THUMBNAIL_SIDE = 112
#: JPEG quality of the thumbnails (see ``docs/benchmarks.md``: the size of
#: the model directory per training photo).
THUMBNAIL_QUALITY = 75


def novelty_scores(index, X, k=1):
    """How unlike every training image each query is: 1 - mean top-k similarity.

    Parameters
    ----------
    index : EmbeddingIndex
        The fitted index of the training embeddings.

    X : array-like of shape (n_queries, n_features)
        Query embeddings.

    k : int, default=1
        Neighbours averaged; clipped to the size of the index.

    Returns
    -------
    scores : ndarray of shape (n_queries,)
        0 for a query pointing like some training image, up to 2.

    Examples
    --------
    >>> from hybridclf.neighbours import EmbeddingIndex, novelty_scores
    >>> index = EmbeddingIndex().fit([[1, 0], [0, 1]])
    >>> novelty_scores(index, [[1, 0], [-1, 0]]).round(3).tolist()
    [0.0, 1.0]
    """
    k = min(int(k), len(index.embeddings_))
    _, sim = index.query(X, k=k)
    return 1.0 - sim.astype(np.float64).mean(axis=1)


def novelty_and_neighbours(index, X, *, novelty_k=1, k=3):
    """:func:`novelty_scores` and :meth:`EmbeddingIndex.neighbours` at once.

    Both come from the same similarities of the queries to every entry of
    the index, computed once: listing the nearest training photos of an
    answer whose novelty is checked anyway costs only their sorting.

    Parameters
    ----------
    index : EmbeddingIndex
        The fitted index.

    X : array-like of shape (n_queries, n_features)
        Query embeddings.

    novelty_k : int, default=1
        As ``k`` in :func:`novelty_scores`.

    k : int, default=3
        As in :meth:`EmbeddingIndex.neighbours`.

    Returns
    -------
    scores : ndarray of shape (n_queries,)
        As from :func:`novelty_scores`.

    neighbours : list of list of dict
        As from :meth:`EmbeddingIndex.neighbours`.

    Examples
    --------
    >>> from hybridclf.neighbours import EmbeddingIndex, novelty_and_neighbours
    >>> index = EmbeddingIndex().fit([[1, 0], [0, 1]], ["a", "b"])
    >>> scores, near = novelty_and_neighbours(index, [[1, 0]], k=1)
    >>> scores.round(3).tolist(), near[0][0]["label"]
    ([0.0], 'a')
    """
    index._check_fitted()
    _check_neighbours_k(k)
    sim = index._similarities(X)
    top = min(int(novelty_k), len(index.embeddings_))
    if top < 1:
        raise ValueError(
            "The 'novelty_k' parameter of novelty_and_neighbours must be an int "
            f">= 1. Got {novelty_k!r} instead."
        )
    scores = 1.0 - _top_k(sim, top)[1].astype(np.float64).mean(axis=1)
    return scores, index._neighbours_from(sim, k)


def degraded_views(images):
    """The degraded views of training photos that an index also holds.

    Parameters
    ----------
    images : ndarray of shape (n_images, height, width, 3), dtype uint8
        Loaded training photos.

    Returns
    -------
    views : list of ndarray, one per entry of :data:`VIEWS`
        Each of the shape of ``images``, in the order of :data:`VIEWS`:
        every photo blurred twice, then turned each way.

    Examples
    --------
    >>> import numpy as np
    >>> from hybridclf.neighbours import degraded_views
    >>> [v.shape for v in degraded_views(np.zeros((2, 8, 8, 3), np.uint8))]
    [(2, 8, 8, 3), (2, 8, 8, 3), (2, 8, 8, 3), (2, 8, 8, 3)]
    """
    from .augment import gaussian_blur, rotate

    apply = {"blur": gaussian_blur, "rotate": rotate}
    return [np.stack([apply[kind](im, amount) for im in images])
            if len(images) else np.asarray(images).copy()
            for kind, amount in VIEWS]


def index_with_views(embeddings, views, labels=None, *, dtype="float16",
                     n_components=SEARCH_DIMENSIONS, files=None, thumbnails=None,
                     photos=None):
    """An index of training embeddings and of their degraded views.

    Parameters
    ----------
    embeddings : ndarray of shape (n_images, n_features)
        The embeddings of the training photos.

    views : list of ndarray of shape (n_images, n_features)
        The embeddings of each of their views (:func:`degraded_views`).

    labels : array-like of shape (n_images,) or None, default=None
        The class of each photo, repeated for its views.

    dtype : {"float16", "float32"}, default="float16"
        As in :class:`EmbeddingIndex`.

    n_components : int or None, default=SEARCH_DIMENSIONS
        As in :class:`EmbeddingIndex`: the axes are learned from the photos
        and their views; None searches the full space.

    files : array-like of shape (n_images,) or None, default=None
        The file name of each photo.

    thumbnails : sequence of bytes or None, default=None
        A JPEG thumbnail of each photo (:func:`jpeg_thumbnails`).

    photos : array-like of shape (n_images,) or None, default=None
        Which photos are one (equal ids: the same content, or augmented
        copies of one photo), as in :meth:`EmbeddingIndex.fit`; they fill
        one slot of :meth:`EmbeddingIndex.neighbours`.

    Returns
    -------
    index : EmbeddingIndex
        The photos first, then each view of every photo; ``sources_`` gives
        the photo of every entry.
    """
    n = len(embeddings)
    rows = np.vstack([embeddings, *views])
    labels = None if labels is None else np.tile(np.asarray(labels), 1 + len(views))
    return EmbeddingIndex(dtype=dtype, n_components=n_components).fit(
        rows, labels, sources=np.tile(np.arange(n), 1 + len(views)), files=files,
        thumbnails=thumbnails, photos=photos)


def jpeg_thumbnails(images, *, side=THUMBNAIL_SIDE, quality=THUMBNAIL_QUALITY):
    """Small JPEG copies of images, to show beside an answer.

    Parameters
    ----------
    images : iterable of ndarray of shape (height, width, 3), dtype uint8
        RGB images, as the pipeline's ``load`` step returns them.

    side : int, default=THUMBNAIL_SIDE
        The longest side of a thumbnail, in pixels; smaller images keep
        their size.

    quality : int, default=THUMBNAIL_QUALITY
        JPEG quality, 1 to 95.

    Returns
    -------
    thumbnails : list of bytes
        One JPEG file's content per image.

    Examples
    --------
    >>> import numpy as np
    >>> from hybridclf.neighbours import jpeg_thumbnails
    >>> jpeg = jpeg_thumbnails([np.zeros((224, 160, 3), np.uint8)])[0]
    >>> jpeg[:2] == b"\\xff\\xd8", len(jpeg) < 2000
    (True, True)
    """
    from PIL import Image

    out = []
    for image in images:
        pil = Image.fromarray(np.asarray(image, dtype=np.uint8))
        pil.thumbnail((side, side), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        pil.save(buffer, format="JPEG", quality=quality, optimize=True)
        out.append(buffer.getvalue())
    return out


def explain(pipe, images, k=3, *, index):
    """The nearest training photos of images: the evidence for each answer.

    Parameters
    ----------
    pipe : fitted Pipeline
        A hybrid pipeline, as from :func:`~hybridclf.load_model`.

    images : sequence of str, os.PathLike or ndarray
        Image files, or RGB ``uint8`` images: what ``pipe.predict`` takes.

    k : int, default=3
        Training photos per image; 0 gives empty lists.

    index : EmbeddingIndex, str or os.PathLike
        The index of the pipeline's training photos, or the model directory
        holding it (:data:`INDEX_FILE`, written by ``hybridclf train`` for a
        pipeline with a CNN block).

    Returns
    -------
    neighbours : list of list of dict
        Per image, its ``k`` nearest distinct training photos, most similar
        first, as from :meth:`EmbeddingIndex.neighbours` (byte-identical
        training files, and augmented copies of one photo, fill one slot:
        the closest of them): ``label``,
        ``similarity``, ``file`` and ``thumbnail``.

    Raises
    ------
    ValueError
        When ``index`` is a folder without an index, or holds classes that
        ``pipe`` does not know (another model's index).

    Examples
    --------
    >>> from hybridclf import load_model
    >>> from hybridclf.neighbours import explain
    >>> pipe = load_model("model")                       # doctest: +SKIP
    >>> explain(pipe, ["photo.jpg"], k=3, index="model")  # doctest: +SKIP
    [[{'label': 'waek_man', 'similarity': 0.93, 'file': 'waek_man/front_004.jpg',
       'thumbnail': b'\\xff\\xd8...'}, ...]]
    """
    from .pipeline import get_classifier, get_loader
    from .prediction import embed_images

    if isinstance(index, (str, os.PathLike)):
        directory, index = index, EmbeddingIndex.load(index)
        if index is None:
            raise ValueError(
                f"The model directory {os.fspath(directory)!r} has no {INDEX_FILE}; "
                "only a model trained with a CNN block ('hybridclf train' with the "
                "cnn feature) keeps its training photos. Retrain it with one."
            )
    index._check_fitted()
    foreign = sorted(set(index.labels_.tolist()) - {""} - {
        str(c) for c in get_classifier(pipe).classes_})
    if foreign:
        raise ValueError(
            f"The index holds training photos of classes the pipeline does not "
            f"know ({', '.join(map(repr, foreign[:5]))}): it is another model's "
            "index. Pass the index of this pipeline's model directory."
        )
    loader = get_loader(pipe)
    loaded = images if loader is None else loader.transform(images)
    return index.neighbours(embed_images(pipe, loaded), k)
