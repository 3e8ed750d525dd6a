"""The inspector's entry point: every check on a class-per-folder dataset."""

import dataclasses
import logging
import os

import numpy as np

from ..io import IMAGE_EXTENSIONS, LINKED_FOLDER
from ..io._folders import layout_hint
from ..io._groups_csv import read_group_names
from ..utils._csv import read_csv_rows
from ._advice import cv_advice, distribution
from ._checks import class_outliers, integrity_issues, quality_issues, size_outliers
from ._docs import fill_doc
from ._duplicates import (
    CNN_SIZE,
    DuplicateSearch,
    SearchSettings,
    apply_hand_groups,
    embed,
    join_known_copies,
    search_duplicates,
    shortlist,
)
from ._evidence import CANDIDATE_HASH_DISTANCE
from ._labels import check_labels
from ._pairs import DuplicatePair
from ._report import DatasetReport, NonImageFile
from ._scan import list_files, scan_files
from ._thresholds import resolve_thresholds

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class _Files:
    """The inspected files, in order, with their class and split."""

    paths: list
    labels: list
    splits: list

    def subset(self, index):
        return _Files([self.paths[i] for i in index], [self.labels[i] for i in index],
                      [self.splits[i] for i in index])


def _collect(root, test_root):
    paths, labels = list_files(root)
    files = _Files(paths, labels, ["train"] * len(paths))
    if test_root is not None:
        test_paths, test_labels = list_files(test_root)
        files.paths += test_paths
        files.labels += test_labels
        files.splits += ["test"] * len(test_paths)
    return files


def _warn_outside_classes(files):
    """Images directly in a dataset folder: checked, but of no class.

    The training leaves them out ("not inside a class folder"), so the class
    counts, the advice and the label check leave them out too; a class ""
    of one image made the advice ``RepeatedStratifiedKFold(n_splits=1)``.
    """
    loose = [p for p, label in zip(files.paths, files.labels) if not label]
    if loose:
        logger.warning(
            "%d image file(s) lie directly in a dataset folder, not in a class "
            "folder; they are checked, but left out of the class counts and the "
            "advice, as the training leaves them out: %s", len(loose),
            ", ".join(loose[:5]) + (", ..." if len(loose) > 5 else ""))


def _skipped_checks(quick, check_duplicates):
    skipped = []
    if quick:
        skipped.append("CNN-embedding near duplicates (crops and rotations that "
                       "move the perceptual hash by more than "
                       f"{CANDIDATE_HASH_DISTANCE} bits)")
        skipped.append("class outliers (possible wrong labels)")
    if not check_duplicates:
        skipped.append("duplicates (check_duplicates=False)")
    return skipped


def _image_index(records):
    """Indices of the image files, and the files neither named nor shaped as one."""
    index, non_images = [], []
    for i, rec in enumerate(records):
        ext = os.path.splitext(rec.path)[1].lower()
        if not rec.is_image and (ext and ext not in IMAGE_EXTENSIONS
                                 or rec.error == LINKED_FOLDER):
            non_images.append(NonImageFile(rec.path, rec.error))
        else:
            index.append(i)
    return index, non_images


def _issues(records, labels, embeddings, thresholds, splits):
    """The list of :class:`~._checks.Issue` of each file.

    The class centres of the outlier check are the training images' (a test
    set measured against them moves no training image's flag).
    """
    issues = [integrity_issues(rec, thresholds) + quality_issues(rec, thresholds)
              for rec in records]
    for i, issue in size_outliers(records, thresholds.size_ratio):
        issues[i].append(issue)
    if embeddings is not None:
        train = np.asarray(splits) == "train"
        for i, _, _, issue in class_outliers(embeddings, labels,
                                             thresholds.outlier_threshold,
                                             reference=train):
            issues[i].append(issue)
    return issues


def _search(records, embeddings, t, quick, check_duplicates, n_jobs):
    if not check_duplicates:
        return DuplicateSearch(pairs=[], groups=np.arange(len(records)), weakest={},
                               near_misses=[])
    settings = SearchSettings(
        t.hash_distance, t.rotations,
        None if quick else t.embedding_similarity, t.aligned_similarity, t.linkage,
        n_jobs)
    return search_duplicates(records, embeddings, settings)


