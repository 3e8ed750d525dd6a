"""The self-contained HTML page of an evaluation report: :func:`evaluation_page`.

The page shows what ``hybridclf evaluate`` prints, the metrics, the figures
(inlined as base64 PNG) and the table of errors; its tables come from
:func:`hybridclf._report_html.html_table` and sort by a click on a column
header.
"""

import base64
import html

from .._report_html import SORT_SCRIPT, TABLE_STYLE, html_table

__all__ = ["cascade_sentence", "evaluation_page", "importance_sentence"]


def cascade_sentence(cascade, n_images):
    """A cascade's early exit on the test images, as one sentence.

    ``cascade`` is ``report.json``'s ``cascade`` (the report of a
    :class:`~hybridclf.cascade.CascadePipeline`): how many test images its
    cheap blocks answered alone and how well, against the photos passed on to
    every block, and what that costs against the full model. ``hybridclf
    evaluate`` prints it and the HTML page shows it; both had left it to
    ``report.json``.

    Parameters
    ----------
    cascade : dict
        ``threshold``, ``cheap_features``, ``ood_gate`` (whether an early
        answer must also be within the cheap blocks' out-of-distribution
        limits; absent in reports of older versions), ``early_share``,
        ``early_accuracy`` and ``late_accuracy`` (None, written ``-``, when
        no image took that way), ``cascade_accuracy``,
        ``full_model_accuracy``, ``ms_per_image_full`` and
        ``ms_per_image_estimated``, as
        :func:`~hybridclf.evaluation.evaluate_model` reports them.

    n_images : int
        The test images scored (``n_images`` of the report), which
        ``early_share`` is a share of.

    Returns
    -------
    sentence : str
        One line, starting with ``cascade:``.

    >>> print(cascade_sentence({
    ...     "cheap_features": ["color", "hog"], "threshold": 0.87,
    ...     "early_share": 0.5, "early_accuracy": 1.0, "late_accuracy": 0.75,
    ...     "cascade_accuracy": 0.875, "full_model_accuracy": 0.875,
    ...     "ms_per_image_full": 20.0, "ms_per_image_estimated": 12.5}, 8))
    cascade: color, hog answer alone at top probability >= 0.870: 4 of 8 test
    images (50%), accuracy 1.000 on them and 0.750 on the 4 passed on to every
    block; cascade accuracy 0.875, full model 0.875; about 12.50 ms per image
    (estimated) against 20.00 with every block
    """
    share = cascade["early_share"]
    n_early = round(share * n_images)

    def accuracy(value):
        return "-" if value is None else f"{value:.3f}"

    return (f"cascade: {', '.join(cascade['cheap_features'])} answer alone at "
            f"top probability >= {cascade['threshold']:.3f}"
            + (", within their OOD gate" if cascade.get("ood_gate") else "")
            + f": {n_early} of "
            f"{n_images} test images ({share:.0%}), accuracy "
            f"{accuracy(cascade['early_accuracy'])} on them and "
            f"{accuracy(cascade['late_accuracy'])} on the {n_images - n_early} "
            "passed on to every block; cascade accuracy "
            f"{cascade['cascade_accuracy']:.3f}, full model "
            f"{cascade['full_model_accuracy']:.3f}; about "
            f"{cascade['ms_per_image_estimated']:.2f} ms per image (estimated) "
            f"against {cascade['ms_per_image_full']:.2f} with every block")


def importance_sentence(importance, n_images, n_groups=None):
    """The block importance with its interval, or why it has none, as one sentence.

    ``hybridclf evaluate`` prints it and the HTML page shows it under the
    figure: the bars alone, on a test set of 8 photos, read "hog 0.125" as
    a block that matters, where one photo moves the drop by 0.125.

    Parameters
    ----------
    importance : dict
        ``block_importance`` of the report: each block's ``mean`` and
        ``interval`` (None on fewer than 10 draws; absent in reports of
        older versions).

    n_images : int
        The test images scored.

    n_groups : int or None, default=None
        The groups of near-identical photos they fall in (``n_groups`` of
        the report); None counts each image once.

    Returns
    -------
    sentence : str
        One line, starting with ``block importance``.

    >>> print(importance_sentence({"hog": {"mean": 0.125, "interval": None},
    ...                            "color": {"mean": 0.0, "interval": None}},
    ...                           8, n_groups=4))
    block importance (the accuracy drop when a block's columns are permuted,
    mean over the permutations): hog 0.125, color 0.000; no interval: 8 test
    images in 4 groups, each counted once, fewer than 10 (one photo of 8 moves
    a drop by 0.125): read these as a guess
    >>> print(importance_sentence({"hog": {"mean": 0.1, "interval": [0.02, 0.18]}},
    ...                           40))
    block importance (the accuracy drop when a block's columns are permuted,
    mean over the permutations; 95% interval over the 40 test images): hog
    0.100 (0.020 to 0.180)
    """
    draws = (f"{n_images} test images"
             + (f" in {n_groups} groups, each counted once"
                if n_groups is not None and n_groups < n_images else ""))
    intervals = [v.get("interval") for v in importance.values()]
    head = ("block importance (the accuracy drop when a block's columns are "
            "permuted, mean over the permutations")
    if intervals and all(intervals):
        return (f"{head}; 95% interval over the {draws}): " + ", ".join(
            f"{name} {v['mean']:.3f} ({v['interval'][0]:.3f} to "
            f"{v['interval'][1]:.3f})" for name, v in importance.items()))
    values = ", ".join(f"{name} {v['mean']:.3f}" for name, v in importance.items())
    if any(v is None for v in intervals) and n_images:
        return (f"{head}): {values}; no interval: {draws}, fewer than 10 (one "
                f"photo of {n_images} moves a drop by {1 / n_images:.3f}): read "
                "these as a guess")
    return f"{head}): {values}"


