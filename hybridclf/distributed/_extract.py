"""Writing the features of a fitted pipeline for many files, per partition.

:func:`extract_features` runs one task per partition (``_extract_partition``)
that writes the partition's Parquet file, and skips the partitions already
written by an earlier run, but for the rows of files changed since
(``_changed_files``), which the task computes again in their partition;
:class:`ExtractResult` says what it did.
"""

import logging
import os
import time
from dataclasses import dataclass, field

import numpy as np

from ..exceptions import ImageLoadError
from ..utils._optional import import_or_raise
from ._parquet import (
    _feature_table,
    _kept_stamps,
    _read_errors,
    _utf8_names,
    _with_rows,
)
from ._partitions import (
    _PART,
    _another_work,
    _changed,
    _check_code,
    _file_stamps,
    _files_digest,
    _model_digest,
    _part_name,
    _read_manifest,
    _same_work,
    _write_atomic,
    _write_manifest,
    partition_files,
)
from ._run import _run

__all__ = ["ExtractResult", "extract_features"]

logger = logging.getLogger(__name__)


def _features_of(pipe, files, batch_size, tick=None):
    """(features with NaN rows for unreadable files, reason per file or "").

    ``tick(n)`` (a progress bar's ``update``) is called with the files of
    each batch done.
    """
    from ..prediction import feature_blocks, transform_features

    width = sum(w for _, w in feature_blocks(pipe))
    out = np.full((len(files), width), np.nan, dtype=np.float32)
    errors = [""] * len(files)
    for start in range(0, len(files), batch_size):
        rows = list(range(start, min(start + batch_size, len(files))))
        try:
            out[rows] = transform_features(pipe, [files[i] for i in rows])
        except ImageLoadError as exc:
            failed = dict(exc.failures)
            for i in rows:
                errors[i] = failed.get(files[i], "")
            rows = [i for i in rows if not errors[i]]
            if rows:
                out[rows] = transform_features(pipe, [files[i] for i in rows])
        if tick is not None:
            tick(min(batch_size, len(files) - start))
    return out, errors


def _extract_partition(pipe, files, index, output, batch_size, cwd, changed=(),
                       tick=None):
    """Task: write the features of one partition; return its unreadable files.

    Relative file names are read from ``cwd``, the caller's working folder,
    and written as given. For a partition in ``changed``, ``files`` are
    those of its files that changed since it was written: their rows are
    computed and replace the old ones (a task run again does it again).
    ``tick`` is passed on to ``_features_of``.
    """
    path = os.path.join(output, _part_name(index))
    if index not in changed and os.path.exists(path):
        # a task run again after its worker died, having written its part
        if tick is not None:
            tick(len(files))
        return _read_errors(path)
    stamps = _file_stamps(files, cwd)  # before the files are read
    features, errors = _features_of(
        pipe, [os.path.join(cwd, f) for f in files], batch_size, tick)
    table = _feature_table(files, features, errors, stamps)
    if index in changed:
        pq = import_or_raise("pyarrow.parquet", "Parquet output")
        table = _with_rows(pq.read_table(path), table)
    _write_atomic(table, path)
    return [(f, e) for f, e in zip(table["file"].to_pylist(),
                                   table["error"].to_pylist()) if e]


@dataclass
class ExtractResult:
    """What :func:`extract_features` did.

    Attributes
    ----------
    output : str
        The output folder.

    n_files : int
        Files in the list.

    n_partitions : int
        Partitions of the list.

    computed : list of int
        Partitions computed by this run.

    skipped : list of int
        Partitions whose file existed already (an earlier run); the rows of
        their files that changed since were computed again (``changed``).

    errors : list of (str, str)
        ``(file, reason)`` of every file that could not be read, from every
        partition, in file order.

    seconds : float
        Wall time of the run.

    changed : list of str
        Files whose rows an earlier run wrote, computed again because the
        file changed since (another size or modification time: edited, or
        replaced by another photo of the same name), in file order.
    """

    output: str
    n_files: int
    n_partitions: int
    computed: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    seconds: float = 0.0
    changed: list = field(default_factory=list)


