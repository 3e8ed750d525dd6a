"""Listing datasets: one class-per-folder tree, or several merged by class name.

:func:`load_image_folder` lists the images and labels of one dataset folder
and reports what it skipped in one warning; :func:`load_image_folders` merges
several (a data folder and a feedback folder) by class folder name, with a
unique name for each file.
"""

import os
import warnings

from ..exceptions import SkippedFilesWarning
from ..utils._docstrings import Substitution
from ._scan import (
    _DATASET_FIX,
    _FOLDER_WALK_DOC,
    _IN_CLASS_FOLDERS,
    log_skipped,
    no_images_error,
    scan_image_folder,
)

__all__ = ["load_image_folder", "load_image_folders"]

@Substitution(walk=_FOLDER_WALK_DOC)
def load_image_folder(root, *, follow_symlinks=False):
    """List the images and labels of a class-per-folder dataset.

    Each direct sub-folder of ``root`` is a class, named after the folder; its
    images may lie in nested folders at any depth. Files are recognised by their
    content (the first bytes), not only by their extension, so a JPEG named
    ``.png`` or with no extension is taken and a text file named ``.jpg`` is
    not. Hidden files and folders (starting with ".") are ignored; FIFOs,
    sockets and devices are skipped unopened.

    Files that are not taken, and class folders without any image, are never
    dropped silently: they are logged and reported in one
    :class:`~hybridclf.exceptions.SkippedFilesWarning` that names each with
    its reason. This function does not decode the images: a truncated file is
    listed here and reported by the loader (or ``hybridclf inspect``).

    Parameters
    ----------
    {walk}

    Raises
    ------
    FileNotFoundError
        When ``root`` is not a folder.

    NoImagesError
        When ``root`` has no class sub-folder holding an image (a
        ValueError), naming what it holds.

    See Also
    --------
    scan_image_folder : The same walk, returning what was skipped.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> from hybridclf.io import load_image_folder
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for cls in ("cat", "dog"):
    ...     (root / cls).mkdir()
    ...     Image.new("RGB", (32, 32)).save(root / cls / "a.png")
    >>> paths, labels = load_image_folder(root)
    >>> labels
    ['cat', 'dog']
    """
    paths, labels, _, _ = _load_folders([root], follow_symlinks)
    return paths, labels


def load_image_folders(roots, *, follow_symlinks=False, return_skipped=False):
    """List the images of several class-per-folder datasets as one.

    Each root is read like :func:`load_image_folder` and the classes are
    merged by folder name: ``data/waek_man`` and ``feedback/waek_man`` are one
    class, and a class may come from one root alone (a new class from a
    feedback folder ``feedback/<label>/<sha256>.jpg``). Every file is kept,
    also when two roots hold the same photo; the grouped split of
    :func:`~hybridclf.training.train_model` keeps byte-identical files in one
    group (:func:`~hybridclf.training.find_training_groups`).

    Parameters
    ----------
    roots : str, os.PathLike or sequence of them
        The dataset folders.

    follow_symlinks : bool, default=False
        Whether to descend into symbolic links to folders.

    return_skipped : bool, default=False
        Also return what was not taken (it is warned about either way), for
        a caller that records it (``hybridclf train``'s model card).

    Returns
    -------
    paths : list of str
        Image file paths, root by root, each sorted by class and path.

    labels : list of str
        The class (sub-folder name) of each path.

    names : list of str
        A unique name of each file: its path relative to its root
        (``class/file.jpg``) with one root, and prefixed by the root's folder
        name with several (``feedback/class/file.jpg``; a root whose folder
        name an earlier root has gets ``-2``, ``-3`` ...).

    skipped : list of (str, str)
        Only with ``return_skipped``: each file or folder not taken, named
        as ``names`` are, with the reason (see :func:`scan_image_folder`).

    Raises
    ------
    FileNotFoundError
        When a root is not a folder.

    ValueError
        When a root is given twice; :class:`~hybridclf.exceptions.NoImagesError`
        (a ValueError) when no root has a class sub-folder holding an image,
        naming what each root holds.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> from hybridclf.io import load_image_folders
    >>> data, feedback = (pathlib.Path(tempfile.mkdtemp()) / n
    ...                   for n in ("data", "feedback"))
    >>> for root, cls in ((data, "cat"), (feedback, "cat"), (feedback, "fox")):
    ...     (root / cls).mkdir(parents=True)
    ...     Image.new("RGB", (32, 32)).save(root / cls / "a.png")
    >>> paths, labels, names = load_image_folders([data, feedback])
    >>> labels
    ['cat', 'cat', 'fox']
    >>> names
    ['data/cat/a.png', 'feedback/cat/a.png', 'feedback/fox/a.png']
    """
    if isinstance(roots, (str, os.PathLike)):
        roots = [roots]
    paths, labels, names, skipped = _load_folders(roots, follow_symlinks)
    return (paths, labels, names, skipped) if return_skipped else (
        paths, labels, names)


