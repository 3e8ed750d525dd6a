"""Batch work on many images, in partitions, on this machine or a Dask cluster.

For collections that outgrow one machine, hybridclf hands its work to
`Dask <https://distributed.dask.org>`_ (``dask.distributed``), an existing
distributed engine, instead of anything home-made:

- :func:`extract_features` writes the features of a fitted pipeline for a
  list of files to a folder of Parquet files, one per **partition**;
- :func:`predict_partitioned` predicts the files partition by partition and
  returns the rows of :func:`hybridclf.prediction.predict_files`, in order;
- :func:`dask_client` opens a client on a new ``LocalCluster`` (``local:N``)
  or on a running scheduler (``tcp://host:port``); inside
  ``joblib.parallel_config(backend="dask")`` the cross-validation and the
  searches of :func:`hybridclf.training.train_model` run on its workers.

How the work is split and sent:

- the file list is cut, in the given order, into partitions of
  ``partition_size`` files (:func:`partition_files`): partition ``i`` always
  holds the same files, so its output is ``part-<i>.parquet``;
- the fitted pipeline is sent to every worker **once** (``client.scatter(...,
  broadcast=True)``) and each task gets a reference to it. A CNN block never
  ships a network or a CUDA context: it pickles its weights and builds the
  network on the worker, on first use;
- a partition's file is written under a hidden temporary name and renamed
  when complete, so a killed task leaves no half file; a rerun on the same
  output folder only computes the partitions whose file is missing. When a
  worker dies, Dask runs its tasks again on another one; a task that finds its
  partition already written does nothing, so no row is lost or duplicated;
- a file that cannot be read gives a row with its ``error``; it never stops
  the run.

The Parquet files of :func:`extract_features` have one row per file and the
columns ``file`` (string), ``error`` (string, ``""`` when read) and
``features`` (``fixed_size_list<float32>``, null when unreadable). The folder
is a Parquet dataset: ``pyarrow.parquet.read_table(folder)``,
``pandas.read_parquet(folder)``, DuckDB or Spark read it as one table;
:func:`read_features` returns it as NumPy arrays in file order. The column
names of the features (``hog__...``, ``color__red_bin3``, ...) and the
feature blocks are in ``_hybridclf.json`` beside the parts.

Dask and pyarrow are optional: ``pip install 'hybridclf[scale]'``.
"""

import hashlib
import json
import logging
import os
import re
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from .exceptions import ClusterError, ImageLoadError
from .utils._optional import import_or_raise

__all__ = [
    "ExtractResult",
    "dask_client",
    "extract_features",
    "parse_scheduler",
    "partition_files",
    "predict_partitioned",
    "read_features",
]

logger = logging.getLogger(__name__)

#: The manifest of an output folder: partitioning, file list hash, feature names.
MANIFEST = "_hybridclf.json"

_PART = re.compile(r"^part-(\d{5,})\.parquet$")
_SCHEMES = ("tcp", "tls", "ws", "wss", "ucx", "inproc")
_TRIM_KEY = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"


# -- the cluster ------------------------------------------------------------------
def parse_scheduler(address):
    """Check a ``--scheduler`` value: ``local:N`` or a scheduler address.

    Parameters
    ----------
    address : str
        ``"local:N"`` starts a ``LocalCluster`` of N worker processes on
        this machine (``"local"`` alone: one per core); a URL such as
        ``"tcp://10.0.0.5:8786"`` joins the running scheduler there.

    Returns
    -------
    kind : {"local", "remote"}
        What to do.

    value : int or str
        The number of local workers, or the address.

    Raises
    ------
    ValueError
        When the value is neither.

    Examples
    --------
    >>> from hybridclf.distributed import parse_scheduler
    >>> parse_scheduler("local:2")
    ('local', 2)
    >>> parse_scheduler("tcp://10.0.0.5:8786")
    ('remote', 'tcp://10.0.0.5:8786')
    """
    text = str(address).strip()
    match = re.fullmatch(r"local(?::(\d+))?", text)
    if match:
        n = int(match.group(1)) if match.group(1) else (os.cpu_count() or 1)
        if n >= 1:
            return "local", n
    elif re.fullmatch(r"[a-z]+://\S+", text) and text.split(":")[0] in _SCHEMES:
        return "remote", text
    raise ValueError(
        "The '--scheduler' option must be 'local:N' (N >= 1 worker processes on "
        "this machine) or the address of a running Dask scheduler such as "
        f"'tcp://10.0.0.5:8786' (schemes: {', '.join(_SCHEMES)}). Got "
        f"{address!r} instead. Start a scheduler with 'dask scheduler' and "
        "workers with 'dask worker tcp://HOST:8786'."
    )


