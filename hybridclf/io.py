"""Reading images: decoding, colour conversion and resizing to one shape.

:func:`read_image` turns one file, byte string or array into an RGB ``uint8``
array; :class:`ImageLoader` does it for a whole batch and resizes every image to
one shape, as the first step of a pipeline; :func:`load_image_folder` lists a
class-per-folder dataset.
"""

import io as _stdio
import logging
import os
import re
import stat
import warnings
from numbers import Integral

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from sklearn.base import BaseEstimator, TransformerMixin

from .exceptions import ImageLoadError, SkippedFilesWarning
from .utils._docstrings import Substitution, _ignored_docstring
from .utils._parallel import run_chunked
from .utils._validation import Interval, StrOptions, _fit_context

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "FEEDBACK_LOG",
    "ImageLoader",
    "array_to_rgb",
    "load_image_folder",
    "load_image_folders",
    "read_image",
    "scan_image_folder",
    "sniff_image_format",
    "special_file_reason",
]

logger = logging.getLogger(__name__)

# (format name, offset, magic bytes); RIFF/WEBP is checked separately
_MAGIC = [
    ("jpeg", 0, b"\xff\xd8\xff"),
    ("png", 0, b"\x89PNG\r\n\x1a\n"),
    ("gif", 0, b"GIF87a"),
    ("gif", 0, b"GIF89a"),
    ("bmp", 0, b"BM"),
    ("tiff", 0, b"II*\x00"),
    ("tiff", 0, b"MM\x00*"),
    ("jpeg2000", 0, b"\x00\x00\x00\x0cjP  \r\n\x87\n"),
]
_PNM = {b"P1", b"P2", b"P3", b"P4", b"P5", b"P6"}

#: Default of the ``max_pixels`` parameters: the most pixels (width x height)
#: an encoded image may declare. 64 megapixels holds the full-resolution photos
#: of 48 and 64 MP phone and camera sensors (9248x6936) and costs at most
#: about 190 MB of RGB pixels to decode; a larger file is refused from its
#: header, undecoded.
DEFAULT_MAX_PIXELS = 64_000_000

#: The log a feedback folder keeps beside its class folders
#: (:class:`hybridclf.feedback.FeedbackStore`); the folder walks pass over it
#: without reporting it, so training on a feedback folder warns of nothing.
FEEDBACK_LOG = "feedback.jsonl"

# the file kinds other than regular files, as the folder walks report them
_SPECIAL_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)

# the file name extensions of the formats above, for load_image_folder's report
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".gif", ".bmp", ".dib", ".tif",
     ".tiff", ".webp", ".jp2", ".pbm", ".pgm", ".ppm", ".pnm"}
)


def sniff_image_format(header):
    """Return the image format that the first bytes of a file announce.

    Parameters
    ----------
    header : bytes
        The first bytes of the file; 16 are enough.

    Returns
    -------
    format : str or None
        One of ``"jpeg"``, ``"png"``, ``"gif"``, ``"bmp"``, ``"tiff"``,
        ``"webp"``, ``"jpeg2000"``, ``"pnm"``, or ``None`` when the bytes do not
        start a known image format.

    Examples
    --------
    >>> from hybridclf.io import sniff_image_format
    >>> sniff_image_format(b"\\x89PNG\\r\\n\\x1a\\n....")
    'png'
    >>> sniff_image_format(b"hello world") is None
    True
    """
    header = bytes(header[:16])
    for name, offset, magic in _MAGIC:
        if header[offset : offset + len(magic)] == magic:
            return name
    if header[:4] == b"RIFF" and header[8:12] == b"WEBP":
        return "webp"
    if header[:2] in _PNM and len(header) > 2 and header[2:3].isspace():
        return "pnm"
    return None


def _describe_non_image(data):
    """A short reason for bytes that are no image."""
    if not data:
        return "empty file (0 bytes)"
    sample = bytes(data[:512])
    try:
        sample.decode("utf-8")
        is_text = True
    except UnicodeDecodeError:
        is_text = False
    if is_text:
        return "not an image: the content is text"
    return "not an image: the content is no known image format"


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
    return np.asarray(img)


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
            img = ImageOps.exif_transpose(img)
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


