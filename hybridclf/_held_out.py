"""The split of a training into the photos trained on and the held-out test part.

``hybridclf train`` holds a test part out of the final fit (the pipeline is
fitted on the training part only, see :mod:`hybridclf.training._train`) and
scores it. Both parts are recorded beside the model (listed in its manifest
like every file of the directory).

:func:`train_part_bytes` records the content of the photos trained on, as
``train_part.json``: ``sha256``, the sorted SHA-256 of each one's bytes, and
``fingerprints``, their perceptual hashes
(:func:`hybridclf.inspect._fingerprint.fingerprint_record`; absent in records
of older versions). :func:`trained_on` tells which of a test set's files are
among them, and :func:`near_trained_on` which are near copies of them
(re-encoded, resized, greyscale, cropped by 1%: within the inspector's
quick hash threshold), so that ``hybridclf evaluate`` says when its scores
are of photos the model was trained on (a test folder that is the training
folder, or holds copies of its files), which read as an accuracy it will not
have on new photos.

:func:`test_part_bytes` records which files the test part held, as
``test_part.json``:

- ``data_dirs``: the data folders of the training, as absolute paths;
- ``files``: one entry per scored photo of the test part: ``data_dir`` (its
  folder's position in ``data_dirs``), ``file`` (its path relative to that
  folder, with ``/``), ``label``, ``sha256`` (of the file's bytes) and
  ``group`` (its group of near-identical photos, as a string; absent in
  records of older versions), so that the accuracy's interval counts each
  group once, as the training's does.

:func:`find_test_part` finds them again, under the recorded folders or
folders given now (the data moved), so that ``hybridclf evaluate --model-dir
M`` without ``--test-data-dir`` evaluates on them. A file that is missing, or
whose bytes are no longer those it was scored on, is left out and named,
never used silently.
"""

import json
import os
from pathlib import PurePosixPath

from ._model_files import check_listed_file, read_json
from .exceptions import ModelLoadError
from .utils._row_store import content_digest

__all__ = ["TEST_PART_FILE", "TRAIN_PART_FILE", "find_test_part", "near_copies_of",
           "has_fingerprints", "near_trained_on", "read_train_part", "test_part_bytes",
           "train_part_bytes", "trained_on", "trained_on_rows"]

#: Name of the file of the held-out test part in a model directory.
TEST_PART_FILE = "test_part.json"

#: Name of the file of the content of the photos trained on.
TRAIN_PART_FILE = "train_part.json"


def _root_of(path, roots):
    """(index of the folder of ``roots`` that holds ``path``, relative name)."""
    best = None
    for i, root in enumerate(roots):
        relative = os.path.relpath(path, root)
        if relative != os.pardir and not relative.startswith(os.pardir + os.sep):
            # the deepest folder holding it, should one lie inside another
            if best is None or len(roots[i]) > len(roots[best[0]]):
                best = (i, relative)
    if best is None:
        raise ValueError(f"The test file {path!r} lies in none of the data "
                         f"folders {roots!r}.")
    return best[0], best[1].replace(os.sep, "/")


def test_part_bytes(data_dirs, paths, labels, rows, groups=None):
    """The content of ``test_part.json``: the files of the held-out test part.

    Parameters
    ----------
    data_dirs : sequence of str or os.PathLike
        The data folders of the training, in the order given.

    paths, labels : sequence
        The images trained on and their classes.

    rows : sequence of int
        The rows of ``paths`` that the test metrics scored.

    groups : sequence or None, default=None
        The group of near-identical photos of every image; None records none.

    Returns
    -------
    data : bytes
        UTF-8 JSON (see the module's docstring).
    """
    roots = [os.path.abspath(os.fspath(d)) for d in data_dirs]
    files = []
    for row in rows:
        path = paths[row]
        folder, name = _root_of(os.path.abspath(os.fspath(path)), roots)
        files.append({"data_dir": folder, "file": name, "label": str(labels[row]),
                      "sha256": content_digest(path),
                      **({} if groups is None else {"group": str(groups[row])})})
    # one line per file: thousands of them stay readable and diff well
    lines = ",\n  ".join(json.dumps(f, ensure_ascii=False) for f in files)
    text = (f'{{"data_dirs": {json.dumps(roots, ensure_ascii=False)},\n'
            f' "files": [\n  {lines}\n ]}}\n')
    return text.encode("utf-8", "surrogateescape")