def _table(header, rows):
    return html_table(header, rows, fmt=_cell)


def _cell(value):
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, dict):  # e.g. the OOD threshold of each feature block
        return ", ".join(f"{k} {_cell(v)}" for k, v in value.items())
    return "" if value is None else str(value)


def _errors_table(errors):
    """The misclassified images, with their nearest training photos if known."""
    header = ["file", "true", "predicted", "top guesses"]
    near = any("neighbours" in e for e in errors)
    if near:
        header.append("nearest training photos (label, similarity, file)")
    rows = []
    for e in errors:
        row = [e["file"], e["true"], e["predicted"],
               ", ".join(f"{c} {p:.2f}" for c, p in e["top"])]
        if near:
            row.append("; ".join(f"{n['label']} {n['similarity']:.2f} ({n['file']})"
                                 for n in e.get("neighbours", [])))
        rows.append(row)
    return _table(header, rows)


def _class_notes(report):
    """What ``hybridclf evaluate`` prints of the test set, as paragraphs.

    The page is the file that is mailed around: without them, a test folder
    of classes the model does not know read as a model at 0.371 accuracy
    (with a log loss of 0.023, from the other images only), and the training
    folder given as the test folder as a model at 1.000.
    """
    notes = []
    unknown = report.get("unknown_classes") or {}
    if unknown:
        notes.append(
            f"{sum(unknown.values())} of the {report['n_images']} test images "
            "belong to classes the model does not know: "
            + ", ".join(f"{name} ({n})" for name, n in unknown.items())
            + ". They count as wrong in the accuracy, balanced accuracy, F1, "
            "top-k accuracy, expected calibration error and reliability curve; "
            "the log loss leaves them out. The model's classes: "
            + ", ".join(report["classes"]) + ".")
    leaked = (report.get("trained_on") or {}).get("n_images")
    if leaked:
        notes.append(
            f"{leaked} of the {report['n_images']} test images are photos the "
            "model was trained on (the same bytes; report.json lists them under "
            "trained_on): the scores below overstate its accuracy on new photos.")
    near = (report.get("near_training") or {}).get("n_images")
    if near:
        notes.append(
            f"{near} of the {report['n_images']} test images are near copies of "
            "photos the model was trained on (re-encoded, resized or greyscale "
            "copies; report.json lists them under near_training): the "
            "scores below overstate its accuracy on new photos. This is a quick "
            "perceptual-hash check; 'hybridclf inspect --data-dir TRAIN "
            "--test-data-dir TEST' runs the full one.")
    if report.get("absent_classes"):
        notes.append("Model classes without a test image (not scored): "
                     + ", ".join(report["absent_classes"]) + ".")
    return [f"<p><strong>Note:</strong> {html.escape(n)}</p>" for n in notes]


def _gallery_share(report):
    """' (the first 24 of 30; all are in the table of errors)', or ''."""
    shown, n = len(report.get("_thumbnails") or []), len(report["errors"])
    if not shown or shown >= n:
        return ""
    return f" (the first {shown} of {n}; all are in the table of errors)"


def _interval_note(report):
    """The accuracy's 95% interval, as ``hybridclf evaluate`` prints it."""
    if "accuracy_interval" not in report:  # a report of an older version
        return []
    low, high = report["accuracy_interval"]
    n_groups = report.get("n_groups") or report["n_images"]
    groups = (f" in {n_groups} groups of near-identical photos (each group "
              "counted once)" if n_groups < report["n_images"] else "")
    return [f"<p>Accuracy 95% interval (Wilson): {low:.3f} to {high:.3f}, from "
            f"{report['n_images']} test images{groups}.</p>"]


def _interval(interval):
    """'0.207 to 1.000', or '' without one."""
    return "" if interval is None else f"{interval[0]:.3f} to {interval[1]:.3f}"


def _few_note(report):
    """The classes with fewer than 10 test images, as the command names them."""
    few = report.get("few_test_images")
    if not few:
        return []
    named = ", ".join(f"{c} ({n})" for c, n in few.items())
    return [f"<p><strong>Few test images:</strong> {html.escape(named)}: the "
            "scores of these classes, and the balanced accuracy and macro-F1 "
            "that average them, rest on a handful of photos (see each "
            "recall's interval).</p>"]


