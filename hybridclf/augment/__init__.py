"""Image augmentation: the transforms, their random combinations, the folder writer.

Every transform takes an RGB image of shape (height, width, 3) or a greyscale
image of shape (height, width), dtype ``uint8``, and returns a new array of the
same shape and dtype; the input is never modified. Functions that draw random
numbers take a NumPy :class:`~numpy.random.Generator` as ``rng``, so the caller
controls every random draw.

Each technique can be called on its own with explicit values (:func:`rotate`,
:func:`jpeg`, ...). :func:`random_augment` applies a random combination: it
draws the techniques and their values with :func:`draw_params`, then applies
them with :func:`apply_geometry` and :func:`apply_photometry`.

- geometry (``_geometry.py``): flips, rotation, scale, translation and
  perspective, composed into one 3x3 matrix and applied with a single OpenCV
  warp, so a combination interpolates the image once. Borders revealed by a
  warp are filled by reflecting the image, which keeps the image statistics
  and adds no black corners;
- photometry (``_photometry.py``): brightness, contrast, gamma, hue,
  saturation, blur, noise, JPEG re-compression;
- random combinations (``_policy.py``): :data:`DEFAULT_TECHNIQUES`,
  :func:`check_techniques`, :func:`draw_params`, :func:`random_augment`;
- the folder writer (``_folder.py``): :func:`augment_folder`, the work behind
  ``hybridclf augment``; the files it writes (``_folder_output.py``: new
  names, encoding, ``manifest.csv``) and what it returns
  (``_folder_result.py``: :class:`AugmentFolderResult`, :class:`ClassCounts`).

The sampler that over-samples classes with these inside a pipeline,
:class:`~hybridclf.ClassAwareAugmenter`, lives in :mod:`hybridclf.sampling`
(saved models name it ``hybridclf.sampling._augmenter.ClassAwareAugmenter``,
those saved before 2026-12-07 ``hybridclf.sampling.ClassAwareAugmenter``).
"""

from ._folder import augment_folder
from ._folder_result import AugmentFolderResult, ClassCounts
from ._geometry import apply_geometry, flip, perspective, rotate, scale, translate
from ._photometry import (
    apply_photometry,
    brightness_contrast,
    gamma,
    gaussian_blur,
    gaussian_noise,
    hue_saturation,
    jpeg,
)
from ._policy import DEFAULT_TECHNIQUES, check_techniques, draw_params, random_augment

__all__ = [
    "DEFAULT_TECHNIQUES",
    "AugmentFolderResult",
    "ClassCounts",
    "apply_geometry",
    "apply_photometry",
    "augment_folder",
    "brightness_contrast",
    "check_techniques",
    "draw_params",
    "flip",
    "gamma",
    "gaussian_blur",
    "gaussian_noise",
    "hue_saturation",
    "jpeg",
    "perspective",
    "random_augment",
    "rotate",
    "scale",
    "translate",
]
