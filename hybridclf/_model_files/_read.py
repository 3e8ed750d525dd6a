"""Reading the files of a model directory within a memory budget.

A model directory may come from someone else, and reading it must not
stall the reader or take gigabytes: :func:`read_regular_file` reads only a
regular file (never waiting on a FIFO) of at most 64 MB, :func:`read_json`
refuses unparsed a JSON file of more values than hybridclf writes, and
:func:`check_archive` refuses a zip archive (``model.skops``,
``neighbours.npz``) that would unpack to far more than its size.
"""

import errno
import json
import os
import zipfile

from ..utils._archive import archive_problem, open_regular

__all__ = ["check_archive", "read_json", "read_regular_file"]

# model.json and manifest.json: a few KB, a few MB with thousands of classes
_MAX_JSON_BYTES = 64 << 20
# ... and at most this many values (each ',', ':', '{' and '[' counts one): a
# test_part.json of 200,000 test photos has 1.8 million. 64 MB of '[{},{},..'
# parsed to 1.4 GB of empty dicts; 2 Mi values take at most ~400 MB, however
# written (measured: 4 Mi '{"a":1}' values 270 MB, 4 Mi '"ab"' 300 MB)
_MAX_JSON_VALUES = 2 << 20


def read_regular_file(path, *, follow_links=True, max_bytes=_MAX_JSON_BYTES):
    """The bytes of the regular file ``path``; OSError for anything else.

    Opened without blocking, so that a FIFO in a model directory (or swapped
    in after a check) cannot hold a load or an ``/admin/reload`` for ever, and
    checked once open: a FIFO, socket, device or folder is refused, and so is
    a file over ``max_bytes`` (a ``model.json`` of gigabytes would take as
    much memory, several times). With ``follow_links=False`` a symbolic link
    is refused too.
    """
    with open_regular(path, follow_links=follow_links) as fh:
        size = os.fstat(fh.fileno()).st_size
        if max_bytes is not None and size > max_bytes:
            raise OSError(errno.EFBIG, f"{size} bytes, over the "
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
