"""The evidence that two files are duplicates, one kind a function.

Duplicate pairs come from equal file or pixel hashes, near-equal perceptual
hashes (of the image, its mirror and its quarter turns) and close CNN
embeddings; close pairs short of these become candidates for the geometric
check of :mod:`._alignment`. Grouping the pairs is :mod:`._grouping`'s part.
"""

import dataclasses

import cv2
import numpy as np


@dataclasses.dataclass(frozen=True, order=True)
class DuplicatePair:
    """Files ``i < j`` are duplicates by ``evidence``, with a score in [0, 1]."""

    i: int
    j: int
    evidence: str
    score: float


def perceptual_hashes(gray):
    """The 64-bit DCT hashes of a grey image under the 8 flips and quarter turns.

    The image is histogram-equalised first, so that copies whose tones were
    remapped (greyscale conversions, brightness and contrast changes) hash
    alike; then reduced to 32x32 pixels and hashed as in pHash: the signs of the
    8x8 lowest DCT frequencies against their median.

    Parameters
    ----------
    gray : ndarray of shape (height, width), dtype uint8
        The image in grey levels.

    Returns
    -------
    hashes : ndarray of shape (8,), dtype uint64
        Hash of the image, its mirror, and of both turned by 90, 180 and 270
        degrees, in the order (turn 0, turn 0 mirrored, turn 90, ...).
    """
    small = cv2.resize(cv2.equalizeHist(gray), (32, 32), interpolation=cv2.INTER_AREA)
    small = small.astype(np.float32)
    out = np.empty(8, dtype=np.uint64)
    for k in range(4):
        turned = np.rot90(small, k)
        for m, variant in enumerate((turned, turned[:, ::-1])):
            coeffs = cv2.dct(np.ascontiguousarray(variant))[:8, :8].ravel()
            bits = coeffs > np.median(coeffs[1:])
            out[2 * k + m] = np.packbits(bits).view(">u8")[0]
    return out


def exact_pairs(records):
    """Pairs of indices whose file bytes or decoded pixels are identical."""
    pairs = []
    for key, how in (("sha256", "identical file"), ("pixel_hash", "identical pixels")):
        first = {}
        for i, rec in enumerate(records):
            value = getattr(rec, key)
            if value is None:
                continue
            if value in first:
                pairs.append((first[value], i, how))
            else:
                first[value] = i
    return pairs


def hash_pairs(hashes, max_distance, *, rotations=True, block=512):
    """Pairs whose perceptual hashes differ in at most ``max_distance`` bits.

    Parameters
    ----------
    hashes : ndarray of shape (n, 8), dtype uint64
        :func:`perceptual_hashes` of each image; rows of zeros are skipped.

    max_distance : int
        Largest Hamming distance of a near-duplicate pair.

    rotations : bool, default=True
        Also compare against the quarter turns; otherwise only the image and
        its mirror.

    Returns
    -------
    pairs : list of (int, int, int)
        ``(i, j, distance)`` with ``i < j``.
    """
    n = len(hashes)
    if n < 2:
        return []
    valid = np.flatnonzero(hashes.any(axis=1))
    variants = hashes[:, : 8 if rotations else 2]
    pairs = []
    for start in range(0, len(valid), block):
        rows = valid[start : start + block]
        # distance of each image's upright hash to every variant of the others
        xor = hashes[rows, 0][:, None, None] ^ variants[valid][None, :, :]
        dist = np.bitwise_count(xor).min(axis=2)
        ii, jj = np.nonzero(dist <= max_distance)
        for a, b in zip(ii, jj):
            i, j = int(rows[a]), int(valid[b])
            if i < j:
                pairs.append((i, j, int(dist[a, b])))
    return pairs


