"""The principal axes on which an embedding index searches.

:class:`EmbeddingIndex` with ``n_components`` projects its unit embeddings,
and each query, on the first principal axes of its training embeddings
(``_principal_axes``): uncentred, so that products of projected rows
approximate the cosines themselves. With fewer rows than features the axes
come from the rows' Gram matrix (``_row_space_axes``).
"""

import numpy as np

from ..utils._lapack import largest_eigh

__all__ = []

#: The smallest eigenvalue of the wanted axes, relative to the largest, that
#: float32 resolves: its eigenvalues are off by up to about 2e-7 of the
#: largest (amulet6's indexes), 50 times less.
_FLOAT32_FLOOR = 1e-5
#: The same in float64: under it the rows are of lower rank than the axes
#: wanted, and the SVD finds them.
_FLOAT64_FLOOR = 1e-8


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

    From the eigenvectors of the rows' Gram matrix (``n_rows`` squared): a
    training's six indexes of 555 to 695 rows of 1,488 values took 0.3 to
    0.45 s of CPU time so in float64, 1.1 s by the SVD of the rows (one
    thread). Rounded to float16 as saved, the axes are the SVD's but for a
    few entries in 10,000, one float16 step apart (and signs, on which no
    similarity depends); projected similarities differ by less than 2e-5.

    The Gram matrix and its eigenpairs are computed in float32 (the
    embeddings' own precision): a training's six indexes took 0.15 s of CPU
    time so, 0.45 s in float64 (one thread; medians of 5). Its eigenvalues
    are then within about 2e-7 of the largest of float64's (the wanted ones
    of amulet6's indexes are from 1.8e-4 of it up); on those six indexes the
    projected similarities are within 2e-5 of float64's, with the same five
    nearest neighbours of every row. Where the smallest wanted eigenvalue is
    under ``_FLOAT32_FLOOR`` of the largest, float32's rounding would show in
    its axis, and float64 decides as before; rows of nearly lower rank than
    ``n_components`` go through the SVD, whose axes stay orthonormal there.
    """
    k = min(n_components, len(unit))
    for dtype in (np.float32, np.float64):
        rows = np.asarray(unit, dtype=dtype)
        # scipy's eigh, bit for bit, but without holding Python's lock: the
        # indexes of a training are built two at a time in threads
        values, vectors = largest_eigh(rows @ rows.T, k)
        floor = _FLOAT32_FLOOR if dtype == np.float32 else _FLOAT64_FLOOR
        if values[0] > floor * values[-1]:
            axes = (vectors[:, ::-1].T @ rows) / np.sqrt(values[::-1])[:, None]
            break
    else:
        axes = np.linalg.svd(unit, full_matrices=False)[2][:n_components]
    # a sign of its own for each axis (its largest entry positive, as
    # scikit-learn's svd_flip): the saved embeddings are then the same from
    # nearly the same rows, as the SVD's were
    largest = axes[np.arange(len(axes)), np.abs(axes).argmax(axis=1)]
    return axes * np.where(largest < 0, -1.0, 1.0)[:, None]
