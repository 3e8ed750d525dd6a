"""Inspect an image dataset before training: broken files, duplicates, quality.

:func:`find_duplicate_groups` gives one group id per file, for grouped
cross-validation; :func:`inspect_dataset` runs every check on a
class-per-folder dataset and returns a :class:`DatasetReport`.
"""

import logging
import os

import numpy as np

from ._dataset_advice import cv_advice, distribution
from ._dataset_checks import (
    class_outliers,
    integrity_issues,
    quality_issues,
    scan_files,
    size_outliers,
)
from ._dataset_duplicates import (
    aligned_pairs,
    embedding_pairs,
    exact_pairs,
    hash_pairs,
    union_find_groups,
)
from ._dataset_report import DatasetReport
from .io import IMAGE_EXTENSIONS

__all__ = ["DatasetReport", "find_duplicate_groups", "inspect_dataset"]

logger = logging.getLogger(__name__)

# input side of the CNN used for duplicate and outlier checks: 128 pixels run
# twice as fast as 224 and rank the near-identical amulet6 photos alike
_CNN_SIZE = 128
# pairs this close are checked by alignment (aligned_similarity): a perceptual
# hash distance (upright or mirrored) of at most 12 bits, or an embedding
# similarity of 0.85; wider nets cost seconds of alignment on amulet6
_CANDIDATE_HASH_DISTANCE = 12
_CANDIDATE_SIMILARITY = 0.85


def _embed(records, n_jobs, progress=False):
    """CNN embeddings of the kept images of ``records``; NaN rows for the others."""
    from .features import CNNFeatures

    index = [i for i, rec in enumerate(records) if rec.get("image") is not None]
    # the thresholds above were tuned on this network: it stays whatever the
    # classification default becomes
    cnn = CNNFeatures(backbone="efficientnet_lite0", layer="head",
                      image_size=_CNN_SIZE, flip_tta=False, device="cpu",
                      n_jobs=n_jobs, verbose=progress)
    out = None
    if index:
        images = np.stack([records[i]["image"] for i in index])
        emb = cnn.fit(images[:1]).transform(images)
        out = np.full((len(records), emb.shape[1]), np.nan, dtype=np.float32)
        out[index] = emb
    for rec in records:
        rec.pop("image", None)
    return out


def _duplicate_pairs(records, embeddings, *, hash_distance, rotations,
                     embedding_similarity, aligned_similarity):
    """Every duplicate pair ``(i, j, kind, score)`` of the scanned files."""
    pairs = [(i, j, how, 1.0) for i, j, how in exact_pairs(records)]
    hashes = np.zeros((len(records), 8), dtype=np.uint64)
    for i, rec in enumerate(records):
        if rec.get("phash") is not None:
            hashes[i] = rec["phash"]
    pairs += [(i, j, "perceptual hash", 1.0 - d / 64.0)
              for i, j, d in hash_pairs(hashes, hash_distance, rotations=rotations)]
    candidates = set()
    if aligned_similarity is not None and _CANDIDATE_HASH_DISTANCE > hash_distance:
        candidates.update(
            (i, j) for i, j, d in hash_pairs(hashes, _CANDIDATE_HASH_DISTANCE,
                                             rotations=False)
            if d > hash_distance)
    if embeddings is not None and embedding_similarity is not None:
        reach = embedding_similarity
        if aligned_similarity is not None:
            reach = min(embedding_similarity, _CANDIDATE_SIMILARITY)
        for i, j, s in embedding_pairs(embeddings, reach):
            if s >= embedding_similarity:
                pairs.append((i, j, "CNN embedding", s))
            else:
                candidates.add((i, j))
    if aligned_similarity is not None and candidates:
        # pairs already joined, directly or through others, need no check
        joined = union_find_groups(len(records), pairs)
        todo = sorted((i, j) for i, j in candidates if joined[i] != joined[j])
        logger.info("Aligning %d candidate pairs", len(todo))
        pairs += [(i, j, "aligned pixels", s)
                  for i, j, s in aligned_pairs(records, todo, aligned_similarity)]
    # one entry per pair: the strongest evidence (exact before near)
    best = {}
    for i, j, how, score in pairs:
        best.setdefault((i, j), (i, j, how, score))
    return sorted(best.values())


