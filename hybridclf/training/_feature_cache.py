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

Layout: ``DIR/<settings key>/settings.json`` says what the key stands for,
and each ``DIR/<settings key>/<id>.npz`` shard holds ``keys`` (image hashes)
and ``features`` (float32 rows). A run that computes new features writes one
new shard, to a temporary name first and then renamed, so a concurrent run
never reads half a file; when a key has more than ``max_shards`` shards, they
are merged into one. A shard that cannot be read (truncated, bit-flipped: the
zip format's CRC-32 catches it) is logged, deleted and its images recomputed,
never used. Deleting the folder only costs recomputation.
"""

import hashlib
import json
import logging
import os
import sys
import uuid
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version

import numpy as np

from ..utils._paths import cache_root

__all__ = ["FeatureCache", "default_feature_cache_dir"]

logger = logging.getLogger(__name__)

# libraries whose versions can change the features an extractor computes
_FEATURE_LIBRARIES = ("hybridclf", "numpy", "opencv-contrib-python-headless",
                      "opencv-python-headless", "opencv-python",
                      "scikit-image", "onnxruntime", "torch",
                      "efficientnet-lite-pytorch")
_DIGEST = "S64"  # hex SHA-256


def default_feature_cache_dir():
    """``$HYBRIDCLF_CACHE_DIR/features``, or ``~/.cache/hybridclf/features``."""
    return os.path.join(cache_root(), "features")


@lru_cache(maxsize=1)
def _library_versions():
    versions = {}
    for package in _FEATURE_LIBRARIES:
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            pass
    return versions


@lru_cache(maxsize=256)
def _file_digest(path, size, mtime_ns):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _source_digests(*objects):
    """SHA-256 of the source files of the classes behind ``objects``.

    An edited extractor in a development checkout keeps the package version;
    its source file's content still changes the key.
    """
    digests = {}
    for obj in objects:
        for cls in type(obj).__mro__:
            module = sys.modules.get(cls.__module__)
            path = getattr(module, "__file__", None)
            if not path or cls.__module__.split(".")[0] in ("builtins", "sklearn"):
                continue
            try:
                st = os.stat(path)
            except OSError:
                continue
            digests[cls.__module__] = _file_digest(path, st.st_size, st.st_mtime_ns)
    return digests


def _plain(value):
    """A parameter value as JSON; a file it names by its content."""
    if isinstance(value, (str, os.PathLike)) and os.path.isfile(value):
        st = os.stat(value)
        return {"file": os.fspath(value),
                "sha256": _file_digest(os.fspath(value), st.st_size, st.st_mtime_ns)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    text = repr(value)
    if " at 0x" in text:  # an object without a stable description
        raise TypeError(text)
    return f"{type(value).__module__}.{type(value).__qualname__}:{text}"


def image_digest(image):
    """SHA-256 (hex) of an image's content: a file's bytes, bytes, or an array.

    Returns None for a file that cannot be read (the loader reports it).
    """
    digest = hashlib.sha256()
    if isinstance(image, (str, os.PathLike)):
        try:
            with open(image, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
        except OSError:
            return None
    elif isinstance(image, (bytes, bytearray)):
        digest.update(image)
    else:
        array = np.ascontiguousarray(image)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


class FeatureCache:
    """Per-image features of fixed feature blocks, kept on disk.

    See the module's docstring for what is kept and how. :func:`train_model`
    takes one as ``feature_cache``; ``hybridclf train`` uses
    :func:`default_feature_cache_dir` unless told ``--cache-dir DIR`` or
    ``--no-cache``.

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
                "versions": _library_versions(),
                "sources": _source_digests(extractor, loader),
            }
        except (TypeError, OSError):
            return None
        text = json.dumps(description, sort_keys=True)
        key = hashlib.sha256(text.encode()).hexdigest()[:32]
        self._describe(key, description)
        return key

    def _describe(self, key, description):
        """Write ``settings.json`` of a key once (what the folder holds)."""
        folder = os.path.join(self.directory, key)
        path = os.path.join(folder, "settings.json")
        if os.path.exists(path):
            return
        try:
            os.makedirs(folder, exist_ok=True)
            tmp = f"{path}.{uuid.uuid4().hex}.tmp"
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(description, fh, indent=2, sort_keys=True)
            os.replace(tmp, path)
        except OSError as exc:
            logger.warning("Cannot write the feature cache %s: %s", folder, exc)

    def _shards(self, key):
        folder = os.path.join(self.directory, key)
        try:
            names = os.listdir(folder)
        except OSError:
            return []
        return sorted(os.path.join(folder, n) for n in names if n.endswith(".npz"))

    @staticmethod
    def _read_shard(path):
        """(keys, features) of one shard; None when missing or corrupt."""
        try:
            with np.load(path, allow_pickle=False) as data:
                keys, features = data["keys"], data["features"]
            if (keys.ndim != 1 or features.ndim != 2 or len(keys) != len(features)
                    or features.dtype != np.float32 or keys.dtype.kind != "S"):
                raise ValueError("unexpected arrays "
                                 f"{keys.dtype}{keys.shape}/{features.shape}")
            return keys, features
        except FileNotFoundError:
            return None  # merged away by a concurrent run
        except Exception as exc:  # noqa: BLE001 - any damage means: recompute
            FeatureCache._discard(path, f"damaged ({type(exc).__name__}: {exc})")
            return None

    def _load(self, key):
        """Every stored row of a key: {digest: row}, and the shards read."""
        table, read = {}, []
        for path in self._shards(key):
            shard = self._read_shard(path)
            if shard is None:
                continue
            if table and shard[1].shape[1] != len(next(iter(table.values()))):
                self._discard(path, "a width unlike the other shards")
                continue
            read.append(path)
            table.update(zip(shard[0].tolist(), shard[1]))
        return table, read

    @staticmethod
    def _discard(path, why):
        """Log and delete a shard that must not be used; its images are recomputed."""
        logger.warning("Ignoring the feature cache file %s: %s; its images are "
                       "recomputed.", path, why)
        try:
            os.remove(path)
        except OSError:
            pass

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
        table, _ = self._load(key)
        found, missing = {}, []
        for i, digest in enumerate(digests):
            row = None if digest is None else table.get(digest.encode())
            if row is None:
                missing.append(i)
            else:
                found[i] = row
        self.hits += len(found)
        return found, missing

    def store(self, key, digests, features, *, replace=False):
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
        """
        if replace:
            for path in self._shards(key):
                self._discard(path, "replaced by recomputed features")
        keep = [i for i, d in enumerate(digests) if d is not None]
        self.computed += len(digests)
        if not keep:
            return
        keys = np.asarray([digests[i] for i in keep], dtype=_DIGEST)
        rows = np.asarray(features, dtype=np.float32)[keep]
        try:
            self._write(key, keys, rows)
            if len(self._shards(key)) > self.max_shards:
                self._merge(key)
        except OSError as exc:
            logger.warning("Cannot write the feature cache in %s: %s",
                           self.directory, exc)

    def _write(self, key, keys, rows):
        folder = os.path.join(self.directory, key)
        os.makedirs(folder, exist_ok=True)
        name = uuid.uuid4().hex
        tmp = os.path.join(folder, f".{name}.tmp")
        with open(tmp, "wb") as fh:
            np.savez(fh, keys=keys, features=rows)
        os.replace(tmp, os.path.join(folder, f"{name}.npz"))  # atomic

    def _merge(self, key):
        """Merge a key's shards into one; the merged ones are then removed."""
        table, read = self._load(key)
        if len(read) < 2:
            return
        self._write(key, np.asarray(list(table), dtype=_DIGEST),
                    np.stack(list(table.values())))
        for path in read:
            try:
                os.remove(path)
            except OSError:
                pass
