"""Photometric augmentations: tone, colour, blur, noise and JPEG re-compression.

Each takes an RGB image of shape (height, width, 3) or a greyscale image of
shape (height, width), dtype ``uint8``, and returns a new array of the same
shape and dtype; the input is never modified. :func:`gaussian_noise` draws
from the NumPy :class:`~numpy.random.Generator` it is given, so the caller
controls every random draw.
"""

import functools

import cv2
import numpy as np

from ..utils._docstrings import Substitution, _image_docstring
from ..utils._validation import check_image_array

__all__ = [
    "apply_photometry",
    "brightness_contrast",
    "gamma",
    "gaussian_blur",
    "gaussian_noise",
    "hue_saturation",
    "jpeg",
]


def _is_color(image):
    return image.ndim == 3


def _check_image(image):
    return check_image_array(image, what="The 'image' argument")


def _lut(values):
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


_LEVELS = np.arange(256, dtype=np.float64)


def _tone_levels(levels, mean, brightness, contrast, gamma_value):
    """Map grey levels through contrast, brightness and gamma, in that order."""
    levels = (levels - mean) * contrast + mean + brightness * 255.0
    if gamma_value != 1.0:
        levels = 255.0 * (np.clip(levels, 0.0, 255.0) / 255.0) ** gamma_value
    return levels


@Substitution(image=_image_docstring)
def brightness_contrast(image, brightness=0.0, contrast=1.0):
    """Change the brightness and the contrast of an image.

    Each value ``v`` becomes ``(v - mean) * contrast + mean + brightness *
    255``, clipped to 0..255, where ``mean`` is the mean of the image: the
    contrast changes about the image's own mean level.

    Parameters
    ----------
    {image}

    brightness : float, default=0.0
        Added level, as a fraction of 255 (0.1 adds about 26 grey levels).

    contrast : float, default=1.0
        Factor on the deviations from the mean; 1 keeps the contrast.

    Returns
    -------
    adjusted : ndarray of the same shape and dtype
        The image with the new brightness and contrast.

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


@Substitution(image=_image_docstring)
def gamma(image, gamma):
    """Apply a gamma curve: each value ``v`` becomes ``255 * (v / 255) ** gamma``.

    Black (0) and white (255) stay as they are; the curve moves the
    mid-tones only.

    Parameters
    ----------
    {image}

    gamma : float
        The exponent: below 1 brightens the mid-tones, above 1 darkens them.

    Returns
    -------
    adjusted : ndarray of the same shape and dtype
        The image through the curve.

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
        The recoloured image; a copy when it is greyscale.

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


@Substitution(image=_image_docstring)
def gaussian_blur(image, sigma):
    """Blur an image with a Gaussian kernel.

    Beyond the border the image is mirrored (OpenCV's ``BORDER_REFLECT_101``),
    so the edges do not darken.

    Parameters
    ----------
    {image}

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


# values of noise made at a time: some 15 MB of temporaries (the draws, their
# int64 indices, the float32 noise), where the whole of a 48-megapixel RGB
# image took 2 GB
_NOISE_CHUNK = 1 << 20


@functools.cache
def _normal_quantiles():
    """The 65536 quantiles of the standard normal, for fast Gaussian draws."""
    from scipy.special import ndtri

    return ndtri((np.arange(65536) + 0.5) / 65536).astype(np.float32)


@Substitution(image=_image_docstring)
def gaussian_noise(image, sigma, rng):
    """Add independent Gaussian noise to every pixel and channel.

    Parameters
    ----------
    {image}

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
    distribution is a normal cut at 4.3 standard deviations. It is made and
    added a band of rows at a time (about a million values), so that a large
    photo needs little memory beyond its output; the draws, in the image's
    row-major order, are those of one draw for the whole image.

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
    quantiles = _normal_quantiles()
    out = np.empty_like(image)
    per_row = int(np.prod(image.shape[1:]))
    step = max(1, _NOISE_CHUNK // max(per_row, 1))
    # NumPy draws 16-bit integers two from each 32-bit word: bands of an even
    # number of values draw the values (and leave the generator as) one draw
    # for the whole image would, so a seed gives the images it always gave
    step += step % 2 if per_row % 2 else 0
    for top in range(0, image.shape[0], step):
        band = image[top : top + step]
        noise = np.take(quantiles, rng.integers(0, 65536, size=band.shape,
                                                dtype=np.uint16))
        noise *= float(sigma)
        noise += band
        np.clip(noise, 0.0, 255.0, out=noise)
        out[top : top + step] = np.rint(noise, out=noise)
    return out


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
        The decoded image, with the artefacts of JPEG at that quality.

    Examples
    --------
    >>> import numpy as np
    >>> from hybridclf.augment import jpeg
    >>> jpeg(np.zeros((16, 16, 3), np.uint8), quality=75).shape
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


@Substitution(image=_image_docstring)
def apply_photometry(image, params, rng):
    """Apply the colour, blur, noise and JPEG techniques of ``params``.

    The order is: contrast, brightness and gamma (one lookup table), hue and
    saturation, blur, noise, JPEG. Geometric entries are ignored.

    Parameters
    ----------
    {image}

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
    >>> apply_photometry(np.array([[0, 64, 255]], np.uint8), {{"gamma": 0.5}}, 0)
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
