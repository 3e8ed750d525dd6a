"""``hybridclf evaluate``: a model directory on a labelled test set."""

import os
import warnings

from ._common import (
    add_allow_pickle,
    add_data_dir,
    add_max_pixels,
    add_model_dir,
    add_n_jobs,
    add_seed,
    bounded,
    command_imports,
    folder_not_stdout,
    out,
    positive_int,
)

_PRINTED = ("accuracy", "balanced_accuracy", "f1_macro", "top_2_accuracy",
            "top_3_accuracy", "expected_calibration_error")


def format_parser(parser):
    parser.description = (
        "Evaluate a model directory on a labelled class-per-folder test set: "
        "metrics, confusion matrix, reliability curve, top-k accuracy, "
        "per-block importance, error gallery (each misclassified photo beside "
        "its nearest training photos, for a model with a CNN block) and "
        "per-stage speed, as PNG plots, "
        "one self-contained HTML report and report.json."
    )
    add_model_dir(parser)
    test_set = parser.add_mutually_exclusive_group()
    test_set.add_argument("--test-data-dir",
                          help="class-per-folder test set: DIR/<class>/<image> "
                          "(default: the test part that train held out and "
                          "recorded in the model directory)")
    add_data_dir(test_set, required=False, several=True,
                 help="without --test-data-dir: where the data folder(s) of the "
                 "training are now, in the order train was given them "
                 "(default: where they were)")
    parser.add_argument("--output-dir", required=True,
                        type=folder_not_stdout("the report"),
                        help="folder for the report")
    parser.add_argument("--groups", default=None, metavar="CSV",
                        help="CSV with the columns file,group putting the "
                        "near-identical test photos in one group (hybridclf "
                        "inspect writes duplicate_groups.csv): the accuracy's "
                        "interval and each recall's count each group once "
                        "(default: the groups recorded with the test part; "
                        "with --test-data-dir, each photo counts once)")
    parser.add_argument("--n-repeats", type=positive_int, default=3, metavar="N",
                        help="permutations per feature block (default: %(default)s)")
    parser.add_argument("--neighbours", type=bounded(int, 0, name="number >= 0"),
                        default=3, metavar="K",
                        help="nearest training photos shown beside each "
                        "misclassified photo; 0 shows none (default: %(default)s)")
    add_seed(parser)
    add_n_jobs(parser, "loading and features", default=None)
    add_allow_pickle(parser)
    add_max_pixels(parser)


def run(args):
    with command_imports():
        from ..evaluation import evaluate_folder
        from ..evaluation._page import cascade_sentence, importance_sentence

    with warnings.catch_warnings():
        # printed below, with the figures it explains
        warnings.filterwarnings("ignore", ".* belong to classes the model does not")
        warnings.filterwarnings("ignore", ".* are photos the model was trained on")
        warnings.filterwarnings("ignore", ".* are near copies of photos the model")
        report, files = evaluate_folder(
            args.model_dir, args.test_data_dir, args.output_dir,
            n_repeats=args.n_repeats, random_state=args.seed,
            neighbours=args.neighbours,
            allow_pickle=args.allow_pickle, max_pixels=args.max_pixels, progress=True,
            n_jobs=args.n_jobs, data_dir=args.data_dir, groups_csv=args.groups)
    _print_test_set(report)
    _print_warnings(report)
    _print_scores(report)
    _print_open_set(report)
    if report.get("cascade"):
        out(cascade_sentence(report["cascade"], report["n_images"]))
    if report["block_importance"]:
        out(importance_sentence(report["block_importance"], report["n_images"],
                                report["n_groups"]))
    speed = report["speed_ms_per_image"]
    out("ms per image: " + ", ".join(f"{k} {v:.2f}" for k, v in speed.items()))
    out(f"{len(report['errors'])} misclassified images")
    out(f"Report: {os.path.abspath(files['html'])}")
    out(f"JSON:   {os.path.abspath(files['json'])}")
    return 0


