"""Run a function over contiguous chunks of a batch in threads.

OpenCV, scikit-image's Cython kernels, Pillow and NumPy release the GIL while
they work, so threads parallelise per-image work without copying images into
other processes.
"""

from joblib import Parallel, delayed, effective_n_jobs


def chunk_slices(n_items, n_chunks):
    """Split ``range(n_items)`` into at most ``n_chunks`` contiguous slices."""
    n_chunks = max(1, min(n_chunks, n_items))
    bounds = [round(i * n_items / n_chunks) for i in range(n_chunks + 1)]
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def run_chunked(func, n_items, n_jobs=None):
    """Call ``func(slice)`` on chunks covering ``range(n_items)``, in threads.

    Parameters
    ----------
    func : callable
        Called with one ``slice`` per chunk; it usually writes into an output
        array shared by all chunks, or returns a per-chunk result.

    n_items : int
        Number of items in the batch.

    n_jobs : int, default=None
        Number of threads. ``None`` means 1 unless in a
        :func:`joblib.parallel_config` context; ``-1`` means all processors.

    Returns
    -------
    results : list
        What ``func`` returned for each chunk, in order.
    """
    if n_items == 0:
        return []
    n_threads = effective_n_jobs(n_jobs)
    if n_threads == 1 or n_items == 1:
        return [func(slice(0, n_items))]
    # a few chunks per thread balance uneven per-image costs
    slices = chunk_slices(n_items, 4 * n_threads)
    return Parallel(n_jobs=n_threads, prefer="threads")(
        delayed(func)(sl) for sl in slices
    )
