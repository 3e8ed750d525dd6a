"""Predicting with a fitted pipeline: open set, and files streamed in batches.

A closed-set classifier always names one of its classes, even for a photo of
something it has never seen. :func:`predict_open_set` answers ``"unknown"``
instead when either of two checks fails, and :func:`predict_with_reasons`
says which:

- **novelty** ("unlike any training photo"): the cosine distance of the
  image's CNN embedding to its nearest training photo
  (:mod:`hybridclf.neighbours`) is above the threshold. A blurred, tilted or
  darker photo of a known object stays near its training photos in the CNN
  embedding; the low-level blocks (HOG, LBP, colour) move with blur and
  light, so they judge the photo's quality (:mod:`hybridclf.quality`), not
  its novelty. Models trained before this check instead compare each
  block's out-of-distribution score (:func:`block_ood_scores`) with its
  threshold.
- **confidence** ("low confidence"): the top class probability is below
  ``proba_threshold``, a separate knob (``hybridclf predict --threshold``),
  scaled by the novelty (:func:`confidence_limits`): a photo at the novelty
  threshold needs the whole threshold, one closer to a training photo
  proportionally less. A tilted or brightened photo of a known amulet often
  leaves the classifier hesitating while it stays close to a training photo
  (or to one of its views); a photo of an unknown amulet is further from
  every training photo and still needs the whole threshold.

``hybridclf train`` learns both thresholds from grouped out-of-fold
predictions and stores them in ``model.json``, the index in
``neighbours.npz``; :func:`read_open_set` reads them back.
:func:`predict_files` reads files and folders in batches and reports
unreadable files instead of failing.
"""

import logging
import os

import numpy as np

from .exceptions import ImageLoadError
from .pipeline import (
    get_block_extractor,
    get_block_scaler,
    get_classifier,
    get_feature_union,
    get_loader,
    iter_feature_blocks,
)
from .quality import quality_answer, read_quality

__all__ = [
    "LOW_CONFIDENCE",
    "NOVEL",
    "UNKNOWN",
    "block_ood_scores",
    "confidence_limits",
    "embed_images",
    "embedding_columns",
    "embedding_of",
    "feature_blocks",
    "iter_image_files",
    "iter_stages",
    "open_set_answers",
    "ood_scores",
    "predict_files",
    "predict_open_set",
    "predict_with_reasons",
    "read_open_set",
    "transform_blocks",
    "transform_features",
]

logger = logging.getLogger(__name__)

#: The label given to images that the open-set checks reject.
UNKNOWN = "unknown"
#: Why an image is unknown: its embedding is unlike every training photo.
NOVEL = "unlike any training photo"
#: Why an image is unknown: the top class probability is under the threshold.
LOW_CONFIDENCE = "low confidence"


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
            or _block_threads(blocks, len(images)) == 1):
        return np.asarray(union.transform(images), dtype=np.float32)
    return np.hstack(transform_blocks(blocks, images))


def transform_blocks(blocks, images):
    """The features of each block for the same images, side by side if that helps.

    A block spreads a batch over its ``n_jobs`` threads, image by image; one
    or two images leave those threads idle. Then the blocks themselves run
    side by side (the CNN in ONNX Runtime while HOG, LBP and colour run in
    another thread), which cuts the latency of a single prediction.

    Parameters
    ----------
    blocks : list of transformer
        Fitted feature blocks (the ``features`` step's transformers).

    images : ndarray of shape (n_images, height, width, 3)
        Loaded images.

    Returns
    -------
    parts : list of ndarray of shape (n_images, n_block_features), float32
        One per block, in order.
    """
    n_threads = _block_threads(blocks, len(images))
    if n_threads == 1:
        return [np.asarray(b.transform(images), dtype=np.float32) for b in blocks]
    from .utils._parallel import _thread_pool

    pool = _thread_pool(n_threads)
    # the CNN first: it is the longest, the others share the second thread
    order = sorted(range(len(blocks)), key=lambda i: not _is_cnn(blocks[i]))
    futures = {i: pool.submit(blocks[i].transform, images) for i in order}
    return [np.asarray(futures[i].result(), dtype=np.float32)
            for i in range(len(blocks))]


