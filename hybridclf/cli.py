"""The ``hybridclf`` command: one sub-command per task.

Each sub-command has a ``format_parser_<name>(parser)`` that declares its
options and a ``run_<name>(args) -> int`` that calls the library; the work
itself lives in the library. :func:`main` parses the command line and returns
the exit code.
"""

import argparse
import logging
import os
import sys
import time

__all__ = ["main"]

logger = logging.getLogger("hybridclf")


def _out(text=""):
    """Write one line of the command's report to standard output."""
    sys.stdout.write(f"{text}\n")
    sys.stdout.flush()


# --------------------------------------------------------------------------
# quickstart
# --------------------------------------------------------------------------
def format_parser_quickstart(parser):
    parser.description = (
        "Train the default hybrid pipeline on a dataset and report its "
        "cross-validated accuracy. Without --data-dir it uses a small real "
        "dataset that ships with scikit-learn (handwritten digits)."
    )
    parser.add_argument(
        "--data-dir",
        help="class-per-folder dataset: DATA_DIR/<class>/<image>; default: the "
        "built-in digits",
    )
    parser.add_argument(
        "--output-dir", default="quickstart_output",
        help="where the model is saved (default: %(default)s)",
    )
    parser.add_argument(
        "--cv-folds", type=int, default=5,
        help="number of stratified cross-validation folds (default: %(default)s)",
    )
    parser.add_argument(
        "--image-size", type=int, default=None,
        help="side in pixels every image is resized to (default: 224, or 128 "
        "for the built-in digits)",
    )
    parser.add_argument(
        "--n-jobs", type=int, default=-1,
        help="threads for loading and feature extraction (default: all cores)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed")


def run_quickstart(args):
    import joblib
    import numpy as np
    from sklearn.model_selection import StratifiedKFold, cross_validate
    from tqdm.auto import tqdm

    from .datasets import write_digits_folder
    from .io import load_image_folder
    from .pipeline import make_hybrid_pipeline

    data_dir = args.data_dir
    image_size = args.image_size
    if data_dir is None:
        data_dir = os.path.join(args.output_dir, "digits_data")
        write_digits_folder(data_dir, random_state=args.seed)
        image_size = image_size or 128
        _out(f"Built-in dataset: scikit-learn's handwritten digits -> {data_dir}")
    paths, labels = load_image_folder(data_dir)
    classes, counts = np.unique(labels, return_counts=True)
    _out(f"{len(paths)} images in {len(classes)} classes "
         f"({counts.min()} to {counts.max()} per class)")
    folds = min(args.cv_folds, int(counts.min()))
    if folds < 2:
        _out(f"error: the smallest class has {counts.min()} image(s); "
             "cross-validation needs at least 2 per class.")
        return 2

    pipe = make_hybrid_pipeline()
    pipe.set_params(load__size=image_size or 224, load__n_jobs=args.n_jobs)
    pipe.set_params(**{
        name: args.n_jobs for name in pipe.get_params()
        if name.endswith("extract__n_jobs")
    })
    pipe.set_params(**{
        name: args.seed for name in pipe.get_params() if name.endswith("random_state")
    })

    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=args.seed)
    scores = {"accuracy": [], "balanced_accuracy": []}
    started = time.perf_counter()
    x = np.asarray(paths, dtype=object)
    y = np.asarray(labels)
    for train, test in tqdm(list(cv.split(x, y)), desc="cross-validation",
                            unit="fold"):
        fold = cross_validate(
            pipe, x, y, cv=[(train, test)],
            scoring=("accuracy", "balanced_accuracy"), error_score="raise",
        )
        for metric in scores:
            scores[metric].extend(fold[f"test_{metric}"])
    cv_seconds = time.perf_counter() - started
    for metric, values in scores.items():
        _out(f"{folds}-fold {metric}: {np.mean(values):.3f} +/- {np.std(values):.3f}")
    _out(f"cross-validation took {cv_seconds:.1f} s")

    started = time.perf_counter()
    with tqdm(total=1, desc="final fit on all images", unit="fit") as bar:
        pipe.fit(x, y)
        bar.update()
    os.makedirs(args.output_dir, exist_ok=True)
    model_path = os.path.abspath(os.path.join(args.output_dir, "model.joblib"))
    joblib.dump(pipe, model_path)
    _out(f"final fit took {time.perf_counter() - started:.1f} s")
    _out(f"Model saved to {model_path}")
    _out(f"Load it with: joblib.load({model_path!r}).predict([...image paths...])")
    return 0


