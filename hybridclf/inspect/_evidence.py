"""Every duplicate pair of the scanned files, with its evidence, and the near misses.

:func:`duplicate_pairs` gathers the evidence of :mod:`._pairs` (exact files
and pixels, perceptual hashes, CNN embeddings) and sends the close pairs short
of a threshold to the alignment check of :mod:`._alignment`; the near misses
are what a person may merge by hand. :mod:`._duplicates` groups the pairs.
"""

import dataclasses
import logging

import numpy as np

from ._alignment import aligned_pairs
from ._grouping import open_triangles, union_find_groups
from ._pairs import (
    DuplicatePair,
    embedding_pairs,
    exact_pairs,
    hash_pairs,
    nearest_pairs,
    unrelated_pairs,
)

logger = logging.getLogger(__name__)

# pairs this close are checked by alignment (aligned_similarity): a perceptual
# hash distance (upright or mirrored) of at most 12 bits, or an embedding
# similarity of 0.85; wider nets cost seconds of alignment on amulet6
CANDIDATE_HASH_DISTANCE = 12
_CANDIDATE_SIMILARITY = 0.85
# and each file's nearest neighbours by embedding: on the OpenCV copies of
# amulet6 (tuning copies) 5 neighbours put 94% of the pairs of copies among the
# candidates, against 84% for the two thresholds alone, for 45% more pairs
_CANDIDATE_NEIGHBOURS = 5
# a candidate this close under a threshold is listed as a near miss
_NEAR_SIMILARITY = 0.05
_NEAR_BITS = 3
# bits by which the value-channel hash threshold is under hash_distance: on the
# OpenCV copies of amulet6 (bench_inspect.py), 3 bits find most hue-shifted
# copies (which move the grey hash by 14 bits) and keep the pair precision at
# 0.999; 4 bits joined different amulets (precision 0.982)
_VALUE_HASH_MARGIN = 3
# in full mode, a hash pair whose CNN embeddings are under this similarity
# must also pass the alignment check: on the tuning copies of amulet6 (seeds
# 0, 2 and 3 of bench_inspect.py) such pairs were mostly chance matches of a
# plain back or a coloured background; 0.6 removed the one wrong group of
# seed 3 and kept every other group as it was (0.75 split two photos of one
# amulet on seed 3)
_CONTRADICTING_SIMILARITY = 0.6


def hash_matrix(records):
    """The grey and value-channel hashes of each record, zeros where unknown."""
    hashes = np.zeros((len(records), 2, 8), dtype=np.uint64)
    for i, rec in enumerate(records):
        if rec.phash is not None:
            hashes[i] = rec.phash, rec.vhash
    return hashes


def _near_hash_pairs(hashes, t):
    """Duplicate pairs by grey and value-channel hash, and the pairs to align."""
    pairs = [DuplicatePair(i, j, "perceptual hash", 1.0 - d / 64.0)
             for i, j, d in hash_pairs(hashes[:, 0], t.hash_distance,
                                       rotations=t.rotations)]
    # the value-channel hash matches hue shifts; it is looser on other photos,
    # so its threshold is tighter
    pairs += [DuplicatePair(i, j, "perceptual hash (value channel)", 1.0 - d / 64.0)
              for i, j, d in hash_pairs(hashes[:, 1],
                                        max(t.hash_distance - _VALUE_HASH_MARGIN, 0),
                                        rotations=t.rotations)]
    candidates = {}
    if t.aligned_similarity is not None:
        candidates = {(i, j): d for i, j, d in hash_pairs(
            hashes[:, 0], CANDIDATE_HASH_DISTANCE, rotations=False)
            if d > t.hash_distance}
    return pairs, candidates


def _aligned(records, todo, t, near, align):
    """The aligned duplicate pairs among ``todo``; near misses go to ``near``."""
    found = []
    for i, j, s in align(records, todo, t.aligned_similarity, n_jobs=t.n_jobs):
        if s >= t.aligned_similarity:
            found.append(DuplicatePair(i, j, "aligned pixels", s))
        elif s >= t.aligned_similarity - _NEAR_SIMILARITY:
            near.append(DuplicatePair(i, j, f"aligned pixels {s:.3f} "
                                      f"(duplicates from {t.aligned_similarity})", s))
    return found


