"""Evaluating a fitted pipeline on labelled test images, in one pass.

:func:`evaluate_model` times each stage (decoding, each feature block, the
classifier; ``_timed_features``), scores the predictions
(:mod:`hybridclf.evaluation._metrics`), lists the misclassified images with
their nearest training photos, and for a cascade measures its early exit
(``_cascade``).
"""

import threading
import time
import warnings

import numpy as np

from .._held_out import has_fingerprints, near_copies_of, trained_on_rows
from ..features._base import showing_progress
from ..io._read import _source_name
from ..pipeline import (
    get_block_extractor,
    get_classifier,
    get_loader,
    iter_feature_blocks,
)
from ..prediction import embedding_of
from ..utils._parallel import effective_threads
from ._gallery import error_gallery
from ._metrics import (
    _block_importance,
    _metrics,
    _open_set,
    _per_class,
    accuracy_interval,
    few_test_images,
)

__all__ = ["evaluate_model"]


def _timed(func, *args):
    start = time.perf_counter()
    out = func(*args)
    return out, time.perf_counter() - start


def evaluate_model(pipe, X, labels, *, groups=None, n_repeats=3, top_k=(2, 3),
                   n_bins=10, random_state=0, model_info=None, novelty=None,
                   index=None, neighbours=3, progress=False, train_part=None):
    """Evaluate a fitted hybrid pipeline on labelled test images.

    Parameters
    ----------
    pipe : fitted Pipeline
        A hybrid pipeline (steps ``load``, ``augment``, ``features``,
        ``clf``) whose classifier has ``predict_proba``.

    X : sequence of str or images
        Test images, as ``pipe.predict`` takes them.

    labels : array-like of shape (n_samples,)
        Their true classes. A class the model does not know counts as wrong
        (in the accuracy, balanced accuracy, F1, top-k accuracy, expected
        calibration error and reliability curve; the log loss leaves its
        images out), and a warning names it.

    groups : array-like of shape (n_samples,) or None, default=None
        The group of near-identical photos of each test image (the photos of
        one object). The accuracy's interval then counts each group once:
        such photos are right or wrong together, not independent draws.
        None counts each image once.

    n_repeats : int, default=3
        Permutations per feature block for the block importance; its
        interval counts each group of ``groups`` once, as the accuracy's.

    top_k : tuple of int, default=(2, 3)
        The k of each top-k accuracy.

    n_bins : int, default=10
        Bins of the reliability curve.

    random_state : int, default=0
        Seeds the permutations.

    model_info : dict or None, default=None
        The model's ``model.json`` (:func:`~hybridclf.persistence.read_model_info`);
        its open-set thresholds, when present, are applied too.

    novelty : dict or None, default=None
        The novelty check with its index, as
        :func:`~hybridclf.prediction.read_open_set` reads it from the model
        directory; it replaces the per-block OOD check of ``model_info``.

    index : EmbeddingIndex or None, default=None
        The model's index of its training photos
        (:meth:`~hybridclf.neighbours.EmbeddingIndex.load`), to show each
        misclassified image beside its nearest training photos; None takes the
        novelty check's, if any.

    neighbours : int, default=3
        Nearest training photos per misclassified image; 0 shows none.

    progress : bool, default=False
        Show the progress bar of a feature block that has one (the CNN's),
        over the test images.

    train_part : dict or None, default=None
        The model's record of the photos it was trained on: its
        ``train_part.json`` (``json.load`` of the file; ``hybridclf train``
        writes it), to say which test images are those photos or near
        copies of them (``trained_on``, ``near_training``), whose scores
        overstate the accuracy on new photos. Paths, bytes and arrays are
        checked alike: each image is hashed as the pipeline's loader decodes
        it, in the one decode of the predictions. None checks nothing, and
        both entries of the report are None.

        .. versionadded:: 0.1.0

    Returns
    -------
    report : dict
        ``metrics``, ``accuracy_interval`` (the accuracy's 95% interval,
        ``[low, high]``: :func:`accuracy_interval`, over ``n_groups`` draws),
        ``n_groups`` (the groups of ``groups``; None without them),
        ``per_class``
        (``precision``, ``recall``, ``recall_interval`` (its 95% interval,
        as ``accuracy_interval``), ``f1`` and ``support`` of each class;
        None where the class has no test image to score it on and is never
        predicted, and no recall without a test image),
        ``few_test_images`` (the test classes with fewer than 10 test
        images, and how many: their scores rest on a handful of photos),
        ``confusion_matrix`` (``labels`` and ``matrix``), ``reliability``,
        ``block_importance`` (of each feature block: ``mean``, the accuracy
        drop when its columns are permuted, over ``n_repeats``
        permutations; ``std``, its spread over them; ``interval``, its 95%
        interval over the test images, each group of ``groups`` counted
        once, None on fewer than 10 of them (images, or groups):
        on a small test set one photo moves the drop by far more than the
        permutations do; ``n_features``), ``errors``,
        ``speed_ms_per_image``, ``open_set`` and ``n_images``. ``metrics``
        are closed-set: of the top class of every image, none answered
        "unknown". ``open_set`` (empty for a model without open-set
        thresholds) scores the answers as ``hybridclf predict`` gives them:
        its thresholds, ``unknown_share`` (of all images),
        ``accuracy_of_accepted``, ``wrong_share_rejected`` (of the images the
        top class gets wrong), ``open_set_accuracy`` (a class the model knows
        answered by it, one it does not know by "unknown"),
        ``unknown_class_share_rejected`` (of the images of classes it does not
        know; None without them) and ``unknown_by_class`` (``n_images`` and
        ``n_unknown`` of each test class);
        ``unknown_classes`` (the number of test images of each class the model
        does not know) and ``absent_classes`` (the model's classes without a
        test image); for a
        :class:`~hybridclf.cascade.CascadePipeline` the metrics are the
        cascade's and ``cascade`` holds its early-exit share, the accuracy of
        each stage and its estimated time per image (``ood_gate``: whether
        an early answer must also be within the cheap blocks'
        out-of-distribution limits). With an index, each
        entry of ``errors`` lists its nearest training photos under
        ``neighbours`` (``file``, ``label``, ``similarity``). The keys
        ``_thumbnails`` and ``_neighbour_thumbnails`` (not JSON) hold small
        images of the errors and of their neighbours for :func:`write_report`.
        ``trained_on``: the test images with the same content (a file's
        bytes, or an array's values) as a photo trained on (``n_images``,
        ``files``; a warning names them); ``near_training``: the others that
        are near copies of one (re-encoded, resized, greyscale, cropped by
        about 1% a side), by a quick perceptual-hash check (``n_images``,
        ``files`` with each one's ``hash_distance``, ``check``; a warning
        names them). Each is None where it was not checked: without
        ``train_part``, or (``near_training``) with a record of an older
        version, without fingerprints; arrays are named ``<array i>``
        (their row).
    """
    if index is None and novelty:
        index = novelty["index"]
    clf = get_classifier(pipe)
    y = np.asarray(labels)
    hash_them = has_fingerprints(train_part)
    images, features, widths, speed, hashes = _timed_features(
        pipe, X, progress, fingerprint=hash_them)
    proba, seconds = _timed(clf.predict_proba, features)
    speed["classifier"] = seconds
    speed = {k: 1000 * v / len(y) for k, v in speed.items()}
    speed["total"] = sum(speed.values())
    cascade = {}
    if hasattr(pipe, "stages_from_features"):
        proba, cascade = _cascade(pipe, features, proba, y, speed)

    classes = np.asarray(clf.classes_)
    n_groups = None if groups is None else len(set(np.asarray(groups).tolist()))
    unknown, absent = _class_mismatch(y, classes)
    predicted = classes[proba.argmax(axis=1)]
    correct = predicted == y
    metrics, bins = _metrics(y, classes, proba, top_k=top_k, n_bins=n_bins)
    per_class, all_labels, matrix = _per_class(y, predicted, classes, groups)
    errors, thumbnails, near_thumbnails = error_gallery(
        X, y, images, classes, proba, index=index, k=neighbours,
        embeddings=None if index is None else embedding_of(pipe, features))
    trained, near = _training_copies(X, train_part, hashes)
    return {
        "n_images": int(len(y)),
        "classes": [str(c) for c in classes],
        "unknown_classes": unknown,
        "absent_classes": absent,
        "metrics": metrics,
        "accuracy_interval": accuracy_interval(int(correct.sum()), len(y),
                                               n_groups=n_groups),
        "n_groups": n_groups,
        "per_class": per_class,
        "few_test_images": few_test_images(
            {c: v["support"] for c, v in per_class.items()}),
        "confusion_matrix": {"labels": [str(c) for c in all_labels],
                             "matrix": matrix.tolist()},
        "reliability": bins,
        "block_importance": _block_importance(
            clf, features, y, widths, n_repeats=n_repeats,
            random_state=random_state, groups=groups),
        "errors": errors,
        "speed_ms_per_image": speed,
        "open_set": _open_set(pipe, proba, features, widths, y, classes,
                              model_info, novelty),
        **({"cascade": cascade} if cascade else {}),
        "trained_on": trained,
        "near_training": near,
        "_thumbnails": thumbnails,
        "_neighbour_thumbnails": near_thumbnails,
    }


