"""Image augmentations: pure functions from one image to a new image.

Every function takes an RGB image of shape (height, width, 3) or a greyscale
image of shape (height, width), dtype ``uint8``, and returns a new array of the
same shape and dtype; the input is never modified. Functions that draw random
numbers take a NumPy :class:`~numpy.random.Generator` as ``rng``, so the caller
controls every random draw.

Each technique can be called on its own with explicit values (:func:`rotate`,
:func:`jpeg`, ...). :func:`random_augment` applies a random combination: it
draws the techniques and their values with :func:`draw_params`, then applies
them with :func:`apply_geometry` and :func:`apply_photometry`.
:class:`~hybridclf.ClassAwareAugmenter` uses these to over-sample classes.

The geometric techniques (flips, rotation, scale, translation, perspective)
are composed into one 3x3 matrix and applied with a single OpenCV warp, so a
combination interpolates the image once. Borders revealed by a warp are
filled by reflecting the image, which keeps the image statistics and adds no
black corners.
"""

import functools
import logging
from numbers import Real

import cv2
import numpy as np

__all__ = [
    "DEFAULT_TECHNIQUES",
    "apply_geometry",
    "apply_photometry",
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

logger = logging.getLogger(__name__)

#: Each technique's default (probability, (low, high)) of :func:`draw_params`.
#: Values are drawn uniformly from (low, high); flips have no range. The ranges
#: are mild on purpose: the object must stay recognisable.
DEFAULT_TECHNIQUES = {
    "hflip": (0.5, None),
    "vflip": (0.0, None),
    "rotate": (0.5, (-15.0, 15.0)),
    "scale": (0.5, (0.9, 1.1)),
    "translate": (0.3, (-0.06, 0.06)),
    "perspective": (0.3, (0.0, 0.05)),
    "brightness": (0.5, (-0.1, 0.1)),
    "contrast": (0.5, (0.85, 1.15)),
    "gamma": (0.3, (0.8, 1.25)),
    "hue": (0.3, (-8.0, 8.0)),
    "saturation": (0.3, (0.8, 1.2)),
    "blur": (0.2, (0.5, 1.2)),
    "noise": (0.3, (2.0, 8.0)),
    "jpeg": (0.3, (60.0, 95.0)),
}

# accepted (low, high) bounds of each technique's range, and its unit
_LIMITS = {
    "rotate": (-180.0, 180.0, "degrees"),
    "scale": (0.1, 10.0, "zoom factor"),
    "translate": (-0.5, 0.5, "fraction of the side"),
    "perspective": (0.0, 0.25, "fraction of the side"),
    "brightness": (-1.0, 1.0, "fraction of 255"),
    "contrast": (0.0, 10.0, "factor"),
    "gamma": (0.05, 20.0, "exponent"),
    "hue": (-180.0, 180.0, "degrees"),
    "saturation": (0.0, 10.0, "factor"),
    "blur": (0.0, 20.0, "sigma in pixels"),
    "noise": (0.0, 255.0, "sigma in grey levels"),
    "jpeg": (1.0, 100.0, "quality"),
}
_GEOMETRY = ("hflip", "vflip", "rotate", "scale", "translate", "perspective")


# -- input checks ----------------------------------------------------------------
def _check_image(image, name="image"):
    if not isinstance(image, np.ndarray):
        raise TypeError(
            f"The {name!r} argument must be a numpy array of shape (height, width) "
            f"or (height, width, 3); got {type(image).__name__}."
        )
    if image.dtype != np.uint8:
        raise TypeError(
            f"The {name!r} argument must have dtype uint8; got {image.dtype}. "
            "Convert it first, for example with hybridclf.io.read_image."
        )
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise ValueError(
            f"The {name!r} argument must have shape (height, width) or (height, "
            f"width, 3); got shape {image.shape}."
        )
    return image


def _is_color(image):
    return image.ndim == 3


# -- geometry --------------------------------------------------------------------
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


def rotate(image, angle):
    """Rotate an image about its centre, counter-clockwise.

    Parameters
    ----------
    image : ndarray of shape (height, width[, 3]), dtype uint8
        The image.

    angle : float
        Angle in degrees; positive turns counter-clockwise.

    Returns
    -------
    rotated : ndarray of the same shape and dtype
        The rotated image; the corners are filled by reflection.

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


def flip(image, *, horizontal=True, vertical=False):
    """Mirror an image left-right and/or top-bottom.

    Parameters
    ----------
    image : ndarray of shape (height, width[, 3]), dtype uint8
        The image.

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


def scale(image, factor):
    """Zoom an image about its centre and keep its size.

    Parameters
    ----------
    image : ndarray of shape (height, width[, 3]), dtype uint8
        The image.

    factor : float
        Zoom factor: above 1 enlarges the centre and crops the rest; below 1
        shrinks the image and fills the border by reflection.

    Returns
    -------
    scaled : ndarray of the same shape and dtype
        The zoomed image.

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


def translate(image, dx, dy):
    """Shift an image by fractions of its width and height.

    Parameters
    ----------
    image : ndarray of shape (height, width[, 3]), dtype uint8
        The image.

    dx : float
        Shift to the right, as a fraction of the width (negative: left).

    dy : float
        Shift down, as a fraction of the height (negative: up).

    Returns
    -------
    shifted : ndarray of the same shape and dtype
        The shifted image; the uncovered border is filled by reflection.

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


def perspective(image, offsets):
    """Move the four corners of an image: a change of viewpoint.

    Parameters
    ----------
    image : ndarray of shape (height, width[, 3]), dtype uint8
        The image.

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


# -- photometry ------------------------------------------------------------------
def _lut(values):
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


_LEVELS = np.arange(256, dtype=np.float64)


def _tone_levels(levels, mean, brightness, contrast, gamma_value):
    """Map grey levels through contrast, brightness and gamma, in that order."""
    levels = (levels - mean) * contrast + mean + brightness * 255.0
    if gamma_value != 1.0:
        levels = 255.0 * (np.clip(levels, 0.0, 255.0) / 255.0) ** gamma_value
    return levels


def brightness_contrast(image, brightness=0.0, contrast=1.0):
    """Change the brightness and the contrast of an image.

    Each value ``v`` becomes ``(v - mean) * contrast + mean + brightness *
    255``, clipped to 0..255, where ``mean`` is the mean of the image: the
    contrast changes about the image's own mean level.

    Parameters
    ----------
    image : ndarray of shape (height, width[, 3]), dtype uint8
        The image.

    brightness : float, default=0.0
        Added level, as a fraction of 255 (0.1 adds about 26 grey levels).

    contrast : float, default=1.0
        Factor on the deviations from the mean; 1 keeps the contrast.

    Returns
    -------
    adjusted : ndarray of the same shape and dtype
        The adjusted image.

    Examples
    --------
    >>> import numpy as np
    >>> from hybridclf.augment import brightness_contrast
    >>> brightness_contrast(np.array([[100, 200]], np.uint8), contrast=0.5)
    array([[125, 175]], dtype=uint8)
    """
    _check_image(image)
    levels = _tone_levels(_LEVELS, float(image.mean()), brightness, contrast, 1.0)
    return cv2.LUT(image, _lut(levels))


def gamma(image, gamma):
    """Apply a gamma curve: each value ``v`` becomes ``255 * (v / 255) ** gamma``.

    Parameters
    ----------
    image : ndarray of shape (height, width[, 3]), dtype uint8
        The image.

    gamma : float
        The exponent: below 1 brightens the mid-tones, above 1 darkens them;
        black and white stay as they are.

    Returns
    -------
    adjusted : ndarray of the same shape and dtype
        The adjusted image.

    Examples
    --------
    >>> import numpy as np
    >>> from hybridclf.augment import gamma
    >>> gamma(np.array([[0, 64, 255]], np.uint8), 0.5)
    array([[  0, 128, 255]], dtype=uint8)
    """
    _check_image(image)
    return cv2.LUT(image, _lut(_tone_levels(_LEVELS, 0.0, 0.0, 1.0, gamma)))


def hue_saturation(image, hue=0.0, saturation=1.0):
    """Turn the hue and scale the saturation of an RGB image.

    Works in OpenCV's full-range 8-bit HSV (hue in steps of 360/256 degrees).
    A greyscale image has neither hue nor saturation and is returned as a copy.

    Parameters
    ----------
    image : ndarray of shape (height, width[, 3]), dtype uint8
        The image, in RGB order.

    hue : float, default=0.0
        Hue rotation in degrees.

    saturation : float, default=1.0
        Factor on the saturation; 0 gives grey, 1 keeps it.

    Returns
    -------
    adjusted : ndarray of the same shape and dtype
        The adjusted image.

    Examples
    --------
    >>> import numpy as np
    >>> from hybridclf.augment import hue_saturation
    >>> red = np.array([[[255, 0, 0]]], np.uint8)
    >>> hue_saturation(red, saturation=0.0)
    array([[[255, 255, 255]]], dtype=uint8)
    """
    _check_image(image)
    if not _is_color(image):
        return image.copy()
    shift = int(round(hue * 256.0 / 360.0))
    lut = np.empty((256, 1, 3), dtype=np.uint8)
    lut[:, 0, 0] = (np.arange(256) + shift) % 256
    lut[:, 0, 1] = _lut(_LEVELS * saturation)
    lut[:, 0, 2] = np.arange(256)
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV_FULL)
    return cv2.cvtColor(cv2.LUT(hsv, lut), cv2.COLOR_HSV2RGB_FULL)


def gaussian_blur(image, sigma):
    """Blur an image with a Gaussian kernel.

    Parameters
    ----------
    image : ndarray of shape (height, width[, 3]), dtype uint8
        The image.

    sigma : float
        Standard deviation of the kernel, in pixels; 0 returns a copy.

    Returns
    -------
    blurred : ndarray of the same shape and dtype
        The blurred image.

    Examples
    --------
    >>> import numpy as np
    >>> from hybridclf.augment import gaussian_blur
    >>> gaussian_blur(np.full((5, 5), 9, np.uint8), 1.0)[2, 2]
    np.uint8(9)
    """
    _check_image(image)
    if sigma <= 0:
        return image.copy()
    return cv2.GaussianBlur(
        image, (0, 0), sigmaX=float(sigma), borderType=cv2.BORDER_REFLECT_101
    )


@functools.cache
def _normal_quantiles():
    """The 65536 quantiles of the standard normal, for fast Gaussian draws."""
    from scipy.special import ndtri

    return ndtri((np.arange(65536) + 0.5) / 65536).astype(np.float32)


def gaussian_noise(image, sigma, rng):
    """Add independent Gaussian noise to every pixel and channel.

    Parameters
    ----------
    image : ndarray of shape (height, width[, 3]), dtype uint8
        The image.

    sigma : float
        Standard deviation of the noise, in grey levels (0..255).

    rng : numpy.random.Generator, int or None
        Source of the noise; an int or None seeds a new generator.

    Returns
    -------
    noisy : ndarray of the same shape and dtype
        The image plus noise, rounded and clipped to 0..255.

    Notes
    -----
    The noise is drawn as 16-bit uniform integers mapped through a table of
    the normal distribution's quantiles, about three times faster than
    :meth:`numpy.random.Generator.standard_normal` on a 224x224 RGB image. The
    distribution is a normal cut at 4.3 standard deviations.

    Examples
    --------
    >>> import numpy as np
    >>> from hybridclf.augment import gaussian_noise
    >>> noisy = gaussian_noise(np.full((64, 64), 128, np.uint8), 5.0, rng=0)
    >>> bool(4.5 < noisy.std() < 5.5)
    True
    """
    _check_image(image)
    rng = np.random.default_rng(rng)
    draws = rng.integers(0, 65536, size=image.shape, dtype=np.uint16)
    out = np.take(_normal_quantiles(), draws)
    out *= float(sigma)
    out += image
    np.clip(out, 0.0, 255.0, out=out)
    return np.rint(out, out=out).astype(np.uint8)


def jpeg(image, quality):
    """Compress an image as JPEG and decode it again.

    Parameters
    ----------
    image : ndarray of shape (height, width[, 3]), dtype uint8
        The image, in RGB order.

    quality : int
        JPEG quality, 1 (worst) to 100 (best).

    Returns
    -------
    recompressed : ndarray of the same shape and dtype
        The image with JPEG artefacts.

    Examples
    --------
    >>> import numpy as np
    >>> from hybridclf.augment import jpeg
    >>> jpeg(np.zeros((16, 16, 3), np.uint8), 75).shape
    (16, 16, 3)
    """
    _check_image(image)
    color = _is_color(image)
    source = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if color else image
    ok, data = cv2.imencode(".jpg", source, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 image
        raise ValueError(f"OpenCV could not encode an image of shape {image.shape}.")
    if color:
        return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)


# -- random combinations -----------------------------------------------------------
def check_techniques(techniques=None):
    """Merge changes into :data:`DEFAULT_TECHNIQUES` and validate them.

    Parameters
    ----------
    techniques : dict or None, default=None
        Changes to the defaults, by technique name. Each value is either a
        probability (float in [0, 1], keeping the default range) or a
        ``(probability, (low, high))`` pair; flips take ``(probability,
        None)``. A probability of 0 turns a technique off. Names:

        - "hflip", "vflip": mirror left-right, top-bottom;
        - "rotate": degrees, counter-clockwise;
        - "scale": zoom factor about the centre;
        - "translate": shift, fraction of the side (x and y drawn apart);
        - "perspective": largest corner displacement, fraction of the side;
        - "brightness": added level, fraction of 255;
        - "contrast": factor about the image mean;
        - "gamma": exponent of the gamma curve;
        - "hue": rotation in degrees;
        - "saturation": factor;
        - "blur": Gaussian sigma in pixels;
        - "noise": Gaussian sigma in grey levels;
        - "jpeg": JPEG quality, 1 to 100.

    Returns
    -------
    techniques : dict
        Every technique with its ``(probability, range)``.

    Raises
    ------
    ValueError
        For an unknown name, a probability outside [0, 1] or a range that is
        not ``(low, high)`` within the technique's limits.

    Examples
    --------
    >>> from hybridclf.augment import check_techniques
    >>> check_techniques({"rotate": (0.8, (-5, 5)), "jpeg": 0.0})["rotate"]
    (0.8, (-5.0, 5.0))
    """
    merged = dict(DEFAULT_TECHNIQUES)
    if techniques is None:
        return merged
    if not isinstance(techniques, dict):
        raise TypeError(
            "The 'techniques' argument must be a dict mapping technique names to "
            f"a probability or a (probability, (low, high)) pair. Got "
            f"{techniques!r} instead."
        )
    for name, value in techniques.items():
        if name not in DEFAULT_TECHNIQUES:
            raise ValueError(
                f"The 'techniques' argument has an unknown technique {name!r}. "
                f"Known techniques: {sorted(DEFAULT_TECHNIQUES)}."
            )
        default_range = DEFAULT_TECHNIQUES[name][1]
        if isinstance(value, Real) and not isinstance(value, bool):
            probability, value_range = value, default_range
        elif isinstance(value, (tuple, list)) and len(value) == 2:
            probability, value_range = value
        else:
            raise ValueError(
                f"The 'techniques' entry {name!r} must be a probability or a "
                f"(probability, (low, high)) pair. Got {value!r} instead."
            )
        if (
            not isinstance(probability, Real) or isinstance(probability, bool)
            or not 0.0 <= probability <= 1.0
        ):
            raise ValueError(
                f"The probability of technique {name!r} must be a float in [0, 1]. "
                f"Got {probability!r} instead."
            )
        merged[name] = (float(probability), _check_range(name, value_range))
    return merged


def _check_range(name, value_range):
    if name not in _LIMITS:
        if value_range is not None:
            raise ValueError(
                f"Technique {name!r} has no range; give (probability, None). Got "
                f"{value_range!r} instead."
            )
        return None
    low_limit, high_limit, unit = _LIMITS[name]
    try:
        low, high = (float(v) for v in value_range)
    except (TypeError, ValueError):
        low = high = None
    if low is None or not low_limit <= low <= high <= high_limit:
        raise ValueError(
            f"The range of technique {name!r} must be a pair (low, high) with "
            f"{low_limit:g} <= low <= high <= {high_limit:g} ({unit}). Got "
            f"{value_range!r} instead."
        )
    return (low, high)


def draw_params(rng, techniques=None):
    """Draw which techniques to apply, and their values.

    Each technique is applied with its probability; the value is drawn
    uniformly from its range. When no technique is drawn, one is picked with
    odds proportional to the probabilities, so the result always differs from
    the source (unless every probability is 0).

    Parameters
    ----------
    rng : numpy.random.Generator, int or None
        Source of the draws; an int or None seeds a new generator.

    techniques : dict or None, default=None
        Changes to :data:`DEFAULT_TECHNIQUES`; see :func:`check_techniques`.

    Returns
    -------
    params : dict
        The drawn techniques: ``True`` for a flip, the drawn value otherwise
        (``"translate"``: (dx, dy); ``"perspective"``: a (4, 2) array of
        corner offsets; ``"jpeg"``: an int quality).

    Examples
    --------
    >>> from hybridclf.augment import draw_params
    >>> params = draw_params(0, {"rotate": (1.0, (10, 10)), "hflip": 0.0})
    >>> params["rotate"]
    10.0
    """
    rng = np.random.default_rng(rng)
    policy = check_techniques(techniques)
    names = list(policy)
    applied = rng.random(len(names)) < [policy[n][0] for n in names]
    if not applied.any():
        weights = np.array([policy[n][0] for n in names])
        if weights.sum() == 0:
            return {}
        applied[rng.choice(len(names), p=weights / weights.sum())] = True
    params = {}
    for name, on in zip(names, applied):
        if not on:
            continue
        value_range = policy[name][1]
        if value_range is None:
            params[name] = True
        elif name == "translate":
            params[name] = tuple(float(v) for v in rng.uniform(*value_range, size=2))
        elif name == "perspective":
            magnitude = rng.uniform(*value_range)
            params[name] = rng.uniform(-magnitude, magnitude, size=(4, 2))
        elif name == "jpeg":
            params[name] = int(round(rng.uniform(*value_range)))
        else:
            params[name] = float(rng.uniform(*value_range))
    return params


def apply_geometry(image, params):
    """Apply the geometric techniques of ``params`` with one warp.

    Flips come first, then rotation and scale about the centre, translation
    and perspective. The other entries of ``params`` are ignored.

    Parameters
    ----------
    image : ndarray of shape (height, width[, 3]), dtype uint8
        The image.

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
    >>> apply_geometry(np.array([[1, 2]], np.uint8), {"hflip": True, "jpeg": 80})
    array([[2, 1]], dtype=uint8)
    """
    _check_image(image)
    if not any(name in params for name in _GEOMETRY):
        return image.copy()
    if set(params) & set(_GEOMETRY) <= {"hflip", "vflip"}:
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


def apply_photometry(image, params, rng):
    """Apply the colour, blur, noise and JPEG techniques of ``params``.

    The order is: contrast, brightness and gamma (one lookup table), hue and
    saturation, blur, noise, JPEG. Geometric entries are ignored.

    Parameters
    ----------
    image : ndarray of shape (height, width[, 3]), dtype uint8
        The image.

    params : dict
        As returned by :func:`draw_params`.

    rng : numpy.random.Generator, int or None
        Source of the noise, when ``params`` has ``"noise"``.

    Returns
    -------
    adjusted : ndarray of the same shape and dtype
        The adjusted image (a copy when ``params`` has nothing to apply).

    Examples
    --------
    >>> import numpy as np
    >>> from hybridclf.augment import apply_photometry
    >>> apply_photometry(np.array([[0, 64, 255]], np.uint8), {"gamma": 0.5}, 0)
    array([[  0, 128, 255]], dtype=uint8)
    """
    _check_image(image)
    out = image
    if {"brightness", "contrast", "gamma"} & set(params):
        mean = float(image.mean()) if "contrast" in params else 0.0
        levels = _tone_levels(
            _LEVELS, mean, params.get("brightness", 0.0),
            params.get("contrast", 1.0), params.get("gamma", 1.0),
        )
        out = cv2.LUT(out, _lut(levels))
    if ("hue" in params or "saturation" in params) and _is_color(out):
        out = hue_saturation(
            out, params.get("hue", 0.0), params.get("saturation", 1.0)
        )
    if "blur" in params:
        out = gaussian_blur(out, params["blur"])
    if "noise" in params:
        out = gaussian_noise(out, params["noise"], rng)
    if "jpeg" in params:
        out = jpeg(out, params["jpeg"])
    return out.copy() if out is image else out


def random_augment(image, rng, techniques=None):
    """Apply a random combination of augmentations to one image.

    The same as ``apply_photometry(apply_geometry(image, params), params,
    rng)`` with ``params = draw_params(rng, techniques)``.

    Parameters
    ----------
    image : ndarray of shape (height, width[, 3]), dtype uint8
        The image, in RGB order.

    rng : numpy.random.Generator, int or None
        Source of every random draw; the same generator state gives the same
        output.

    techniques : dict or None, default=None
        Changes to :data:`DEFAULT_TECHNIQUES`; see :func:`check_techniques`.

    Returns
    -------
    augmented : ndarray of the same shape and dtype
        A new image.

    See Also
    --------
    hybridclf.ClassAwareAugmenter : Over-sample classes with these
        augmentations and check the quality of each image.

    Examples
    --------
    >>> import numpy as np
    >>> from hybridclf.augment import random_augment
    >>> image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), np.uint8)
    >>> random_augment(image, np.random.default_rng(1)).shape
    (32, 32, 3)
    """
    _check_image(image)
    rng = np.random.default_rng(rng)
    params = draw_params(rng, techniques)
    return apply_photometry(apply_geometry(image, params), params, rng)
