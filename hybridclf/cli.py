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
        "built-in digits' test folder; none for --data-dir)",
    )
    parser.add_argument(
        "--output-dir", default="quickstart_output",
        help="where the inspection, the model and the report go "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--cv-folds", type=int, default=5,
        help="grouped cross-validation folds (default: %(default)s)",
    )
    parser.add_argument(
        "--image-size", type=int, default=None,
        help="side in pixels every image is resized to (default: 224, or 64 "
        "for the built-in digits)",
    )
    parser.add_argument(
        "--n-jobs", type=int, default=-1,
        help="threads for loading and feature extraction (default: all cores)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed")


def run_quickstart(args):
    from .sample_data import write_digits_folder

    out = args.output_dir
    data_dir, test_dir, image_size = args.data_dir, args.test_data_dir, args.image_size
    if data_dir is None:
        data_dir = os.path.join(out, "digits", "train")
        test_dir = test_dir or os.path.join(out, "digits", "test")
        write_digits_folder(data_dir, n_per_class=40, holdout_root=test_dir,
                            n_holdout=10, random_state=args.seed)
        image_size = image_size or 64
        _out("Built-in dataset: scikit-learn's handwritten digits, 40 per class in "
             f"{data_dir}, 10 other ones per class held out in {test_dir}")
    inspection = os.path.join(out, "inspection")
    model_dir = os.path.join(out, "model")
    report_dir = os.path.join(out, "report")
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
    if test_dir:
        steps.append(("3. Evaluate on the held-out images",
                      ["evaluate", "--model-dir", model_dir, "--test-data-dir",
                       test_dir, "--output-dir", report_dir]))
    for title, argv in steps:
        _out(f"\n== {title}: hybridclf {' '.join(argv)}")
        code = main([*(["-v"] if logger.isEnabledFor(logging.INFO) else []), *argv])
        if code != 0:
            return code
    _serve_once(model_dir, test_dir or data_dir)
    _out("\n== Done. What you have:")
    _out(f"  inspection report  {os.path.join(inspection, 'report.html')}")
    _out(f"  model and card     {model_dir} (README.md, model.json)")
    if test_dir:
        _out(f"  evaluation report  {os.path.join(report_dir, 'report.html')}")
    _out(f"  predict files      hybridclf predict --model-dir {model_dir} <images>")
    _out(f"  serve over HTTP    hybridclf serve --model-dir {model_dir}")
    _out(f"  in Python          hybridclf.load_model({model_dir!r}).predict([...])")
    return 0


