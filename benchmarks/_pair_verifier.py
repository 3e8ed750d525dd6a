"""A combined verifier for different photos of one amulet, scored held out.

The inspector finds 3 of the 21 pairs of different photos of one amulet in
``amulet6_groups.csv``; no single measure tells the others from different
amulets of one mould (``_photo_pairs.py``). This module tries measures
together: a pair of files is *verified* when every one of these clears its
bar:

- ``sift``: SIFT inliers of a RANSAC homography (Lowe's ratio 0.8);
- ``ratio``: those inliers over the matches that passed the ratio test;
- ``detail``: the correlation of fine detail (difference of Gaussians, sigma
  1 and 3) once aligned by that homography, meant to match wear marks;
- ``embedding``: the cosine similarity of the inspector's CNN embeddings.

The bars are chosen without looking at the pairs they are scored on: the six
amulet6 classes are split into two halves, each half's rule is chosen on the
original photos of the other half (grid search, most photo pairs found less
twice the pairs of different amulets let in, ties to the stricter rule), and
somdej gets the rule chosen on all of amulet6. :func:`verified_links` counts
the verified pairs of files between the inspector's groups and
:func:`merged_groups` joins the groups (cluster, then verify) that hold enough
of them; ``bench_inspect.py`` scores the result on the OpenCV copies like the
inspector's own groups. Not used by the inspector: held out, it lets in more
pairs of different amulets than it finds photo pairs (docs/benchmarks.md).
"""

import itertools

import _photo_pairs
import cv2
import numpy as np

# the two halves of amulet6's classes; each half is scored with the rule
# chosen on the other
HALVES = ({"somdej_pratanporn_buddhagavak", "waek_man", "wat_nong_e_duk"},
          {"phra_sivali", "portrait_back", "prok_bodhi_9_leaves"})
