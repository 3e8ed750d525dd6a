"""The improvement loop's records: corrected photos and a log of every answer.

A model improves when the photos it got wrong come back with the right class.
:class:`FeedbackStore` keeps such corrections as a class-per-folder dataset
that ``hybridclf train --data-dir photos/ feedback/`` trains on beside the
original photos; :class:`PredictionLog` keeps one line per answer given, for
audits and to see a shift in what people send. Both are plain files that any
number of threads and processes may append to at once; neither needs the
service (which only calls them).

- ``DIR/<label>/<sha256>.<ext>``: each corrected photo, named by the SHA-256 of
  its bytes, so a client never chooses a path and the same photo sent twice
  is stored once; the extension comes from the content.
- ``DIR/feedback.jsonl``: one JSON line per correction: ``time`` (UTC, ISO
  8601), ``label``, ``predicted_class``, ``model_version``, ``file``
  (relative to DIR), ``sha256``, ``new`` (false when the file was already
  there), ``class_photos`` (the photos stored under the label, this one
  included: a new class is trained on from its second) and ``also_under``
  (the other classes the same photo is stored under: a label conflict,
  which training leaves out until one copy is deleted).
- A prediction log: one JSON line per answer: ``time``, ``class``,
  ``confidence``, ``quality``, ``model_version`` and any extra fields given;
  never the image.

Nothing is written through a symbolic link planted in ``DIR``: a class
folder or ``feedback.jsonl`` that is a link is refused (OSError, ``ELOOP``,
naming it), so a correction never lands outside ``DIR``.

Each line is written by one ``write`` call on a file opened for appending
(``O_APPEND``), so lines of concurrent writers never interleave on a local
file system; a lock orders the threads of one process.
"""

import contextlib
import datetime
import errno
import hashlib
import json
import os
import threading
import unicodedata
import uuid

from .exceptions import ImageLoadError
from .io import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_MIN_SIZE,
    FEEDBACK_LOG,
    read_image,
    sniff_image_format,
)
from .prediction import UNKNOWN

__all__ = ["FeedbackStore", "PredictionLog", "check_label"]

#: longest accepted label, in characters
MAX_LABEL_LENGTH = 100
#: longest accepted label in UTF-8 bytes: a file name's limit on common file
#: systems (ext4, XFS, APFS, NTFS: 255); 100 Thai characters (3 bytes each) are 300
MAX_LABEL_BYTES = 255
_FORBIDDEN = set('/\\:*?"<>|')
# never in a label, even a class of the model: they make a path
_SEPARATORS = set("/\\")
_EXTENSIONS = {"jpeg": "jpg", "png": "png", "gif": "gif", "bmp": "bmp",
               "tiff": "tif", "webp": "webp", "jpeg2000": "jp2", "pnm": "pnm"}
_LOCK = threading.Lock()


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec="milliseconds")


def _append_line(path, record, *, follow_links=True):
    """Append ``record`` as one JSON line, in one write call.

    A write that fails or is cut short (a full disk) is undone: the file is
    truncated back to its size before, and the OSError raised. With
    ``follow_links=False`` a symbolic link at ``path`` is refused (OSError,
    ``ELOOP``), never written through.
    """
    line = (json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n").encode()
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
    if not follow_links:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    with _LOCK:
        try:
            fd = os.open(path, flags, 0o644)
        except OSError as exc:
            if follow_links or not os.path.islink(path):
                raise
            raise _link_error(path) from exc
        try:
            size = os.fstat(fd).st_size
            try:
                if os.write(fd, line) != len(line):
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
            except OSError:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, size)
                raise
        finally:
            os.close(fd)


