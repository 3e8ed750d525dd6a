"""The largest eigenpairs of a symmetric matrix, without holding Python's lock.

``scipy.linalg.eigh`` calls LAPACK through f2py wrappers, which keep Python's
global lock for the whole call: two threads that each decompose a matrix
(the novelty index of each cross-validation fold and the final one, built
two at a time by ``hybridclf train``) take turns instead of sharing the
cores (measured: two 695 x 695 decompositions in two threads took as long
as one after the other). :func:`largest_eigh` calls the very routine that
``eigh(a, subset_by_index=[n - k, n - 1])`` calls, ``dsyevr`` (``ssyevr`` for
float32) of SciPy's LAPACK, with the same arguments and workspace, through
its Cython export (``scipy.linalg.cython_lapack``) and :mod:`ctypes`, which
releases the lock during the call, as Numba calls it. The results are the
same bits (a test checks it); where that export cannot be used it falls back
on ``eigh``.
"""

import ctypes
import functools
import logging

import numpy as np

__all__ = ["largest_eigh"]

logger = logging.getLogger(__name__)

_PTR = ctypes.c_void_p


#: The LAPACK routine for each dtype, and the C type of its real scalars.
_ROUTINES = {np.dtype(np.float64): ("dsyevr", ctypes.c_double),
             np.dtype(np.float32): ("ssyevr", ctypes.c_float)}


@functools.cache
def _syevr(name):
    """``dsyevr`` or ``ssyevr`` of SciPy's LAPACK as a ctypes function, or None."""
    try:
        from scipy.linalg import cython_lapack

        capsule = cython_lapack.__pyx_capi__[name]
        get_name = ctypes.pythonapi.PyCapsule_GetName
        get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
        get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
        get_pointer.restype = ctypes.c_void_p
        get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
        address = get_pointer(capsule, get_name(capsule))
    except (ImportError, AttributeError, KeyError, ValueError) as exc:
        logger.debug("SciPy's Cython LAPACK is not usable here: %s", exc)
        return None
    # every argument of a Fortran routine is a pointer; LAPACK's integers
    # are C ints in SciPy's Cython export
    return ctypes.CFUNCTYPE(None, *[_PTR] * 21)(address)


def largest_eigh(a, k):
    """The ``k`` largest eigenvalues and eigenvectors of a symmetric matrix.

    The same as ``scipy.linalg.eigh(a, subset_by_index=[n - k, n - 1])``,
    bit for bit, but other Python threads run meanwhile.

    Parameters
    ----------
    a : ndarray of shape (n, n), dtype float64 or float32
        A symmetric matrix; its lower triangle is read. Float32 runs
        LAPACK's single-precision routine (half the time of float64's).

    k : int
        How many eigenpairs, from 1 to ``n``.

    Returns
    -------
    values : ndarray of shape (k,)
        The eigenvalues, in ascending order.

    vectors : ndarray of shape (n, k)
        The unit eigenvectors, column ``i`` for ``values[i]``.
    """
    n = a.shape[0]
    name, real = _ROUTINES.get(a.dtype, (None, None))
    routine = None if name is None else _syevr(name)
    if routine is None or not 1 <= k <= n:
        from scipy.linalg import eigh

        return eigh(a, subset_by_index=[n - k, n - 1])
    from scipy.linalg.lapack import _compute_lwork, get_lapack_funcs

    # the workspace eigh asks for: its size decides LAPACK's blocking
    query, = get_lapack_funcs(("syevr_lwork",), (a,))
    lwork, liwork = _compute_lwork(query, n=n, lower=True)
    if not np.isfinite(a).all():
        raise ValueError("array must not contain infs or NaNs")
    matrix = np.array(a, order="F")  # overwritten by LAPACK
    values = np.empty(n, dtype=a.dtype)
    vectors = np.empty((n, k), dtype=a.dtype, order="F")
    support = np.empty(2 * n, dtype=np.intc)
    work = np.empty(lwork, dtype=a.dtype)
    iwork = np.empty(liwork, dtype=np.intc)
    ints = [ctypes.c_int(v) for v in (n, n, n - k + 1, n, 0, n, lwork, liwork, 0)]
    size, lda, low, high, found, ldz, nwork, niwork, info = ints
    zero, one = real(0.0), real(1.0)
    ref, text = ctypes.byref, ctypes.c_char_p
    routine(text(b"V"), text(b"I"), text(b"L"), ref(size), matrix.ctypes.data, ref(lda),
            ref(zero), ref(one), ref(low), ref(high), ref(zero), ref(found),
            values.ctypes.data, vectors.ctypes.data, ref(ldz), support.ctypes.data,
            work.ctypes.data, ref(nwork), iwork.ctypes.data, ref(niwork), ref(info))
    if info.value != 0:
        raise np.linalg.LinAlgError(
            f"LAPACK's {name} did not converge (info={info.value}).")
    return values[:found.value], vectors[:, :found.value]