def find_duplicate_groups(
    paths, *, hash_distance=6, rotations=True, embedding_similarity=None,
    aligned_similarity=0.93, n_jobs=None, progress=False,
):
    """Group image files that are exact or near duplicates of each other.

    Two files are duplicates when any of these holds:

    - their bytes are identical (SHA-256), or their decoded pixels are;
    - their perceptual hashes differ in at most ``hash_distance`` of 64 bits.
      The hash is taken on the histogram-equalised grey image, so re-encoded,
      resized, greyscale, brighter or darker copies match; each image is also
      compared with the mirror image (and, with ``rotations``, quarter turns)
      of the other;
    - with ``embedding_similarity`` set, the cosine similarity of their CNN
      embeddings (EfficientNet-Lite0, see
      :class:`~hybridclf.features.CNNFeatures`) is at least that value;
    - with ``aligned_similarity`` set, pairs that are close but not close
      enough (hash distance up to 12 bits, or embedding similarity from 0.85)
      are aligned (the embedding only with ``embedding_similarity`` set): a
      rotation, scale and shift is fitted to matched ORB
      features, and the aligned grey pixels must correlate at
      ``aligned_similarity`` or more. This catches crops, small rotations and
      rescaled copies, which move the hash, while different photos of similar
      objects fail it.

    Pairs are joined transitively (union-find): if A matches B and B matches
    C, all three share a group. Files that cannot be decoded are matched by
    their bytes only.

    Parameters
    ----------
    paths : sequence of str or os.PathLike
        The image files.

    hash_distance : int, default=6
        Largest Hamming distance (of 64 bits) between the perceptual hashes of
        near duplicates. On the somdej photos, true pairs differ in at most 4
        bits and different photos of the same amulet type in 14 or more.

    rotations : bool, default=True
        Also match copies turned by 90, 180 or 270 degrees.

    embedding_similarity : float or None, default=None
        Smallest cosine similarity of CNN embeddings for a near-duplicate
        pair; ``None`` skips the CNN (faster, and no PyTorch needed). 0.95 is
        a reasonable value.

    aligned_similarity : float or None, default=0.93
        Smallest correlation of the aligned grey pixels of a candidate pair;
        ``None`` skips the alignment check. Crops and rotations of one photo
        score about 0.99; different photos of one amulet type under 0.9.

    n_jobs : int, default=None
        Threads that read and hash the files. ``None`` means 1 unless in a
        :func:`joblib.parallel_config` context; ``-1`` means all processors.

    progress : bool, default=False
        Show a progress bar.

    Returns
    -------
    groups : ndarray of shape (n_files,), dtype int64
        Group id of each file, numbered 0, 1, ... in order of each group's
        first file; a file without duplicates has an id of its own. Pass it as
        ``groups`` to :class:`~sklearn.model_selection.StratifiedGroupKFold`.

    See Also
    --------
    inspect_dataset : Every check on a dataset folder, duplicates included.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> from PIL import Image
    >>> from hybridclf.dataset import find_duplicate_groups
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> rng = np.random.default_rng(0)
    >>> a = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    >>> b = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    >>> Image.fromarray(a).save(root / "a.png")
    >>> Image.fromarray(a[:, ::-1]).save(root / "a_mirrored.png")
    >>> Image.fromarray(b).save(root / "b.png")
    >>> find_duplicate_groups([root / "a.png", root / "a_mirrored.png",
    ...                        root / "b.png"])
    array([0, 0, 1])
    """
    paths = [os.fspath(p) for p in paths]
    if hash_distance < 0 or hash_distance > 64:
        raise ValueError(
            "The 'hash_distance' parameter of find_duplicate_groups must be an int "
            f"in 0..64. Got {hash_distance!r} instead."
        )
    for name, value in (("embedding_similarity", embedding_similarity),
                        ("aligned_similarity", aligned_similarity)):
        if value is not None and not 0 < value <= 1:
            raise ValueError(
                f"The {name!r} parameter of find_duplicate_groups must be a float "
                f"in (0, 1] or None. Got {value!r} instead."
            )
    keep = _CNN_SIZE if embedding_similarity is not None else None
    records = scan_files(paths, n_jobs=n_jobs, keep_size=keep, progress=progress)
    embeddings = _embed(records, n_jobs, progress) if keep is not None else None
    pairs = _duplicate_pairs(records, embeddings, hash_distance=hash_distance,
                             rotations=rotations,
                             embedding_similarity=embedding_similarity,
                             aligned_similarity=aligned_similarity)
    return union_find_groups(len(paths), pairs)


