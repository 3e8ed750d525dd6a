"""``hybridclf inspect``: the problems of a dataset, before training."""

import argparse
import time

from ._common import (
    add_data_dir,
    add_n_jobs,
    command_imports,
    folder_not_stdout,
    fraction,
    out,
)


def format_parser(parser):
    parser.description = (
        "Find the problems of an image dataset before training: unreadable and "
        "odd files, exact and near duplicates (label conflicts and train/test "
        "leakage first), poor-quality images and class outliers, with the class "
        "distribution and a cross-validation plan; with --labels, likely wrong "
        "labels. Writes report.json, a self-contained report.html and "
        "duplicate_groups.csv (file,group: cross-validation groups), and "
        "label_issues.csv with --labels."
    )
    add_data_dir(parser)
    parser.add_argument("--test-data-dir",
                        help="held-out set in the same layout, checked for "
                        "duplicates of training images (leakage)")
    parser.add_argument("--output-dir", default="inspect-report",
                        type=folder_not_stdout("the report"),
                        help="folder for the report files (default: %(default)s)")
    parser.add_argument("--quick", "--quick-mode", action="store_true",
                        help="skip the CNN checks (embedding near duplicates and "
                        "class outliers); the report lists what was skipped")
    parser.add_argument(
        "--labels", action="store_true",
        help="also look for likely wrong labels: a quick model (HOG and colour on "
        "128-pixel images) fitted out of fold, in folds grouped by the duplicate "
        "groups, flags the images whose label it contradicts (cleanlab); writes "
        "label_issues.csv and shows each beside its nearest images of the "
        "suggested class in report.html")
    parser.add_argument(
        "--groups", default=None, metavar="CSV",
        help="CSV with the columns file,group, as for train --groups (the "
        "duplicate_groups.csv of an earlier run, edited by hand): its groups "
        "win for the files it names, new photos join a group through the "
        "copies found of them; the report, the new duplicate_groups.csv and "
        "the --labels folds take these groups. Default: the groups found")
    parser.add_argument("--check-duplicates", action=argparse.BooleanOptionalAction,
                        default=True,
                        help="look for duplicate images (default: yes)")
    parser.add_argument(
        "--corruption-threshold", type=fraction, default=None, metavar="X",
        help="exit with code 1 when more than this fraction (0 to 1) of the image "
        "files cannot be decoded; 0 fails on any unreadable file (for CI). "
        "Default: report only, exit 0",
    )
    add_n_jobs(parser, "reading and the CNN")


def run(args):
    with command_imports():
        from ..inspect import inspect_dataset
        from ..utils._paths import check_output_dir

    check_output_dir(args.output_dir)  # before the scan, not after it
    start = time.perf_counter()
    report = inspect_dataset(
        args.data_dir, test_root=args.test_data_dir, quick=args.quick,
        check_duplicates=args.check_duplicates, labels=args.labels,
        groups=args.groups, n_jobs=args.n_jobs, progress=True,
    )
    paths = report.save(args.output_dir)
    out(report.summary())
    out(f"Inspected {report.n_files} files in {time.perf_counter() - start:.1f} s;"
        f" wrote {paths['html']}, {paths['json']} and {paths['csv']}")
    if "label_issues" in paths:
        out(f"Likely wrong labels: {paths['label_issues']}")
    threshold = args.corruption_threshold
    if threshold is not None and report.unreadable_fraction > threshold:
        out(f"{report.n_unreadable} of {report.n_files} image files "
            f"({report.unreadable_fraction:.1%}) cannot be decoded, more than "
            f"--corruption-threshold {threshold}")
        return 1
    return 0
