"""The exact cosine search of an embedding index: unit rows and the top ``k``.

:class:`EmbeddingIndex` keeps its rows of length 1 (``_unit_rows``), so that
a similarity is one matrix product, run on one BLAS thread for a few queries
(``_blas_threads``); ``_top_k`` takes the ``k`` largest of each row, best
first. ``_group_starts`` and ``_per_group_max`` reduce the similarities of
the entries to one per group, the best of its members: per training photo
(its degraded views) and per distinct photo (copies of one photo), and
``_closest_member`` names the member that gave it.
"""

import contextlib

import numpy as np

__all__ = []

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


def _blas_threads(n_queries):
    """A context that keeps a search of few queries on one BLAS thread."""
    if n_queries >= _FEW_QUERIES:
        return contextlib.nullcontext()
    if "controller" not in _BLAS:
        from threadpoolctl import ThreadpoolController

        _BLAS["controller"] = ThreadpoolController()
    return _BLAS["controller"].limit(limits=1, user_api="blas")


def _top_k(sim, k):
    """Columns of the ``k`` largest values of each row, and the values, best first."""
    top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
    top_sim = np.take_along_axis(sim, top, axis=1)
    order = np.argsort(-top_sim, axis=1, kind="stable")
    return (np.take_along_axis(top, order, axis=1),
            np.take_along_axis(top_sim, order, axis=1))


def _group_starts(groups, n_groups):
    """The columns ordered by group, and where each group starts in that order.

    ``groups`` numbers the columns' groups from 0 to ``n_groups - 1``, each
    present: what ``np.maximum.reduceat`` takes.
    """
    order = np.argsort(groups, kind="stable")
    return order, np.searchsorted(groups[order], np.arange(n_groups))


def _per_group_max(values, groups, n_groups, starts=None):
    """The largest of ``values``' columns in each group, per row.

    ``starts`` is what :func:`_group_starts` gives for ``groups``, when kept.
    """
    order, starts = _group_starts(groups, n_groups) if starts is None else starts
    return np.maximum.reduceat(values[:, order], starts, axis=1)


def _closest_member(row_sim, groups, group):
    """The column of ``group`` with the largest value of ``row_sim``."""
    members = np.flatnonzero(groups == group)
    return members[np.argmax(row_sim[members])]