def hash_distances_to(hashes, reference, *, rotations=True, block=16):
    """Each image's smallest hash distance to a set of upright reference hashes.

    The cross-set form of :func:`hash_pairs`: for a test set against the
    training photos of a model, whose record keeps only their upright hashes.

    Parameters
    ----------
    hashes : ndarray of shape (n, 8), dtype uint64
        :func:`perceptual_hashes` of each image; rows of zeros are skipped.

    reference : ndarray of shape (m,), dtype uint64
        Upright hashes (column 0 of :func:`perceptual_hashes`).

    rotations : bool, default=True
        Also compare the quarter turns of ``hashes``; otherwise only the image
        and its mirror.

    Returns
    -------
    distances : ndarray of shape (n,), dtype int
        The smallest Hamming distance of each image (any of its variants) to
        any reference hash; 65 for a skipped row or an empty ``reference``.
    """
    out = np.full(len(hashes), 65, dtype=int)
    valid = np.flatnonzero(hashes.any(axis=1))
    reference = np.asarray(reference, dtype=np.uint64)
    if not len(reference):
        return out
    variants = hashes[:, : 8 if rotations else 2]
    for start in range(0, len(valid), block):
        rows = valid[start : start + block]
        # (rows, variants, reference): a few MB a block for 10,000 references
        xor = variants[rows][:, :, None] ^ reference[None, None, :]
        out[rows] = np.bitwise_count(xor).min(axis=(1, 2))
    return out


def embedding_pairs(embeddings, min_similarity, *, block=1024):
    """Pairs whose embeddings have a cosine similarity of ``min_similarity`` or more.

    Rows of NaN (images without an embedding) are skipped.

    Returns
    -------
    pairs : list of (int, int, float)
        ``(i, j, similarity)`` with ``i < j``.
    """
    emb = np.asarray(embeddings, dtype=np.float32)
    valid = np.flatnonzero(np.isfinite(emb).all(axis=1))
    unit = emb[valid] / np.maximum(np.linalg.norm(emb[valid], axis=1, keepdims=True),
                                   1e-12)
    pairs = []
    for start in range(0, len(valid), block):
        sim = unit[start : start + block] @ unit.T
        ii, jj = np.nonzero(sim >= min_similarity)
        for a, b in zip(ii, jj):
            i, j = int(valid[start + a]), int(valid[b])
            if i < j:
                pairs.append((i, j, float(sim[a, b])))
    return pairs


def unrelated_pairs(pairs, embeddings, max_similarity):
    """The ``pairs`` whose embeddings' cosine similarity is under ``max_similarity``.

    Pairs with a NaN embedding (no image) are never unrelated.

    Returns
    -------
    unrelated : set of DuplicatePair
    """
    emb = np.asarray(embeddings, dtype=np.float64)
    known = np.isfinite(emb).all(axis=1)
    unit = np.nan_to_num(emb) / np.maximum(
        np.linalg.norm(np.nan_to_num(emb), axis=1, keepdims=True), 1e-12)
    return {p for p in pairs if known[p.i] and known[p.j]
            and unit[p.i] @ unit[p.j] < max_similarity}


def nearest_pairs(embeddings, k):
    """Each file paired with its ``k`` nearest neighbours by embedding.

    Copies that a crop or a rotation moved far from their original in
    absolute terms (cosine similarity 0.7 to 0.85) mostly stay among its
    nearest neighbours, so these pairs are worth a geometric check. Rows of
    NaN are skipped.

    Returns
    -------
    pairs : set of (int, int)
        ``(i, j)`` with ``i < j``.
    """
    emb = np.asarray(embeddings, dtype=np.float32)
    valid = np.flatnonzero(np.isfinite(emb).all(axis=1))
    k = min(k, len(valid) - 1)
    if k < 1:
        return set()
    unit = emb[valid] / np.maximum(np.linalg.norm(emb[valid], axis=1, keepdims=True),
                                   1e-12)
    pairs = set()
    for start in range(0, len(valid), 1024):
        sim = unit[start : start + 1024] @ unit.T
        sim[np.arange(len(sim)), np.arange(start, start + len(sim))] = -np.inf
        nearest = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        for a, row in enumerate(nearest):
            i = int(valid[start + a])
            pairs.update((min(i, int(valid[b])), max(i, int(valid[b]))) for b in row)
    return pairs
