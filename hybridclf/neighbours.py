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
stranger). So the index also holds a blurred and a rotated view of every
training photo (:data:`VIEWS`, :func:`degraded_views`); ``sources_`` maps
each entry back to its training photo. On amulet6 this cut the share of
blurred known photos taken for strangers from 20-61% to 1-3% while every
photo of other domains stayed rejected (``docs/benchmarks.md``).

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

__all__ = [
    "INDEX_FILE",
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

#: File name of the index inside a model directory.
INDEX_FILE = "neighbours.npz"
_FORMAT_VERSION = 1
#: The degraded views of each training photo that the index also holds:
#: (kind, amount) with kind "blur" (Gaussian sigma in pixels at 224 pixels)
#: or "rotate" (degrees, counter-clockwise).
VIEWS = (("blur", 1.2), ("blur", 2.5), ("rotate", 10.0))
#: Longest side, in pixels, of the thumbnail kept per training photo.
THUMBNAIL_SIDE = 112
#: JPEG quality of the thumbnails (see ``docs/benchmarks.md``: the size of
#: the model directory per training photo).
THUMBNAIL_QUALITY = 75


def _unit_rows(X):
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2:
        raise ValueError(
            "EmbeddingIndex takes embeddings of shape (n_samples, n_features). "
            f"Got an array of shape {X.shape} instead."
        )
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.maximum(norms, 1e-12)


class EmbeddingIndex:
    """Exact cosine nearest-neighbour search over training embeddings.

    Parameters
    ----------
    dtype : {"float16", "float32"}, default="float16"
        How the unit embeddings are stored; float16 halves the file and the
        memory and changes similarities by less than 1e-3.

    Attributes
    ----------
    embeddings_ : ndarray of shape (n_samples, n_features)
        The L2-normalised training embeddings, in ``dtype``.

    labels_ : ndarray of shape (n_samples,), dtype str
        The class of each training image.

    sources_ : ndarray of shape (n_samples,), dtype int
        The training photo each entry comes from (itself, or the photo of
        which it is a degraded view), from 0 to ``n_sources_ - 1``.

    files_ : ndarray of shape (n_sources_,), dtype str
        The file name of each training photo (relative to the data folder in
        a model directory); ``""`` where unknown (an index saved before file
        names were kept, or images given as arrays).

    thumbnails_ : list of bytes of length n_sources_, or None
        A JPEG thumbnail of each training photo (:func:`jpeg_thumbnails`);
        None when the index was built without them.

    See Also
    --------
    explain : The nearest training photos of images, for a fitted pipeline.

    Examples
    --------
    >>> import numpy as np
    >>> from hybridclf.neighbours import EmbeddingIndex
    >>> index = EmbeddingIndex().fit([[1, 0], [0, 1], [1, 1]], ["a", "b", "c"])
    >>> idx, sim = index.query([[2, 0.1]], k=2)
    >>> idx.tolist(), [round(float(v), 2) for v in sim[0]]
    ([[0, 2]], [1.0, 0.74])
    >>> [(n["label"], n["similarity"]) for n in index.neighbours([[2, 0.1]], k=2)[0]]
    [('a', 0.9988), ('c', 0.7415)]
    """

    def __init__(self, *, dtype="float16"):
        self.dtype = dtype

    def fit(self, X, y=None, *, sources=None, files=None, thumbnails=None):
        """Store the unit embeddings and labels of the training images.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The embeddings.

        y : array-like of shape (n_samples,) or None, default=None
            Their labels; None stores empty strings.

        sources : array-like of shape (n_samples,) or None, default=None
            The training photo of each embedding, numbered from 0 with every
            number present; None numbers them (each its own photo).

        files : array-like of shape (n_sources,) or None, default=None
            The file name of each training photo; None stores empty strings.

        thumbnails : sequence of bytes of length n_sources, or None, default=None
            A JPEG thumbnail of each training photo; None keeps none.

        Returns
        -------
        self : EmbeddingIndex
            The fitted index.
        """
        if self.dtype not in ("float16", "float32"):
            raise ValueError(
                "The 'dtype' parameter of EmbeddingIndex must be a str among "
                f"['float16', 'float32']. Got {self.dtype!r} instead."
            )
        unit = _unit_rows(X)
        if len(unit) == 0:
            raise ValueError("EmbeddingIndex.fit needs at least one embedding.")
        labels = np.full(len(unit), "") if y is None else np.asarray(y).astype(str)
        if len(labels) != len(unit):
            raise ValueError(
                f"EmbeddingIndex.fit got {len(unit)} embeddings and {len(labels)} "
                "labels; give one label per embedding."
            )
        sources = _check_sources(sources, len(unit))
        n_sources = int(sources.max()) + 1
        self.embeddings_ = unit.astype(self.dtype)
        self.labels_ = labels
        self.sources_ = sources
        self.files_ = _per_source(files, n_sources, "files", "")
        self.thumbnails_ = (None if thumbnails is None else
                            [bytes(t) for t in _per_source(thumbnails, n_sources,
                                                           "thumbnails", None)])
        return self

    @property
    def n_sources_(self):
        """The number of training photos (entries without their views)."""
        return len(self.files_)

    def query(self, X, k=1):
        """The ``k`` most similar entries of each query, best first.

        Entries are training photos and their degraded views; see
        :meth:`neighbours` for distinct training photos.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Query embeddings, in the space of the training embeddings.

        k : int, default=1
            How many neighbours; at most the number of entries.

        Returns
        -------
        indices : ndarray of shape (n_queries, k), dtype int
            Rows of the training embeddings (and of ``labels_``).

        similarities : ndarray of shape (n_queries, k), dtype float32
            Their cosine similarities, from 1 (same direction) down to -1.
        """
        self._check_fitted()
        n_train = len(self.embeddings_)
        if not (_is_int(k) and 1 <= k <= n_train):
            raise ValueError(
                f"The 'k' parameter of EmbeddingIndex.query must be an int in "
                f"[1, {n_train}] (the training images). Got {k!r} instead."
            )
        return _top_k(self._similarities(X), k)

    def neighbours(self, X, k=3):
        """The ``k`` nearest distinct training photos of each query, best first.

        The degraded views of a training photo count as that photo, with the
        best similarity of the photo and its views.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Query embeddings, in the space of the training embeddings (as
            from :func:`hybridclf.prediction.embed_images`).

        k : int, default=3
            How many training photos per query; 0 gives empty lists, more than
            the training photos gives them all.

        Returns
        -------
        neighbours : list of list of dict
            Per query, one dict per training photo: ``label`` (str),
            ``similarity`` (cosine, float rounded to 4 places), ``file``
            (str, ``""`` when unknown) and ``thumbnail`` (JPEG bytes, or None
            without thumbnails). A query with a missing (NaN) embedding, such
            as a cascade's photo answered without its CNN block, gets an
            empty list.
        """
        self._check_fitted()
        _check_neighbours_k(k)
        if k == 0:
            return [[] for _ in range(len(_unit_rows(X)))]
        return self._neighbours_from(self._similarities(X), k)

    def _neighbours_from(self, sim, k):
        """:meth:`neighbours` from the similarities of the queries to every entry."""
        k = min(int(k), self.n_sources_)
        if k == 0:
            return [[] for _ in range(len(sim))]
        top, top_sim = _top_k(self._per_source(sim), k)
        labels = self._source_labels()
        finite = np.isfinite(top_sim).all(axis=1)
        return [[{"label": str(labels[j]), "similarity": round(float(s), 4),
                  "file": str(self.files_[j]),
                  "thumbnail": None if self.thumbnails_ is None
                  else self.thumbnails_[j]}
                 for j, s in zip(row, row_sim)] if ok else []
                for row, row_sim, ok in zip(top, top_sim, finite)]

    def _check_fitted(self):
        if not hasattr(self, "embeddings_"):
            raise ValueError("This EmbeddingIndex is not fitted; call fit first.")

    def _similarities(self, X):
        """Cosine similarity of each query to each entry, float32."""
        unit = _unit_rows(X)
        n_features = self.embeddings_.shape[1]
        if unit.shape[1] != n_features:
            raise ValueError(
                f"EmbeddingIndex got query embeddings of {unit.shape[1]} features; "
                f"the index holds {n_features}. Query with the same pipeline."
            )
        # float16 has no BLAS: converting on every query cost more than the
        # product itself, so the float32 rows are kept once made
        rows = self.__dict__.get("_rows32")
        if rows is None or len(rows) != len(self.embeddings_):
            rows = np.ascontiguousarray(self.embeddings_, dtype=np.float32)
            self._rows32 = rows
        return unit @ rows.T

    def _per_source(self, sim):
        """The best similarity of each training photo over its entries."""
        n = self.n_sources_
        if len(self.sources_) % n == 0 and np.array_equal(
                self.sources_, np.tile(np.arange(n), len(self.sources_) // n)):
            # the layout of index_with_views: the photos, then each view
            return sim.reshape(len(sim), -1, n).max(axis=1)
        order = np.argsort(self.sources_, kind="stable")
        starts = np.searchsorted(self.sources_[order], np.arange(n))
        return np.maximum.reduceat(sim[:, order], starts, axis=1)

    def _source_labels(self):
        first = np.unique(self.sources_, return_index=True)[1]
        return self.labels_[first]

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_rows32", None)  # a cache, made again on the first query
        return state

    def save(self, directory):
        """Write the index into ``directory`` as :data:`INDEX_FILE`.

        Returns
        -------
        path : str
            The file written.
        """
        path = os.path.join(os.fspath(directory), INDEX_FILE)
        with open(path, "wb") as fh:
            fh.write(self.to_bytes())
        return path

    def to_bytes(self):
        """The content of :data:`INDEX_FILE`: an ``.npz`` archive, no pickles.

        For the ``files`` of :func:`~hybridclf.save_model`, which writes it
        inside the model directory's atomic save. The thumbnails are one
        ``uint8`` array and the offsets where each starts.

        Returns
        -------
        data : bytes
        """
        arrays = {"embeddings": self.embeddings_, "labels": self.labels_,
                  "sources": self.sources_, "files": self.files_.astype(str),
                  "version": np.array(_FORMAT_VERSION)}
        if self.thumbnails_ is not None:
            sizes = [len(t) for t in self.thumbnails_]
            arrays["thumbnail_offsets"] = np.concatenate(
                [[0], np.cumsum(sizes)]).astype(np.int64)
            arrays["thumbnail_data"] = np.frombuffer(b"".join(self.thumbnails_),
                                                     dtype=np.uint8)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        return buffer.getvalue()

    @classmethod
    def load(cls, directory):
        """The index saved in ``directory``, or None when it has none.

        An index saved before file names and thumbnails were kept loads with
        empty file names and no thumbnails.

        Raises
        ------
        ValueError
            When the file is not an index of this version.
        """
        path = os.path.join(os.fspath(directory), INDEX_FILE)
        if not os.path.exists(path):
            return None
        with np.load(path, allow_pickle=False) as data:
            version = int(data["version"]) if "version" in data else -1
            if version != _FORMAT_VERSION or "embeddings" not in data:
                raise ValueError(
                    f"{path!r} is not a hybridclf embedding index of format "
                    f"{_FORMAT_VERSION} (found {version}); retrain the model with "
                    "'hybridclf train' to rebuild it."
                )
            index = cls(dtype=str(data["embeddings"].dtype))
            index.embeddings_ = data["embeddings"]
            index.labels_ = data["labels"]
            index.sources_ = data["sources"]
            n_sources = int(index.sources_.max()) + 1
            index.files_ = (data["files"] if "files" in data
                            else np.full(n_sources, ""))
            index.thumbnails_ = None
            if "thumbnail_data" in data:
                blob = data["thumbnail_data"].tobytes()
                offsets = data["thumbnail_offsets"].tolist()
                index.thumbnails_ = [blob[a:b] for a, b in
                                     zip(offsets[:-1], offsets[1:])]
        return index


def _is_int(k):
    return isinstance(k, (int, np.integer)) and not isinstance(k, bool)


def _top_k(sim, k):
    """Columns of the ``k`` largest values of each row, and the values, best first."""
    top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
    top_sim = np.take_along_axis(sim, top, axis=1)
    order = np.argsort(-top_sim, axis=1, kind="stable")
    return (np.take_along_axis(top, order, axis=1),
            np.take_along_axis(top_sim, order, axis=1))


def _check_neighbours_k(k):
    if not (_is_int(k) and k >= 0):
        raise ValueError(
            "The 'k' parameter of EmbeddingIndex.neighbours must be an int "
            f">= 0 (training photos per query). Got {k!r} instead."
        )


def _check_sources(sources, n_rows):
    if sources is None:
        return np.arange(n_rows)
    sources = np.asarray(sources)
    if (sources.shape != (n_rows,) or not np.issubdtype(sources.dtype, np.integer)
            or sources.min() < 0
            or len(np.unique(sources)) != int(sources.max()) + 1):
        raise ValueError(
            "The 'sources' of EmbeddingIndex.fit must be one int per embedding, "
            "numbering the training photos from 0 with every number present. "
            f"Got {sources!r} instead."
        )
    return sources.astype(np.int64)


def _per_source(values, n_sources, name, default):
    if values is None:
        return np.full(n_sources, default)
    values = list(values) if name == "thumbnails" else np.asarray(values).astype(str)
    if len(values) != n_sources:
        raise ValueError(
            f"EmbeddingIndex.fit got {len(values)} {name} for {n_sources} training "
            f"photos; give one per photo (the 'sources')."
        )
    return values


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
        Each of the shape of ``images``: every photo blurred, then every
        photo rotated.

    Examples
    --------
    >>> import numpy as np
    >>> from hybridclf.neighbours import degraded_views
    >>> [v.shape for v in degraded_views(np.zeros((2, 8, 8, 3), np.uint8))]
    [(2, 8, 8, 3), (2, 8, 8, 3), (2, 8, 8, 3)]
    """
    from .augment import gaussian_blur, rotate

    apply = {"blur": gaussian_blur, "rotate": rotate}
    return [np.stack([apply[kind](im, amount) for im in images])
            if len(images) else np.asarray(images).copy()
            for kind, amount in VIEWS]


def index_with_views(embeddings, views, labels=None, *, dtype="float16",
                     files=None, thumbnails=None):
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

    files : array-like of shape (n_images,) or None, default=None
        The file name of each photo.

    thumbnails : sequence of bytes or None, default=None
        A JPEG thumbnail of each photo (:func:`jpeg_thumbnails`).

    Returns
    -------
    index : EmbeddingIndex
        The photos first, then each view of every photo; ``sources_`` gives
        the photo of every entry.
    """
    n = len(embeddings)
    rows = np.vstack([embeddings, *views])
    labels = None if labels is None else np.tile(np.asarray(labels), 1 + len(views))
    return EmbeddingIndex(dtype=dtype).fit(
        rows, labels, sources=np.tile(np.arange(n), 1 + len(views)), files=files,
        thumbnails=thumbnails)


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
        first, as from :meth:`EmbeddingIndex.neighbours`: ``label``,
        ``similarity``, ``file`` and ``thumbnail``.

    Raises
    ------
    ValueError
        When ``index`` is a folder without an index.

    Examples
    --------
    >>> from hybridclf import load_model
    >>> from hybridclf.neighbours import explain
    >>> pipe = load_model("model")                       # doctest: +SKIP
    >>> explain(pipe, ["photo.jpg"], k=3, index="model")  # doctest: +SKIP
    [[{'label': 'waek_man', 'similarity': 0.93, 'file': 'waek_man/front_004.jpg',
       'thumbnail': b'\\xff\\xd8...'}, ...]]
    """
    from .pipeline import get_loader
    from .prediction import embed_images

    if isinstance(index, (str, os.PathLike)):
        directory, index = index, EmbeddingIndex.load(index)
        if index is None:
            raise ValueError(
                f"The model directory {os.fspath(directory)!r} has no {INDEX_FILE}; "
                "only a model trained with a CNN block ('hybridclf train' with the "
                "cnn feature) keeps its training photos. Retrain it with one."
            )
    loader = get_loader(pipe)
    loaded = images if loader is None else loader.transform(images)
    return index.neighbours(embed_images(pipe, loaded), k)
