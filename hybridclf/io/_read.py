"""One image: read it at its own size, and fit it to a given size.

:func:`read_image` reads one file, byte string or array as an RGB ``uint8``
array (``_read_one``, the reader the loader calls for each image);
:func:`fit_to_size` resizes it to one (height, width) by padding, cropping or
stretching.
"""

import os
from numbers import Integral

import cv2
import numpy as np

from ..exceptions import ImageLoadError
from ._decode import DEFAULT_MAX_PIXELS, _decode, array_to_rgb
from ._files import _read_file, max_file_bytes

__all__ = ["DEFAULT_MIN_SIZE", "fit_to_size", "read_image"]

#: Default of :class:`ImageLoader`'s ``min_size``, hence of every model: the
#: fewest pixels on each side of an image that training and prediction read.
#: A smaller one (a 1x1 placeholder, an icon) is reported as too small; the
#: commands that prepare a dataset for training (``hybridclf augment``) leave
#: it out with the same reason.
DEFAULT_MIN_SIZE = 16

def _source_name(source, index):
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<bytes {index}>"
    return f"<array {index}>"


def _read_one(source, background, min_size, target=None,
              max_pixels=DEFAULT_MAX_PIXELS):
    """Read one image; raise ValueError(reason) or TypeError on bad input."""
    if isinstance(source, (str, os.PathLike)):
        data = _read_file(os.fspath(source), max_bytes=max_file_bytes(max_pixels),
                          images_only=True)
        rgb = _decode(data, background, target, max_pixels)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        rgb = _decode(bytes(source), background, target, max_pixels)
    elif isinstance(source, np.ndarray) or hasattr(source, "__array__"):
        rgb = array_to_rgb(source, background, source="image")
    else:
        raise TypeError(
            "each image must be a file path (str or os.PathLike), encoded bytes or "
            f"an array of shape (height, width[, channels]); got {type(source)!r}"
        )
    height, width = rgb.shape[:2]
    if min(height, width) < min_size:
        raise ValueError(
            f"too small ({width}x{height} pixels); the 'min_size' parameter asks "
            f"for at least {min_size} pixels on each side"
        )
    return rgb


def read_image(source, *, background=(255, 255, 255), min_size=1,
               max_pixels=DEFAULT_MAX_PIXELS, draft_size=None):
    """Read one image as an RGB ``uint8`` array of shape (height, width, 3).

    Files are recognised by their content, not their extension. The EXIF
    orientation is applied; greyscale, palette, CMYK and 16-bit images are
    converted to 8-bit RGB; transparent pixels are blended onto ``background``.
    Animated images give their first frame. Only regular files are read (a
    FIFO, socket or device is refused unopened), and an encoded image whose
    header declares more than ``max_pixels`` pixels is refused before any
    decoding (a decompression bomb: a small file of huge dimensions).

    Parameters
    ----------
    source : str, os.PathLike, bytes or ndarray
        A file path, the encoded bytes of an image file, or an array of shape
        (height, width[, channels]) with 1, 3 or 4 channels: ``uint8``,
        ``uint16``, ``bool`` or floats in [0, 1].

    background : tuple of 3 int, default=(255, 255, 255)
        RGB colour behind transparent pixels.

    min_size : int, default=1
        Smallest accepted height and width, in pixels.

    max_pixels : int, default=64_000_000
        Most pixels (width x height) an encoded image may declare in its
        header (:data:`DEFAULT_MAX_PIXELS`); larger ones are refused
        undecoded. Arrays are not checked: they are decoded already.

    draft_size : tuple of (int, int) or None, default=None
        A large JPEG may then be decoded at 1/2, 1/4 or 1/8 scale, never
        under this (height, width), as :class:`ImageLoader` does: many
        times faster for a photo of tens of megapixels. None decodes at full
        size.

    Returns
    -------
    image : ndarray of shape (height, width, 3), dtype uint8
        The image in RGB order.

    Raises
    ------
    ImageLoadError
        When the image cannot be read; the message names the source and the
        reason (empty, truncated, not an image, too small, too large, not a
        regular file, ...).

    Examples
    --------
    >>> import numpy as np
    >>> from hybridclf.io import read_image
    >>> read_image(np.zeros((4, 5), dtype=np.uint8)).shape
    (4, 5, 3)
    """
    if not (isinstance(max_pixels, Integral) and max_pixels >= 1):
        raise ValueError(
            "The 'max_pixels' parameter of read_image must be an int >= 1. "
            f"Got {max_pixels!r} instead.")
    try:
        return _read_one(source, background, min_size, draft_size,
                         max_pixels=max_pixels)
    except ValueError as exc:
        raise ImageLoadError([(_source_name(source, 0), str(exc))]) from exc


def fit_to_size(image, size, aspect="pad", background=(255, 255, 255)):
    """Resize an RGB image to ``size`` (height, width), keeping or not its aspect.

    Parameters
    ----------
    image : ndarray of shape (height, width, 3), dtype uint8
        The image.

    size : tuple of (int, int)
        Output (height, width).

    aspect : {"pad", "crop", "stretch"}, default="pad"
        As in :class:`ImageLoader`.

    background : tuple of 3 int, default=(255, 255, 255)
        Colour of the "pad" borders.

    Returns
    -------
    resized : ndarray of shape (size[0], size[1], 3), dtype uint8
        The resized image.

    Examples
    --------
    >>> import numpy as np
    >>> from hybridclf.io import fit_to_size
    >>> fit_to_size(np.zeros((10, 20, 3), np.uint8), (8, 8)).shape
    (8, 8, 3)
    """
    th, tw = size
    h, w = image.shape[:2]
    if (h, w) == (th, tw):
        return image
    if aspect == "stretch":
        return _resize(image, th, tw)
    if aspect == "crop":
        scale = max(th / h, tw / w)
        nh, nw = max(th, round(h * scale)), max(tw, round(w * scale))
        resized = _resize(image, nh, nw)
        top, left = (nh - th) // 2, (nw - tw) // 2
        return resized[top : top + th, left : left + tw]
    scale = min(th / h, tw / w)
    nh, nw = min(th, max(1, round(h * scale))), min(tw, max(1, round(w * scale)))
    resized = _resize(image, nh, nw)
    canvas = np.empty((th, tw, 3), dtype=np.uint8)
    canvas[...] = np.asarray(background, dtype=np.uint8)
    top, left = (th - nh) // 2, (tw - nw) // 2
    canvas[top : top + nh, left : left + nw] = resized
    return canvas


def _resize(image, height, width):
    shrinking = height * width < image.shape[0] * image.shape[1]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=interpolation)