def _block_threads(blocks, n_images):
    """Threads to run the feature blocks side by side, or 1."""
    import threading

    from joblib import effective_n_jobs

    nested = threading.current_thread().name.startswith("hybridclf")
    if nested or n_images > 2 or len(blocks) < 2:
        return 1
    n_jobs = [effective_n_jobs(getattr(get_block_extractor(b), "n_jobs", None))
              for b in blocks]
    return min(max(n_jobs), len(blocks))


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
                     novelty=None, unknown=UNKNOWN):
    """Predict classes, answering ``unknown`` for images unlike every class.

    Parameters
    ----------
    pipe : fitted Pipeline
        A hybrid pipeline whose classifier has ``predict_proba``.

    X : sequence of images or paths
        What ``pipe.predict`` takes.

    proba_threshold : float, default=0.0
        Images whose top class probability is below it are unknown ("low
        confidence"); with ``novelty``, it is scaled by each image's novelty
        score (:func:`confidence_limits`). 0 turns the check off.

    ood_thresholds : dict of str to float or None, default=None
        Per feature block, the largest in-distribution score (see
        :func:`ood_scores`); images above any are unknown. None turns the
        check off. Models trained before the novelty check had only this one;
        it is ignored when ``novelty`` is given.

    novelty : dict or None, default=None
        The novelty check ("unlike any training photo"): ``index`` (an
        :class:`~hybridclf.neighbours.EmbeddingIndex` of the training
        embeddings), ``threshold`` and ``k``, as :func:`read_open_set`
        reads them from a model directory. Images whose novelty score (see
        :func:`~hybridclf.neighbours.novelty_scores`) is above the threshold
        are unknown. None turns the check off.

    unknown : str, default="unknown"
        The label given to rejected images.

    Returns
    -------
    labels : ndarray of shape (n_samples,), dtype object
        The predicted class, or ``unknown``.

    proba : ndarray of shape (n_samples, n_classes)
        The class probabilities (columns in ``pipe.classes_`` order).

    scores : ndarray of shape (n_samples,)
        The novelty (or, without it, out-of-distribution) score over its
        threshold: above 1 means unlike the training images. NaN when
        neither check is on.

    See Also
    --------
    predict_with_reasons : The same, with the reason of each "unknown" and
        the photo quality.
    """
    result = predict_with_reasons(pipe, X, proba_threshold=proba_threshold,
                                  ood_thresholds=ood_thresholds, novelty=novelty,
                                  unknown=unknown)
    return result["labels"], result["proba"], result["scores"]


