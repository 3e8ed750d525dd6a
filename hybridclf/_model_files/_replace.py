"""Atomic replacement of a model directory.

:func:`replace_directory` writes a new directory beside the target (same
parent, hidden temporary name), flushes it to disk, and swaps it in with
one ``renameat2(RENAME_EXCHANGE)`` where the system has it (Linux 3.15+,
``_exchange``), else with two renames. A crash at any moment leaves the old
directory or the new one whole.
"""

import ctypes
import ctypes.util
import errno
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

__all__ = ["replace_directory"]

_RENAME_EXCHANGE = 2  # linux/fs.h


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
