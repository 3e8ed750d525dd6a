"""The features of a fitted pipeline: the scaled table, block by block, by stage.

:func:`transform_features` gives the input of a pipeline's classifier,
running the feature blocks side by side for one or two images
(:func:`transform_blocks`); :func:`feature_blocks` names the blocks and their
widths; :func:`iter_stages` gives features and probabilities stage by stage
(a cascade's early answers first).
"""

import numpy as np

from ..pipeline import (
    get_block_extractor,
    get_classifier,
    get_feature_union,
    get_loader,
    iter_feature_blocks,
)
from ..utils._parallel import effective_threads, in_worker
from ._block_parts import run_block_parts

__all__ = ["feature_blocks", "iter_stages", "transform_blocks",
           "transform_features"]

def transform_features(pipe, X):
    """The scaled feature table of a fitted pipeline (the input of its ``clf``).

    Parameters
    ----------
    pipe : fitted Pipeline
        A hybrid pipeline with steps ``load``, ``augment``, ``features``,
        ``clf``.

    X : sequence of images or paths
        What ``pipe.predict`` takes.

    Returns
    -------
    features : ndarray of shape (n_samples, n_features), dtype float32
        What the pipeline's ``clf`` step receives.
    """
    loader = get_loader(pipe)
    images = X if loader is None else loader.transform(X)
    union = get_feature_union(pipe)
    blocks = [b for _, b in getattr(union, "transformer_list", [])]
    if (getattr(union, "transformer_weights", None) is not None
            or any(isinstance(b, str) for b in blocks)
            or not blocks or len(images) > 2):
        return np.asarray(union.transform(images), dtype=np.float32)
    return np.hstack(transform_blocks(blocks, images))


def transform_blocks(blocks, images, *, n_threads=None):
    """The features of each block for the same images, side by side if that helps.

    A block spreads a batch over its ``n_jobs`` threads, image by image; one
    or two images leave those threads idle. Then the blocks' parts are
    spread over the threads instead, longest first
    (:func:`~hybridclf.prediction._block_parts.run_block_parts`): the CNN in
    ONNX Runtime on one while HOG, LBP and colour run on another; without
    the CNN, LBP's two scales on different threads. That cuts the latency
    of a single prediction.

    Parameters
    ----------
    blocks : list of transformer
        Fitted feature blocks (the ``features`` step's transformers).

    images : ndarray of shape (n_images, height, width, 3)
        Loaded images.

    n_threads : int or None, default=None
        At most this many threads side by side (1: one after the other in
        this thread, as when another thread keeps the other cores busy);
        None: as many as the blocks' ``n_jobs``.

    Returns
    -------
    parts : list of ndarray of shape (n_images, n_block_features), float32
        One per block, in order.
    """
    if len(images) > 2:
        return [np.asarray(b.transform(images), dtype=np.float32) for b in blocks]
    threads = _block_threads(blocks, len(images))
    return run_block_parts(blocks, images,
                           threads if n_threads is None else min(threads, n_threads))


def _block_threads(blocks, n_images):
    """Threads to run the feature blocks side by side, or 1."""
    if in_worker() or n_images > 2 or not blocks:
        return 1
    return max(effective_threads(getattr(get_block_extractor(b), "n_jobs", None))
               for b in blocks)


def feature_blocks(pipe):
    """The (name, number of columns) of each feature block of a fitted pipeline.

    Parameters
    ----------
    pipe : fitted Pipeline
        A hybrid pipeline.

    Returns
    -------
    blocks : list of (str, int)
        In the order of the columns of :func:`transform_features`.
    """
    blocks = []
    for name, block in iter_feature_blocks(pipe):
        last = block[-1] if hasattr(block, "steps") else block
        blocks.append((name, int(last.n_features_in_)))
    return blocks


def iter_stages(pipe, X, *, full=None, min_confidence=None):
    """Features and probabilities of a fitted pipeline, stage by stage.

    A :class:`~hybridclf.cascade.CascadePipeline` answers the photos its
    cheap stage is sure of first, then the others; any other pipeline
    answers every photo in one stage. So a caller can hand the early answers
    on before the CNN has run on the rest (the service does).

    Parameters
    ----------
    pipe : fitted Pipeline
        A hybrid pipeline.

    X : sequence of images or paths
        What ``pipe.predict`` takes.

    full : array-like of bool of shape (n_samples,) or None, default=None
        Photos that must run every block (their CNN embedding is wanted, for
        their neighbours say): a cascade never answers them early.

    min_confidence : float, array-like of shape (n_samples,) or None, default=None
        The confidence threshold the answers will be held to (one, or one
        per photo): a cascade answers early only the photos its cheap stage
        is that sure of, and passes the others on to its full model.

    Yields
    ------
    rows : ndarray of int
        The photos of this stage, as indices into ``X``; never empty.

    features : ndarray of shape (len(rows), n_features), dtype float32
        Their features (NaN in the blocks that did not run).

    proba : ndarray of shape (len(rows), n_classes)
        Their class probabilities.

    early : bool
        Whether these are a cascade's early answers (from the cheap stage).
    """
    if hasattr(pipe, "iter_stages"):
        yield from pipe.iter_stages(X, full=full, min_confidence=min_confidence)
        return
    features = transform_features(pipe, X)
    if len(features):
        yield (np.arange(len(features)), features,
               get_classifier(pipe).predict_proba(features), False)