def special_file_reason(path):
    """Why ``path`` is not read: it is a FIFO, socket or device; else None.

    Only regular files (and symbolic links to them) are read: opening a FIFO
    blocks until something writes into it, and a device may never end. The
    file is not opened to find out (``os.stat`` only).

    Parameters
    ----------
    path : str or os.PathLike
        A file path.

    Returns
    -------
    reason : str or None
        The reason it is skipped, or None for a regular file, a folder or a
        path that does not exist (reading it reports that).

    Examples
    --------
    >>> from hybridclf.io import special_file_reason
    >>> special_file_reason("/dev/null")
    'not a regular file (a character device); only regular files are read'
    """
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    for test, kind in _SPECIAL_KINDS:
        if test(mode):
            return f"not a regular file ({kind}); only regular files are read"
    return None


def _read_file(path, size=-1):
    """The first ``size`` bytes (all for -1) of a regular file; ValueError else.

    The file is opened non-blocking and checked again once open, so that a
    FIFO put in its place between the check and the open cannot block.
    """
    reason = special_file_reason(path)
    if reason is not None:
        raise ValueError(reason)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError as exc:
        raise ValueError("file not found") from exc
    except IsADirectoryError as exc:
        raise ValueError("is a directory, not a file") from exc
    except PermissionError as exc:
        raise ValueError("permission denied") from exc
    except OSError as exc:
        raise ValueError(f"cannot be read ({exc.strerror or exc})") from exc
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise ValueError("is a directory, not a file" if stat.S_ISDIR(mode)
                         else "not a regular file; only regular files are read")
    with os.fdopen(fd, "rb") as fh:
        try:
            return fh.read(size)
        except OSError as exc:
            raise ValueError(f"cannot be read ({exc.strerror or exc})") from exc


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
        data = _read_file(os.fspath(source))
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


def _as_sequence(X):
    """Return the images of X as an indexable sequence, rejecting single items."""
    if isinstance(X, (str, os.PathLike, bytes, bytearray)):
        raise TypeError(
            "ImageLoader expects a sequence of images (paths, bytes or arrays); "
            f"got a single {type(X).__name__}. Wrap it in a list: [{X!r:.60}]."
        )
    if hasattr(X, "iloc") and getattr(X, "ndim", 1) == 2 and X.shape[1] == 1:
        X = X.iloc[:, 0]  # a one-column DataFrame of paths
    if hasattr(X, "to_numpy"):
        X = X.to_numpy()
    if isinstance(X, np.ndarray):
        if X.dtype.kind in "OUS":
            if X.ndim == 2 and X.shape[1] == 1:
                X = X[:, 0]
            if X.ndim != 1:
                raise ValueError(
                    "ImageLoader expects a 1-D sequence of paths; got an array of "
                    f"shape {X.shape}."
                )
            return list(X)
        if X.ndim not in (3, 4):
            raise ValueError(
                "ImageLoader expects a sequence of images; a numeric array must have"
                " shape (n_images, height, width[, channels]); got shape "
                f"{X.shape}."
            )
        return X
    return list(X)


