"""Histograms of oriented gradients, computed with OpenCV."""

from numbers import Integral

import cv2
import numpy as np

from ..utils._docstrings import (
    Substitution,
    _image_shape_docstring,
    _n_jobs_extract_docstring,
)
from ..utils._validation import Interval
from ._base import ImageFeatureExtractor, to_gray


def _pair(value, name):
    """(rows, cols) of an int or a pair of ints >= 1; else an error naming ``name``.

    A 0 reached OpenCV's HOGDescriptor unchecked and crashed the process.
    """
    pair = (value, value) if isinstance(value, Integral) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, Integral) and v >= 1 for v in pair):
        raise ValueError(
            f"The {name!r} parameter of HOGFeatures must be an int >= 1 or a tuple "
            f"of two such ints (rows, cols). Got {value!r} instead."
        )
    return (int(pair[0]), int(pair[1]))


@Substitution(n_jobs=_n_jobs_extract_docstring, image_shape=_image_shape_docstring)
class HOGFeatures(ImageFeatureExtractor):
    """Histograms of oriented gradients (HOG) of the greyscale image.

    Gradient orientations are binned per cell of ``pixels_per_cell`` pixels;
    cells are grouped in overlapping blocks of ``cells_per_block`` cells (one
    cell apart), and each block is normalised with L2-Hys (L2 norm, values
    clipped at 0.2, renormalised), as in Dalal and Triggs. The computation is
    OpenCV's ``HOGDescriptor``, several times faster than
    :func:`skimage.feature.hog` on the same grid.

    Parameters
    ----------
    image_size : int or None, default=128
        The greyscale image is resized to ``image_size`` x ``image_size``
        pixels first; ``None`` keeps the input size. Fewer pixels give fewer,
        coarser features and a faster transform.

    orientations : int, default=9
        Number of orientation bins over 0-180 degrees (0-360 with
        ``signed_gradient``).

    pixels_per_cell : int or tuple of (int, int), default=(16, 16)
        Cell size (rows, columns) in pixels.

    cells_per_block : int or tuple of (int, int), default=(2, 2)
        Block size (rows, columns) in cells.

    transform_sqrt : bool, default=True
        Apply square-root gamma compression to the image first, which reduces
        the effect of lighting.

    signed_gradient : bool, default=False
        Distinguish opposite gradient directions.

    {n_jobs}

    Attributes
    ----------
    {image_shape}

    n_features_out_ : int
        Length of the feature vector. With ``cells = size // pixels_per_cell``
        on each axis, it is ``(cells_y - block_y + 1) * (cells_x - block_x + 1)
        * block_y * block_x * orientations``. The image is centre-cropped to
        the whole cells it holds.

    See Also
    --------
    skimage.feature.hog : The reference implementation.

    References
    ----------
    .. [1] N. Dalal and B. Triggs, "Histograms of oriented gradients for human
       detection", CVPR 2005. :doi:`10.1109/CVPR.2005.177`

    Examples
    --------
    >>> import numpy as np
    >>> from hybridclf.features import HOGFeatures
    >>> images = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3), np.uint8)
    >>> HOGFeatures(image_size=None).fit_transform(images).shape
    (2, 324)
    """

    _parameter_constraints: dict = {
        **ImageFeatureExtractor._parameter_constraints,
        "image_size": [Interval(Integral, 1, None, closed="left"), None],
        "orientations": [Interval(Integral, 1, None, closed="left")],
        "pixels_per_cell": [Interval(Integral, 1, None, closed="left"), tuple],
        "cells_per_block": [Interval(Integral, 1, None, closed="left"), tuple],
        "transform_sqrt": ["boolean"],
        "signed_gradient": ["boolean"],
    }

    def __init__(
        self, *, image_size=128, orientations=9, pixels_per_cell=(16, 16),
        cells_per_block=(2, 2), transform_sqrt=True, signed_gradient=False,
        n_jobs=None,
    ):
        self.image_size = image_size
        self.orientations = orientations
        self.pixels_per_cell = pixels_per_cell
        self.cells_per_block = cells_per_block
        self.transform_sqrt = transform_sqrt
        self.signed_gradient = signed_gradient
        self.n_jobs = n_jobs

    def _descriptor(self, window):
        # OpenCV sizes are (w, h)
        cell = _pair(self.pixels_per_cell, "pixels_per_cell")[::-1]
        block = _pair(self.cells_per_block, "cells_per_block")[::-1]
        return cv2.HOGDescriptor(
            window[::-1],
            (block[0] * cell[0], block[1] * cell[1]),
            cell,
            cell,
            self.orientations,
            1,  # derivAperture
            -1.0,  # winSigma: OpenCV's default Gaussian block weighting
            cv2.HOGDESCRIPTOR_L2HYS,
            0.2,
            bool(self.transform_sqrt),
            cv2.HOGDESCRIPTOR_DEFAULT_NLEVELS,
            bool(self.signed_gradient),
        )

    def _grid(self, height, width):
        """(window, n_blocks) of the HOG grid for an image of this size."""
        if self.image_size is not None:
            height = width = self.image_size
        cell = _pair(self.pixels_per_cell, "pixels_per_cell")
        block = _pair(self.cells_per_block, "cells_per_block")
        cells = (height // cell[0], width // cell[1])
        n_blocks = (cells[0] - block[0] + 1, cells[1] - block[1] + 1)
        if min(n_blocks) < 1:
            raise ValueError(
                f"HOGFeatures: images of {height}x{width} pixels hold fewer than "
                f"one block of {block} cells of {cell} pixels. Use a larger "
                "'image_size' or smaller 'pixels_per_cell' / 'cells_per_block'."
            )
        return (cells[0] * cell[0], cells[1] * cell[1]), n_blocks

    def _n_features_for(self, height, width):
        _, n_blocks = self._grid(height, width)
        block = _pair(self.cells_per_block, "cells_per_block")
        return n_blocks[0] * n_blocks[1] * block[0] * block[1] * self.orientations

    def _transform_chunk(self, images, out):
        window, _ = self._grid(*images.shape[1:3])
        hog = self._descriptor(window)  # one per thread: not shared
        for i, image in enumerate(images):
            gray = to_gray(image)
            if self.image_size is not None and gray.shape != (self.image_size,) * 2:
                gray = cv2.resize(
                    gray, (self.image_size, self.image_size),
                    interpolation=cv2.INTER_AREA,
                )
            top = (gray.shape[0] - window[0]) // 2
            left = (gray.shape[1] - window[1]) // 2
            crop = gray[top : top + window[0], left : left + window[1]]
            out[i] = hog.compute(np.ascontiguousarray(crop)).ravel()
