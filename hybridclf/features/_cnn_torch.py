"""Build and run a CNN embedding network in PyTorch, on the device it runs on.

torch is imported only inside functions, so ``import hybridclf`` stays light.
"""

import os
import sys
import warnings

import numpy as np
from joblib import effective_n_jobs

from ..exceptions import DeviceWarning

# imported with this module, not when a network is built: the feature cache keys
# on the sources of the loaded CNN modules (hybridclf.features._cnn)
from ._cnn_embedding import embedding_network

__all__ = ["build_network", "resolve_device", "run_network", "torch_sees_gpu"]


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


def torch_sees_gpu():
    """True when PyTorch is installed and sees a CUDA GPU.

    A ``CNNFeatures`` fitted on a GPU records ``device_="cuda"`` and predicts
    anywhere: where PyTorch is missing (the serving image of ``hybridclf
    deploy`` installs none) or sees no GPU, ONNX Runtime runs its graph on
    the CPU.
    """
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def resolve_device(device):
    """"cuda" or "cpu" for the ``device`` parameter of ``CNNFeatures``.

    Warns (:class:`~hybridclf.exceptions.DeviceWarning`) when CUDA was asked
    for but PyTorch sees no GPU.
    """
    if device == "cpu" or (device == "auto" and not _cuda_possible()):
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if device == "cuda":
        warnings.warn(
            "CNNFeatures was asked for device='cuda' but PyTorch sees no CUDA "
            "GPU; running on the CPU instead. Pass device='cpu' to silence "
            "this warning.",
            DeviceWarning,
            stacklevel=4,
        )
    return "cpu"


def build_network(backbone, weights, *, layer, pooling, flip_tta, state=None):
    """The torch embedding network on the CPU, with fine-tuned weights.

    Parameters
    ----------
    backbone, weights, layer, pooling, flip_tta
        As the parameters of ``CNNFeatures``.

    state : dict of str to ndarray, default=None
        Fine-tuned weights (``fine_tuned_state_``) loaded over the backbone's.

    Returns
    -------
    net : torch.nn.Module
        The network, in evaluation mode.

    spec : BackboneSpec
        The backbone's description (input size, ...).
    """
    import torch

    from ._backbones import load_backbone

    model, spec = load_backbone(backbone, weights)
    net = embedding_network(model, spec, backbone, layer=layer,
                            pooling=pooling, flip_tta=flip_tta)
    if state:
        net.load_state_dict(
            {k: torch.from_numpy(np.asarray(v)) for k, v in state.items()},
            strict=False,
        )
    return net.eval(), spec


def run_network(net, batch, device, n_jobs):
    """Embeddings of one prepared batch, by PyTorch on ``device`` if it can."""
    import torch

    on_gpu = device == "cuda" and torch.cuda.is_available()
    device = "cuda" if on_gpu else "cpu"
    net = net.to(device, memory_format=torch.channels_last)
    if not on_gpu:
        torch.set_num_threads(effective_n_jobs(n_jobs))
    with torch.inference_mode(), torch.autocast(
        device_type=device, dtype=torch.bfloat16 if on_gpu else torch.float32,
        enabled=on_gpu,
    ):
        tensor = torch.from_numpy(batch).to(device, non_blocking=True)
        out = net(tensor.contiguous(memory_format=torch.channels_last))
    return out.float().cpu().numpy()
