"""Walking a class-per-folder dataset: the image files, their labels, the rest.

:func:`scan_image_folder` lists the files of each class folder that start
like an image, and every other file or empty class folder with the reason it
is not taken; it decodes nothing and warns of nothing.
:func:`no_images_error` is the one error of every command whose inputs hold
no image to work on (``train``, ``evaluate``, ``inspect``, ``predict``,
``extract``): what each path given holds, what was looked for, the fix.
"""

import logging
import os
import unicodedata

from ..exceptions import NoImagesError
from ..utils._docstrings import Substitution
from ._files import (
    IMAGE_EXTENSIONS,
    LINKED_FOLDER,
    _describe_non_image,
    _read_file,
    sniff_image_format,
)

__all__ = ["FEEDBACK_LOG", "log_skipped", "no_images_error", "scan_image_folder"]

logger = logging.getLogger(__name__)

#: The log a feedback folder keeps beside its class folders
#: (:class:`hybridclf.feedback.FeedbackStore`); the folder walks pass over it
#: without reporting it, so training on a feedback folder warns of nothing.
FEEDBACK_LOG = "feedback.jsonl"

#: Why a folder holding :data:`FEEDBACK_LOG` is not taken as a class.
FEEDBACK_FOLDER = (
    f"a feedback folder (it holds {FEEDBACK_LOG}), not a class: its photos lie in "
    "class folders of their own. Give it as a dataset folder of its own "
    "(hybridclf train --data-dir <data folder> <feedback folder>)")

# the manifest that ``hybridclf augment`` writes beside its class folders, which
# the training reads for its groups: passed over without a report too
_AUGMENT_MANIFEST = "manifest.csv"


# the parameters and first returns of scan_image_folder and load_image_folder
_FOLDER_WALK_DOC = """root : str or os.PathLike
        The dataset folder.

    follow_symlinks : bool, default=False
        Whether to descend into symbolic links to folders.

    Returns
    -------
    paths : list of str
        Image file paths, sorted by class and then by path.

    labels : list of str
        The class (sub-folder name) of each path."""