def _class_mismatch(y, classes):
    """The test classes the model does not know (with counts), its classes not tested.

    A test folder named differently from the training folder (``cats`` for
    ``cat``) or holding a class the model never saw scores every one of its
    images as wrong: the warning says why the accuracy is low.
    """
    names, counts = np.unique(y[~np.isin(y, classes)], return_counts=True)
    unknown = {str(n): int(c) for n, c in zip(names, counts)}
    absent = [str(c) for c in classes if c not in set(y.tolist())]
    if unknown:
        warnings.warn(
            f"{sum(unknown.values())} of {len(y)} test images belong to classes "
            f"the model does not know: "
            + ", ".join(f"{n!r} ({c})" for n, c in unknown.items())
            + f". They count as wrong. The model's classes are "
            f"{[str(c) for c in classes]!r}: rename the test folders that "
            "stand for one of them, or leave the others out.",
            UserWarning, stacklevel=3)
    return unknown, absent


def _cascade(pipe, features, full_proba, y, speed):
    """A cascade's probabilities, and its early-exit share and stage accuracy.

    Every block ran on every image (for the block importance), so the
    cascade's time is estimated from the measured per-block times: the cheap
    blocks and both classifiers for every image, the other blocks for the
    images passed on.
    """
    proba, early = pipe.stages_from_features(features, full_proba)
    classes = np.asarray(get_classifier(pipe).classes_)
    right = classes[proba.argmax(axis=1)] == y
    full_right = classes[full_proba.argmax(axis=1)] == y
    cheap = set(pipe.cheap_features)
    late_ms = sum(v for k, v in speed.items()
                  if k.startswith("block ") and k[6:] not in cheap)

    def share(mask):
        return float(mask.mean()) if mask.size else None

    return proba, {
        "threshold": float(pipe.threshold_),
        "cheap_features": sorted(cheap),
        "ood_gate": getattr(pipe, "ood_limits_", None) is not None,
        "early_share": float(early.mean()),
        "early_accuracy": share(right[early]),
        "late_accuracy": share(right[~early]),
        "full_model_accuracy": float(full_right.mean()),
        "cascade_accuracy": float(right.mean()),
        "ms_per_image_full": speed["total"],
        "ms_per_image_estimated": speed["total"] - late_ms * float(early.mean()),
    }


