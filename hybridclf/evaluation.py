"""Evaluating a fitted pipeline on a labelled test set, and writing the report.

:func:`evaluate_model` measures, in one pass over the test images:

- accuracy, balanced accuracy, macro-F1, top-k accuracy and per-class
  precision / recall / F1;
- the confusion matrix;
- a reliability curve of the top-class probability and its expected
  calibration error (ECE);
- the importance of each feature block: the accuracy drop when the block's
  columns are permuted together across images (scikit-learn's permutation
  importance, applied to whole blocks);
- the misclassified images with their top guesses (the error gallery);
- per-stage speed: ms per image for decoding, each feature block and the
  classifier;
- with the model's open-set thresholds, how many test images are "unknown".

:func:`write_report` turns the report into PNG figures, one self-contained
HTML page (figures inlined as base64) and ``report.json``.
:func:`evaluate_folder` does both for a model directory and a test folder, as
``hybridclf evaluate`` does.
"""

import io
import json
import logging
import os
import time

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)

from ._gallery import error_gallery
from ._report_html import evaluation_page
from .pipeline import (
    get_classifier,
    get_loader,
    iter_feature_blocks,
    set_image_params,
)
from .prediction import confidence_limits, embedding_of, ood_scores, read_open_set

__all__ = ["evaluate_folder", "evaluate_model", "reliability_bins", "write_report"]

logger = logging.getLogger(__name__)

def reliability_bins(confidence, correct, *, n_bins=10):
    """Bin the top-class probabilities and measure the accuracy in each bin.

    Parameters
    ----------
    confidence : array-like of shape (n_samples,)
        Top-class probability of each prediction.

    correct : array-like of shape (n_samples,), dtype bool
        Whether each prediction is right.

    n_bins : int, default=10
        Equal-width bins over [0, 1].

    Returns
    -------
    bins : list of dict
        Per bin: ``low``, ``high``, ``count``, ``confidence`` (mean) and
        ``accuracy`` (None for empty bins).

    ece : float
        Expected calibration error: the count-weighted mean of
        ``|accuracy - confidence|``.

    Examples
    --------
    >>> from hybridclf.evaluation import reliability_bins
    >>> bins, ece = reliability_bins([0.95, 0.95, 0.55], [True, True, False],
    ...                              n_bins=2)
    >>> [b["count"] for b in bins], round(ece, 3)
    ([0, 3], 0.15)
    """
    confidence = np.asarray(confidence, dtype=float)
    correct = np.asarray(correct, dtype=bool)
    edges = np.linspace(0, 1, n_bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, n_bins - 1)
    bins, ece = [], 0.0
    for b in range(n_bins):
        mask = index == b
        count = int(mask.sum())
        conf = float(confidence[mask].mean()) if count else None
        acc = float(correct[mask].mean()) if count else None
        if count:
            ece += count / len(confidence) * abs(acc - conf)
        bins.append({"low": float(edges[b]), "high": float(edges[b + 1]),
                     "count": count, "confidence": conf, "accuracy": acc})
    return bins, float(ece)


def _timed(func, *args):
    start = time.perf_counter()
    out = func(*args)
    return out, time.perf_counter() - start


