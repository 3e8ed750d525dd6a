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

from ..exceptions import ImageLoadError
from ..io import read_image
from ..quality import MEASURE_SIDE, shrink
from ._evidence import _VALUE_HASH_MARGIN
from ._pairs import hash_distances_to
from ._scan import grey_and_value, grey_and_value_hashes, scan_files
from ._scan_cache import ScanCache
from ._thresholds import InspectThresholds, check_hash_distance

__all__ = ["fingerprint_of", "fingerprint_record", "fingerprints", "match_fingerprints",
           "near_copies"]

_DEFAULTS = InspectThresholds()


def fingerprint_of(rgb):
    """The grey and value-channel perceptual hashes of one decoded image.

    The hashes :func:`~._scan.scan_file` gives the file the image was
    decoded from, without reading it again: ``hybridclf evaluate`` hashes
    each test photo as its loader decodes it, once for the predictions and
    the near-copy check together. A large JPEG that the loader decoded at
    1/2, 1/4 or 1/8 scale hashes within a few bits of its full-size hash:
    both are reduced to 256 pixels, then to 32x32, first (on the photos of
    somdej_fatherguay, at most 2 bits apart for a loader of 224 pixels, 4
    for one of 128; the threshold is 6:
    ``benchmarks/bench_near_training.py`` counts the near copies named
    either way).

    Parameters
    ----------
    rgb : ndarray of shape (height, width, 3), dtype uint8
        The decoded image.

    Returns
    -------
    hashes : ndarray of shape (2, 8), dtype uint64
        As one row of :func:`fingerprints`: zeros for a flat image.

    Examples
    --------
    >>> import numpy as np
    >>> from hybridclf.inspect._fingerprint import fingerprint_of
    >>> fingerprint_of(np.full((40, 30, 3), 128, np.uint8)).any()  # flat
    np.False_
    """
    hashes = grey_and_value_hashes(*grey_and_value(shrink(rgb, MEASURE_SIDE))[:2])
    out = np.zeros((2, 8), dtype=np.uint64)
    if hashes is not None:
        out[:] = hashes
    return out


def fingerprints(images, *, n_jobs=None, cache_dir=None):
    """The grey and value-channel perceptual hashes of each image.

    Parameters
    ----------
    images : sequence of str, os.PathLike, bytes or arrays
        Files, as :func:`~._scan.scan_files` reads them, or in-memory images
        (encoded bytes, or arrays as :func:`~hybridclf.io.read_image` takes
        them), hashed as :func:`fingerprint_of` hashes them: a photo
        trained on from memory is checked as one from a file is.

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
        of its value channel (``[:, 1]``); zeros for an image that cannot be
        decoded or a flat image (its hash is noise).
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
    for i in sorted(set(range(len(images))) - set(index)):
        try:
            out[i] = fingerprint_of(read_image(images[i]))
        except (ImageLoadError, TypeError):
            pass  # zeros: the loader says why it cannot be read
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

    :func:`match_fingerprints` of the :func:`fingerprints` of ``images``.

    Parameters
    ----------
    images : sequence of str, os.PathLike, bytes or arrays
        Test images, as :func:`fingerprints` takes them.

    record : dict
        A :func:`fingerprint_record`.

    n_jobs : int, default=None
        Threads that read the files.

    Returns
    -------
    matches : list of (int, int)
        As from :func:`match_fingerprints`.

    Raises
    ------
    ValueError
        When ``record`` is not a :func:`fingerprint_record`.
    """
    return match_fingerprints(fingerprints(images, n_jobs=n_jobs), record)


def match_fingerprints(hashes, record):
    """Which of the hashes lie within the quick hash threshold of a recorded photo.

    Parameters
    ----------
    hashes : ndarray of shape (n, 2, 8), dtype uint64
        The test images' :func:`fingerprints` (or :func:`fingerprint_of`
        each); a row of zeros matches nothing.

    record : dict
        A :func:`fingerprint_record`.

    Returns
    -------
    matches : list of (int, int)
        ``(index in hashes, distance)`` of each near copy, in order: the
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
    hashes = np.asarray(hashes, dtype=np.uint64).reshape(-1, 2, 8)
    rotations = _DEFAULTS.rotations
    by_grey = hash_distances_to(hashes[:, 0], grey, rotations=rotations)
    by_value = hash_distances_to(hashes[:, 1], value, rotations=rotations)
    near = (by_grey <= distance) | (
        by_value <= max(distance - _VALUE_HASH_MARGIN, 0))
    return [(int(i), int(min(by_grey[i], by_value[i])))
            for i in np.flatnonzero(near)]
