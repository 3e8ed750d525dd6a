"""The quality check of a generated image.

``_check_quality`` compares a generated image with its source on 64x64
greyscale copies (``_small_gray``): it must not be blank, not much more
clipped to black or white than its source (``_clipped_share``), and similar
to its source after the same geometric transform (SSIM at least the
threshold).
"""

import cv2
import numpy as np

__all__ = []


# side of the greyscale copies compared by the quality check
_CHECK_SIDE = 64
# a generated image is blank when its grey levels vary less than this (and
# less than half as much as its source's do)
_BLANK_STD = 2.0
# grey levels counted as clipped, and the largest increase of their share
_CLIPPED_LOW, _CLIPPED_HIGH = 2, 253
_MAX_CLIPPED_INCREASE = 0.2


def _small_gray(image):
    """A 64x64 greyscale copy of an image, for the quality check."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    return cv2.resize(gray, (_CHECK_SIDE, _CHECK_SIDE), interpolation=cv2.INTER_AREA)


def _clipped_share(gray):
    return float(np.count_nonzero((gray <= _CLIPPED_LOW) | (gray >= _CLIPPED_HIGH))
                 / gray.size)


def _check_quality(source_gray, reference, generated, threshold):
    """(reason or None, similarity) of one generated image.

    ``reference`` is the source after the same geometric transform as the
    generated image, so the similarity measures what the photometric
    techniques did, not how far the image was turned or moved.
    """
    from skimage.metrics import structural_similarity

    reference, generated = _small_gray(reference), _small_gray(generated)
    similarity = float(structural_similarity(reference, generated, data_range=255))
    spread = float(generated.std())
    if spread < min(_BLANK_STD, 0.5 * float(source_gray.std())):
        return "blank", similarity
    if _clipped_share(generated) - _clipped_share(source_gray) > _MAX_CLIPPED_INCREASE:
        return "saturated", similarity
    if similarity < threshold:
        return "dissimilar", similarity
    return None, similarity
