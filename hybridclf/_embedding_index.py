"""The embedding index of a model's training photos, and its file.

:class:`EmbeddingIndex` is documented and used through
:mod:`hybridclf.neighbours`, which re-exports it with :data:`INDEX_FILE`;
this module holds the class, its exact search and its ``.npz`` format.
"""

import contextlib
import io
import os

import numpy as np

__all__ = ["INDEX_FILE", "EmbeddingIndex"]

#: File name of the index inside a model directory.
INDEX_FILE = "neighbours.npz"
# 2: the projection ("components"), labels once per photo, UTF-8 names
_FORMAT_VERSION = 2
_READABLE_VERSIONS = (1, 2)
# fewer queries than this search on one BLAS thread: a product of a few rows
# is bound by memory, and on a busy machine a second thread only waits
_FEW_QUERIES = 64
_BLAS = {}


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
        if self.n_components is not None and not (
                _is_int(self.n_components) and self.n_components >= 1):
            raise ValueError(
                "The 'n_components' parameter of EmbeddingIndex must be an int "
                f">= 1 or None. Got {self.n_components!r} instead."
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
        order, starts = self._cached("order", lambda: (
            np.argsort(self.sources_, kind="stable"),
            np.searchsorted(np.sort(self.sources_), np.arange(n))))
        return np.maximum.reduceat(sim[:, order], starts, axis=1)

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
        labels = self._source_labels()
        if not np.array_equal(labels[self.sources_], self.labels_):
            labels = self.labels_  # views labelled unlike their photo: per entry
        arrays = {"embeddings": self.embeddings_, "labels": _utf8(labels),
                  "sources": self.sources_.astype(np.int32),
                  "files": _utf8(self.files_), "version": np.array(_FORMAT_VERSION)}
        if getattr(self, "components_", None) is not None:
            arrays["components"] = self.components_.astype(np.float16)
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
            if version not in _READABLE_VERSIONS or "embeddings" not in data:
                raise ValueError(
                    f"{path!r} is not a hybridclf embedding index of format "
                    f"{_FORMAT_VERSION} or older (found {version}); retrain the "
                    "model with 'hybridclf train' to rebuild it."
                )
            index = cls(dtype=str(data["embeddings"].dtype))
            index.embeddings_ = data["embeddings"]
            index.components_ = (data["components"].astype(np.float32)
                                 if "components" in data else None)
            if index.components_ is not None:
                index.n_components = len(index.components_)
            index.sources_ = data["sources"].astype(np.int64)
            labels = _text(data["labels"])
            index.labels_ = (labels if len(labels) == len(index.sources_)
                             else labels[index.sources_])
            n_sources = int(index.sources_.max()) + 1
            index.files_ = (_text(data["files"]) if "files" in data
                            else np.full(n_sources, ""))
            index.thumbnails_ = None
            if "thumbnail_data" in data:
                blob = data["thumbnail_data"].tobytes()
                offsets = data["thumbnail_offsets"].tolist()
                index.thumbnails_ = [blob[a:b] for a, b in
                                     zip(offsets[:-1], offsets[1:])]
        return index


def _principal_axes(unit, n_components):
    """The first principal axes (uncentred) of unit rows, or None for all.

    Uncentred, so that products of projected rows approximate the cosines
    themselves (the best rank-``n_components`` approximation of the rows).
    Rounded to float16 precision, as saved, so that a loaded index searches
    exactly as the fitted one.
    """
    n_rows, n_features = unit.shape
    if n_components is None or n_components >= n_features:
        return None
    if n_rows <= n_features:
        # the rows span at most n_rows axes: the projection on them is exact
        axes = _row_space_axes(unit, n_components)
    else:
        from scipy.linalg import eigh

        gram = unit.T @ unit
        _, vectors = eigh(gram, subset_by_index=[n_features - n_components,
                                                 n_features - 1])
        axes = vectors[:, ::-1].T
    return np.ascontiguousarray(axes, dtype=np.float16).astype(np.float32)


def _row_space_axes(unit, n_components):
    """The first right singular vectors of rows fewer than their features.

    From the eigenvectors of the rows' Gram matrix (``n_rows`` squared, in
    float64): a training's six indexes of 555 to 695 rows of 1,488 values
    took 0.3 to 0.45 s of CPU time so, 1.1 s by the SVD of the rows (one
    thread). Rounded to float16 as saved, the axes are the SVD's but for a
    few entries in 10,000, one float16 step apart (and signs, on which no
    similarity depends); projected similarities differ by less than 2e-5. Rows
    of nearly lower rank than ``n_components`` go through the SVD, whose
    axes stay orthonormal there.
    """
    from scipy.linalg import eigh

    rows = np.asarray(unit, dtype=np.float64)
    k = min(n_components, len(rows))
    values, vectors = eigh(rows @ rows.T, subset_by_index=[len(rows) - k,
                                                           len(rows) - 1])
    if values[0] <= 1e-8 * values[-1]:
        axes = np.linalg.svd(unit, full_matrices=False)[2][:n_components]
    else:
        axes = (vectors[:, ::-1].T @ rows) / np.sqrt(values[::-1])[:, None]
    # a sign of its own for each axis (its largest entry positive, as
    # scikit-learn's svd_flip): the saved embeddings are then the same from
    # nearly the same rows, as the SVD's were
    largest = axes[np.arange(len(axes)), np.abs(axes).argmax(axis=1)]
    return axes * np.where(largest < 0, -1.0, 1.0)[:, None]


def _blas_threads(n_queries):
    """A context that keeps a search of few queries on one BLAS thread."""
    if n_queries >= _FEW_QUERIES:
        return contextlib.nullcontext()
    if "controller" not in _BLAS:
        from threadpoolctl import ThreadpoolController

        _BLAS["controller"] = ThreadpoolController()
    return _BLAS["controller"].limit(limits=1, user_api="blas")


def _utf8(strings):
    """Strings as UTF-8 bytes: a quarter of NumPy's 4 bytes per character."""
    return np.char.encode(np.asarray(strings).astype(str), "utf-8")


def _text(array):
    """Strings saved by :func:`_utf8`, or as str by format 1."""
    return (np.char.decode(array, "utf-8") if array.dtype.kind == "S"
            else array.astype(str))


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