def _serve_once(model_dir, image_root):
    """Quickstart's last step: serve the model and send it one image over HTTP."""
    from .io import load_image_folder

    _out("\n== 4. Serve the model and send it one image")
    try:
        from .serve import try_service
    except ImportError as exc:
        _out(f"skipped: {exc}. Install the service with: pip install "
             "'hybridclf[serve]'")
        return
    image = load_image_folder(image_root)[0][0]
    url, answer = try_service(model_dir, image)
    _out(f"POST {url} with {image}:")
    _out(f"  predicted_class={answer['predicted_class']!r} "
         f"confidence={answer['confidence']:.3f} "
         f"processing_time_ms={answer['processing_time_ms']:.1f}")
    _out(f"Run it yourself: hybridclf serve --model-dir {model_dir}, then open "
         "http://127.0.0.1:8000/ to upload photos (the API: /docs)")


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
    from .augment import augment_folder
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
# train
# --------------------------------------------------------------------------
def format_parser_train(parser):
    from .io import DEFAULT_MAX_PIXELS
    from .pipeline import CLASSIFIERS, DEFAULT_FEATURES, FEATURE_BLOCKS

    parser.description = (
        "Train a hybrid pipeline on a class-per-folder dataset: split off a test "
        "part grouped by near-duplicates, cross-validate (grouped), optionally "
        "search hyper-parameters on cached features, fit, and write a model "
        "directory (model.skops, model.json, README.md)."
    )
    parser.add_argument("--data-dir", required=True,
                        help="class-per-folder dataset: DATA_DIR/<class>/<image>")
    parser.add_argument("--output-dir", required=True,
                        help="model directory to write: a new or empty folder, or "
                        "a model directory to replace (atomically)")
    parser.add_argument(
        "--quick-mode", action="store_true",
        help="fast settings for a first look: HOG and colour blocks on 128-pixel "
        "images, 3 folds",
    )
    parser.add_argument("--cv-folds", type=int, default=5,
                        help="grouped cross-validation folds (default: %(default)s)")
    parser.add_argument(
        "--test-size", type=float, default=0.2,
        help="share of the images held out as the test part, grouped; 0 trains "
        "on everything (default: %(default)s)",
    )
    parser.add_argument(
        "--features", nargs="+", choices=sorted(FEATURE_BLOCKS), default=None,
        help=f"feature blocks (default: {' '.join(DEFAULT_FEATURES)})",
    )
    parser.add_argument(
        "--classifier", default="ridge",
        choices=list(CLASSIFIERS),
        help="final classifier (default: %(default)s)",
    )
    parser.add_argument(
        "--search", choices=["none", "grid", "halving"], default="none",
        help="hyper-parameter search over the classifier's documented grid "
        "(hybridclf.training.SEARCH_GRIDS) (default: %(default)s)",
    )
    parser.add_argument(
        "--groups", default=None,
        help="CSV with the columns file,group (near-identical images share a "
        "group); default: duplicate groups found on the fly",
    )
    parser.add_argument("--augment", action="store_true",
                        help="balance classes with ClassAwareAugmenter (fit only)")
    parser.add_argument("--image-size", type=int, default=None,
                        help="side images are resized to (default: 224, or 128 "
                        "with --quick-mode)")
    parser.add_argument("--n-jobs", type=int, default=-1,
                        help="threads for loading, features and search "
                        "(default: all cores)")
    parser.add_argument("--cache-dir", default=None,
                        help="joblib cache of fitted feature blocks, for searches "
                        "over feature parameters (default: none)")
    parser.add_argument("--seed", type=int, default=0,
                        help="random seed (default: %(default)s)")
    _add_max_pixels(parser, default=DEFAULT_MAX_PIXELS)
    _add_scheduler_options(parser, partitions=False)


def run_train(args):
    import numpy as np

    from .io import load_image_folder
    from .persistence import check_output_dir, save_model
    from .training import (
        QUICK_CV_FOLDS,
        find_training_groups,
        make_training_pipeline,
        train_model,
        training_metadata,
    )

    started = time.perf_counter()
    folds = QUICK_CV_FOLDS if args.quick_mode and args.cv_folds == 5 else args.cv_folds
    check_output_dir(args.output_dir)  # before the training, not after
    paths, labels = load_image_folder(args.data_dir)
    classes, counts = np.unique(labels, return_counts=True)
    _out(f"{len(paths)} images in {len(classes)} classes "
         f"({counts.min()} to {counts.max()} per class)")
    t0 = time.perf_counter()
    groups, source = find_training_groups(paths, groups_csv=args.groups,
                                          root=args.data_dir, n_jobs=args.n_jobs)
    n_groups = len(np.unique(groups))
    _out(f"{n_groups} groups ({len(paths) - n_groups} images share a group with "
         f"another; {source}) in {time.perf_counter() - t0:.1f} s")
    pipe = make_training_pipeline(
        features=args.features, classifier=args.classifier, quick=args.quick_mode,
        image_size=args.image_size, augment=args.augment, cache_dir=args.cache_dir,
        n_jobs=args.n_jobs, random_state=args.seed)
    _apply_max_pixels(pipe, args.max_pixels)
    options = {"groups": groups, "test_size": args.test_size, "cv_folds": folds,
               "search": args.search, "random_state": args.seed,
               "n_jobs": args.n_jobs, "progress": True}
    if args.scheduler:
        import joblib

        # cross-validation and search as joblib tasks on the Dask workers
        with _dask_client(args.scheduler) as client, joblib.parallel_config(
                backend="dask", n_jobs=-1):
            _out(f"Dask: {len(client.scheduler_info()['workers'])} workers at "
                 f"{client.scheduler.address}")
            result = train_model(pipe, paths, labels, **options)
    else:
        result = train_model(pipe, paths, labels, **options)
    _out(f"train part: {len(result.train_indices)} images; test part: "
         f"{len(result.test_indices)} images (no group on both sides)")
    if result.search:
        _out(f"search ({result.search['kind']}): {result.search['n_candidates']} "
             f"candidates, {result.search['n_fits']} fits in "
             f"{result.search['seconds']:.1f} s; best {result.best_params} "
             f"(CV accuracy {result.search['best_score']:.3f})")
    for metric, values in result.cv_scores.items():
        _out(f"{len(values['folds'])}-fold grouped CV {metric}: "
             f"{values['mean']:.3f} +/- {values['std']:.3f}")
    for metric, value in result.test_metrics.items():
        _out(f"test {metric}: {value:.3f}")
    novelty = result.open_set.get("novelty")
    _out(f"open set: unknown below top probability "
         f"{result.open_set['proba_threshold']:.3f} (low confidence), or " + (
             f"further than {novelty['threshold']:.3f} (cosine distance) from "
             "every training photo (unlike any training photo)" if novelty else
             "above the OOD score of any block: " + ", ".join(
                 f"{k} {v:.2f}"
                 for k, v in result.open_set["ood_thresholds"].items())))
    metadata = training_metadata(
        result, paths, labels, root=args.data_dir, classifier=args.classifier,
        group_source=source, seconds_wall=time.perf_counter() - started)
    save_model(result.pipeline, args.output_dir, metadata=metadata,
               index=result.neighbours)
    out = os.path.abspath(args.output_dir)
    _out(f"training took {time.perf_counter() - started:.1f} s")
    _out(f"Model saved to {out}")
    _out(f"Evaluate it: hybridclf evaluate --model-dir {out} --test-data-dir "
         "<folder> --output-dir <report folder>")
    _out(f"Predict:     hybridclf predict --model-dir {out} <images or folders>")
    return 0


