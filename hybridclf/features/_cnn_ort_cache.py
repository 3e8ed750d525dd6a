"""ONNX Runtime sessions from a graph it optimised before, kept on disk.

Making a session of the default CNN's graph (EfficientNet-Lite2 at 224 px, a
19 MB graph) took 84 ms of CPU time as the first of a process, most of it
ONNX Runtime's graph optimisations (constant folding, fusions, the blocked
NCHWc layout of x86 CPUs); from the graph it optimised before
(``SessionOptions.optimized_model_filepath``), loaded with the optimisations
off, 37 ms, plus 17 ms to hash the graph (medians of 5, one thread). The
optimised graph computes the same features, bit for bit (a test checks it).

It depends on the graph, on ONNX Runtime's version and on the CPU (the NCHWc
blocks follow its vector width: ONNX Runtime warns that such a graph is for
the machine that made it), so its file is named by all three:
``<cache root>/onnx/optimized/<graph sha256>-<onnxruntime version>-<cpu>.onnx``
(:func:`~hybridclf.utils._paths.cache_root`). A graph is only ever run from
the file of its own hash; a file that ONNX Runtime cannot load is deleted
and made again; files are written under a temporary name and renamed, so a
concurrent process never reads half of one. As the exported graphs beside
them, the files are not checksummed (reading and hashing one would cost what
it saves): a file damaged so that it still loads is not noticed. Where the
CPU cannot be told (no ``/proc/cpuinfo``) or the folder cannot be written,
the session is made as before. Deleting the folder only costs the optimisations again.
"""

import functools
import hashlib
import logging
import os
import threading

from ..utils._paths import cache_root

__all__ = ["cached_session"]

logger = logging.getLogger(__name__)

#: The lines of ``/proc/cpuinfo`` that tell which kernels ONNX Runtime picks.
_CPU_FIELDS = ("vendor_id", "model name", "flags", "CPU implementer",
               "CPU architecture", "CPU part", "Features")


@functools.cache
def cpu_signature():
    """A short hash of this CPU's model and instruction sets, or None."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            first = fh.read().split("\n\n")[0]
    except OSError:
        return None
    lines = sorted(line for line in first.splitlines()
                   if line.split(":")[0].strip() in _CPU_FIELDS)
    if not lines:
        return None
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def optimized_path(ort, model):
    """Where the optimised form of the graph ``model`` (bytes) is kept, or None."""
    cpu = cpu_signature()
    if cpu is None:
        return None
    digest = hashlib.sha256(model).hexdigest()[:32]
    name = f"{digest}-{ort.__version__}-{cpu}.onnx"
    return os.path.join(cache_root(), "onnx", "optimized", name)


def cached_session(ort, model, make_options, providers):
    """An ``InferenceSession`` of ``model`` (bytes), from its optimised file.

    ``make_options()`` returns fresh ``SessionOptions``; a session made from
    the kept file has its graph optimisations off (they are in the file).
    The first session of a graph writes the file.
    """
    path = optimized_path(ort, model)
    if path is None:
        return ort.InferenceSession(model, make_options(), providers=providers)
    if os.path.isfile(path):
        options = make_options()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        try:
            return ort.InferenceSession(path, options, providers=providers)
        except Exception as exc:  # onnxruntime's own errors: a damaged file
            logger.warning("Ignoring the damaged optimised ONNX graph %s (%s); "
                           "making it again.", path, exc)
            _remove(path)
    return _session_writing(ort, model, make_options, providers, path)


def _session_writing(ort, model, make_options, providers, path):
    """A new session of ``model`` that leaves its optimised graph at ``path``."""
    tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
    options = make_options()
    options.optimized_model_filepath = tmp
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        session = ort.InferenceSession(model, options, providers=providers)
    except Exception as exc:  # a folder that cannot be written, and the like
        logger.debug("Cannot keep the optimised ONNX graph in %s: %s", path, exc)
        _remove(tmp)
        return ort.InferenceSession(model, make_options(), providers=providers)
    try:
        os.replace(tmp, path)  # atomic: never half a file under its name
    except OSError as exc:
        logger.debug("Cannot keep the optimised ONNX graph in %s: %s", path, exc)
        _remove(tmp)
    return session


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass
