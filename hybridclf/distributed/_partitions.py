"""Partitions of a file list, and the output folder that holds their files.

:func:`partition_files` cuts a file list, in its order, into partitions;
partition ``i`` is written to ``part-<i>.parquet`` under a hidden temporary
name first (``_write_atomic``), and the folder's manifest (:data:`MANIFEST`)
ties it to one model, file list and partition size (``_check_manifest``;
``extract_features`` lets a later run add files, in partitions of their
own), and to the code that computes the rows (``_check_code``): partitions
written by another version of hybridclf, or with other versions of the
libraries it computes with, are never resumed. Each row keeps what its
file's content was (:data:`STAMP_COLUMNS`: size and modification time,
``_file_stamps``), so a rerun computes again the rows of files edited or
replaced in place since (``_changed``) rather than keep them stale.
"""

import hashlib
import json
import os
import re
from pathlib import Path

from ..utils._optional import import_or_raise
from ..utils._paths import written_whole
from ..utils._row_store import file_digest, library_versions

__all__ = ["MANIFEST", "STAMP_COLUMNS", "partition_files"]

# the libraries whose versions can change a partition's rows: decoding, the
# feature blocks, the CNN's runtime, the classifier
_LIBRARIES = ("numpy", "scipy", "scikit-learn", "imbalanced-learn", "pillow",
              "opencv-contrib-python-headless", "opencv-python-headless",
              "opencv-python", "scikit-image", "onnxruntime", "torch",
              "torchvision")

#: The manifest of an output folder: partitioning, file list hash, feature names.
MANIFEST = "_hybridclf.json"

_PART = re.compile(r"^part-(\d{5,})\.parquet$")

#: The columns of a partition that say which content of each file its row is
#: of: the file's size and modification time in nanoseconds, as make and
#: rsync tell a changed file (null where the file could not be looked up).
STAMP_COLUMNS = ("file_size", "file_mtime_ns")


def partition_files(files, partition_size):
    """Cut a file list, in its order, into partitions of ``partition_size`` files.

    Parameters
    ----------
    files : sequence of str
        The files.

    partition_size : int
        Files per partition (the last one may hold fewer).

    Returns
    -------
    partitions : list of list of str
        The partitions, in order.

    Examples
    --------
    >>> from hybridclf.distributed import partition_files
    >>> partition_files(["a", "b", "c", "d", "e"], 2)
    [['a', 'b'], ['c', 'd'], ['e']]
    """
    if not isinstance(partition_size, int) or partition_size < 1:
        raise ValueError(
            "The 'partition_size' parameter must be an int >= 1. Got "
            f"{partition_size!r} instead."
        )
    files = list(files)
    return [files[i : i + partition_size]
            for i in range(0, len(files), partition_size)]


def _file_stamps(files, cwd):
    """``(size, mtime_ns)`` of each file (relative names from ``cwd``).

    ``(None, None)`` for a file that cannot be looked up (gone, a broken
    link): its row is an error, kept while the file stays so. One
    ``os.stat`` a file, taken before the file is read, so a file changed
    while it is read has a newer stamp on the next run than the one kept.
    Size and time rather than a hash of the bytes: a rerun stamps every
    file of the list, and hashing reads them all (the whole folder of
    photos for the few added), where a stat reads none.
    """
    stamps = []
    for name in files:
        try:
            st = os.stat(os.path.join(cwd, name))
        except (OSError, ValueError):  # ValueError: a NUL in the name
            stamps.append((None, None))
        else:
            stamps.append((st.st_size, st.st_mtime_ns))
    return stamps


def _changed(kept, stamps):
    """Positions whose kept stamp is not ``stamps``' (None: not kept, unknown)."""
    if kept is None:
        return list(range(len(stamps)))
    return [i for i, (old, now) in enumerate(zip(kept, stamps)) if old != now]


def _part_name(index):
    return f"part-{index:05d}.parquet"


def _files_digest(files):
    digest = hashlib.sha256()
    for name in files:
        digest.update(os.fspath(name).encode("utf-8", "surrogateescape") + b"\0")
    return digest.hexdigest()


