"""Uniform local binary pattern histograms, at one or several scales."""

import functools
import threading
from numbers import Integral

import numpy as np

from ..utils._docstrings import (
    Substitution,
    _image_shape_docstring,
    _n_jobs_extract_docstring,
)
from ..utils._validation import Interval, StrOptions
from ._base import ImageFeatureExtractor, to_gray


def _n_codes(n_points, method):
    """Number of distinct codes skimage's LBP produces."""
    if method == "uniform":
        return n_points + 2
    return n_points * (n_points - 1) + 3  # "nri_uniform"


#: Images whose codes are computed together: large enough that NumPy's loops,
#: which run without the GIL, outweigh the Python between them (so threads
#: scale), small enough that the arrays stay in cache.
_STACK = 8


def _neighbour_bits(images, n_points, radius):
    """Bits ``neighbour >= centre`` of shape (P, n, rows, cols), per pixel.

    A vectorised form of scikit-image's circular LBP sampling: the neighbours
    sit at offsets rounded to 5 decimals, are read by bilinear interpolation
    with zeros outside the image, and every product and sum is taken in the
    same order in float64, so the bits equal
    :func:`skimage.feature.local_binary_pattern`'s. A bilinear read
    interpolates along the columns on rows ``r`` and ``r + 1``: one pass over
    ``rows + 1`` rows gives both (the same products, a third less work); the
    points that share a column offset (mirror images about the horizontal
    axis) share one such pass, over every row.
    """
    n, rows, cols = images.shape
    angles = 2 * np.pi * np.arange(n_points, dtype=np.float64) / n_points
    offsets_r = np.round(-radius * np.sin(angles), 5)
    offsets_c = np.round(radius * np.cos(angles), 5)
    pad = int(np.ceil(radius)) + 1
    padded = np.zeros((n, rows + 2 * pad, cols + 2 * pad))
    padded[:, pad : pad + rows, pad : pad + cols] = images
    row_idx = np.arange(rows, dtype=np.float64)
    col_idx = np.arange(cols, dtype=np.float64)
    bits = np.empty((n_points, n, rows, cols), dtype=bool)
    pair, tmp = np.empty((n, rows + 2 * pad, cols)), np.empty((n, rows + 2 * pad, cols))
    out, scratch = np.empty((n, rows, cols)), tmp[:, :rows]

    def window(r, c, extra=0):
        return padded[:, r + pad : r + pad + rows + extra, c + pad : c + pad + cols]

    def lerp(a, b, weight, out, scratch):
        # (1 - w) * a + w * b, as scikit-image computes it
        np.multiply(1 - weight, a, out=out)
        np.multiply(weight, b, out=scratch)
        return np.add(out, scratch, out=out)

    def split(offsets, index):
        # first whole pixel, the next, the weight of the next per position,
        # and whether any weight is not 0
        at = index + offsets
        low = np.floor(at)
        weight = at - low
        return int(low[0]), int(np.ceil(at[0])), weight, bool(weight.any())

    by_column = {}
    for i in range(n_points):
        by_column.setdefault(offsets_c[i], []).append(i)
    for offset_c, points in by_column.items():
        c0, c1, dc, in_column = split(offset_c, col_idx)
        reads = {i: split(offsets_r[i], row_idx) for i in points}
        between = [i for i in points if reads[i][3] and in_column]
        # the column pass of the points read between rows and columns: over
        # the rows + 1 one point needs, or over every row when several share it
        first, count = ((-pad, rows + 2 * pad) if len(between) > 1
                        else (reads[between[0]][0], rows + 1) if between else (0, 0))
        if between:
            lerp(window(first, c0, count - rows), window(first, c1, count - rows), dc,
                 pair[:, :count], tmp[:, :count])
        for i in points:
            r0, r1, dr, in_row = reads[i]
            dr = dr[:, None]
            # a zero weight adds exactly 0, so whole-pixel offsets skip a lerp
            if not in_row and not in_column:
                texture = window(r0, c0)
            elif not in_row:
                texture = lerp(window(r0, c0), window(r0, c1), dc, out, scratch)
            elif not in_column:
                texture = lerp(window(r0, c0), window(r1, c0), dr, out, scratch)
            else:  # r1 = r0 + 1: row r1's pass is row r0's, one row down
                top = r0 - first
                texture = lerp(pair[:, top : top + rows],
                               pair[:, top + 1 : top + 1 + rows], dr, out, scratch)
            # for finite numbers t >= c exactly when t - c >= 0 (scikit-image's test)
            np.greater_equal(texture, images, out=bits[i])
    return bits