def _augment_copies(files, roots):
    """The (copy, source) pairs that each root's augment ``manifest.csv`` names.

    The copies that ``hybridclf augment`` made join their source's group
    (as ``hybridclf train`` joins them), also those the search does not
    recognise: in quick mode a third of them. Also returns the set of the
    files that are copies of a photo among ``files`` (the label check
    leaves them out).
    """
    index = {os.path.realpath(p): i for i, p in enumerate(files.paths)}
    copies, generated = [], set()
    for root in roots:
        path = os.path.join(os.fspath(root), "manifest.csv")
        if not os.path.isfile(path):
            continue
        # in a legacy code page, its copies would count as photos of their own
        _, rows = read_csv_rows(path, only_with=("file", "kind", "source"),
                                what="the copies it lists would count as photos")
        rows = [row for row in rows
                if row.get("kind") == "generated" and row.get("source")]
        # a copy joins its source or, the source deleted, its first sibling
        first = {}
        for row in rows:
            source = os.path.realpath(os.path.join(root, row["source"]))
            i = index.get(os.path.realpath(os.path.join(root, row["file"])))
            j = first.get(source)
            if j is None:
                j = first[source] = index.get(source, i)
            if i is not None and j is not None and i != j:
                generated.add(i)
                copies.append(DuplicatePair(min(i, j), max(i, j),
                                            "generated from it (manifest.csv)"
                                            if j == index.get(source) else
                                            "generated from one photo "
                                            "(manifest.csv)", 1.0))
    return copies, generated


@fill_doc
def _scan(files, quick, n_jobs, progress):
    """Scan the files once, embed the images (full mode) and set non-images apart.

    Returns the files, scan records and embeddings of the files named or
    shaped as images (:func:`_image_index`), and the :class:`NonImageFile`
    entries of the rest.
    """
    records, images = scan_files(files.paths, n_jobs=n_jobs,
                                 keep_size=None if quick else CNN_SIZE,
                                 progress=progress)
    embeddings = None if quick else embed(images, n_jobs, progress)
    del images
    index, non_images = _image_index(records)
    records = [records[i] for i in index]
    if embeddings is not None:
        embeddings = embeddings[index]
    return files.subset(index), records, embeddings, non_images


def _advice(train_labels, train_paths, train_groups):
    """The cross-validation advice, with the layout hint when one class is found.

    A dataset given one folder too high (``photos/`` for
    ``photos/dataset/<class>/...``) has one class, ``dataset``: the hint says
    so in the log and as the advice's second reason.
    """
    advice = cv_advice(train_labels, train_groups)
    hint = layout_hint(train_labels, train_paths)
    if hint:
        logger.warning("One class, %r. %s", train_labels[0], hint)
        advice["reasons"].insert(1, hint)
    return advice


def _hand_groups(csv_path, paths, root, test_root):
    """The group a groups CSV gives each path (None where it names none).

    Returns a dict path -> name, or None without a CSV. Its relative names
    are read from the dataset folders, the CSV's folder and the current
    folder, as ``hybridclf train --groups`` reads them.
    """
    if csv_path is None:
        return None
    roots = [root] + ([] if test_root is None else [test_root])
    return dict(zip(paths, read_group_names(csv_path, paths, root=roots)))


