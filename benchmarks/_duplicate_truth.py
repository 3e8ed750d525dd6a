"""A duplicate ground truth made without the inspector, and the scores against it.

:func:`write_copies` writes each original photo and several edited copies of it
made with OpenCV directly (Gaussian blur, rotation by 5 to 15 degrees either
way, brightness and contrast, sharpening, hue shift, horizontal flip, JPEG
re-encoding, a 90% crop), so the truth is known by construction: a copy
belongs to its original's object. Originals that are near-identical photos of
one physical object (``amulet6_groups.csv``, checked by eye) share an object.
:func:`pair_scores` compares the inspector's groups with that truth.
"""

import itertools
import os
from pathlib import Path

import cv2
import numpy as np

# the inspector's thresholds were tuned on the copies of TUNING_SEED (and of
# seeds 2 and 3 for the checks added for issue 19); the benchmark reports the
# copies of EVALUATION_SEED (other edits, other strengths), so its figures are
# not fitted to the set they score
TUNING_SEED = 0
EVALUATION_SEED = 1

TRANSFORMS = ("blur", "rotate", "brightness_contrast", "sharpen", "hue", "flip",
              "jpeg", "crop")


def _rotate(image, rng):
    angle = rng.uniform(5, 15) * rng.choice([-1, 1])
    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    return cv2.warpAffine(image, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE)


def _hue(image, rng):
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
    shift = int(rng.integers(10, 40))
    hsv[..., 0] = ((hsv[..., 0].astype(np.int16) + shift) % 180).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)


def _crop(image, rng):
    h, w = image.shape[:2]
    ch, cw = round(0.9 * h), round(0.9 * w)
    y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    return np.ascontiguousarray(image[y : y + ch, x : x + cw])


def _sharpen(image, rng):
    soft = cv2.GaussianBlur(image, (0, 0), 2.0)
    amount = rng.uniform(0.8, 1.5)
    return cv2.addWeighted(image, 1 + amount, soft, -amount, 0)


def edit(image, name, rng):
    """``image`` (BGR uint8) after the edit ``name``, one of :data:`TRANSFORMS`."""
    if name == "blur":
        return cv2.GaussianBlur(image, (0, 0), rng.uniform(1.5, 3.0))
    if name == "rotate":
        return _rotate(image, rng)
    if name == "brightness_contrast":
        return cv2.convertScaleAbs(image, alpha=rng.uniform(0.7, 1.3),
                                   beta=rng.uniform(-40, 40))
    if name == "sharpen":
        return _sharpen(image, rng)
    if name == "hue":
        return _hue(image, rng)
    if name == "flip":
        return np.ascontiguousarray(image[:, ::-1])
    if name == "crop":
        return _crop(image, rng)
    return image  # "jpeg": the re-encoding is the edit


def write_copies(originals, objects, out_dir, *, n_copies=3, seed=0):
    """Write the originals and ``n_copies`` edited copies of each under ``out_dir``.

    Parameters
    ----------
    originals : list of Path
        The original photos; ``originals[k].parent.name`` is kept as the class
        folder.

    objects : list of str
        The physical object of each original.

    Returns
    -------
    truth : dict of str to str
        Written file -> its object.
    """
    rng = np.random.default_rng(seed)
    truth = {}
    for path, obj in zip(originals, objects):
        folder = Path(out_dir) / path.parent.name
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / path.name
        target.write_bytes(path.read_bytes())
        truth[str(target)] = obj
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        for name in rng.choice(TRANSFORMS, size=n_copies, replace=False):
            quality = int(rng.integers(20, 50)) if name == "jpeg" else 92
            copy = folder / f"{path.stem}__{name}.jpg"
            cv2.imwrite(str(copy), edit(image, name, rng),
                        [cv2.IMWRITE_JPEG_QUALITY, quality])
            truth[str(copy)] = obj
    return truth


def amulet6_objects(base):
    """The amulet6 photos and their object (the group of amulet6_groups.csv)."""
    rows = (base / "amulet6_groups.csv").read_text(encoding="utf-8").splitlines()[1:]
    pairs = [row.rsplit(",", 1) for row in rows]
    return ([base / "amulet6" / f for f, _ in pairs],
            [f"amulet6-{g}" for _, g in pairs])


def source_photo(path):
    """The original photo a written file comes from (itself for an original)."""
    path = Path(path)
    return f"{path.parent.name}/{path.stem.split('__')[0]}"


def somdej_key(path):
    """The original's name of a somdej file: copies drop '(bw)' and '_1'."""
    stem = os.path.splitext(os.path.basename(path))[0]
    return stem.replace("(bw)", "").removesuffix("_1")


def somdej_objects(base):
    """The somdej photos and their object (the name without '(bw)' and '_1')."""
    files = sorted((base / "somdej_fatherguay").glob("*.jpg"))
    return files, [somdej_key(f) for f in files]


def pair_scores(files, groups, truth):
    """Pair precision and recall, and group purity, of ``groups`` against ``truth``.

    Parameters
    ----------
    files : list of str
        The inspected files.

    groups : list of int
        The group of each file.

    truth : dict of str to str
        File -> object; files not in it are left out.

    Returns
    -------
    scores : dict
        ``true_pairs``, ``found_pairs``, ``correct``, ``precision``,
        ``recall``, ``copy_pairs`` and ``copy_recall`` (the true pairs of one
        photo and its copies, and the share found), ``photo_pairs`` and
        ``photo_recall`` (the other true pairs: files of different photos of
        one object), ``groups`` (groups of two
        or more files), ``pure_groups`` (of those, the ones holding exactly
        one object), ``purity`` and ``largest_impure`` (the most objects in
        one group).
    """
    keep = [k for k, f in enumerate(files) if f in truth]
    obj = [truth[files[k]] for k in keep]
    grp = [groups[k] for k in keep]
    truth_pairs, found = set(), set()
    for a, b in itertools.combinations(range(len(keep)), 2):
        if obj[a] == obj[b]:
            truth_pairs.add((a, b))
        if grp[a] == grp[b]:
            found.add((a, b))
    members = {}
    for o, g in zip(obj, grp):
        members.setdefault(g, []).append(o)
    multi = [set(m) for m in members.values() if len(m) > 1]
    pure = sum(len(m) == 1 for m in multi)
    hits = len(truth_pairs & found)
    # pairs of one photo and its copies, apart from different photos of one
    # object (amulet6_groups.csv), which are harder to tell from other objects
    photo = [source_photo(files[k]) for k in keep]
    copy_pairs = {(a, b) for a, b in truth_pairs if photo[a] == photo[b]}
    photo_pairs = truth_pairs - copy_pairs
    return {"true_pairs": len(truth_pairs), "found_pairs": len(found),
            "copy_pairs": len(copy_pairs),
            "copy_recall": (len(copy_pairs & found) / len(copy_pairs)
                            if copy_pairs else 1.0),
            "photo_pairs": len(photo_pairs),
            "photo_recall": (len(photo_pairs & found) / len(photo_pairs)
                             if photo_pairs else 1.0),
            "correct": hits,
            "precision": hits / len(found) if found else 1.0,
            "recall": hits / len(truth_pairs) if truth_pairs else 1.0,
            "groups": len(multi), "pure_groups": pure,
            "purity": pure / len(multi) if multi else 1.0,
            "largest_impure": max((len(m) for m in multi), default=0)}
