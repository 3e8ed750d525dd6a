"""Predicting many files partition by partition, here or on a Dask cluster.

:func:`predict_partitioned` predicts each partition with
:func:`hybridclf.prediction.predict_files` (``_predict_partition``) and
returns the rows in file order; with ``parts_dir`` it keeps each finished
partition's rows and reuses them on the next run, but for the partitions of
files changed since, predicted again (``_changed_parts``).
:func:`partitioned_rows` gives the same rows lazily, as they come
(``hybridclf predict``'s CSV).
"""

import json
import logging
import os

from ..utils._optional import import_or_raise
from ._parquet import _kept_stamps, _rows_table, _table_rows
from ._partitions import (
    _PART,
    MANIFEST,
    _changed,
    _check_manifest,
    _file_stamps,
    _files_digest,
    _model_digest,
    _part_name,
    _read_manifest,
    _same_work,
    _write_atomic,
    partition_files,
)
from ._run import _run

__all__ = ["partitioned_rows", "predict_partitioned"]

logger = logging.getLogger(__name__)


def _predict_partition(pipe, files, index, batch_size, proba_threshold,
                       ood_thresholds, novelty, top_k, neighbours, cwd, tick=None):
    """Task: the prediction rows of one partition (relative names from ``cwd``),
    and the stamps of its files, taken before they are read.

    ``tick(1)`` (a progress bar's ``update``) is called for each row, as
    each batch is predicted.
    """
    from ..prediction import predict_files

    stamps = _file_stamps(files, cwd)
    near, embedding_index = neighbours
    rows = []
    for row in predict_files(pipe, [os.path.join(cwd, f) for f in files],
                             batch_size=batch_size,
                             proba_threshold=proba_threshold,
                             ood_thresholds=ood_thresholds, novelty=novelty,
                             top_k=top_k, neighbours=near, index=embedding_index):
        rows.append(row)
        if tick is not None:  # the rows of a batch come together, as it is done
            tick(1)
    for name, row in zip(files, rows):
        row["file"] = name
        row["label"] = str(row["label"])
        row["top"] = [(str(c), float(p)) for c, p in row["top"]]
    return rows, stamps


def _answers(proba_threshold, ood_thresholds, novelty, top_k):
    """The settings that make a partition's rows, as its manifest keeps them."""
    checks = {"proba_threshold": proba_threshold, "ood_thresholds": ood_thresholds,
              "novelty": None if novelty is None else {
                  k: v for k, v in novelty.items() if k != "index"},
              "top_k": top_k}
    return json.loads(json.dumps(checks, default=str))  # as read back


def _clear_other_file_list(parts_dir, manifest):
    """Delete the kept rows of a stopped run over another file list.

    Photos added to (or removed from) a folder between a stopped run and
    the next change every partition's files; those rows were kept only to
    write a CSV that was never written, so the run starts again (with a
    warning) rather than refusing. Another model or other settings are
    still refused by ``_check_manifest``: their rows are no longer the
    answers asked for, and the user should know.
    """
    old = _read_manifest(parts_dir)
    if old is None or _same_work(old, manifest) or not _same_work(
            old, manifest, keys=("kind", "partition_size", "neighbours", "answers")):
        return
    logger.warning("%s kept the rows of a stopped run over another file list "
                   "(%s files, now %d): predicting every file again", parts_dir,
                   old.get("n_files"), manifest["n_files"])
    for name in os.listdir(parts_dir):
        if _PART.match(name) or name == MANIFEST:
            os.remove(os.path.join(parts_dir, name))


def _changed_parts(parts_dir, partitions, done):
    """The kept partitions with a file changed since: ``{partition: files}``.

    A file changed when its size or modification time is not the one its
    row kept (edited, or replaced by another photo of the same name); every
    row of a part without stamps counts as changed. Such a partition is
    predicted again whole, in the batches of a run from the start, so that
    its rows stay those of a local run to the last bit.
    """
    cwd, changed = os.getcwd(), {}
    for i in sorted(done):
        _, kept = _kept_stamps(os.path.join(parts_dir, _part_name(i)))
        if stale := _changed(kept, _file_stamps(partitions[i], cwd)):
            changed[i] = [partitions[i][k] for k in stale]
    if changed:
        logger.warning(
            "%d file(s) changed since a stopped run kept their rows in %s (such "
            "as %r): predicting their %d partition(s) again",
            sum(map(len, changed.values())), parts_dir, changed[min(changed)][0],
            len(changed))
    return changed


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
        there: an interrupted run goes on where it stopped. A partition
        with a file changed since its rows were kept (another size or
        modification time) is predicted again, with a warning. None keeps
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
    _, rows = partitioned_rows(
        pipe, files, client=client, parts_dir=parts_dir,
        partition_size=partition_size, batch_size=batch_size,
        proba_threshold=proba_threshold, ood_thresholds=ood_thresholds,
        novelty=novelty, top_k=top_k, neighbours=neighbours, index=index,
        progress=progress)
    return list(rows)


