"""The integrity and quality checks of :func:`~hybridclf.inspect_dataset`.

Each check reads :class:`~._scan.ScanRecord` objects (or the CNN embeddings)
and returns :class:`Issue` objects: a kind, one of :data:`ISSUE_KINDS`, and a
message that names the measure and the threshold it crossed.
"""

import dataclasses
import logging
import os

import numpy as np

from ..quality import photo_issues

logger = logging.getLogger(__name__)

# issue kinds in the order the report shows them, with their headings
ISSUE_KINDS = {
    "unreadable": "Unreadable",
    "too_small": "Too small",
    "extension_mismatch": "Extension does not match content",
    "16_bit": "16-bit samples",
    "animated": "Animated",
    "exif_orientation": "EXIF orientation",
    "class_outlier": "Class outlier (possible wrong label)",
    "blurry": "Blurry",
    "too_dark": "Too dark",
    "too_bright": "Too bright",
    "low_information": "Low information",
    "grayscale_as_colour": "Greyscale stored as colour",
    "odd_aspect_ratio": "Odd aspect ratio",
    "odd_size": "Odd size",
}
# file name extension -> the format sniff_image_format reports for it
_EXTENSION_FORMAT = {
    ".jpg": "jpeg", ".jpeg": "jpeg", ".jpe": "jpeg", ".jfif": "jpeg",
    ".png": "png", ".gif": "gif", ".bmp": "bmp", ".dib": "bmp",
    ".tif": "tiff", ".tiff": "tiff", ".webp": "webp", ".jp2": "jpeg2000",
    ".pbm": "pnm", ".pgm": "pnm", ".ppm": "pnm", ".pnm": "pnm",
}


@dataclasses.dataclass(frozen=True)
class Issue:
    """One problem of one file: a kind among :data:`ISSUE_KINDS` and a message."""

    kind: str
    message: str


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


def integrity_issues(record, thresholds):
    """:class:`Issue` objects for the integrity problems of one scanned file."""
    issues = []
    if record.error is not None:
        issues.append(Issue("unreadable", record.error))
    mismatch = extension_mismatch(record.path, record.format)
    if mismatch is not None:
        issues.append(Issue("extension_mismatch", mismatch))
    if record.bit_depth > 8:
        issues.append(Issue("16_bit", f"{record.bit_depth}-bit samples; hybridclf "
                            "reduces them to 8 bits"))
    if record.n_frames > 1:
        issues.append(Issue("animated", f"{record.n_frames} frames; only the "
                            "first is used"))
    if record.exif_orientation not in (0, 1):
        issues.append(Issue("exif_orientation", "EXIF orientation "
                            f"{record.exif_orientation}: the pixels are stored "
                            "turned; readers that ignore EXIF see it sideways"))
    min_size = thresholds.min_size
    if record.decoded and min(record.width, record.height) < min_size:
        issues.append(Issue("too_small", f"{record.width}x{record.height} "
                            f"pixels, under min_size={min_size}"))
    return issues


def quality_issues(record, thresholds):
    """:class:`Issue` objects for the quality problems of one decoded image."""
    if record.sharpness is None:
        return []
    t = thresholds
    # the decisions are hybridclf.quality's, as at prediction; too_small is an
    # integrity issue here
    kinds = photo_issues(
        {"sharpness": record.sharpness, "brightness": record.brightness,
         "entropy": record.entropy, "width": record.width,
         "height": record.height},
        blur_threshold=t.blur_threshold, dark_threshold=t.dark_threshold,
        bright_threshold=t.bright_threshold, entropy_threshold=t.entropy_threshold,
        min_size=0)
    messages = {
        "low_information": f"entropy {record.entropy:.2f} bits, under "
                           f"entropy_threshold={t.entropy_threshold}",
        "blurry": f"variance of the Laplacian {record.sharpness:.0f}, under "
                  f"blur_threshold={t.blur_threshold}",
        "too_dark": f"mean brightness {record.brightness:.2f}, under "
                    f"dark_threshold={t.dark_threshold}",
        "too_bright": f"mean brightness {record.brightness:.2f}, over "
                      f"bright_threshold={t.bright_threshold}",
    }
    issues = [Issue(kind, messages[kind]) for kind in kinds]
    if record.grayscale_as_colour:
        issues.append(Issue("grayscale_as_colour", "grey image stored with 3 "
                            "colour channels"))
    ratio = max(record.width, record.height) / min(record.width, record.height)
    if ratio > t.max_aspect_ratio:
        issues.append(Issue("odd_aspect_ratio", f"aspect ratio {ratio:.1f}, over "
                            f"max_aspect_ratio={t.max_aspect_ratio}"))
    return issues