def evaluate_model(pipe, X, labels, *, n_repeats=3, top_k=(2, 3), n_bins=10,
                   random_state=0, model_info=None, novelty=None, index=None,
                   neighbours=3):
    """Evaluate a fitted hybrid pipeline on labelled test images.

    Parameters
    ----------
    pipe : fitted Pipeline
        A hybrid pipeline (steps ``load``, ``augment``, ``features``,
        ``clf``) whose classifier has ``predict_proba``.

    X : sequence of str or images
        Test images, as ``pipe.predict`` takes them.

    labels : array-like of shape (n_samples,)
        Their true classes. A class the model does not know counts as wrong.

    n_repeats : int, default=3
        Permutations per feature block for the block importance.

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

    Returns
    -------
    report : dict
        ``metrics``, ``per_class``, ``confusion_matrix`` (``labels`` and
        ``matrix``), ``reliability``, ``block_importance``, ``errors``,
        ``speed_ms_per_image``, ``open_set`` and ``n_images``; for a
        :class:`~hybridclf.cascade.CascadePipeline` the metrics are the
        cascade's and ``cascade`` holds its early-exit share, the accuracy of
        each stage and its estimated time per image. With an index, each
        entry of ``errors`` lists its nearest training photos under
        ``neighbours`` (``file``, ``label``, ``similarity``). The keys
        ``_thumbnails`` and ``_neighbour_thumbnails`` (not JSON) hold small
        images of the errors and of their neighbours for :func:`write_report`.
    """
    if index is None and novelty:
        index = novelty["index"]
    clf = get_classifier(pipe)
    y = np.asarray(labels)
    images, features, widths, speed = _timed_features(pipe, X)
    proba, seconds = _timed(clf.predict_proba, features)
    speed["classifier"] = seconds
    speed = {k: 1000 * v / len(y) for k, v in speed.items()}
    speed["total"] = sum(speed.values())
    cascade = {}
    if hasattr(pipe, "stages_from_features"):
        proba, cascade = _cascade(pipe, features, proba, y, speed)

    classes = np.asarray(clf.classes_)
    predicted = classes[proba.argmax(axis=1)]
    correct = predicted == y
    metrics, bins = _metrics(y, classes, proba, top_k=top_k, n_bins=n_bins)
    per_class, all_labels, matrix = _per_class(y, predicted, classes)
    errors, thumbnails, near_thumbnails = error_gallery(
        X, y, images, classes, proba, index=index, k=neighbours,
        embeddings=None if index is None else embedding_of(pipe, features))
    return {
        "n_images": int(len(y)),
        "classes": [str(c) for c in classes],
        "metrics": metrics,
        "per_class": per_class,
        "confusion_matrix": {"labels": [str(c) for c in all_labels],
                             "matrix": matrix.tolist()},
        "reliability": bins,
        "block_importance": _block_importance(
            clf, features, y, widths, base=metrics["accuracy"],
            n_repeats=n_repeats, random_state=random_state),
        "errors": errors,
        "speed_ms_per_image": speed,
        "open_set": _open_set(pipe, proba, features, widths, correct, model_info,
                              novelty),
        **({"cascade": cascade} if cascade else {}),
        "_thumbnails": thumbnails,
        "_neighbour_thumbnails": near_thumbnails,
    }


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
        "early_share": float(early.mean()),
        "early_accuracy": share(right[early]),
        "late_accuracy": share(right[~early]),
        "full_model_accuracy": float(full_right.mean()),
        "cascade_accuracy": float(right.mean()),
        "ms_per_image_full": speed["total"],
        "ms_per_image_estimated": speed["total"] - late_ms * float(early.mean()),
    }


def _timed_features(pipe, X):
    """(images, features, block widths, seconds per stage) of a fitted pipeline."""
    speed = {}
    loader = get_loader(pipe)
    if loader is None:
        images = np.asarray(X)
    else:
        images, seconds = _timed(loader.transform, X)
        speed["decode"] = seconds
    blocks, widths = [], {}
    for name, block in iter_feature_blocks(pipe):
        # one image first, untimed: a block's first call may set itself up
        # (the CNN opens its ONNX Runtime session), a cost paid once per process
        block.transform(images[:1])
        out, seconds = _timed(block.transform, images)
        speed[f"block {name}"] = seconds
        blocks.append(np.asarray(out, dtype=np.float32))
        widths[name] = out.shape[1]
    return images, np.hstack(blocks), widths, speed


def _true_rank(y, classes, proba):
    """(whether each true class is known, its column, its rank among guesses)."""
    n = len(y)
    order = np.argsort(-proba, axis=1)
    known = np.isin(y, classes)
    true_column = np.full(n, -1)
    true_column[known] = np.searchsorted(classes, y[known])
    rank = np.where(known, (order == true_column[:, None]).argmax(axis=1), n)
    return known, true_column, rank