def partitioned_rows(pipe, files, *, client=None, parts_dir=None,
                     partition_size=256, batch_size=32, proba_threshold=0.0,
                     ood_thresholds=None, novelty=None, top_k=3, neighbours=0,
                     index=None, progress=False):
    """:func:`predict_partitioned` as it goes: the rows in file order, lazily.

    The manifest of ``parts_dir`` is checked, and the partitions found there
    are counted, before this returns; the rows then come one partition at a
    time, in file order: read back from ``parts_dir``, or predicted (here,
    in order; on ``client``, as soon as every partition before them is in).
    So a run here keeps one partition's rows in memory, not the file list's,
    and a CSV written from them grows as the run goes (``hybridclf
    predict``).

    Parameters
    ----------
    pipe, files, client, parts_dir, partition_size, batch_size
        As in :func:`predict_partitioned`.

    proba_threshold, ood_thresholds, novelty, top_k, neighbours, index, progress
        As in :func:`predict_partitioned`.

    Returns
    -------
    n_resumed : int
        Files whose rows are read back from ``parts_dir`` (an earlier run);
        not those of a partition predicted again for a file changed since.

    rows : iterator of dict
        One row per file, in file order.
    """
    files = [os.fspath(f) for f in files]
    partitions = partition_files(files, partition_size)
    pq, done = None, set()
    if parts_dir is not None:
        pq = import_or_raise("pyarrow.parquet", "Parquet output")
        parts_dir = os.fspath(parts_dir)
        done = _kept_parts(pipe, files, partitions, parts_dir,
                           partition_size=partition_size, neighbours=neighbours,
                           answers=(proba_threshold, ood_thresholds, novelty,
                                    top_k))
    todo = [i for i in range(len(partitions)) if i not in done]
    computed = _run(_predict_partition, pipe, partitions, todo,
                    (batch_size, proba_threshold, ood_thresholds, novelty, top_k,
                     (neighbours, index), os.getcwd()), client, progress,
                    "predict")
    return (sum(len(partitions[i]) for i in done),
            _rows_in_order(partitions, done, computed, parts_dir, pq))


def _kept_parts(pipe, files, partitions, parts_dir, *, partition_size, neighbours,
                answers):
    """The partitions whose rows a stopped run kept in ``parts_dir``, to read back.

    ``parts_dir`` is made if missing and its manifest checked against this
    run's (the rows of another file list are deleted, another model or
    other settings refused); a kept partition with a file changed since is
    not among them (predicted again), unless ``pipe`` is None (rows are
    then only read back). ``answers`` holds the arguments of
    :func:`_answers`: the settings that make the rows.
    """
    os.makedirs(parts_dir, exist_ok=True)
    manifest = {
        "kind": "predict", "partition_size": partition_size,
        "n_files": len(files), "files_sha256": _files_digest(files),
        "n_partitions": len(partitions), "model": _model_digest(pipe),
        **({"neighbours": neighbours} if neighbours else {}),
        # the rows' labels and top guesses: a rerun with another
        # --threshold, --no-ood, --closed-set or --top-k kept the old ones
        "answers": _answers(*answers),
    }
    _clear_other_file_list(parts_dir, manifest)
    _check_manifest(parts_dir, manifest)
    done = {i for i in range(len(partitions))
            if os.path.exists(os.path.join(parts_dir, _part_name(i)))}
    if pipe is not None:  # without one, rows are only read back
        done -= set(_changed_parts(parts_dir, partitions, done))
    return done


def _rows_in_order(partitions, done, computed, parts_dir, pq):
    """The rows of every partition in file order, as the partitions come in.

    The partitions in ``done`` are read back from ``parts_dir``; those of
    ``computed`` (``(partition, (rows, stamps))``, in any order) are written
    there as they come (when ``parts_dir`` is given) and held until every
    partition before them is in.
    """
    pending, following = {}, 0

    def ready():  # the partitions from ``following`` on that are in
        nonlocal following
        while following < len(partitions):
            if following in done:
                yield from _table_rows(pq.read_table(
                    os.path.join(parts_dir, _part_name(following))))
            elif following in pending:
                yield from pending.pop(following)
            else:
                return
            following += 1

    yield from ready()
    for i, (part_rows, stamps) in computed:
        if parts_dir is not None:
            _write_atomic(_rows_table(part_rows, stamps),
                          os.path.join(parts_dir, _part_name(i)))
        pending[i] = part_rows
        yield from ready()
