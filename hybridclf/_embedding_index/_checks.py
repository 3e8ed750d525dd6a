"""The checks of the arguments of an embedding index.

``_check_params`` checks the parameters of :class:`EmbeddingIndex`;
``_check_labels``, ``_check_sources``, ``_per_source`` and ``_photo_ids``
what :meth:`EmbeddingIndex.fit` is given per embedding and per training photo,
``_check_neighbours_k`` the ``k`` of :meth:`EmbeddingIndex.neighbours` (and
of :func:`hybridclf.neighbours.novelty_scores`); ``_is_int`` accepts Python
and NumPy integers but not bools. Each error names the argument and what it
must be.
"""

import numpy as np

__all__ = []


def _is_int(k):
    return isinstance(k, (int, np.integer)) and not isinstance(k, bool)


def _check_neighbours_k(k):
    if not (_is_int(k) and k >= 0):
        raise ValueError(
            "The 'k' parameter of EmbeddingIndex.neighbours must be an int "
            f">= 0 (training photos per query). Got {k!r} instead."
        )


def _check_params(dtype, n_components):
    """Refuse a ``dtype`` or ``n_components`` that :class:`EmbeddingIndex` lacks."""
    if dtype not in ("float16", "float32"):
        raise ValueError(
            "The 'dtype' parameter of EmbeddingIndex must be a str among "
            f"['float16', 'float32']. Got {dtype!r} instead."
        )
    if n_components is not None and not (_is_int(n_components) and n_components >= 1):
        raise ValueError(
            "The 'n_components' parameter of EmbeddingIndex must be an int "
            f">= 1 or None. Got {n_components!r} instead."
        )


def _check_labels(y, n_rows):
    """``y`` as str, one per embedding; empty strings for None."""
    labels = np.full(n_rows, "") if y is None else np.asarray(y).astype(str)
    if len(labels) != n_rows:
        raise ValueError(
            f"EmbeddingIndex.fit got {n_rows} embeddings and {len(labels)} "
            "labels; give one label per embedding."
        )
    return labels


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


def _photo_ids(photos, n_sources):
    """``photos`` as ints numbered from 0 in order of first appearance."""
    if photos is None:
        return np.arange(n_sources)
    photos = np.asarray(photos)
    if photos.shape != (n_sources,):
        raise ValueError(
            f"EmbeddingIndex.fit got {len(photos)} photos for {n_sources} training "
            "photos; give one per photo (the 'sources')."
        )
    _, first, inverse = np.unique(photos, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[inverse.reshape(-1)]