def check_label(label, *, known=()):
    """Return ``label`` if it is a safe class-folder name, else raise ValueError.

    A label becomes a folder of the feedback dataset, so it must be one plain
    name: not empty, at most :data:`MAX_LABEL_LENGTH` characters and
    :data:`MAX_LABEL_BYTES` bytes in UTF-8 (a file name's limit), no path
    separator or other character that is special in file names
    (``/ \\ : * ? " < > |``), no control character, not starting with "."
    (hidden folders are not read as classes), no surrounding spaces, not
    the name of the feedback log, and not "unknown" in any case (the answer
    for a photo of no class: a class of that name could not be told from
    it). Any script is fine (``พระสมเด็จ``), and a class of ``known`` (the
    served model's) may hold the characters special only on other systems
    (``: * ? " < > |``): it was a folder name where the model was trained. The
    name is returned in Unicode's composed form (NFC), so that "café" typed
    with a combining accent and "café" typed with "é" name one class folder,
    not two that look the same.

    Parameters
    ----------
    label : str
        The class name.

    known : iterable of str, default=()
        The classes of the model whose answer is corrected.

    Returns
    -------
    label : str
        The same name, in NFC.

    Raises
    ------
    ValueError
        Naming what is wrong with the label.
    """
    if not isinstance(label, str) or not label:
        raise ValueError(f"The label must be a non-empty class name. Got {label!r}.")
    label = unicodedata.normalize("NFC", label)
    problem = None
    if len(label) > MAX_LABEL_LENGTH:
        problem = f"it is longer than {MAX_LABEL_LENGTH} characters"
    elif len(label.encode("utf-8", "surrogatepass")) > MAX_LABEL_BYTES:
        problem = (f"it is longer than {MAX_LABEL_BYTES} bytes in UTF-8, the "
                   "longest folder name")
    elif label.casefold() == FEEDBACK_LOG.casefold():
        problem = "it is the name of the feedback log"
    elif label.casefold() == UNKNOWN:
        problem = ("it is the answer for a photo of no known class; name the "
                   "class the photo shows")
    elif label != label.strip():
        problem = "it starts or ends with a space"
    elif label.startswith("."):
        problem = "it starts with '.' (a hidden folder, or a path)"
    elif (_SEPARATORS if _is_known(label, known) else _FORBIDDEN) & set(label):
        problem = f"it holds {''.join(sorted(_FORBIDDEN & set(label)))!r}"
    elif any(unicodedata.category(c).startswith("C") for c in label):
        problem = "it holds a control character"
    if problem:
        raise ValueError(
            f"The label {label!r} cannot be a class folder name: {problem}. Use a "
            "plain name such as 'waek_man'.")
    return label


def _is_known(label, known):
    """Whether ``label`` (NFC) is one of the ``known`` classes, in any form."""
    return any(unicodedata.normalize("NFC", str(k)) == label for k in known)


