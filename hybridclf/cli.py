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
COMMANDS = {
    "quickstart": (format_parser_quickstart, run_quickstart,
                   "train and cross-validate the default pipeline"),
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