@fill_doc
def inspect_dataset(root, *, test_root=None, quick=False, check_duplicates=True,
                    labels=False, groups=None, thresholds=None, n_jobs=None,
                    progress=False, **threshold_values):
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
      ``rotations``, its quarter turns) and by CNN-embedding similarity, and
      crops and rotations by aligning their pixels; grouped by average
      linkage, so one wrong link does not chain two objects (see
      ``linkage`` in :class:`~hybridclf.inspect.InspectThresholds`). In a
      folder that ``hybridclf augment`` wrote, each copy its
      ``manifest.csv`` lists joins the group of its source. Groups
      whose files carry different classes (label conflicts) or lie in both
      ``root`` and ``test_root`` (leakage) come first in the report, each
      with its weakest link; near misses just under a threshold are listed
      for merging by hand.
    - **Quality**: blurry, too dark or bright, low information, greyscale
      stored as colour, odd aspect ratio, odd size, and class outliers (far from
      their class centre in embedding space: a possible wrong label).
    - **Likely wrong labels** (``labels``): a quick model (HOG and colour
      on 128-pixel images, ridge) fitted out of fold, in folds grouped by
      the duplicate groups, and the images whose label its probabilities
      contradict (confident learning, :mod:`hybridclf.label_issues`), each
      with its nearest images of the suggested class.
    - **Groups by hand** (``groups``): the groups of a ``duplicate_groups.csv``
      edited by hand (a near miss merged, a wrong group split) win over
      those found, for the files it names (:func:`_hand_groups`); the report,
      the new ``duplicate_groups.csv``, the advice and the label check's folds
      take them, so the edits carry over to the next run. Pairs found alike
      (near misses, duplicates) of two files it names in different groups
      are its decision: listed apart as kept apart by the CSV, not among
      the near misses again.
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

    labels : bool, default=False
        Whether to look for likely wrong labels (the readable training images
        only). It costs a pass of two cheap feature blocks over the images
        and three small fits: about 10 ms per image on 2 cores.

    groups : str, os.PathLike or None, default=None
        A ``file,group`` CSV (a ``duplicate_groups.csv`` of an earlier run,
        edited by hand), read as ``hybridclf train --groups`` reads it
        (:func:`hybridclf.training.read_groups_csv`). For the files it names,
        its groups win: files it puts together stay together, files it keeps
        apart stay apart, whatever the search finds. The files it does not
        name (photos added since) are grouped by the search; a group of them
        that the search puts with files of a hand group joins that group
        (the one holding most of those files), never merging two hand
        groups. The pairs the search finds alike between two files it puts
        in different groups are its decision: the report lists them as
        ``kept_apart``, not as near misses. None uses the groups found.

    thresholds : InspectThresholds or dict, default=None
        Where the checks draw their lines; ``None`` means the defaults of
        :class:`~hybridclf.inspect.InspectThresholds`, which documents each.

    {n_jobs}

    {progress}

    **threshold_values
        Single thresholds by name (``blur_threshold=50``), over those of
        ``thresholds``: any field of
        :class:`~hybridclf.inspect.InspectThresholds`.

    Returns
    -------
    report : DatasetReport
        The findings; ``report.save(folder)`` writes the JSON, HTML and CSV
        files (and ``label_issues.csv`` with ``labels``).

    Raises
    ------
    ValueError
        When a threshold is out of its range, or the ``groups`` CSV is
        refused (as by ``hybridclf train --groups``: one file in two groups,
        no image of the dataset named, missing columns, not UTF-8).

    TypeError
        When a keyword names no threshold.

    FileNotFoundError
        When ``root`` or ``test_root`` is not a folder.

    NoImagesError
        When ``root`` or ``test_root`` holds no file (an empty folder, a
        mistyped path), rather than a report of nothing.

    See Also
    --------
    hybridclf.find_duplicate_groups : The duplicate groups of a list of files.

    Notes
    -----
    Full mode keeps a 128x128 copy of every image for the CNN and 160-pixel
    grey and value-channel copies for the alignment check, about 100 kB per
    image (1 GB for 10,000 images); quick mode keeps only the copies for the
    alignment. On 2 cores, quick
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
    thresholds = resolve_thresholds(thresholds, threshold_values)
    files = _collect(root, test_root)
    # read before the scan: a refused CSV costs no scan
    hand = _hand_groups(groups, files.paths, root, test_root)
    logger.info("Inspecting %d files under %s", len(files.paths), root)
    files, records, embeddings, non_images = _scan(files, quick, n_jobs, progress)
    issues = _issues(records, files.labels, embeddings, thresholds, files.splits)
    search = _search(records, embeddings, thresholds, quick, check_duplicates,
                     n_jobs)
    generated = set()
    if check_duplicates:
        roots = [root] + ([] if test_root is None else [test_root])
        pairs, generated = _augment_copies(files, roots)
        search = join_known_copies(search, pairs)
    if hand is not None:
        search = apply_hand_groups(search, [hand[p] for p in files.paths])
    search = shortlist(search)
    for rec in records:
        rec.align_gray = rec.align_value = None
        rec.align_features = {}
    group_ids = search.groups
    readable = [i for i, rec in enumerate(records)
                if rec.error is None and files.splits[i] == "train"
                and files.labels[i]]
    _warn_outside_classes(files)
    train_labels = [files.labels[i] for i in readable]
    advice = _advice(train_labels, [files.paths[i] for i in readable],
                     group_ids[readable])
    label_check = None
    if labels:
        label_check = check_labels([files.paths[i] for i in readable], train_labels,
                                   group_ids[readable], n_jobs=n_jobs,
                                   copies=[i in generated for i in readable])
    return DatasetReport(
        root=os.fspath(root),
        test_root=None if test_root is None else os.fspath(test_root),
        records=records, labels=files.labels, splits=files.splits, issues=issues,
        search=search, non_images=non_images,
        stats=distribution(train_labels, [(records[i].width, records[i].height)
                                          for i in readable]),
        advice=advice,
        thresholds=thresholds, quick=quick,
        skipped_checks=_skipped_checks(quick, check_duplicates),
        label_check=label_check,
        groups_csv=None if groups is None else os.fspath(groups),
    )
