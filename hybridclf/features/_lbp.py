"""Uniform local binary pattern histograms, at one or several scales."""

from numbers import Integral

import numpy as np
from skimage.feature import local_binary_pattern

from ..utils._validation import Interval, StrOptions
from ._base import _N_JOBS_DOC, ImageFeatureExtractor, to_gray


def _n_codes(n_points, method):
    """Number of distinct codes skimage's LBP produces."""
    if method == "uniform":
        return n_points + 2
    return n_points * (n_points - 1) + 3  # "nri_uniform"


class LBPFeatures(ImageFeatureExtractor):
    __doc__ = f"""Histograms of local binary patterns (LBP) of the greyscale image.

    Each pixel is coded by comparing ``P`` neighbours on a circle of radius
    ``R`` with the centre; uniform codes (at most two 0/1 transitions) keep
    rotation-invariant texture primitives. The histogram of codes is computed
    for each (P, R) scale and each cell of a ``grid`` over the image, and
    normalised to sum to 1. Codes come from
    :func:`skimage.feature.local_binary_pattern`.

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

    {_N_JOBS_DOC}

    Attributes
    ----------
    image_shape_ : tuple of int
        Shape (height, width, 3) of the images seen in ``fit``.

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

    @property
    def n_features_out_(self):
        return self._n_features_out

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
        return (self.grid, self.grid) if isinstance(self.grid, Integral) else self.grid

    def _n_features_for(self, height, width):
        gy, gx = self._grid()
        size = (height, width) if self.image_size is None else (self.image_size,) * 2
        if size[0] < gy or size[1] < gx:
            raise ValueError(
                f"LBPFeatures: a grid of {gy}x{gx} cells needs images of at least "
                f"that many pixels; got {size[0]}x{size[1]}. Use a smaller 'grid'."
            )
        return gy * gx * sum(_n_codes(p, self.method) for p, _ in self._scales())

    def _transform_chunk(self, images, out):
        import cv2

        scales = self._scales()
        gy, gx = self._grid()
        for i, image in enumerate(images):
            gray = to_gray(image)
            if self.image_size is not None:
                gray = cv2.resize(
                    gray, (self.image_size, self.image_size),
                    interpolation=cv2.INTER_AREA,
                )
            rows = np.linspace(0, gray.shape[0], gy + 1).astype(int)
            cols = np.linspace(0, gray.shape[1], gx + 1).astype(int)
            pos = 0
            for n_points, radius in scales:
                n_bins = _n_codes(n_points, self.method)
                codes = local_binary_pattern(gray, n_points, radius, self.method)
                codes = codes.astype(np.intp)
                for r in range(gy):
                    for c in range(gx):
                        cell = codes[rows[r] : rows[r + 1], cols[c] : cols[c + 1]]
                        hist = np.bincount(cell.ravel(), minlength=n_bins)
                        out[i, pos : pos + n_bins] = hist / max(cell.size, 1)
                        pos += n_bins