# --------------------------------------------------------------------------
# predict
# --------------------------------------------------------------------------
def format_parser_predict(parser):
    parser.description = (
        "Predict the class of image files or of every file in folders, in "
        "batches. Images unlike every class are labelled 'unknown' (the "
        "model's open-set thresholds); unreadable files are listed with the "
        "reason, not fatal."
    )
    parser.add_argument("--model-dir", required=True,
                        help="model directory written by 'hybridclf train'")
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="image files or folders")
    parser.add_argument("--output", default=None,
                        help="CSV file to write (default: standard output)")
    parser.add_argument("--batch-size", type=int, default=32,
                        help="images per batch (default: %(default)s)")
    parser.add_argument(
        "--threshold", type=float, default=None,
        help="lowest top probability of a known class (default: the model's)",
    )
    parser.add_argument("--no-ood", action="store_true",
                        help="skip the 'unlike any training photo' check (novelty, "
                        "or the per-block OOD scores of older models)")
    parser.add_argument("--closed-set", action="store_true",
                        help="never answer 'unknown'")
    parser.add_argument("--top-k", type=int, default=3,
                        help="best guesses listed per image (default: %(default)s)")
    parser.add_argument("--allow-pickle", action="store_true",
                        help="load a pickled model (runs code from the file)")
    _add_max_pixels(parser)
    _add_scheduler_options(parser, partitions=True)


def _add_max_pixels(parser, default=None):
    """The --max-pixels option of the commands that decode images."""
    fallback = ("the model's own, 64000000 unless set at training" if default is None
                else "%(default)s")
    parser.add_argument(
        "--max-pixels", type=int, default=default, metavar="N",
        help="most pixels (width x height) an image may declare in its header; "
        f"larger ones are reported undecoded (default: {fallback})")


def _apply_max_pixels(pipe, max_pixels):
    """Set the --max-pixels of every image loader of a pipeline, if given."""
    if max_pixels is not None:
        if max_pixels < 1:
            raise ValueError(f"--max-pixels must be >= 1. Got {max_pixels}.")
        pipe.set_params(**{name: max_pixels for name in pipe.get_params()
                           if name.endswith("max_pixels")})


def _add_scheduler_options(parser, partitions):
    parser.add_argument(
        "--scheduler", default=None, metavar="ADDRESS",
        help="run on Dask: 'local:N' starts N worker processes here, "
        "'tcp://HOST:PORT' joins a running scheduler; files must be readable "
        "at the same paths on every worker (default: run here). Needs the "
        "'scale' extra",
    )
    if partitions:
        parser.add_argument(
            "--partition-size", type=int, default=256,
            help="files per partition: one Dask task, the unit of retry and "
            "of output (default: %(default)s)",
        )


