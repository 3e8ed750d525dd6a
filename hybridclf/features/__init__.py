"""Feature extractors: scikit-learn transformers from images to feature rows.

Each takes the output of :class:`~hybridclf.io.ImageLoader` (uint8 arrays of
shape (n_images, height, width, 3)) and returns a float32 array of shape
(n_images, n_features).
"""

from ._base import ImageFeatureExtractor
from ._cnn import CNNFeatures
from ._color import ColorHistogram
from ._hog import HOGFeatures
from ._lbp import LBPFeatures
from ._sift import SIFTBoVW

__all__ = [
    "CNNFeatures",
    "ColorHistogram",
    "HOGFeatures",
    "ImageFeatureExtractor",
    "LBPFeatures",
    "SIFTBoVW",
]
