"""Per-file measurements and checks behind :mod:`hybridclf.dataset`.

One pass reads every file once: its bytes are hashed, its header inspected
(format, bit depth, frames, EXIF orientation), the image fully decoded and
measured (sharpness, brightness, entropy, colour) and reduced to perceptual
hashes. The integrity and quality checks then read these records; the
duplicate search is in :mod:`hybridclf._dataset_duplicates`.
"""

import hashlib
import io as _stdio
import logging
import os

import cv2
import numpy as np
from PIL import Image

from ._dataset_duplicates import perceptual_hashes
from .exceptions import ImageLoadError
from .io import (
    _describe_non_image,
    read_image,
    sniff_image_format,
    special_file_reason,
)

logger = logging.getLogger(__name__)

# file name extension -> the format sniff_image_format reports for it
_EXTENSION_FORMAT = {
    ".jpg": "jpeg", ".jpeg": "jpeg", ".jpe": "jpeg", ".jfif": "jpeg",
    ".png": "png", ".gif": "gif", ".bmp": "bmp", ".dib": "bmp",
    ".tif": "tiff", ".tiff": "tiff", ".webp": "webp", ".jp2": "jpeg2000",
    ".pbm": "pnm", ".pgm": "pnm", ".ppm": "pnm", ".pnm": "pnm",
}
# side of the grey image the quality measures and hashes are computed on
_MEASURE_SIDE = 256
# longer side of the equalised grey copy kept for the geometric check
_ALIGN_SIDE = 160
# grey levels of standard deviation under which an image is flat: its
# perceptual hash is noise, so it is matched by exact hashes only
_FLAT_STD = 2.0


def _header_info(data, kind):
    """Bit depth, frame count, EXIF orientation and colour mode from the header."""
    info = {"bit_depth": 8, "n_frames": 1, "exif_orientation": 1, "mode": None}
    if kind == "png" and len(data) > 25:
        # IHDR: the bit depth is byte 24 of the file
        info["bit_depth"] = int(data[24])
    try:
        with Image.open(_stdio.BytesIO(data)) as img:
            info["mode"] = img.mode
            if img.mode.startswith("I;16") or img.mode in ("I", "F"):
                info["bit_depth"] = max(info["bit_depth"], 16)
            info["n_frames"] = int(getattr(img, "n_frames", 1) or 1)
            info["exif_orientation"] = int(img.getexif().get(0x0112, 1) or 1)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        # the full decode reports the reason; the header adds nothing here
        pass
    return info


