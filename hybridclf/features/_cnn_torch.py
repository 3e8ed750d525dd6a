"""Run a CNN embedding network in PyTorch: the device it runs on.

torch is imported only inside functions, so ``import hybridclf`` stays light.
"""

import os
import sys


def _cuda_possible():
    """False when this machine surely has no CUDA GPU, found without PyTorch.

    Importing PyTorch only to hear "no GPU" costs seconds, more than a whole
    retraining from cached features. Linux exposes NVIDIA GPUs as
    ``/dev/nvidiactl`` (``/dev/dxg`` under WSL 2); macOS has no CUDA.
    """
    if "torch" in sys.modules:
        return True  # already imported: ask it
    if sys.platform == "darwin":
        return False
    if sys.platform.startswith("linux"):
        return os.path.exists("/dev/nvidiactl") or os.path.exists("/dev/dxg")
    return True

