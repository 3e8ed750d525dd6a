"""Run a function over contiguous chunks of a batch in threads.

OpenCV, scikit-image's Cython kernels, Pillow and NumPy release the GIL while
they work, so threads parallelise per-image work without copying images into
other processes.
"""

import functools
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor, wait

from joblib import effective_n_jobs
from joblib.parallel import get_active_backend

from ._docstrings import Substitution, n_jobs_docstring

_pools = {}
_pools_lock = threading.Lock()
# set while a caller's thread runs its share of run_shared: what it calls
# runs serially, as in a pool thread
_sharing = threading.local()
# the thread of start_idle, once its priority is lowered
_idle = threading.local()
# a forked child has none of its parent's threads: it makes its own pools
os.register_at_fork(after_in_child=_pools.clear)


def _thread_pool(n_threads):
    """A process-wide pool of ``n_threads`` threads, made on first use.

    ``"idle"`` is the one thread of :func:`start_idle`.

    Starting threads costs milliseconds, as much as extracting the features of
    a small batch, so pools are kept for the life of the process.
    """
    with _pools_lock:
        pool = _pools.get(n_threads)
        if pool is None:
            pool = _pools[n_threads] = ThreadPoolExecutor(
                max_workers=1 if n_threads == "idle" else n_threads,
                thread_name_prefix="hybridclf")
        return pool


def start_idle(func):
    """Start ``func()`` on a thread that runs when a core would be idle; its Future.

    The thread is a process-wide pool of one, apart from the pools of
    :func:`run_shared` (what ``func`` calls runs serially there:
    :func:`in_worker`), and the operating system runs it at the lowest
    priority (Linux: nice 19 for that thread alone; elsewhere as any
    thread): on a busy machine it takes no time from the caller or from
    other processes, on an idle core it runs at full speed. One function
    runs at a time; another waits for it.

    Parameters
    ----------
    func : callable
        A function without arguments.

    Returns
    -------
    future : concurrent.futures.Future
        Its result, or what it raised.
    """
    return _thread_pool("idle").submit(_at_lowest_priority, func)


def _at_lowest_priority(func):
    if not getattr(_idle, "lowered", False):
        _idle.lowered = True
        if sys.platform.startswith("linux"):  # there a thread id takes a nice
            try:
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
            except OSError:  # not allowed here: the thread stays as it is
                pass
    return func()


def effective_threads(n_jobs):
    """``joblib.effective_n_jobs(n_jobs)``, worked out once per process.

    joblib reads the cgroup CPU quota on every call with a negative
    ``n_jobs`` (about 0.1 ms): a prediction of one photo would pay it for
    every block. The answer depends only on ``n_jobs`` and on the active
    joblib backend and its default ``n_jobs`` (``joblib.parallel_config``),
    so it is kept for each of them.

    Parameters
    ----------
    n_jobs : int or None
        As for joblib.

    Returns
    -------
    n_threads : int
        At least 1.
    """
    backend, default_n_jobs = get_active_backend()
    return _effective_threads(n_jobs, type(backend), default_n_jobs)


@functools.lru_cache(maxsize=64)
def _effective_threads(n_jobs, backend_type, default_n_jobs):
    return effective_n_jobs(n_jobs)


def in_worker():
    """Whether this thread already runs a share of work side by side.

    True in a pool thread and in a thread running its share of
    :func:`run_shared`: work started there runs serially, so that nested
    calls neither wait on themselves nor start more threads than cores.
    """
    return (getattr(_sharing, "active", False)
            or threading.current_thread().name.startswith("hybridclf"))


def run_shared(funcs, n_threads):
    """Run functions on ``n_threads`` threads, this one included, in turn.

    Each thread takes the next function not taken yet as soon as it is free
    (list scheduling): pass the longest first. The calling thread starts the
    first at once and works instead of waiting idle, and a thread that the
    system leaves waiting holds up at most the function it runs: the others
    take the rest.

    Parameters
    ----------
    funcs : list of callable
        Functions without arguments.

    n_threads : int
        Threads to use, at most one per function.

    Returns
    -------
    results : list
        What each function returned, in the order of ``funcs``.
    """
    results, failed = [None] * len(funcs), []
    order, lock = iter(range(len(funcs))), threading.Lock()

    def drain(i=None):
        while not failed:
            if i is None:
                with lock:
                    i = next(order, None)
            if i is None:
                return
            try:
                results[i] = funcs[i]()
            except BaseException:
                failed.append(i)  # the others stop taking functions
                raise
            i = None

    first = next(order, None)  # this thread starts the first one at once
    n_helpers = max(0, min(n_threads, len(funcs)) - 1)
    futures = [_thread_pool(n_helpers).submit(drain) for _ in range(n_helpers)]
    previous, _sharing.active = getattr(_sharing, "active", False), True
    try:
        drain(first)
    finally:
        _sharing.active = previous
        wait(futures)  # none left running, even when this thread raised
    for future in futures:
        future.result()  # raises what a helper raised
    return results


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
    n_threads = effective_threads(n_jobs)
    if n_threads == 1 or in_worker():
        return [func(slice(0, n_items))]
    # a few chunks per thread balance uneven per-image costs
    slices = chunk_slices(n_items, 4 * n_threads)
    return list(_thread_pool(n_threads).map(func, slices))
