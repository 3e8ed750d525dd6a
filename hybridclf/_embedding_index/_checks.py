"""The checks of the arguments of an embedding index.

``_check_sources`` and ``_per_source`` check what
:meth:`EmbeddingIndex.fit` is given per embedding and per training photo,
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
