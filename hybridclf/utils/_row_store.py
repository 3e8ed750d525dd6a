"""Rows of arrays kept on disk under content digests: the store of the caches.

The feature cache (:class:`hybridclf.training.FeatureCache`) and the
duplicate search's cache (``hybridclf.inspect._scan_cache``) keep one row per
image (or pair of images) under a **settings key** that says how the rows
were computed. :class:`RowStore` is their common store: ``DIR/<key>/`` holds
``settings.json`` (what the key stands for) and ``.npz`` shards, each with
``keys`` (SHA-256 digests, hex) and named arrays of one row per key. A run
writes one new shard, to a temporary name first and then renamed, so a
concurrent run never reads half a file; past ``max_shards`` shards a key's
shards are merged into one. A shard that cannot be read (truncated,
bit-flipped: the zip format's CRC-32 catches it), that does not hold the
expected arrays, or that would take more memory than its size (a member
deflated, an array header larger than its data: a hostile file, as
:func:`~hybridclf.utils._archive.archive_problem` tells) or stall the run (a
FIFO) is logged and deleted, never used.

The helpers make settings keys: :func:`library_versions`,
:func:`source_digests` (an edited module in a development checkout keeps
the package version; its content still changes the key), :func:`file_digest`
and :func:`settings_hash`.
"""

import errno
import hashlib
import json
import logging
import os
import stat
import sys
import time
import uuid
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version

import numpy as np

from ._archive import archive_problem, open_regular
from ._paths import sha256_file, written_whole

__all__ = [
    "RowStore",
    "content_digest",
    "file_digest",
    "library_versions",
    "settings_hash",
    "source_digests",
]

logger = logging.getLogger(__name__)

DIGEST_DTYPE = "S64"  # hex SHA-256


@lru_cache(maxsize=8)
def library_versions(packages):
    """``{package: version}`` of the installed ones among ``packages`` (a tuple)."""
    versions = {}
    for package in packages:
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            pass
    return versions


# a file changed this long after its stat was taken may keep its times on a
# file system of coarse timestamps (FAT: 2 s): such a file is not remembered
_RACY_NS = 3_000_000_000


# one entry per file a process hashes (64 hex digits each): a training hashes
# each photo for its label conflicts, its duplicate search and its cache keys
@lru_cache(maxsize=1 << 16)
def _digest_of_file(path, identity):
    return sha256_file(path)


def file_digest(path):
    """SHA-256 (hex) of a file's bytes, remembered while its stat holds.

    The digest is remembered under the file's device, inode, size, and
    modification and change times (a photo edited in place whose time was
    set back, ``touch -r``, has a new change time; one replaced by a rename
    a new inode), and only once the file is a few seconds old: one written
    again within the same tick of a coarse clock keeps all of them. A path
    that is not a regular file (a FIFO, a device, a folder) raises OSError
    unopened.
    """
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):  # opening a FIFO would wait for a writer
        raise OSError(errno.EINVAL, "not a regular file", os.fspath(path))
    if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) < _RACY_NS:
        return sha256_file(path)
    identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    return _digest_of_file(os.fspath(path), identity)


def source_digests(*objects):
    """SHA-256 of the source files behind ``objects``, by module name.

    A module counts as itself, a function as its module; any other object
    counts as the modules of the classes of its type's MRO (scikit-learn's
    and the builtins' left out).
    """
    modules = []
    for obj in objects:
        if isinstance(obj, type(sys)):
            modules.append(obj.__name__)
        elif isinstance(obj, type(source_digests)):
            modules.append(obj.__module__)
        else:
            modules.extend(cls.__module__ for cls in type(obj).__mro__)
    digests = {}
    for name in modules:
        path = getattr(sys.modules.get(name), "__file__", None)
        if not path or name.split(".")[0] in ("builtins", "sklearn"):
            continue
        try:
            digests[name] = file_digest(path)
        except OSError:
            continue
    return digests