class ImageLoader(TransformerMixin, BaseEstimator):
    """Read images and resize them to one shape: the first step of a pipeline.

    Turns a 1-D sequence of image files, encoded byte strings or arrays of any
    sizes into one ``uint8`` array of shape (n_images, height, width, 3) in RGB
    order, ready for the feature extractors of :mod:`hybridclf.features`. Files
    are decoded with OpenCV (complete JPEGs, the common case) or Pillow (every
    other format, and any JPEG that may be truncated), with the EXIF
    orientation applied and greyscale, palette, CMYK, RGBA and 16-bit images
    converted to 8-bit RGB.

    Every image is read; none is skipped or replaced. If any cannot be read, one
    :class:`~hybridclf.exceptions.ImageLoadError` names every failing file with
    its reason, after all images were tried.

    The loader learns nothing: ``fit`` only validates the parameters, and
    ``transform`` works on an unfitted loader too.

    Parameters
    ----------
    size : int or tuple of (int, int), default=224
        Output (height, width); an int gives a square.

    aspect : {"pad", "crop", "stretch"}, default="pad"
        How an image whose aspect ratio differs from ``size`` is fitted:

        - "pad": scale to fit inside, fill the borders with ``background``;
          nothing of the image is lost.
        - "crop": scale to cover, then cut the centre; no border.
        - "stretch": scale each axis on its own; shapes are distorted.

    background : tuple of 3 int, default=(255, 255, 255)
        RGB colour behind transparent pixels and of the "pad" borders.

    min_size : int, default=16
        Smallest accepted height and width of a source image, in pixels;
        smaller images are reported as too small.

    max_pixels : int, default=64_000_000
        Most pixels (width x height) an encoded image may declare in its
        header; a larger one is refused before it is decoded and reported
        like an unreadable image (a decompression bomb costs nothing).
        64 megapixels (:data:`DEFAULT_MAX_PIXELS`) holds a 64 MP camera photo.
        Large JPEGs under the limit are still decoded at a reduced scale
        when far larger than ``size``.

    n_jobs : int, default=None
        Number of threads that decode and resize. ``None`` means 1 unless in a
        :func:`joblib.parallel_config` context; ``-1`` means all processors.

    See Also
    --------
    read_image : Read one image at its own size.
    load_image_folder : List the images and labels of a class-per-folder tree.

    Examples
    --------
    >>> import numpy as np
    >>> from hybridclf.io import ImageLoader
    >>> images = [np.zeros((30, 60), dtype=np.uint8), np.ones((50, 40, 3))]
    >>> ImageLoader(size=32).fit_transform(images).shape
    (2, 32, 32, 3)
    """

    _parameter_constraints: dict = {
        "size": [Interval(Integral, 1, None, closed="left"), tuple],
        "aspect": [StrOptions({"pad", "crop", "stretch"})],
        "background": [tuple, list],
        "min_size": [Interval(Integral, 1, None, closed="left")],
        "max_pixels": [Interval(Integral, 1, None, closed="left")],
        "n_jobs": [Integral, None],
    }

    def __init__(self, *, size=224, aspect="pad", background=(255, 255, 255),
                 min_size=16, max_pixels=DEFAULT_MAX_PIXELS, n_jobs=None):
        self.size = size
        self.aspect = aspect
        self.background = background
        self.min_size = min_size
        self.max_pixels = max_pixels
        self.n_jobs = n_jobs

    @_fit_context(prefer_skip_nested_validation=True)
    @Substitution(ignored=_ignored_docstring("X", "y"))
    def fit(self, X=None, y=None):
        """Validate the parameters; the loader learns nothing from data.

        Parameters
        ----------
        {ignored}

        Returns
        -------
        self : object
            The loader.
        """
        self._target()
        self._background()
        return self

    def __setstate__(self, state):
        # loaders saved before 'max_pixels' existed get the default
        state.setdefault("max_pixels", DEFAULT_MAX_PIXELS)
        super().__setstate__(state)

    def _target(self):
        """Validated (height, width) of the output."""
        size = self.size
        if isinstance(size, Integral):
            return (int(size), int(size))
        if (
            len(size) != 2
            or not all(isinstance(s, Integral) and s >= 1 for s in size)
        ):
            raise ValueError(
                "The 'size' parameter of ImageLoader must be an int >= 1 or a "
                f"tuple of two such ints (height, width). Got {size!r} instead."
            )
        return (int(size[0]), int(size[1]))

    def _background(self):
        bg = tuple(self.background)
        if len(bg) != 3 or not all(isinstance(c, Integral) and 0 <= c <= 255
                                   for c in bg):
            raise ValueError(
                "The 'background' parameter of ImageLoader must be a tuple of 3 "
                f"ints in 0..255 (an RGB colour). Got {self.background!r} instead."
            )
        return bg

    def transform(self, X):
        """Read and resize every image.

        Parameters
        ----------
        X : sequence of str, os.PathLike, bytes or ndarray, or ndarray
            The images: a 1-D sequence (list, array, pandas Series) of file
            paths, encoded image bytes or arrays of shape (height, width[,
            channels]) of any sizes; or one array of shape (n_images, height,
            width[, channels]).

        Returns
        -------
        images : ndarray of shape (n_images, height, width, 3), dtype uint8
            The images in RGB order, with (height, width) equal to ``size``.

        Raises
        ------
        ImageLoadError
            When any image cannot be read. All images are tried first, and the
            message lists every failure.

        See Also
        --------
        read_each : The images that can be read, and a reason for each other.
        read_measured : The images, and a measure of each as decoded.
        """
        return self.read_measured(X, None)[0]

    def read_measured(self, X, measure):
        """Read and resize every image, and measure each as it was decoded.

        What :meth:`transform` does, and ``measure`` called on every image at
        its own size (a large JPEG possibly decoded at a reduced scale, never
        under ``size``), before it is resized: what a photo-quality check
        needs, without decoding the file a second time.

        Parameters
        ----------
        X : sequence of str, os.PathLike, bytes or ndarray, or ndarray
            The images, as :meth:`transform` takes them.

        measure : callable or None
            Called with each decoded image, an RGB ``uint8`` array of shape
            (height, width, 3); None measures nothing.

        Returns
        -------
        images : ndarray of shape (n_images, height, width, 3), dtype uint8
            As from :meth:`transform`.

        measures : list
            What ``measure`` returned for each image (None without it).

        Raises
        ------
        ImageLoadError
            As :meth:`transform`.

        Examples
        --------
        >>> import numpy as np
        >>> from hybridclf.io import ImageLoader
        >>> images, shapes = ImageLoader(size=8).read_measured(
        ...     [np.zeros((40, 30), np.uint8)], lambda image: image.shape)
        >>> images.shape, shapes
        ((1, 8, 8, 3), [(40, 30, 3)])
        """
        images = _as_sequence(X)
        out, reasons, measures = self._read(images, measure)
        failures = [(_source_name(images[i], i), reason)
                    for i, reason in enumerate(reasons) if reason is not None]
        if failures:
            raise ImageLoadError(
                failures,
                hint=(
                    "Fix or remove these files (`hybridclf inspect` lists every "
                    "problem of a dataset), lower 'min_size' for small images or "
                    "raise 'max_pixels' for huge ones."
                ),
            )
        return out, measures

    def read_each(self, X, *, measure=None):
        """Read and resize the images that can be read; say why for the others.

        Unlike :meth:`transform`, an unreadable image raises nothing: its
        reason is returned in its place, and the others are read as usual.
        This is what a service needs that answers each image of a batch on
        its own.

        Parameters
        ----------
        X : sequence of str, os.PathLike, bytes or ndarray, or ndarray
            The images, as :meth:`transform` takes them.

        measure : callable or None, default=None
            Also call it on each image read, as decoded (see
            :meth:`read_measured`), and return what it gave.

        Returns
        -------
        images : ndarray of shape (n_read, height, width, 3), dtype uint8
            The images that could be read, in the order of ``X``.

        reasons : list of str or None
            One entry per image of ``X``: None when it was read, else why it
            could not be (empty, truncated, not an image, too small, ...).

        measures : list
            Only with ``measure``: what it returned for each image read, in
            the order of ``images``.

        Examples
        --------
        >>> import numpy as np
        >>> from hybridclf.io import ImageLoader
        >>> images, reasons = ImageLoader(size=8, min_size=1).read_each(
        ...     [np.zeros((4, 4), np.uint8), b"not an image"])
        >>> images.shape, reasons[0], reasons[1] is not None
        ((1, 8, 8, 3), None, True)
        """
        out, reasons, measures = self._read(_as_sequence(X), measure)
        read = [i for i, reason in enumerate(reasons) if reason is None]
        if len(read) < len(reasons):
            out, measures = out[read], [measures[i] for i in read]
        return (out, reasons) if measure is None else (out, reasons, measures)

    def _read(self, images, measure):
        """Every image resized (zeros where unread), the reasons, the measures."""
        self._validate_params()
        target = self._target()
        background = self._background()
        n = len(images)
        out = np.empty((n, target[0], target[1], 3), dtype=np.uint8)
        reasons, measures = [None] * n, [None] * n

        def work(chunk):
            for i in range(chunk.start, chunk.stop):
                try:
                    rgb = _read_one(images[i], background, self.min_size, target,
                                    self.max_pixels)
                    out[i] = fit_to_size(rgb, target, self.aspect, background)
                except ValueError as exc:
                    reasons[i] = str(exc)
                    continue
                if measure is not None:
                    measures[i] = measure(rgb)

        run_chunked(work, n, self.n_jobs)
        return out, reasons, measures

    @Substitution(ignored=_ignored_docstring("input_features"))
    def get_feature_names_out(self, input_features=None):
        """Return None: images have no feature names.

        A pipeline's feature names come from the extractors after the loader,
        so ``pipe[:-1].get_feature_names_out()`` works on a hybrid pipeline.

        Parameters
        ----------
        {ignored}

        Returns
        -------
        None
        """
        return None

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.input_tags.three_d_array = True
        return tags


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


