"""Reading a groups CSV: which files a person put in one group.

``hybridclf inspect`` writes ``duplicate_groups.csv`` (``file,group``); a
person may edit it (merge a near miss, split a wrong group) and give it back
to ``hybridclf train --groups`` or ``hybridclf inspect --groups``. Both read
it here: :func:`read_group_names` gives each image its group name (None where
the CSV does not name it) and :func:`read_groups_csv` group ids.
"""

import logging
import os

import numpy as np

from ..utils._csv import read_csv_rows

# the records keep the logger name they had before this module was split off
logger = logging.getLogger("hybridclf.training._split")


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
    names, gone, bases = _read_names(csv_path, paths, root)
    missing = [path for path, name in zip(paths, names) if name is None]
    if missing:
        logger.warning("%s", _not_in_csv_message(csv_path, missing, len(paths),
                                                  gone, bases))
    labels = [f"\0missing:{i}" if name is None else name
              for i, name in enumerate(names)]
    _, groups = np.unique(np.asarray(labels, dtype=object).astype(str),
                          return_inverse=True)
    return groups.astype(np.int64)


def read_group_names(csv_path, paths, *, root=None):
    """The group name of each image in a groups CSV; None where it names none.

    Reads the CSV as :func:`read_groups_csv` does (the same columns, names
    and errors), but leaves the images the CSV does not name without a
    group, and says nothing of them: ``hybridclf inspect --groups`` groups
    them itself.

    Parameters
    ----------
    csv_path : str or os.PathLike
        The CSV file.

    paths : sequence of str
        The images to group.

    root : str, os.PathLike or sequence of them, default=None
        As in :func:`read_groups_csv`.

    Returns
    -------
    names : list of str or None
        The group of each image as the CSV spells it (a file whose group is
        left empty gets a name of its own), None for an image it does not
        name.

    Raises
    ------
    ValueError
        As :func:`read_groups_csv`.
    """
    return _read_names(csv_path, paths, root)[0]


def _read_names(csv_path, paths, root):
    """The group names, the files named that are gone, and the folders tried."""
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
    names = [by_file.get(real, by_root_name.get(real))
             for real in map(os.path.realpath, paths)]
    if rows and len(paths) and all(name is None for name in names):
        raise ValueError(
            f"None of the {len(paths)} images is in the groups CSV "
            f"{os.fspath(csv_path)!r}, which names {len(rows)} file(s) "
            f"({_first([row['file'] for row in rows], 3)}): it was written for "
            "another folder, or its relative names resolve from none of "
            f"{', '.join(bases)}. Give the duplicate_groups.csv that hybridclf "
            "inspect wrote for this data folder, with the files given as "
            "absolute paths or relative to one of these folders.")
    return names, gone, bases


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
                "CSV (or run hybridclf inspect again with --groups and this "
                "CSV: its groups are carried into the new duplicate_groups.csv), "
                "or its copies may be trained on and tested on.")
    return (message + " Its relative names were read from "
            f"{', '.join(bases)}: give the files as absolute paths or relative "
            "to one of them.")
