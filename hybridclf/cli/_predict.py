"""``hybridclf predict``: image files and folders to a CSV, with 'unknown'."""

import os
import sys

from ._common import (
    add_batch_options,
    add_inputs,
    add_model_dir,
    batch_options,
    bounded,
    command_imports,
    file_or_stdout,
    fraction,
    out,
    positive_int,
)


def format_parser(parser):
    parser.description = (
        "Predict the class of image files or of every file in folders, in "
        "batches. Images unlike every class are labelled 'unknown' (the "
        "model's open-set thresholds); unreadable files are listed with the "
        "reason, not fatal."
    )
    add_model_dir(parser)
    add_inputs(parser)
    parser.add_argument("--output", type=file_or_stdout, default=None,
                        metavar="CSV",
                        help="CSV file to write; its folder is created if missing "
                        "(default, or -: standard output, with the summary and "
                        "progress on standard error)")
    parser.add_argument(
        "--threshold", type=fraction, default=None, metavar="P",
        help="lowest top probability of a known class, for a photo at the "
        "novelty threshold; a photo closer to a training photo needs "
        "proportionally less (default: the model's)",
    )
    parser.add_argument("--no-ood", action="store_true",
                        help="skip the 'unlike any training photo' check (novelty, "
                        "or the per-block OOD scores of older models)")
    parser.add_argument("--closed-set", action="store_true",
                        help="never answer 'unknown'")
    parser.add_argument("--top-k", type=positive_int, default=3, metavar="K",
                        help="best guesses listed per image (default: %(default)s)")
    parser.add_argument(
        "--neighbours", type=bounded(int, 0, name="number >= 0"), default=0,
        metavar="K",
        help="also list the K nearest training photos of each image: columns "
        "neighbour_<i>_file, neighbour_<i>_label and neighbour_<i>_similarity "
        "(cosine on the index's principal axes: near 1, not 1, for the same "
        "photo); needs a model trained with a CNN block "
        "(default: %(default)s)")
    add_batch_options(parser)


def run(args):
    with command_imports():
        from ..batch import predict_to_csv

    try:
        counts = predict_to_csv(
            args.model_dir, args.inputs, args.output or sys.stdout,
            threshold=args.threshold, ood=not args.no_ood,
            closed_set=args.closed_set, top_k=args.top_k,
            neighbours=args.neighbours, **batch_options(args))
    except KeyboardInterrupt:
        parts = f"{args.output}.parts"
        if args.output and os.path.isdir(parts):
            sys.stderr.write(f"the rows of the finished partitions are kept in "
                             f"{parts}: run the same command again to go on "
                             "where it stopped\n")
        raise
    if counts.output:  # not standard output, nor /dev/stdout
        out(counts.summary())
        out(f"Predictions written to {os.path.abspath(args.output)}")
    else:  # standard output holds the CSV
        sys.stderr.write(counts.summary() + "\n")
    return 0