def _timed_features(pipe, X, progress=False, fingerprint=False):
    """(images, features, block widths, seconds per stage, hashes) of a pipeline.

    With ``fingerprint``, each image is hashed for the near-copy check
    (:func:`~hybridclf.inspect._fingerprint.fingerprint_of`) as the loader
    decodes it, at its own size, before it is resized: one decode of each
    photo serves the predictions and the check, and no decoded photo is
    kept (a 48-megapixel one is 140 MB). The hashing's time is left out of
    the decoding's (the loader's threads share it out evenly); ``hashes`` is
    None without ``fingerprint``.
    """
    speed = {}
    loader = get_loader(pipe)
    hashes = None
    if loader is None:
        images = np.asarray(X)
        if fingerprint:
            hashes = np.stack([_fingerprint(image) for image in images]) \
                if len(images) else np.zeros((0, 2, 8), dtype=np.uint64)
    elif fingerprint:
        spent = []
        lock = threading.Lock()

        def measure(rgb):
            start = time.perf_counter()
            out = _fingerprint(rgb)
            with lock:
                spent.append(time.perf_counter() - start)
            return out

        (images, hashes), seconds = _timed(loader.read_measured, X, measure)
        hashes = np.stack(hashes)
        threads = min(effective_threads(loader.n_jobs), len(hashes))
        speed["decode"] = max(seconds - sum(spent) / max(threads, 1), 0.0)
    else:
        images, seconds = _timed(loader.transform, X)
        speed["decode"] = seconds
    blocks, widths = [], {}
    for name, block in iter_feature_blocks(pipe):
        # one image first, untimed: a block's first call may set itself up
        # (the CNN opens its ONNX Runtime session), a cost paid once per process
        block.transform(images[:1])
        with showing_progress(get_block_extractor(block), progress):
            out, seconds = _timed(block.transform, images)
        speed[f"block {name}"] = seconds
        blocks.append(np.asarray(out, dtype=np.float32))
        widths[name] = out.shape[1]
    return images, np.hstack(blocks), widths, speed, hashes


