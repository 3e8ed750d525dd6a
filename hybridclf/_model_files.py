"""The files of a model directory: the manifest of hashes and atomic replacement.

Two guarantees of :func:`~hybridclf.save_model` and
:func:`~hybridclf.load_model` live here:

- **Integrity.** ``manifest.json`` lists the SHA-256 of every other file of
  the directory (the model file, ``model.json``, the model card, and any file
  a later version adds), written over the directory's content, not a fixed
  list. :func:`check_manifest` refuses a directory whose listed file was
  edited, removed or replaced, naming the file; a manifest deleted from a
  directory whose ``model.json`` records one is refused too
  (:func:`expects_manifest`). It detects corruption and
  edits; it is not a signature: whoever can write the folder can also rewrite
  the manifest, so protect a served model with file permissions.
- **Atomicity.** :func:`replace_directory` writes a new directory beside the
  target (same parent, hidden temporary name), flushes it to disk, and swaps
  it in with one ``renameat2(RENAME_EXCHANGE)`` where the system has it (Linux
  3.15+), else with two renames. A crash at any moment leaves the old
  directory or the new one whole.
"""

import ctypes
import ctypes.util
import errno
import hashlib
import json
import logging
import os
import shutil
import stat
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from .utils._archive import archive_problem
from .utils._paths import sha256_file

__all__ = ["MANIFEST", "check_archive", "check_listed_file", "check_manifest",
           "expects_manifest", "read_json", "read_regular_file",
           "replace_directory", "write_manifest"]

logger = logging.getLogger(__name__)

#: Name of the manifest file in a model directory.
MANIFEST = "manifest.json"
# model.json: its "manifest" entry says that the directory was saved with one
_INFO = "model.json"

_RENAME_EXCHANGE = 2  # linux/fs.h

# model.json and manifest.json: a few KB, a few MB with thousands of classes
_MAX_JSON_BYTES = 64 << 20
# ... and at most this many values (each ',', ':', '{' and '[' counts one): a
# test_part.json of 200,000 test photos has 1.8 million. 64 MB of '[{},{},..'
# parsed to 1.4 GB of empty dicts; 2 Mi values take at most ~400 MB, however
# written (measured: 4 Mi '{"a":1}' values 270 MB, 4 Mi '"ab"' 300 MB)
_MAX_JSON_VALUES = 2 << 20


def _files(directory):
    """Relative POSIX paths of every regular file under ``directory``, sorted."""
    found = []
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames.sort()
        for name in filenames:
            path = Path(dirpath, name)
            if path.is_file() and not path.is_symlink():
                found.append(path.relative_to(directory).as_posix())
    return sorted(f for f in found if f != MANIFEST)