def _feature_info(pipe):
    from ..pipeline import get_feature_union
    from ..prediction import feature_blocks

    union = get_feature_union(pipe)
    try:
        names = [str(n) for n in union.get_feature_names_out()]
    except (AttributeError, ValueError):  # a block without feature names
        names = None
    return names, [[name, width] for name, width in feature_blocks(pipe)]


def extract_features(pipe, files, output, *, client=None, partition_size=256,
                     batch_size=32, progress=False):
    """Write the features of a fitted pipeline for many files, per partition.

    The features are what the pipeline's classifier receives
    (:func:`hybridclf.prediction.transform_features`). The files are cut into
    partitions of ``partition_size`` (:func:`partition_files`); each is
    written to ``output/part-<i>.parquet`` by the process that computed it.
    Partitions already in ``output`` are not computed again, but for the
    rows of files that changed since (see Notes).

    Parameters
    ----------
    pipe : fitted Pipeline
        A hybrid pipeline, as from :func:`~hybridclf.load_model`.

    files : sequence of str
        Image files, as from :func:`hybridclf.prediction.iter_image_files`.
        On a cluster, every worker must read them at these paths; relative
        ones are taken from this process's working folder. The ``file``
        column holds them as given.

    output : str or os.PathLike
        The output folder (a Parquet dataset); created if missing. On a
        cluster, every worker must write it at this path (made absolute).

    client : distributed.Client or None, default=None
        Run the partitions on this Dask cluster; None runs them here, one
        after the other.

    partition_size : int, default=256
        Files per partition: the unit of work, of retry and of output.

    batch_size : int, default=32
        Images read and transformed at once within a partition.

    progress : bool, default=False
        Show a progress bar over the images.

    Returns
    -------
    result : ExtractResult
        Partitions computed and skipped, unreadable files, time.

    Raises
    ------
    ValueError
        When ``output`` holds partitions of another model or partition
        size, or of a file that ``files`` no longer holds (a file list that
        only adds files is computed for those: see Notes).

    Notes
    -----
    A rerun with files added to the list (photos added to a folder)
    computes only the added files, in list order, in partitions numbered
    after the last ones; the manifest keeps each run's first partition,
    number of files and their names' SHA-256 (``runs``), so a stopped run
    is taken up again with the same partitions.

    Each row keeps its file's size and modification time
    (:data:`~hybridclf.distributed.STAMP_COLUMNS`). A rerun computes again
    the rows of the files whose size or time is another (a photo edited, or
    replaced by another of the same name), in their partitions, and logs
    how many (``changed``). A part without these columns (written by hand)
    has all its rows computed again; a folder written by an older
    hybridclf is refused, as every folder of other code.

    See Also
    --------
    read_features : The output as NumPy arrays.
    """
    started = time.perf_counter()
    files = [os.fspath(f) for f in files]
    output = os.path.abspath(output)  # where the workers write
    os.makedirs(output, exist_ok=True)
    names, blocks = _feature_info(pipe)
    manifest = {
        "kind": "extract", "partition_size": partition_size, "n_files": len(files),
        "files_sha256": _files_digest(files), "model": _model_digest(pipe),
        "blocks": blocks, "feature_names": names,
    }
    done = {int(m.group(1)) for m in map(_PART.match, os.listdir(output)) if m}
    first, new = _new_files(output, files, manifest, done)
    partitions = {first + i: part
                  for i, part in enumerate(partition_files(new, partition_size))}
    todo = [i for i in partitions if i not in done]
    skipped = sorted(done)
    if skipped:
        logger.info("%d partitions are in %s already", len(skipped), output)
    changed = _changed_files(output, files, skipped)
    partitions.update(changed)
    errors = {}
    for i, failures in _run(_extract_partition, pipe, partitions,
                            sorted([*todo, *changed]),
                            (output, batch_size, os.getcwd(), frozenset(changed)),
                            client, progress, "extract"):
        errors[i] = failures
    for i in skipped:
        if i not in errors:
            errors[i] = _read_errors(os.path.join(output, _part_name(i)))
    # temporary files of tasks killed with their worker (their partition was
    # written again by the retry)
    for name in os.listdir(output):
        if name.startswith(".part-") and name.endswith(".tmp"):
            os.remove(os.path.join(output, name))
    return ExtractResult(
        output=output, n_files=len(files), n_partitions=len(set(done) | set(todo)),
        computed=todo, skipped=skipped,
        errors=[e for i in sorted(errors) for e in errors[i]],
        seconds=time.perf_counter() - started,
        changed=[f for i in sorted(changed) for f in changed[i]],
    )