def _fingerprint(rgb):
    from ..inspect._fingerprint import fingerprint_of

    return fingerprint_of(rgb)


#: How the near copies were found, for report.json and the warnings.
NEAR_CHECK = ("a quick perceptual-hash check (the hashes and thresholds of "
              "'hybridclf inspect --quick'); 'hybridclf inspect --data-dir TRAIN "
              "--test-data-dir TEST' runs the full check")


def _training_copies(X, train_part, hashes):
    """(``trained_on``, ``near_training``) of the test images, with warnings.

    A test folder that is the training folder, or holds copies of its files,
    scored the model on photos it has seen: its accuracy on them (1.000 on
    the 60 photos of a training folder) is not the one new photos get. A
    re-encoded, resized or greyscale copy scores like the photo itself, but
    its bytes differ: the perceptual hashes find it. The images found the
    same are not counted again as near copies. Each is None where it was not
    checked (see :func:`evaluate_model`).
    """
    if train_part is None:
        return None, None
    items = X if isinstance(X, np.ndarray) else list(X)
    n = len(items)
    names = [_source_name(item, i) for i, item in enumerate(items)]
    same = trained_on_rows(train_part, items)
    if same:
        shown = ", ".join(names[i] for i in same[:5]) + (
            ", ..." if len(same) > 5 else "")
        warnings.warn(
            f"{len(same)} of the {n} test images are photos the "
            f"model was trained on (the same bytes): {shown}. Its scores on them "
            "overstate its accuracy on new photos. Evaluate on photos kept out of "
            "the training: the test part that train held out (no --test-data-dir) "
            "or a folder of new photos.", UserWarning, stacklevel=3)
    trained = {"n_images": len(same), "files": [names[i] for i in same]}
    if hashes is None:
        return trained, None
    rest = np.setdiff1d(np.arange(n), same)
    matches = [{"file": names[rest[i]], "hash_distance": d}
               for i, d in near_copies_of(train_part, hashes[rest])]
    if matches:
        shown = ", ".join(m["file"] for m in matches[:5]) + (
            ", ..." if len(matches) > 5 else "")
        warnings.warn(
            f"{len(matches)} of the {n} test images are near "
            f"copies of photos the model was trained on: {shown}. Their scores "
            "overstate its accuracy on new photos. Found by "
            f"{NEAR_CHECK}.", UserWarning, stacklevel=3)
    return trained, {"n_images": len(matches), "files": matches,
                     "check": NEAR_CHECK}
