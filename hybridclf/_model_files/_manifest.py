"""The manifest of a model directory: the SHA-256 of each of its files.

``manifest.json`` lists the SHA-256 of every other file of the directory
(the model file, ``model.json``, the model card, and any file a later
version adds), written over the directory's content by
:func:`write_manifest`, not a fixed list. :func:`check_manifest` refuses a
directory whose listed file was edited, removed or replaced, naming the
file, and :func:`check_listed_file` does so for one file read on its own; a
manifest deleted from a directory whose ``model.json`` records one is
refused too (:func:`expects_manifest`).
"""

import hashlib
import json
import os
from pathlib import Path, PurePosixPath

from ..utils._archive import open_regular
from ..utils._paths import sha256_file
from ._read import read_json

__all__ = ["MANIFEST", "check_listed_file", "check_manifest", "expects_manifest",
           "write_manifest"]

#: Name of the manifest file in a model directory.
MANIFEST = "manifest.json"
# model.json: its "manifest" entry says that the directory was saved with one
_INFO = "model.json"


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


def _sha256_regular(path):
    """Hex SHA-256 of a regular file, read as :func:`read_regular_file` reads."""
    with open_regular(path) as fh:
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
    checked : dict of str to str
        The hex SHA-256 of each listed file, as checked: a caller that also
        compares a file with another record (``model.json``'s ``sha256``)
        uses it rather than reading and hashing the file a second time.

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
    return dict(listed), [name for name in _files(directory) if name not in listed]


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