def _no_test_part(model_dir, info):
    """The error of a model without a recorded test part, saying what to pass."""
    n_test = (info.get("training") or {}).get("n_test")
    if n_test == 0:
        why = ("it was trained without a test part (--test-size 0, "
               "test_size=0), so every image was trained on")
    elif n_test:
        why = (f"it records a test part of {n_test} images but not their files "
               "(it was saved by an older hybridclf; training it again records "
               "them)")
    else:
        why = "it was not written by 'hybridclf train' (no test part recorded)"
    return ValueError(
        f"The model {os.fspath(model_dir)!r} has no {TEST_PART_FILE} to evaluate "
        f"on: {why}. Pass a labelled class-per-folder test set: "
        "--test-data-dir DIR (hybridclf evaluate) or test_data_dir "
        "(evaluate_folder).")


def _entries(model_dir):
    """``data_dirs`` and ``files`` of the model's ``test_part.json``, checked."""
    path = os.path.join(model_dir, TEST_PART_FILE)
    try:
        record = read_json(path)
        roots, files = record["data_dirs"], record["files"]
        if not (isinstance(roots, list) and all(isinstance(r, str) for r in roots)
                and isinstance(files, list)):
            raise TypeError("'data_dirs' must be a list of str, 'files' a list")
        entries = [(int(f["data_dir"]), str(f["file"]), str(f["label"]),
                    str(f["sha256"]), None if f.get("group") is None
                    else str(f["group"])) for f in files]
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
        raise ModelLoadError(
            f"The file {path!r} is unreadable ({exc}). Copy the whole model "
            "directory again, or pass --test-data-dir.") from exc
    for folder, name, *_ in entries:
        parts = PurePosixPath(name).parts
        if not 0 <= folder < len(roots) or not name or os.path.isabs(name) \
                or ".." in parts or "\0" in name:
            raise ModelLoadError(
                f"The file {path!r} lists {name!r} in data folder {folder}, which "
                "is not a file inside one of its data folders. Copy the model "
                "directory again, or pass --test-data-dir.")
    return roots, entries


def find_test_part(model_dir, info, data_dirs=None):
    """The files of the held-out test part, found again and checked.

    Parameters
    ----------
    model_dir : str or os.PathLike
        The model directory.

    info : dict
        Its ``model.json``.

    data_dirs : str, os.PathLike, sequence of them or None, default=None
        Where the data folders of the training are now, in the order they
        were given to the training; None looks where they were.

    Returns
    -------
    paths, labels : list of str
        The test files found with the content they were scored on.

    left_out : list of dict
        Each file left out (``file``, ``reason``): missing, or changed since
        the training (its SHA-256 differs).

    data_dirs : list of str
        The folders looked in.

    groups : list of str or None
        The group of near-identical photos of each of ``paths``; None for a
        record without them (older versions).

    Raises
    ------
    ValueError
        When the model records no test part (the message says to pass a test
        folder), ``data_dirs`` gives another number of folders, or no file is
        found because a data folder does not exist (moved since the training:
        the message says to pass where it is now).

    ModelLoadError
        When ``test_part.json`` is listed in the manifest but changed, or is
        unreadable.
    """
    if not check_listed_file(model_dir, TEST_PART_FILE, ModelLoadError):
        raise _no_test_part(model_dir, info)
    recorded, entries = _entries(model_dir)
    if data_dirs is None:
        roots = recorded
    else:
        roots = ([data_dirs] if isinstance(data_dirs, (str, os.PathLike))
                 else list(data_dirs))
        roots = [os.fspath(r) for r in roots]
        if len(roots) != len(recorded):
            raise ValueError(
                f"The model {os.fspath(model_dir)!r} was trained on "
                f"{len(recorded)} data folder(s) ({', '.join(recorded)}); the "
                f"'data_dir' parameter gave {len(roots)} ({roots!r}). Give where "
                "each of them is now, in the same order.")
    paths, labels, groups, left_out = [], [], [], []
    for folder, name, label, sha256, group in entries:
        path = os.path.join(roots[folder], *PurePosixPath(name).parts)
        actual = content_digest(path)
        if actual is None:
            left_out.append({"file": path, "reason": "missing (a test file of "
                             "the training: moved, renamed or deleted since)"})
        elif actual != sha256:
            left_out.append({"file": path, "reason": "changed since the training "
                             "(its SHA-256 differs from the one recorded)"})
        else:
            paths.append(path)
            labels.append(label)
            groups.append(group)
    gone = [root for root in roots if not os.path.isdir(root)]
    if gone and not paths:
        # a data folder moved or renamed since the training: every file is
        # "missing", and the fix is where it is now, not the files
        given = "given" if data_dirs is not None else "of the training"
        raise ValueError(
            f"The data folder(s) {given} {', '.join(map(repr, gone))} do not "
            f"exist, so no file of the test part that {TEST_PART_FILE} of "
            f"{os.fspath(model_dir)!r} lists can be found. Pass where the data "
            "folder(s) of the training are now, in the order they were given to "
            "it: --data-dir DIR (hybridclf evaluate) or data_dir "
            "(evaluate_folder); or a test set: --test-data-dir DIR.")
    return paths, labels, left_out, roots, (None if None in groups else groups)


