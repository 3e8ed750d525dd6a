"""Benchmark class-aware augmentation on amulet6: speed, quality, accuracy.

What it measures, on the 173 photos of ``amulet6`` (224x224 JPEG, 6 classes of
20 to 36 photos):

- Speed of :class:`hybridclf.ClassAwareAugmenter`: generated images per second
  when every photo gets one augmented copy (173 new images, the size of the
  original tool's run: 172 images in 0.83 s, about 4.8 ms each), in memory
  with ``n_jobs=1`` and ``n_jobs=2``, including the quality check (SSIM on
  64x64 greyscale copies); the same draws without the check
  (:func:`hybridclf.augment.random_augment` in a loop); and the whole
  ``hybridclf augment`` work (:func:`hybridclf.augment.augment_folder`:
  reading the JPEGs, generating, writing the copies and ``manifest.csv``).
  Medians of the repeats.
- Quality of the default settings: the SSIM of the generated images and how
  many were drawn again or dropped.
- The accuracy effect inside the pipeline: ``make_hybrid_pipeline()`` without a
  sampler, with ``ClassAwareAugmenter()`` (every class brought up to the
  largest) and with one copy of every photo, in repeated stratified 5-fold
  cross-validation. The augmenter is a pipeline step, so copies are made from
  the training fold inside ``fit``: no copy of a test photo is ever trained on,
  and the folds need no grouping by source.

It writes a section of ``docs/benchmarks.md`` (between the markers
``<!-- bench_augment:start -->`` and ``<!-- bench_augment:end -->``) and every
raw figure to ``benchmarks/results/bench_augment.json``.

Run it from the repository root::

    .venv/bin/python benchmarks/bench_augment.py          # about 5 minutes
    .venv/bin/python benchmarks/bench_augment.py --quick  # 30 photos, 2-fold

``--quick`` writes to a temporary folder instead of ``docs/``. The data is read
from ``../shared/data/amulet6`` beside the checkout, or from
``$HYBRIDCLF_DATA/amulet6``; without it the script says so and exits with 0.
"""

import argparse
import datetime
import json
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

import _common
import numpy as np
from _common import find_dataset, machine_info
from sklearn.model_selection import RepeatedStratifiedKFold, cross_validate
from threadpoolctl import threadpool_limits

from hybridclf import ClassAwareAugmenter, make_hybrid_pipeline
from hybridclf.augment import augment_folder, random_augment
from hybridclf.io import ImageLoader
from hybridclf.pipeline import iter_feature_blocks

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCS_FILE = REPO_ROOT / "docs" / "benchmarks.md"
RESULTS_FILE = REPO_ROOT / "benchmarks" / "results" / "bench_augment.json"
START_MARKER = "<!-- bench_augment:start -->"
END_MARKER = "<!-- bench_augment:end -->"
COMMAND = ".venv/bin/python benchmarks/bench_augment.py"
QUICK_COMMAND = ".venv/bin/python benchmarks/bench_augment.py --quick"

IMAGE_SIZE = 224
QUICK_N_IMAGES = 30
# The original tool's augmentation script on amulet6 (from the issue).
REFERENCE_IMAGES, REFERENCE_SECONDS = 172, 0.83


def one_copy_each(y):
    """Sampling strategy: every class doubled, one copy of each photo."""
    return {label: 2 * n for label, n in Counter(y).items()}