class FeedbackStore:
    """Corrected photos as a class-per-folder dataset, and their log.

    See the module's docstring for the layout. Train on it beside the
    original photos: ``hybridclf train --data-dir photos/ DIR``.

    Parameters
    ----------
    directory : str or os.PathLike
        The feedback folder; made when missing.

    max_pixels : int, default=64_000_000
        The largest photo accepted, in pixels, read from the header before
        anything is decoded (as :func:`~hybridclf.io.read_image`); the
        service passes its own ``--max-pixels``.

    max_bytes : int or None, default=None
        The most bytes of photos the folder may hold: a new photo that
        would take it past this is refused (``OSError``, ``EDQUOT``) and
        nothing is written. A client that may post corrections could
        otherwise fill the disk. None for no limit; the service passes
        ``--feedback-max-mb``.

    Examples
    --------
    >>> import tempfile
    >>> import cv2, numpy as np
    >>> from hybridclf.feedback import FeedbackStore
    >>> store = FeedbackStore(tempfile.mkdtemp())
    >>> png = cv2.imencode(".png", np.zeros((32, 32, 3), np.uint8))[1].tobytes()
    >>> entry = store.add(png, "waek_man", predicted_class="phra_sivali")
    >>> entry["file"].startswith("waek_man/"), entry["new"]
    (True, True)
    >>> store.add(png, "waek_man")["new"]
    False
    """

    def __init__(self, directory, *, max_pixels=DEFAULT_MAX_PIXELS, max_bytes=None):
        self.directory = os.fspath(directory)
        self.max_pixels = max_pixels
        self.max_bytes = max_bytes

    @property
    def log_path(self):
        """``DIR/feedback.jsonl``."""
        return os.path.join(self.directory, FEEDBACK_LOG)

    def add(self, data, label, *, predicted_class=None, model_version=None,
            known=()):
        """Store a corrected photo under its label and log the correction.

        Parameters
        ----------
        data : bytes
            The image file's bytes, as sent to ``/predict``.

        label : str
            The right class; checked by :func:`check_label` and stored in
            its composed form (NFC).

        predicted_class : str or None, default=None
            What the model answered.

        model_version : str or None, default=None
            The version of the model that answered.

        known : iterable of str, default=()
            The classes of that model, passed to :func:`check_label`.

        Returns
        -------
        entry : dict
            The logged line: ``time``, ``label``, ``predicted_class``,
            ``model_version``, ``file``, ``sha256``, ``new``,
            ``class_photos`` (the photos stored under ``label``, this one
            included; a class that only the feedback folder holds is
            trained on from its second) and ``also_under``: the other
            labels this photo is stored under (sorted; empty but for a
            label conflict, which training leaves out, every copy, until
            the copy under the wrong class is deleted).

        Raises
        ------
        ValueError
            When the label is not a safe folder name, or ``data`` is not an
            image that training can read (decoded here, at least 16 pixels a
            side); nothing is written then.
        OSError
            When the folder cannot be written, or a new photo would take it
            past ``max_bytes`` (``errno.EDQUOT``); nothing is written then.
        """
        label = check_label(label, known=known)
        data = bytes(data)
        kind = sniff_image_format(data[:16])
        try:
            # as in training
            read_image(data, min_size=DEFAULT_MIN_SIZE, max_pixels=self.max_pixels)
        except ImageLoadError as exc:
            raise ValueError(
                f"The feedback for {label!r} is not a readable image: "
                f"{exc.failures[0][1]}. "
                "Send the photo's file as it was sent to /predict.") from exc
        digest = hashlib.sha256(data).hexdigest()
        name = f"{digest}.{_EXTENSIONS[kind]}"
        folder = os.path.join(self.directory, label)
        had_folder, new = os.path.lexists(folder), False
        if self.max_bytes is not None and not os.path.lexists(
                os.path.join(folder, name)):
            self._check_room(len(data))
        try:
            new = _store_once(self.directory, label, name, data)
            entry = {"time": _now(), "label": label,
                     "predicted_class": predicted_class,
                     "model_version": model_version, "file": f"{label}/{name}",
                     "sha256": digest, "new": new,
                     "class_photos": sum(not n.startswith(".")
                                         for n in os.listdir(folder)),
                     "also_under": _also_under(self.directory, label, name)}
            _append_line(self.log_path, entry, follow_links=False)
        except OSError:  # a full disk, a folder made read-only: no photo
            # without its line, no empty class folder
            if new:
                with contextlib.suppress(OSError):
                    os.remove(os.path.join(folder, name))
            if not had_folder:
                with contextlib.suppress(OSError):
                    os.rmdir(folder)
            raise
        return entry

    def stored_bytes(self):
        """The bytes of the photos in the class folders (not the log)."""
        total = 0
        try:
            classes = os.scandir(self.directory)
        except FileNotFoundError:
            return 0
        with classes:
            for entry in classes:
                if not entry.is_dir(follow_symlinks=False):
                    continue
                with os.scandir(entry.path) as photos:
                    total += sum(p.stat(follow_symlinks=False).st_size
                                 for p in photos if p.is_file(follow_symlinks=False))
        return total

    def _check_room(self, size):
        """OSError (EDQUOT) when ``size`` more bytes would pass ``max_bytes``."""
        used = self.stored_bytes()
        if used + size > self.max_bytes:
            mb = 1024 * 1024
            raise OSError(
                errno.EDQUOT, f"it holds {used / mb:.1f} MB of photos and this one "
                f"({size / mb:.1f} MB) would pass its limit of "
                f"{self.max_bytes / mb:g} MB, --feedback-max-mb; train on the "
                "corrections and move them away, or raise the limit",
                self.directory)

    def labels(self):
        """The classes with at least one stored photo, sorted."""
        try:
            entries = os.scandir(self.directory)
        except FileNotFoundError:
            return []
        with entries:
            return sorted(e.name for e in entries
                          if e.is_dir() and not e.name.startswith(".")
                          and any(not n.startswith(".") for n in os.listdir(e.path)))

    def entries(self):
        """The logged corrections, oldest first; unreadable lines are skipped."""
        return list(_read_lines(self.log_path))


