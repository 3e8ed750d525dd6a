"""Group ids: which images are near-identical copies of one object.

Near-identical photos of one object must not sit on both sides of a split, or
the scores measure memory, not recognition. Each image gets a **group** id:
:func:`duplicate_groups` finds them, :func:`read_groups_csv` reads them, and
:func:`join_identical_files` joins the groups of byte-identical files. The
splits that keep each group whole are in ``_split``.
"""

import logging
import os
import warnings

import numpy as np

from ..exceptions import SkippedFilesWarning
from ..utils._csv import read_csv_rows
from ..utils._docstrings import Substitution, n_jobs_docstring
from ..utils._row_store import content_digest

__all__ = ["drop_label_conflicts", "duplicate_groups", "groups_across_classes",
           "join_identical_files", "read_groups_csv"]

# the records keep the logger name they had before this module was split off
logger = logging.getLogger("hybridclf.training._split")


def _content_groups(paths):
    """Group ids of byte-identical files (the fallback without the inspector)."""
    ids, groups = {}, np.empty(len(paths), dtype=np.int64)
    for i, path in enumerate(paths):
        # the digest the duplicate search and the feature cache take too
        key = content_digest(path) or f"unreadable:{i}"
        groups[i] = ids.setdefault(key, len(ids))
    return groups


@Substitution(n_jobs=n_jobs_docstring("Threads for the inspector."))
def duplicate_groups(paths, *, n_jobs=None, cache_dir=None):
    """One group id per image; near-identical images share one.

    Uses the dataset inspector's :func:`hybridclf.find_duplicate_groups`.
    Where that is not available, only byte-identical files are grouped, and a
    warning says so.

    Parameters
    ----------
    paths : sequence of str
        Image files.

    {n_jobs}

    cache_dir : str, os.PathLike or None, default=None
        Where the search keeps each photo's measures and hashes and the
        aligned pairs, so that a second search decodes only new photos (the
        folder of a :class:`FeatureCache`); None keeps nothing.

    Returns
    -------
    groups : ndarray of shape (n_images,), dtype int
        Group id of each image.
    """
    try:
        # the public name: it stays valid wherever the inspector keeps it
        from .. import find_duplicate_groups
    except ImportError:
        warnings.warn(
            "hybridclf.find_duplicate_groups is not available; only "
            "byte-identical files are grouped, so near-identical photos may land "
            "on both sides of a split. Pass a groups CSV to group them.",
            UserWarning,
            stacklevel=2,
        )
        return _content_groups(paths)
    return np.asarray(find_duplicate_groups(list(paths), n_jobs=n_jobs,
                                            cache_dir=cache_dir))


def _under_root_name(name, roots):
    """Where ``name`` points if it passes through a folder named like a root.

    ``hybridclf inspect --data-dir photos/`` run in ``project/`` names
    ``photos/cat/1.jpg``; a training run elsewhere, with ``project/photos`` as
    its data folder, finds that file after the component ``photos``.
    """
    parts = os.path.normpath(name).replace("\\", "/").split("/")
    for root in roots:
        root = os.fspath(root)
        folder_names = {os.path.basename(os.path.normpath(root)),
                        os.path.basename(os.path.realpath(root))}
        for i, part in enumerate(parts[:-1]):
            if part in folder_names:
                yield os.path.join(root, *parts[i + 1:])


def as_folders(root):
    """``root`` (None, one folder, or several) as a list of folders."""
    if root is None:
        return []
    return [root] if isinstance(root, (str, os.PathLike)) else list(root)


