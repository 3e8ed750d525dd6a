"""``hybridclf train``: cross-validate, fit and save a model directory."""

import argparse
import os
import shlex

from .._cv_text import cv_score_text
from .._label_check_text import label_check_text
from ._common import (
    add_data_dir,
    add_max_pixels,
    add_n_jobs,
    add_scheduler,
    add_seed,
    bounded,
    command_imports,
    folder_not_stdout,
    out,
    positive_int,
    registry_name,
)


def format_parser(parser):
    parser.description = (
        "Train a hybrid pipeline on a class-per-folder dataset: split off a test "
        "part grouped by near-duplicates, cross-validate (grouped), optionally "
        "search hyper-parameters on cached features, fit, and write a model "
        "directory (model.skops, model.json, README.md, label_issues.csv: "
        "the training images whose label the out-of-fold predictions contradict, "
        "and with a CNN block neighbours.npz: the embeddings, file names and "
        "thumbnails of the training photos, for the 'unlike any training photo' "
        "check and to show the nearest training photos of an answer)."
    )
    add_data_dir(parser, several=True, help="class-per-folder dataset: "
                 "DATA_DIR/<class>/<image>; several folders (e.g. the data and a "
                 "feedback folder) are merged, class by class")
    parser.add_argument("--output-dir", required=True,
                        type=folder_not_stdout("the model directory"),
                        help="model directory to write: a new or empty folder, or "
                        "a model directory to replace (atomically)")
    parser.add_argument(
        "--quick", "--quick-mode", action="store_true",
        help="fast settings for a first look: HOG and colour blocks on 128-pixel "
        "images, 3 folds",
    )
    parser.add_argument("--cv-folds", type=bounded(int, 2, name="number >= 2"),
                        default=None, metavar="N",
                        help="grouped cross-validation folds (default: 5, or 3 "
                        "with --quick)")
    parser.add_argument(
        "--test-size", type=bounded(float, 0, 0.5, name="fraction"),
        default=0.2, metavar="F",
        help="share of the images held out as the test part, grouped, at most "
        "0.5; 0 trains on everything (default: %(default)s)",
    )
    parser.add_argument(
        "--features", nargs="+", type=registry_name("FEATURE_BLOCKS"),
        default=None, metavar="NAME",
        help="feature blocks, names of hybridclf.pipeline.FEATURE_BLOCKS: cnn, "
        "hog, lbp, sift, color (default: hybridclf.pipeline.DEFAULT_FEATURES, "
        "or hog color with --quick)",
    )
    parser.add_argument(
        "--classifier", type=registry_name("CLASSIFIERS"), default="ridge",
        metavar="NAME",
        help="final classifier, a name of hybridclf.pipeline.CLASSIFIERS (an "
        "invalid name lists them; default: %(default)s)",
    )
    parser.add_argument(
        "--search", choices=["none", "grid", "halving"], default="none",
        help="hyper-parameter search over the classifier's documented grid "
        "(hybridclf.training.SEARCH_GRIDS) (default: %(default)s)",
    )
    parser.add_argument(
        "--groups", default=None, metavar="CSV",
        help="CSV with the columns file,group (near-identical images share a "
        "group); default: duplicate groups found on the fly",
    )
    _add_model_options(parser)
    add_n_jobs(parser, "loading, features and search")
    parser.add_argument("--cache-dir", default=None,
                        type=folder_not_stdout("the feature cache"),
                        help="feature cache: the features of unchanged photos are "
                        "read from here, not recomputed (default: "
                        "$HYBRIDCLF_CACHE_DIR/features or ~/.cache/hybridclf/"
                        "features)")
    parser.add_argument("--no-thumbnails", action="store_true",
                        help="keep no thumbnail of the training photos in "
                        "neighbours.npz (about 3 KB per photo): the nearest "
                        "training photos are then given by file name only")
    parser.add_argument("--no-cache", action="store_true",
                        help="compute every photo's features; read and write no "
                        "feature cache")
    add_seed(parser)
    add_max_pixels(parser, model=False)
    add_scheduler(parser, partitions=False)


def _add_model_options(parser):
    """The options that change what is fitted besides the blocks: samplers, cascade."""
    sampler = parser.add_mutually_exclusive_group()
    sampler.add_argument("--augment", action="store_true",
                         help="balance classes with ClassAwareAugmenter (fit only)")
    sampler.add_argument(
        "--views", action="store_true",
        help="add each photo shrunk, hue-turned, darkened, mirrored, turned 12 "
        "degrees each way and blurred in fit when the smallest class has < 15 "
        "photos (ViewAugmenter): for objects photographed at any angle; not for "
        "digits, text or textures")
    sampler.add_argument(
        "--photo-views", action="store_true",
        help="add each photo shrunk, hue-turned and darkened in fit when the "
        "smallest class has < 15 photos: views that keep any photo's class "
        "(the default adds a blur too)")
    sampler.add_argument(
        "--no-views", action="store_true",
        help="add no views in fit (by default each photo is also shrunk, "
        "hue-turned, darkened and blurred when the smallest class has < 15 "
        "photos)")
    parser.add_argument("--image-size", type=positive_int, default=None,
                        metavar="N", help="side images are resized to (default: "
                        "224, or 128 with --quick)")
    parser.add_argument("--cascade", action=argparse.BooleanOptionalAction,
                        default=None,
                        help="a cascade: HOG, LBP and colour answer the photos "
                        "they are sure of, the CNN the others (threshold learned "
                        "on the grouped folds; see docs/choosing-features.md). "
                        "Default: a cascade when the blocks include the CNN; "
                        "--no-cascade runs every block on every photo")


