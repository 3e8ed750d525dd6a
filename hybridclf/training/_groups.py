"""Group ids: which images are near-identical copies of one object.

Near-identical photos of one object must not sit on both sides of a split, or
the scores measure memory, not recognition. Each image gets a **group** id:
:func:`duplicate_groups` finds them, :func:`read_groups_csv` reads them
(from :mod:`hybridclf.io._groups_csv`), and
:func:`join_identical_files` joins the groups of byte-identical files. The
splits that keep each group whole are in ``_split``.
"""

import warnings

import numpy as np

from ..exceptions import GroupsAcrossClassesWarning, SkippedFilesWarning
from ..io._groups_csv import as_folders, read_groups_csv  # noqa: F401 (io: inspect reads it too)
from ..utils._docstrings import Substitution, n_jobs_docstring
from ..utils._row_store import content_digest

__all__ = ["drop_label_conflicts", "duplicate_groups", "groups_across_classes",
           "join_identical_files", "read_groups_csv"]


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
    :class:`~hybridclf.exceptions.GroupsAcrossClassesWarning` (a
    :class:`UserWarning`, to filter by class) names each such group's
    files, their classes and the fix, as ``hybridclf inspect`` reports them
    (label conflicts).

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
        GroupsAcrossClassesWarning,
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