# -- data ----------------------------------------------------------------------
def list_images(folder, n_images=None):
    """Paths and labels of ``<class>/*.jpg``; an even per-class subset if asked."""
    per_class = {
        d.name: sorted(str(p) for p in d.glob("*.jpg"))
        for d in sorted(folder.iterdir())
        if d.is_dir() and not d.name.startswith(".")
    }
    per_class = {name: files for name, files in per_class.items() if files}
    if n_images is not None:
        k = max(2, n_images // len(per_class))
        per_class = {
            name: [files[i] for i in np.linspace(0, len(files) - 1, k).astype(int)]
            for name, files in per_class.items()
        }
    paths = [p for files in per_class.values() for p in files]
    labels = [name for name, files in per_class.items() for _ in files]
    return paths, np.asarray(labels)


def subset_folder(paths, labels, root):
    """A class-per-folder tree of symbolic links to ``paths`` (for --quick)."""
    for path, label in zip(paths, labels):
        (root / label).mkdir(parents=True, exist_ok=True)
        (root / label / Path(path).name).symlink_to(path)
    return root


# -- speed ---------------------------------------------------------------------
def median_seconds(func, repeats):
    """Median wall time of ``func()`` over ``repeats`` runs, and the last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), times, result


def run_speed(folder, paths, images, labels, repeats):
    """Generation speed in memory, without the check, and on disk."""
    n_new = len(images)
    rows = {}
    quality = None
    # warm-up, untimed: imports, thread pools, lookup tables
    ClassAwareAugmenter(sampling_strategy=one_copy_each, random_state=0,
                        n_jobs=2).fit_resample(images, labels)
    for n_jobs in (1, 2):
        sampler = ClassAwareAugmenter(sampling_strategy=one_copy_each,
                                      random_state=0, n_jobs=n_jobs)
        seconds, times, _ = median_seconds(
            lambda s=sampler: s.fit_resample(images, labels), repeats)
        rows[f"sampler_n_jobs_{n_jobs}"] = {
            "what": f"ClassAwareAugmenter.fit_resample, n_jobs={n_jobs}",
            "seconds": seconds, "all_seconds": times, "n_images": n_new,
        }
        if quality is None:
            quality = {
                "similarity_min": float(sampler.similarity_.min()),
                "similarity_p01": float(np.percentile(sampler.similarity_, 1)),
                "similarity_median": float(np.median(sampler.similarity_)),
                "quality_threshold": sampler.quality_threshold,
                "n_generated": int(sum(sampler.n_generated_.values())),
                "n_regenerated": int(sum(sampler.n_regenerated_.values())),
                "n_dropped": int(sum(sampler.n_dropped_.values())),
            }

    def plain_loop():
        rng = np.random.default_rng(0)
        return [random_augment(image, rng) for image in images]

    seconds, times, _ = median_seconds(plain_loop, repeats)
    rows["random_augment_loop"] = {
        "what": "random_augment in a loop, no quality check, 1 thread",
        "seconds": seconds, "all_seconds": times, "n_images": n_new,
    }

    times, disk = [], None
    for r in range(repeats):
        with tempfile.TemporaryDirectory(prefix="bench_augment_") as tmp:
            start = time.perf_counter()
            disk = augment_folder(folder, Path(tmp) / "out", ClassAwareAugmenter(
                sampling_strategy=one_copy_each, random_state=0, n_jobs=2))
            times.append(time.perf_counter() - start)
    rows["augment_folder_n_jobs_2"] = {
        "what": "augment_folder (hybridclf augment): read, generate, write JPEGs "
                "and manifest, n_jobs=2",
        "seconds": float(np.median(times)), "all_seconds": times,
        "n_images": disk.n_generated,
    }
    for row in rows.values():
        row["ms_per_image"] = 1000 * row["seconds"] / row["n_images"]
        row["images_per_second"] = row["n_images"] / row["seconds"]
        print(f"  {row['what']:<80} {row['ms_per_image']:6.2f} ms/image "
              f"({row['images_per_second']:.0f} images/s)", flush=True)
    return rows, quality


# -- accuracy ------------------------------------------------------------------
def run_accuracy(images, labels, n_splits, n_repeats):
    """Cross-validated accuracy without and with augmentation in the pipeline."""
    cv = RepeatedStratifiedKFold(n_splits=n_splits, n_repeats=n_repeats,
                                 random_state=0)
    configs = {
        "none": None,
        "balance (auto)": ClassAwareAugmenter(random_state=0, n_jobs=2),
        "one copy of each photo": ClassAwareAugmenter(
            sampling_strategy=one_copy_each, random_state=0, n_jobs=2),
    }
    results = {}
    for name, sampler in configs.items():
        pipe = make_hybrid_pipeline(features=["hog", "lbp", "sift", "color"],
                                    classifier="logistic", sampler=sampler)
        blocks = [name for name, _ in iter_feature_blocks(pipe)]
        params = {"load": "passthrough"}
        params.update({f"features__{b}__extract__n_jobs": 2 for b in blocks})
        params.update({k: 0 for k in pipe.get_params()
                       if k.endswith("extract__random_state")})
        pipe.set_params(**params)
        start = time.perf_counter()
        scores = cross_validate(pipe, images, labels, cv=cv, n_jobs=1,
                                scoring=["accuracy", "balanced_accuracy"],
                                error_score="raise")
        elapsed = time.perf_counter() - start
        acc, bacc = scores["test_accuracy"], scores["test_balanced_accuracy"]
        results[name] = {
            "sampler": None if sampler is None else repr(sampler),
            "features": blocks,
            "accuracy_mean": float(acc.mean()),
            "accuracy_std": float(acc.std()),
            "balanced_accuracy_mean": float(bacc.mean()),
            "balanced_accuracy_std": float(bacc.std()),
            "accuracy_folds": acc.tolist(),
            "balanced_accuracy_folds": bacc.tolist(),
            "fit_time_mean_s": float(scores["fit_time"].mean()),
            "wall_s": elapsed,
        }
        print(f"  {name:<24} accuracy {acc.mean():.3f} +/- {acc.std():.3f}  "
              f"balanced {bacc.mean():.3f} +/- {bacc.std():.3f}  "
              f"fit {scores['fit_time'].mean():.1f} s/fold", flush=True)
    return {
        "cv": f"RepeatedStratifiedKFold(n_splits={n_splits}, n_repeats={n_repeats},"
              " random_state=0)",
        "classifier": "LogisticRegression",
        "results": results,
    }


# -- report ----------------------------------------------------------------------
def render_section(report):
    info, setup = report["machine"], report["setup"]
    speed, quality, accuracy = report["speed"], report["quality"], report["accuracy"]
    reference_ms = 1000 * REFERENCE_SECONDS / REFERENCE_IMAGES
    speed_rows = [
        "| what | images | median s | ms/image | images/s |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for row in speed.values():
        speed_rows.append(
            f"| {row['what']} | {row['n_images']} | {row['seconds']:.2f} "
            f"| {row['ms_per_image']:.2f} | {row['images_per_second']:.0f} |")
    speed_rows.append(
        f"| reference: the original tool's augmentation script | "
        f"{REFERENCE_IMAGES} | {REFERENCE_SECONDS:.2f} | {reference_ms:.2f} "
        f"| {REFERENCE_IMAGES / REFERENCE_SECONDS:.0f} |")
    acc_rows = [
        "| augmentation in fit | accuracy | balanced accuracy | fit s/fold |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, res in accuracy["results"].items():
        acc_rows.append(
            f"| {name} | {res['accuracy_mean']:.3f} +/- {res['accuracy_std']:.3f} "
            f"| {res['balanced_accuracy_mean']:.3f} +/- "
            f"{res['balanced_accuracy_std']:.3f} | {res['fit_time_mean_s']:.1f} |")
    features = ", ".join(next(iter(accuracy["results"].values()))["features"])
    lines = [
        START_MARKER,
        "## Class-aware augmentation (`benchmarks/bench_augment.py`)",
        "",
        f"- Date: {report['date']}",
        f"- Machine: {info['nproc']} CPUs (`nproc`), {info['cpu_model']}; Python "
        f"{info['python']}, NumPy {info['numpy']}, OpenCV {info['opencv']}, "
        f"scikit-image {info['scikit-image']}, scikit-learn "
        f"{info['scikit-learn']}, imbalanced-learn {info['imbalanced-learn']}.",
        f"- Command: `{QUICK_COMMAND if setup['quick'] else COMMAND}`",
        f"- Data: amulet6, {setup['n_images']} JPEG photos of "
        f"{IMAGE_SIZE}x{IMAGE_SIZE} pixels, {setup['n_classes']} classes "
        f"({setup['class_counts']}).",
        "",
        "### Speed",
        "",
        f"One augmented copy of every photo ({setup['n_images']} new images, "
        "`sampling_strategy` doubling each class), default techniques and "
        f"quality check; median of {setup['repeats']} "
        f"run{'s' if setup['repeats'] != 1 else ''}. The in-memory rows "
        "start from decoded images; `augment_folder` includes reading the "
        "JPEGs and writing the copies (JPEG, quality 95) and `manifest.csv`. "
        "The reference made a similar number of images, but counted "
        "differently: it also doubled classes already above its target, which "
        "`ClassAwareAugmenter` leaves as they are.",
        "",
        *speed_rows,
        "",
        "### Quality of the generated images",
        "",
        f"SSIM to the source after the same geometric transform, on 64x64 "
        f"greyscale copies, for the {quality['n_generated']} images of the "
        f"n_jobs=1 run: min {quality['similarity_min']:.3f}, 1st percentile "
        f"{quality['similarity_p01']:.3f}, median "
        f"{quality['similarity_median']:.3f} (threshold "
        f"{quality['quality_threshold']}); {quality['n_regenerated']} drawn "
        f"again, {quality['n_dropped']} dropped.",
        "",
        "### Accuracy",
        "",
        f"`make_hybrid_pipeline(sampler=...)` (features: {features}; classifier: "
        f"{accuracy['classifier']}), images loaded once with "
        f"`ImageLoader(size={IMAGE_SIZE})` and the pipeline's loader set to "
        f"`\"passthrough\"`; {accuracy['cv']}; mean +/- std over the folds; "
        "feature blocks with n_jobs=2, BLAS limited to 1 thread, SIFT and the "
        "augmenter with `random_state=0`. *balance (auto)*: "
        "`ClassAwareAugmenter()`, every class of the training fold brought up "
        "to its largest; *one copy of each photo*: every class doubled. No "
        "`memory` cache: each configuration trains on other images, so no "
        "fitted block could be reused.",
        "",
        *acc_rows,
        "",
        "The augmenter is a step of the pipeline, so copies are made from the "
        "training fold inside `fit` and no copy of a test photo is ever trained "
        "on: the folds need no grouping by source photo (grouping by "
        "`manifest.csv`'s `source` column is only needed for a copy written by "
        "`hybridclf augment`). The folds are not grouped by the few "
        "near-identical photos of amulet6, as in the feature benchmark.",
        END_MARKER,
    ]
    return "\n".join(lines) + "\n"


# -- main ------------------------------------------------------------------------


def write_section(path, section):
    _common.write_section(path, section, START_MARKER, END_MARKER)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true",
        help=f"{QUICK_N_IMAGES} photos, 1 repeat, 2-fold accuracy; write to a "
             "temporary folder instead of docs/benchmarks.md (for development)",
    )
    parser.add_argument(
        "--repeats", type=int, default=None,
        help="speed repeats (default: 5, or 1 with --quick)",
    )
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    folder = find_dataset()
    if folder is None:
        print(
            "bench_augment: the amulet6 data folder is absent (looked in "
            "$HYBRIDCLF_DATA/amulet6, or ../shared/data/amulet6 beside the "
            "checkout); nothing measured, nothing written."
        )
        return 0
    repeats = args.repeats or (1 if args.quick else 5)
    n_splits, n_repeats = (2, 1) if args.quick else (5, 3)
    if args.quick:
        out_dir = Path(tempfile.gettempdir()) / "hybridclf_bench_quick"
        docs_file = out_dir / "benchmarks.md"
        results_file = out_dir / "bench_augment.json"
    else:
        docs_file, results_file = DOCS_FILE, RESULTS_FILE

    start = time.perf_counter()
    paths, labels = list_images(folder, QUICK_N_IMAGES if args.quick else None)
    class_counts = ", ".join(f"{n}" for n in Counter(labels.tolist()).values())
    print(f"amulet6: {len(paths)} images, {len(set(labels))} classes from {folder}",
          flush=True)
    images = ImageLoader(size=IMAGE_SIZE).transform(paths)

    print("Speed ...", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench_augment_data_") as tmp:
        source = subset_folder(paths, labels, Path(tmp)) if args.quick else folder
        speed, quality = run_speed(source, paths, images, labels, repeats)
    print(f"Accuracy ({n_splits}-fold x {n_repeats}) ...", flush=True)
    with (
        warnings.catch_warnings(record=True) as caught,
        threadpool_limits(limits=1),  # SIFT's k-means is slow on busy cores
    ):
        warnings.simplefilter("always")
        accuracy = run_accuracy(images, labels, n_splits, n_repeats)
    warning_texts = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
    for text in warning_texts:
        print(f"  warning during cross-validation: {text}", flush=True)

    report = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="minutes"),
        "machine": machine_info(),
        "setup": {
            "quick": args.quick,
            "n_images": len(paths),
            "n_classes": len(set(labels)),
            "class_counts": class_counts,
            "data": str(folder),
            "repeats": repeats,
        },
        "speed": speed,
        "quality": quality,
        "accuracy": accuracy,
        "accuracy_warnings": warning_texts,
        "reference": {"images": REFERENCE_IMAGES, "seconds": REFERENCE_SECONDS},
        "wall_s": time.perf_counter() - start,
    }
    results_file.parent.mkdir(parents=True, exist_ok=True)
    results_file.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    write_section(docs_file, render_section(report))
    print(f"Wrote {docs_file} and {results_file} ({report['wall_s']:.0f} s).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