def _verified(records, pairs, candidates, t, near, align):
    """The candidates that pass the alignment check, then the closed triangles.

    Candidates already joined to each other through other pairs are not
    checked; then every two files that share a duplicate but are not linked
    are checked, so that a family of copies is linked pair by pair and the
    average linkage sees it whole.
    """
    joined = union_find_groups(len(records), [(p.i, p.j) for p in pairs])
    todo = sorted((i, j) for i, j in candidates if joined[i] != joined[j])
    logger.info("Aligning %d candidate pairs", len(todo))
    found = _aligned(records, todo, t, near, align)
    closing = open_triangles([(p.i, p.j) for p in pairs + found], set(todo))
    logger.info("Aligning %d pairs that share a duplicate", len(closing))
    return found + _aligned(records, closing, t, near, align)


def duplicate_pairs(records, embeddings, t, align=aligned_pairs):
    """Every duplicate pair of the scanned files, and the near misses.

    Parameters
    ----------
    records : list of ScanRecord
        The scanned files.

    embeddings : ndarray or None
        Their CNN embeddings.

    t : SearchSettings
        The thresholds.

    align : callable, default=aligned_pairs
        :func:`~._alignment.aligned_pairs`, or a cache's
        (:meth:`~._scan_cache.ScanCache.aligned_pairs`).

    Returns
    -------
    pairs : list of DuplicatePair
        Sorted by ``(i, j)``; exact evidence wins over near evidence.

    near_misses : list of DuplicatePair
        Candidate pairs just under a threshold, the evidence saying by how much.
    """
    pairs = [DuplicatePair(i, j, how, 1.0) for i, j, how in exact_pairs(records)]
    hashed, hash_candidates = _near_hash_pairs(hash_matrix(records), t)
    near, candidates, doubtful = [], set(hash_candidates), set()
    if embeddings is not None and t.aligned_similarity is not None:
        # a hash match between images the CNN finds unrelated must align
        doubtful = unrelated_pairs(hashed, embeddings, _CONTRADICTING_SIMILARITY)
        candidates |= {(p.i, p.j) for p in doubtful}
        hashed = [p for p in hashed if p not in doubtful]
    pairs += hashed
    if embeddings is not None and t.embedding_similarity is not None:
        if t.aligned_similarity is not None:
            candidates |= nearest_pairs(embeddings, _CANDIDATE_NEIGHBOURS)
        reach = min(t.embedding_similarity, _CANDIDATE_SIMILARITY)
        for i, j, s in embedding_pairs(embeddings, reach):
            if s >= t.embedding_similarity:
                pairs.append(DuplicatePair(i, j, "CNN embedding", s))
                continue
            candidates.add((i, j))
            if s >= t.embedding_similarity - _NEAR_SIMILARITY:
                near.append(DuplicatePair(i, j, f"CNN embedding {s:.3f} (duplicates "
                                          f"from {t.embedding_similarity})", s))
    if t.aligned_similarity is not None and candidates:
        pairs += _verified(records, pairs, candidates, t, near, align)
        linked = {(p.i, p.j) for p in pairs}
        near += [dataclasses.replace(p, evidence=f"{p.evidence}, unconfirmed: the "
                                     "CNN embeddings differ")
                 for p in doubtful if (p.i, p.j) not in linked]
        for (i, j), d in hash_candidates.items():
            if d <= t.hash_distance + _NEAR_BITS:
                near.append(DuplicatePair(i, j, f"perceptual hash {d} bits apart "
                                          f"(duplicates up to {t.hash_distance})",
                                          1.0 - d / 64.0))
    best = {}
    for pair in pairs:
        best.setdefault((pair.i, pair.j), pair)
    return sorted(best.values(), key=lambda p: (p.i, p.j)), near
