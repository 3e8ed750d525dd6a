"""hybridclf: image classification with deep and classical features in scikit-learn.

The main entry point is :func:`make_hybrid_pipeline`, which returns an
imbalanced-learn ``Pipeline`` from image paths to class labels::

    from hybridclf import load_image_folder, make_hybrid_pipeline
    paths, labels = load_image_folder("dataset/")
    pipe = make_hybrid_pipeline().fit(paths, labels)
    pipe.predict(["new_photo.jpg"])
"""

from importlib.metadata import PackageNotFoundError, version

from .exceptions import HybridClfError, ImageLoadError, SkippedFilesWarning
from .inspect import (
    DatasetReport,
    InspectThresholds,
    find_duplicate_groups,
    inspect_dataset,
)
from .io import ImageLoader, load_image_folder, read_image
from .persistence import load_model, save_model
from .pipeline import make_hybrid_pipeline
from .sampling import ClassAwareAugmenter

try:
    __version__ = version("hybridclf")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

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