def train_part_bytes(paths, rows, *, n_jobs=None, cache_dir=None):
    """The content of ``train_part.json``: the SHA-256 of each photo trained on.

    Parameters
    ----------
    paths : sequence of str, os.PathLike or images
        The images of the training.

    rows : sequence of int
        The rows of ``paths`` that the final pipeline was fitted on.

    n_jobs : int, default=None
        Threads that read the files for their perceptual hashes.

    cache_dir : str, os.PathLike or None, default=None
        The cache of the duplicate search, whose hashes are read rather than
        made again (the feature cache's folder); None decodes every file.

    Returns
    -------
    data : bytes
        UTF-8 JSON: ``{"sha256": [...], "fingerprints": {...}}``: the
        SHA-256 of each, sorted, each digest once, and the perceptual hashes
        of the files among them
        (:func:`~hybridclf.inspect._fingerprint.fingerprint_record`).
    """
    from .inspect._fingerprint import fingerprint_record

    digests = sorted({d for d in (content_digest(paths[row]) for row in rows) if d})
    lines = ",\n  ".join(json.dumps(d) for d in digests)
    prints = json.dumps(fingerprint_record([paths[row] for row in rows],
                                           n_jobs=n_jobs, cache_dir=cache_dir),
                        separators=(",", ":"))
    return (f'{{"sha256": [\n  {lines}\n ],\n "fingerprints": {prints}}}\n'
            ).encode("ascii")


def read_train_part(model_dir):
    """The model's ``train_part.json``, checked; None when it records none.

    Parameters
    ----------
    model_dir : str or os.PathLike
        The model directory.

    Returns
    -------
    record : dict or None
        ``sha256`` and, from the versions that record them, ``fingerprints``
        (see the module's docstring); None when the model records no
        ``train_part.json`` (saved by an older hybridclf, or not by
        ``hybridclf train``).

    Raises
    ------
    ModelLoadError
        When ``train_part.json`` is listed in the manifest but changed, or is
        unreadable.
    """
    if not check_listed_file(model_dir, TRAIN_PART_FILE, ModelLoadError):
        return None
    path = os.path.join(model_dir, TRAIN_PART_FILE)
    try:
        record = read_json(path)
        if not isinstance(record.get("sha256"), list):
            raise TypeError("'sha256' must be a list")
        return record
    except (OSError, ValueError, KeyError, TypeError, AttributeError,
            RecursionError) as exc:
        raise ModelLoadError(
            f"The file {path!r} is unreadable ({exc}). Copy the whole model "
            "directory again.") from exc


def trained_on_rows(record, images):
    """The rows of ``images`` whose content a ``train_part.json`` records.

    Parameters
    ----------
    record : dict
        A model's ``train_part.json`` (:func:`read_train_part`).

    images : sequence of str, os.PathLike, bytes or arrays
        Test images: a file's bytes, bytes or an array are compared by their
        SHA-256 (:func:`~hybridclf.utils._row_store.content_digest`, as the
        training recorded them).

    Returns
    -------
    rows : list of int
        In order.
    """
    trained = set(record["sha256"])
    return [i for i, image in enumerate(images) if content_digest(image) in trained]