def _dask_client(scheduler):
    """``distributed.dask_client`` with Dask's own log kept to warnings (-vv: all)."""
    from .distributed import dask_client
    from .utils._optional import import_or_raise

    import_or_raise("distributed", f"--scheduler {scheduler}")
    # Dask logs every worker start and stop at INFO level
    logging.getLogger("distributed").setLevel(
        logging.INFO if logger.isEnabledFor(logging.DEBUG) else logging.WARNING)
    return dask_client(scheduler)


def _predict_rows(args, pipe, files, proba_threshold, ood_thresholds, novelty):
    """The rows of 'hybridclf predict', here or on Dask (then all at once)."""
    from .prediction import predict_files

    options = {"batch_size": args.batch_size, "proba_threshold": proba_threshold,
               "ood_thresholds": ood_thresholds, "novelty": novelty,
               "top_k": args.top_k,
               "progress": True}
    if not args.scheduler:
        return predict_files(pipe, files, **options)
    from .distributed import predict_partitioned

    # finished partitions are kept beside the CSV until it is written, so an
    # interrupted run goes on where it stopped
    parts = f"{args.output}.parts" if args.output else None
    with _dask_client(args.scheduler) as client:
        return predict_partitioned(pipe, files, client=client, parts_dir=parts,
                                   partition_size=args.partition_size, **options)


def _quality_cell(quality):
    """'ok', the issues joined by ';', or '' when not measured."""
    if quality is None:
        return ""
    return ";".join(quality["issues"]) or "ok"


def run_predict(args):
    import csv
    import io

    from .persistence import load_model, read_model_info
    from .prediction import iter_image_files, open_set_options

    pipe = load_model(args.model_dir, allow_pickle=args.allow_pickle)
    _apply_max_pixels(pipe, args.max_pixels)
    options = open_set_options(args.model_dir, read_model_info(args.model_dir))
    proba_threshold = args.threshold
    if proba_threshold is None:
        proba_threshold = options["proba_threshold"]
    ood_thresholds, novelty = options["ood_thresholds"], options["novelty"]
    if args.no_ood:
        ood_thresholds = novelty = None
    if args.closed_set:
        proba_threshold, ood_thresholds, novelty = 0.0, None, None
    files = iter_image_files(args.inputs)
    columns = ["file", "label", "confidence", "ood_score", "unknown_reason",
               "quality", "top", "error"]
    rows = _predict_rows(args, pipe, files, proba_threshold, ood_thresholds,
                         novelty)
    target = open(args.output, "w", newline="") if args.output else None
    counts = {"predicted": 0, "unknown": 0, "unreadable": 0}
    try:
        buffer = io.StringIO()
        writer = csv.writer(target if target else buffer)
        writer.writerow(columns)
        for row in rows:
            if row["error"]:
                counts["unreadable"] += 1
            elif row["label"] == "unknown":
                counts["unknown"] += 1
            else:
                counts["predicted"] += 1
            writer.writerow([
                row["file"], row["label"],
                "" if row["error"] else f"{row['confidence']:.4f}",
                "" if row["error"] else f"{row['ood_score']:.3f}",
                row["unknown_reason"], _quality_cell(row["quality"]),
                ";".join(f"{c}:{p:.3f}" for c, p in row["top"]), row["error"],
            ])
            if target is None:
                _out(buffer.getvalue().rstrip("\r\n"))
                buffer.seek(0)
                buffer.truncate()
        if target is None and buffer.getvalue():
            _out(buffer.getvalue().rstrip("\r\n"))
    finally:
        if target is not None:
            target.close()
    summary = (f"{len(files)} files: {counts['predicted']} predicted, "
               f"{counts['unknown']} unknown, {counts['unreadable']} unreadable")
    if target is not None:
        if args.scheduler and os.path.isdir(f"{args.output}.parts"):
            import shutil

            shutil.rmtree(f"{args.output}.parts")
        _out(summary)
        _out(f"Predictions written to {os.path.abspath(args.output)}")
    else:
        sys.stderr.write(summary + "\n")
    return 0


