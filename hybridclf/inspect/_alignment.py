"""The geometric check: do two images stay alike once aligned?

Candidate pairs (close, but short of the hash and embedding thresholds) are
aligned by a similarity transform fitted to matched ORB features, and the
aligned pixels are correlated. Crops, small rotations, blurred and rescaled
copies of one photo pass; different photos of similar objects mostly fail.
"""

import cv2
import numpy as np

from ..utils._parallel import run_chunked

# the aligned similarity of two images is the larger of their correlation and
# their correlation after a blur of _BLUR_SIGMA pixels less BLURRED_MARGIN. On
# the OpenCV copies of amulet6 (benchmarks/bench_inspect.py, tuning copies),
# blurred, sharpened and cropped copies correlate at 0.95 to 1.0 once blurred,
# while different amulets of one mould reach 0.936 (99th percentile of the
# candidate pairs); without the blur a third of the blurred copies failed
_BLUR_SIGMA = 2.0
BLURRED_MARGIN = 0.02
# a pair that fails on the grey images, and whose value-channel hashes are
# the closer (a hue shift moves the grey hash, not the value hash), is aligned
# again on the value channel and must score VALUE_MARGIN more: on the OpenCV
# copies of amulet6 (tuning copies, seed 0) the value channel aligns 973 of
# the 975 candidate pairs of copies, the grey images 782, and it rates
# different amulets of one mould higher (22 different-object pairs from 0.93,
# one from 0.95); retrying only the pairs whose value hashes are the closer
# takes a third of the retries and loses 0.003 of copy recall
VALUE_MARGIN = 0.02
# ORB features per image (and per mirror image): on the tuning copies of
# amulet6, 150 features align the same copies as 200 did for about 20% less
# search CPU; 120 the same groups as 150 on seeds 0 and 3 and 0.003 less copy
# recall on seed 2, for 10% less CPU of the whole full-mode inspection (the
# alignment 15-20% less); 5 pyramid levels instead of 8 lost copies on seeds
# 0, 2 and 3 and saved little
_N_FEATURES = 120


def _keypoints(gray, mirror=True, known=()):
    """ORB keypoint positions and descriptors of a grey image and of its mirror.

    ``known`` holds the upright image's, found before; the mirror's are found
    only when ``mirror`` (the second image of a pair is tried mirrored, the
    first never is).
    """
    orb = cv2.ORB_create(nfeatures=_N_FEATURES, fastThreshold=10, edgeThreshold=15,
                         patchSize=15)
    out = list(known)
    images = (gray, np.ascontiguousarray(gray[:, ::-1]))[len(out):1 + bool(mirror)]
    for image in images:
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


def _all_keypoints(records, candidates, channel, n_jobs):
    """:func:`_keypoints` of ``records[k].<channel>`` for each file of the pairs.

    The mirror image's only for files that are the second of a pair. They
    are kept in each record's ``align_features`` and reused by later calls
    (the pairs that share a duplicate are aligned after the candidates); on
    amulet6 this skips about a tenth of the ORB searches.
    """
    second = {j for _, j in candidates}
    todo = []
    for k in sorted({k for pair in candidates for k in pair}):
        have = records[k].align_features.get(channel, ())
        if len(have) < 1 + (k in second):
            todo.append(k)

    def work(chunk):
        for k in todo[chunk]:
            features = records[k].align_features
            features[channel] = _keypoints(getattr(records[k], channel),
                                           mirror=k in second,
                                           known=features.get(channel, ())[:1])

    run_chunked(work, len(todo), n_jobs)
    return {k: records[k].align_features[channel]
            for pair in candidates for k in pair}


def _hue_shifted(a, b):
    """Whether the value-channel hashes of records a and b are the closer ones."""
    if a.vhash is None or b.vhash is None:
        return False
    grey = np.bitwise_count(a.phash[0] ^ b.phash).min()
    value = np.bitwise_count(a.vhash[0] ^ b.vhash).min()
    return bool(value < grey)


def _align_channel(records, candidates, channel, enough, min_inliers, n_jobs):
    """``(i, j, similarity)`` of the candidates on one channel, in threads."""
    candidates = [(i, j) for i, j in candidates
                  if getattr(records[i], channel) is not None
                  and getattr(records[j], channel) is not None]
    features = _all_keypoints(records, candidates, channel, n_jobs)

    def work(chunk):
        return [(i, j, _aligned_similarity(features[i], features[j], min_inliers,
                                           enough=enough))
                for i, j in candidates[chunk]]

    return [row for part in run_chunked(work, len(candidates), n_jobs)
            for row in part]


def aligned_pairs(records, candidates, min_similarity, *, min_inliers=20,
                  n_jobs=None):
    """The aligned similarity of candidate pairs.

    Each candidate pair is checked by fitting a similarity transform to matched
    ORB features of the equalised grey images (and the mirror of the second)
    and correlating the aligned pixels, sharp and blurred (see
    :func:`_overlap_similarity`): crops, small rotations, blurred and rescaled
    copies of one photo reach 0.95 to 1.0, while different photos of similar
    objects (the same amulet type) mostly stay under 0.9. A pair under
    ``min_similarity`` whose value-channel hashes are closer than its grey
    ones (the mark of a hue shift) is checked again on the equalised value
    channels (the largest of R, G and B, which a hue shift leaves as it
    was), less :data:`VALUE_MARGIN`.

    Parameters
    ----------
    records : list of ScanRecord
        Scanned files with ``align_gray`` and ``align_value``.

    candidates : iterable of (int, int)
        Pairs to check.

    min_similarity : float
        Smallest similarity of a duplicate pair: a pair reaching it is not
        tried further (with the mirror, or the value channel).

    min_inliers : int, default=20
        Fewest matched features that agree with the fitted transform.

    n_jobs : int, default=None
        Threads, as in :func:`hybridclf.utils._parallel.run_chunked`.

    Returns
    -------
    pairs : list of (int, int, float)
        ``(i, j, similarity)`` of every pair that could be aligned, duplicate
        or not.
    """
    best = {(i, j): s for i, j, s in _align_channel(
        records, candidates, "align_gray", min_similarity, min_inliers, n_jobs)}
    retry = [pair for pair, s in best.items() if s < min_similarity
             and _hue_shifted(records[pair[0]], records[pair[1]])]
    for i, j, s in _align_channel(records, retry, "align_value",
                                  min_similarity + VALUE_MARGIN, min_inliers, n_jobs):
        if s > -1:
            best[i, j] = max(best[i, j], s - VALUE_MARGIN)
    return [(i, j, s) for (i, j), s in best.items() if s > -1]