def trained_on(model_dir, paths):
    """The files among ``paths`` whose content the model was trained on.

    Parameters
    ----------
    model_dir : str or os.PathLike
        The model directory.

    paths : sequence of str or os.PathLike
        Test files.

    Returns
    -------
    files : list of str or None
        The files of ``paths`` with the same bytes as a photo trained on, in
        their order; None when the model records no ``train_part.json``
        (saved by an older hybridclf, or not by ``hybridclf train``), so
        that nothing can be said.

    Raises
    ------
    ModelLoadError
        When ``train_part.json`` is listed in the manifest but changed, or is
        unreadable.
    """
    record = read_train_part(model_dir)
    if record is None:
        return None
    return [os.fspath(paths[i]) for i in trained_on_rows(record, paths)]


def near_copies_of(record, hashes, *, source=TRAIN_PART_FILE):
    """The rows of ``hashes`` that are near copies of a photo a record holds.

    Parameters
    ----------
    record : dict or None
        A model's ``train_part.json`` (:func:`read_train_part`).

    hashes : ndarray of shape (n, 2, 8), dtype uint64
        The test images' perceptual hashes
        (:func:`~hybridclf.inspect._fingerprint.fingerprints`, or
        :func:`~hybridclf.inspect._fingerprint.fingerprint_of` each as it
        was decoded).

    source : str, default="train_part.json"
        The record's file, for the error.

    Returns
    -------
    matches : list of (int, int) or None
        ``(row, hash distance)`` of each near copy, in order; None when the
        record holds no fingerprints (none, or an older version's).

    Raises
    ------
    ModelLoadError
        When the record's fingerprints are unreadable.
    """
    from .inspect._fingerprint import match_fingerprints

    if not has_fingerprints(record):
        return None
    try:
        return match_fingerprints(hashes, record["fingerprints"])
    except ValueError as exc:
        raise ModelLoadError(
            f"The fingerprints of {os.fspath(source)!r} are unreadable ({exc}). "
            "Copy the whole model directory again.") from exc


def has_fingerprints(record):
    """Whether a ``train_part.json`` record holds perceptual hashes."""
    return isinstance(record, dict) and isinstance(record.get("fingerprints"), dict)


def near_trained_on(model_dir, paths, *, n_jobs=None):
    """The files among ``paths`` that are near copies of a photo trained on.

    A quick hash check: the perceptual hashes of ``hybridclf inspect
    --quick``, within its thresholds, against those ``train_part.json``
    records (:func:`~hybridclf.inspect._fingerprint.near_copies`). It
    finds re-encoded, resized and greyscale copies, not crops of more than
    a few percent; ``hybridclf inspect --data-dir TRAIN --test-data-dir
    TEST`` runs the full search, which needs the training folder.
    ``hybridclf evaluate`` hashes the test photos as it decodes them for
    the predictions instead (:func:`near_copies_of`).

    Parameters
    ----------
    model_dir : str or os.PathLike
        The model directory.

    paths : sequence of str or os.PathLike
        Test files.

    n_jobs : int, default=None
        Threads that read the files.

    Returns
    -------
    matches : list of dict or None
        ``{"file", "hash_distance"}`` for each near copy, in the order of
        ``paths`` (a byte-identical copy too: leave those of
        :func:`trained_on` out of ``paths``); None when the model records
        no fingerprints (saved by an older hybridclf, or not by
        ``hybridclf train``).

    Raises
    ------
    ModelLoadError
        When ``train_part.json`` is listed in the manifest but changed, or is
        unreadable, or its fingerprints are.
    """
    from .inspect._fingerprint import fingerprints

    record = read_train_part(model_dir)
    if not has_fingerprints(record):
        return None
    found = near_copies_of(record, fingerprints(paths, n_jobs=n_jobs),
                           source=os.path.join(model_dir, TRAIN_PART_FILE))
    return [{"file": os.fspath(paths[i]), "hash_distance": d} for i, d in found]