@contextmanager
def dask_client(scheduler, *, timeout=30):
    """A ``dask.distributed.Client`` for a ``--scheduler`` value; closed on exit.

    Parameters
    ----------
    scheduler : str
        ``"local:N"`` starts a ``LocalCluster`` of N single-threaded worker
        processes on 127.0.0.1 (OpenCV on one thread, glibc's default
        ``malloc`` trimming), closed on exit; an address such as
        ``"tcp://host:8786"`` connects to a running scheduler (its workers
        are left running). See :func:`parse_scheduler`.

    timeout : float, default=30
        Seconds to wait for the scheduler.

    Yields
    ------
    client : distributed.Client
        The client.

    Raises
    ------
    ClusterError
        When the scheduler cannot be reached.
    """
    kind, value = parse_scheduler(scheduler)
    distributed = import_or_raise("distributed", "hybridclf on a Dask cluster")
    cluster = None
    try:
        if kind == "local":
            dask = import_or_raise("dask", "hybridclf on a Dask cluster")
            # Dask's default MALLOC_TRIM_THRESHOLD_ turns off glibc's dynamic
            # mmap threshold: every large image buffer is then mapped and
            # faulted in again, which made the feature steps about twice as
            # slow. One OpenCV thread per worker, as one task runs at a time.
            with dask.config.set({_TRIM_KEY: None}):
                cluster = distributed.LocalCluster(
                    n_workers=value, threads_per_worker=1, processes=True,
                    host="127.0.0.1", dashboard_address=":0",
                    silence_logs=logging.ERROR,
                    env={"OPENCV_FOR_THREADS_NUM": "1"},
                )
            client = distributed.Client(cluster, timeout=timeout)
        else:
            client = distributed.Client(value, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        if cluster is not None:
            cluster.close()
        raise ClusterError(
            f"Cannot reach the Dask scheduler {scheduler!r} given as "
            f"'--scheduler' ({exc}). Check that 'dask scheduler' runs there and "
            "that its port is open from this machine, or use 'local:N'."
        ) from exc
    logger.info("Dask client on %s with %d workers", client.scheduler.address,
                len(client.scheduler_info()["workers"]))
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


# -- partitions -------------------------------------------------------------------
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


def _part_name(index):
    return f"part-{index:05d}.parquet"


def _files_digest(files):
    digest = hashlib.sha256()
    for name in files:
        digest.update(os.fspath(name).encode("utf-8", "surrogateescape") + b"\0")
    return digest.hexdigest()


def _one_thread_per_task(pipe):
    """A copy of ``pipe`` whose image steps use one thread (tasks run in parallel)."""
    import pickle

    from .pipeline import set_image_params

    return set_image_params(pickle.loads(pickle.dumps(pipe)), n_jobs=1)


def _progress_bar(progress, total, desc):
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="image")


def _run(func, pipe, partitions, todo, args, client, progress, desc):
    """Call ``func(pipe, files, index, *args)`` for each index in ``todo``.

    Yields ``(index, result)`` as partitions finish: in order here, in any
    order on ``client``.
    """
    bar = _progress_bar(progress, sum(len(partitions[i]) for i in todo), desc)
    try:
        if client is None:
            for i in todo:
                result = func(pipe, partitions[i], i, *args)
                if bar is not None:
                    bar.update(len(partitions[i]))
                yield i, result
            return
        if not todo:
            return
        distributed = import_or_raise("distributed", "hybridclf on a Dask cluster")
        # the fitted pipeline goes to every worker once, not with every task
        remote = client.scatter(_one_thread_per_task(pipe), broadcast=True,
                                hash=False)
        futures = {client.submit(func, remote, partitions[i], i, *args,
                                 pure=False): i for i in todo}
        try:
            for future in distributed.as_completed(futures):
                i = futures[future]
                result = future.result()
                if bar is not None:
                    bar.update(len(partitions[i]))
                yield i, result
        finally:
            client.cancel(list(futures))
            client.cancel([remote])
    finally:
        if bar is not None:
            bar.close()


# -- feature extraction -------------------------------------------------------
def _features_of(pipe, files, batch_size):
    """(features with NaN rows for unreadable files, reason per file or "")."""
    from .prediction import feature_blocks, transform_features

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


