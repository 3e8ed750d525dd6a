"""The embedding where novelty is measured: the CNN block's own output.

:func:`embedding_columns` finds the embedding's columns among a pipeline's
features, :func:`embedding_of` takes it from computed features (scaling
undone), and :func:`embed_images` computes it for loaded images.
"""

import numpy as np

from ..pipeline import (
    get_block_extractor,
    get_block_scaler,
    get_feature_union,
    iter_feature_blocks,
)
from ._features import feature_blocks

__all__ = ["embed_images", "embedding_columns", "embedding_of"]

def embedding_columns(blocks, name="cnn"):
    """The columns of the embedding block, where novelty is measured.

    The CNN block when the pipeline has one: its features place photos of
    one object near each other whatever the blur, lighting or tilt, unlike
    the low-level blocks (HOG, LBP, colour), which move with them. Without
    it, every column.

    Parameters
    ----------
    blocks : list of (str, int)
        Block names and widths, as from :func:`feature_blocks`.

    name : str, default="cnn"
        The block to use when present.

    Returns
    -------
    columns : slice
        Columns of :func:`transform_features`.

    Examples
    --------
    >>> from hybridclf.prediction import embedding_columns
    >>> embedding_columns([("hog", 4), ("cnn", 8), ("color", 2)])
    slice(4, 12, None)
    >>> embedding_columns([("hog", 4), ("color", 2)])
    slice(0, 6, None)
    """
    start = 0
    for block, width in blocks:
        if block == name:
            return slice(start, start + width)
        start += width
    return slice(0, start)


def _embedding_block(pipe, name="cnn"):
    return dict(iter_feature_blocks(pipe)).get(name)


def embedding_of(pipe, features):
    """The embedding of each image where novelty is measured, from its features.

    The CNN block's own output (its scaling undone), or every scaled feature
    for a pipeline without a CNN block.

    Parameters
    ----------
    pipe : fitted Pipeline
        A hybrid pipeline.

    features : ndarray of shape (n_samples, n_features)
        As from :func:`transform_features`.

    Returns
    -------
    embeddings : ndarray of shape (n_samples, n_embedding)
        What :func:`embed_images` gives for the same images.
    """
    part = features[:, embedding_columns(feature_blocks(pipe))]
    block = _embedding_block(pipe)
    scale = None if block is None else get_block_scaler(block)
    if hasattr(scale, "inverse_transform"):
        return scale.inverse_transform(part)
    return part


def embed_images(pipe, images):
    """The embeddings of loaded images, as :func:`embedding_of` gives them.

    Parameters
    ----------
    pipe : fitted Pipeline
        A hybrid pipeline.

    images : ndarray of shape (n_images, height, width, 3), dtype uint8
        Images as the pipeline's ``load`` step returns them.

    Returns
    -------
    embeddings : ndarray of shape (n_images, n_embedding), dtype float32
        The CNN block's output, or every scaled feature without one.
    """
    block = _embedding_block(pipe)
    if block is not None and get_block_scaler(block) is not None:
        extract = get_block_extractor(block)
        return np.asarray(extract.transform(images), dtype=np.float32)
    features = get_feature_union(pipe).transform(images)
    return np.asarray(features, dtype=np.float32)[
        :, embedding_columns(feature_blocks(pipe))]
