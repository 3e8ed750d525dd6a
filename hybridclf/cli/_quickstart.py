"""``hybridclf quickstart``: inspect, train, evaluate and serve, one command.

Each step is the ``hybridclf`` command a user would type next, run as such
and printed, so the output is also a lesson in the commands.
"""

import logging
import os
import shlex

from ._common import (
    add_n_jobs,
    add_seed,
    bounded,
    folder_not_stdout,
    logger,
    out,
    positive_int,
)


def format_parser(parser):
    parser.description = (
        "The whole workflow on one dataset: inspect it, train the default "
        "hybrid pipeline with grouped cross-validation, evaluate it on held-out "
        "images, and say how to use the model. Without --data-dir it uses a "
        "small real dataset that ships with scikit-learn (handwritten digits), "
        "with a held-out test folder of other digits."
    )
    parser.add_argument(
        "--data-dir",
        help="class-per-folder dataset: DATA_DIR/<class>/<image>; default: the "
        "built-in digits",
    )
    parser.add_argument(
        "--test-data-dir",
        help="held-out images in the same layout, to evaluate on (default: the "
        "built-in digits' test folder; for --data-dir, the test part that "
        "train holds out)",
    )
    parser.add_argument(
        "--output-dir", default="quickstart_output",
        type=folder_not_stdout("the inspection, the model and the report"),
        help="where the inspection, the model and the report go "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--cv-folds", type=bounded(int, 2, name="number >= 2"), default=5,
        metavar="N", help="grouped cross-validation folds (default: %(default)s)",
    )
    parser.add_argument(
        "--image-size", type=positive_int, default=None, metavar="N",
        help="side in pixels every image is resized to (default: 224, or 64 "
        "for the built-in digits)",
    )
    add_n_jobs(parser, "loading and feature extraction")
    add_seed(parser)


def _steps(args, data_dir, test_dir, image_size):
    """(title, argv) of each command that quickstart runs."""
    inspection = os.path.join(args.output_dir, "inspection")
    model_dir = os.path.join(args.output_dir, "model")
    common = ["--n-jobs", str(args.n_jobs)]
    steps = [
        ("1. Inspect the dataset",
         ["inspect", "--data-dir", data_dir, "--output-dir", inspection, "--quick",
          *(["--test-data-dir", test_dir] if test_dir else []), *common]),
        ("2. Train the default pipeline (grouped cross-validation)",
         ["train", "--data-dir", data_dir, "--output-dir", model_dir, "--groups",
          os.path.join(inspection, "duplicate_groups.csv"), "--cv-folds",
          str(args.cv_folds), "--seed", str(args.seed),
          *(["--image-size", str(image_size)] if image_size else []), *common]),
    ]
    # without a test folder, evaluate scores the test part train held out
    # (recorded in the model directory) again
    steps.append(("3. Evaluate on the held-out images",
                  ["evaluate", "--model-dir", model_dir,
                   *(["--test-data-dir", test_dir] if test_dir else []),
                   "--output-dir", os.path.join(args.output_dir, "report"),
                   *common]))
    return steps


def run(args):
    from . import main

    data_dir, test_dir, image_size = args.data_dir, args.test_data_dir, args.image_size
    if data_dir is None:
        from ..sample_data import write_digits_folder

        data_dir = os.path.join(args.output_dir, "digits", "train")
        test_dir = test_dir or os.path.join(args.output_dir, "digits", "test")
        write_digits_folder(data_dir, n_per_class=40, holdout_root=test_dir,
                            n_holdout=10, random_state=args.seed)
        image_size = image_size or 64
        out("Built-in dataset: scikit-learn's handwritten digits, 40 per class in "
            f"{data_dir}, 10 other ones per class held out in {test_dir}")
    verbose = ["-v"] if logger.isEnabledFor(logging.INFO) else []
    model_dir = os.path.join(args.output_dir, "model")
    for title, argv in _steps(args, data_dir, test_dir, image_size):
        if argv[0] == "evaluate" and not test_dir and not _held_out(model_dir):
            out(f"\n== {title}: none: train held no photo out (too few "
                "photos); pass --test-data-dir to evaluate on others")
            continue
        out(f"\n== {title}: hybridclf {shlex.join(argv)}")
        code = main([*verbose, *argv])
        if code != 0:
            return code
    _serve_once(model_dir, test_dir or data_dir)
    out("\n== Done. What you have:")
    inspection = os.path.join(args.output_dir, "inspection", "report.html")
    out(f"  inspection report  {inspection}")
    out(f"  model and card     {model_dir} (README.md, model.json)")
    report = os.path.join(args.output_dir, "report", "report.html")
    if os.path.isfile(report):
        out(f"  evaluation report  {report}")
    quoted = shlex.quote(model_dir)
    out(f"  predict files      hybridclf predict --model-dir {quoted} <images>")
    out(f"  serve over HTTP    hybridclf serve --model-dir {quoted}")
    out(f"  in Python          hybridclf.load_model({model_dir!r}).predict([...])")
    return 0


def _held_out(model_dir):
    """Whether the model directory records a test part (``test_part.json``)."""
    from .._held_out import TEST_PART_FILE

    return os.path.isfile(os.path.join(model_dir, TEST_PART_FILE))


def _first_readable_image(root):
    """The first image of a dataset that the model's loader reads, or None.

    The dataset's first file may be one that training left out (truncated,
    too small): sent to the service it is answered 400, and the demo ended
    on "HTTP Error 400: Bad Request". The folder walk's skipped files were
    named by the commands before; they are not warned about again.
    """
    from ..io import ImageLoader, scan_image_folder

    loader = ImageLoader(size=32)
    for path in scan_image_folder(root)[0]:
        if loader.read_each([path])[1][0] is None:
            return path
    return None


def _serve_once(model_dir, image_root):
    """Quickstart's last step: serve the model and send it one image over HTTP."""
    out("\n== 4. Serve the model and send it one image")
    try:
        from ..serve import try_service
    except ImportError as exc:
        out(f"skipped: {exc}. Install the service with: pip install "
            "'hybridclf[serve]'")
        return
    image = _first_readable_image(image_root)
    if image is None:  # training would have failed first: not one readable
        out(f"skipped: no image of {image_root} can be read")
        return
    url, answer = try_service(model_dir, image)
    out(f"POST {url} with {image}:")
    out(f"  predicted_class={answer['predicted_class']!r} "
        f"confidence={answer['confidence']:.3f} "
        f"processing_time_ms={answer['processing_time_ms']:.1f}")
    out(f"Run it yourself: hybridclf serve --model-dir {shlex.quote(model_dir)}, "
        "then open "
        "http://127.0.0.1:8000/ to upload photos (the API: /docs)")
