"""The report files: PNG figures, one HTML page and ``report.json``.

:func:`write_report` writes an :func:`evaluate_model` report;
:func:`evaluate_folder` evaluates a model directory on a class-per-folder
test set and writes its report, as ``hybridclf evaluate`` does.
"""

import io
import json
import logging
import os
import warnings

from .._held_out import find_test_part, read_train_part
from ..exceptions import ImageLoadError
from ..pipeline import set_image_params
from ..prediction import read_open_set
from ..utils._paths import check_output_dir, make_output_dir
from ._evaluate import evaluate_model
from ._page import evaluation_page

__all__ = ["evaluate_folder", "write_report"]

logger = logging.getLogger(__name__)


def _png(fig):
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # one line per character: hybridclf.plotting warned once, with the fix
        warnings.filterwarnings("ignore", "Glyph .* missing from font", UserWarning)
        fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _figures(report):
    """(name, PNG bytes) of every figure, or [] without matplotlib."""
    try:
        from .. import plotting
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
    make_output_dir(output_dir)
    figures = _figures(report)
    paths = {}
    for name, data in figures:
        paths[name] = os.path.join(output_dir, f"{name}.png")
        with open(paths[name], "wb") as fh:
            fh.write(data)
    html_path = os.path.join(output_dir, "report.html")
    with open(html_path, "w", encoding="utf-8", errors="surrogateescape") as fh:
        fh.write(evaluation_page(report, figures, title))
    json_path = os.path.join(output_dir, "report.json")
    with open(json_path, "w", encoding="utf-8") as fh:
        json.dump({k: v for k, v in report.items() if not k.startswith("_")}, fh,
                  indent=2)
    logger.info("Wrote the evaluation report to %s", output_dir)
    return {"html": html_path, "json": json_path, "figures": paths}


def evaluate_folder(model_dir, test_data_dir, output_dir, *, n_repeats=3,
                    random_state=0, neighbours=3, allow_pickle=False,
                    max_pixels=None, n_jobs=None, progress=False, data_dir=None,
                    groups_csv=None):
    """Evaluate a model directory on a class-per-folder test set; write the report.

    Parameters
    ----------
    model_dir : str or os.PathLike
        A model directory (:func:`~hybridclf.save_model`).

    test_data_dir : str, os.PathLike or None
        The test set: ``test_data_dir/<class>/<image>``. None evaluates on the
        test part that ``hybridclf train`` held out of the final fit and
        recorded in the model directory (``test_part.json``: each file's path
        relative to its data folder, label and SHA-256), found under the data
        folders of the training or ``data_dir``, which reproduces the test
        metrics of the training (and their accuracy interval, which counts
        each recorded group of near-identical photos once). A recorded file
        that is missing, or whose
        SHA-256 differs (changed since), is left out and listed in
        ``unreadable`` with the reason. A model without a recorded test part
        (trained with ``test_size=0``, or saved by an older version) is a
        ValueError that says to pass a test folder.

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

    progress : bool, default=False
        As in :func:`evaluate_model`.

    data_dir : str, os.PathLike, sequence of them or None, default=None
        With ``test_data_dir=None``: where the data folders of the training
        are now, in the order the training was given them (the data moved);
        None looks where they were. Not used with a ``test_data_dir``.

    groups_csv : str, os.PathLike or None, default=None
        A CSV with the columns ``file,group`` that puts the near-identical
        test photos in one group (``hybridclf inspect --data-dir TEST`` writes
        ``duplicate_groups.csv``; names relative to the test folder, or as
        the inspector wrote them), read as ``hybridclf train --groups`` reads
        it: the accuracy's interval and each recall's then count each group
        once. None takes the groups recorded with the test part, or, with a
        ``test_data_dir``, counts each photo once.

        .. versionadded:: 0.1.0

    Returns
    -------
    report : dict
        As from :func:`evaluate_model`, on the test files that can be read,
        with ``unreadable``: each test file left out (``file``, ``reason``):
        not taken by the walk (not an image, empty, ...) or not decoded
        (truncated, too small, ...). Only a test set without one readable
        image is an error (ValueError). With the recorded test part,
        ``recorded_test_part`` too: ``data_dirs`` (the folders looked in),
        ``n_recorded`` (files recorded) and ``n_left_out`` (missing or
        changed ones, also listed in ``unreadable``). ``trained_on``: the
        scored test files with the same bytes as a photo the model was
        trained on (``n_images``, ``files``; a warning names them), or None
        for a model that does not record them (saved before
        ``train_part.json``, or not by ``hybridclf train``).
        ``near_training``: the other scored test files that are near copies
        of a photo trained on (re-encoded, resized, greyscale, cropped by
        about 1% a side), by a quick perceptual-hash check (``n_images``, ``files``
        with each one's ``hash_distance``, ``check``; a warning names them),
        or None for a model that records no fingerprints (saved before they
        were added to ``train_part.json``): :func:`evaluate_model`'s, given
        the model's ``train_part.json``, the hashes taken as each test photo
        is decoded for the predictions (one decode serves both).

    files : dict
        As from :func:`write_report`.
    """
    from ..io import log_skipped, scan_image_folder
    from ..persistence import load_model, read_model_info

    check_output_dir(output_dir)  # refused before the work, not after
    pipe = load_model(model_dir, allow_pickle=allow_pickle)
    set_image_params(pipe, n_jobs=n_jobs, max_pixels=max_pixels)
    info = read_model_info(model_dir)
    recorded = groups = None
    if test_data_dir is None:
        paths, labels, skipped, roots, groups = find_test_part(model_dir, info,
                                                               data_dir)
        recorded = {"data_dirs": roots, "n_recorded": len(paths) + len(skipped),
                    "n_left_out": len(skipped)}
        test_data_dir = os.pathsep.join(roots)  # for the errors below
        skipped = [(entry["file"], entry["reason"]) for entry in skipped]
    else:
        # the files the walk did not take are reported as unreadable ones are
        paths, labels, skipped = scan_image_folder(test_data_dir)
    if groups_csv is not None:
        from ..io._groups_csv import read_groups_csv

        # names relative to the test folder, or to the data folders of the
        # training for the recorded test part
        groups = read_groups_csv(groups_csv, paths, root=test_data_dir
                                 if recorded is None else recorded["data_dirs"])
    log_skipped(skipped)  # reported in the report's 'unreadable'
    novelty = read_open_set(info, model_dir)["novelty"]
    index = None
    if neighbours:
        from ..neighbours import EmbeddingIndex

        index = novelty["index"] if novelty else EmbeddingIndex.load(model_dir)
    report = _evaluate_readable(
        pipe, paths, labels, test_data_dir, skipped, groups, n_repeats=n_repeats,
        random_state=random_state, model_info=info, novelty=novelty,
        index=index, neighbours=neighbours, progress=progress,
        train_part=read_train_part(model_dir))
    if recorded is not None:
        report["recorded_test_part"] = recorded
    return report, write_report(report, output_dir)