def _write_atomic(table, path):
    """Write a Parquet file under a hidden name, then rename it into place."""
    pq = import_or_raise("pyarrow.parquet", "Parquet output")
    folder, name = os.path.split(path)
    tmp = os.path.join(folder, f".{name}.{uuid.uuid4().hex}.tmp")
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _feature_table(files, features, errors):
    pa = import_or_raise("pyarrow", "Parquet output")
    width = features.shape[1]
    values = pa.array(features.reshape(-1), type=pa.float32())
    mask = pa.array([bool(e) for e in errors], type=pa.bool_())
    column = pa.FixedSizeListArray.from_arrays(
        values, type=pa.list_(pa.float32(), width), mask=mask)
    return pa.table({
        "file": pa.array([os.fspath(f) for f in files], type=pa.string()),
        "error": pa.array(errors, type=pa.string()),
        "features": column,
    })


def _read_errors(path):
    pq = import_or_raise("pyarrow.parquet", "Parquet output")
    table = pq.read_table(path, columns=["file", "error"])
    return [(f, e) for f, e in zip(table["file"].to_pylist(),
                                   table["error"].to_pylist()) if e]


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
    from .pipeline import get_feature_union
    from .prediction import feature_blocks

    union = get_feature_union(pipe)
    try:
        names = [str(n) for n in union.get_feature_names_out()]
    except (AttributeError, ValueError):  # a block without feature names
        names = None
    return names, [[name, width] for name, width in feature_blocks(pipe)]


def _check_manifest(output, manifest):
    path = os.path.join(output, MANIFEST)
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            old = json.load(fh)
        keys = ("kind", "partition_size", "n_files", "files_sha256", "neighbours")
        if any(old.get(k) != manifest.get(k) for k in keys):
            raise ValueError(
                f"The output folder {output!r} holds partitions of another file "
                f"list, partition size or number of neighbours ({old.get('n_files')} "
                f"files in partitions of {old.get('partition_size')}). Use a new "
                "output folder, or delete this one to start again."
            )
        return
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(manifest, fh)


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
        When ``output`` holds partitions of another file list or partition
        size.

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
        "blocks": blocks, "feature_names": names,
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


def read_features(output):
    """Read the output folder of :func:`extract_features` as NumPy arrays.

    Parameters
    ----------
    output : str or os.PathLike
        The folder.

    Returns
    -------
    files : list of str
        The files, in the order given to :func:`extract_features`.

    features : ndarray of shape (n_files, n_features), dtype float32
        Their features; NaN rows for unreadable files.

    errors : list of str
        Why each file could not be read; ``""`` when it was.
    """
    pq = import_or_raise("pyarrow.parquet", "Parquet output")
    output = os.fspath(output)
    parts = sorted(n for n in os.listdir(output) if _PART.match(n))
    files, rows, errors = [], [], []
    for name in parts:
        table = pq.read_table(os.path.join(output, name))
        column = table["features"].combine_chunks()
        width = column.type.list_size
        values = np.asarray(column.values.to_numpy(zero_copy_only=False),
                            dtype=np.float32)
        start = column.offset * width
        block = values[start : start + len(column) * width].reshape(-1, width)
        block = block.copy()
        block[np.asarray(column.is_null().to_numpy(zero_copy_only=False))] = np.nan
        files.extend(table["file"].to_pylist())
        errors.extend(table["error"].to_pylist())
        rows.append(block)
    features = np.concatenate(rows) if rows else np.empty((0, 0), np.float32)
    return files, features, errors


# -- prediction --------------------------------------------------------------------
def _predict_partition(pipe, files, index, batch_size, proba_threshold,
                       ood_thresholds, novelty, top_k, neighbours, cwd):
    """Task: the prediction rows of one partition (relative names from ``cwd``)."""
    from .prediction import predict_files

    near, embedding_index = neighbours
    rows = list(predict_files(pipe, [os.path.join(cwd, f) for f in files],
                              batch_size=batch_size,
                              proba_threshold=proba_threshold,
                              ood_thresholds=ood_thresholds, novelty=novelty,
                              top_k=top_k, neighbours=near, index=embedding_index))
    for name, row in zip(files, rows):
        row["file"] = name
        row["label"] = str(row["label"])
        row["top"] = [(str(c), float(p)) for c, p in row["top"]]
    return rows