def lbp_codes(images, n_points, radius, method="uniform"):
    """Uniform LBP codes of greyscale images, equal to scikit-image's.

    Parameters
    ----------
    images : ndarray of shape (rows, cols) or (n, rows, cols)
        One greyscale image, or several of the same size.

    n_points, radius : int, float
        Number of circle points ``P`` and radius ``R``.

    method : {"uniform", "nri_uniform"}, default="uniform"
        As in :func:`skimage.feature.local_binary_pattern`.

    Returns
    -------
    codes : ndarray of the shape of ``images``, dtype intp
        Codes in ``[0, n_codes)``.
    """
    images = np.asarray(images, dtype=np.float64)
    bits = _neighbour_bits(images.reshape(-1, *images.shape[-2:]), n_points, radius)
    # counted in bytes while they fit: summing bools into intp casts each
    count = np.uint8 if n_points < 256 else np.intp
    # scikit-image counts the changes along the circle without wrapping round
    changes = np.not_equal(bits[1:], bits[:-1]).sum(axis=0, dtype=count)
    n_ones = bits.sum(axis=0, dtype=count).astype(np.intp)
    uniform = changes <= 2
    if method == "uniform":
        codes = np.where(uniform, n_ones, n_points + 1)
    else:  # "nri_uniform": each uniform pattern by its count of ones and rotation
        first_one = np.argmax(bits, axis=0)
        first_zero = np.argmax(~bits, axis=0)
        rotation = np.where(first_one == 0, n_ones - first_zero,
                            n_points - first_one)
        codes = 1 + (n_ones - 1) * n_points + rotation
        codes[n_ones == 0] = 0
        codes[n_ones == n_points] = n_points * (n_points - 1) + 1
        codes[~uniform] = n_points * (n_points - 1) + 2
    return codes.reshape(images.shape)


def _cell_histograms(codes, n_bins, grid):
    """Normalised code histograms of each grid cell: (n, gy * gx * n_bins)."""
    n, rows, cols = codes.shape
    gy, gx = grid
    cell_r = np.searchsorted(np.linspace(0, rows, gy + 1).astype(int)[1:-1],
                             np.arange(rows), side="right")
    cell_c = np.searchsorted(np.linspace(0, cols, gx + 1).astype(int)[1:-1],
                             np.arange(cols), side="right")
    cell = cell_r[:, None] * gx + cell_c  # (rows, cols)
    index = (np.arange(n)[:, None, None] * (gy * gx) + cell) * n_bins + codes
    counts = np.bincount(index.ravel(), minlength=n * gy * gx * n_bins)
    counts = counts.reshape(n, gy * gx, n_bins)
    sizes = np.bincount(cell.ravel(), minlength=gy * gx)
    return (counts / np.maximum(sizes, 1)[:, None]).reshape(n, -1)


