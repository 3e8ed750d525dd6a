"""Writing the features of a fitted pipeline for many files, per partition.

:func:`extract_features` runs one task per partition (``_extract_partition``)
that writes the partition's Parquet file, and skips the partitions already
written by an earlier run; :class:`ExtractResult` says what it did.
"""

import logging
import os
import time
from dataclasses import dataclass, field

import numpy as np

from ..exceptions import ImageLoadError
from ._parquet import _feature_table, _read_errors
from ._partitions import (
    _PART,
    _check_manifest,
    _files_digest,
    _model_digest,
    _part_name,
    _write_atomic,
    partition_files,
)
from ._run import _run

__all__ = ["ExtractResult", "extract_features"]

logger = logging.getLogger(__name__)


def _features_of(pipe, files, batch_size):
    """(features with NaN rows for unreadable files, reason per file or "")."""
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
    return out, errors


def _extract_partition(pipe, files, index, output, batch_size, cwd):
    """Task: write the features of one partition; return its unreadable files.

    Relative file names are read from ``cwd``, the caller's working folder,
    and written as given.
    """
    path = os.path.join(output, _part_name(index))
    if os.path.exists(path):
        # a task run again after its worker died, having written its part
        return _read_errors(path)
    features, errors = _features_of(
        pipe, [os.path.join(cwd, f) for f in files], batch_size)
    _write_atomic(_feature_table(files, features, errors), path)
    return [(f, e) for f, e in zip(files, errors) if e]


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
        Partitions whose file existed already (an earlier run).

    errors : list of (str, str)
        ``(file, reason)`` of every file that could not be read, from every
        partition, in file order.

    seconds : float
        Wall time of the run.
    """

    output: str
    n_files: int
    n_partitions: int
    computed: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    seconds: float = 0.0


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
    Partitions already in ``output`` are not computed again.

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
        When ``output`` holds partitions of another model, file list or
        partition size.

    See Also
    --------
    read_features : The output as NumPy arrays.
    """
    started = time.perf_counter()
    files = [os.fspath(f) for f in files]
    output = os.path.abspath(output)  # where the workers write
    partitions = partition_files(files, partition_size)
    os.makedirs(output, exist_ok=True)
    names, blocks = _feature_info(pipe)
    _check_manifest(output, {
        "kind": "extract", "partition_size": partition_size, "n_files": len(files),
        "files_sha256": _files_digest(files), "n_partitions": len(partitions),
        "model": _model_digest(pipe), "blocks": blocks, "feature_names": names,
    })
    done = {int(m.group(1)) for m in map(_PART.match, os.listdir(output)) if m}
    todo = [i for i in range(len(partitions)) if i not in done]
    skipped = [i for i in range(len(partitions)) if i in done]
    if skipped:
        logger.info("%d of %d partitions are in %s already", len(skipped),
                    len(partitions), output)
    errors = {}
    for i, failures in _run(_extract_partition, pipe, partitions, todo,
                            (output, batch_size, os.getcwd()), client, progress,
                            "extract"):
        errors[i] = failures
    for i in skipped:
        errors[i] = _read_errors(os.path.join(output, _part_name(i)))
    # temporary files of tasks killed with their worker (their partition was
    # written again by the retry)
    for name in os.listdir(output):
        if name.startswith(".part-") and name.endswith(".tmp"):
            os.remove(os.path.join(output, name))
    return ExtractResult(
        output=output, n_files=len(files), n_partitions=len(partitions),
        computed=todo, skipped=skipped,
        errors=[e for i in sorted(errors) for e in errors[i]],
        seconds=time.perf_counter() - started,
    )
