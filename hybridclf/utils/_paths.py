"""Where hybridclf keeps its on-disk caches."""

import os

__all__ = ["cache_root"]


def cache_root():
    """Folder for hybridclf's on-disk caches.

    ``$HYBRIDCLF_CACHE_DIR`` when set, else ``~/.cache/hybridclf``. Exported
    ONNX graphs go to its ``onnx`` folder and the features of training images
    to its ``features`` folder; deleting it only costs recomputation.
    """
    return os.environ.get("HYBRIDCLF_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "hybridclf")