# --------------------------------------------------------------------------
# extract
# --------------------------------------------------------------------------
def format_parser_extract(parser):
    parser.description = (
        "Write the features of a fitted pipeline (what its classifier "
        "receives) for image files or every file in folders, with the file "
        "names, to a Parquet dataset folder: one part-NNNNN.parquet per "
        "partition of files, with the columns file, error and features. "
        "Partitions already written are skipped, so a rerun completes an "
        "interrupted one; unreadable files are listed, not fatal."
    )
    parser.add_argument("--model-dir", required=True,
                        help="model directory written by 'hybridclf train'")
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="image files or folders")
    parser.add_argument("--output", required=True,
                        help="Parquet dataset folder to write, e.g. "
                        "features.parquet (on Dask: writable by every worker)")
    parser.add_argument("--batch-size", type=int, default=32,
                        help="images per batch (default: %(default)s)")
    parser.add_argument("--allow-pickle", action="store_true",
                        help="load a pickled model (runs code from the file)")
    _add_max_pixels(parser)
    _add_scheduler_options(parser, partitions=True)


def run_extract(args):
    from contextlib import nullcontext

    from .distributed import extract_features
    from .persistence import load_model
    from .prediction import iter_image_files

    pipe = load_model(args.model_dir, allow_pickle=args.allow_pickle)
    _apply_max_pixels(pipe, args.max_pixels)
    files = iter_image_files(args.inputs)
    context = _dask_client(args.scheduler) if args.scheduler else nullcontext()
    with context as client:
        result = extract_features(pipe, files, args.output, client=client,
                                  partition_size=args.partition_size,
                                  batch_size=args.batch_size, progress=True)
    _out(f"{result.n_files} files in {result.n_partitions} partitions: "
         f"{len(result.computed)} computed, {len(result.skipped)} already "
         f"written; {len(result.errors)} unreadable, in "
         f"{result.seconds:.1f} s")
    for path, reason in result.errors[:20]:
        _out(f"  {path}: {reason}")
    if len(result.errors) > 20:
        _out(f"  ... and {len(result.errors) - 20} more (the 'error' column)")
    _out(f"Features written to {os.path.abspath(result.output)} (read it with "
         "pyarrow.parquet.read_table or hybridclf.distributed.read_features)")
    return 0


# --------------------------------------------------------------------------
# evaluate
# --------------------------------------------------------------------------
def format_parser_evaluate(parser):
    parser.description = (
        "Evaluate a model directory on a labelled class-per-folder test set: "
        "metrics, confusion matrix, reliability curve, top-k accuracy, "
        "per-block importance, error gallery and per-stage speed, as PNG plots, "
        "one self-contained HTML report and report.json."
    )
    parser.add_argument("--model-dir", required=True,
                        help="model directory written by 'hybridclf train'")
    parser.add_argument("--test-data-dir", required=True,
                        help="class-per-folder test set: DIR/<class>/<image>")
    parser.add_argument("--output-dir", required=True,
                        help="folder for the report")
    parser.add_argument("--n-repeats", type=int, default=3,
                        help="permutations per feature block (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0,
                        help="random seed (default: %(default)s)")
    parser.add_argument("--allow-pickle", action="store_true",
                        help="load a pickled model (runs code from the file)")
    _add_max_pixels(parser)


def run_evaluate(args):
    from .evaluation import evaluate_model, write_report
    from .io import load_image_folder
    from .persistence import load_model, read_model_info
    from .prediction import open_set_options

    pipe = load_model(args.model_dir, allow_pickle=args.allow_pickle)
    _apply_max_pixels(pipe, args.max_pixels)
    info = read_model_info(args.model_dir)
    paths, labels = load_image_folder(args.test_data_dir)
    _out(f"{len(paths)} test images in {len(set(labels))} classes")
    report = evaluate_model(pipe, paths, labels, n_repeats=args.n_repeats,
                            random_state=args.seed, model_info=info,
                            novelty=open_set_options(args.model_dir, info)["novelty"])
    files = write_report(report, args.output_dir)
    for metric in ("accuracy", "balanced_accuracy", "f1_macro", "top_2_accuracy",
                   "top_3_accuracy", "expected_calibration_error"):
        if metric in report["metrics"]:
            _out(f"{metric}: {report['metrics'][metric]:.3f}")
    speed = report["speed_ms_per_image"]
    _out("ms per image: " + ", ".join(f"{k} {v:.2f}" for k, v in speed.items()))
    _out(f"{len(report['errors'])} misclassified images")
    _out(f"Report: {os.path.abspath(files['html'])}")
    _out(f"JSON:   {os.path.abspath(files['json'])}")
    return 0