def _metrics(y, classes, proba, *, top_k, n_bins):
    """The summary metrics and the reliability bins."""
    predicted = classes[proba.argmax(axis=1)]
    known, true_column, rank = _true_rank(y, classes, proba)
    metrics = {
        "accuracy": float(accuracy_score(y, predicted)),
        "balanced_accuracy": float(balanced_accuracy_score(y, predicted)),
        "f1_macro": float(f1_score(y, predicted, average="macro")),
    }
    for k in top_k:
        if k < len(classes):
            metrics[f"top_{k}_accuracy"] = float(np.mean(rank < k))
    bins, ece = reliability_bins(proba.max(axis=1), predicted == y, n_bins=n_bins)
    metrics["expected_calibration_error"] = ece
    metrics["log_loss"] = float(-np.mean(np.log(np.clip(
        proba[np.arange(len(y))[known], true_column[known]], 1e-15, 1)))) \
        if known.any() else None
    return metrics, bins


def _per_class(y, predicted, classes):
    """Per-class precision, recall, F1 and support; the labels and confusion matrix.

    Classes of the test set that the model does not know come after its own.
    """
    all_labels = list(classes) + sorted(set(y.tolist()) - set(classes.tolist()))
    precision, recall, f1, support = precision_recall_fscore_support(
        y, predicted, labels=all_labels, zero_division=0)
    per_class = {
        str(c): {"precision": float(p), "recall": float(r), "f1": float(f),
                 "support": int(s)}
        for c, p, r, f, s in zip(all_labels, precision, recall, f1, support)
    }
    return per_class, all_labels, confusion_matrix(y, predicted, labels=all_labels)


def _block_importance(clf, features, y, widths, *, base, n_repeats, random_state):
    """Permutation importance of whole blocks: shuffle the rows of its columns."""
    rng = np.random.RandomState(random_state)
    n = len(y)
    importance, start = {}, 0
    for name, width in widths.items():
        drops = []
        for _ in range(n_repeats):
            shuffled = features.copy()
            shuffled[:, start : start + width] = features[rng.permutation(n),
                                                          start : start + width]
            drops.append(base - accuracy_score(y, clf.predict(shuffled)))
        importance[name] = {"mean": float(np.mean(drops)), "std": float(np.std(drops)),
                            "n_features": int(width)}
        start += width
    return importance


def _open_set(pipe, proba, features, widths, correct, model_info, novelty):
    """With the model's open-set thresholds: how many images are unknown.

    The novelty check (with its index) replaces the per-block OOD check of
    ``model_info`` when given.
    """
    thresholds = (model_info or {}).get("open_set") or {}
    if not thresholds:
        return {}
    scores = None
    if novelty:
        from .neighbours import novelty_scores

        scores = novelty_scores(novelty["index"], embedding_of(pipe, features),
                                k=novelty.get("k", 1)) / novelty["threshold"]
        rejected = scores > 1.0
    elif thresholds.get("ood_thresholds"):
        rejected = ood_scores(features, list(widths.items()),
                              thresholds["ood_thresholds"]) > 1.0
    else:
        rejected = np.zeros(len(proba), dtype=bool)
    # the confidence threshold scaled by the novelty, as predict does
    rejected |= proba.max(axis=1) < confidence_limits(
        thresholds.get("proba_threshold", 0.0), scores)
    return {
        **{k: thresholds[k] for k in ("proba_threshold", "ood_thresholds")
           if k in thresholds and not (novelty and k == "ood_thresholds")},
        **({"novelty_threshold": novelty["threshold"]} if novelty else {}),
        "unknown_share": float(rejected.mean()),
        "accuracy_of_accepted": float(correct[~rejected].mean())
        if (~rejected).any() else None,
        "wrong_share_rejected": float(rejected[~correct].mean())
        if (~correct).any() else None,
    }


def _png(fig):
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _figures(report):
    """(name, PNG bytes) of every figure, or [] without matplotlib."""
    try:
        from . import plotting
    except ImportError:  # pragma: no cover - plotting imports nothing heavy
        return []
    try:
        figures = [
            ("confusion_matrix", plotting.plot_confusion_matrix(
                report["confusion_matrix"]["matrix"],
                report["confusion_matrix"]["labels"])),
            ("reliability", plotting.plot_reliability(report["reliability"])),
            ("block_importance",
             plotting.plot_block_importance(report["block_importance"])),
            ("stage_speed", plotting.plot_stage_speed(report["speed_ms_per_image"])),
        ]
        if report["_thumbnails"]:
            figures.append(("error_gallery", _gallery_figure(plotting, report)))
    except ImportError as exc:
        logger.warning("No figures: %s", exc)
        return []
    return [(name, _png(fig)) for name, fig in figures]


