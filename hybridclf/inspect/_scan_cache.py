"""The duplicate search's per-photo signatures and aligned pairs, kept on disk.

Grouping near-identical photos decodes and measures every file
(:func:`~._scan.scan_files`) and aligns the candidate pairs
(:func:`~._alignment.aligned_pairs`); after 20 photos were added to 1,000, only
the new ones need decoding and only the pairs that involve one need
aligning. :class:`ScanCache` keeps

- each decoded file's :class:`~._scan.ScanRecord` (measures and perceptual
  hashes; not the grey copy for alignment, which is made again only for a
  photo in a pair to align) under the SHA-256 of the file's bytes, and
- the aligned similarity of each candidate pair under the SHA-256 of the two
  files' digests (in order: the alignment is not symmetric),

both under a **settings key**: the versions of hybridclf and the libraries
that decode and measure, and the content of the source files that compute
records and alignments (a change to the matching logic misses the cache).
The store is :class:`hybridclf.utils._row_store.RowStore`, in the folder of
the feature cache (``hybridclf train --cache-dir``).
"""

import dataclasses
import hashlib
import json
import logging
import sys

import numpy as np

from ..io import _SOURCE_MODULES as _IO_MODULES
from ..io import special_file_reason
from ..utils._row_store import (
    RowStore,
    content_digest,
    library_versions,
    settings_hash,
    source_digests,
)
from . import _alignment, _pairs, _scan

logger = logging.getLogger(__name__)

_LIBRARIES = ("hybridclf", "numpy", "opencv-contrib-python-headless",
              "opencv-python-headless", "opencv-python", "pillow")
# ScanRecord fields kept as arrays, or not kept (made again when needed)
_HASHES = ("phash", "vhash")
_NOT_KEPT = ("path", "align_gray", "align_value", "align_features")


class ScanCache:
    """Scan records and aligned pairs of files seen before, kept on disk.

    See the module's docstring. Only for a search without the CNN (whose
    images the records do not keep).

    Parameters
    ----------
    directory : str or os.PathLike
        The cache folder (that of :class:`hybridclf.training.FeatureCache`).

    max_shards : int, default=8
        Shards of one key before they are merged into one.

    Attributes
    ----------
    n_scanned, n_aligned : int
        Files decoded and pairs aligned (not read from the cache) by the last
        :meth:`scan_files` and :meth:`aligned_pairs`.
    """

    def __init__(self, directory, *, max_shards=8):
        name = "duplicate search cache"
        self._records = RowStore(directory, {"record": "S", "hashes": np.uint64},
                                 max_shards=max_shards, name=name)
        self._pairs = RowStore(directory, {"similarity": np.float32},
                               max_shards=max_shards, name=name)
        self.n_scanned = self.n_aligned = 0

    def _key(self, store, what, **params):
        """The settings key of records or pairs (see the module's docstring)."""
        modules = [sys.modules[name] for name in
                   (*_IO_MODULES, "hybridclf.quality", _scan.__name__,
                    _pairs.__name__, _alignment.__name__)]
        description = {"duplicate search": what, "parameters": params,
                       "versions": library_versions(_LIBRARIES),
                       "sources": source_digests(*modules)}
        key = settings_hash(description)
        store.describe(key, description)
        return key

    def scan_files(self, paths, *, n_jobs=None, progress=False):
        """:func:`~._scan.scan_files` (measured, no images kept), cached.

        Returns
        -------
        records : list of ScanRecord
            One per path; those read from the cache lack ``align_gray``
            (:meth:`aligned_pairs` makes it again where needed).
        """
        key = self._key(self._records, "scan records", measure=True)
        digests = [None if special_file_reason(p) else content_digest(p)
                   for p in paths]
        index, arrays, _ = self._records.load(key)
        records = [None] * len(paths)
        for i, digest in enumerate(digests):
            row = None if digest is None else index.get(digest.encode())
            if row is not None:
                records[i] = _record(paths[i], arrays["record"][row],
                                     arrays["hashes"][row])
        missing = [i for i, rec in enumerate(records) if rec is None]
        scanned, _ = _scan.scan_files([paths[i] for i in missing], n_jobs=n_jobs,
                                      progress=progress)
        keep, rows, hashes = [], [], []
        for i, rec in zip(missing, scanned):
            records[i] = rec
            row = _row(rec)
            if row is not None and rec.sha256 == digests[i]:
                keep.append(digests[i])
                rows.append(row[0])
                hashes.append(row[1])
        self._records.append(key, keep, {"record": rows,
                                         "hashes": np.reshape(hashes, (-1, 2, 8))})
        self.n_scanned = len(missing)
        logger.info("Duplicate search: %d of %d files decoded, the others read "
                    "from the cache", len(missing), len(paths))
        return records

    def aligned_pairs(self, records, candidates, min_similarity, *, n_jobs=None):
        """:func:`~._alignment.aligned_pairs` of candidate pairs, cached.

        Returns
        -------
        pairs : list of (int, int, float)
            As :func:`~._alignment.aligned_pairs` gives them, in the order of
            ``candidates``.
        """
        candidates = list(candidates)
        key = self._key(self._pairs, "aligned pairs", min_similarity=min_similarity)
        index, arrays, _ = self._pairs.load(key)
        digests = [_pair_digest(records[i], records[j]) for i, j in candidates]
        known, todo = {}, []
        for pair, digest in zip(candidates, digests):
            row = None if digest is None else index.get(digest.encode())
            if row is None:
                todo.append(pair)
            else:
                known[pair] = float(arrays["similarity"][row])
        _make_align_gray(records, todo)
        found = {(i, j): s for i, j, s in
                 _alignment.aligned_pairs(records, todo, min_similarity,
                                          n_jobs=n_jobs)}
        store = [(digest, found.get(pair, -1.0))
                 for pair, digest in zip(candidates, digests)
                 if pair not in known and digest is not None
                 and _alignable(records, pair)]
        self._pairs.append(key, [d for d, _ in store],
                           {"similarity": [s for _, s in store]})
        known.update(found)
        self.n_aligned = len(todo)
        logger.info("Duplicate search: %d of %d candidate pairs aligned, the "
                    "others read from the cache", len(todo), len(candidates))
        return [(i, j, known[(i, j)]) for i, j in candidates
                if known.get((i, j), -1.0) > -1.0]


