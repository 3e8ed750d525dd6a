"""Where hybridclf keeps its on-disk caches, the hash of a file, output folders."""

import contextlib
import hashlib
import os
import uuid

__all__ = ["cache_root", "check_output_dir", "make_output_dir", "sha256_file",
           "written_whole"]


def cache_root():
    """Folder for hybridclf's on-disk caches.

    ``$HYBRIDCLF_CACHE_DIR`` when set, else ``~/.cache/hybridclf``. Exported
    ONNX graphs go to its ``onnx`` folder and the features of training images
    to its ``features`` folder; deleting it only costs recomputation.
    """
    return os.environ.get("HYBRIDCLF_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "hybridclf")


def sha256_file(path):
    """Hex SHA-256 of a file's bytes, read in 1 MB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()



def check_output_dir(path, *, parameter="output_dir"):
    """Raise a ``ValueError`` naming ``parameter`` if folder ``path`` cannot be made.

    It cannot when ``path`` or the nearest of its parents that exists is a
    file. A command checks this before its work, so that it is not lost to a
    bare ``FileExistsError`` at the end; nothing is created.
    """
    existing = os.path.abspath(path)
    while not os.path.exists(existing) and os.path.dirname(existing) != existing:
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ValueError(
            f"The '{parameter}' folder {os.fspath(path)!r} cannot be made: "
            f"{existing!r} is a file. Pass a new or existing folder."
        )
    return path


def make_output_dir(path, *, parameter="output_dir"):
    """Make the folder ``path`` (and its parents) unless it exists; return it.

    See :func:`check_output_dir` for the error when a file is in the way.
    """
    check_output_dir(path, parameter=parameter)
    os.makedirs(path, exist_ok=True)
    return path


@contextlib.contextmanager
def written_whole(path):
    """A temporary name beside ``path`` to write to, renamed onto it at the end.

    The ``with`` block writes the file under the yielded name (hidden, unique
    to the call, in the same folder); when the block ends without an error
    the file replaces ``path`` in one rename, so a reader, another process or
    a run killed half-way never finds half a file under ``path``. Whatever
    happens, no temporary file is left behind (a full disk leaves nothing).
    A write that fails with an :class:`OSError` naming no file (a full
    disk: "[Errno 28] No space left on device", or pyarrow's "Error writing
    bytes to file") is raised again, with its ``errno``, naming ``path`` and
    its folder: ``extract`` on a full disk said only that.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write.

    Yields
    ------
    tmp : str
        The name to write to.
    """
    folder, name = os.path.split(os.fspath(path))
    tmp = os.path.join(folder, f".{name}.{uuid.uuid4().hex}.tmp")
    try:
        try:
            yield tmp
        except OSError as exc:
            if exc.filename is not None:
                raise
            what = os.strerror(exc.errno) if exc.errno else str(exc)
            raise OSError(exc.errno, (
                f"Could not write {os.fspath(path)!r} ({what}); the file is as "
                f"it was. Free space in {os.path.abspath(folder)!r}, or write to "
                "another folder.")) from exc
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            os.remove(tmp)
