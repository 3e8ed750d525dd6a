"""Running one task per partition, here or on a Dask cluster.

``_run`` calls a partition task for each partition to compute, one after the
other here, or on a cluster's workers with the fitted pipeline sent to each
worker once; it yields each partition's result as it finishes.
"""

from ..utils._optional import import_or_raise

__all__ = []


def _one_thread_per_task(pipe):
    """A copy of ``pipe`` whose image steps use one thread (tasks run in parallel)."""
    import pickle

    from ..pipeline import set_image_params

    return set_image_params(pickle.loads(pickle.dumps(pipe)), n_jobs=1)


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
