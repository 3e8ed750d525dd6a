"""hybridclf: image classification with deep and classical features in scikit-learn.

The main entry point is :func:`make_hybrid_pipeline`, which returns an
imbalanced-learn ``Pipeline`` from image paths to class labels::

    from hybridclf import load_image_folder, make_hybrid_pipeline
    paths, labels = load_image_folder("dataset/")
    pipe = make_hybrid_pipeline().fit(paths, labels)
    pipe.predict(["new_photo.jpg"])
"""

import importlib
from importlib.metadata import PackageNotFoundError, version

from .exceptions import HybridClfError, ImageLoadError, SkippedFilesWarning

try:
    __version__ = version("hybridclf")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

# The public names are imported on first use (PEP 562), so that `import
# hybridclf` and `hybridclf --help` do not import scikit-learn.
_LAZY = {
    "ClassAwareAugmenter": "sampling",
    "DatasetReport": "inspect",
    "InspectThresholds": "inspect",
    "find_duplicate_groups": "inspect",
    "inspect_dataset": "inspect",
    "ImageLoader": "io",
    "load_image_folder": "io",
    "read_image": "io",
    "load_model": "persistence",
    "save_model": "persistence",
    "make_hybrid_pipeline": "pipeline",
}


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    try:  # a submodule, as `import hybridclf; hybridclf.pipeline` used to give
        return importlib.import_module(f".{name}", __name__)
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{name}":
            raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "ClassAwareAugmenter",
    "DatasetReport",
    "HybridClfError",
    "ImageLoadError",
    "ImageLoader",
    "InspectThresholds",
    "SkippedFilesWarning",
    "__version__",
    "find_duplicate_groups",
    "inspect_dataset",
    "load_image_folder",
    "load_model",
    "make_hybrid_pipeline",
    "read_image",
    "save_model",
]