def _changed_files(output, files, parts):
    """``{partition: its files that changed since it was written}``.

    A file changed when its size or modification time is not the one its
    row kept; every file of a part without stamps counts as changed. A
    name of a part that ``files`` no longer holds is left alone
    (``_new_files`` refuses those).
    """
    by_name = dict(zip(_utf8_names(files), files))
    cwd, changed = os.getcwd(), {}
    for i in parts:
        names, kept = _kept_stamps(os.path.join(output, _part_name(i)))
        held = [(k, by_name[name]) for k, name in enumerate(names)
                if name in by_name]
        stamps = _file_stamps([f for _, f in held], cwd)
        kept = None if kept is None else [kept[k] for k, _ in held]
        if stale := [held[k][1] for k in _changed(kept, stamps)]:
            changed[i] = stale
    if changed:
        n = sum(map(len, changed.values()))
        logger.warning(
            "%d file(s) changed since their features were written to %s (such "
            "as %r): computing them again", n, output, changed[min(changed)][0])
    return changed


def _new_files(output, files, manifest, done):
    """(number of the first partition to write, the files it starts with).

    The partitions of an output folder come in runs: the first cuts its file
    list into partitions 0, 1, ...; a later run with the same model and
    partition size whose list holds files that no partition holds yet
    (photos added to the folder) cuts those, in list order, into
    partitions numbered after the last run's. Each run is kept in the
    manifest's ``runs`` as ``[first partition, number of files, SHA-256 of
    their names]``, so a run that was stopped is taken up again where it
    stopped: the same files, the same partitions. The manifest is written
    (updated) here.
    """
    old = _read_manifest(output)
    runs = [[0, len(files), manifest["files_sha256"]]]
    if old is None:
        _write_manifest(output, {**manifest, "runs": runs})
        return 0, files
    if not _same_work(old, manifest, keys=("kind", "partition_size")):
        raise _another_work(output, old)
    _check_code(output, old, manifest)  # rows of other code are not mixed in
    runs = old.get("runs") or [[0, old.get("n_files"), old.get("files_sha256")]]
    last, n_last, digest = runs[-1]
    size = manifest["partition_size"]
    names = _utf8_names(files)
    earlier = _part_files(output, [i for i in done if i < last])
    rest = [f for f, name in zip(files, names) if name not in earlier]
    # the last run, stopped, is taken up again: its files are all in ``rest``
    resumed = len(rest) == n_last and _files_digest(rest) == digest
    held = earlier if resumed else earlier | _part_files(
        output, [i for i in done if i >= last])
    # a file gone from an earlier run's partition too: its row would stay
    gone = held - set(names)
    if gone:
        raise ValueError(
            f"The output folder {output!r} holds the features of "
            f"{len(gone)} file(s) that are no longer among the inputs (such "
            f"as {min(gone)!r}): files were removed or renamed since it was "
            "written. Use a new output folder, or delete this one to start "
            "again.")
    if resumed:
        new, first = rest, last
    else:
        new = [f for f, name in zip(files, names) if name not in held]
        first = last + -(-n_last // size)  # after the last run's partitions
        if new:
            runs.append([first, len(new), _files_digest(new)])
    _write_manifest(output, {**manifest, "runs": runs})
    return first, new


def _part_files(output, parts):
    """The names in the ``file`` column of the partitions ``parts``."""
    if not parts:
        return set()
    pq = import_or_raise("pyarrow.parquet", "Parquet output")
    return {name for i in parts for name in pq.read_table(
        os.path.join(output, _part_name(i)), columns=["file"])["file"].to_pylist()}