def _print_training(training):
    """The summary of a training, section by section."""
    _print_data(training)
    _print_cache_use(training)
    _print_scores(training.result)
    _print_open_set(training.result)


def _print_data(training):
    """What was trained on: classes, files left out, groups and the two parts."""
    result = training.result
    counts = training.class_counts.values()
    out(f"{training.n_images} images in {len(counts)} classes "
        f"({min(counts)} to {max(counts)} per class)" + (
            "" if training.n_feedback is None else
            f"; {training.n_feedback} of them from the feedback folder, all in "
            "the training part"))
    _print_left_out(training)
    n_shared, n_shared_groups = training.n_grouped_images
    _print_groups_across_classes(training.groups_across_classes)
    n_grouped = len(result.groups)
    out(f"{training.n_groups} groups of near-identical photos among the "
        f"{n_grouped} images of both parts ({n_shared} images in "
        f"{n_shared_groups} group(s) of two or more, the other "
        f"{n_grouped - n_shared} alone; {training.group_source}) in "
        f"{training.group_seconds:.1f} s")
    out(f"train part: {len(result.train_indices)} images; test part: "
        f"{len(result.test_indices)} images (no group on both sides)")
    if training.views_added is not None:
        out("views added in fit: " + (", ".join(training.views_added) or "none")
            + f" ({training.views.split(': ', 1)[1]})")


def _print_cache_use(training):
    """How many photos' features the feature cache served, or why it did not."""
    result = training.result
    if result.feature_cache:
        from ..training._feature_cache import cache_use_line

        out(cache_use_line(result.feature_cache["n_computed"],
                           result.feature_cache["n_images"],
                           where=f"the cache {training.cache_dir}"))
    elif training.cache_dir:  # asked for (or the default), yet not used
        out(f"the feature cache {training.cache_dir} was not used: it does not "
            "serve --augment, --scheduler or blocks that learn from the photos "
            "(sift)")


def _print_scores(result):
    """The search, the cross-validation and test scores, and how far they go."""
    if result.search:
        out(f"search ({result.search['kind']}): {result.search['n_candidates']} "
            f"candidates, {result.search['n_fits']} fits in "
            f"{result.search['seconds']:.1f} s; best {result.best_params} "
            f"(CV accuracy {result.search['best_score']:.3f})")
    optimistic = " (optimistic: see below)" if result.search else ""
    for metric, values in result.cv_scores.items():
        out(f"{len(values['folds'])}-fold grouped CV {metric}: "
            f"{cv_score_text(values)}{optimistic}")
    if result.search:
        out("these CV scores are optimistic: the search chose the parameters "
            "by their scores on the same folds; " + (
                "the test scores below, on photos the search never saw, are "
                "the figure to trust" if result.test_metrics else
                "train with --test-size above 0 for a score the search never saw"))
    for metric, value in result.test_metrics.items():
        out(f"test {metric}: {value:.3f}")
    _print_test_part(result.test_part)


def _print_open_set(result):
    """When the model answers unknown, and what its cascade answers early."""
    novelty = result.open_set.get("novelty")
    out("open set: unknown below top probability "
        f"{result.open_set['proba_threshold']:.3f}" + (
            " times the novelty" if novelty else "") + " (low confidence), or " + (
            f"further than {novelty['threshold']:.3f} (cosine distance) from "
            "every training photo (unlike any training photo)" if novelty else
            "above the OOD score of any block: " + ", ".join(
                f"{k} {v:.2f}"
                for k, v in result.open_set["ood_thresholds"].items())))
    if hasattr(result.pipeline, "cascade_summary"):
        c = result.pipeline.cascade_summary()
        out(f"cascade: {', '.join(c['cheap_features'])} answer alone at top "
            f"probability >= {c['threshold'] or float('inf'):.3f}, within their "
            f"OOD gate: {c['early_share'] or 0:.0%} of the out-of-fold photos; "
            f"out-of-fold accuracy {c['cascade_accuracy'] or float('nan'):.3f} "
            f"(full model {c['full_accuracy'] or float('nan'):.3f}), worst fold "
            f"{c['worst_fold_loss']} photo(s) lost")


