"""The files :func:`~hybridclf.augment.augment_folder` writes.

``_generated_names`` names each new image beside its source (``_augNNN``,
clear of any original's name), ``_encode`` encodes it as JPEG or PNG like its
source (``_is_jpeg``), and ``_write_manifest`` writes ``manifest.csv``, with
the techniques of each new image as ``_describe`` puts them, and the sources
of an input folder that an earlier run wrote (``_read_lineage``).
"""

from pathlib import Path

import cv2
import numpy as np

from ..io import sniff_image_format
from ..utils._csv import csv_writer, open_csv, read_csv_rows

__all__ = []

MANIFEST_NAME = "manifest.csv"
MANIFEST_COLUMNS = ("file", "label", "kind", "source", "similarity", "techniques")
_JPEG_QUALITY = 95


def _describe(params):
    """A short text of the techniques applied, for the manifest."""
    parts = []
    for name, value in params.items():
        if value is True:
            parts.append(name)
        elif name == "translate":
            parts.append(f"translate={value[0]:.3f},{value[1]:.3f}")
        elif name == "perspective":
            parts.append(f"perspective={float(np.abs(value).max()):.3f}")
        elif isinstance(value, int):
            parts.append(f"{name}={value}")
        else:
            parts.append(f"{name}={value:.3g}")
    return ";".join(parts)


def _encode(image, as_jpeg):
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    if as_jpeg:
        ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY])
    else:
        ok, data = cv2.imencode(".png", bgr)
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 RGB image
        raise ValueError(f"OpenCV could not encode an image of shape {image.shape}.")
    return data.tobytes()


def _is_jpeg(path):
    with open(path, "rb") as fh:
        return sniff_image_format(fh.read(16)) == "jpeg"


def _generated_names(sources, rel_paths, jpeg_sources):
    """A new relative path for each generated image, beside its source."""
    used = {p.lower() for p in rel_paths}
    copies = {}
    names = []
    for source in sources:
        copies[source] = copies.get(source, 0) + 1
        rel = Path(rel_paths[source])
        ext = ".jpg" if jpeg_sources[source] else ".png"
        stem = f"{rel.stem}_aug{copies[source]:03d}"
        name, clash = (rel.parent / f"{stem}{ext}").as_posix(), 1
        # an original may already bear that name (compared without case)
        while name.lower() in used:
            clash += 1
            name = (rel.parent / f"{stem}_{clash}{ext}").as_posix()
        used.add(name.lower())
        names.append(name)
    return names


def _read_lineage(input_dir):
    """The rows of the input folder's own ``manifest.csv``, by file; {} if none.

    A folder that ``hybridclf augment`` wrote, augmented again: its copies
    stay copies of their original photo in the new manifest.
    """
    path = Path(input_dir) / MANIFEST_NAME
    if not path.is_file():
        return {}
    # in a legacy code page, the copies of the earlier run would become photos
    _, rows = read_csv_rows(path, only_with=("file", "kind", "source"),
                            what="the copies it lists would count as photos")
    return {row["file"]: row for row in rows}


def _write_manifest(manifest, rel_paths, y, sources, new_names, augmenter,
                    lineage=None):
    """Write ``manifest.csv``: one row per input image, then per generated image.

    ``lineage`` (from :func:`_read_lineage`) keeps an input image that an
    earlier run generated a ``generated`` row with its original as source,
    and makes that original the source of its new copies too.
    """
    lineage = lineage or {}
    with open_csv(manifest, "w") as fh:
        writer = csv_writer(fh)
        writer.writerow(MANIFEST_COLUMNS)
        for rel, label in zip(rel_paths, y.tolist()):
            row = lineage.get(rel, {})
            if row.get("kind") == "generated" and row.get("source"):
                writer.writerow([rel, label, "generated", row["source"],
                                 row.get("similarity", ""),
                                 row.get("techniques", "")])
            else:
                writer.writerow([rel, label, "original", rel, "", ""])
        for k, source in enumerate(sources.tolist()):
            row = lineage.get(rel_paths[source], {})
            writer.writerow([
                new_names[k], y[source], "generated",
                row.get("source") or rel_paths[source],
                f"{augmenter.similarity_[k]:.4f}",
                _describe(augmenter.augmentation_params_[k]),
            ])