def _model_digest(pipe):
    """A digest of a fitted pipeline's content: partitions of another model
    (other blocks, or the same blocks fitted again) are never taken as done.
    None without a pipeline (rows rebuilt from partitions all written).
    The threads of the image steps (``--n-jobs``) are left out: they change
    no feature, so a rerun with other threads resumes."""
    import joblib

    if pipe is None:
        return None
    threads = {name: value for name, value in pipe.get_params().items()
               if name.endswith(("load__n_jobs", "augment__n_jobs",
                                 "extract__n_jobs"))}
    try:
        pipe.set_params(**dict.fromkeys(threads, 1))
        return joblib.hash(pipe)
    finally:
        pipe.set_params(**threads)


def _write_atomic(table, path):
    """Write a Parquet file under a hidden name, then rename it into place."""
    pq = import_or_raise("pyarrow.parquet", "Parquet output")
    with written_whole(path) as tmp:
        pq.write_table(table, tmp)


def _code_digest():
    """A digest of the code that computes a partition's rows.

    The content of every source file of hybridclf (its version number alone
    does not change with every release or edit) and the versions of
    :data:`_LIBRARIES`: a rerun after an upgrade never takes the rows of the
    older code as done, as :class:`~hybridclf.training.FeatureCache` keys its
    features by the code that computed them.
    """
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        name = path.relative_to(root).as_posix()
        digest.update(f"{name}\0{file_digest(path)}\0".encode())
    digest.update(json.dumps(library_versions(_LIBRARIES), sort_keys=True).encode())
    return digest.hexdigest()[:32]


def _read_manifest(output):
    """The manifest of an output folder; None when it has none and is empty.

    Raises ValueError for a manifest that is not hybridclf's, and for a
    folder of other files (a dataset, a model directory...).
    """
    path = os.path.join(output, MANIFEST)
    if os.path.exists(path):
        try:
            with open(path, "rb") as fh:
                old = json.loads(fh.read())
        except (OSError, ValueError) as exc:
            old = exc
        if not isinstance(old, dict):
            raise ValueError(
                f"The output folder {output!r} holds a {MANIFEST} that is not the "
                f"one hybridclf writes ({str(old)[:80]}). Delete the folder to start "
                "again, or use a new output folder.")
        return old
    others = sorted(n for n in os.listdir(output)
                    if not n.startswith(f".{MANIFEST}."))  # a write cut short
    if others:
        # not a folder of partitions: a dataset, a model directory, ...
        raise ValueError(
            f"The output folder {output!r} is not empty ({len(others)} "
            f"entries, such as {others[0]!r}) and holds no partitions written "
            f"by hybridclf ({MANIFEST} is missing), so files of its own could be "
            "mixed with or taken for partitions. Use a new or empty output "
            "folder."
        )
    return None


def _write_manifest(output, manifest):
    # written whole or not at all: a rerun reads it to resume; with the code
    # that computes the rows (_check_code)
    path = os.path.join(output, MANIFEST)
    with written_whole(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        json.dump({**manifest, "code": _code_digest()}, fh)


def _same_work(old, manifest, keys=("kind", "partition_size", "n_files",
                                    "files_sha256", "neighbours", "answers")):
    """Whether a folder's manifest is of the work ``manifest`` describes."""
    if manifest.get("model") is not None:
        keys += ("model",)
    return all(old.get(k) == manifest.get(k) for k in keys)


def _another_work(output, old):
    return ValueError(
        f"The output folder {output!r} holds partitions of another model, "
        "file list, partition size, number of neighbours or open-set "
        "settings (threshold, OOD check, top-k) "
        f"({old.get('n_files')} files in partitions of "
        f"{old.get('partition_size')}). Use a new output folder, or "
        "delete this one to start again."
    )


def _check_code(output, old, manifest):
    """Refuse partitions of other code where rows are to be computed.

    A folder whose partitions another version of hybridclf (or of the
    libraries it computes with) wrote would mix their rows with this run's.
    Reading a finished folder (no ``model`` in ``manifest``) is not refused.
    """
    if manifest.get("model") is not None and old.get("code") != _code_digest():
        raise ValueError(
            f"The output folder {output!r} holds partitions written by "
            "another version of hybridclf or of the libraries it computes "
            "with (an upgrade since, or an edited checkout): its rows "
            "could differ from the ones this run would compute, and the "
            "two would be mixed. Delete the folder to compute them all "
            "again, or use a new output folder.")


def _check_manifest(output, manifest):
    """Refuse a folder of other work or code; write ``manifest`` into a new one."""
    old = _read_manifest(output)
    if old is None:
        _write_manifest(output, manifest)
    elif not _same_work(old, manifest):
        raise _another_work(output, old)
    else:
        _check_code(output, old, manifest)
