"""Run a function over contiguous chunks of a batch in threads.

OpenCV, scikit-image's Cython kernels, Pillow and NumPy release the GIL while
they work, so threads parallelise per-image work without copying images into
other processes.
"""

import os
import threading
from concurrent.futures import ThreadPoolExecutor

from joblib import effective_n_jobs

from ._docstrings import Substitution, n_jobs_docstring

_pools = {}
_pools_lock = threading.Lock()
# a forked child has none of its parent's threads: it makes its own pools
os.register_at_fork(after_in_child=_pools.clear)


def _thread_pool(n_threads):
    """A process-wide pool of ``n_threads`` threads, made on first use.

    Starting threads costs milliseconds, as much as extracting the features of
    a small batch, so pools are kept for the life of the process.
    """
    with _pools_lock:
        pool = _pools.get(n_threads)
        if pool is None:
            pool = _pools[n_threads] = ThreadPoolExecutor(
                max_workers=n_threads, thread_name_prefix="hybridclf"
            )
        return pool


def chunk_slices(n_items, n_chunks):
    """Split ``range(n_items)`` into at most ``n_chunks`` contiguous slices."""
    n_chunks = max(1, min(n_chunks, n_items))
    bounds = [round(i * n_items / n_chunks) for i in range(n_chunks + 1)]
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


@Substitution(n_jobs=n_jobs_docstring(
    "Number of threads.",
    "Calls from inside a pool thread run serially, so nested use does not wait "
    "on itself."))
def run_chunked(func, n_items, n_jobs=None):
    """Call ``func(slice)`` on chunks covering ``range(n_items)``, in threads.

    Parameters
    ----------
    func : callable
        Called with one ``slice`` per chunk; it usually writes into an output
        array shared by all chunks, or returns a per-chunk result.

    n_items : int
        Number of items in the batch.

    {n_jobs}

    Returns
    -------
    results : list
        What ``func`` returned for each chunk, in order.
    """
    if n_items == 0:
        return []
    if n_items == 1:  # before effective_n_jobs, which reads the cgroup files
        return [func(slice(0, 1))]
    n_threads = effective_n_jobs(n_jobs)
    nested = threading.current_thread().name.startswith("hybridclf")
    if n_threads == 1 or nested:
        return [func(slice(0, n_items))]
    # a few chunks per thread balance uneven per-image costs
    slices = chunk_slices(n_items, 4 * n_threads)
    return list(_thread_pool(n_threads).map(func, slices))
