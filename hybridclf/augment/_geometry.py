"""Geometric augmentations: flips, rotation, scale, translation, perspective.

Each takes an RGB image of shape (height, width, 3) or a greyscale image of
shape (height, width), dtype ``uint8``, and returns a new array of the same
shape and dtype. :func:`apply_geometry` composes several into one 3x3 matrix
and applies it with a single OpenCV warp, so a combination interpolates the
image once. Borders revealed by a warp are filled by reflecting the image,
which keeps the image statistics and adds no black corners.
"""

import cv2
import numpy as np

from ..utils._docstrings import Substitution, _image_docstring
from ..utils._validation import check_image_array

__all__ = [
    "GEOMETRY",
    "apply_geometry",
    "flip",
    "perspective",
    "rotate",
    "scale",
    "translate",
]

#: The names of the geometric techniques (:data:`DEFAULT_TECHNIQUES`).
GEOMETRY = ("hflip", "vflip", "rotate", "scale", "translate", "perspective")


def _check_image(image):
    return check_image_array(image, what="The 'image' argument")


def _center(height, width):
    return (width - 1) / 2.0, (height - 1) / 2.0


def _flip_matrix(height, width, horizontal, vertical):
    matrix = np.eye(3)
    if horizontal:
        matrix[0, 0], matrix[0, 2] = -1.0, width - 1.0
    if vertical:
        matrix[1, 1], matrix[1, 2] = -1.0, height - 1.0
    return matrix


def _rotation_scale_matrix(height, width, angle, factor):
    center = _center(height, width)
    affine = cv2.getRotationMatrix2D(center, float(angle), float(factor))
    return np.vstack([affine, [0.0, 0.0, 1.0]])


def _translation_matrix(height, width, dx, dy):
    matrix = np.eye(3)
    matrix[0, 2], matrix[1, 2] = dx * width, dy * height
    return matrix


def _perspective_matrix(height, width, offsets):
    src = np.array(
        [[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]],
        dtype=np.float32,
    )
    offsets = np.asarray(offsets, dtype=np.float64).reshape(4, 2)
    dst = (src + offsets * [width, height]).astype(np.float32)
    return cv2.getPerspectiveTransform(src, dst)


def _warp(image, matrix):
    height, width = image.shape[:2]
    return cv2.warpPerspective(
        image, matrix, (width, height), flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REFLECT_101,
    )


@Substitution(image=_image_docstring)
def rotate(image, angle):
    """Rotate an image about its centre, counter-clockwise.

    The corners that the rotation uncovers are filled by mirroring the image
    (OpenCV's ``BORDER_REFLECT_101``), not with black.

    Parameters
    ----------
    {image}

    angle : float
        Angle in degrees; positive turns counter-clockwise.

    Returns
    -------
    rotated : ndarray of the same shape and dtype
        The image, turned by ``angle`` degrees.

    Examples
    --------
    >>> import numpy as np
    >>> from hybridclf.augment import rotate
    >>> image = np.arange(9, dtype=np.uint8).reshape(3, 3)
    >>> rotate(image, 90)
    array([[2, 5, 8],
           [1, 4, 7],
           [0, 3, 6]], dtype=uint8)
    """
    _check_image(image)
    height, width = image.shape[:2]
    return _warp(image, _rotation_scale_matrix(height, width, angle, 1.0))


@Substitution(image=_image_docstring)
def flip(image, *, horizontal=True, vertical=False):
    """Mirror an image left-right and/or top-bottom.

    Parameters
    ----------
    {image}

    horizontal : bool, default=True
        Mirror left and right.

    vertical : bool, default=False
        Mirror top and bottom.

    Returns
    -------
    flipped : ndarray of the same shape and dtype
        A new array, even when no flip is asked.

    Examples
    --------
    >>> import numpy as np
    >>> from hybridclf.augment import flip
    >>> flip(np.array([[1, 2, 3]], dtype=np.uint8))
    array([[3, 2, 1]], dtype=uint8)
    """
    _check_image(image)
    if horizontal and vertical:
        return cv2.flip(image, -1)
    if horizontal:
        return cv2.flip(image, 1)
    if vertical:
        return cv2.flip(image, 0)
    return image.copy()