# the parameters and first returns of scan_image_folder and load_image_folder
_FOLDER_WALK_DOC = """root : str or os.PathLike
        The dataset folder.

    follow_symlinks : bool, default=False
        Whether to descend into symbolic links to folders.

    Returns
    -------
    paths : list of str
        Image file paths, sorted by class and then by path.

    labels : list of str
        The class (sub-folder name) of each path."""


@Substitution(walk=_FOLDER_WALK_DOC)
def scan_image_folder(root, *, follow_symlinks=False):
    """Walk a class-per-folder dataset: the images, their labels, the rest.

    Each direct sub-folder of ``root`` is a class, named after the folder; its
    images may lie in nested folders at any depth. Files are recognised by
    their first bytes, not their extension. Hidden files and folders
    (starting with ".") are ignored, and so is a feedback folder's log
    (:data:`FEEDBACK_LOG`) at the top. Only regular files are opened: FIFOs,
    sockets and devices are skipped unopened (opening a FIFO blocks). This
    function neither decodes images nor warns: :func:`load_image_folder`,
    ``hybridclf inspect`` and ``hybridclf augment`` report what it skipped.

    Parameters
    ----------
    {walk}

    skipped : list of (str, str)
        Each file not taken, with the reason (not an image, not inside a class
        folder, not a regular file, cannot be read), and each class folder
        without any image (the class is left out).

    Raises
    ------
    FileNotFoundError
        When ``root`` is not a folder.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from hybridclf.io import scan_image_folder
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "cat").mkdir()
    >>> _ = (root / "cat" / "notes.txt").write_text("hello")
    >>> scan_image_folder(root)[2][0][1]
    'not an image: the content is text'
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(
            f"The dataset folder {root!r} does not exist or is not a folder. Pass "
            "a folder holding one sub-folder of images per class."
        )
    paths, labels, skipped = [], [], []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.name.startswith(".") or entry.name == FEEDBACK_LOG:
            continue
        if not entry.is_dir(follow_symlinks=follow_symlinks):
            skipped.append((entry.path, "not inside a class folder"))
            continue
        found = _scan_class(entry.path, follow_symlinks, skipped)
        if not found:
            skipped.append((entry.path, "class folder without any image; the "
                            "class is left out"))
        paths += found
        labels += [entry.name] * len(found)
    return paths, labels, skipped


def _scan_class(folder, follow_symlinks, skipped):
    """The image files under one class folder; the others go to ``skipped``."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=follow_symlinks):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = os.path.join(dirpath, name)
            reason = _check_image_file(path)
            if reason is None:
                found.append(path)
            else:
                skipped.append((path, reason))
    return found


