"""Predicting with a fitted pipeline: open set, and files streamed in batches.

A closed-set classifier always names one of its classes, even for a photo of
something it has never seen. :func:`predict_open_set` answers ``"unknown"``
instead when either of two checks fails:

- **confidence**: the top class probability is below ``proba_threshold``;
- **out-of-distribution score**: in some feature block, the mean squared
  value of the scaled features (:func:`block_ood_scores`) is above that
  block's threshold. Each block is standardised on the training images, so
  a training-like image scores about 1 and an image unlike every training
  image scores far more, whatever class the classifier would give it.

``hybridclf train`` learns both thresholds from out-of-fold predictions and
stores them in ``model.json``. :func:`predict_files` reads files and folders
in batches and reports unreadable files instead of failing.
"""

import logging
import os

import numpy as np

from .exceptions import ImageLoadError
from .pipeline import (
    get_block_extractor,
    get_classifier,
    get_feature_union,
    get_loader,
    iter_feature_blocks,
)

__all__ = [
    "UNKNOWN",
    "block_ood_scores",
    "feature_blocks",
    "iter_image_files",
    "ood_scores",
    "predict_files",
    "predict_open_set",
    "transform_features",
]

logger = logging.getLogger(__name__)

#: The label given to images that the open-set checks reject.
UNKNOWN = "unknown"


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
    n_threads = _block_threads(union, len(images))
    if n_threads > 1:
        return _blocks_in_threads(union, images, n_threads)
    return np.asarray(union.transform(images), dtype=np.float32)


def _block_threads(union, n_images):
    """Threads to run the feature blocks side by side, or 1.

    A block spreads a batch over its ``n_jobs`` threads, image by image; one
    or two images leave those threads idle. Then the blocks themselves run
    side by side (the CNN in ONNX Runtime while HOG, LBP and colour run in
    another thread), which cuts the latency of a single prediction.
    """
    import threading

    from joblib import effective_n_jobs

    blocks = getattr(union, "transformer_list", None)
    nested = threading.current_thread().name.startswith("hybridclf")
    if (nested or n_images > 2 or not blocks or len(blocks) < 2
            or getattr(union, "transformer_weights", None) is not None
            or any(isinstance(b, str) for _, b in blocks)):
        return 1
    n_jobs = []
    for _, block in blocks:
        extract = get_block_extractor(block)
        n_jobs.append(effective_n_jobs(getattr(extract, "n_jobs", None)))
    return min(max(n_jobs), len(blocks))


def _blocks_in_threads(union, images, n_threads):
    from .utils._parallel import _thread_pool

    blocks = [block for _, block in union.transformer_list]
    pool = _thread_pool(n_threads)
    # the CNN first: it is the longest, the others share the second thread
    order = sorted(range(len(blocks)), key=lambda i: not _is_cnn(blocks[i]))
    futures = {i: pool.submit(blocks[i].transform, images) for i in order}
    parts = [np.asarray(futures[i].result(), dtype=np.float32)
             for i in range(len(blocks))]
    return np.hstack(parts)


def _is_cnn(block):
    return type(get_block_extractor(block)).__name__ == "CNNFeatures"


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


def block_ood_scores(features, blocks):
    """Out-of-distribution score of each row in each feature block.

    The mean of the squared standardised features of the block: about 1 for
    an image like the training images, larger for one unlike them all.

    Parameters
    ----------
    features : ndarray of shape (n_samples, n_features)
        Output of the pipeline's ``features`` step (every block standardised
        on the training images), as from :func:`transform_features`.

    blocks : list of (str, int)
        Block names and widths, as from :func:`feature_blocks`.

    Returns
    -------
    scores : ndarray of shape (n_samples, n_blocks)
        The scores.

    Examples
    --------
    >>> import numpy as np
    >>> from hybridclf.prediction import block_ood_scores
    >>> block_ood_scores(np.array([[1.0, -1.0, 4.0]]), [("a", 2), ("b", 1)])
    array([[ 1., 16.]])
    """
    features = np.asarray(features, dtype=np.float64)
    out, start = [], 0
    for _, width in blocks:
        out.append(np.mean(features[:, start : start + width] ** 2, axis=1))
        start += width
    return np.stack(out, axis=1)


def ood_scores(features, blocks, thresholds):
    """Out-of-distribution score: the largest block score over its threshold.

    Each block is compared with its own threshold, so that a block of few
    informative columns (a colour histogram whose bins were all empty in
    training) is not drowned by a long one. Above 1 means out of
    distribution.

    Parameters
    ----------
    features : ndarray of shape (n_samples, n_features)
        Output of the pipeline's ``features`` step.

    blocks : list of (str, int)
        Block names and widths, as from :func:`feature_blocks`.

    thresholds : dict of str to float
        The largest in-distribution score of each block (``hybridclf train``
        stores them in ``model.json`` under ``open_set``).

    Returns
    -------
    scores : ndarray of shape (n_samples,)
        The scores.
    """
    per_block = block_ood_scores(features, blocks)
    limits = np.array([thresholds[name] for name, _ in blocks], dtype=np.float64)
    # NaN: a block that did not run (a cascade's early exit) is not scored
    return np.nanmax(per_block / np.maximum(limits, 1e-12), axis=1)