@Substitution(image=_image_docstring)
def scale(image, factor):
    """Zoom an image about its centre and keep its size.

    A factor above 1 enlarges the centre and crops the rest; below 1 the image
    shrinks and the border is filled by mirroring it.

    Parameters
    ----------
    {image}

    factor : float
        Zoom factor; 1 keeps the image.

    Returns
    -------
    scaled : ndarray of the same shape and dtype
        The image, zoomed about its centre.

    Examples
    --------
    >>> import numpy as np
    >>> from hybridclf.augment import scale
    >>> scale(np.zeros((8, 6, 3), np.uint8), 1.2).shape
    (8, 6, 3)
    """
    _check_image(image)
    height, width = image.shape[:2]
    return _warp(image, _rotation_scale_matrix(height, width, 0.0, factor))


@Substitution(image=_image_docstring)
def translate(image, dx, dy):
    """Shift an image by fractions of its width and height.

    The border that the shift uncovers is filled by mirroring the image.

    Parameters
    ----------
    {image}

    dx : float
        Shift to the right, as a fraction of the width (negative: left).

    dy : float
        Shift down, as a fraction of the height (negative: up).

    Returns
    -------
    shifted : ndarray of the same shape and dtype
        The image, moved right by ``dx`` and down by ``dy``.

    Examples
    --------
    >>> import numpy as np
    >>> from hybridclf.augment import translate
    >>> translate(np.array([[0, 10, 20, 30]], dtype=np.uint8), 0.25, 0.0)
    array([[10,  0, 10, 20]], dtype=uint8)
    """
    _check_image(image)
    height, width = image.shape[:2]
    return _warp(image, _translation_matrix(height, width, dx, dy))


@Substitution(image=_image_docstring)
def perspective(image, offsets):
    """Move the four corners of an image: a change of viewpoint.

    Parameters
    ----------
    {image}

    offsets : array-like of shape (4, 2)
        Displacement (x, y) of the top-left, top-right, bottom-right and
        bottom-left corners, as fractions of the width and height.

    Returns
    -------
    warped : ndarray of the same shape and dtype
        The image seen from the new viewpoint; borders filled by reflection.

    Examples
    --------
    >>> import numpy as np
    >>> from hybridclf.augment import perspective
    >>> image = np.full((10, 10), 7, np.uint8)
    >>> perspective(image, [[0.05, 0], [-0.05, 0], [0, 0], [0, 0]]).shape
    (10, 10)
    """
    _check_image(image)
    height, width = image.shape[:2]
    return _warp(image, _perspective_matrix(height, width, offsets))


@Substitution(image=_image_docstring)
def apply_geometry(image, params):
    """Apply the geometric techniques of ``params`` with one warp.

    Flips come first, then rotation and scale about the centre, translation
    and perspective. The other entries of ``params`` are ignored.

    Parameters
    ----------
    {image}

    params : dict
        As returned by :func:`draw_params`.

    Returns
    -------
    warped : ndarray of the same shape and dtype
        The transformed image, or a copy when ``params`` has no geometry.

    Examples
    --------
    >>> import numpy as np
    >>> from hybridclf.augment import apply_geometry
    >>> apply_geometry(np.array([[1, 2]], np.uint8), {{"hflip": True, "jpeg": 80}})
    array([[2, 1]], dtype=uint8)
    """
    _check_image(image)
    if not any(name in params for name in GEOMETRY):
        return image.copy()
    if set(params) & set(GEOMETRY) <= {"hflip", "vflip"}:
        return flip(image, horizontal="hflip" in params, vertical="vflip" in params)
    height, width = image.shape[:2]
    matrix = _flip_matrix(height, width, "hflip" in params, "vflip" in params)
    if "rotate" in params or "scale" in params:
        matrix = _rotation_scale_matrix(
            height, width, params.get("rotate", 0.0), params.get("scale", 1.0)
        ) @ matrix
    if "translate" in params:
        matrix = _translation_matrix(height, width, *params["translate"]) @ matrix
    if "perspective" in params:
        matrix = _perspective_matrix(height, width, params["perspective"]) @ matrix
    return _warp(image, matrix)