# --------------------------------------------------------------------------
# inspect
# --------------------------------------------------------------------------
def format_parser_inspect(parser):
    parser.description = (
        "Find the problems of an image dataset before training: unreadable and "
        "odd files, exact and near duplicates (label conflicts and train/test "
        "leakage first), poor-quality images and class outliers, with the class "
        "distribution and a cross-validation plan. Writes report.json, a "
        "self-contained report.html and duplicate_groups.csv (file,group: "
        "cross-validation groups)."
    )
    parser.add_argument("--data-dir", required=True,
                        help="class-per-folder dataset: DATA_DIR/<class>/<image>")
    parser.add_argument("--test-data-dir",
                        help="held-out set in the same layout, checked for "
                        "duplicates of training images (leakage)")
    parser.add_argument("--output-dir", default="inspect-report",
                        help="folder for the report files (default: %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help="skip the CNN checks (embedding near duplicates and "
                        "class outliers); the report lists what was skipped")
    parser.add_argument("--check-duplicates", action=argparse.BooleanOptionalAction,
                        default=True,
                        help="look for duplicate images (default: yes)")
    parser.add_argument(
        "--corruption-threshold", type=float, default=None, metavar="X",
        help="exit with code 1 when more than this fraction (0 to 1) of the image "
        "files cannot be decoded; 0 fails on any unreadable file (for CI). "
        "Default: report only, exit 0",
    )
    parser.add_argument("--n-jobs", type=int, default=-1,
                        help="threads for reading and the CNN (default: all cores)")


def run_inspect(args):
    from .inspect import inspect_dataset

    threshold = args.corruption_threshold
    if threshold is not None and not 0 <= threshold <= 1:
        raise ValueError(
            "The '--corruption-threshold' option of hybridclf inspect must be a "
            f"fraction in [0, 1]. Got {threshold!r} instead."
        )
    start = time.perf_counter()
    report = inspect_dataset(
        args.data_dir, test_root=args.test_data_dir, quick=args.quick,
        check_duplicates=args.check_duplicates, n_jobs=args.n_jobs, progress=True,
    )
    paths = report.save(args.output_dir)
    _out(report.summary())
    _out(f"Inspected {report.n_files} files in {time.perf_counter() - start:.1f} s;"
         f" wrote {paths['html']}, {paths['json']} and {paths['csv']}")
    if threshold is not None and report.unreadable_fraction > threshold:
        _out(f"{report.n_unreadable} of {report.n_files} image files "
             f"({report.unreadable_fraction:.1%}) cannot be decoded, more than "
             f"--corruption-threshold {threshold}")
        return 1
    return 0


# --------------------------------------------------------------------------
# --------------------------------------------------------------------------
# serve
# --------------------------------------------------------------------------
def format_parser_serve(parser):
    from .io import DEFAULT_MAX_PIXELS

    parser.description = (
        "Serve a model directory over HTTP (FastAPI + uvicorn): POST /predict, "
        "/predict/file and /predict/batch; GET /health, /ready and /metrics; "
        "the API is documented at /docs. Needs the 'serve' extra."
    )
    parser.add_argument("--model-dir", required=True,
                        help="model directory written by 'hybridclf train'")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default: %(default)s; 0.0.0.0 "
                        "accepts other machines)")
    parser.add_argument("--port", type=int, default=8000,
                        help="TCP port (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=1,
                        help="worker processes, each with its own copy of the "
                        "model (default: %(default)s)")
    parser.add_argument("--max-body-mb", type=float, default=10.0,
                        help="largest request body in MB (default: %(default)s)")
    parser.add_argument(
        "--api-key-env", default=None, metavar="VAR",
        help="name of the environment variable that holds the API key; clients "
        "send it in the X-API-Key header (default: no key)",
    )
    parser.add_argument(
        "--threads", type=int, default=None,
        help="threads per prediction in each worker; the feature blocks of one "
        "image run side by side (default: the cores divided among the workers)",
    )
    _add_max_pixels(parser, default=DEFAULT_MAX_PIXELS)
    parser.add_argument("--read-timeout", type=float, default=30.0, metavar="S",
                        help="seconds a client has to send its request body; 408 "
                        "after (default: %(default)s)")
    parser.add_argument("--limit-concurrency", type=int, default=None, metavar="N",
                        help="most connections at once before 503 (default: no "
                        "limit)")
    parser.add_argument("--allow-pickle", action="store_true",
                        help="serve a pickled model (runs code from the file)")


