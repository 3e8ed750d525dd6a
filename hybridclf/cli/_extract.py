"""``hybridclf extract``: the features of a model for many files, to Parquet."""

import os
import sys

from ._common import (
    add_batch_options,
    add_inputs,
    add_model_dir,
    batch_options,
    command_imports,
    folder_not_stdout,
    out,
)

# unreadable files listed on screen; all are in the 'error' column
_SHOWN = 20


def format_parser(parser):
    parser.description = (
        "Write the features of a fitted pipeline (what its classifier "
        "receives) for image files or every file in folders, with the file "
        "names, to a Parquet dataset folder: one part-NNNNN.parquet per "
        "partition of files, with the columns file, error and features. "
        "Partitions already written are skipped, so a rerun completes an "
        "interrupted one, and after photos were added to the inputs computes "
        "only those (and the files edited or replaced since: another size or "
        "modification time); unreadable files are listed, not fatal."
    )
    add_model_dir(parser)
    add_inputs(parser)
    parser.add_argument("--output-dir", required=True,
                        type=folder_not_stdout("the Parquet dataset"),
                        help="Parquet dataset folder to write, e.g. "
                        "features.parquet (on Dask: writable by every worker)")
    add_batch_options(parser)


def run(args):
    with command_imports():
        from ..batch import extract_to_parquet

    try:
        result = extract_to_parquet(args.model_dir, args.inputs, args.output_dir,
                                    **batch_options(args))
    except KeyboardInterrupt:  # as predict's: say that a rerun goes on
        if os.path.isdir(args.output_dir) and any(
                name.startswith("part-") for name in os.listdir(args.output_dir)):
            sys.stderr.write(f"the partitions written so far are kept in "
                             f"{args.output_dir}: run the same command again to "
                             "go on where it stopped\n")
        raise
    changed = (f" (with {len(result.changed)} changed file(s) computed again)"
               if result.changed else "")
    out(f"{result.n_files} files in {result.n_partitions} partitions: "
        f"{len(result.computed)} computed, {len(result.skipped)} already "
        f"written{changed}; {len(result.errors)} unreadable, in "
        f"{result.seconds:.1f} s")
    for path, reason in result.errors[:_SHOWN]:
        out(f"  {path}: {reason}")
    if len(result.errors) > _SHOWN:
        out(f"  ... and {len(result.errors) - _SHOWN} more (the 'error' column)")
    out(f"Features written to {os.path.abspath(result.output)} (read it with "
        "pyarrow.parquet.read_table or hybridclf.distributed.read_features)")
    return 0
