"""Keeping a serving process small: no unused imports, free memory given back.

Two things make a process that only predicts larger than it needs to be:

- scikit-learn imports pandas whenever it is installed (and pandas imports
  pyarrow), and imbalanced-learn imports scikit-learn's test helpers, which
  import pytest: about 70 MB that predicting never touches.
  :func:`without_unused_imports` makes those imports fail, as if the
  packages were not installed, while the service's modules are imported;
  both libraries treat them as optional and check for a DataFrame through
  ``sys.modules`` at call time, so a package imported later works as usual.
- glibc's allocator keeps the memory of freed buffers (decoded photos, the
  CNN's activations) in per-thread arenas instead of returning it;
  :func:`release_memory` gives it back, and :func:`limit_arenas` keeps the
  arenas few: a megabyte-sized buffer freed in one arena is not reused by a
  thread of another, so with an arena per thread (up to 8 per core) the
  free memory that fragmentation keeps grows with the threads.
"""

import ctypes
import ctypes.util
import importlib.abc
import os
import sys
from contextlib import contextmanager

__all__ = ["UNUSED_WHILE_SERVING", "limit_arenas", "release_memory",
           "without_unused_imports"]

#: Packages that scikit-learn and imbalanced-learn import if installed, and
#: that a process serving a model never uses (nor a command's imports: see
#: ``hybridclf.cli._common.command_imports``).
UNUSED_WHILE_SERVING = ("pandas", "pyarrow", "pytest")


class _Refuse(importlib.abc.MetaPathFinder):
    """A finder that answers ``import name`` with ModuleNotFoundError."""

    def __init__(self, names):
        self.names = frozenset(names)

    def find_spec(self, fullname, path=None, target=None):
        if fullname.partition(".")[0] in self.names:
            raise ModuleNotFoundError(
                f"No module named {fullname!r} (hybridclf keeps it out of "
                "these imports: nothing they load uses it)", name=fullname)
        return None


@contextmanager
def without_unused_imports(names=UNUSED_WHILE_SERVING):
    """Inside the block, the packages ``names`` cannot be imported.

    Only packages not imported yet are refused: in a process that already
    uses them (a notebook, a test run) nothing changes.

    Parameters
    ----------
    names : sequence of str, default=UNUSED_WHILE_SERVING
        Top-level package names.
    """
    finder = _Refuse(name for name in names if name not in sys.modules)
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


def _glibc_function(name):
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return getattr(libc, name, None)  # glibc only, not musl


_TRIM = _glibc_function("malloc_trim")
_MALLOPT = _glibc_function("mallopt")
#: glibc's ``mallopt`` parameter for the most arenas (malloc.h)
_M_ARENA_MAX = -8


def release_memory():
    """Return the allocator's free memory to the system (glibc's ``malloc_trim``).

    Takes a few milliseconds, so the service calls it when idle. Does nothing
    where the C library has no ``malloc_trim`` (macOS, Windows, musl).

    Returns
    -------
    released : bool
        Whether ``malloc_trim`` ran.
    """
    if _TRIM is None:
        return False
    _TRIM(0)
    return True


def limit_arenas(n_arenas=2):
    """Let glibc's allocator make at most ``n_arenas`` arenas from now on.

    The service calls it before it starts its threads. With the default
    (8 arenas per core) each thread that decodes photos or runs a block
    keeps its own free buffers; with 2 they are shared, and the memory a
    server holds after a load of 8 clients is lower (see the memory part
    of ``docs/service.md``) for the same CPU time per request. Does nothing
    without glibc's ``mallopt`` (macOS, Windows, musl) or when the
    environment sets ``MALLOC_ARENA_MAX`` (the operator's choice wins).

    Parameters
    ----------
    n_arenas : int, default=2
        The most arenas.

    Returns
    -------
    limited : bool
        Whether ``mallopt`` took the limit.
    """
    if _MALLOPT is None or "MALLOC_ARENA_MAX" in os.environ:
        return False
    return bool(_MALLOPT(_M_ARENA_MAX, int(n_arenas)))