def _gallery_figure(plotting, report):
    """The misclassified images, each beside its nearest training photos if known."""
    shown = report["errors"][: len(report["_thumbnails"])]
    titles = [f"{e['file'].split(os.sep)[-1][:24]}\ntrue {e['true']}\n"
              + "\n".join(f"{c} {p:.2f}" for c, p in e["top"][:2]) for e in shown]
    neighbours = None
    if any(e.get("neighbours") for e in shown):
        neighbours = [
            [(image, f"{n['file'].split('/')[-1][:20]}\n{n['label'][:22]}\n"
                     f"similarity {n['similarity']:.2f}")
             for image, n in zip(images, e.get("neighbours", []))]
            for images, e in zip(report["_neighbour_thumbnails"], shown)]
    return plotting.plot_error_gallery(report["_thumbnails"], titles,
                                       neighbours=neighbours)


def write_report(report, output_dir, *, title="hybridclf evaluation"):
    """Write an evaluation report: PNG figures, ``report.html`` and ``report.json``.

    The HTML page is self-contained: its figures are inlined as base64 PNG,
    so it can be mailed or archived as one file. Without matplotlib the
    figures are left out (a warning says how to install it).

    Parameters
    ----------
    report : dict
        As from :func:`evaluate_model`.

    output_dir : str or os.PathLike
        Folder to write into; created if missing.

    title : str, default="hybridclf evaluation"
        Heading of the HTML page.

    Returns
    -------
    files : dict
        ``html``, ``json`` and ``figures`` (name to PNG path).
    """
    os.makedirs(output_dir, exist_ok=True)
    figures = _figures(report)
    paths = {}
    for name, data in figures:
        paths[name] = os.path.join(output_dir, f"{name}.png")
        with open(paths[name], "wb") as fh:
            fh.write(data)
    html_path = os.path.join(output_dir, "report.html")
    with open(html_path, "w", encoding="utf-8") as fh:
        fh.write(evaluation_page(report, figures, title))
    json_path = os.path.join(output_dir, "report.json")
    with open(json_path, "w", encoding="utf-8") as fh:
        json.dump({k: v for k, v in report.items() if not k.startswith("_")}, fh,
                  indent=2)
    logger.info("Wrote the evaluation report to %s", output_dir)
    return {"html": html_path, "json": json_path, "figures": paths}


def evaluate_folder(model_dir, test_data_dir, output_dir, *, n_repeats=3,
                    random_state=0, neighbours=3, allow_pickle=False,
                    max_pixels=None, n_jobs=None):
    """Evaluate a model directory on a class-per-folder test set; write the report.

    Parameters
    ----------
    model_dir : str or os.PathLike
        A model directory (:func:`~hybridclf.save_model`).

    test_data_dir : str or os.PathLike
        The test set: ``test_data_dir/<class>/<image>``.

    output_dir : str or os.PathLike
        Folder for the report (:func:`write_report`).

    n_repeats, random_state, neighbours
        As in :func:`evaluate_model`; the nearest training photos come from
        the model directory's embedding index (a model with a CNN block).

    allow_pickle : bool, default=False
        Load a pickled model (runs code from the file).

    max_pixels, n_jobs : int or None, default=None
        Run-time settings of the image steps
        (:func:`~hybridclf.pipeline.set_image_params`); None keeps the model's.

    Returns
    -------
    report : dict
        As from :func:`evaluate_model`.

    files : dict
        As from :func:`write_report`.
    """
    from .io import load_image_folder
    from .persistence import load_model, read_model_info

    pipe = load_model(model_dir, allow_pickle=allow_pickle)
    set_image_params(pipe, n_jobs=n_jobs, max_pixels=max_pixels)
    info = read_model_info(model_dir)
    paths, labels = load_image_folder(test_data_dir)
    novelty = read_open_set(info, model_dir)["novelty"]
    index = None
    if neighbours:
        from .neighbours import EmbeddingIndex

        index = novelty["index"] if novelty else EmbeddingIndex.load(model_dir)
    report = evaluate_model(pipe, paths, labels, n_repeats=n_repeats,
                            random_state=random_state, model_info=info,
                            novelty=novelty, index=index, neighbours=neighbours)
    return report, write_report(report, output_dir)