def read_regular_file(path, *, follow_links=True, max_bytes=_MAX_JSON_BYTES):
    """The bytes of the regular file ``path``; OSError for anything else.

    Opened without blocking, so that a FIFO in a model directory (or swapped
    in after a check) cannot hold a load or an ``/admin/reload`` for ever, and
    checked once open: a FIFO, socket, device or folder is refused, and so is
    a file over ``max_bytes`` (a ``model.json`` of gigabytes would take as
    much memory, several times). With ``follow_links=False`` a symbolic link
    is refused too.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
    if not follow_links:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags)
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", os.fspath(path))
        if max_bytes is not None and info.st_size > max_bytes:
            raise OSError(errno.EFBIG, f"{info.st_size} bytes, over the "
                          f"{max_bytes} that hybridclf writes at most",
                          os.fspath(path))
        return fh.read()


def read_json(path, *, follow_links=True, max_values=_MAX_JSON_VALUES):
    """The JSON value in the regular file ``path``, within a memory budget.

    As :func:`read_regular_file` reads it (at most 64 MB), and refused
    unparsed when it holds more than ``max_values`` values: Python's parser
    makes an object of some 70 bytes from each ``{}`` of 3 bytes, so a
    ``model.json`` of 60 MB of ``[{},{},...`` took 1.7 GB to be refused.
    With ``follow_links=False``, a symbolic link (to a file outside a model
    directory from someone else) is refused unread, and the error says so.

    Raises
    ------
    OSError
        As :func:`read_regular_file`, or (``EFBIG``) over ``max_values``.

    ValueError
        Not JSON, or not UTF-8 (a :class:`UnicodeDecodeError`).

    RecursionError
        Nested deeper than Python's parser goes.
    """
    try:
        data = read_regular_file(path, follow_links=follow_links)
    except OSError as exc:
        if exc.errno == errno.ELOOP and os.path.islink(path):
            raise OSError(errno.ELOOP, "a symbolic link; a model directory holds "
                          "its own files: replace the link by a copy of the file "
                          "it names", os.fspath(path)) from exc
        raise
    values = sum(map(data.count, (b",", b":", b"{", b"[")))
    if values > max_values:
        raise OSError(errno.EFBIG, f"about {values} JSON values, over the "
                      f"{max_values} that hybridclf writes at most",
                      os.fspath(path))
    return json.loads(data)


def check_archive(path, error):
    """Refuse a zip archive that would unpack to far more than its size.

    ``model.skops`` and ``neighbours.npz`` are zip archives, which NumPy and
    skops unpack in memory: a deflated member of a few megabytes can unpack
    to gigabytes (a decompression bomb), an ``.npy`` header of a few bytes
    can declare an array of terabytes, and the manifest's hashes do not
    help against whoever wrote the whole directory. Before either is read,
    the sizes that its members declare (which Python's ``zipfile`` never
    reads past) must add up to at most 10 times the file's size on disk, or
    64 MB (hybridclf stores the members uncompressed), and no array may
    declare more bytes than its member holds
    (:func:`~hybridclf.utils._archive.archive_problem`).

    Parameters
    ----------
    path : str or os.PathLike
        The archive.

    error : type
        The exception raised on a problem (``ModelLoadError``).

    Raises
    ------
    error
        When the archive is not a zip file, or its members unpack to more
        than the limit; the message names the file.
    """
    path = os.fspath(path)
    try:
        problem = archive_problem(path, os.path.getsize(path))
    except (OSError, zipfile.BadZipFile, ValueError) as exc:
        raise error(f"The file {path!r} is not a readable zip archive ({exc}). "
                    "Copy the whole model directory again, or retrain the "
                    "model.") from exc
    if problem:
        raise error(
            f"The file {path!r} {problem}. Refusing to read it; copy the model "
            "directory again from where it was trained, or retrain the model.")

def _sha256_regular(path):
    """Hex SHA-256 of a regular file, read as :func:`read_regular_file` reads."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
                 | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", os.fspath(path))
        digest = hashlib.sha256()
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
        return digest.hexdigest()


def _read_listed(path, error):
    """The ``files`` of a manifest: plain relative names to hex digests."""
    try:
        listed = read_json(path, follow_links=False)["files"]
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
        raise error(f"The manifest {os.fspath(path)!r} is missing or unreadable "
                    f"({exc}); the model directory is incomplete. Copy the whole "
                    "directory again, or retrain the model.") from exc
    if not isinstance(listed, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in listed.items()):
        raise error(f"The 'files' of the manifest {os.fspath(path)!r} must map file "
                    "names to SHA-256 digests (str to str). Got "
                    f"{type(listed).__name__} {str(listed)[:80]!r}; restore the "
                    "manifest or retrain the model.")
    for name in listed:
        parts = PurePosixPath(name).parts
        if not name or "\0" in name or os.path.isabs(name) or ".." in parts:
            raise error(
                f"The manifest {os.fspath(path)!r} lists {name!r}, which is not a "
                "file inside the model directory (a model lists only its own "
                "files, by relative name). Refusing the model; restore the "
                "manifest or retrain the model.")
    return listed


def expects_manifest(directory, info=None):
    """Whether the files of ``directory`` must be checked against a manifest.

    Every directory that :func:`~hybridclf.save_model` writes has one, and
    its ``model.json`` says so (its ``manifest`` entry): a manifest deleted
    since must not turn the checks off. Only a directory saved before
    manifests (no such entry), or a folder without ``model.json`` (a bare
    embedding index), goes without.

    Parameters
    ----------
    directory : str or os.PathLike
        The model directory.

    info : dict or None, default=None
        Its ``model.json``, when already read; read here otherwise (one that
        exists but cannot be read counts as expecting a manifest).

    Returns
    -------
    expected : bool
        True when ``manifest.json`` is there or ``model.json`` records one.
    """
    directory = Path(directory)
    if (directory / MANIFEST).exists():
        return True
    if info is None:
        if not os.path.lexists(directory / _INFO):
            return False
        try:
            info = read_json(directory / _INFO, follow_links=False)
        except (OSError, ValueError, RecursionError):
            return True
    return not isinstance(info, dict) or bool(info.get("manifest"))


def write_manifest(directory):
    """Write ``manifest.json``: the SHA-256 of every other file of ``directory``.

    Parameters
    ----------
    directory : str or os.PathLike
        The model directory, with every other file written already.

    Returns
    -------
    files : dict of str to str
        Relative path to SHA-256, as written.
    """
    directory = Path(directory)
    files = {name: sha256_file(directory / name) for name in _files(directory)}
    text = json.dumps({"algorithm": "sha256", "files": files}, indent=2)
    (directory / MANIFEST).write_text(text + "\n", encoding="utf-8")
    return files


def check_manifest(directory, error):
    """Check every file listed in ``manifest.json`` against its SHA-256.

    Parameters
    ----------
    directory : str or os.PathLike
        The model directory.

    error : type
        The exception raised on a problem (``ModelLoadError``).

    Returns
    -------
    unlisted : list of str
        Files present but not in the manifest (added after the save); they
        are not read by hybridclf, and the caller warns about them.

    Raises
    ------
    error
        When the manifest is unreadable, or a listed file is missing or its
        content differs; the message names the file.
    """
    directory = Path(directory)
    listed = _read_listed(directory / MANIFEST, error)
    for name, expected in sorted(listed.items()):
        _check_file(directory, name, expected, error)
    return [name for name in _files(directory) if name not in listed]


def check_listed_file(directory, name, error):
    """Check one file of a model directory against its ``manifest.json``.

    For a file read on its own, without :func:`check_manifest` (the
    embedding index that the open-set checks and the nearest training photos
    read): a listed file must be there, unchanged, and an unlisted one was
    added after the save, so it is not the model's.

    Parameters
    ----------
    directory : str or os.PathLike
        The model directory.

    name : str
        The file's path relative to it.

    error : type
        The exception raised on a problem (``ModelLoadError``).

    Returns
    -------
    present : bool
        Whether the file is there to read: listed and unchanged, or present
        in a directory saved before manifests (see :func:`expects_manifest`).
        False when it is neither listed nor present.

    Raises
    ------
    error
        When the manifest is missing (though ``model.json`` records one) or
        unreadable, the file is listed but missing or changed, or present but
        not listed; the message names the file.
    """
    directory = Path(directory)
    file = directory / name
    if not expects_manifest(directory):
        return file.is_file()
    listed = _read_listed(directory / MANIFEST, error)
    if name in listed:
        _check_file(directory, name, listed[name], error)
        return True
    if file.exists():
        raise error(
            f"The file {os.fspath(file)!r} is not listed in {MANIFEST}: it was "
            "added after the model was saved (from another model?), so it is not "
            "this model's. Remove it, or copy the whole model directory again.")
    return False


def _check_file(directory, name, expected, error):
    """Refuse a listed file that is a link, not regular, or whose SHA-256 differs."""
    file = directory / name
    inside = os.path.realpath(directory)
    if file.is_symlink() or os.path.realpath(file.parent) != os.path.join(
            inside, *PurePosixPath(name).parent.parts):
        raise error(f"The file {os.fspath(file)!r} listed in {MANIFEST} is (or "
                    "lies behind) a symbolic link; a model directory holds its "
                    "own files. "
                    "Replace the link by a copy of the file it names.")
    if not file.is_file():
        problem = "not a regular file" if file.exists() else "missing"
        raise error(f"The file {os.fspath(file)!r} listed in {MANIFEST} is "
                    f"{problem}. Copy the whole model directory again.")
    try:
        actual = _sha256_regular(file)
    except OSError as exc:
        raise error(f"The file {os.fspath(file)!r} listed in {MANIFEST} cannot "
                    f"be read ({exc.strerror or exc}); only regular files are "
                    "read. Copy the whole model directory again.") from exc
    if actual != expected:
        raise error(
            f"The file {os.fspath(file)!r} was modified after the model was "
            f"saved: its SHA-256 differs from the one in {MANIFEST}. Refusing "
            "to load the model; restore the original file or retrain.")


def _exchange(a, b):
    """Swap two paths atomically with renameat2; False where unsupported."""
    libc_name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(libc_name, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError, TypeError):
        return False
    at_fdcwd = -100
    result = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b),
                       _RENAME_EXCHANGE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), os.fspath(a))