def predict_with_reasons(pipe, X, *, proba_threshold=0.0, ood_thresholds=None,
                         novelty=None, quality=False, neighbours=0, index=None,
                         unknown=UNKNOWN):
    """Predict classes with the reason of each "unknown" and the photo quality.

    An image is "unknown" for one of two reasons, given in words:

    - :data:`NOVEL` ("unlike any training photo"): its CNN embedding is
      further from every training photo than the novelty threshold (or, for
      a model without novelty, a block's OOD score is over its threshold);
      the photo shows something the model was not trained on;
    - :data:`LOW_CONFIDENCE` ("low confidence"): it resembles the training
      photos, but the classifier hesitates between classes: its top
      probability is under the confidence threshold scaled by its novelty
      (:func:`confidence_limits`).

    The quality of the photo (:func:`hybridclf.quality.photo_quality`) is
    returned beside the class and never changes it: a blurred photo of a
    known amulet keeps its class, with the issue ``"blurry"``.

    Parameters
    ----------
    pipe, X, proba_threshold, ood_thresholds, novelty, unknown
        As in :func:`predict_open_set`.

    quality : bool, default=False
        Also measure the quality of each photo, as the pipeline's loader
        decodes it (:meth:`~hybridclf.io.ImageLoader.read_measured`).

    neighbours : int, default=0
        Also find the nearest training photos of each image, this many
        (:meth:`~hybridclf.neighbours.EmbeddingIndex.neighbours`), from the
        embedding computed for the answer.

    index : EmbeddingIndex or None, default=None
        The index they come from; None takes the novelty check's.

    Returns
    -------
    result : dict
        ``labels``, ``proba``, ``scores`` (as from :func:`predict_open_set`),
        ``reasons`` (list of str: ``""`` for a known answer, else
        :data:`NOVEL` or :data:`LOW_CONFIDENCE`), ``quality`` (list of
        ``{"ok": bool, "issues": [...]}``, or None without ``quality``) and
        ``neighbours`` (per image, a list of dicts ``label``,
        ``similarity``, ``file``, ``thumbnail``; None when ``neighbours`` is
        0). A cascade runs every block when neighbours are asked for: they
        come from the CNN's embedding (its answers are then the full
        model's).
    """
    qualities = None
    if quality:
        X, qualities = _load_with_quality(pipe, X)
    if hasattr(pipe, "predict_stages"):
        # a cascade: the blocks that did not run on a photo are NaN there;
        # neighbours come from the CNN's embedding, so every block runs then
        features, proba, _ = pipe.predict_stages(
            X, full=np.full(len(X), True) if neighbours else None)
    else:
        features = transform_features(pipe, X)
        proba = get_classifier(pipe).predict_proba(features)
    result = open_set_answers(pipe, features, proba,
                              proba_threshold=proba_threshold,
                              ood_thresholds=ood_thresholds, novelty=novelty,
                              neighbours=neighbours, index=index, unknown=unknown)
    result["quality"] = qualities
    return result


def open_set_answers(pipe, features, proba, *, proba_threshold=0.0,
                     ood_thresholds=None, novelty=None, neighbours=0, index=None,
                     unknown=UNKNOWN):
    """The answers of :func:`predict_with_reasons`, from the features.

    Parameters
    ----------
    pipe : fitted Pipeline
        A hybrid pipeline.

    features : ndarray of shape (n_samples, n_features)
        As from :func:`transform_features`; a cascade's photos answered
        early have NaN in the blocks that did not run (:func:`iter_stages`).
        Their novelty is not measured (score NaN; the cascade's gate
        admitted them as like the training photos) and they have no
        neighbours (empty lists).

    proba : ndarray of shape (n_samples, n_classes)
        The class probabilities.

    proba_threshold, ood_thresholds, novelty, neighbours, index, unknown
        As in :func:`predict_with_reasons`.

    Returns
    -------
    result : dict
        ``labels``, ``proba``, ``scores``, ``reasons`` and ``neighbours``, as
        from :func:`predict_with_reasons`.
    """
    if index is None and novelty:
        index = novelty["index"]
    if neighbours and index is None:
        raise ValueError(
            f"predict_with_reasons got neighbours={neighbours!r} but no embedding "
            "index; pass index=EmbeddingIndex.load(model_dir) or the novelty "
            "check of read_open_set."
        )
    clf = get_classifier(pipe)
    labels = np.asarray(clf.classes_, dtype=object)[proba.argmax(axis=1)]
    scores = np.full(len(labels), np.nan)
    embeddings = embedding_of(pipe, features) if novelty or neighbours else None
    near = None
    if novelty:
        from .neighbours import novelty_and_neighbours, novelty_scores

        distance = np.full(len(labels), np.nan)
        ran = np.isfinite(embeddings).all(axis=1)  # not a cascade's early answer
        if ran.all() and neighbours and index is novelty["index"]:
            # one search for both
            distance, near = novelty_and_neighbours(
                index, embeddings, novelty_k=novelty.get("k", 1), k=neighbours)
        elif ran.any():
            distance[ran] = novelty_scores(novelty["index"], embeddings[ran],
                                           k=novelty.get("k", 1))
        scores = distance / max(float(novelty["threshold"]), 1e-12)
    elif ood_thresholds:
        scores = ood_scores(features, feature_blocks(pipe), ood_thresholds)
    novel = scores > 1.0  # False where NaN
    low = proba.max(axis=1) < confidence_limits(proba_threshold,
                                                scores if novelty else None)
    reasons = [NOVEL if n else LOW_CONFIDENCE if lo else ""
               for n, lo in zip(novel, low)]
    labels[novel | low] = unknown
    return {"labels": labels, "proba": proba, "scores": scores,
            "reasons": reasons,
            "neighbours": near if near is not None else
            index.neighbours(embeddings, neighbours) if neighbours else None}


