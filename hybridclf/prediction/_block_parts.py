"""The feature blocks of one or two images, spread over the threads by their cost.

A block spreads a batch over its threads image by image: one or two images
would leave all but one idle. :func:`run_block_parts` cuts the blocks into
parts (an extractor's ``transform_parts``: LBP gives one per scale), each
scaled column by column as the block's scaler would, and the threads (the
caller's among them) take the parts in turn, the longest first by the time
each took before in this process (:func:`longest_first`). The features
equal the blocks' ``transform``.
"""

import threading
import time
import weakref

import numpy as np
from sklearn.preprocessing import StandardScaler

from ..pipeline import get_block_extractor, get_block_scaler
from ..utils._parallel import run_shared

__all__ = ["longest_first", "run_block_parts", "scale_block_features"]

#: Seconds each part of an extractor took, smoothed over its calls, by
#: extractor: a part not timed yet counts as this long.
_SECONDS = weakref.WeakKeyDictionary()
_SECONDS_LOCK = threading.Lock()
_UNTIMED_S = 1e-3
#: Weight of the latest time in the smoothed one.
_LATEST = 0.3


def longest_first(costs):
    """The order to hand parts to free threads: by decreasing cost.

    Parameters
    ----------
    costs : list of float
        The expected time of each part.

    Returns
    -------
    order : list of int
        Part indices, the longest first; ties keep their order.

    Examples
    --------
    >>> from hybridclf.prediction._block_parts import longest_first
    >>> longest_first([1.0, 5.0, 2.0, 2.5])
    [1, 3, 2, 0]
    """
    return sorted(range(len(costs)), key=lambda i: -costs[i])


def run_block_parts(blocks, images, n_threads):
    """Each block's features of a few images, its parts spread over threads.

    Parameters
    ----------
    blocks : list of transformer
        Fitted feature blocks (the ``features`` step's transformers).

    images : ndarray of shape (n_images, height, width, 3)
        Loaded images.

    n_threads : int
        Threads to use, the calling one included.

    Returns
    -------
    parts : list of ndarray of shape (n_images, n_block_features), float32
        One per block, in order; equal to ``block.transform(images)``.
    """
    work = [(b, k, columns, func) for b, block in enumerate(blocks)
            for k, (columns, func) in enumerate(_block_parts(block, images))]
    order = longest_first([_expected_seconds(blocks[b], k) for b, k, _, _ in work])
    done = run_shared([_timed(blocks[work[i][0]], work[i][1], work[i][3])
                       for i in order], n_threads)
    results = dict(zip(order, done))
    features = [[] for _ in blocks]
    for i, (b, _, columns, _) in enumerate(work):
        features[b].append((columns, results[i]))
    return [_assemble(pieces, len(images)) for pieces in features]


def scale_block_features(block, values):
    """A block's output from its extractor's ``values``, as in :func:`run_block_parts`.

    Parameters
    ----------
    block : transformer
        A fitted feature block.

    values : ndarray of shape (n_images, n_block_features)
        What the block's extractor gives for some images.

    Returns
    -------
    features : ndarray of shape (n_images, n_block_features), float32
        What :func:`run_block_parts` gives for the block and those images.
    """
    extractor, scaler = get_block_extractor(block), get_block_scaler(block)
    if scaler is None and extractor is block:
        return np.asarray(values, dtype=np.float32)
    if type(scaler) is StandardScaler and hasattr(extractor, "transform_parts"):
        return _scaled(lambda: values, scaler, slice(None))()
    return np.asarray(block[1:].transform(values), dtype=np.float32)


def _block_parts(block, images):
    """``(columns, func)`` of a block's parts; ``func()`` gives scaled float32.

    A block whose scaler is not a ``StandardScaler`` (or whose extractor has
    no parts) is one part: its own ``transform``.
    """
    extractor, scaler = get_block_extractor(block), get_block_scaler(block)
    if (not hasattr(extractor, "transform_parts")
            or not (scaler is None and extractor is block
                    or type(scaler) is StandardScaler)):
        return [(None, lambda: np.asarray(block.transform(images),
                                          dtype=np.float32))]
    return [(columns, _scaled(func, scaler, columns))
            for columns, func in extractor.transform_parts(images)]


def _scaled(func, scaler, columns):
    """``func``'s columns as float32, scaled as ``StandardScaler.transform`` does."""
    def run():
        # StandardScaler.transform's operations on the block's float32
        # features, column by column: the same float32 results, without its
        # input checks (a tenth of a millisecond a block)
        out = np.array(func(), dtype=np.float32)
        if scaler is not None and scaler.with_mean:
            out -= scaler.mean_[columns].astype(np.float32)
        if scaler is not None and scaler.with_std:
            out /= scaler.scale_[columns].astype(np.float32)
        return out

    return run


def _assemble(pieces, n_images):
    if len(pieces) == 1 and pieces[0][0] is None:
        return pieces[0][1]
    width = pieces[-1][0].stop
    out = np.empty((n_images, width), dtype=np.float32)
    for columns, values in pieces:
        out[:, columns] = values
    return out


def _expected_seconds(block, k):
    try:
        seconds = _SECONDS.get(get_block_extractor(block))
    except TypeError:  # an extractor that cannot be a weak key: never timed
        seconds = None
    return seconds[k] if seconds is not None and k < len(seconds) else _UNTIMED_S


def _timed(block, k, func):
    def run():
        start = time.perf_counter()
        out = func()
        _record(get_block_extractor(block), k, time.perf_counter() - start)
        return out

    return run


def _record(extractor, k, seconds):
    with _SECONDS_LOCK:
        try:
            times = _SECONDS.setdefault(extractor, [])
        except TypeError:
            return
        if k >= len(times):
            times.extend([seconds] * (k + 1 - len(times)))
        times[k] = (1 - _LATEST) * times[k] + _LATEST * seconds