def read_groups_csv(csv_path, paths, *, root=None):
    """Read group ids from a CSV with the columns ``file`` and ``group``.

    A ``file`` may be given as the path itself, relative to ``root``, or by a
    path that resolves to the same file. A file whose group is left empty
    (cleared by hand to split a group) gets a group of its own. Images that
    the CSV does not name get a group of their own too, and a warning names
    them (with the files the CSV names that are gone: a photo moved since
    needs its new path).
    ``hybridclf augment``'s ``manifest.csv`` also works: its ``source``
    column is taken when there is no ``group`` column.

    Parameters
    ----------
    csv_path : str or os.PathLike
        The CSV file.

    paths : sequence of str
        The images to group.

    root : str, os.PathLike or sequence of them, default=None
        Folder (or folders) that relative names in the CSV start from. Each is
        tried, and then the CSV's folder and the current folder: a CSV that
        ``hybridclf inspect`` wrote names its files as the command was given
        them, often relative to the folder it ran in. A name that none of
        these resolves is also looked for after a folder of its path named
        like one of the roots (``photos/cat/1.jpg`` in ``../photos``), so the
        CSV still serves a run from another folder.

    Returns
    -------
    groups : ndarray of shape (n_images,), dtype int
        Group id of each image.

    Raises
    ------
    ValueError
        When the CSV puts one file in two groups, names files but none of
        ``paths`` (written for another folder), lacks a ``file`` or a
        ``group`` (or ``source``) column,
        or is not UTF-8 (a legacy code page of Excel) and none of the names
        it holds that are not UTF-8 is a file on disk: they were meant as
        text, not as the bytes of file names (which may legitimately be
        other than UTF-8; a CSV naming such a file is read), as every CSV
        hybridclf reads (:mod:`hybridclf.utils._csv`).
    """
    roots = as_folders(root)
    bases = list(dict.fromkeys(
        [os.fspath(r) for r in roots]
        + [os.path.dirname(os.path.abspath(csv_path)), os.getcwd()]))

    def candidates(name):
        return [name] if os.path.isabs(name) else [
            os.path.join(base, name) for base in bases]

    # with or without a spreadsheet's byte-order mark, which would otherwise
    # hide the 'file' column; names in a legacy code page (Excel's plain CSV)
    # are refused: every such photo would silently get its own group
    columns, rows = read_csv_rows(
        csv_path, name_columns=("file",),
        locate=lambda name: candidates(name) + list(_under_root_name(name, roots)),
        what="its names would be misread and match no image to group")
    group_column = "group" if "group" in columns else "source"
    if "file" not in columns or group_column not in columns:
        raise ValueError(
            f"The groups CSV {os.fspath(csv_path)!r} must have the columns 'file' "
            f"and 'group'. Got the columns {sorted(columns)!r} instead."
        )
    by_file, by_root_name, named, gone = {}, {}, {}, []
    for line, row in enumerate(rows, start=2):
        name, group = row["file"], row[group_column]
        if not (group or "").strip():
            # a group cleared to take a file out of its group: one of its own,
            # not one shared by every file whose cell is empty
            group = f"\0own:{line}"
        for candidate in candidates(name):
            by_file[os.path.realpath(candidate)] = group
        for candidate in _under_root_name(name, roots):
            by_root_name.setdefault(os.path.realpath(candidate), group)
        found = [c for c in candidates(name) + list(_under_root_name(name, roots))
                 if os.path.isfile(c)]
        if not found:
            gone.append(name)
        for real in {os.path.realpath(c) for c in found}:
            before = named.setdefault(real, (name, group, line))
            if before[1] != group:
                raise ValueError(
                    f"The groups CSV {os.fspath(csv_path)!r} puts one file in two "
                    f"groups: {before[0]!r} in group {before[1]!r} (line "
                    f"{before[2]}) and {name!r} in group {group!r} (line {line}). "
                    "Give each file one row: to merge the two groups, give "
                    "every file of one of them the other's group id.")
    labels, missing = [], []
    for i, path in enumerate(paths):
        real = os.path.realpath(path)
        key = by_file.get(real, by_root_name.get(real))
        if key is None:
            missing.append(path)
            key = f"\0own:{i}"
        labels.append(key)
    if rows and len(paths) and len(missing) == len(paths):
        raise ValueError(
            f"None of the {len(paths)} images is in the groups CSV "
            f"{os.fspath(csv_path)!r}, which names {len(rows)} file(s) "
            f"({_first([row['file'] for row in rows], 3)}): it was written for "
            "another folder, or its relative names resolve from none of "
            f"{', '.join(bases)}. Give the duplicate_groups.csv that hybridclf "
            "inspect wrote for this data folder, with the files given as "
            "absolute paths or relative to one of these folders.")
    if missing:
        logger.warning("%s", _not_in_csv_message(csv_path, missing, len(paths),
                                                  gone, bases))
    _, groups = np.unique(np.asarray(labels, dtype=object).astype(str),
                          return_inverse=True)
    return groups.astype(np.int64)