def _print_left_out(training):
    """The files left out for their label or because they did not decode.

    Those the folder walk did not take were named in its warning already;
    the model card and model.json list them all. The label conflicts and
    lone feedback photos were warned about too, on standard error, which a
    retraining run from cron does not show: the summary names them again.
    """
    n, n_set_aside = training.n_undecodable, training.n_set_aside
    where = ("(model.json and README.md in the model directory list every file "
             "left out)")
    end = len(training.unreadable) - n
    if n_set_aside:
        out(f"{n_set_aside} file(s) were left out of the training for their "
            f"label {where}:")
        for name, reason in training.unreadable[end - n_set_aside:end]:
            out(f"  {name}: {reason}")
    if n:
        out(f"{n} file(s) could not be decoded and were left out of the "
            f"training {where}:")
        for name, reason in training.unreadable[end:]:
            out(f"  {name}: {reason}")


def _print_groups_across_classes(groups):
    """The groups of near-identical photos trained on under two classes.

    Warned about on standard error too; a retraining run from cron shows
    only this summary.
    """
    if not groups:
        return
    out(f"{len(groups)} group(s) of near-identical photos are filed under more "
        "than one class and were trained on under each label (move or delete "
        "the copy under the wrong class, or keep it if the object truly "
        "belongs to both; model.json: groups_across_classes):")
    for group in groups[:20]:
        out("  " + ", ".join(group["files"][:8])
            + (f" and {len(group['files']) - 8} more" if len(group["files"]) > 8
               else "") + ": " + ", ".join(group["classes"]))
    if len(groups) > 20:
        out(f"  ... and {len(groups) - 20} more groups")


def _print_test_part(part):
    """How far the test metrics go: their interval and the classes not tested."""
    if not part:
        return
    low, high = part["accuracy_interval"]
    copies = (f"; its {part['n_copies']} copies of them (augmented, or the same "
              "file again) are held out, not scored" if part.get("n_copies") else "")
    out(f"test accuracy 95% interval: {low:.3f} to {high:.3f} "
        f"({part['n_images']} test images{_in_groups(part)}{copies})")
    if part.get("few_test_images"):
        out("classes with fewer than 10 test images (their scores rest on a "
            "handful of photos; evaluate gives the interval of each recall): "
            + ", ".join(f"{c} ({n})" for c, n in part["few_test_images"].items()))
    if part["untested_classes"]:
        out("the test metrics leave out the classes without a test image: "
            + ", ".join(part["untested_classes"]))


def _in_groups(part):
    """' in 4 groups of near-identical photos, each counted once', or ''."""
    n_groups = part.get("n_groups", part["n_images"])
    if n_groups >= part["n_images"]:
        return ""
    return f" in {n_groups} groups of near-identical photos, each counted once"


def _views_choice(args):
    """The ``views`` of train_folder that the options ask for."""
    if args.views:
        return "objects"
    if args.photo_views:
        return "photo"
    return "none" if args.no_views else "auto"


def run(args):
    with command_imports():
        from ..training import train_folder

    training = train_folder(
        args.data_dir, args.output_dir, features=args.features,
        classifier=args.classifier, quick=args.quick, cv_folds=args.cv_folds,
        test_size=args.test_size, search=args.search, groups_csv=args.groups,
        augment=args.augment, image_size=args.image_size,
        views=_views_choice(args),
        cache_dir=args.cache_dir, feature_cache=not args.no_cache,
        cascade="auto" if args.cascade is None else args.cascade,
        thumbnails=not args.no_thumbnails,
        n_jobs=args.n_jobs, max_pixels=args.max_pixels,
        scheduler=args.scheduler, random_state=args.seed, progress=True)
    _print_training(training)
    model_dir = os.path.abspath(training.model_dir)
    issues = training.result.metadata().get("label_issues")
    if issues:
        skipped = issues.get("not_checked")
        skipped = (f"; not checked (a fold had no image of them to learn from): "
                   f"{', '.join(skipped)}" if skipped else "")
        text = label_check_text(issues, len(training.result.train_indices))
        out(f"likely wrong labels: {text}; grouped out-of-fold predictions"
            f"{skipped}; see "
            f"{os.path.join(model_dir, issues['file'])}")
    out(f"training took {training.seconds:.1f} s")
    out(f"Model saved to {model_dir}")
    quoted = shlex.quote(model_dir)  # commands to copy: a space must not split one
    if training.result.test_metrics:  # its test part is recorded
        out(f"Evaluate it: hybridclf evaluate --model-dir {quoted} --output-dir "
            "<report folder> (on the test part held out; --test-data-dir "
            "<folder> for another test set)")
    else:
        out(f"Evaluate it: hybridclf evaluate --model-dir {quoted} --test-data-dir "
            "<folder> --output-dir <report folder>")
    out(f"Predict:     hybridclf predict --model-dir {quoted} <images or folders>")
    return 0
