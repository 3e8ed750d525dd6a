"""Predicting files and folders in batches, one row per file.

:func:`iter_image_files` expands files and folders; :func:`predict_files`
reads and predicts them in batches and reports each unreadable file in its
row instead of failing.
"""

import logging
import os

import numpy as np

from ..exceptions import ImageLoadError
from ..io import no_images_error
from ..pipeline import get_classifier
from ._open_set import predict_with_reasons

__all__ = ["iter_image_files", "predict_files"]

logger = logging.getLogger(__name__)

# what iter_image_files looks for, and the fix of inputs that hold nothing
_LOOKED_FOR = ("the files given, and every file in the folders given, at any "
               "depth")
_FIX = "Check the path: give image files, or folders that hold them."


def iter_image_files(inputs):
    """Expand files and folders into a sorted list of files.

    Folders are walked recursively; hidden files and folders (starting with
    ".") are left out. Every other file is listed, images or not, so that
    :func:`predict_files` reports each file that cannot be read, and listed
    once: where it was given first, however often it is given again (the
    same folder twice, a file and its folder, ``./a`` and ``a``).

    Parameters
    ----------
    inputs : sequence of str or os.PathLike
        Files and folders.

    Returns
    -------
    files : list of str
        The files, in the order of the inputs: a file given, or the content
        of a folder, sorted (a folder's files before its sub-folders').

    Raises
    ------
    FileNotFoundError
        When an input does not exist (a symbolic link that leads nowhere
        is listed: its row says why it cannot be read).

    NoImagesError
        When the inputs hold no file at all: an empty folder, a folder named
        ``x.jpg``, one of only hidden files or empty folders (a mistyped
        path must not give an empty result that reads as done). A folder
        without files among inputs that hold some is named in a warning.
    """
    files, empty = [], []
    for item in inputs:
        item = os.fspath(item)
        before = len(files)
        if os.path.isdir(item):
            # a folder that cannot be listed is listed itself: its row says why
            for dirpath, dirnames, filenames in os.walk(
                    item, onerror=lambda exc: files.append(exc.filename)):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                # a link to a folder is not followed: listed, its row says so
                names = sorted(filenames + [d for d in dirnames if os.path.islink(
                    os.path.join(dirpath, d))])
                files.extend(os.path.join(dirpath, name) for name in names
                             if not name.startswith("."))
        elif os.path.lexists(item):
            # a broken link (a loop, a target gone) is listed as in a folder:
            # its row says why, the other files are predicted
            files.append(item)
        else:
            raise FileNotFoundError(
                f"The input {item!r} does not exist. Pass image files or folders "
                "of images."
            )
        if len(files) == before:
            empty.append(item)
    if not files:
        raise no_images_error(inputs, _LOOKED_FOR, _FIX)
    if empty:
        logger.warning("%s", no_images_error(empty, _LOOKED_FOR, _FIX))
    # one row per file: the same file given twice was predicted twice
    seen = set()
    return [f for f in files if not (os.path.abspath(f) in seen
                                     or seen.add(os.path.abspath(f)))]


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
    options = {"proba_threshold": proba_threshold, "novelty": novelty,
               "ood_thresholds": ood_thresholds, "quality": quality,
               "neighbours": neighbours, "index": index}
    try:
        for start in range(0, len(files), batch_size):
            batch = files[start : start + batch_size]
            readable, result, errors = _predict_batch(pipe, batch, options)
            yield from _batch_rows(batch, readable, result, errors, classes,
                                   top_k=top_k, quality=quality)
            if bar is not None:
                bar.update(len(batch))
    finally:
        if bar is not None:
            bar.close()


def _predict_batch(pipe, batch, options):
    """Predict a batch; on unreadable files, predict the batch's other files.

    Returns the files predicted, :func:`predict_with_reasons`' result for
    them (None when no file of the batch could be read) and the reason of
    each file that could not be read.
    """
    try:
        return batch, predict_with_reasons(pipe, batch, **options), {}
    except ImageLoadError as exc:
        errors = dict(exc.failures)
        readable = [f for f in batch if f not in errors]
        result = predict_with_reasons(pipe, readable, **options) if (
            readable) else None
        return readable, result, errors


def _batch_rows(batch, readable, result, errors, classes, *, top_k, quality):
    """One row per file of ``batch``, in its order: a prediction or an error."""
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


def _without_thumbnails(neighbours, i):
    """The neighbours of row ``i`` as CSV cells take them: file, label, similarity."""
    if neighbours is None:
        return []
    return [{"file": n["file"], "label": n["label"], "similarity": n["similarity"]}
            for n in neighbours[i]]
