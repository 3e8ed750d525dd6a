"""Decoding image bytes and checking image arrays: RGB ``uint8`` out, with limits.

``_decode`` turns encoded bytes into an RGB ``uint8`` array (OpenCV for
complete JPEGs, Pillow for the rest) after refusing, from the header alone,
an image that declares more than ``max_pixels`` pixels
(:data:`DEFAULT_MAX_PIXELS`); :func:`array_to_rgb` is the one check and
conversion of image arrays, for the loader and every feature extractor.
"""

import io as _stdio
import re

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ._files import _describe_non_image, sniff_image_format

__all__ = ["DEFAULT_MAX_PIXELS", "array_to_rgb"]

#: Default of the ``max_pixels`` parameters: the most pixels (width x height)
#: an encoded image may declare. 64 megapixels holds the full-resolution photos
#: of 48 and 64 MP phone and camera sensors (9248x6936) and costs at most
#: about 190 MB of RGB pixels to decode; a larger file is refused from its
#: header, undecoded.
DEFAULT_MAX_PIXELS = 64_000_000

# images over this many pixels are copied out of Pillow in strips of it
_STRIP_PIXELS = 1 << 20


def _composite(rgba, background):
    """Blend an RGBA uint8 image onto a solid background colour."""
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    bg = np.asarray(background, dtype=np.float32)
    out = rgba[..., :3].astype(np.float32) * alpha + bg * (1.0 - alpha)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def array_to_rgb(arr, background, source="array"):
    """Check an image array and convert it to RGB uint8: the one image validator.

    uint8 is taken as is, uint16 is scaled from 0..65535, bool maps to 0/255,
    other integers must lie in 0..255, and floats must lie in [0, 1]. The
    loader and the input check of every feature extractor go through it.

    Parameters
    ----------
    arr : array-like of shape (height, width[, 1 | 3 | 4])
        The image.

    background : tuple of 3 int
        The RGB colour that transparent pixels are put on.

    source : str, default="array"
        What the image is, for the error messages (a file name, a class name).

    Returns
    -------
    rgb : ndarray of shape (height, width, 3), dtype uint8
        The image.

    Raises
    ------
    ValueError
        For a bad shape or values out of range; the message names ``source``.

    TypeError
        For a non-numeric dtype.
    """
    arr = np.asarray(arr)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise ValueError(
            f"{source}: an image must have shape (height, width), (height, width, 1),"
            f" (height, width, 3) or (height, width, 4); got shape {arr.shape}."
        )
    if arr.dtype == np.uint8:
        pass
    elif arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    elif arr.dtype == np.uint16:
        arr = ((arr.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    elif np.issubdtype(arr.dtype, np.integer):
        lo, hi = (int(arr.min()), int(arr.max())) if arr.size else (0, 0)
        if lo < 0 or hi > 255:
            raise ValueError(
                f"{source}: integer images of dtype {arr.dtype} must hold values in"
                f" 0..255; got values in {lo}..{hi}. Convert it to uint8 or uint16."
            )
        arr = arr.astype(np.uint8)
    elif np.issubdtype(arr.dtype, np.floating):
        if arr.size and not np.isfinite(arr).all():
            raise ValueError(f"{source}: the image holds NaN or infinite values.")
        lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
        if lo < 0.0 or hi > 1.0:
            raise ValueError(
                f"{source}: float images must hold values in [0, 1]; got values in"
                f" [{lo:.3g}, {hi:.3g}]. Divide by 255 if they are 8-bit values."
            )
        arr = np.round(arr * 255.0).astype(np.uint8)
    else:
        raise TypeError(
            f"{source}: images must be numeric arrays; got dtype {arr.dtype}."
        )
    if arr.ndim == 2:
        return cv2.cvtColor(arr, cv2.COLOR_GRAY2RGB)
    if arr.shape[2] == 4:
        return _composite(arr, background)
    return np.ascontiguousarray(arr)


def _pil_to_rgb(img, background):
    """Convert a decoded Pillow image of any mode to RGB uint8."""
    mode = img.mode
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        mode = img.mode
    elif mode == "L" and "transparency" in img.info:
        img = img.convert("LA")
        mode = "LA"
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        # 16-bit greyscale: scale 0..65535 to 0..255 instead of clipping
        arr = np.clip(np.asarray(img, dtype=np.int64), 0, 65535).astype(np.uint16)
        return array_to_rgb(arr, background)
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        if arr.size and arr.max() > 1.0:
            arr = arr / 255.0
        return array_to_rgb(np.clip(arr, 0.0, 1.0), background)
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        return _composite(np.asarray(img.convert("RGBA")), background)
    if mode != "RGB":
        img = img.convert("RGB")
    return _rgb_array(img)


def _rgb_array(img):
    """``np.asarray`` of an RGB Pillow image, a strip of rows at a time.

    ``np.asarray`` goes through ``tobytes``, which holds the pixels twice more
    (its chunks, then their join): a 64-megapixel PNG peaked at about 860 MB
    over the decoded image's 190 MB; strips of about 4 MB take it to about
    440 MB, which matters where several are decoded at once (the service).
    """
    width, height = img.size
    if width * height <= _STRIP_PIXELS:
        return np.asarray(img)
    out = np.empty((height, width, 3), dtype=np.uint8)
    step = max(1, _STRIP_PIXELS // width)
    for top in range(0, height, step):
        bottom = min(top + step, height)
        out[top:bottom] = np.asarray(img.crop((0, top, width, bottom)))
    return out


def _jpeg_reduction(n_bytes, size, target):
    """The cv2 reduced-decode flag that keeps the image at least ``target`` pixels."""
    if target is None or n_bytes < 200_000:
        return cv2.IMREAD_COLOR
    factor = min(size) // max(target)
    for k, flag in ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4),
                    (2, cv2.IMREAD_REDUCED_COLOR_2)):
        if factor >= k:
            return flag
    return cv2.IMREAD_COLOR


def _too_large(declared, max_pixels):
    """The reason an image over the pixel budget is refused."""
    return (
        f"too large: the header declares {declared}, over the limit of "
        f"{max_pixels} pixels ({max_pixels / 1e6:.1f} megapixels); it is refused "
        "undecoded. Resize the image, or raise the 'max_pixels' parameter "
        "(--max-pixels on the command line) if you trust the file"
    )


def _check_pixels(size, max_pixels):
    """Raise ValueError when a declared (width, height) is over the budget."""
    width, height = size
    if width * height > max_pixels:
        declared = (f"{width}x{height} pixels "
                    f"({width * height / 1e6:.1f} megapixels)")
        raise ValueError(_too_large(declared, max_pixels))


def _decode(data, background, target=None, max_pixels=DEFAULT_MAX_PIXELS):
    """Decode image bytes to RGB uint8, or raise ValueError with the reason.

    The header is read first (Pillow reads no pixel data on open), and an
    image that declares more than ``max_pixels`` pixels is refused before any
    decoder runs, whichever decodes it then.
    """
    kind = sniff_image_format(data)
    if kind is None:
        raise ValueError(_describe_non_image(data))
    try:
        with Image.open(_stdio.BytesIO(data)) as img:
            # the size of the first frame (GIF: the canvas, grown to the
            # first frame's extent; TIFF: the first page), the one decoded
            _check_pixels(img.size, max_pixels)
            # Fast path: a complete JPEG (ends with the EOI marker) through
            # OpenCV, which applies the EXIF orientation and converts CMYK and
            # greyscale itself. Anything else, including a JPEG that may be
            # truncated, goes through Pillow, which raises on truncated data
            # instead of filling it with grey.
            if kind == "jpeg" and bytes(data[-2:]) == b"\xff\xd9":
                buf = np.frombuffer(data, dtype=np.uint8)
                bgr = cv2.imdecode(buf, _jpeg_reduction(len(data), img.size, target))
                if bgr is not None:
                    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            if kind == "jpeg" and target is not None:
                img.draft("RGB", (target[1], target[0]))
            img.load()
            # in place: a copy of the decoded pixels (190 MB at 64 MP) otherwise
            ImageOps.exif_transpose(img, in_place=True)
            return _pil_to_rgb(img, background)
    except UnidentifiedImageError as exc:
        raise ValueError(
            f"not a readable image: the content starts like {kind.upper()} but "
            "cannot be decoded"
        ) from exc
    except Image.DecompressionBombError as exc:
        # Pillow's own limit, met only when max_pixels is set above it
        found = re.search(r"\((\d+) pixels\)", str(exc))
        declared = f"{found.group(1)} pixels" if found else "too many pixels"
        raise ValueError(_too_large(declared, max_pixels)) from exc
    except (OSError, SyntaxError) as exc:
        text = str(exc)
        if "truncated" in text.lower() or "broken data stream" in text:
            raise ValueError(f"truncated image data ({text})") from exc
        raise ValueError(f"corrupt {kind.upper()} data ({text})") from exc
