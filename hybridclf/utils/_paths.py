"""Where hybridclf keeps its on-disk caches, and the hash of a file."""

import hashlib
import os

__all__ = ["cache_root", "sha256_file"]


def cache_root():
    """Folder for hybridclf's on-disk caches.

    ``$HYBRIDCLF_CACHE_DIR`` when set, else ``~/.cache/hybridclf``. Exported
    ONNX graphs go to its ``onnx`` folder and the features of training images
    to its ``features`` folder; deleting it only costs recomputation.
    """
    return os.environ.get("HYBRIDCLF_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "hybridclf")


def sha256_file(path):
    """Hex SHA-256 of a file's bytes, read in 1 MB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
