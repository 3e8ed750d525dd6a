"""The ONNX graph of a CNN embedding network: export cache and Runtime session.

Exported graphs are kept in memory and, for ImageNet weights, on disk, so a
new process runs a pretrained backbone without importing PyTorch. Nothing
here imports torch at module level.
"""

import logging
import os
import threading

from ..utils._paths import cache_root

logger = logging.getLogger(__name__)

# ONNX graphs of unmodified pretrained backbones, shared by every fit in the
# process (cross-validation folds, grid-search candidates): exporting costs
# seconds, and the graph depends only on these parameters. Graphs of ImageNet
# weights are also kept on disk, so a new process skips PyTorch altogether.
_EXPORT_CACHE = {}
_EXPORT_LOCK = threading.Lock()


def _disk_path(key):
    import hashlib
    from importlib.metadata import PackageNotFoundError, version

    versions = []
    for package in ("hybridclf", "torch", "efficientnet-lite-pytorch"):
        try:
            versions.append(version(package))
        except PackageNotFoundError:
            versions.append(None)
    digest = hashlib.sha256(repr((key, versions)).encode()).hexdigest()[:32]
    return os.path.join(cache_root(), "onnx", f"{digest}.onnx")


def _cached_graph(key):
    """The ONNX bytes for ``key`` from memory or disk, or None."""
    with _EXPORT_LOCK:
        if key in _EXPORT_CACHE:
            return _EXPORT_CACHE[key]
    if key[1] != "imagenet":
        return None
    try:
        with open(_disk_path(key), "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    with _EXPORT_LOCK:
        _EXPORT_CACHE[key] = data
    return data


def _store_graph(key, data):
    with _EXPORT_LOCK:
        _EXPORT_CACHE[key] = data
    if key[1] != "imagenet":
        return  # random weights differ from process to process
    path = _disk_path(key)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)  # atomic: concurrent fits never read half a file
    except OSError as exc:
        logger.debug("Cannot cache the ONNX graph in %s: %s", path, exc)



def _onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        return None
    return onnxruntime

