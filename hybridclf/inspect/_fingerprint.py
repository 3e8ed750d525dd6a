"""Compact perceptual fingerprints of photos, to find near copies across two sets.

The inspector's quick hash check (``hybridclf inspect --quick``), cut down to
what a model directory can carry: :func:`fingerprint_record` keeps the
upright perceptual hashes of the photos trained on (grey and value channel,
16 hex digits each), and :func:`near_copies` tells which test photos lie
within the inspector's own hash thresholds of one of them: a re-encoded,
resized or greyscale copy of a training photo (or one cropped by about 1% a
side; on the somdej photos, 5 of 9 crops of 2% a side and none of 5%), which
scores as a photo the model has seen. The hashes are those of
:func:`~._scan.scan_file` (:func:`~._pairs.perceptual_hashes`) and the
thresholds those of :class:`~._thresholds.InspectThresholds` and
:mod:`._evidence`, so that both say the same about a pair.

This check is a quick one: the inspector's full search (CNN embeddings, the
geometric alignment of close pairs) also finds the heavier crops and edits;
``hybridclf inspect --data-dir TRAIN --test-data-dir TEST`` runs it.
"""

import os

import numpy as np

from ._evidence import _VALUE_HASH_MARGIN
from ._pairs import hash_distances_to
from ._scan import scan_files
from ._scan_cache import ScanCache
from ._thresholds import InspectThresholds, check_hash_distance

__all__ = ["fingerprint_record", "fingerprints", "near_copies"]

_DEFAULTS = InspectThresholds()


def fingerprints(images, *, n_jobs=None, cache_dir=None):
    """The grey and value-channel perceptual hashes of each file.

    Parameters
    ----------
    images : sequence of str, os.PathLike or images
        Files; anything else (in-memory images) gets no hashes.

    n_jobs : int, default=None
        Threads that read the files, as in :func:`~._scan.scan_files`.

    cache_dir : str, os.PathLike or None, default=None
        The duplicate search's cache (:class:`~._scan_cache.ScanCache`):
        the files it holds are not decoded again (a training found its
        groups of near-identical photos with it a moment before); None
        decodes every file.

    Returns
    -------
    hashes : ndarray of shape (n, 2, 8), dtype uint64
        :func:`~._pairs.perceptual_hashes` of the grey image (``[:, 0]``) and
        of its value channel (``[:, 1]``); zeros for a file that cannot be
        decoded, a flat image (its hash is noise) or an in-memory image.
    """
    index = [i for i, image in enumerate(images)
             if isinstance(image, (str, os.PathLike))]
    out = np.zeros((len(images), 2, 8), dtype=np.uint64)
    files = [os.fspath(images[i]) for i in index]
    if cache_dir is None:
        records, _ = scan_files(files, n_jobs=n_jobs)
    else:
        records = ScanCache(cache_dir).scan_files(files, n_jobs=n_jobs)
    for i, record in zip(index, records):
        if record.phash is not None:
            out[i] = record.phash, record.vhash
    return out


def fingerprint_record(images, *, n_jobs=None, cache_dir=None):
    """The fingerprints of ``images`` as JSON-ready lists of hex strings.

    Parameters
    ----------
    images : sequence of str, os.PathLike or images
        The photos trained on.

    n_jobs : int, default=None
        Threads that read the files.

    cache_dir : str, os.PathLike or None, default=None
        As in :func:`fingerprints`.

    Returns
    -------
    record : dict
        ``{"hash_distance": int, "phash": [...], "vhash": [...]}``: the
        inspector's default hash distance, and the sorted upright grey and
        value-channel hashes (16 hex digits each; each once, none for a file
        without one), about 40 bytes a photo.
    """
    hashes = fingerprints(images, n_jobs=n_jobs, cache_dir=cache_dir)[:, :, 0]
    return {"hash_distance": _DEFAULTS.hash_distance,
            **{key: sorted({f"{int(h):016x}" for h in hashes[:, column] if h})
               for column, key in ((0, "phash"), (1, "vhash"))}}


def _read_hex(values, key):
    """The uint64 hashes of a list of hex strings; ValueError names ``key``."""
    if not isinstance(values, list):
        raise ValueError(f"{key!r} must be a list of hex strings")
    try:
        return np.array([int(v, 16) for v in values], dtype=np.uint64)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"{key!r} holds a value that is no 64-bit hex hash "
                         f"({exc})") from exc


def near_copies(images, record, *, n_jobs=None):
    """The images within the quick hash threshold of a recorded photo.

    Parameters
    ----------
    images : sequence of str or os.PathLike
        Test files.

    record : dict
        A :func:`fingerprint_record`.

    n_jobs : int, default=None
        Threads that read the files.

    Returns
    -------
    matches : list of (int, int)
        ``(index in images, distance)`` of each near copy, in order: the
        smallest Hamming distance of its grey hash (any flip or quarter turn)
        to a recorded one, when it is at most ``hash_distance``, or of its
        value-channel hash, when it is at most ``hash_distance`` less the
        inspector's margin for it (3 bits), as ``inspect --quick`` pairs them.

    Raises
    ------
    ValueError
        When ``record`` is not a :func:`fingerprint_record`.
    """
    grey, value = _read_hex(record.get("phash"), "phash"), _read_hex(
        record.get("vhash"), "vhash")
    distance = record.get("hash_distance", _DEFAULTS.hash_distance)
    check_hash_distance(distance, owner="the fingerprints")
    hashes = fingerprints(images, n_jobs=n_jobs)
    rotations = _DEFAULTS.rotations
    by_grey = hash_distances_to(hashes[:, 0], grey, rotations=rotations)
    by_value = hash_distances_to(hashes[:, 1], value, rotations=rotations)
    near = (by_grey <= distance) | (
        by_value <= max(distance - _VALUE_HASH_MARGIN, 0))
    return [(int(i), int(min(by_grey[i], by_value[i])))
            for i in np.flatnonzero(near)]