@Substitution(walk=_FOLDER_WALK_DOC)
def load_image_folder(root, *, follow_symlinks=False):
    """List the images and labels of a class-per-folder dataset.

    Each direct sub-folder of ``root`` is a class, named after the folder; its
    images may lie in nested folders at any depth. Files are recognised by their
    content (the first bytes), not only by their extension, so a JPEG named
    ``.png`` or with no extension is taken and a text file named ``.jpg`` is
    not. Hidden files and folders (starting with ".") are ignored; FIFOs,
    sockets and devices are skipped unopened.

    Files that are not taken, and class folders without any image, are never
    dropped silently: they are logged and reported in one
    :class:`~hybridclf.exceptions.SkippedFilesWarning` that names each with
    its reason. This function does not decode the images: a truncated file is
    listed here and reported by the loader (or ``hybridclf inspect``).

    Parameters
    ----------
    {walk}

    Raises
    ------
    FileNotFoundError
        When ``root`` is not a folder.

    ValueError
        When ``root`` has no class sub-folder holding an image.

    See Also
    --------
    scan_image_folder : The same walk, returning what was skipped.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> from hybridclf.io import load_image_folder
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for cls in ("cat", "dog"):
    ...     (root / cls).mkdir()
    ...     Image.new("RGB", (32, 32)).save(root / cls / "a.png")
    >>> paths, labels = load_image_folder(root)
    >>> labels
    ['cat', 'dog']
    """
    paths, labels, _ = _load_folders([root], follow_symlinks)
    return paths, labels