GRID = {"sift": (0, 10, 15, 20, 25, 30, 40, 55, 70),
        "ratio": (0.0, 0.4, 0.5, 0.6, 0.7),
        "detail": (-1.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
        "embedding": (0.0, 0.8, 0.83, 0.85, 0.87, 0.89, 0.91, 0.93)}
# a pair of different amulets let in costs this many photo pairs found
_FALSE_COST = 2
# photos are measured at this longer side (amulet6's own size)
_SIDE = 224


def grey(path):
    """The equalised grey image of ``path``, its longer side at most 224."""
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    scale = _SIDE / max(image.shape)
    if scale < 1:
        image = cv2.resize(image, None, fx=scale, fy=scale,
                           interpolation=cv2.INTER_AREA)
    return cv2.equalizeHist(image)


def sift_features(greys):
    """SIFT keypoint positions and descriptors (500 per image)."""
    sift = cv2.SIFT_create(nfeatures=500)
    out = []
    for image in greys:
        kp, des = sift.detectAndCompute(image, None)
        out.append((np.float32([k.pt for k in kp]), des))
    return out


def measures(greys, feats, unit, a, b):
    """The four measures of files ``a`` and ``b`` (see the module docstring)."""
    inliers, matrix, good = _photo_pairs.homography(feats, cv2.NORM_L2, a, b)
    return {"sift": inliers, "ratio": inliers / max(good, 1),
            "detail": _photo_pairs.detail_correlation(greys[a], greys[b], matrix),
            "embedding": float(unit[a] @ unit[b])}


def passes(rule, values):
    """Whether every measure clears the rule's bar."""
    return all(values[k] >= bar for k, bar in rule.items())


def choose_rule(rows):
    """The grid rule that maximises found photo pairs less 2x different ones.

    ``rows`` are ``(same, values)``; ties go to the stricter rule.
    """
    best = None
    for bars in itertools.product(*GRID.values()):
        rule = dict(zip(GRID, bars))
        found = [same for same, values in rows if passes(rule, values)]
        key = (sum(found) - _FALSE_COST * (len(found) - sum(found)), sum(bars))
        if best is None or key > best[0]:
            best = (key, rule, sum(found), len(found) - sum(found))
    return {"rule": best[1], "photo_pairs": best[2], "different_pairs": best[3]}


def cross_fitted_rules(base):
    """Each half's rule (chosen on the other half) and somdej's (all of amulet6).

    Returns
    -------
    rules : dict
        ``by_class`` (amulet6 class -> rule), ``somdej`` (rule), ``halves``
        (per half: the rule, what it found where it was chosen, and what it
        finds on the half it is scored on).
    """
    paths, objects = _photo_pairs.truth_set.amulet6_objects(base)
    greys = [grey(p) for p in paths]
    feats = sift_features(greys)
    unit = _photo_pairs.embeddings(paths)
    same, different = _photo_pairs.index_pairs(paths, objects)
    rows = {}
    for a, b in same + different:
        rows[a, b] = ((a, b) in set(same), measures(greys, feats, unit, a, b))

    def half_rows(half):
        return [row for (a, b), row in rows.items() if paths[a].parent.name in half]

    out = {"by_class": {}, "halves": []}
    for k, half in enumerate(HALVES):
        chosen = choose_rule(half_rows(HALVES[1 - k]))
        scored = [same for same, values in half_rows(half)
                  if passes(chosen["rule"], values)]
        chosen.update(classes=sorted(half), held_out_photo_pairs=sum(scored),
                      held_out_different_pairs=len(scored) - sum(scored))
        out["halves"].append(chosen)
        out["by_class"].update(dict.fromkeys(half, chosen["rule"]))
    out["somdej"] = choose_rule(list(rows.values()))["rule"]
    return out


def verified_links(files, groups, rule_of):
    """The verified pairs of files in different groups, counted per pair of groups.

    Parameters
    ----------
    files : list of str
        The inspected files.

    groups : sequence of int
        The inspector's group of each file.

    rule_of : callable
        ``rule_of(path)``: the rule for pairs whose first file is ``path``.

    Returns
    -------
    links : dict of (int, int) to int
        ``(group, group)`` -> verified pairs of files between them.
    n_checked : int
        The pairs of files in different groups that were measured (those
        clearing the embedding bar).
    """
    unit = _photo_pairs.embeddings(files)
    rules = [rule_of(f) for f in files]
    # only pairs that clear the embedding bar are worth the SIFT match
    sim = unit @ unit.T
    lowest = min(r["embedding"] for r in rules)
    todo = [(int(a), int(b)) for a, b in zip(*np.nonzero(np.triu(sim, 1) >= lowest))
            if groups[a] != groups[b] and sim[a, b] >= rules[a]["embedding"]]
    index = sorted({k for pair in todo for k in pair})
    greys = {k: grey(files[k]) for k in index}
    feats = dict(zip(index, sift_features([greys[k] for k in index])))
    links = {}
    for a, b in todo:
        if passes(rules[a], measures(greys, feats, unit, a, b)):
            key = tuple(sorted((int(groups[a]), int(groups[b]))))
            links[key] = links.get(key, 0) + 1
    return links, len(todo)


def merged_groups(groups, links, min_share=0.0):
    """Groups joined (transitively) where enough of their cross pairs verify.

    Two groups of sizes m and n are joined when at least
    ``max(1, min_share * m * n)`` of their ``m * n`` cross pairs of files are
    verified (``links``, from :func:`verified_links`).
    """
    size = {}
    for g in groups:
        size[int(g)] = size.get(int(g), 0) + 1
    parent = {g: g for g in size}

    def find(g):
        while parent[g] != g:
            g = parent[g]
        return g

    for (ga, gb), count in links.items():
        if count >= max(1.0, min_share * size[ga] * size[gb]):
            ra, rb = find(ga), find(gb)
            parent[max(ra, rb)] = min(ra, rb)
    return [find(int(g)) for g in groups]
