"""One pass over the files: read, decode, measure and hash each once.

Each file becomes a :class:`ScanRecord`: its bytes are hashed, its header
inspected (format, bit depth, frames, EXIF orientation), the image fully
decoded and measured (sharpness, brightness, entropy, colour) and reduced to
perceptual hashes. The checks in :mod:`._checks` and the duplicate search in
:mod:`._duplicates` then read these records.
"""

import dataclasses
import hashlib
import io as _stdio
import logging
import os

import cv2
import numpy as np
from PIL import Image

from ..exceptions import ImageLoadError
from ..io import (
    DEFAULT_MAX_PIXELS,
    FEEDBACK_LOG,
    class_name,
    fit_to_size,
    read_image,
    sniff_image_format,
    special_file_reason,
)
from ..io._files import _oversized, max_file_bytes
from ..io._scan import _DATASET_FIX, no_images_error
from ..quality import MEASURE_SIDE, measure_grey, shrink
from ..utils._parallel import run_chunked
from ._pairs import perceptual_hashes

logger = logging.getLogger(__name__)

# longer side of the equalised grey and value copies kept for the geometric
# check
_ALIGN_SIDE = 160
# grey levels of standard deviation under which an image is flat: its
# perceptual hash is noise, so it is matched by exact hashes only
_FLAT_STD = 2.0
_COLOUR_MODES = ("RGB", "RGBA", "CMYK", "YCbCr", "P", "RGBX")


@dataclasses.dataclass
class ScanRecord:
    """What one read of a file found; the measures stay None when not decoded.

    ``format`` is sniffed from the content; ``is_image`` says the content
    starts like an image; ``error`` says why it cannot be decoded.
    ``phash`` and ``vhash`` are the perceptual hashes of the grey image and of
    its value channel. ``align_gray`` and ``align_value`` are the equalised
    grey and value-channel copies for the alignment check, and
    ``align_features`` their ORB features once found (by channel), dropped
    once the duplicates are found.
    """

    path: str
    n_bytes: int = 0
    sha256: str | None = None
    format: str | None = None
    is_image: bool = False
    error: str | None = None
    width: int | None = None
    height: int | None = None
    pixel_hash: str | None = None
    bit_depth: int = 8
    n_frames: int = 1
    exif_orientation: int = 1
    mode: str | None = None
    sharpness: float | None = None
    brightness: float | None = None
    entropy: float | None = None
    grayscale_as_colour: bool = False
    flat: bool = False
    phash: np.ndarray | None = dataclasses.field(default=None, repr=False)
    vhash: np.ndarray | None = dataclasses.field(default=None, repr=False)
    align_gray: np.ndarray | None = dataclasses.field(default=None, repr=False)
    align_value: np.ndarray | None = dataclasses.field(default=None, repr=False)
    align_features: dict = dataclasses.field(default_factory=dict, repr=False)

    @property
    def decoded(self):
        """Whether the pixels were decoded."""
        return self.width is not None


def _header_info(record, data):
    """Fill the bit depth, frame count, EXIF orientation and mode from the header."""
    if record.format == "png" and len(data) > 25:
        # IHDR: the bit depth is byte 24 of the file
        record.bit_depth = int(data[24])
    try:
        with Image.open(_stdio.BytesIO(data)) as img:
            record.mode = img.mode
            if img.mode.startswith("I;16") or img.mode in ("I", "F"):
                record.bit_depth = max(record.bit_depth, 16)
            record.n_frames = int(getattr(img, "n_frames", 1) or 1)
            record.exif_orientation = int(img.getexif().get(0x0112, 1) or 1)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        # the full decode reports the reason; the header adds nothing here
        pass


def grey_and_value(small):
    """The grey copy, the value channel and the largest channel gap of an RGB image.

    The value channel (the max of R, G and B) does not change with a hue
    shift; the channel gap (the largest difference of two channels) is 0 for
    a greyscale image stored as RGB.
    """
    # the grey copy of hybridclf.quality, measured there and hashed here
    gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    # OpenCV's per-channel kernels: NumPy's reductions over the channel axis
    # cost 2.5 ms of a 224x224 photo, these 0.3 ms
    red, green, blue = cv2.split(np.ascontiguousarray(small))
    channel_gap = max(int(cv2.absdiff(red, green).max()),
                      int(cv2.absdiff(green, blue).max()))
    return gray, cv2.max(cv2.max(red, green), blue), channel_gap


def grey_and_value_hashes(gray, value):
    """(grey hash, value-channel hash) of :func:`grey_and_value`; None when flat.

    A flat grey image's hash is noise, so it gets none. A flat value channel
    (ink of a pure colour on white: one channel full everywhere) gets zeros,
    which match nothing: its noise hash matched every such image.
    """
    if float(gray.std()) < _FLAT_STD:
        return None
    return perceptual_hashes(gray), (
        perceptual_hashes(value) if float(value.std()) >= _FLAT_STD
        else np.zeros(8, dtype=np.uint64))