def settings_hash(description):
    """The 32-hex-digit key of a JSON-able description of settings."""
    text = json.dumps(description, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def content_digest(image):
    """SHA-256 (hex) of an image's content: a file's bytes, bytes, or an array.

    Returns None for a file that cannot be read (the loader reports it).
    """
    if isinstance(image, (str, os.PathLike)):
        try:
            return file_digest(image)
        except OSError:
            return None
    digest = hashlib.sha256()
    if isinstance(image, (bytes, bytearray)):
        digest.update(image)
    else:
        array = np.ascontiguousarray(image)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


class RowStore:
    """Rows of named arrays under digests, in per-key folders of shards.

    See the module's docstring for the layout.

    Parameters
    ----------
    directory : str or os.PathLike
        The folder of the keys' folders.

    fields : dict of str to dtype
        The arrays of each row besides ``keys``, and their dtypes (for a
        bytes dtype, any length). A shard without exactly these is not used.

    max_shards : int, default=8
        Shards of one key before they are merged into one.

    name : str, default="cache"
        What the log messages call it ("feature cache").
    """

    def __init__(self, directory, fields, *, max_shards=8, name="cache"):
        self.directory = os.fspath(directory)
        self.fields = {name: np.dtype(dtype) for name, dtype in fields.items()}
        self.max_shards = max_shards
        self.name = name

    def describe(self, key, description):
        """Write ``settings.json`` of a key once (what its folder holds)."""
        folder = os.path.join(self.directory, key)
        path = os.path.join(folder, "settings.json")
        if os.path.exists(path):
            return
        try:
            os.makedirs(folder, exist_ok=True)
            with written_whole(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
                json.dump(description, fh, indent=2, sort_keys=True)
        except OSError as exc:
            logger.warning("Cannot write the %s %s: %s", self.name, folder, exc)

    def shards(self, key):
        """The shard files of a key."""
        folder = os.path.join(self.directory, key)
        try:
            names = os.listdir(folder)
        except OSError:
            return []
        return sorted(os.path.join(folder, n) for n in names if n.endswith(".npz"))

    def _read_shard(self, path):
        """{"keys": ..., field: ...} of one shard; None when missing or unusable.

        Only a regular file is opened (a FIFO would stall the run), and only
        an archive as :meth:`append` writes them is unpacked: members stored,
        each array no larger than its member
        (:func:`~hybridclf.utils._archive.archive_problem`), so that a
        hostile or damaged shard never takes more memory than its size.
        """
        try:
            with open_regular(path) as fh:
                problem = archive_problem(fh, os.fstat(fh.fileno()).st_size)
                if problem is None:
                    fh.seek(0)
                    arrays, extra = self._arrays(fh)
            if problem is not None:
                self.discard(path, problem)
                return None
            keys = arrays["keys"]
            bad = [f"{name} {a.dtype}{a.shape}" for name, a in arrays.items()
                   if len(a) != len(keys) or not _same_kind(
                       a.dtype, self.fields.get(name, np.dtype(DIGEST_DTYPE)))]
            if keys.ndim != 1 or bad or extra:
                raise ValueError("unexpected arrays " + ", ".join(
                    bad + sorted(extra) or [f"keys{keys.shape}"]))
            return arrays
        except FileNotFoundError:
            return None  # merged away by a concurrent run
        except Exception as exc:  # noqa: BLE001 - any damage means: recompute
            self.discard(path, f"damaged ({type(exc).__name__}: {exc})")
            return None

    def _arrays(self, fh):
        """The arrays of an open shard, and the names of any others in it."""
        with np.load(fh, allow_pickle=False) as data:
            arrays = {name: data[name] for name in ("keys", *self.fields)}
            return arrays, set(data.files) - set(arrays)

    def load(self, key):
        """Every stored row of a key.

        Returns
        -------
        index : dict of bytes to int
            Digest -> row of ``arrays`` (a later shard wins).

        arrays : dict of str to ndarray or None
            Each field's rows; None when nothing is stored.

        read : list of str
            The shards read.
        """
        parts, read = [], []
        for path in self.shards(key):
            shard = self._read_shard(path)
            if shard is None:
                continue
            if parts and any(shard[n].shape[1:] != parts[0][n].shape[1:]
                             for n in self.fields):
                self.discard(path, "rows shaped unlike the other shards")
                continue
            parts.append(shard)
            read.append(path)
        if not parts:
            return {}, None, read
        keys = np.concatenate([p["keys"] for p in parts])
        arrays = {n: np.concatenate([p[n] for p in parts]) for n in self.fields}
        return dict(zip(keys.tolist(), range(len(keys)))), arrays, read

    def discard(self, path, why):
        """Log and delete a shard that must not be used; its rows are recomputed."""
        logger.warning("Ignoring the %s file %s: %s; its rows are recomputed.",
                       self.name, path, why)
        try:
            os.remove(path)
        except FileNotFoundError:
            pass
        except OSError as exc:  # read-only: every run would warn again
            logger.warning("Cannot delete it (%s): delete the folder %s (it "
                           "only costs recomputation).", exc, self.directory)

    def append(self, key, digests, arrays):
        """Store rows: ``digests`` (hex str) and each field's array of rows.

        Write errors are logged, not raised: a cache that cannot be written
        only costs recomputation.
        """
        if not len(digests):
            return
        rows = {n: np.asarray(arrays[n], dtype=self.fields[n]) for n in self.fields}
        try:
            self._write(key, np.asarray(digests, dtype=DIGEST_DTYPE), rows)
            if len(self.shards(key)) > self.max_shards:
                self._merge(key)
        except OSError as exc:
            logger.warning("Cannot write the %s in %s: %s", self.name,
                           self.directory, exc)

    def clear(self, key):
        """Delete a key's rows (they no longer fit)."""
        for path in self.shards(key):
            self.discard(path, "replaced by recomputed rows")

    def _write(self, key, keys, rows):
        folder = os.path.join(self.directory, key)
        os.makedirs(folder, exist_ok=True)
        shard = os.path.join(folder, f"{uuid.uuid4().hex}.npz")
        with written_whole(shard) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, keys=keys, **rows)

    def _merge(self, key):
        """Merge a key's shards into one; the merged ones are then removed."""
        index, arrays, read = self.load(key)
        if len(read) < 2:
            return
        rows = list(index.values())
        self._write(key, np.asarray(list(index), dtype=DIGEST_DTYPE),
                    {n: a[rows] for n, a in arrays.items()})
        for path in read:
            try:
                os.remove(path)
            except OSError:
                pass


def _same_kind(dtype, expected):
    """Whether a stored array's dtype is the field's (any length for bytes)."""
    if expected.kind in "SU":
        return dtype.kind == expected.kind
    return dtype == expected
