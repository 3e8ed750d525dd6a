"""Can any measure tell two photos of one amulet from two amulets of one mould?

``amulet6_groups.csv`` lists 21 pairs of different photos of one physical
amulet. :func:`photo_pair_separation` scores them, and every pair of photos
of different amulets within one class and side, by four measures, none of
them the inspector's:

- ``sift_inliers``: SIFT keypoints (500 per photo, on the equalised grey
  image), Lowe's ratio test at 0.8, inliers of a RANSAC homography (4 px);
- ``orb_inliers``: the same with ORB (500 features);
- ``detail_correlation``: the correlation of fine detail (difference of
  Gaussians, sigma 1 and 3) once the first photo is warped onto the second
  by the SIFT homography, meant to match wear marks; -1 without a
  homography;
- ``embedding``: the cosine similarity of the inspector's CNN embeddings.

For each measure it counts the pairs of different amulets that score at least
as high as the photo pair ranked k (k = 4, 6, 10): what a threshold that
finds k photo pairs lets in.
"""

import itertools

import _duplicate_truth as truth_set
import cv2
import numpy as np

_RANKS = (4, 6, 10)


def _detectors():
    return {"sift_inliers": (cv2.SIFT_create(nfeatures=500), cv2.NORM_L2),
            "orb_inliers": (cv2.ORB_create(nfeatures=500, fastThreshold=10,
                                           edgeThreshold=15, patchSize=15),
                            cv2.NORM_HAMMING)}


def homography(feats, norm, a, b):
    """(inliers, homography or None, matches passing the ratio test) of a onto b."""
    (pa, da), (pb, db) = feats[a], feats[b]
    if da is None or db is None or len(da) < 8 or len(db) < 8:
        return 0, None, 0
    knn = cv2.BFMatcher(norm).knnMatch(da, db, k=2)
    good = [m[0] for m in knn if len(m) == 2 and m[0].distance < 0.8 * m[1].distance]
    if len(good) < 8:
        return 0, None, len(good)
    matrix, mask = cv2.findHomography(pa[[g.queryIdx for g in good]],
                                      pb[[g.trainIdx for g in good]], cv2.RANSAC, 4.0)
    return (0, None, len(good)) if matrix is None else (int(mask.sum()), matrix,
                                                        len(good))


def detail_correlation(gray_a, gray_b, matrix):
    if matrix is None:
        return -1.0
    h, w = gray_b.shape
    warped = cv2.warpPerspective(gray_a.astype(np.float32), matrix, (w, h))
    mask = cv2.warpPerspective(np.ones_like(gray_a, np.float32), matrix, (w, h)) > 0.99
    mask = cv2.erode(mask.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    if mask.sum() < 0.3 * mask.size:
        return -1.0

    def detail(x):
        return (cv2.GaussianBlur(x, (0, 0), 1) - cv2.GaussianBlur(x, (0, 0), 3))[mask]

    x, y = detail(warped), detail(gray_b.astype(np.float32))
    x, y = x - x.mean(), y - y.mean()
    denom = float(np.sqrt((x * x).sum() * (y * y).sum()))
    return float((x * y).sum()) / denom if denom > 0 else -1.0


def embeddings(paths):
    from hybridclf.inspect._duplicates import CNN_SIZE, embed
    from hybridclf.inspect._scan import scan_files

    _, images = scan_files([str(p) for p in paths], n_jobs=2, keep_size=CNN_SIZE)
    emb = embed(images, 2)
    return emb / np.linalg.norm(emb, axis=1, keepdims=True)


def index_pairs(paths, objects):
    """Index pairs: the listed photo pairs, and different amulets of one class/side."""
    kind = [(p.parent.name, p.stem.split("_")[0]) for p in paths]
    same, different = [], []
    for a, b in itertools.combinations(range(len(paths)), 2):
        if objects[a] == objects[b]:
            same.append((a, b))
        elif kind[a] == kind[b]:
            different.append((a, b))
    return same, different


def photo_pair_separation(base):
    """Scores of the listed photo pairs against pairs of different amulets."""
    paths, objects = truth_set.amulet6_objects(base)
    names = [f"{p.parent.name}/{p.stem}" for p in paths]
    grays = [cv2.equalizeHist(cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)) for p in paths]
    same, different = index_pairs(paths, objects)
    scores = {}
    for name, (detector, norm) in _detectors().items():
        feats = []
        for gray in grays:
            kp, des = detector.detectAndCompute(gray, None)
            feats.append((np.float32([k.pt for k in kp]), des))
        for a, b in same + different:
            inliers, matrix, _ = homography(feats, norm, a, b)
            scores.setdefault(name, {})[a, b] = inliers
            if name == "sift_inliers":
                scores.setdefault("detail_correlation", {})[a, b] = (
                    detail_correlation(grays[a], grays[b], matrix))
    emb = embeddings(paths)
    scores["embedding"] = {(a, b): float(emb[a] @ emb[b]) for a, b in same + different}
    out = {"photo_pairs": len(same), "different_pairs": len(different), "measures": {}}
    for name, values in scores.items():
        photo = sorted((values[p] for p in same), reverse=True)
        other = np.array([values[p] for p in different])
        out["measures"][name] = {
            "photo_pairs": photo,
            "different_p99": float(np.percentile(other, 99)),
            "different_max": float(other.max()),
            "different_at_least_rank": {k: int((other >= photo[k - 1]).sum())
                                        for k in _RANKS},
        }
    top = sorted(different, key=lambda p: -scores["sift_inliers"][p])[:6]
    out["top_different_by_sift"] = [
        {"pair": [names[a], names[b]], "sift_inliers": scores["sift_inliers"][a, b],
         "embedding": scores["embedding"][a, b]} for a, b in top]
    return out


def separation_lines(sep):
    """A markdown table of :func:`photo_pair_separation`."""
    lines = ["", "#### Photo pairs against different amulets of one mould", "",
             f"The {sep['photo_pairs']} pairs of different photos of one amulet "
             "in `amulet6_groups.csv`, and the "
             f"{sep['different_pairs']} pairs of photos of different amulets "
             "within one class and side, scored by measures the inspector does "
             "not use (`_photo_pairs.py`). *Wrong pairs from the k-th*: the "
             "pairs of different amulets that score at least as high as the "
             "k-th best photo pair, i.e. what a threshold finding k photo pairs "
             "lets in (3 photo pairs are found now).", "",
             "| measure | photo pairs (best first) | different amulets: 99th "
             "percentile / max | wrong pairs from the 4th / 6th / 10th |",
             "| --- | --- | ---: | ---: |"]
    for name, m in sep["measures"].items():
        photo = ", ".join(f"{v:.2f}" if isinstance(v, float) else str(v)
                          for v in m["photo_pairs"])
        ranks = " / ".join(str(v) for v in m["different_at_least_rank"].values())
        lines.append(f"| {name} | {photo} | {m['different_p99']:.2f} / "
                     f"{m['different_max']:.2f} | {ranks} |")
    top = "; ".join(f"{t['pair'][0]} / {t['pair'][1].split('/')[-1]} "
                    f"({t['sift_inliers']})" for t in sep["top_different_by_sift"])
    lines += ["", f"Pairs of different amulets with the most SIFT inliers: {top}."]
    return lines
