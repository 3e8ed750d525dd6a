"""The principal axes on which an embedding index searches.

:class:`EmbeddingIndex` with ``n_components`` projects its unit embeddings,
and each query, on the first principal axes of its training embeddings
(``_principal_axes``): uncentred, so that products of projected rows
approximate the cosines themselves. With fewer rows than features the axes
come from the rows' Gram matrix (``_row_space_axes``).
"""

import numpy as np

from .utils._lapack import largest_eigh

__all__ = []


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
    rows = np.asarray(unit, dtype=np.float64)
    k = min(n_components, len(rows))
    # scipy's eigh, bit for bit, but without holding Python's lock: the
    # indexes of a training are built two at a time in threads
    values, vectors = largest_eigh(rows @ rows.T, k)
    if values[0] <= 1e-8 * values[-1]:
        axes = np.linalg.svd(unit, full_matrices=False)[2][:n_components]
    else:
        axes = (vectors[:, ::-1].T @ rows) / np.sqrt(values[::-1])[:, None]
    # a sign of its own for each axis (its largest entry positive, as
    # scikit-learn's svd_flip): the saved embeddings are then the same from
    # nearly the same rows, as the SVD's were
    largest = axes[np.arange(len(axes)), np.abs(axes).argmax(axis=1)]
    return axes * np.where(largest < 0, -1.0, 1.0)[:, None]
