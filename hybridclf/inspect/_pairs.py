"""The evidence that two files are duplicates, one kind a function.

Duplicate pairs come from equal file or pixel hashes, near-equal perceptual
hashes (of the image, its mirror and its quarter turns), close CNN embeddings,
and candidate pairs that stay alike after geometric alignment. Grouping the
pairs is :mod:`._grouping`'s part.
"""

import dataclasses
import logging

import cv2
import numpy as np

logger = logging.getLogger(__name__)

# the aligned similarity of two images is the larger of their correlation and
# their correlation after a blur of _BLUR_SIGMA pixels less BLURRED_MARGIN. On
# the OpenCV copies of amulet6 (benchmarks/bench_inspect.py, tuning copies),
# blurred, sharpened and cropped copies correlate at 0.95 to 1.0 once blurred,
# while different amulets of one mould reach 0.936 (99th percentile of the
# candidate pairs); without the blur a third of the blurred copies failed
_BLUR_SIGMA = 2.0
BLURRED_MARGIN = 0.02


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


def _keypoints(gray):
    """ORB keypoint positions and descriptors of a grey image and of its mirror."""
    orb = cv2.ORB_create(nfeatures=200, fastThreshold=10, edgeThreshold=15,
                         patchSize=15)
    out = []
    for image in (gray, np.ascontiguousarray(gray[:, ::-1])):
        kp, des = orb.detectAndCompute(image, None)
        pts = np.float32([k.pt for k in kp]) if kp else np.empty((0, 2), np.float32)
        out.append((image, pts, des))
    return out


def _correlation(x, y):
    """Normalised cross-correlation of two float arrays, -1 when one is flat."""
    x = x - x.mean()
    y = y - y.mean()
    denom = float(np.sqrt((x * x).sum() * (y * y).sum()))
    return float((x * y).sum()) / denom if denom > 0 else -1.0


def _overlap_similarity(warped, image_b, mask):
    """The aligned similarity of the overlap ``mask`` of two aligned images.

    The larger of the correlation of the pixels and, less
    :data:`BLURRED_MARGIN`, the correlation after a Gaussian blur of both
    (sigma 2 pixels): blurred, sharpened and resampled copies correlate
    again once the finest detail is smoothed away. The mask loses 2 pixels
    along its edge, where the warp interpolates with the border.
    """
    mask = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    if not mask.any():
        return -1.0
    sharp = _correlation(warped[mask].astype(np.float32),
                         image_b[mask].astype(np.float32))
    soft_a = cv2.GaussianBlur(warped, (0, 0), _BLUR_SIGMA)
    soft_b = cv2.GaussianBlur(image_b, (0, 0), _BLUR_SIGMA)
    soft = _correlation(soft_a[mask].astype(np.float32),
                        soft_b[mask].astype(np.float32))
    return max(sharp, soft - BLURRED_MARGIN)


def _aligned_similarity(a, b, min_inliers, enough=1.0):
    """Similarity of two grey images after aligning b's features onto a's.

    ``a`` and ``b`` are :func:`_keypoints` results. A similarity transform
    (rotation, scale, shift) is fitted with RANSAC to the matched ORB
    features, for b and for b's mirror; the best
    :func:`_overlap_similarity` of the overlapping pixels is returned, or -1
    when no transform is found or the overlap is under 30% of b. The mirror
    is skipped once b scores ``enough``.
    """
    image_a, pts_a, des_a = a[0]
    best = -1.0
    if des_a is None or len(des_a) < min_inliers:
        return best
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True)
    for image_b, pts_b, des_b in b:
        if des_b is None or len(des_b) < min_inliers:
            continue
        matches = matcher.match(des_a, des_b)
        if len(matches) < min_inliers:
            continue
        src = pts_a[[m.queryIdx for m in matches]]
        dst = pts_b[[m.trainIdx for m in matches]]
        matrix, inliers = cv2.estimateAffinePartial2D(
            src, dst, method=cv2.RANSAC, ransacReprojThreshold=3.0)
        if matrix is None or int(inliers.sum()) < min_inliers:
            continue
        size = (image_b.shape[1], image_b.shape[0])
        warped = cv2.warpAffine(image_a, matrix, size, flags=cv2.INTER_LINEAR)
        mask = cv2.warpAffine(np.ones_like(image_a), matrix, size,
                              flags=cv2.INTER_NEAREST) > 0
        if mask.sum() < 0.3 * image_b.size:
            continue
        best = max(best, _overlap_similarity(warped, image_b, mask))
        if best >= enough:
            break
    return best


def aligned_pairs(records, candidates, min_similarity, *, min_inliers=20):
    """The aligned similarity of candidate pairs.

    Each candidate pair is checked by fitting a similarity transform to matched
    ORB features of the equalised grey images (and the mirror of the second)
    and correlating the aligned pixels, sharp and blurred (see
    :func:`_overlap_similarity`): crops, small rotations, blurred and rescaled
    copies of one photo reach 0.95 to 1.0, while different photos of similar
    objects (the same amulet type) mostly stay under 0.9.

    Parameters
    ----------
    records : list of ScanRecord
        Scanned files with ``align_gray``.

    candidates : iterable of (int, int)
        Pairs to check.

    min_similarity : float
        Smallest similarity of a duplicate pair: a pair reaching it is not
        tried further (with the mirror).

    Returns
    -------
    pairs : list of (int, int, float)
        ``(i, j, similarity)`` of every pair that could be aligned, duplicate
        or not.
    """
    cache, out = {}, []

    def features(i):
        if i not in cache:
            cache[i] = _keypoints(records[i].align_gray)
        return cache[i]

    for i, j in candidates:
        if records[i].align_gray is None or records[j].align_gray is None:
            continue
        similarity = _aligned_similarity(features(i), features(j), min_inliers,
                                         enough=min_similarity)
        if similarity > -1:
            out.append((i, j, similarity))
    return out
