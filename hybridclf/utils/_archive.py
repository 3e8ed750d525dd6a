"""Zip archives of arrays that are unpacked in memory: what they may cost.

NumPy's ``.npz`` files (the caches' shards, a model's ``neighbours.npz``)
and skops' ``model.skops`` are zip archives whose members are unpacked in
memory. Two kinds of file take far more memory than their size on disk,
and hybridclf writes neither:

- a deflated member unpacks to up to about 1000 times its size (a
  decompression bomb: a few megabytes of zeros become gigabytes), while
  hybridclf stores its members uncompressed;
- an ``.npy`` member whose header declares more bytes than the member
  holds: NumPy allocates the declared array before reading it (a header of
  a few bytes asks for terabytes).

:func:`archive_problem` says which, before anything is unpacked; the
callers word the error with the fix of their file
(:func:`hybridclf._model_files.check_archive`,
:class:`~hybridclf.utils._row_store.RowStore`). :func:`open_regular` opens
a file only if it is a regular one, without waiting on a FIFO.
"""

import errno
import math
import os
import stat
import zipfile

from numpy.lib import format as npy_format

__all__ = ["archive_problem", "open_regular"]

# an archive may unpack to at most this many times its size on disk, or to
# _UNPACKED_FLOOR bytes: hybridclf stores its members uncompressed (a ratio
# of 1), and a deflated member of zeros unpacks to 1000 times its size
_MAX_UNPACK_RATIO = 10
_UNPACKED_FLOOR = 64 << 20


def open_regular(path, *, follow_links=False):
    """Open a regular file to read (binary), never waiting on a FIFO or device.

    Opened without following a symbolic link as its last part (unless
    ``follow_links``) and without blocking, then checked: a FIFO, a socket, a
    device or a link raises OSError rather than stall the reader (opening a
    FIFO waits for a writer) or read a device's endless bytes. The one
    opener of :func:`hybridclf._model_files.read_regular_file`, the
    manifest's hashes and the row store's shards.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
    if not follow_links:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags)
    fh = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        fh.close()
        raise OSError(errno.EINVAL, "not a regular file", os.fspath(path))
    return fh


def archive_problem(file, size):
    """Why a zip archive of arrays must not be unpacked in memory, or None.

    Only the archive's directory and the ``.npy`` headers of its members
    are read.

    Parameters
    ----------
    file : str, os.PathLike or binary file object
        The archive (a file object is left open, at any position).

    size : int
        Its size on disk, in bytes.

    Returns
    -------
    problem : str or None
        The reason, in words, to follow the file's name: the bytes its
        members would unpack to against its size (above 10 times it, and
        64 MB), or the member whose header declares an array larger than
        the member. None for an archive as hybridclf writes them.

    Raises
    ------
    zipfile.BadZipFile, OSError, ValueError
        When ``file`` is not a readable zip archive.

    Examples
    --------
    >>> import io
    >>> import numpy as np
    >>> from hybridclf.utils._archive import archive_problem
    >>> buffer = io.BytesIO()
    >>> np.savez(buffer, x=np.zeros(10))
    >>> archive_problem(buffer, len(buffer.getvalue())) is None
    True
    >>> bomb = io.BytesIO()
    >>> np.savez_compressed(bomb, x=np.zeros(10_000_000))
    >>> print(archive_problem(bomb, len(bomb.getvalue())))  # doctest: +ELLIPSIS
    would unpack to 80000128 bytes, ... times its ... bytes on disk (at most ...
    """
    with zipfile.ZipFile(file) as archive:
        infos = archive.infolist()
        unpacked = sum(info.file_size for info in infos)
        limit = max(_MAX_UNPACK_RATIO * size, _UNPACKED_FLOOR)
        if unpacked > limit:
            return (
                f"would unpack to {unpacked} bytes, "
                f"{unpacked / max(size, 1):.0f} times its {size} bytes on disk "
                f"(at most {limit} are read): a decompression bomb, not a file "
                "that hybridclf wrote (it stores its arrays uncompressed)")
        for info in infos:
            declared = _declared_bytes(archive, info)
            if declared is not None and declared > info.file_size:
                return (
                    f"has a member {info.filename!r} whose header declares an "
                    f"array of {declared} bytes in {info.file_size}: not a file "
                    "that hybridclf wrote (NumPy would allocate the declared "
                    "size before reading it)")
    return None


def _declared_bytes(archive, info):
    """The bytes of the array an ``.npy`` member's header declares, or None."""
    if not info.filename.endswith(".npy"):
        return None
    with archive.open(info) as member:
        try:
            version = npy_format.read_magic(member)
            if version == (1, 0):
                shape, _, dtype = npy_format.read_array_header_1_0(member)
            else:
                shape, _, dtype = npy_format.read_array_header_2_0(member)
        except ValueError:  # not an .npy header: np.load reports it
            return None
    if dtype.hasobject:  # pickled objects: refused by allow_pickle=False
        return None
    return math.prod(shape) * dtype.itemsize
