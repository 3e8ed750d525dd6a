"""The file of an embedding index: :data:`INDEX_FILE`, a NumPy ``.npz``.

``_index_bytes`` writes what :meth:`EmbeddingIndex.to_bytes` returns and
``_load_index`` reads it back for :meth:`EmbeddingIndex.load`. The archive
holds no pickled objects: the embeddings in their ``dtype``, the labels once
per training photo (or per entry, for views labelled unlike their photo) and
the file names as UTF-8 (``_utf8``, read by ``_text``), the distinct photo
of each training photo (``photos``, only where some training photos are one
photo; absent, each is its own), the ``components``
as float16, and the thumbnails as one ``uint8`` array with the offset where
each starts. Format 1 (before the projection; labels per entry, names as
str) still loads.
"""

import io
import os

import numpy as np

from .._model_files import check_archive, check_listed_file
from ..exceptions import ModelLoadError

__all__ = ["INDEX_FILE"]

#: File name of the index inside a model directory.
INDEX_FILE = "neighbours.npz"
# 2: the projection ("components"), labels once per photo, UTF-8 names
_FORMAT_VERSION = 2
_READABLE_VERSIONS = (1, 2)


def _index_bytes(index):
    """The ``.npz`` archive of a fitted index, as bytes."""
    labels = index._source_labels()
    if not np.array_equal(labels[index.sources_], index.labels_):
        labels = index.labels_  # views labelled unlike their photo: per entry
    arrays = {"embeddings": index.embeddings_, "labels": _utf8(labels),
              "sources": index.sources_.astype(np.int32),
              "files": _utf8(index.files_), "version": np.array(_FORMAT_VERSION)}
    photos = getattr(index, "photos_", None)
    if photos is not None and len(np.unique(photos)) < len(photos):
        arrays["photos"] = photos.astype(np.int32)  # only where some are one
    if getattr(index, "components_", None) is not None:
        arrays["components"] = index.components_.astype(np.float16)
    if index.thumbnails_ is not None:
        sizes = [len(t) for t in index.thumbnails_]
        arrays["thumbnail_offsets"] = np.concatenate(
            [[0], np.cumsum(sizes)]).astype(np.int64)
        arrays["thumbnail_data"] = np.frombuffer(b"".join(index.thumbnails_),
                                                 dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _load_index(cls, directory):
    """The index of class ``cls`` saved in ``directory``, or None.

    In a model directory, the file is checked against ``manifest.json``
    first (:func:`check_listed_file`): an index deleted, changed or copied
    in from another model is refused, not read or taken as absent; so is
    one that would unpack to far more than its size (:func:`check_archive`).
    """
    path = os.path.join(os.fspath(directory), INDEX_FILE)
    if not check_listed_file(directory, INDEX_FILE, ModelLoadError):
        return None
    check_archive(path, ModelLoadError)  # a deflated bomb: gigabytes in np.load
    with np.load(path, allow_pickle=False) as data:
        version = int(data["version"]) if "version" in data else -1
        if version > _FORMAT_VERSION and "embeddings" in data:
            raise ValueError(
                f"{path!r} is an embedding index of format {version}, written by "
                f"a newer hybridclf; this one reads formats up to "
                f"{_FORMAT_VERSION}. Upgrade hybridclf, or retrain the model with "
                "this one ('hybridclf train') to rebuild it."
            )
        if version not in _READABLE_VERSIONS or "embeddings" not in data:
            raise ValueError(
                f"{path!r} is not a hybridclf embedding index of format "
                f"{_FORMAT_VERSION} or older (found {version}); retrain the "
                "model with 'hybridclf train' to rebuild it."
            )
        index = cls(dtype=str(data["embeddings"].dtype))
        index.embeddings_ = data["embeddings"]
        index.components_ = (data["components"].astype(np.float32)
                             if "components" in data else None)
        if index.components_ is not None:
            index.n_components = len(index.components_)
        index.sources_ = data["sources"].astype(np.int64)
        labels = _text(data["labels"])
        index.labels_ = (labels if len(labels) == len(index.sources_)
                         else labels[index.sources_])
        n_sources = int(index.sources_.max()) + 1
        index.files_ = (_text(data["files"]) if "files" in data
                        else np.full(n_sources, ""))
        index.photos_ = (data["photos"].astype(np.int64) if "photos" in data
                         else np.arange(n_sources))
        index.thumbnails_ = None
        if "thumbnail_data" in data:
            blob = data["thumbnail_data"].tobytes()
            offsets = data["thumbnail_offsets"].tolist()
            index.thumbnails_ = [blob[a:b] for a, b in
                                 zip(offsets[:-1], offsets[1:])]
    return index


def _utf8(strings):
    """Strings as UTF-8 bytes: a quarter of NumPy's 4 bytes per character."""
    # a file name that is not UTF-8 keeps its bytes (os.listdir's surrogates)
    return np.char.encode(np.asarray(strings).astype(str), "utf-8", "surrogateescape")


def _text(array):
    """Strings saved by :func:`_utf8`, or as str by format 1."""
    return (np.char.decode(array, "utf-8", "surrogateescape") if array.dtype.kind == "S"
            else array.astype(str))
