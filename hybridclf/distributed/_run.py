"""Running one task per partition, here or on a Dask cluster.

``_run`` calls a partition task for each partition to compute, one after the
other here, or on a cluster's workers with the fitted pipeline sent to each
worker once (``_pipeline_task``); it yields each partition's result as it
finishes. A partition whose workers keep dying is a
:class:`~hybridclf.exceptions.ClusterError` that names it
(``_partition_lost``).
"""

import warnings

from ..exceptions import ClusterError
from ..utils._optional import import_or_raise

__all__ = []


def _one_thread_per_task(pipe):
    """``pipe`` pickled, its image steps on one thread (tasks run in parallel)."""
    import pickle

    from ..pipeline import set_image_params

    copy = set_image_params(pickle.loads(pickle.dumps(pipe)), n_jobs=1)
    return pickle.dumps(copy, protocol=pickle.HIGHEST_PROTOCOL)


def _pipeline(blob):
    """Task: the pickled pipeline, unpickled (the partition tasks depend on it)."""
    import pickle

    return pickle.loads(blob)


def _pipeline_task(client, pipe):
    """A future of ``pipe`` on the cluster, computed again when it is lost.

    A task rather than ``client.scatter``: scattered data lives only on the
    workers that hold it, and once they have all died (the one worker of a
    cluster, or each worker in turn over a long run; a worker restarted by
    its nanny comes back empty) every task that needs it was cancelled
    ("already forgotten") and the run failed. The scheduler keeps a task's
    definition, so it computes the pipeline again on a live worker. The
    definition holds the pipeline as bytes: the scheduler keeps them but
    never unpickles the model (nor imports its libraries). It still goes to
    each worker once, as a dependency fetched from a worker that has it.
    """
    with warnings.catch_warnings():
        # the pickled model is the graph; sent once, as said
        warnings.filterwarnings("ignore", message="Sending large graph")
        return client.submit(_pipeline, _one_thread_per_task(pipe), pure=False)


def _partition_lost(index, files, exc):
    """The error of a partition the cluster could not compute (workers died)."""
    return ClusterError(
        f"Partition {index} ({len(files)} files, from {files[0]!r}) could not "
        f"be computed on the Dask cluster ({type(exc).__name__}: {exc}). Its "
        "workers died while running it (a worker that runs out of memory or "
        "crashes on a file is killed: try a smaller '--partition-size' or "
        "'--batch-size'), or the scheduler lost what it needs; the workers' "
        "and the scheduler's logs say which (each needs the versions of "
        "hybridclf and its libraries of this machine). The partitions "
        "finished are kept: the same command goes on where it stopped."
    )


def _progress_bar(progress, total, desc):
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="image")


def _run(func, pipe, partitions, todo, args, client, progress, desc):
    """Call ``func(pipe, files, index, *args)`` for each index in ``todo``.

    Yields ``(index, result)`` as partitions finish: in order here, in any
    order on ``client``. Here ``func`` also gets ``tick``, the progress
    bar's ``update`` (None without one), to call with the files of each
    batch it finishes; on ``client`` the bar moves a partition at a time.
    """
    bar = _progress_bar(progress, sum(len(partitions[i]) for i in todo), desc)
    try:
        if client is None:
            # here the task moves the bar batch by batch: a partition of
            # large photos took minutes, the bar standing at 0 all along
            tick = None if bar is None else bar.update
            for i in todo:
                yield i, func(pipe, partitions[i], i, *args, tick=tick)
            return
        if not todo:
            return
        distributed = import_or_raise("distributed", "hybridclf on a Dask cluster")
        # the fitted pipeline goes to every worker once, not with every task
        remote = _pipeline_task(client, pipe)
        futures = {client.submit(func, remote, partitions[i], i, *args,
                                 pure=False): i for i in todo}
        lost = (distributed.KilledWorker, distributed.client.FutureCancelledError)
        try:
            for future in distributed.as_completed(futures):
                i = futures[future]
                try:
                    result = future.result()
                except lost as exc:
                    raise _partition_lost(i, partitions[i], exc) from exc
                if bar is not None:
                    bar.update(len(partitions[i]))
                yield i, result
        finally:
            client.cancel(list(futures))
            client.cancel([remote])
    finally:
        if bar is not None:
            bar.close()