def _load_folders(roots, follow_symlinks):
    """What load_image_folders returns (called by it and load_image_folder)."""
    roots = [os.fspath(r) for r in roots]
    real = [os.path.realpath(r) for r in roots]
    if len(set(real)) != len(real):
        raise ValueError(f"The dataset folders {roots!r} name one folder twice. "
                         "Give each folder once.")
    tags, paths, labels, names = _root_tags(roots), [], [], []
    skipped_names = []
    for root, tag in zip(roots, tags):
        found, found_labels, skipped = scan_image_folder(
            root, follow_symlinks=follow_symlinks)
        # a folder given as a root of its own (a feedback folder inside the
        # data folder) is read there: not reported as skipped here
        skipped = [(p, r) for p, r in skipped if os.path.realpath(p) not in real]
        _report_skipped(root, skipped)
        paths += found
        labels += found_labels
        names += [_name(p, root, tag) for p in found]
        skipped_names += [(_name(p, root, tag), r) for p, r in skipped]
    if not paths:
        raise no_images_error(roots, _IN_CLASS_FOLDERS, _DATASET_FIX)
    return paths, labels, names, skipped_names


def _name(path, root, tag):
    """A file's name: relative to its root, prefixed by the root's tag."""
    name = os.path.relpath(path, root).replace(os.sep, "/")
    return name if tag is None else f"{tag}/{name}"


def _root_tags(roots):
    """The name prefix of each root: None with one root, else a unique folder name."""
    if len(roots) == 1:
        return [None]
    tags, seen = [], {}
    for root in roots:
        base = os.path.basename(os.path.normpath(os.path.abspath(root))) or "root"
        seen[base] = seen.get(base, 0) + 1
        tags.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return tags


def _report_skipped(root, skipped):
    """Log and warn about the files and folders a scan did not take."""
    if not skipped:
        return
    log_skipped(skipped)
    listed = "\n".join(f"  {p}: {r}" for p, r in skipped[:20])
    more = f"\n  ... and {len(skipped) - 20} more" if len(skipped) > 20 else ""
    warnings.warn(
        f"{len(skipped)} file(s) or folder(s) under {root!r} are not taken as "
        f"images:\n{listed}{more}",
        SkippedFilesWarning,
        stacklevel=4,  # the caller of load_image_folder(s)
    )


def layout_hint(labels, paths):
    """The fix when the one class's images lie in sub-folders of their own.

    ``--data-dir photos/`` with ``photos/dataset/<class>/<image>`` gives one
    class, ``dataset``: its sub-folders are the classes meant.

    Parameters
    ----------
    labels : sequence of str
        The class of each image.

    paths : sequence of str or os.PathLike
        The image files.

    Returns
    -------
    hint : str
        A sentence naming the folder to pass, or "" when the labels hold
        other than one class or its images do not lie in two or more
        sub-folders of the class folder.
    """
    classes = {str(label) for label in labels}
    if len(classes) != 1:
        return ""
    parents = {os.path.dirname(os.fspath(p)) for p in paths
               if isinstance(p, (str, os.PathLike))}
    tops = {os.path.dirname(p) for p in parents}
    if len(parents) < 2 or len(tops) != 1:
        return ""
    (top,) = tops
    if os.path.basename(top) != next(iter(classes)):
        return ""
    names = ", ".join(repr(os.path.basename(p)) for p in sorted(parents)[:5])
    return (f"Its images lie in the sub-folders {names}"
            f"{', ...' if len(parents) > 5 else ''} of {top!r}: if those are the "
            f"classes, name {top!r} as the data folder (--data-dir {top}).")