def _fsync_tree(directory):
    """Flush every file and folder of ``directory`` to disk."""
    for dirpath, _, filenames in os.walk(directory):
        for name in filenames:
            with open(os.path.join(dirpath, name), "rb") as fh:
                os.fsync(fh.fileno())
        _fsync_dir(dirpath)


def _fsync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def replace_directory(directory):
    """Yield a new empty folder; on success it replaces ``directory`` atomically.

    The folder is created beside ``directory`` (hidden name
    ``.<name>.saving-*``). When the ``with`` block ends without an error, its
    files are flushed to disk and it takes the place of ``directory`` (which
    may not exist yet); the old content is then deleted. On an error it is
    deleted and ``directory`` is untouched.

    Parameters
    ----------
    directory : str or os.PathLike
        The folder to replace or create.

    Yields
    ------
    new : pathlib.Path
        The folder to write the new content into.
    """
    target = Path(directory).resolve()  # a link: replace the folder it names
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        new = Path(tempfile.mkdtemp(prefix=f".{target.name}.saving-",
                                    dir=target.parent))
    except OSError as exc:
        raise ValueError(
            f"Cannot save to {os.fspath(directory)!r}: the new folder is written "
            f"beside it first, in {os.fspath(target.parent)!r}, which failed "
            f"({exc.strerror or exc}). Make that folder writable or save "
            "elsewhere.") from exc
    try:
        yield new
        os.chmod(new, 0o755)  # mkdtemp gives 0o700
        _fsync_tree(new)
        if not target.exists():
            os.rename(new, target)
        elif not _exchange(new, target):
            # no atomic exchange here: between the two renames the old model
            # lies whole at its hidden name
            old = new.with_name(new.name.replace(".saving-", ".old-"))
            os.rename(target, old)
            os.rename(new, target)
            new = old
        _fsync_dir(target.parent)
    finally:
        shutil.rmtree(new, ignore_errors=True)