@Substitution(walk=_FOLDER_WALK_DOC)
def scan_image_folder(root, *, follow_symlinks=False):
    """Walk a class-per-folder dataset: the images, their labels, the rest.

    Each direct sub-folder of ``root`` is a class, named after the folder; its
    images may lie in nested folders at any depth. Files are recognised by
    their first bytes, not their extension. Hidden files and folders
    (starting with ".") are ignored, and so are a feedback folder's log
    (:data:`FEEDBACK_LOG`) and ``hybridclf augment``'s ``manifest.csv`` at
    the top. A sub-folder holding a feedback log is a feedback folder, not a
    class: it is skipped, with the reason. Only regular files are opened: FIFOs,
    sockets and devices are skipped unopened (opening a FIFO blocks). This
    function neither decodes images nor warns: :func:`load_image_folder`,
    ``hybridclf inspect`` and ``hybridclf augment`` report what it skipped.

    Parameters
    ----------
    {walk}

    skipped : list of (str, str)
        Each file not taken, with the reason (not an image, not inside a class
        folder, not a regular file, cannot be read), each symbolic link to a
        folder not followed, each class folder without any image (the
        class is left out), and each feedback folder among the class folders.

    Raises
    ------
    FileNotFoundError
        When ``root`` is not a folder.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from hybridclf.io import scan_image_folder
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "cat").mkdir()
    >>> _ = (root / "cat" / "notes.txt").write_text("hello")
    >>> scan_image_folder(root)[2][0][1]
    'not an image: the content is text'
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(
            f"The dataset folder {root!r} does not exist or is not a folder. Pass "
            "a folder holding one sub-folder of images per class."
        )
    paths, labels, skipped = [], [], []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if (entry.name.startswith(".")
                or entry.name in (FEEDBACK_LOG, _AUGMENT_MANIFEST) and entry.is_file()):
            continue
        if not entry.is_dir(follow_symlinks=follow_symlinks):
            skipped.append((entry.path, LINKED_FOLDER if entry.is_dir()
                            else "not inside a class folder"))
            continue
        if not _is_utf8(entry.name):
            skipped.append((entry.path, _not_utf8_class(entry.name)))
            continue
        if os.path.isfile(os.path.join(entry.path, FEEDBACK_LOG)):
            # its corrections would all be labelled with its folder's name
            skipped.append((entry.path, FEEDBACK_FOLDER))
            continue
        found = _scan_class(entry.path, follow_symlinks, skipped)
        if not found:
            skipped.append((entry.path, "class folder without any image; the "
                            "class is left out"))
        paths += found
        labels += [class_name(entry.name)] * len(found)
    return paths, labels, skipped


def log_skipped(skipped, *, what="Skipping"):
    """Log each file a walk or a decode did not take, at INFO level.

    Every caller reports these files once where its user reads them: a
    :class:`~hybridclf.exceptions.SkippedFilesWarning`
    (:func:`~hybridclf.io.load_image_folder`), or a list it returns and the
    command prints (``evaluate``, ``augment``). A WARNING line per file on
    top of that showed each one twice on a command's screen; at INFO it is
    there for ``-v``.

    Parameters
    ----------
    skipped : iterable of (str, str)
        Each file (or folder) with the reason it is not taken.

    what : str, default="Skipping"
        The first word of each line.
    """
    for path, reason in skipped:
        logger.info("%s %s: %s", what, path, reason)


def class_name(folder_name):
    """The class of a class folder: its name in Unicode's composed form (NFC).

    A name copied from macOS's HFS+ holds "café" decomposed (NFD), the one
    typed on Linux, or a feedback label, composed: one class, not two that
    print alike.
    """
    return unicodedata.normalize("NFC", folder_name)


def _scan_class(folder, follow_symlinks, skipped):
    """The image files under one class folder; the others go to ``skipped``."""
    found = []

    def unreadable(exc):  # os.walk passes over a folder it cannot list
        skipped.append((exc.filename, _unreadable_folder(exc)))

    for dirpath, dirnames, filenames in os.walk(folder, followlinks=follow_symlinks,
                                                onerror=unreadable):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if not follow_symlinks:  # os.walk passes over them without a word
            links = [os.path.join(dirpath, d) for d in dirnames]
            skipped.extend((d, LINKED_FOLDER) for d in links if os.path.islink(d))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = os.path.join(dirpath, name)
            reason = _check_image_file(path)
            if reason is None:
                found.append(path)
            else:
                skipped.append((path, reason))
    return found


def _is_utf8(name):
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # os.listdir's surrogates for bytes not UTF-8
        return False
    return True


def _not_utf8_class(name):
    # a class name is written in model.json, reports, plots and the service's
    # JSON answers, which all take UTF-8 text
    return (f"a class folder whose name is not UTF-8 text ({os.fsencode(name)!r}): "
            "the class is left out; rename the folder in UTF-8 (convmv does it)")


def _unreadable_folder(exc):
    return (f"a folder that cannot be read ({exc.strerror or exc}): its files are "
            "left out; give this user read access to it")


def _check_image_file(path):
    """None if the file starts like an image, else the reason it is skipped."""
    try:
        header = _read_file(path, 512)
    except ValueError as exc:
        return str(exc)
    if sniff_image_format(header) is not None:
        return None
    return _describe_non_image(header)


#: What the dataset walks look for, and the fix, for :func:`no_images_error`.
_IN_CLASS_FOLDERS = ("image files in class sub-folders, as "
                     "root/<class name>/<image file>")
_DATASET_FIX = ("Check the path: give the folder that holds one sub-folder of "
                "images per class.")


def no_images_error(inputs, looked_for, fix):
    """The error for inputs that hold no image to work on, naming each path.

    A mistyped path (an empty folder, a folder named ``x.jpg``, the parent
    of the photos' folder...) must not end in an empty result that reads
    as a success: every command that is given files or folders and finds
    nothing to read raises this error, in these words.

    Parameters
    ----------
    inputs : sequence of str or os.PathLike
        The paths given (the first five are described).

    looked_for : str
        What the command looked for, after "Looked for ".

    fix : str
        What to do, a sentence.

    Returns
    -------
    error : NoImagesError
        Its message names each path and what it holds (an empty folder, only
        hidden files, only empty sub-folders, files none of which were
        taken), what was looked for (with the image file name extensions)
        and ``fix``.

    Examples
    --------
    >>> import tempfile
    >>> from hybridclf.io import no_images_error
    >>> folder = tempfile.mkdtemp(suffix=".jpg")
    >>> print(no_images_error([folder], "image files", "Check the path.")
    ...       )  # doctest: +ELLIPSIS
    No images found in '...jpg', an empty folder (a folder, not an image file...
    """
    inputs = [os.fspath(p) for p in inputs]
    shown = "; ".join(_holds(p) for p in inputs[:5])
    if len(inputs) > 5:
        shown += f"; and {len(inputs) - 5} more"
    extensions = ", ".join(sorted(IMAGE_EXTENSIONS))
    return NoImagesError(
        f"No images found in {shown or 'no input (none given)'}. Looked for "
        f"{looked_for}; names starting with '.' are left out, and images are "
        f"files such as {extensions} (recognised by their content). {fix}")


def _holds(path):
    """``'path', <what it holds>``, in words, for :func:`no_images_error`."""
    like_image = os.path.splitext(path.rstrip("/\\"))[1].lower() in IMAGE_EXTENSIONS
    if not os.path.isdir(path):
        return f"{path!r}"
    files = hidden = folders = 0
    for _, dirnames, filenames in os.walk(path):
        hidden += sum(n.startswith(".") for n in dirnames + filenames)
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        folders += len(dirnames)
        files += sum(not n.startswith(".") for n in filenames)
    if files:
        what = (f"a folder holding {files} file(s), none of them taken (a "
                "warning above says why)")
    elif hidden:
        what = "a folder holding only hidden files or folders"
    elif folders:
        what = f"a folder holding {folders} sub-folder(s) and no file"
    else:
        what = "an empty folder"
    if like_image:
        what += " (a folder, not an image file, whatever its name says)"
    return f"{path!r}, {what}"