# --------------------------------------------------------------------------
# augment
# --------------------------------------------------------------------------
def format_parser_augment(parser):
    parser.description = (
        "Write a class-balanced copy of a class-per-folder dataset: every "
        "readable original, plus augmented images for the classes below the "
        "target, plus manifest.csv mapping each generated file to its source. "
        "Without --target-samples, every class is brought up to the largest."
    )
    parser.add_argument("--input-dir", required=True,
                        help="class-per-folder dataset: INPUT_DIR/<class>/<image>")
    parser.add_argument("--output-dir", required=True,
                        help="new or empty folder to write the balanced copy to")
    parser.add_argument(
        "--target-samples", type=int, default=None,
        help="images per class: smaller classes are brought up to it, larger "
        "ones are left as they are (default: the size of the largest class)",
    )
    parser.add_argument(
        "--augmentation-factor", type=float, default=None,
        help="the most a class may grow: at most F times its original count "
        "(default: no limit)",
    )
    parser.add_argument(
        "--quality-threshold", type=float, default=None,
        help="lowest accepted SSIM between a generated image and its source "
        "(default: 0.6); failing images are drawn again, then dropped",
    )
    parser.add_argument("--seed", type=int, default=0,
                        help="random seed (default: %(default)s)")
    parser.add_argument(
        "--n-jobs", type=int, default=-1,
        help="threads for reading, augmenting and writing (default: all cores)",
    )


def run_augment(args):
    from .augment_folder import augment_folder
    from .sampling import ClassAwareAugmenter

    params = {"target_samples": args.target_samples,
              "augmentation_factor": args.augmentation_factor,
              "random_state": args.seed, "n_jobs": args.n_jobs}
    if args.quality_threshold is not None:
        params["quality_threshold"] = args.quality_threshold
    result = augment_folder(args.input_dir, args.output_dir,
                            ClassAwareAugmenter(**params), progress=True)

    columns = ("before", "unreadable", "target", "generated", "redrawn",
               "dropped", "after")
    width = max([len("class"), len("total")] + [len(c.label) for c in result.classes])
    _out(f"{'class':<{width}}  " + "  ".join(f"{c:>10}" for c in columns))
    rows = [
        (c.label, (c.before, c.unreadable, c.target, c.generated, c.regenerated,
                   c.dropped, c.after))
        for c in result.classes
    ]
    rows.append(("total", tuple(sum(r[1][i] for r in rows)
                                for i in range(len(columns)))))
    for label, values in rows:
        _out(f"{label:<{width}}  " + "  ".join(f"{v:>10}" for v in values))
    if result.skipped:
        _out(f"{len(result.skipped)} file(s) not used:")
        for path, reason in result.skipped:
            _out(f"  {path}: {reason}")
    per_image = result.generate_seconds * 1000 / max(result.n_generated, 1)
    _out(f"Wrote {sum(c.before for c in result.classes)} originals and "
         f"{result.n_generated} generated images to {result.output_dir} in "
         f"{result.seconds:.1f} s (generation {per_image:.1f} ms/image)")
    _out(f"Manifest: {result.manifest} (its 'source' column groups each original "
         "with its copies, for grouped cross-validation)")
    return 0


# --------------------------------------------------------------------------
COMMANDS = {
    "quickstart": (format_parser_quickstart, run_quickstart,
                   "train and cross-validate the default pipeline"),
    "augment": (format_parser_augment, run_augment,
                "write a class-balanced copy of a dataset with augmented images"),
}


def build_parser():
    """The argument parser of the ``hybridclf`` command."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="hybridclf",
        description="Image classification with deep and classical features.",
    )
    parser.add_argument("--version", action="version",
                        version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="-v for progress messages, -vv for debugging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (format_parser, run, help_text) in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text)
        format_parser(sub_parser)
        sub_parser.set_defaults(run=run)
    return parser


def main(argv=None):
    """Run the ``hybridclf`` command line and return its exit code.

    Parameters
    ----------
    argv : list of str, default=None
        The arguments; ``None`` reads ``sys.argv[1:]``.

    Returns
    -------
    code : int
        0 on success, 1 when the work failed with a reported error, 2 for a
        usage error.
    """
    from .exceptions import HybridClfError

    parser = build_parser()
    args = parser.parse_args(argv)
    level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except (HybridClfError, FileNotFoundError, ValueError) as exc:
        logger.debug("details", exc_info=True)
        sys.stderr.write(f"error: {exc}\n")
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