def _store_once(directory, label, name, data):
    """Write ``data`` to ``directory/label/name`` unless it is there; whether this
    call did.

    Of concurrent calls with the same photo, one stores it and says so; the
    others say it was known (a check, then a write, let several say "new").
    The class folder is opened once, without following a symbolic link, and
    every name is taken relative to it: a link planted in the feedback folder
    (a class folder, or the photo's name) never sends a photo elsewhere.
    """
    os.makedirs(directory, exist_ok=True)
    folder = os.path.join(directory, label)
    with contextlib.suppress(FileExistsError):
        os.mkdir(folder)
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
                     | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        if not os.path.islink(folder):
            raise
        raise _link_error(folder) from exc
    try:
        if _lexists(name, fd):
            return False
        tmp = f".{uuid.uuid4().hex}.tmp"
        out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL
                      | getattr(os, "O_NOFOLLOW", 0), 0o644, dir_fd=fd)
        try:
            with os.fdopen(out, "wb") as fh:
                fh.write(data)
            try:
                # atomic; fails when another call stored it first
                os.link(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
            except FileExistsError:
                return False
            except OSError:  # a file system without hard links: replace (same bytes)
                os.replace(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
            return True
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.remove(tmp, dir_fd=fd)
    finally:
        os.close(fd)


def _also_under(directory, label, name):
    """The class folders of ``directory`` other than ``label`` holding ``name``.

    A photo is named by its content, so the same file name under two class
    folders is the same photo given two classes (two people disagreeing, or
    a wrong correction corrected): training leaves every copy out.
    """
    with os.scandir(directory) as entries:
        return sorted(
            e.name for e in entries
            if e.name != label and not e.name.startswith(".")
            and e.is_dir(follow_symlinks=False)
            and os.path.lexists(os.path.join(e.path, name)))


def _lexists(name, dir_fd):
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def _link_error(path):
    """The OSError for a symbolic link where the feedback folder writes."""
    return OSError(
        errno.ELOOP, f"{os.path.basename(path)!r} in it is a symbolic link (to "
        f"{os.readlink(path)!r}); corrections are written only inside the "
        "feedback folder, never through a link. Remove the link", os.fspath(path))


def _read_lines(path):
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    yield json.loads(line)
                except ValueError:
                    continue  # a line cut by a crash
    except FileNotFoundError:
        return


class PredictionLog:
    """One JSON line per answer of the model, never the image.

    Parameters
    ----------
    path : str or os.PathLike
        The log file; appended to, made when missing (its folder too).

    Examples
    --------
    >>> import os, tempfile
    >>> from hybridclf.feedback import PredictionLog
    >>> log = PredictionLog(os.path.join(tempfile.mkdtemp(), "answers.jsonl"))
    >>> log.write("waek_man", 0.93, model_version="0.1.0+ab12")["class"]
    'waek_man'
    """

    def __init__(self, path):
        self.path = os.fspath(path)

    def write(self, predicted_class, confidence, *, quality=None, model_version=None,
              **extra):
        """Append the line of one answer.

        Parameters
        ----------
        predicted_class : str or None
            The answer (``"unknown"`` for an open-set rejection, None when the
            image could not be read).

        confidence : float or None
            The answer's top probability.

        quality : object, default=None
            Whatever the service says about the photo's quality (JSON-able).

        model_version : str or None, default=None
            The model that answered.

        **extra
            More JSON-able fields (an endpoint, a latency); never pass the
            image.

        Returns
        -------
        entry : dict
            The line written.
        """
        entry = {"time": _now(), "class": predicted_class,
                 "confidence": None if confidence is None else float(confidence),
                 "quality": quality, "model_version": model_version, **extra}
        folder = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(folder, exist_ok=True)
        _append_line(self.path, entry)
        return entry

    def entries(self):
        """The logged answers, oldest first; unreadable lines are skipped."""
        return list(_read_lines(self.path))