def size_outliers(records, size_ratio):
    """``(index, Issue)`` of the images far smaller or larger than the median one."""
    sides = np.array([min(r.width, r.height) if r.decoded else np.nan
                      for r in records], dtype=np.float64)
    if not np.isfinite(sides).any():
        return []
    median = float(np.nanmedian(sides))
    out = []
    for i, side in enumerate(sides):
        if np.isfinite(side) and not median / size_ratio <= side <= median * size_ratio:
            out.append((i, Issue("odd_size", f"shorter side {side:.0f} px, "
                                 f"against a median of {median:.0f} px "
                                 f"(size_ratio={size_ratio})")))
    return out


def class_outliers(embeddings, labels, threshold, *, min_class_size=5,
                   reference=None):
    """Images far from their class centre and nearer another class's.

    The distance is the cosine distance to the mean unit embedding of the
    class; it is turned into a robust z-score with the class's median and
    median absolute deviation. An image is an outlier when its z-score exceeds
    ``threshold`` and another class's centre is nearer than its own. Classes
    with fewer than ``min_class_size`` embedded reference images are skipped.

    ``reference`` (boolean mask, default: every image) picks the images whose
    centres and spreads the others are measured against: the training images,
    so that a test set does not move the flags of the training images.

    Returns
    -------
    outliers : list of (int, float, str, Issue)
        Index, z-score, nearest class and ``class_outlier`` issue of each
        outlier.
    """
    emb = np.asarray(embeddings, dtype=np.float64)
    ok = np.isfinite(emb).all(axis=1)
    unit = np.where(ok[:, None], emb, 0.0)
    unit /= np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), 1e-12)
    labels = np.asarray(labels, dtype=object)
    ref = ok if reference is None else ok & np.asarray(reference, dtype=bool)
    names = sorted(set(labels[ref].tolist()), key=str)
    if len(names) < 2:
        return []
    centres = np.stack([unit[ref & (labels == name)].mean(axis=0) for name in names])
    centres /= np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), 1e-12)
    nearest = np.asarray(names, dtype=object)[np.argmax(unit @ centres.T, axis=1)]
    out = []
    for k, label in enumerate(names):
        if (ref & (labels == label)).sum() < min_class_size:
            continue
        index = np.flatnonzero(ok & (labels == label))
        dist = 1.0 - unit[index] @ centres[k]
        spread = 1.0 - unit[ref & (labels == label)] @ centres[k]
        med = np.median(spread)
        # 1.4826 * MAD estimates the standard deviation of normal data
        mad = 1.4826 * np.median(np.abs(spread - med))
        z = (dist - med) / max(mad, 1e-6)
        # a class of several views (front, back) is spread out: only an image
        # also nearer another class's centre hints at a wrong label
        out += [(int(i), float(s), nearest[i],
                 Issue("class_outlier", f"far from the centre of class {label!r} "
                       f"(robust z-score {s:.1f}, over outlier_threshold="
                       f"{threshold}) and nearer class {nearest[i]!r}: check its "
                       "label"))
                for i, s in zip(index, z) if s > threshold and nearest[i] != label]
    return out