def _rows_table(rows):
    pa = import_or_raise("pyarrow", "Parquet output")
    return pa.table({
        "file": pa.array([r["file"] for r in rows], type=pa.string()),
        "label": pa.array([r["label"] for r in rows], type=pa.string()),
        "confidence": pa.array([r["confidence"] for r in rows], type=pa.float64()),
        "ood_score": pa.array([r["ood_score"] for r in rows], type=pa.float64()),
        "unknown_reason": pa.array([r["unknown_reason"] for r in rows],
                                   type=pa.string()),
        "quality_issues": pa.array([None if r["quality"] is None
                                    else r["quality"]["issues"] for r in rows],
                                   type=pa.list_(pa.string())),
        "top_classes": pa.array([[c for c, _ in r["top"]] for r in rows],
                                type=pa.list_(pa.string())),
        "top_probas": pa.array([[p for _, p in r["top"]] for r in rows],
                               type=pa.list_(pa.float64())),
        "error": pa.array([r["error"] for r in rows], type=pa.string()),
        **{f"neighbour_{key}s": pa.array(
            [[n[key] for n in r["neighbours"]] for r in rows],
            type=pa.list_(pa.float64() if key == "similarity" else pa.string()))
           for key in ("file", "label", "similarity")},
    })


def _table_rows(table):
    data = table.to_pydict()
    return [
        {"file": f, "label": lab, "confidence": c, "ood_score": o,
         "unknown_reason": r, "quality": None if q is None else {
             "ok": not q, "issues": list(q)},
         "top": list(zip(tc, tp)), "error": e,
         "neighbours": [{"file": nf, "label": nl, "similarity": ns}
                        for nf, nl, ns in zip(*near)]}
        for f, lab, c, o, r, q, tc, tp, e, *near in zip(
            data["file"], data["label"], data["confidence"], data["ood_score"],
            data["unknown_reason"], data["quality_issues"],
            data["top_classes"], data["top_probas"], data["error"],
            *(data.get(f"neighbour_{key}s", [[]] * len(data["file"]))
              for key in ("file", "label", "similarity")))
    ]


def predict_partitioned(pipe, files, *, client=None, parts_dir=None,
                        partition_size=256, batch_size=32, proba_threshold=0.0,
                        ood_thresholds=None, novelty=None, top_k=3,
                        neighbours=0, index=None, progress=False):
    """Predict many files partition by partition, here or on a Dask cluster.

    Each partition is predicted by
    :func:`hybridclf.prediction.predict_files`, so the rows are those of a
    local run, in file order.

    Parameters
    ----------
    pipe : fitted Pipeline
        A hybrid pipeline, as from :func:`~hybridclf.load_model`.

    files : sequence of str
        Image files; on a cluster, every worker must read them at these paths
        (relative ones from this process's working folder).

    client : distributed.Client or None, default=None
        Run the partitions on this Dask cluster; None runs them here.

    parts_dir : str or os.PathLike or None, default=None
        Keep each finished partition's rows in ``parts_dir/part-<i>.parquet``
        (written by this process, not by the workers), and reuse those found
        there: an interrupted run goes on where it stopped. None keeps
        nothing.

    partition_size : int, default=256
        Files per partition.

    batch_size, proba_threshold, ood_thresholds, novelty, top_k, neighbours, index
        As in :func:`hybridclf.prediction.predict_files`.

    progress : bool, default=False
        Show a progress bar over the images.

    Returns
    -------
    rows : list of dict
        One row per file, in file order, as
        :func:`hybridclf.prediction.predict_files` yields them.
    """
    files = [os.fspath(f) for f in files]
    partitions = partition_files(files, partition_size)
    results, todo = {}, list(range(len(partitions)))
    if parts_dir is not None:
        pq = import_or_raise("pyarrow.parquet", "Parquet output")
        parts_dir = os.fspath(parts_dir)
        os.makedirs(parts_dir, exist_ok=True)
        _check_manifest(parts_dir, {
            "kind": "predict", "partition_size": partition_size,
            "n_files": len(files), "files_sha256": _files_digest(files),
            "n_partitions": len(partitions), **({"neighbours": neighbours}
                                                if neighbours else {}),
        })
        for i in list(todo):
            path = os.path.join(parts_dir, _part_name(i))
            if os.path.exists(path):
                results[i] = _table_rows(pq.read_table(path))
                todo.remove(i)
    for i, rows in _run(_predict_partition, pipe, partitions, todo,
                        (batch_size, proba_threshold, ood_thresholds, novelty,
                         top_k, (neighbours, index), os.getcwd()), client,
                        progress, "predict"):
        if parts_dir is not None:
            _write_atomic(_rows_table(rows), os.path.join(parts_dir, _part_name(i)))
        results[i] = rows
    return [row for i in range(len(partitions)) for row in results[i]]