def _first(names, n=5):
    """Up to ``n`` of ``names``, and how many more."""
    more = f" and {len(names) - n} more" if len(names) > n else ""
    return ", ".join(map(str, names[:n])) + more


def _not_in_csv_message(csv_path, missing, n_images, gone, bases):
    """Why images got no group from a groups CSV, and what to do.

    A CSV written before a photo was moved to another class folder (the fix
    of a wrong label) names the old path, and the photo at its new path,
    without its group, may land on both sides of a split with its copies.
    """
    message = (f"{len(missing)} of {n_images} images are not in {csv_path}; "
               f"each gets its own group: {_first(missing)}.")
    if gone:
        return (message + f" The CSV names {len(gone)} file(s) that are no "
                f"longer there ({_first(gone)}): it was written before the "
                "data folder changed. Give a moved photo its new path in the "
                "CSV (or run hybridclf inspect again and merge your edits into "
                "its new duplicate_groups.csv), or its copies may be trained on "
                "and tested on.")
    return (message + " Its relative names were read from "
            f"{', '.join(bases)}: give the files as absolute paths or relative "
            "to one of them.")


def join_identical_files(groups, paths):
    """``groups`` with the groups of byte-identical files joined into one.

    The same photo in two dataset folders (a data folder and a feedback
    folder) must not land on both sides of a split, whatever the groups say.

    Parameters
    ----------
    groups : array-like of int
        A group id per file.

    paths : sequence of str
        The files.

    Returns
    -------
    groups : ndarray of int
        Group ids numbered 0, 1, ... in order of first appearance.
    """
    return join_groups(groups, _content_groups(paths))


def drop_label_conflicts(paths, labels, names=None, *, return_left_out=False):
    """Leave out byte-identical files filed under different classes, and say so.

    The same photo under two class names (a correction in a feedback folder
    that contradicts the data folder, or a copy filed twice) would be trained
    on with both labels. Every copy of such a photo is left out, and a
    :class:`~hybridclf.exceptions.SkippedFilesWarning` names the files, their
    classes and the fix; with ``return_left_out``, each file left out comes
    back with its reason too, for the model's record of the files it never
    saw (``unreadable`` of ``model.json`` and the model card).

    Parameters
    ----------
    paths : sequence of str
        The files.

    labels : sequence of str
        The class of each file.

    names : sequence of str or None, default=None
        Names of the files for the message (their paths when None), kept in
        step with ``paths``.

    return_left_out : bool, default=False
        Also return the files left out, with the reason.

    Returns
    -------
    paths, labels, names : list
        The three lists without the conflicting files (``names`` is None when
        it was not given).

    left_out : list of (str, str)
        Only with ``return_left_out``: each file left out (its name, or its
        path when ``names`` is None) and the reason, which names the classes
        and the other copies.
    """
    content = _content_groups(paths)
    classes = {}
    for group, label in zip(content.tolist(), labels):
        classes.setdefault(group, set()).add(label)
    conflicts = {g for g, found in classes.items() if len(found) > 1}
    shown = list(paths) if names is None else list(names)
    if not conflicts:
        kept = list(paths), list(labels), None if names is None else list(names)
        return (*kept, []) if return_left_out else kept
    lines = [
        "  " + ", ".join(f"{shown[i]} ({labels[i]})"
                         for i in np.flatnonzero(content == g))
        for g in sorted(conflicts)]
    more = f"\n  ... and {len(lines) - 20} more" if len(lines) > 20 else ""
    warnings.warn(
        f"{len(conflicts)} photo(s) are filed under more than one class "
        "(byte-identical files: a label conflict) and are left out of the "
        "training:\n" + "\n".join(lines[:20]) + more + "\nDelete the copy "
        "under the wrong class to train on the photo.",
        SkippedFilesWarning,
        stacklevel=3,
    )
    keep = [i for i, g in enumerate(content.tolist()) if g not in conflicts]
    kept = ([paths[i] for i in keep], [labels[i] for i in keep],
            None if names is None else [names[i] for i in keep])
    if not return_left_out:
        return kept
    left_out = []
    for i in np.flatnonzero(np.isin(content, sorted(conflicts))):
        copies = np.flatnonzero(content == content[i])
        left_out.append((shown[i], (
            "label conflict: the same photo (byte-identical) is also filed as "
            + ", ".join(f"{shown[j]} ({labels[j]})" for j in copies if j != i)
            + "; delete the copy under the wrong class to train on it")))
    return (*kept, left_out)


