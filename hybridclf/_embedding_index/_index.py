"""The embedding index class.

:class:`EmbeddingIndex` is documented and used through
:mod:`hybridclf.neighbours`, which re-exports it with :data:`INDEX_FILE`;
this module holds the class: what it keeps, and the answers of
:meth:`~EmbeddingIndex.query` and :meth:`~EmbeddingIndex.neighbours`. The
search itself (unit rows, one matrix product on few BLAS threads, the top
``k``) is in ``_search``, its ``.npz`` format in ``_file``, its principal
axes in ``_axes``, the checks of its arguments in ``_checks`` and the
check of the thumbnails it hands out in ``_thumbnails``.
"""

import os

import numpy as np

from ._axes import _principal_axes
from ._checks import (
    _check_labels,
    _check_neighbours_k,
    _check_params,
    _check_sources,
    _is_int,
    _per_source,
    _photo_ids,
)
from ._file import INDEX_FILE, _index_bytes, _load_index
from ._search import (
    _blas_threads,
    _closest_member,
    _group_starts,
    _per_group_max,
    _top_k,
    _unit_rows,
)
from ._thumbnails import _checked_thumbnail

__all__ = ["INDEX_FILE", "EmbeddingIndex"]


class EmbeddingIndex:
    """Exact cosine nearest-neighbour search over training embeddings.

    Parameters
    ----------
    dtype : {"float16", "float32"}, default="float16"
        How the unit embeddings are stored; float16 halves the file and
        changes similarities by less than 1e-3. The search works on a float32
        copy, made at the first query and kept (NumPy has no fast float16
        product: converting at every query cost more than the search).

    n_components : int or None, default=None
        Search in at most this many dimensions: the unit embeddings are
        projected on their first principal axes (uncentred, learned in
        :meth:`fit`), and so is each query, which keeps its full length:
        a similarity is then the cosine less the part off the axes, and a
        stranger, with much of its length off the axes, stays far from every
        entry. None (or at least ``n_features``) searches the full space.

    Attributes
    ----------
    embeddings_ : ndarray of shape (n_samples, n_components_)
        The L2-normalised training embeddings, in ``dtype``; projected on
        ``components_`` when it is not None (each row then of length 1 or
        less).

    components_ : ndarray of shape (n_components_, n_features) or None
        The principal axes of the search, float32 (of float16 precision, as
        saved); None for a search in the full space.

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

    photos_ : ndarray of shape (n_sources_,), dtype int
        The distinct photo of each training photo, numbered from 0: training
        photos of the same content (byte-identical files) or made from one
        photo (augmented copies) share one, and :meth:`neighbours` lists
        each distinct photo once, by its closest training photo. Every
        training photo its own for an index built without them (or saved
        before they were kept).

    See Also
    --------
    hybridclf.neighbours.explain : The nearest training photos of images, for
        a fitted pipeline.

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

    def __init__(self, *, dtype="float16", n_components=None):
        self.dtype = dtype
        self.n_components = n_components

    def fit(self, X, y=None, *, sources=None, files=None, thumbnails=None,
            photos=None):
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

        photos : array-like of shape (n_sources,) or None, default=None
            Which training photos are one distinct photo (any hashable id per
            training photo; equal ids share one): byte-identical files, or a
            photo and the copies augmented from it. :meth:`neighbours` gives
            each distinct photo one slot. None: each training photo its own.

        Returns
        -------
        self : EmbeddingIndex
            The fitted index.
        """
        _check_params(self.dtype, self.n_components)
        unit = _unit_rows(X)
        if len(unit) == 0:
            raise ValueError("EmbeddingIndex.fit needs at least one embedding.")
        labels = _check_labels(y, len(unit))
        sources = _check_sources(sources, len(unit))
        n_sources = int(sources.max()) + 1
        self._cache = {}
        self.components_ = _principal_axes(unit, self.n_components)
        if self.components_ is not None:
            unit = unit @ self.components_.T
        self.embeddings_ = unit.astype(self.dtype)
        self.labels_ = labels
        self.sources_ = sources
        self.files_ = _per_source(files, n_sources, "files", "")
        self.thumbnails_ = (None if thumbnails is None else
                            [bytes(t) for t in _per_source(thumbnails, n_sources,
                                                           "thumbnails", None)])
        self.photos_ = _photo_ids(photos, n_sources)
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
        best similarity of the photo and its views; training photos that are
        one photo (``photos_``: the same content, or copies augmented from
        one photo) fill one slot, the closest of them, so that ``k`` slots
        show ``k`` different photos.

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
            without thumbnails, and for one whose header says over 1024
            pixels a side, which hybridclf never writes). A query with a
            missing (NaN) embedding, such as a cascade's photo answered
            without its CNN block, gets an empty list.
        """
        self._check_fitted()
        _check_neighbours_k(k)
        if k == 0:
            return [[] for _ in range(len(_unit_rows(X)))]
        return self._neighbours_from(self._similarities(X), k)

    def _neighbours_from(self, sim, k):
        """:meth:`neighbours` from the similarities of the queries to every entry."""
        photos = self._photos()
        n_photos = int(photos.max()) + 1
        k = min(int(k), n_photos)
        if k == 0:
            return [[] for _ in range(len(sim))]
        per_source = self._per_source(sim)
        if n_photos == self.n_sources_:
            top, top_sim = _top_k(per_source, k)
        else:  # the closest training photo of each of the k closest photos
            top, top_sim = _top_k(_per_group_max(per_source, photos, n_photos), k)
            top = np.array([[_closest_member(row_sim, photos, p) for p in row]
                            for row_sim, row in zip(per_source, top)],
                           dtype=np.int64).reshape(top.shape)
        labels = self._source_labels()
        finite = np.isfinite(top_sim).all(axis=1)
        return [[{"label": str(labels[j]), "similarity": round(float(s), 4),
                  "file": str(self.files_[j]),
                  "thumbnail": None if self.thumbnails_ is None
                  else _checked_thumbnail(self.thumbnails_[j])}
                 for j, s in zip(row, row_sim)] if ok else []
                for row, row_sim, ok in zip(top, top_sim, finite)]

    def _check_fitted(self):
        if not hasattr(self, "embeddings_"):
            raise ValueError("This EmbeddingIndex is not fitted; call fit first.")

    def _similarities(self, X):
        """Cosine similarity of each query to each entry, float32."""
        unit = _unit_rows(X)
        axes = getattr(self, "components_", None)
        n_features = self.embeddings_.shape[1] if axes is None else axes.shape[1]
        if unit.shape[1] != n_features:
            raise ValueError(
                f"EmbeddingIndex got query embeddings of {unit.shape[1]} features; "
                f"the index holds {n_features}. Query with the same pipeline."
            )
        # float16 has no BLAS: converting on every query cost more than the
        # product itself, so the float32 rows are kept once made
        rows = self._cached("rows", lambda: np.ascontiguousarray(
            self.embeddings_, dtype=np.float32))
        with _blas_threads(len(unit)):
            if axes is not None:
                unit = unit @ axes.T
            return unit @ rows.T

    def _cached(self, name, make):
        """What ``make()`` returns, made once per fitted or loaded index."""
        cache = self.__dict__.setdefault("_cache", {})
        if name not in cache:
            cache[name] = make()
        return cache[name]

    def _per_source(self, sim):
        """The best similarity of each training photo over its entries."""
        n = self.n_sources_
        if self._cached("tiled", self._tiled):
            # the layout of index_with_views: the photos, then each view
            return sim.reshape(len(sim), -1, n).max(axis=1)
        starts = self._cached("order", lambda: _group_starts(self.sources_, n))
        return _per_group_max(sim, self.sources_, n, starts)

    def _photos(self):
        photos = getattr(self, "photos_", None)
        return np.arange(self.n_sources_) if photos is None else photos

    def _tiled(self):
        n = self.n_sources_
        return len(self.sources_) % n == 0 and np.array_equal(
            self.sources_, np.tile(np.arange(n), len(self.sources_) // n))

    def _source_labels(self):
        return self._cached("labels", lambda: self.labels_[
            np.unique(self.sources_, return_index=True)[1]])

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_cache", None)  # made again on the first query
        return state

    def save(self, directory):
        """Write the index into ``directory`` as :data:`INDEX_FILE`.

        Parameters
        ----------
        directory : str or os.PathLike
            An existing folder, usually a model directory.

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
        inside the model directory's atomic save. The labels are kept once
        per training photo (its entries share them), names as UTF-8, the
        ``components`` as float16, and the thumbnails as one ``uint8`` array
        and the offsets where each starts.

        Returns
        -------
        data : bytes
        """
        return _index_bytes(self)

    @classmethod
    def load(cls, directory):
        """The index saved in ``directory``, or None when it has none.

        An index saved before file names and thumbnails were kept loads with
        empty file names and no thumbnails.

        Parameters
        ----------
        directory : str or os.PathLike
            The folder holding :data:`INDEX_FILE`, usually a model directory.

        Returns
        -------
        index : EmbeddingIndex or None
            The index, or None when ``directory`` holds none.

        Raises
        ------
        ModelLoadError
            In a model directory, when ``manifest.json`` lists the index but
            the file is missing or was changed, or the file is there but not
            listed (copied in from another model): its nearest photos and
            novelty would not be the model's.

        ValueError
            When the file is not an index of this version.
        """
        return _load_index(cls, directory)