def _evaluate_readable(pipe, paths, labels, test_data_dir, skipped, groups,
                       **options):
    """:func:`evaluate_model` on the test files that can be read.

    The others are left out (:func:`~hybridclf.io.call_on_readable`) and
    listed in the report's ``unreadable`` (``file``, ``reason``) after those
    the walk did not take (``skipped``), as ``hybridclf predict`` lists
    them; a ValueError only when no test file can be read. ``groups`` (or
    None): the group of near-identical photos of each file.
    """
    from ..io import call_on_readable

    unreadable = [{"file": path, "reason": reason} for path, reason in skipped]
    if paths:
        try:
            report, _, failures = call_on_readable(
                lambda p, lab, *g: evaluate_model(
                    pipe, p, lab, groups=g[0] if g else None, **options),
                list(paths), list(labels), *([] if groups is None else [groups]))
        except ImageLoadError as exc:
            if {name for name, _ in exc.failures} != {os.fspath(p) for p in paths}:
                raise  # not (only) about these files
            unreadable += [{"file": path, "reason": reason}
                           for path, reason in exc.failures]
        else:
            report["unreadable"] = unreadable + [
                {"file": path, "reason": reason} for path, reason in failures]
            return report
    if not unreadable:
        from ..io._scan import _DATASET_FIX, _IN_CLASS_FOLDERS, no_images_error

        raise no_images_error([test_data_dir], _IN_CLASS_FOLDERS, _DATASET_FIX)
    shown = "; ".join(f"{u['file']}: {u['reason']}" for u in unreadable[:10])
    raise ValueError(
        f"No test image of {os.fspath(test_data_dir)!r} can be read "
        f"({len(unreadable)} unreadable files: {shown}"
        f"{'; ...' if len(unreadable) > 10 else ''}). Fix or replace them "
        "(`hybridclf inspect` lists every problem of a dataset).")