#: The files of one group that the warning of :func:`groups_across_classes`
#: names; model.json names them all.
_SHOWN_PER_GROUP = 8


def groups_across_classes(groups, labels, names, *, source=None):
    """The groups of near-identical photos filed under more than one class.

    A near-identical copy (another shot, a resized or re-encoded file) under
    another class is trained on under both labels: unlike a byte-identical
    one (:func:`drop_label_conflicts`) it is kept, since a group may rightly
    span classes (one object filed under two names), but a
    :class:`UserWarning` names each such group's files, their classes and
    the fix, as ``hybridclf inspect`` reports them (label conflicts).

    Parameters
    ----------
    groups : array-like of int
        The group id of each file (:func:`find_training_groups`).

    labels : sequence of str
        The class of each file.

    names : sequence of str
        The files' names for the message and the record.

    source : str or None, default=None
        Where the groups came from, for the message.

    Returns
    -------
    conflicts : list of dict
        One ``{"files": [...], "classes": [...]}`` per group that spans
        classes (its files in order, its classes sorted), as ``model.json``
        records them; empty when none does.
    """
    members = {}
    for i, group in enumerate(np.asarray(groups).tolist()):
        members.setdefault(group, []).append(i)
    conflicts = [idx for idx in members.values()
                 if len({labels[i] for i in idx}) > 1]
    if not conflicts:
        return []

    def shown(idx):
        more = (f", ... and {len(idx) - _SHOWN_PER_GROUP} more"
                if len(idx) > _SHOWN_PER_GROUP else "")
        return "  " + ", ".join(f"{names[i]} ({labels[i]})"
                                for i in idx[:_SHOWN_PER_GROUP]) + more

    lines = [shown(idx) for idx in conflicts[:20]]
    if len(conflicts) > 20:
        lines.append(f"  ... and {len(conflicts) - 20} more groups")
    warnings.warn(
        f"{len(conflicts)} group(s) of near-identical photos"
        + (f" (groups: {source})" if source else "") + " are filed under more "
        "than one class and are trained on under each label:\n"
        + "\n".join(lines) + "\nMove or delete the copy filed under the wrong "
        "class; keep it only if the object truly belongs to both classes. "
        "hybridclf inspect lists these as label conflicts (and with --labels, "
        "the likely wrong labels); the groups are recorded in model.json "
        "(groups_across_classes) and the model card.",
        UserWarning,
        stacklevel=3,
    )
    return [{"files": [names[i] for i in idx],
             "classes": sorted({str(labels[i]) for i in idx})}
            for idx in conflicts]


def join_groups(groups, other):
    """The groups of ``groups`` and ``other`` joined: two images share a group
    when either grouping puts them together (directly or through others).

    Parameters
    ----------
    groups, other : array-like of int
        Two group ids per image.

    Returns
    -------
    groups : ndarray of int
        Group ids numbered by their order of first appearance.
    """
    groups = np.asarray(groups)
    parent = {}

    def find(g):
        while parent.setdefault(g, g) != g:
            g = parent[g]
        return g

    first = {}
    for group, same in zip(groups.tolist(), np.asarray(other).tolist()):
        other_group = first.setdefault(same, group)
        parent[find(group)] = find(other_group)
    _, joined = np.unique([find(g) for g in groups.tolist()], return_inverse=True)
    return joined.astype(np.int64)
