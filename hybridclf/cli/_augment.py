"""``hybridclf augment``: a class-balanced copy of a dataset."""

from ._common import (
    add_data_dir,
    add_n_jobs,
    add_seed,
    bounded,
    command_imports,
    folder_not_stdout,
    fraction,
    out,
    positive_int,
)

_COLUMNS = ("before", "unreadable", "target", "generated", "redrawn", "dropped",
            "after")


def format_parser(parser):
    parser.description = (
        "Write a class-balanced copy of a class-per-folder dataset: every "
        "readable original, plus augmented images for the classes below the "
        "target, plus manifest.csv mapping each generated file to its source. "
        "Without --target-samples, every class is brought up to the largest. "
        "A new image is its source with a random mix of mild changes "
        "(hybridclf.augment.DEFAULT_TECHNIQUES): about half of them mirrored "
        "left-right, turned up to 15 degrees, rescaled, shifted, brightness, contrast, "
        "colour, blur, noise, JPEG. A mirror changes the class of text, digits "
        "or left/right objects: for those, call hybridclf.augment.augment_folder "
        "with ClassAwareAugmenter(techniques={'hflip': 0.0})."
    )
    # --input-dir: the name the original system's augmentation script used
    add_data_dir(parser, aliases=("--input-dir",))
    parser.add_argument("--output-dir", required=True,
                        type=folder_not_stdout("the balanced copy"),
                        help="new or empty folder to write the balanced copy to")
    parser.add_argument(
        "--target-samples", type=positive_int, default=None, metavar="N",
        help="images per class: smaller classes are brought up to it, larger "
        "ones are left as they are (default: the size of the largest class)",
    )
    parser.add_argument(
        "--augmentation-factor", type=bounded(float, 1, name="factor >= 1"),
        default=None, metavar="F",
        help="the most a class may grow: at most F times its original count "
        "(default: no limit)",
    )
    parser.add_argument(
        "--quality-threshold", type=fraction, default=None, metavar="S",
        help="lowest accepted SSIM between a generated image and its source "
        "turned and shifted alike, so it measures the changes of tone, blur and "
        "noise (default: 0.6); failing images are drawn again, then dropped",
    )
    add_seed(parser)
    add_n_jobs(parser, "reading, augmenting and writing")


def run(args):
    with command_imports():
        from ..augment import augment_folder
        from ..sampling import ClassAwareAugmenter

    params = {"target_samples": args.target_samples,
              "augmentation_factor": args.augmentation_factor,
              "random_state": args.seed, "n_jobs": args.n_jobs}
    if args.quality_threshold is not None:
        params["quality_threshold"] = args.quality_threshold
    result = augment_folder(args.data_dir, args.output_dir,
                            ClassAwareAugmenter(**params), progress=True)
    rows = [(c.label, (c.before, c.unreadable, c.target, c.generated,
                       c.regenerated, c.dropped, c.after)) for c in result.classes]
    rows.append(("total", tuple(sum(r[1][i] for r in rows)
                                for i in range(len(_COLUMNS)))))
    width = max(len(label) for label, _ in [("class", ()), *rows])
    out(f"{'class':<{width}}  " + "  ".join(f"{c:>10}" for c in _COLUMNS))
    for label, values in rows:
        out(f"{label:<{width}}  " + "  ".join(f"{v:>10}" for v in values))
    if result.skipped:
        out(f"{len(result.skipped)} file(s) not used:")
        for path, reason in result.skipped:
            out(f"  {path}: {reason}")
    per_image = result.generate_seconds * 1000 / max(result.n_generated, 1)
    out(f"Wrote {sum(c.before for c in result.classes)} originals and "
        f"{result.n_generated} generated images to {result.output_dir} in "
        f"{result.seconds:.1f} s (generation {per_image:.1f} ms/image)")
    out(f"Manifest: {result.manifest} (its 'source' column groups each original "
        "with its copies, for grouped cross-validation)")
    return 0
