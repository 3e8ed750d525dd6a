"""The CNN embeddings of the degraded views of training photos, for the novelty index.

The index of the novelty check holds every training photo and its blurred
and turned views (:data:`hybridclf.neighbours.VIEWS`): four CNN passes per
photo, more than the photo's own features. :func:`embed_views` computes them
and, from the same decoded photos, their thumbnails. With a
:class:`FeatureCache`, the embeddings of each view are kept under the
photo's content and a key derived from the CNN block's
(:func:`view_keys`: the view, and the code that makes it), so a retraining
embeds the views of new photos only.

The views depend on the photos and the network only, not on what the
classifier learns, so :func:`start_views` runs :func:`embed_views` in a
thread: ``train_model`` starts it once the folds' CNN features are known and
fits the folds' classifiers, finds the label issues and fits the final
pipeline meanwhile (the network runs in ONNX Runtime's own threads, outside
Python's lock), then collects it for the index.
"""

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from .. import neighbours
from ..neighbours import VIEWS, degraded_views, jpeg_thumbnails
from ..pipeline import (
    get_block_extractor,
    get_block_scaler,
    get_loader,
    iter_feature_blocks,
)
from ._feature_cache import cache_use_line

__all__ = ["ViewEmbeddings", "embed_views", "start_views", "view_keys"]

logger = logging.getLogger(__name__)

#: The feature block whose output is the embedding of the novelty check.
EMBEDDING_BLOCK = "cnn"


@dataclass
class ViewEmbeddings:
    """What :func:`embed_views` returns.

    Attributes
    ----------
    views : list of ndarray of shape (n_photos, n_features)
        The embeddings of each view of :data:`~hybridclf.neighbours.VIEWS`.
    thumbnails : dict
        Row -> JPEG thumbnail of the photos decoded here.
    photos : ndarray of shape (n_photos, n_features) or None
        The photos' own embeddings, when asked for.
    n_embedded : int
        Photos whose views were embedded (the others came from the cache).
    seconds : float
        The time it took.
    """

    views: list
    thumbnails: dict
    photos: np.ndarray = None
    n_embedded: int = 0
    seconds: float = 0.0


def view_keys(pipe, cache):
    """The cache keys of the CNN embeddings of each view; None: not cached.

    The embedding is the CNN block's own output only when the block has a
    scaler (:func:`~hybridclf.prediction.embed_images`); that output is cached
    when the extractor is (:meth:`FeatureCache.settings_key`). ``pipe`` may be
    fitted or not: the key depends on parameters only.
    """
    if cache is None:
        return None
    block = dict(iter_feature_blocks(pipe)).get(EMBEDDING_BLOCK)
    if block is None or get_block_scaler(block) is None:
        return None
    key = cache.settings_key(get_block_extractor(block), get_loader(pipe))
    if key is None:
        return None
    from ..augment import gaussian_blur, rotate

    return [cache.derived_key(key, list(view), neighbours, gaussian_blur, rotate)
            for view in VIEWS]


def embed_views(embed, load, n, *, width=None, keys=None, cache=None,
                digests=None, thumbnails=True, photos=False, batch=256,
                sources=None, progress=False):
    """The embeddings of the degraded views of ``n`` training photos.

    Parameters
    ----------
    embed : callable
        Loaded images -> their embeddings, ndarray of shape (n_images,
        n_features).

    load : callable
        Rows (ndarray of int, of the ``n`` photos) -> those photos loaded,
        ndarray of shape (n_rows, height, width, 3).

    n : int
        The number of photos.

    width : int or None, default=None
        The embeddings' width; cached rows of another width are replaced.

    keys : list of str or None, default=None
        Each view's cache key (:func:`view_keys`); None caches nothing and
        embeds every photo's views.

    cache : FeatureCache or None, default=None
        Where the embeddings are read and kept, with ``keys``.

    digests : sequence of str or None, default=None
        The photos' :func:`image_digest`, with ``keys``.

    thumbnails : bool, default=True
        Make the JPEG thumbnails of the photos loaded here.

    photos : bool, default=False
        Embed the photos themselves too (``ViewEmbeddings.photos``).

    batch : int, default=256
        Photos loaded and viewed at once (bounds the memory of the views).

    sources : sequence or None, default=None
        The ``n`` photos as given (paths): one whose file changed since its
        digest was taken is not stored (:meth:`FeatureCache.store`).

    progress : bool, default=False
        Show a progress bar over the views embedded (the CNN runs on each
        of the ``len(VIEWS)`` views of every photo not in the cache).

    Returns
    -------
    embeddings : ViewEmbeddings
        The views' embeddings and the thumbnails made.
    """
    started = time.perf_counter()
    views, missing = _cached_views(cache, keys, digests, n, width)
    todo = np.arange(n) if keys is None else np.asarray(
        sorted(set().union(*missing)), dtype=int)
    if keys is not None:
        logger.info("Novelty index: %s", cache_use_line(
            len(todo), n, made="views embedded", items="photos"))
    parts, view_parts, made = [], [], {}
    bar = _progress_bar(len(todo) * len(VIEWS), progress)
    for start in range(0, len(todo), batch):
        rows = todo[start:start + batch]
        loaded = load(rows)
        if thumbnails:
            made.update(zip(rows.tolist(), jpeg_thumbnails(loaded)))
        if photos:
            parts.append(embed(loaded))
        view_parts.append([_embedded(embed, v, bar) for v in degraded_views(loaded)])
    if bar is not None:
        bar.close()
    for k, rows in enumerate(np.vstack(v) for v in zip(*view_parts)):
        if views[k] is None:
            views[k] = np.empty((n, rows.shape[1]), dtype=np.float32)
        views[k][todo] = rows
        if keys is not None:
            store = sorted(missing[k])
            cache.store(keys[k], [digests[i] for i in store], views[k][store],
                        images=None if sources is None else [
                            sources[i] for i in store])
    return ViewEmbeddings(
        views=views, thumbnails=made,
        photos=np.vstack(parts) if photos and parts else None,
        n_embedded=len(todo), seconds=time.perf_counter() - started)


def _progress_bar(total, progress):
    """A tqdm bar over ``total`` views, or None (no progress, nothing to do)."""
    if not progress or not total:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="novelty index: views of the training photos",
                unit="view")


def _embedded(embed, images, bar):
    """``embed(images)``, counted on ``bar``."""
    rows = embed(images)
    if bar is not None:
        bar.update(len(images))
    return rows


def start_views(embed, load, n, **params):
    """:func:`embed_views` in a thread of its own; returns its ``Future``.

    The caller collects it with ``future.result()`` (which raises what the
    thread raised).
    """
    executor = ThreadPoolExecutor(max_workers=1,
                                  thread_name_prefix="hybridclf-views")
    try:
        return executor.submit(embed_views, embed, load, n, **params)
    finally:
        executor.shutdown(wait=False)  # the thread ends with its one task


def _cached_views(cache, keys, digests, n, width):
    """Each view's table from the cache (None where empty) and its missing rows.

    Rows of another width than the embeddings' are not used (and replaced).
    """
    if keys is None:
        return [None] * len(VIEWS), [range(n)] * len(VIEWS)
    views, missing = [], []
    for key in keys:
        found, absent = cache.lookup(key, digests)
        table = None
        if found and len(next(iter(found.values()))) != width:
            cache.store(key, [], np.empty((0, width)), replace=True)
            found, absent = {}, list(range(n))
        if found:
            table = np.empty((n, width), np.float32)
            table[list(found)] = np.stack(list(found.values()))
        views.append(table)
        missing.append(absent)
    return views, missing