def iter_stages(pipe, X, *, full=None):
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
        yield from pipe.iter_stages(X, full=full)
        return
    features = transform_features(pipe, X)
    if len(features):
        yield (np.arange(len(features)), features,
               get_classifier(pipe).predict_proba(features), False)


def confidence_limits(proba_threshold, novelty=None):
    """The top probability each image needs not to be "low confidence".

    The confidence threshold scaled by the image's novelty score over the
    novelty threshold, at most 1: a photo at the novelty threshold needs the
    whole ``proba_threshold``, a copy of a training photo nothing. Photos
    of known classes taken tilted, brighter or compressed stay close to a
    training photo (or to one of its views in the index) while the
    classifier may hesitate; a photo of an unknown class is further from
    every training photo, so it still needs nearly the whole threshold.

    Parameters
    ----------
    proba_threshold : float
        The confidence threshold (``open_set["proba_threshold"]`` of
        ``model.json``, ``hybridclf predict --threshold``, the service's
        ``confidence_threshold``).

    novelty : array-like of shape (n_samples,) or None, default=None
        Each image's novelty score over the novelty threshold (the
        ``scores`` of :func:`predict_open_set` with the novelty check). None,
        or NaN for an image, leaves the threshold as it is: models without
        the novelty check compare the top probability with it directly.

    Returns
    -------
    limits : float or ndarray of shape (n_samples,)
        Images whose top probability is below their limit are unknown.

    Examples
    --------
    >>> import numpy as np
    >>> from hybridclf.prediction import confidence_limits
    >>> confidence_limits(0.5, [0.2, 1.0, 3.0, np.nan]).tolist()
    [0.1, 0.5, 0.5, 0.5]
    >>> confidence_limits(0.5)
    0.5
    """
    if novelty is None:
        return proba_threshold
    novelty = np.asarray(novelty, dtype=np.float64)
    scale = np.where(np.isnan(novelty), 1.0, np.clip(novelty, 0.0, 1.0))
    return proba_threshold * scale


def _load_with_quality(pipe, X):
    """The photos decoded once: as the pipeline loads them, and their quality.

    The quality is measured on each photo as decoded, before the loader
    resizes it for the model; the loaded images then pass through the
    pipeline (its loader leaves images of its size as they are).
    """
    loader = get_loader(pipe)
    if loader is None:  # X holds images already: nothing is decoded
        return X, [read_quality(item) for item in X]
    return loader.read_measured(X, quality_answer)