def run_serve(args):
    try:
        from .serve import serve
    except ImportError as exc:
        sys.stderr.write(
            f"error: 'hybridclf serve' needs the serve extra ({exc}). Install it "
            "with: pip install 'hybridclf[serve]'\n")
        return 1
    from .persistence import load_model

    # load and check the model once here: a bad one is one error line, exit 1
    load_model(args.model_dir, allow_pickle=args.allow_pickle)
    _out(f"Serving {args.model_dir} on http://{args.host}:{args.port} "
         f"(docs at /docs); press Ctrl+C to stop")
    serve(args.model_dir, host=args.host, port=args.port, workers=args.workers,
          max_body_mb=args.max_body_mb, api_key_env=args.api_key_env,
          threads=args.threads, max_pixels=args.max_pixels,
          read_timeout=args.read_timeout, allow_pickle=args.allow_pickle,
          limit_concurrency=args.limit_concurrency)
    return 0


# --------------------------------------------------------------------------
# deploy
# --------------------------------------------------------------------------
def format_parser_deploy(parser):
    parser.description = (
        "Write deployment files for 'hybridclf serve' on a model directory: a "
        "Dockerfile, a docker-compose.yml or a systemd unit, with the command "
        "that starts it (printed and in OUTPUT_DIR/README.txt)."
    )
    parser.add_argument("--type", required=True, dest="deploy_type",
                        choices=["docker", "compose", "systemd"],
                        help="what to write")
    parser.add_argument("--output-dir", required=True,
                        help="folder to write into (created if missing)")
    parser.add_argument("--model-dir", required=True,
                        help="model directory written by 'hybridclf train'")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address the systemd service binds "
                        "(default: %(default)s)")
    parser.add_argument("--port", type=int, default=8000,
                        help="port on the host (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=1,
                        help="worker processes (default: %(default)s)")
    parser.add_argument("--api-key-env", default=None, metavar="VAR",
                        help="environment variable holding the API key")
    parser.add_argument("--allow-pickle", action="store_true",
                        help="serve a pickled model (runs code from the file)")
    parser.add_argument("--force", action="store_true",
                        help="overwrite deployment files already in OUTPUT_DIR")


def run_deploy(args):
    from .deploy import write_deployment

    result = write_deployment(args.deploy_type, args.output_dir, args.model_dir,
                              host=args.host, port=args.port, workers=args.workers,
                              api_key_env=args.api_key_env,
                              allow_pickle=args.allow_pickle, force=args.force)
    for path in result["files"]:
        _out(f"wrote {path}")
    _out("Start it with:")
    _out(f"  {result['command']}")
    return 0


COMMANDS = {
    "inspect": (format_parser_inspect, run_inspect,
                "find broken files, duplicates and quality problems in a dataset"),
    "quickstart": (format_parser_quickstart, run_quickstart,
                   "inspect, train, evaluate: the whole workflow on one dataset"),
    "augment": (format_parser_augment, run_augment,
                "write a class-balanced copy of a dataset with augmented images"),
    "train": (format_parser_train, run_train,
              "train, cross-validate (grouped) and save a model directory"),
    "evaluate": (format_parser_evaluate, run_evaluate,
                 "evaluate a model directory on a test set: plots, HTML, JSON"),
    "predict": (format_parser_predict, run_predict,
                "predict image files or folders in batches, with 'unknown'"),
    "extract": (format_parser_extract, run_extract,
                "write the features of a model for many files to Parquet"),
    "serve": (format_parser_serve, run_serve,
              "serve a model directory over HTTP (FastAPI, uvicorn)"),
    "deploy": (format_parser_deploy, run_deploy,
               "write a Dockerfile, docker-compose.yml or systemd unit to serve"),
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