def _print_test_set(report):
    """Which test images the figures rest on, and the files left out."""
    recorded = report.get("recorded_test_part")
    if recorded:
        out(f"the test part held out by train: {recorded['n_recorded']} files "
            f"under {', '.join(recorded['data_dirs'])}")
    out(f"{report['n_images']} test images")
    if report["unreadable"]:
        out(f"{len(report['unreadable'])} test files left out (missing, changed "
            "or unreadable):" if recorded else
            f"{len(report['unreadable'])} unreadable test files (left out):")
        for entry in report["unreadable"]:
            out(f"  {entry['file']}: {entry['reason']}")


def _print_warnings(report):
    """What makes the scores below overstate or understate the model."""
    leaked = report.get("trained_on") or {}
    if leaked.get("n_images"):
        out(f"WARNING: {leaked['n_images']} of the {report['n_images']} test images "
            "are photos the model was trained on (the same bytes; report.json: "
            "trained_on): the scores below overstate its accuracy on new photos; "
            "evaluate on the test part train held out (no --test-data-dir) or on "
            "new photos")
    near = report.get("near_training") or {}
    if near.get("n_images"):
        out(f"WARNING: {near['n_images']} of the {report['n_images']} test images "
            "are near copies of photos the model was trained on (re-encoded, "
            "resized or greyscale copies; report.json: near_training): "
            "the scores below overstate its accuracy on new photos. A quick "
            "perceptual-hash check; for the full one run hybridclf inspect "
            "--data-dir TRAIN --test-data-dir TEST")
        for match in near["files"][:10]:
            out(f"  {match['file']} ({match['hash_distance']} bits from a "
                "training photo)")
    if report["unknown_classes"]:
        out("classes the model does not know (their images count as wrong, in "
            "the expected calibration error too; the log loss leaves them out): "
            + ", ".join(f"{name} ({n} images)"
                        for name, n in report["unknown_classes"].items())
            + f"; the model's classes: {', '.join(report['classes'])}")
    if report["absent_classes"]:
        out("model classes without a test image: "
            + ", ".join(report["absent_classes"]))
    if report["few_test_images"]:
        out("classes with fewer than 10 test images (their scores, and the "
            "balanced accuracy and macro-F1 that average them, rest on a handful "
            "of photos): " + ", ".join(
                f"{name} ({n}: recall {_interval(report['per_class'][name])})"
                for name, n in report["few_test_images"].items()))


def _print_scores(report):
    """The closed-set scores, the accuracy with its interval."""
    if report["open_set"]:
        out("closed-set scores (the top class of every photo; predict answers "
            "some 'unknown': see 'open set' below):")
    for metric in _PRINTED:
        if metric in report["metrics"]:
            out(f"{metric}: {report['metrics'][metric]:.3f}")
        if metric == "accuracy":
            low, high = report["accuracy_interval"]
            n_groups = report["n_groups"] or report["n_images"]
            groups = (f" in {n_groups} groups of near-identical photos, each "
                      "counted once" if n_groups < report["n_images"] else "")
            if report["n_groups"] is None:
                groups = (", each counted as independent: near-identical ones "
                          "would make it too narrow; --groups CSV counts each "
                          "group once")
            out(f"accuracy 95% interval: {low:.3f} to {high:.3f} "
                f"({report['n_images']} test images{groups})")


def _print_open_set(report):
    """The answers as ``predict`` gives them: how many unknown, and of which class."""
    open_set = report["open_set"]
    if not open_set:
        return
    by_class = open_set["unknown_by_class"]
    n_unknown = sum(c["n_unknown"] for c in by_class.values())
    out(f"open set (the model's thresholds, as predict answers): {n_unknown} of "
        f"{report['n_images']} test images answered unknown "
        f"({open_set['unknown_share']:.3f}); open-set accuracy "
        f"{open_set['open_set_accuracy']:.3f} (a known class's photo right when "
        "answered its class, an unknown class's when answered unknown)")
    out("  answered unknown per test class: " + ", ".join(
        f"{name} {c['n_unknown']} of {c['n_images']}"
        for name, c in by_class.items() if c["n_images"]))


def _interval(scores):
    """'1.000, 95% interval 0.207 to 1.000' of a class's recall."""
    low, high = scores["recall_interval"]
    return f"{scores['recall']:.3f}, 95% interval {low:.3f} to {high:.3f}"