def _measure(rgb, info):
    """Quality measures and perceptual hashes of a decoded RGB image."""
    height, width = rgb.shape[:2]
    scale = _MEASURE_SIDE / max(height, width)
    small = rgb
    if scale < 1:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    hist = np.bincount(gray.ravel(), minlength=256).astype(np.float64)
    p = hist[hist > 0] / gray.size
    channel_gap = max(
        int(np.abs(small[..., 0].astype(np.int16) - small[..., 1]).max()),
        int(np.abs(small[..., 1].astype(np.int16) - small[..., 2]).max()),
    )
    stored_colour = info["mode"] in ("RGB", "RGBA", "CMYK", "YCbCr", "P", "RGBX")
    flat = float(gray.std()) < _FLAT_STD
    scale = _ALIGN_SIDE / max(gray.shape)
    align = gray if scale >= 1 else cv2.resize(
        gray, (max(1, round(gray.shape[1] * scale)),
               max(1, round(gray.shape[0] * scale))), interpolation=cv2.INTER_AREA)
    return {
        "align_gray": None if flat else cv2.equalizeHist(align),
        "sharpness": float(cv2.Laplacian(gray, cv2.CV_64F).var()),
        "brightness": float(gray.mean()) / 255.0,
        "entropy": max(0.0, float(-(p * np.log2(p)).sum())),
        "grayscale_as_colour": bool(stored_colour and channel_gap <= 3),
        "flat": flat,
        "phash": None if flat else perceptual_hashes(gray),
    }


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
    record : dict
        ``path``, ``n_bytes``, ``sha256``, ``format`` (sniffed from the content,
        or None), ``is_image`` (the content starts like an image), ``error``
        (why it cannot be decoded, or None), ``width``, ``height``,
        ``pixel_hash``, the header facts of ``_header_info`` and, when decoded
        and ``measure``, those of ``_measure``. ``image`` holds the decoded RGB
        array; the caller drops it.
    """
    record = {"path": path, "n_bytes": 0, "sha256": None, "format": None,
              "is_image": False, "error": None, "width": None, "height": None,
              "pixel_hash": None, "phash": None, "image": None,
              "bit_depth": 8, "n_frames": 1, "exif_orientation": 1, "mode": None}
    record["error"] = special_file_reason(path)
    if record["error"] is not None:  # a FIFO would block: never opened
        return record
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        record["error"] = f"cannot be read ({exc.strerror or exc})"
        return record
    record["n_bytes"] = len(data)
    record["sha256"] = hashlib.sha256(data).hexdigest() if data else None
    kind = sniff_image_format(data)
    record["format"] = kind
    if kind is None:
        record["error"] = _describe_non_image(data)
        return record
    record["is_image"] = True
    record.update(_header_info(data, kind))
    try:
        rgb = read_image(data)
    except ImageLoadError as exc:
        record["error"] = exc.failures[0][1]
        return record
    record["height"], record["width"] = rgb.shape[:2]
    record["pixel_hash"] = hashlib.blake2b(
        rgb.tobytes(), digest_size=16, person=str(rgb.shape).encode()[:16]
    ).hexdigest()
    record["image"] = rgb
    if measure:
        record.update(_measure(rgb, record))
    return record


def extension_mismatch(path, kind):
    """A reason when the file name extension does not name the content's format."""
    ext = os.path.splitext(path)[1].lower()
    if kind is None:
        return None
    if not ext:
        return f"no file name extension (the content is {kind.upper()})"
    expected = _EXTENSION_FORMAT.get(ext)
    if expected != kind:
        return f"the extension {ext!r} does not match the content ({kind.upper()})"
    return None


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
        When set, each decoded image is kept in ``record["image"]``, padded and
        resized to a ``keep_size`` square (for the CNN); otherwise dropped.

    progress : bool, default=False
        Show a tqdm progress bar.

    Returns
    -------
    records : list of dict
        One per path, in order.
    """
    from .io import fit_to_size
    from .utils._parallel import run_chunked

    records = [None] * len(paths)

    def work(chunk):
        for i in range(chunk.start, chunk.stop):
            rec = scan_file(paths[i], measure=measure)
            image = rec.pop("image")
            if keep_size is not None and image is not None:
                rec["image"] = fit_to_size(image, (keep_size, keep_size))
            records[i] = rec

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
    return records


def integrity_issues(record, *, min_size):
    """``(kind, message)`` pairs for the integrity problems of one scanned file."""
    issues = []
    if record["error"] is not None:
        issues.append(("unreadable", record["error"]))
    mismatch = extension_mismatch(record["path"], record["format"])
    if mismatch is not None:
        issues.append(("extension_mismatch", mismatch))
    if record["bit_depth"] > 8:
        issues.append(("16_bit", f"{record['bit_depth']}-bit samples; hybridclf "
                       "reduces them to 8 bits"))
    if record["n_frames"] > 1:
        issues.append(("animated", f"{record['n_frames']} frames; only the first "
                       "is used"))
    if record["exif_orientation"] not in (0, 1):
        issues.append(("exif_orientation", f"EXIF orientation "
                       f"{record['exif_orientation']}: the pixels are stored "
                       "turned; readers that ignore EXIF see it sideways"))
    width, height = record["width"], record["height"]
    if width is not None and min(width, height) < min_size:
        issues.append(("too_small", f"{record['width']}x{record['height']} pixels, "
                       f"under min_size={min_size}"))
    return issues


def quality_issues(record, *, blur_threshold, dark_threshold, bright_threshold,
                   entropy_threshold, max_aspect_ratio):
    """``(kind, message)`` pairs for the quality problems of one decoded image."""
    if record.get("sharpness") is None:
        return []
    issues = []
    if record["entropy"] < entropy_threshold:
        issues.append(("low_information", f"entropy {record['entropy']:.2f} bits, "
                       f"under entropy_threshold={entropy_threshold}"))
    elif record["sharpness"] < blur_threshold:
        # a flat image has no edges either: it is reported once, as low information
        issues.append(("blurry", f"variance of the Laplacian "
                       f"{record['sharpness']:.0f}, under "
                       f"blur_threshold={blur_threshold}"))
    if record["brightness"] < dark_threshold:
        issues.append(("too_dark", f"mean brightness {record['brightness']:.2f}, "
                       f"under dark_threshold={dark_threshold}"))
    elif record["brightness"] > bright_threshold:
        issues.append(("too_bright", f"mean brightness {record['brightness']:.2f}, "
                       f"over bright_threshold={bright_threshold}"))
    if record["grayscale_as_colour"]:
        issues.append(("grayscale_as_colour", "grey image stored with 3 colour "
                       "channels"))
    ratio = max(record["width"], record["height"]) / min(record["width"],
                                                         record["height"])
    if ratio > max_aspect_ratio:
        issues.append(("odd_aspect_ratio", f"aspect ratio {ratio:.1f}, over "
                       f"max_aspect_ratio={max_aspect_ratio}"))
    return issues


def size_outliers(records, size_ratio):
    """Indices and messages of images far smaller or larger than the median one."""
    sides = np.array([min(r["width"], r["height"]) if r.get("width") else np.nan
                      for r in records], dtype=np.float64)
    if not np.isfinite(sides).any():
        return []
    median = float(np.nanmedian(sides))
    out = []
    for i, side in enumerate(sides):
        if np.isfinite(side) and not median / size_ratio <= side <= median * size_ratio:
            out.append((i, f"shorter side {side:.0f} px, against a median of "
                        f"{median:.0f} px (size_ratio={size_ratio})"))
    return out


def class_outliers(embeddings, labels, threshold, *, min_class_size=5):
    """Images far from their class centre and nearer another class's.

    The distance is the cosine distance to the mean unit embedding of the
    class; it is turned into a robust z-score with the class's median and
    median absolute deviation. An image is an outlier when its z-score exceeds
    ``threshold`` and another class's centre is nearer than its own. Classes
    with fewer than ``min_class_size`` embedded images are skipped.

    Returns
    -------
    outliers : list of (int, float, str)
        Index, z-score and nearest class of each outlier.
    """
    emb = np.asarray(embeddings, dtype=np.float64)
    ok = np.isfinite(emb).all(axis=1)
    unit = np.where(ok[:, None], emb, 0.0)
    unit /= np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), 1e-12)
    labels = np.asarray(labels, dtype=object)
    names = sorted(set(labels[ok].tolist()), key=str)
    if len(names) < 2:
        return []
    centres = np.stack([unit[ok & (labels == name)].mean(axis=0) for name in names])
    centres /= np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), 1e-12)
    nearest = np.asarray(names, dtype=object)[np.argmax(unit @ centres.T, axis=1)]
    out = []
    for k, label in enumerate(names):
        index = np.flatnonzero(ok & (labels == label))
        if len(index) < min_class_size:
            continue
        dist = 1.0 - unit[index] @ centres[k]
        med = np.median(dist)
        # 1.4826 * MAD estimates the standard deviation of normal data
        mad = 1.4826 * np.median(np.abs(dist - med))
        z = (dist - med) / max(mad, 1e-6)
        # a class of several views (front, back) is spread out: only an image
        # also nearer another class's centre hints at a wrong label
        out += [(int(i), float(s), nearest[i]) for i, s in zip(index, z)
                if s > threshold and nearest[i] != label]
    return out