def _row(record):
    """(JSON bytes, hashes) of a decoded record; None when it cannot be kept."""
    if not record.decoded or record.error is not None or record.sha256 is None:
        return None
    fields = {f.name: getattr(record, f.name)
              for f in dataclasses.fields(record)
              if f.name not in _NOT_KEPT + _HASHES}
    fields["hashed"] = record.phash is not None
    try:
        text = json.dumps(fields, sort_keys=True)
    except TypeError:  # a field this cache does not know how to keep
        return None
    hashes = np.zeros((2, 8), dtype=np.uint64)
    if record.phash is not None:
        hashes[:] = record.phash, record.vhash
    return text.encode(), hashes


def _record(path, text, hashes):
    """The ScanRecord of ``path`` from a cached row (without ``align_gray``).

    None when the row does not make a record (then the file is scanned).
    """
    try:
        fields = json.loads(text)
        hashed = fields.pop("hashed")
        return _scan.ScanRecord(
            path=path, **fields,
            phash=hashes[0].copy() if hashed else None,
            vhash=hashes[1].copy() if hashed else None)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _needs_align_gray(record):
    """Whether a record read from the cache lacks the grey copy a scan makes."""
    return record.decoded and not record.flat and record.align_gray is None


def _alignable(records, pair):
    return all(records[k].align_gray is not None for k in pair)


def _make_align_gray(records, pairs):
    """Decode again the cached files of ``pairs`` for their grey copy."""
    for k in sorted({k for pair in pairs for k in pair}):
        if _needs_align_gray(records[k]):
            again, _ = _scan.scan_file(records[k].path)
            if again.sha256 == records[k].sha256:
                records[k].align_gray = again.align_gray
                records[k].align_value = again.align_value


def _pair_digest(a, b):
    """The key of an ordered pair of files, or None without both digests."""
    if a.sha256 is None or b.sha256 is None:
        return None
    return hashlib.sha256(f"{a.sha256}:{b.sha256}".encode()).hexdigest()
