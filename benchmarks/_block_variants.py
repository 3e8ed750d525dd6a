"""Feature-block variants that the learning curve compares (issue 21).

Small subclasses of the library's extractors, for measuring only: HOG on the
colour image (OpenCV takes each pixel's strongest channel gradient, as Dalal
and Triggs did), several HOG grids side by side, and colour histograms on a
spatial grid. Each computes a fixed vector per image, so
``_common.block_features`` caches it like the library's blocks.
"""

import cv2
import numpy as np

from hybridclf.features import ColorHistogram, HOGFeatures
from hybridclf.features._color import _SPACES


class ColorHOG(HOGFeatures):
    """HOG of the RGB image: per pixel, the channel with the largest gradient."""

    def _transform_chunk(self, images, out):
        window, _ = self._grid(*images.shape[1:3])
        hog = self._descriptor(window)
        for i, image in enumerate(images):
            size = self.image_size
            if size is not None and image.shape[:2] != (size, size):
                image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
            top = (image.shape[0] - window[0]) // 2
            left = (image.shape[1] - window[1]) // 2
            crop = image[top:top + window[0], left:left + window[1]]
            out[i] = hog.compute(np.ascontiguousarray(crop)).ravel()


class GridColor(ColorHistogram):
    """The colour histogram of the whole image and of each cell of a 2x2 grid."""

    def _n_features_for(self, height, width):
        b = self._bins()
        return 5 * b[0] * b[1] * b[2]

    def _transform_chunk(self, images, out):
        code, _, ranges = _SPACES[self.color_space]
        bins = self._bins()
        size = bins[0] * bins[1] * bins[2]
        for i, image in enumerate(images):
            conv = image if code is None else cv2.cvtColor(image, code)
            h, w = conv.shape[:2]
            parts = [conv, conv[:h // 2, :w // 2], conv[:h // 2, w // 2:],
                     conv[h // 2:, :w // 2], conv[h // 2:, w // 2:]]
            for j, part in enumerate(parts):
                hist = cv2.calcHist([np.ascontiguousarray(part)], [0, 1, 2], None,
                                    bins, ranges).ravel()
                out[i, j * size:(j + 1) * size] = np.sqrt(hist / hist.sum())