def predict_open_set(pipe, X, *, proba_threshold=0.0, ood_thresholds=None,
                     unknown=UNKNOWN):
    """Predict classes, answering ``unknown`` for images unlike every class.

    Parameters
    ----------
    pipe : fitted Pipeline
        A hybrid pipeline whose classifier has ``predict_proba``.

    X : sequence of images or paths
        What ``pipe.predict`` takes.

    proba_threshold : float, default=0.0
        Images whose top class probability is below it are unknown; 0 turns
        the check off.

    ood_thresholds : dict of str to float or None, default=None
        Per feature block, the largest in-distribution score (see
        :func:`ood_scores`); images above any are unknown. None turns the
        check off.

    unknown : str, default="unknown"
        The label given to rejected images.

    Returns
    -------
    labels : ndarray of shape (n_samples,), dtype object
        The predicted class, or ``unknown``.

    proba : ndarray of shape (n_samples, n_classes)
        The class probabilities (columns in ``pipe.classes_`` order).

    scores : ndarray of shape (n_samples,)
        The out-of-distribution scores (above 1: out of distribution), or
        NaN without ``ood_thresholds``.
    """
    clf = get_classifier(pipe)
    if hasattr(pipe, "predict_stages"):
        # a cascade: the blocks that did not run on a photo are NaN there
        features, proba, _ = pipe.predict_stages(X)
    else:
        features = transform_features(pipe, X)
        proba = clf.predict_proba(features)
    labels = np.asarray(clf.classes_, dtype=object)[proba.argmax(axis=1)]
    rejected = proba.max(axis=1) < proba_threshold
    scores = np.full(len(labels), np.nan)
    if ood_thresholds:
        scores = ood_scores(features, feature_blocks(pipe), ood_thresholds)
        rejected |= scores > 1.0
    labels[rejected] = unknown
    return labels, proba, scores


def iter_image_files(inputs):
    """Expand files and folders into a sorted list of files.

    Folders are walked recursively; hidden files and folders (starting with
    ".") are left out. Every other file is listed, images or not, so that
    :func:`predict_files` reports each file that cannot be read.

    Parameters
    ----------
    inputs : sequence of str or os.PathLike
        Files and folders.

    Returns
    -------
    files : list of str
        The files: those given, then the content of each folder, sorted.

    Raises
    ------
    FileNotFoundError
        When an input does not exist.
    """
    files = []
    for item in inputs:
        item = os.fspath(item)
        if os.path.isdir(item):
            for dirpath, dirnames, filenames in os.walk(item):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                files.extend(os.path.join(dirpath, name) for name in sorted(filenames)
                             if not name.startswith("."))
        elif os.path.exists(item):
            files.append(item)
        else:
            raise FileNotFoundError(
                f"The input {item!r} does not exist. Pass image files or folders "
                "of images."
            )
    return files


def predict_files(pipe, files, *, batch_size=32, proba_threshold=0.0,
                  ood_thresholds=None, top_k=3, progress=False):
    """Predict image files in batches; yield one row per file.

    A file that cannot be read gives a row with its ``error`` and no label;
    the other files of its batch are predicted as usual.

    Parameters
    ----------
    pipe : fitted Pipeline
        A hybrid pipeline, as from :func:`~hybridclf.load_model`.

    files : sequence of str
        Image files, as from :func:`iter_image_files`.

    batch_size : int, default=32
        Images read and predicted at once.

    proba_threshold : float, default=0.0
        The confidence check of :func:`predict_open_set`.

    ood_thresholds : dict of str to float or None, default=None
        The out-of-distribution check of :func:`predict_open_set`.

    top_k : int, default=3
        How many best guesses each row lists.

    progress : bool, default=False
        Show a progress bar over the images.

    Yields
    ------
    row : dict
        ``file``, ``label`` (a class, ``"unknown"`` or ``""`` on error),
        ``confidence``, ``ood_score``, ``top`` (list of (class, probability))
        and ``error`` (``""`` when read).
    """
    if batch_size < 1:
        raise ValueError(
            "The 'batch_size' parameter of predict_files must be an int >= 1. Got "
            f"{batch_size!r} instead."
        )
    files = list(files)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(files), desc="predict", unit="image")
    classes = np.asarray(get_classifier(pipe).classes_, dtype=object)
    try:
        for start in range(0, len(files), batch_size):
            batch = files[start : start + batch_size]
            errors = {}
            try:
                readable = batch
                result = predict_open_set(pipe, readable,
                                          proba_threshold=proba_threshold,
                                          ood_thresholds=ood_thresholds)
            except ImageLoadError as exc:
                errors = dict(exc.failures)
                readable = [f for f in batch if f not in errors]
                result = predict_open_set(
                    pipe, readable, proba_threshold=proba_threshold,
                    ood_thresholds=ood_thresholds) if readable else None
            done = {}
            if result is not None:
                labels, proba, scores = result
                for i, path in enumerate(readable):
                    order = np.argsort(-proba[i])[:top_k]
                    done[path] = {
                        "file": path, "label": labels[i],
                        "confidence": float(proba[i, order[0]]),
                        "ood_score": float(scores[i]),
                        "top": [(classes[j], float(proba[i, j])) for j in order],
                        "error": "",
                    }
            for path in batch:
                if path in done:
                    yield done[path]
                else:
                    yield {"file": path, "label": "", "confidence": float("nan"),
                           "ood_score": float("nan"), "top": [],
                           "error": errors.get(path, "not read")}
            if bar is not None:
                bar.update(len(batch))
    finally:
        if bar is not None:
            bar.close()