def evaluation_page(report, figures, title):
    """The self-contained HTML page of an evaluation report.

    Parameters
    ----------
    report : dict
        As from :func:`~hybridclf.evaluation.evaluate_model`.

    figures : list of (str, bytes)
        The name and PNG data of each figure, inlined as base64.

    title : str
        The page's title and heading.

    Returns
    -------
    page : str
        The HTML document.
    """
    parts = _head_html(report, title)
    parts += _scores_html(report)
    if report.get("cascade"):
        parts += ["<h2>Cascade</h2>", "<p>" + html.escape(cascade_sentence(
            report["cascade"], report["n_images"])) + "</p>"]
    parts += _figures_html(report, figures)
    parts += ["<h2>Speed (ms per image)</h2>",
              _table(["stage", "ms"], list(report["speed_ms_per_image"].items())),
              "<h2>Errors</h2>", _errors_table(report["errors"])]
    if report.get("unreadable"):
        parts += ["<h2>Unreadable test files (left out)</h2>",
                  _table(["file", "reason"], [[u["file"], u["reason"]]
                                              for u in report["unreadable"]])]
    parts += [f"<script>{SORT_SCRIPT}</script></body></html>"]
    return "\n".join(parts)


def _n_tested(report):
    """The number of classes with test images (the model's classes or not).

    The page said "26 test images, 3 classes" of a test set of 4 classes:
    the 3 were the model's.
    """
    return sum(1 for v in report["per_class"].values() if v["support"])


def _head_html(report, title):
    """The page's head and heading, the test set's size and the class notes."""
    return [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>",
        "body{font-family:system-ui,sans-serif;max-width:1100px;margin:auto;"
        "padding:1em;color:#222}",
        "h2{border-bottom:1px solid #ccc;padding-bottom:.2em}",
        "figure{margin:0}img{max-width:100%;height:auto}",
        TABLE_STYLE, "</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{report['n_images']} test images of {_n_tested(report)} classes; "
        f"the model has {len(report['classes'])} classes"
        + (f"; {len(report['unreadable'])} unreadable test files left out "
           "(listed below)" if report.get("unreadable") else "") + ".</p>",
        *_class_notes(report),
    ]


def _scores_html(report):
    """The metrics with the accuracy's interval, per class, and the open set."""
    open_set = report["open_set"]
    unknown = {c: v["n_unknown"] for c, v in
               (open_set.get("unknown_by_class") or {}).items()}
    parts = [
        "<h2>Metrics</h2>",
        *(["<p>Closed set: the top class of every test image, none answered "
           "unknown; the open set below scores the answers as predict gives "
           "them.</p>"] if open_set else []),
        _table(["metric", "value"], list(report["metrics"].items())),
        *_interval_note(report),
        "<h2>Per class</h2>",
        *_few_note(report),
        _table(["class", "precision", "recall", "recall 95% interval", "f1",
                "support"] + (["answered unknown"] if unknown else []),
               [[c, v["precision"], v["recall"], _interval(v.get("recall_interval")),
                 v["f1"], v["support"]] + ([unknown.get(c)] if unknown else [])
                for c, v in report["per_class"].items()]),
    ]
    if open_set:
        parts += ["<h2>Open set</h2>",
                  "<p>With the model's thresholds, as predict answers: "
                  "open_set_accuracy counts a photo of a class the model knows "
                  "right when answered its class, one of a class it does not "
                  "know when answered unknown; unknown_class_share_rejected is "
                  "the share of the latter answered unknown.</p>",
                  _table(["entry", "value"],
                         [(k, v) for k, v in open_set.items()
                          if k != "unknown_by_class"])]
    return parts


def _figures_html(report, figures):
    """Each figure under its caption, its PNG inlined as a data URI."""
    captions = {
        "confusion_matrix": "Confusion matrix",
        "reliability": "Reliability of the top-class probability",
        "block_importance": "Feature-block importance (permutation)",
        "stage_speed": "Speed per stage",
        "error_gallery": "Misclassified images"
                         + (" and their nearest training photos"
                            if any(e.get("neighbours") for e in report["errors"])
                            else "") + _gallery_share(report),
    }
    importance = (["<p>" + html.escape(importance_sentence(
        report["block_importance"], report["n_images"], report.get("n_groups")))
        + ".</p>"] if report.get("block_importance") else [])
    parts = []
    for name, data in figures:
        uri = base64.b64encode(data).decode("ascii")
        caption = captions.get(name, name)
        parts += [f"<h2>{html.escape(caption)}</h2>",
                  f"<figure><img alt='{html.escape(caption)}' "
                  f"src='data:image/png;base64,{uri}'></figure>"]
        if name == "block_importance":
            parts, importance = parts + importance, []
    return parts + importance  # below the figures when it has none