@Substitution(n_jobs=_n_jobs_extract_docstring, image_shape=_image_shape_docstring)
class LBPFeatures(ImageFeatureExtractor):
    """Histograms of local binary patterns (LBP) of the greyscale image.

    Each pixel is coded by comparing ``P`` neighbours on a circle of radius
    ``R`` with the centre; uniform codes (at most two 0/1 transitions) keep
    rotation-invariant texture primitives. The histogram of codes is computed
    for each (P, R) scale and each cell of a ``grid`` over the image, and
    normalised to sum to 1. The codes equal
    :func:`skimage.feature.local_binary_pattern`'s, computed vectorised.

    Parameters
    ----------
    points_radii : tuple of (int, float) pairs, default=((8, 1), (16, 2))
        The (P, R) scales: number of circle points and radius in pixels.

    method : {{"uniform", "nri_uniform"}}, default="uniform"
        The code set:

        - "uniform": rotation-invariant uniform patterns, P + 2 bins.
        - "nri_uniform": uniform patterns that keep their rotation,
          P (P - 1) + 3 bins.

    grid : int or tuple of (int, int), default=(4, 4)
        Number of cells (rows, columns) with a histogram each; more cells keep
        where textures are.

    image_size : int or None, default=128
        Resize the greyscale image to ``image_size`` x ``image_size`` first;
        ``None`` keeps the input size.

    {n_jobs}

    Attributes
    ----------
    {image_shape}

    n_features_out_ : int
        ``grid_y * grid_x * sum(n_codes(P))`` over the scales.

    References
    ----------
    .. [1] T. Ojala, M. Pietikainen and T. Maenpaa, "Multiresolution gray-scale
       and rotation invariant texture classification with local binary
       patterns", IEEE TPAMI 24(7), 2002. :doi:`10.1109/TPAMI.2002.1017623`

    Examples
    --------
    >>> import numpy as np
    >>> from hybridclf.features import LBPFeatures
    >>> images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), np.uint8)
    >>> LBPFeatures(points_radii=((8, 1),), grid=1).fit_transform(images).shape
    (2, 10)
    """

    _parameter_constraints: dict = {
        **ImageFeatureExtractor._parameter_constraints,
        "points_radii": [tuple, list],
        "method": [StrOptions({"uniform", "nri_uniform"})],
        "grid": [Interval(Integral, 1, None, closed="left"), tuple],
        "image_size": [Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(
        self, *, points_radii=((8, 1), (16, 2)), method="uniform",
        grid=(4, 4), image_size=128, n_jobs=None,
    ):
        self.points_radii = points_radii
        self.method = method
        self.grid = grid
        self.image_size = image_size
        self.n_jobs = n_jobs

    def _n_features_for(self, height, width):
        gy, gx = self._grid()
        size = (height, width) if self.image_size is None else (self.image_size,) * 2
        if size[0] < gy or size[1] < gx:
            raise ValueError(
                f"LBPFeatures: a grid of {gy}x{gx} cells needs images of at least "
                f"that many pixels; got {size[0]}x{size[1]}. Use a smaller 'grid'."
            )
        return gy * gx * sum(_n_codes(p, self.method) for p, _ in self._scales())

    def _scales(self):
        scales = [tuple(pr) for pr in self.points_radii]
        if not scales or any(
            len(pr) != 2 or not isinstance(pr[0], Integral) or pr[0] < 1 or pr[1] <= 0
            for pr in scales
        ):
            raise ValueError(
                "The 'points_radii' parameter of LBPFeatures must be a non-empty "
                "tuple of (P, R) pairs with int P >= 1 and R > 0, such as "
                f"((8, 1), (16, 2)). Got {self.points_radii!r} instead."
            )
        return scales

    def _grid(self):
        grid = (self.grid,) * 2 if isinstance(self.grid, Integral) else tuple(self.grid)
        if len(grid) != 2 or not all(isinstance(g, Integral) and g >= 1 for g in grid):
            raise ValueError(
                "The 'grid' parameter of LBPFeatures must be an int >= 1 or a tuple "
                f"of two such ints (rows, cols). Got {self.grid!r} instead."
            )
        return (int(grid[0]), int(grid[1]))

    def _transform_chunk(self, images, out):
        for first in range(0, len(images), _STACK):
            grays = self._grays(images[first : first + _STACK])
            out[first : first + len(grays)] = np.hstack([
                self._scale_histograms(grays, n_points, radius)
                for n_points, radius in self._scales()
            ])

    def _extract_parts(self, X):
        """One part per (P, R) scale, on greyscale images made once.

        The first part to run makes the greyscale images (in its thread, so
        that the parts start at once); the others wait for them.
        """
        grays = _Once(functools.partial(self._grays, X))
        gy, gx = self._grid()
        parts, start = [], 0
        for n_points, radius in self._scales():
            width = gy * gx * _n_codes(n_points, self.method)
            parts.append((slice(start, start + width), functools.partial(
                self._scale_histograms, grays, n_points, radius)))
            start += width
        return parts

    def _grays(self, images):
        """The greyscale images, resized to ``image_size``: (n, rows, cols)."""
        import cv2

        grays = [to_gray(image) for image in images]
        if self.image_size is not None:
            size = (self.image_size, self.image_size)
            grays = [cv2.resize(g, size, interpolation=cv2.INTER_AREA)
                     for g in grays]
        return np.stack(grays)

    def _scale_histograms(self, grays, n_points, radius):
        """The cell histograms of one (P, R) scale: (n, cells * codes)."""
        if isinstance(grays, _Once):
            grays = grays()
        return _cell_histograms(lbp_codes(grays, n_points, radius, self.method),
                                _n_codes(n_points, self.method), self._grid())


class _Once:
    """A function without arguments, called once, its result kept; thread-safe."""

    def __init__(self, func):
        self._func, self._lock, self._result = func, threading.Lock(), None

    def __call__(self):
        with self._lock:
            if self._result is None:
                self._result = self._func()
            return self._result