def _list_files(root):
    """Every non-hidden file under ``root`` with its class (first sub-folder)."""
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(
            f"The dataset folder {root!r} does not exist or is not a folder. Pass "
            "a folder holding one sub-folder of images per class."
        )
    paths, labels = [], []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        rel = os.path.relpath(dirpath, root)
        label = "" if rel == "." else rel.split(os.sep)[0]
        for name in sorted(filenames):
            if not name.startswith("."):
                paths.append(os.path.join(dirpath, name))
                labels.append(label)
    return paths, labels


def inspect_dataset(
    root, *, test_root=None, quick=False, check_duplicates=True,
    hash_distance=6, rotations=True, embedding_similarity=0.95,
    aligned_similarity=0.93, min_size=32,
    blur_threshold=100.0, dark_threshold=0.1, bright_threshold=0.9,
    entropy_threshold=3.0, max_aspect_ratio=3.0, size_ratio=4.0,
    outlier_threshold=5.0, n_jobs=None, progress=False,
):
    """Find the problems of an image dataset before training on it.

    Every file under ``root`` (and ``test_root``) is read and fully decoded
    once; one bad file never stops the run. The class of a file is its first
    sub-folder under the root (files directly in the root have the class
    ``""``). The checks:

    - **Integrity**: unreadable files with the reason (empty, truncated, not
      an image, corrupt), a file name extension that does not match the
      content, 16-bit samples, animated images, an EXIF orientation, images
      smaller than ``min_size``. Files that are not images and not named as
      images (``notes.txt``) are listed apart.
    - **Duplicates** (``check_duplicates``): identical files and pixels, near
      duplicates by perceptual hash (of the image, its mirror and, with
      ``rotations``, its quarter turns) and by CNN-embedding similarity,
      grouped transitively. Groups whose files carry different classes (label
      conflicts) or lie in both ``root`` and ``test_root`` (leakage) come
      first in the report.
    - **Quality**: blurry, too dark or bright, low information, greyscale
      stored as colour, odd aspect ratio, odd size, and class outliers (far from
      their class centre in embedding space: a possible wrong label).
    - **Distribution and advice**: counts per class, imbalance ratio, size
      statistics and a cross-validation plan (see
      :meth:`DatasetReport.summary`).

    Parameters
    ----------
    root : str or os.PathLike
        The training dataset: ``root/<class>/<image>``.

    test_root : str or os.PathLike, default=None
        A held-out set in the same layout, checked for duplicates of training
        images (leakage) and for its own problems.

    quick : bool, default=False
        Skip the costly checks: the CNN embeddings (the near duplicates they
        find beyond the hashes, and class outliers). The report lists what was
        skipped.

    check_duplicates : bool, default=True
        Whether to look for duplicates at all.

    hash_distance : int, default=6
        Largest Hamming distance (of 64 bits) between the perceptual hashes of
        near duplicates; see :func:`find_duplicate_groups`.

    rotations : bool, default=True
        Also match copies turned by 90, 180 or 270 degrees.

    embedding_similarity : float, default=0.95
        Smallest cosine similarity of the CNN embeddings (EfficientNet-Lite0 at
        128x128 pixels) of near duplicates. On amulet6 and somdej, different
        photos stay under 0.93.

    aligned_similarity : float or None, default=0.93
        Smallest correlation of the grey pixels of a candidate pair after
        geometric alignment (see :func:`find_duplicate_groups`); ``None`` skips
        the alignment check. Catches crops and small rotations.

    min_size : int, default=32
        Smallest accepted width and height, in pixels.

    blur_threshold : float, default=100.0
        Variance of the Laplacian of the grey image (scaled to 256 pixels on
        its longer side) under which an image is blurry. Sharp photos of
        amulet6 score 970 and more.

    dark_threshold : float, default=0.1
        Mean grey level (0 to 1) under which an image is too dark.

    bright_threshold : float, default=0.9
        Mean grey level (0 to 1) over which an image is too bright.

    entropy_threshold : float, default=3.0
        Entropy of the grey-level histogram, in bits (0 to 8), under which an
        image holds too little information (blank, nearly uniform).

    max_aspect_ratio : float, default=3.0
        Longer side / shorter side over which the aspect ratio is odd.

    size_ratio : float, default=4.0
        An image whose shorter side is this many times smaller or larger than
        the median shorter side has an odd size.

    outlier_threshold : float, default=5.0
        Robust z-score (median and MAD of the class) of the cosine distance to
        the class centre over which an image is a class outlier, when it is
        also nearer another class's centre than its own.

    n_jobs : int, default=None
        Threads that read and measure the files and run the CNN. ``None``
        means 1 unless in a :func:`joblib.parallel_config` context; ``-1``
        means all processors.

    progress : bool, default=False
        Show a progress bar.

    Returns
    -------
    report : DatasetReport
        The findings; ``report.save(folder)`` writes the JSON, HTML and CSV
        files.

    See Also
    --------
    find_duplicate_groups : The duplicate groups of a list of files.

    Notes
    -----
    Full mode keeps a 128x128 copy of every image for the CNN and a 160-pixel
    grey copy for the alignment check, about 75 kB per image (750 MB for
    10,000 images); quick mode keeps only the grey copy. On 2 cores, quick
    mode reads about 200 amulet6 photos (224x224) per second; full mode about
    70 once the network is exported (the first full call in a process spends
    a few seconds importing PyTorch and exporting the ONNX graph).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> from PIL import Image
    >>> from hybridclf import inspect_dataset
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> rng = np.random.default_rng(0)
    >>> for cls in ("cat", "dog"):
    ...     (root / cls).mkdir()
    ...     for i in range(3):
    ...         pixels = rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)
    ...         Image.fromarray(pixels).save(root / cls / f"{i}.png")
    >>> copy = (root / "cat" / "0.png").read_bytes()
    >>> _ = (root / "dog" / "copy.png").write_bytes(copy)
    >>> report = inspect_dataset(root, quick=True)
    >>> report.n_label_conflicts
    1
    >>> report.advice["splitter"]
    'StratifiedGroupKFold'
    """
    thresholds = {
        "hash_distance": hash_distance, "rotations": rotations,
        "embedding_similarity": embedding_similarity,
        "aligned_similarity": aligned_similarity, "min_size": min_size,
        "blur_threshold": blur_threshold, "dark_threshold": dark_threshold,
        "bright_threshold": bright_threshold, "entropy_threshold": entropy_threshold,
        "max_aspect_ratio": max_aspect_ratio, "size_ratio": size_ratio,
        "outlier_threshold": outlier_threshold,
    }
    for name in ("min_size", "blur_threshold", "max_aspect_ratio", "size_ratio",
                 "outlier_threshold"):
        if thresholds[name] <= 0:
            raise ValueError(
                f"The {name!r} parameter of inspect_dataset must be > 0. Got "
                f"{thresholds[name]!r} instead."
            )
    if not 0 <= hash_distance <= 64:
        raise ValueError(
            "The 'hash_distance' parameter of inspect_dataset must be an int in "
            f"0..64. Got {hash_distance!r} instead."
        )
    if not 0 < embedding_similarity <= 1:
        raise ValueError(
            "The 'embedding_similarity' parameter of inspect_dataset must be a "
            f"float in (0, 1]. Got {embedding_similarity!r} instead."
        )
    if aligned_similarity is not None and not 0 < aligned_similarity <= 1:
        raise ValueError(
            "The 'aligned_similarity' parameter of inspect_dataset must be a "
            f"float in (0, 1] or None. Got {aligned_similarity!r} instead."
        )
    paths, labels = _list_files(root)
    splits = ["train"] * len(paths)
    if test_root is not None:
        test_paths, test_labels = _list_files(test_root)
        paths += test_paths
        labels += test_labels
        splits += ["test"] * len(test_paths)
    skipped = []
    use_cnn = not quick
    if quick:
        skipped.append("CNN-embedding near duplicates (crops and rotations that "
                       "move the perceptual hash by more than "
                       f"{_CANDIDATE_HASH_DISTANCE} bits)")
        skipped.append("class outliers (possible wrong labels)")
    if not check_duplicates:
        skipped.append("duplicates (check_duplicates=False)")
    logger.info("Inspecting %d files under %s", len(paths), root)
    records = scan_files(paths, n_jobs=n_jobs,
                         keep_size=_CNN_SIZE if use_cnn else None, progress=progress)
    embeddings = _embed(records, n_jobs, progress) if use_cnn else None

    # files neither named nor shaped like images are listed apart, not as errors
    non_images, index = [], []
    for i, rec in enumerate(records):
        ext = os.path.splitext(rec["path"])[1].lower()
        if not rec["is_image"] and ext and ext not in IMAGE_EXTENSIONS:
            non_images.append({"file": rec["path"], "reason": rec["error"]})
        else:
            index.append(i)
    records = [records[i] for i in index]
    labels = [labels[i] for i in index]
    splits = [splits[i] for i in index]
    if embeddings is not None:
        embeddings = embeddings[index]

    issues = [integrity_issues(rec, min_size=min_size)
              + quality_issues(rec, blur_threshold=blur_threshold,
                               dark_threshold=dark_threshold,
                               bright_threshold=bright_threshold,
                               entropy_threshold=entropy_threshold,
                               max_aspect_ratio=max_aspect_ratio)
              for rec in records]
    for i, message in size_outliers(records, size_ratio):
        issues[i].append(("odd_size", message))
    if embeddings is not None:
        for i, z, near in class_outliers(embeddings, labels, outlier_threshold):
            issues[i].append(("class_outlier", f"far from the centre of class "
                              f"{labels[i]!r} (robust z-score {z:.1f}, over "
                              f"outlier_threshold={outlier_threshold}) and nearer "
                              f"class {near!r}: check its label"))
    pairs = []
    if check_duplicates:
        pairs = _duplicate_pairs(
            records, embeddings, hash_distance=hash_distance, rotations=rotations,
            embedding_similarity=embedding_similarity if use_cnn else None,
            aligned_similarity=aligned_similarity,
        )
    for rec in records:
        rec.pop("align_gray", None)
    groups = union_find_groups(len(records), pairs)

    readable = [i for i, rec in enumerate(records)
                if rec["error"] is None and splits[i] == "train"]
    stats = distribution([labels[i] for i in readable],
                         [(records[i]["width"], records[i]["height"])
                          for i in readable])
    advice = cv_advice([labels[i] for i in readable], groups[readable])
    return DatasetReport(
        root=os.fspath(root),
        test_root=None if test_root is None else os.fspath(test_root),
        records=records, labels=labels, splits=splits, issues=issues,
        groups=groups, pairs=pairs, non_images=non_images, stats=stats,
        advice=advice, thresholds=thresholds, quick=quick, skipped_checks=skipped,
    )