def _measure(record, rgb):
    """Fill the quality measures and perceptual hashes of a decoded RGB image."""
    small = shrink(rgb, MEASURE_SIDE)
    gray, value, channel_gap = grey_and_value(small)
    hashes = grey_and_value_hashes(gray, value)
    record.flat = hashes is None
    if not record.flat:
        record.align_gray = cv2.equalizeHist(shrink(gray, _ALIGN_SIDE))
        record.phash, record.vhash = hashes
        record.align_value = cv2.equalizeHist(shrink(value, _ALIGN_SIDE))
    measures = measure_grey(gray)
    record.sharpness = measures["sharpness"]
    record.brightness = measures["brightness"]
    record.entropy = measures["entropy"]
    record.grayscale_as_colour = bool(record.mode in _COLOUR_MODES
                                      and channel_gap <= 3)


def scan_file(path, *, measure=True):
    """Read, decode and measure one file; never raises for a bad file.

    Parameters
    ----------
    path : str
        The file.

    measure : bool, default=True
        Whether to compute the quality measures and perceptual hashes.

    Returns
    -------
    record : ScanRecord
        What was found.

    image : ndarray of shape (height, width, 3) or None
        The decoded RGB pixels, or None when the file cannot be decoded.
    """
    record = ScanRecord(path=path)
    record.error = special_file_reason(path)
    if record.error is not None:  # a FIFO would block: never opened
        return record, None
    try:
        with open(path, "rb") as fh:
            n_bytes = os.fstat(fh.fileno()).st_size
            if n_bytes > max_file_bytes(DEFAULT_MAX_PIXELS):
                # a video named .jpg would fill memory before its header is read
                record.error = _oversized(n_bytes, max_file_bytes(DEFAULT_MAX_PIXELS))
                return record, None
            data = fh.read()
    except OSError as exc:
        record.error = f"cannot be read ({exc.strerror or exc})"
        return record, None
    record.n_bytes = len(data)
    record.sha256 = hashlib.sha256(data).hexdigest() if data else None
    record.format = sniff_image_format(data)
    record.is_image = record.format is not None
    if record.is_image:
        _header_info(record, data)
    try:
        # for bytes that are no image, read_image says why (empty, text, ...)
        rgb = read_image(data)
    except ImageLoadError as exc:
        record.error = exc.failures[0][1]
        return record, None
    record.height, record.width = rgb.shape[:2]
    record.pixel_hash = hashlib.blake2b(
        rgb.tobytes(), digest_size=16, person=str(rgb.shape).encode()[:16]
    ).hexdigest()
    if measure:
        _measure(record, rgb)
    return record, rgb


def scan_files(paths, *, n_jobs=None, measure=True, keep_size=None, progress=False):
    """:func:`scan_file` on every path, in threads, with an optional progress bar.

    Parameters
    ----------
    paths : list of str
        The files.

    n_jobs : int, default=None
        Threads, as in :func:`hybridclf.utils._parallel.run_chunked`.

    measure : bool, default=True
        Passed to :func:`scan_file`.

    keep_size : int or None, default=None
        When set, each decoded image is kept, padded and resized to a
        ``keep_size`` square (for the CNN); otherwise dropped.

    progress : bool, default=False
        Show a tqdm progress bar.

    Returns
    -------
    records : list of ScanRecord
        One per path, in order.

    images : list of ndarray or None
        The kept images (None for files not decoded, or all None without
        ``keep_size``).
    """
    records = [None] * len(paths)
    images = [None] * len(paths)

    def work(chunk):
        for i in range(chunk.start, chunk.stop):
            records[i], image = scan_file(paths[i], measure=measure)
            if keep_size is not None and image is not None:
                images[i] = fit_to_size(image, (keep_size, keep_size))

    block = 64
    bar = None
    if progress:
        from tqdm.auto import tqdm

        # delay: short runs finish before a bar would appear
        bar = tqdm(total=len(paths), desc="inspecting", unit="file", delay=1.0)
    for start in range(0, len(paths), block):
        stop = min(start + block, len(paths))
        run_chunked(lambda s, o=start: work(slice(s.start + o, s.stop + o)),
                    stop - start, n_jobs)
        if bar is not None:
            bar.update(stop - start)
    if bar is not None:
        bar.close()
    return records, images


def list_files(root):
    """Every non-hidden file under ``root`` with its class (first sub-folder).

    The ``feedback.jsonl`` and ``manifest.csv`` (``hybridclf augment``) of the
    root are the tools' own files, left out as the training leaves them out.
    A root that holds no other file raises
    :class:`~hybridclf.exceptions.NoImagesError`.
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(
            f"The dataset folder {root!r} does not exist or is not a folder. Pass "
            "a folder holding one sub-folder of images per class."
        )
    paths, labels = [], []

    def unreadable(exc):  # listed itself, so that its record says why
        rel = os.path.relpath(exc.filename, root)
        paths.append(exc.filename)
        labels.append("" if rel == "." else rel.split(os.sep)[0])

    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        rel = os.path.relpath(dirpath, root)
        label = "" if rel == "." else class_name(rel.split(os.sep)[0])
        # a link to a folder is not followed: listed, its record says so
        links = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        for name in sorted(filenames + links):
            # the root's feedback log and augment manifest, as load_image_folder
            if rel == "." and name in (FEEDBACK_LOG, "manifest.csv"):
                continue
            if not name.startswith("."):
                paths.append(os.path.join(dirpath, name))
                labels.append(label)
    if not paths:  # a mistyped path: not a report of nothing that reads as clean
        raise no_images_error([root], "every file under it, at any depth",
                              _DATASET_FIX)
    return paths, labels
