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
- **evidence**: the indices of the nearest training images, to show them.

A blurred or tilted photo moves away from its sharp, upright training photos
in the CNN embedding too (less than in HOG or LBP, but enough to pass for a
stranger). So the index also holds two blurred views of every training
photo and two turned by 10 degrees, one each way (:data:`VIEWS`,
:func:`degraded_views`); ``sources_`` maps each entry back to its training
photo. On amulet6 this cut the share of blurred known photos taken for
strangers from 20-61% to 1-3% while every photo of other domains stayed
rejected (``docs/benchmarks.md``).

The index is saved in a model directory as its own file,
:data:`INDEX_FILE`, a NumPy ``.npz`` archive without pickled objects.
"""

import io
import os

import numpy as np

__all__ = [
    "INDEX_FILE",
    "VIEWS",
    "EmbeddingIndex",
    "degraded_views",
    "index_with_views",
    "novelty_scores",
]

#: File name of the index inside a model directory.
INDEX_FILE = "neighbours.npz"
_FORMAT_VERSION = 1
#: The degraded views of each training photo that the index also holds:
#: (kind, amount) with kind "blur" (Gaussian sigma in pixels at 224 pixels)
#: or "rotate" (degrees, counter-clockwise).
VIEWS = (("blur", 1.2), ("blur", 2.5), ("rotate", 10.0), ("rotate", -10.0))


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
        which it is a degraded view).

    Examples
    --------
    >>> import numpy as np
    >>> from hybridclf.neighbours import EmbeddingIndex
    >>> index = EmbeddingIndex().fit([[1, 0], [0, 1], [1, 1]], ["a", "b", "c"])
    >>> idx, sim = index.query([[2, 0.1]], k=2)
    >>> idx.tolist(), [round(float(v), 2) for v in sim[0]]
    ([[0, 2]], [1.0, 0.74])
    """

    def __init__(self, *, dtype="float16"):
        self.dtype = dtype

    def fit(self, X, y=None, *, sources=None):
        """Store the unit embeddings and labels of the training images.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The embeddings.

        y : array-like of shape (n_samples,) or None, default=None
            Their labels; None stores empty strings.

        sources : array-like of shape (n_samples,) or None, default=None
            The training photo of each embedding; None numbers them.

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
        self.embeddings_ = unit.astype(self.dtype)
        self.labels_ = labels
        self.sources_ = (np.arange(len(unit)) if sources is None
                         else np.asarray(sources, dtype=np.int64))
        return self

    def query(self, X, k=1):
        """The ``k`` most similar training images of each query, best first.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Query embeddings, in the space of the training embeddings.

        k : int, default=1
            How many neighbours; at most the number of training images.

        Returns
        -------
        indices : ndarray of shape (n_queries, k), dtype int
            Rows of the training embeddings (and of ``labels_``).

        similarities : ndarray of shape (n_queries, k), dtype float32
            Their cosine similarities, from 1 (same direction) down to -1.
        """
        if not hasattr(self, "embeddings_"):
            raise ValueError("This EmbeddingIndex is not fitted; call fit first.")
        n_train, n_features = self.embeddings_.shape
        if not (isinstance(k, (int, np.integer)) and 1 <= k <= n_train):
            raise ValueError(
                f"The 'k' parameter of EmbeddingIndex.query must be an int in "
                f"[1, {n_train}] (the training images). Got {k!r} instead."
            )
        unit = _unit_rows(X)
        if unit.shape[1] != n_features:
            raise ValueError(
                f"EmbeddingIndex.query got embeddings of {unit.shape[1]} features; "
                f"the index holds {n_features}. Query with the same pipeline."
            )
        sim = unit @ self.embeddings_.astype(np.float32).T
        top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        top_sim = np.take_along_axis(sim, top, axis=1)
        order = np.argsort(-top_sim, axis=1, kind="stable")
        return (np.take_along_axis(top, order, axis=1),
                np.take_along_axis(top_sim, order, axis=1))

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
        inside the model directory's atomic save.

        Returns
        -------
        data : bytes
        """
        buffer = io.BytesIO()
        np.savez(buffer, embeddings=self.embeddings_, labels=self.labels_,
                 sources=self.sources_, version=np.array(_FORMAT_VERSION))
        return buffer.getvalue()

    @classmethod
    def load(cls, directory):
        """The index saved in ``directory``, or None when it has none.

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
        return index


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


def index_with_views(embeddings, views, labels=None, *, dtype="float16"):
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

    Returns
    -------
    index : EmbeddingIndex
        The photos first, then each view of every photo; ``sources_`` gives
        the photo of every entry.
    """
    n = len(embeddings)
    rows = np.vstack([embeddings, *views])
    labels = None if labels is None else np.tile(np.asarray(labels), 1 + len(views))
    return EmbeddingIndex(dtype=dtype).fit(rows, labels,
                                           sources=np.tile(np.arange(n),
                                                           1 + len(views)))