def load_image_folders(roots, *, follow_symlinks=False):
    """List the images of several class-per-folder datasets as one.

    Each root is read like :func:`load_image_folder` and the classes are
    merged by folder name: ``data/waek_man`` and ``feedback/waek_man`` are one
    class, and a class may come from one root alone (a new class from a
    feedback folder ``feedback/<label>/<sha256>.jpg``). Every file is kept,
    also when two roots hold the same photo; the grouped split of
    :func:`~hybridclf.training.train_model` keeps byte-identical files in one
    group (:func:`~hybridclf.training.find_training_groups`).

    Parameters
    ----------
    roots : str, os.PathLike or sequence of them
        The dataset folders.

    follow_symlinks : bool, default=False
        Whether to descend into symbolic links to folders.

    Returns
    -------
    paths : list of str
        Image file paths, root by root, each sorted by class and path.

    labels : list of str
        The class (sub-folder name) of each path.

    names : list of str
        A unique name of each file: its path relative to its root
        (``class/file.jpg``) with one root, and prefixed by the root's folder
        name with several (``feedback/class/file.jpg``; a root whose folder
        name an earlier root has gets ``-2``, ``-3`` ...).

    Raises
    ------
    FileNotFoundError
        When a root is not a folder.

    ValueError
        When no root has a class sub-folder holding an image, or a root is
        given twice.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> from hybridclf.io import load_image_folders
    >>> data, feedback = (pathlib.Path(tempfile.mkdtemp()) / n
    ...                   for n in ("data", "feedback"))
    >>> for root, cls in ((data, "cat"), (feedback, "cat"), (feedback, "fox")):
    ...     (root / cls).mkdir(parents=True)
    ...     Image.new("RGB", (32, 32)).save(root / cls / "a.png")
    >>> paths, labels, names = load_image_folders([data, feedback])
    >>> labels
    ['cat', 'cat', 'fox']
    >>> names
    ['data/cat/a.png', 'feedback/cat/a.png', 'feedback/fox/a.png']
    """
    if isinstance(roots, (str, os.PathLike)):
        roots = [roots]
    return _load_folders(roots, follow_symlinks)


def _load_folders(roots, follow_symlinks):
    """What load_image_folders returns (called by it and load_image_folder)."""
    roots = [os.fspath(r) for r in roots]
    real = [os.path.realpath(r) for r in roots]
    if len(set(real)) != len(real):
        raise ValueError(f"The dataset folders {roots!r} name one folder twice. "
                         "Give each folder once.")
    tags, paths, labels, names = _root_tags(roots), [], [], []
    for root, tag in zip(roots, tags):
        found, found_labels, skipped = scan_image_folder(
            root, follow_symlinks=follow_symlinks)
        _report_skipped(root, skipped)
        paths += found
        labels += found_labels
        names += [os.path.relpath(p, root) if tag is None
                  else f"{tag}/{os.path.relpath(p, root)}" for p in found]
    if not paths:
        where = repr(roots[0]) if len(roots) == 1 else f"any of {roots!r}"
        raise ValueError(
            f"No images found in class sub-folders of {where}. Expected a layout "
            "like root/<class name>/<image file>."
        )
    return paths, labels, [n.replace(os.sep, "/") for n in names]


def _root_tags(roots):
    """The name prefix of each root: None with one root, else a unique folder name."""
    if len(roots) == 1:
        return [None]
    tags, seen = [], {}
    for root in roots:
        base = os.path.basename(os.path.normpath(os.path.abspath(root))) or "root"
        seen[base] = seen.get(base, 0) + 1
        tags.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return tags


def _report_skipped(root, skipped):
    """Log and warn about the files and folders a scan did not take."""
    if not skipped:
        return
    for path, reason in skipped:
        logger.warning("Skipping %s: %s", path, reason)
    listed = "\n".join(f"  {p}: {r}" for p, r in skipped[:20])
    more = f"\n  ... and {len(skipped) - 20} more" if len(skipped) > 20 else ""
    warnings.warn(
        f"{len(skipped)} file(s) or folder(s) under {root!r} are not taken as "
        f"images:\n{listed}{more}",
        SkippedFilesWarning,
        stacklevel=4,  # the caller of load_image_folder(s)
    )


def _check_image_file(path):
    """None if the file starts like an image, else the reason it is skipped."""
    try:
        header = _read_file(path, 512)
    except ValueError as exc:
        return str(exc)
    if sniff_image_format(header) is not None:
        return None
    return _describe_non_image(header)