def read_open_set(info, directory=None):
    """The open-set checks of a model, as keyword arguments of prediction.

    Parameters
    ----------
    info : dict
        The model's ``model.json``, as from
        :func:`~hybridclf.persistence.read_model_info`.

    directory : str, os.PathLike or None, default=None
        The model directory, where the embedding index of the novelty check
        is read; None leaves the novelty check out.

    Returns
    -------
    options : dict
        ``proba_threshold``, ``ood_thresholds`` and ``novelty`` for
        :func:`predict_open_set`: the novelty check with the index when the
        model has one, else the per-block OOD check of older models.

    Examples
    --------
    >>> from hybridclf.prediction import read_open_set
    >>> read_open_set({"open_set": {"proba_threshold": 0.4}})
    {'proba_threshold': 0.4, 'ood_thresholds': None, 'novelty': None}
    """
    from .neighbours import INDEX_FILE, EmbeddingIndex

    open_set = info.get("open_set") or {}
    options = {"proba_threshold": open_set.get("proba_threshold", 0.0),
               "ood_thresholds": open_set.get("ood_thresholds"), "novelty": None}
    novelty = open_set.get("novelty")
    if not novelty or directory is None:
        return options
    index = EmbeddingIndex.load(directory)
    if index is not None:
        options["novelty"] = {**novelty, "index": index}
        options["ood_thresholds"] = None
    else:
        logger.warning("%s has no embedding index (%s): the 'unlike any training "
                       "photo' check uses the per-block OOD scores instead; "
                       "retrain to restore it", os.fspath(directory), INDEX_FILE)
    return options


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
                  ood_thresholds=None, novelty=None, quality=True, top_k=3,
                  neighbours=0, index=None, progress=False):
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

    novelty : dict or None, default=None
        The novelty check of :func:`predict_open_set`.

    quality : bool, default=True
        Measure the quality of each photo (see :func:`predict_with_reasons`).

    top_k : int, default=3
        How many best guesses each row lists.

    neighbours : int, default=0
        How many nearest training photos each row lists (see
        :func:`predict_with_reasons`); 0 lists none.

    index : EmbeddingIndex or None, default=None
        The embedding index they come from; None takes the novelty check's.

    progress : bool, default=False
        Show a progress bar over the images.

    Yields
    ------
    row : dict
        ``file``, ``label`` (a class, ``"unknown"`` or ``""`` on error),
        ``confidence``, ``ood_score`` (novelty, or OOD, score over its
        threshold), ``unknown_reason`` (``""``, :data:`NOVEL` or
        :data:`LOW_CONFIDENCE`), ``quality`` (``{"ok": bool, "issues":
        [...]}``, or None), ``top`` (list of (class, probability)) and
        ``error`` (``""`` when read).
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
            options = {"proba_threshold": proba_threshold, "novelty": novelty,
                       "ood_thresholds": ood_thresholds, "quality": quality,
                       "neighbours": neighbours, "index": index}
            try:
                readable = batch
                result = predict_with_reasons(pipe, readable, **options)
            except ImageLoadError as exc:
                errors = dict(exc.failures)
                readable = [f for f in batch if f not in errors]
                result = predict_with_reasons(pipe, readable, **options) if (
                    readable) else None
            done = {}
            if result is not None:
                proba = result["proba"]
                for i, path in enumerate(readable):
                    order = np.argsort(-proba[i])[:top_k]
                    done[path] = {
                        "file": path, "label": result["labels"][i],
                        "confidence": float(proba[i, order[0]]),
                        "ood_score": float(result["scores"][i]),
                        "unknown_reason": result["reasons"][i],
                        "quality": result["quality"][i] if quality else None,
                        "top": [(classes[j], float(proba[i, j])) for j in order],
                        "neighbours": _without_thumbnails(result["neighbours"], i),
                        "error": "",
                    }
            for path in batch:
                if path in done:
                    yield done[path]
                else:
                    yield {"file": path, "label": "", "confidence": float("nan"),
                           "ood_score": float("nan"), "unknown_reason": "",
                           "quality": None, "top": [], "neighbours": [],
                           "error": errors.get(path, "not read")}
            if bar is not None:
                bar.update(len(batch))
    finally:
        if bar is not None:
            bar.close()


def _check_neighbours(neighbours, index):
    is_int = isinstance(neighbours, (int, np.integer)) and not isinstance(
        neighbours, bool)
    if not (is_int and neighbours >= 0):
        raise ValueError(
            "The 'neighbours' parameter of predict_files must be an int >= 0 "
            f"(nearest training photos per file). Got {neighbours!r} instead."
        )
    if neighbours and index is None:
        raise ValueError(
            f"predict_files got neighbours={neighbours} but no embedding index: "
            "only a model trained with a CNN block keeps its training photos "
            "(neighbours.npz); pass index=EmbeddingIndex.load(model_dir)."
        )


def _without_thumbnails(neighbours, i):
    """The neighbours of row ``i`` as CSV cells take them: file, label, similarity."""
    if neighbours is None:
        return []
    return [{"file": n["file"], "label": n["label"], "similarity": n["similarity"]}
            for n in neighbours[i]]
