"""Benchmark hybridclf's image decoding and classical feature blocks on amulet6.

What it measures, on the 173 photos of ``amulet6`` (224x224 JPEG, 6 classes):

- Time per image of decoding (:class:`hybridclf.io.ImageLoader`) and of each
  feature block (:class:`~hybridclf.features.HOGFeatures`,
  :class:`~hybridclf.features.LBPFeatures`,
  :class:`~hybridclf.features.ColorHistogram`,
  :class:`~hybridclf.features.SIFTBoVW`), side by side with a plain loop that
  does exactly the same computation with OpenCV / scikit-image / NumPy
  directly (no hybridclf code). Reported: the median ms/image of the raw loop,
  of ours with ``n_jobs=1`` and of ours with ``n_jobs=2``; the overhead ratio
  ours(n_jobs=1) / raw (target <= 1.15) and the speed-up ours(n_jobs=1) /
  ours(n_jobs=2) (target >= 1.7). Raw and ours repeats are interleaved in one
  run. The whole timing section runs twice: with OpenCV's default internal
  threads, and single-threaded (``cv2.setNumThreads(1)`` and BLAS limited to
  one thread), the fair baseline for the ``n_jobs`` speed-up. Every raw loop's
  output is checked against ours.
- The whole classical vector (the four blocks, serially), against a reference
  of 37.6 ms/image.
- Accuracy and balanced accuracy of ``make_hybrid_pipeline(features=[block])``
  for each block alone and of the default union, in 5-fold stratified
  cross-validation repeated 3 times. The folds are stratified, not grouped by
  near-duplicate photos.

It writes a section of ``docs/benchmarks.md`` (between the markers
``<!-- bench_features:start -->`` and ``<!-- bench_features:end -->``) and
every raw figure to ``benchmarks/results/bench_features.json``.

Run it from the repository root::

    make bench
    .venv/bin/python benchmarks/bench_features.py          # the same
    .venv/bin/python benchmarks/bench_features.py --quick  # 30 images, 1 repeat

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
from pathlib import Path

import _common
import cv2
import numpy as np
from _common import find_dataset, machine_info
from skimage.feature import local_binary_pattern
from sklearn.model_selection import RepeatedStratifiedKFold, cross_validate
from threadpoolctl import threadpool_limits

from hybridclf import make_hybrid_pipeline
from hybridclf.features import ColorHistogram, HOGFeatures, LBPFeatures, SIFTBoVW
from hybridclf.io import ImageLoader
from hybridclf.pipeline import iter_feature_blocks

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCS_FILE = REPO_ROOT / "docs" / "benchmarks.md"
RESULTS_FILE = REPO_ROOT / "benchmarks" / "results" / "bench_features.json"
START_MARKER = "<!-- bench_features:start -->"
END_MARKER = "<!-- bench_features:end -->"
COMMAND = "make bench` (the same as `.venv/bin/python benchmarks/bench_features.py`)"
QUICK_COMMAND = ".venv/bin/python benchmarks/bench_features.py --quick`"

IMAGE_SIZE = 224
BLOCKS = ("hog", "lbp", "color", "sift")
QUICK_N_IMAGES = 30

# Targets from the issue.
MAX_RATIO = 1.15
MIN_SPEEDUP = 1.7
# References measured with plain scripts on amulet6 (repeated stratified 5-fold,
# LogisticRegression on scaled features unless named otherwise).
REFERENCE_ACCURACY = {
    "hog": ("OpenCV HOG", 0.878),
    "sift": ("RootSIFT BoW + SVC", 0.711),
    "lbp": ("three-scale LBP + SVC", 0.578),
    "color": ("HSV histogram", 0.536),
    "union": ("the four classical blocks concatenated", 0.873),
}
REFERENCE_VECTOR_MS = 37.6

# Parameters of the library's defaults, read from the classes so the raw loops
# compute the same thing after a default changes (the equality checks confirm).
HOG_SIZE = HOGFeatures().image_size
LBP_SIZE = LBPFeatures().image_size
LBP_SCALES = LBPFeatures().points_radii
LBP_GRID = LBPFeatures().grid[0]
COLOR_BINS = list(ColorHistogram().bins)
COLOR_RANGES = [0, 180, 0, 256, 0, 256]
SIFT_STEP = SIFTBoVW().dense_step
SIFT_PATCH = SIFTBoVW().patch_size / 6.0  # OpenCV keypoint size
# Largest accepted absolute difference between raw and ours.
TOLERANCE = 1e-5


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


# -- raw library calls (no hybridclf code) --------------------------------------
def raw_decode(paths):
    """cv2.imdecode + BGR->RGB of every file into one array."""
    out = np.empty((len(paths), IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    for i, path in enumerate(paths):
        bgr = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR)
        if bgr.shape[:2] != (IMAGE_SIZE, IMAGE_SIZE):
            raise ValueError(
                f"{path}: the raw decode loop assumes {IMAGE_SIZE}x{IMAGE_SIZE} "
                f"images (no resize); got {bgr.shape[1]}x{bgr.shape[0]}."
            )
        out[i] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return out


def raw_hog(images):
    """Greyscale, 128x128 INTER_AREA, OpenCV HOGDescriptor with L2-Hys."""
    hog = cv2.HOGDescriptor(
        (HOG_SIZE, HOG_SIZE), (32, 32), (16, 16), (16, 16), 9, 1, -1.0,
        cv2.HOGDESCRIPTOR_L2HYS, 0.2, True, 64, False,
    )
    out = np.empty((len(images), hog.getDescriptorSize()), dtype=np.float32)
    for i, image in enumerate(images):
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        gray = cv2.resize(gray, (HOG_SIZE, HOG_SIZE), interpolation=cv2.INTER_AREA)
        out[i] = hog.compute(gray).ravel()
    return out


def raw_lbp(images):
    """Uniform LBP codes at each scale, histogram per cell of a 4x4 grid."""
    n_features = LBP_GRID * LBP_GRID * sum(p + 2 for p, _ in LBP_SCALES)
    out = np.empty((len(images), n_features), dtype=np.float32)
    edges = np.linspace(0, LBP_SIZE, LBP_GRID + 1).astype(int)
    for i, image in enumerate(images):
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        gray = cv2.resize(gray, (LBP_SIZE, LBP_SIZE), interpolation=cv2.INTER_AREA)
        pos = 0
        for n_points, radius in LBP_SCALES:
            codes = local_binary_pattern(gray, n_points, radius, "uniform")
            codes = codes.astype(np.intp)
            for r in range(LBP_GRID):
                for c in range(LBP_GRID):
                    cell = codes[edges[r] : edges[r + 1], edges[c] : edges[c + 1]]
                    hist = np.bincount(cell.ravel(), minlength=n_points + 2)
                    out[i, pos : pos + n_points + 2] = hist / cell.size
                    pos += n_points + 2
    return out


def raw_color(images):
    """HSV joint histogram, pixel fractions, square roots (Hellinger)."""
    out = np.empty((len(images), int(np.prod(COLOR_BINS))), dtype=np.float32)
    for i, image in enumerate(images):
        hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
        hist = cv2.calcHist([hsv], [0, 1, 2], None, COLOR_BINS, COLOR_RANGES)
        out[i] = np.sqrt(hist.ravel() / (image.shape[0] * image.shape[1]))
    return out


def raw_sift(images, codebook):
    """Dense SIFT, RootSIFT, nearest word of ``codebook``, word histogram."""
    height, width = images.shape[1:3]
    half = SIFT_STEP / 2
    keypoints = [
        cv2.KeyPoint(float(x), float(y), SIFT_PATCH)
        for y in np.arange(half, height, SIFT_STEP)
        for x in np.arange(half, width, SIFT_STEP)
    ]
    sift = cv2.SIFT_create()
    sqnorm = (codebook**2).sum(axis=1)
    out = np.empty((len(images), len(codebook)), dtype=np.float32)
    for i, image in enumerate(images):
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        _, desc = sift.compute(gray, keypoints)
        desc = desc.astype(np.float32)
        desc /= desc.sum(axis=1, keepdims=True) + 1e-7
        np.sqrt(desc, out=desc)
        words = (sqnorm - 2.0 * (desc @ codebook.T)).argmin(axis=1)
        out[i] = np.bincount(words, minlength=len(codebook)) / len(desc)
    return out


# -- timing ----------------------------------------------------------------------
def time_side_by_side(variants, n_images, repeats):
    """Median ms/image of each variant; repeats interleaved, order rotated.

    Each variant runs once untimed first (warm-up) and its output is kept for
    the equality checks.
    """
    outputs = {name: func() for name, func in variants.items()}
    names = list(variants)
    times = {name: [] for name in names}
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            start = time.perf_counter()
            variants[name]()
            times[name].append((time.perf_counter() - start) * 1000 / n_images)
    medians = {name: float(np.median(t)) for name, t in times.items()}
    return medians, times, outputs


def compare(raw, ours, ours_parallel):
    """Largest absolute differences raw vs ours and n_jobs=1 vs n_jobs=2."""
    raw, ours, ours_parallel = (np.asarray(a, dtype=np.float64)
                                for a in (raw, ours, ours_parallel))
    if raw.shape != ours.shape:
        return {"equal": False, "reason": f"shapes {raw.shape} != {ours.shape}"}
    diff = np.abs(raw - ours)
    diff_parallel = float(np.abs(ours - ours_parallel).max())
    return {
        "equal": bool(diff.max() <= TOLERANCE and diff_parallel <= TOLERANCE),
        "max_abs_diff": float(diff.max()),
        "n_rows_differing": int((diff.reshape(len(diff), -1) > TOLERANCE)
                                .any(axis=1).sum()),
        "max_abs_diff_n_jobs": diff_parallel,
    }


def fitted_blocks(images):
    """Each library block fitted on the images (SIFT with random_state=0)."""
    blocks = {
        "hog": HOGFeatures(),
        "lbp": LBPFeatures(),
        "color": ColorHistogram(),
        "sift": SIFTBoVW(random_state=0),
    }
    return {name: est.fit(images) for name, est in blocks.items()}


def transform_with(estimator, n_jobs, images):
    estimator.set_params(n_jobs=n_jobs)
    return estimator.transform(images)


def run_timing_pass(paths, images, blocks, repeats, label):
    """Time decode, each block and the whole classical vector; one pass."""
    n = len(paths)
    raw_calls = {
        "hog": raw_hog,
        "lbp": raw_lbp,
        "color": raw_color,
        "sift": lambda x: raw_sift(x, blocks["sift"].codebook_),
    }
    rows = {}

    def record(step, raw, ours1, ours2):
        medians, times, outputs = time_side_by_side(
            {"raw": raw, "ours_n_jobs_1": ours1, "ours_n_jobs_2": ours2}, n, repeats
        )
        check = compare(outputs["raw"], outputs["ours_n_jobs_1"],
                        outputs["ours_n_jobs_2"])
        rows[step] = {
            "ms_per_image": medians,
            "all_ms_per_image": times,
            "ratio": medians["ours_n_jobs_1"] / medians["raw"],
            "speedup_n_jobs_2": medians["ours_n_jobs_1"] / medians["ours_n_jobs_2"],
            "check": check,
        }
        mark = "equal" if check["equal"] else f"MISMATCH {check}"
        print(
            f"  [{label}] {step:<9} raw {medians['raw']:7.3f}  ours(1) "
            f"{medians['ours_n_jobs_1']:7.3f}  ours(2) {medians['ours_n_jobs_2']:7.3f}"
            f" ms/image  ratio {rows[step]['ratio']:.2f}  speed-up "
            f"{rows[step]['speedup_n_jobs_2']:.2f}  {mark}",
            flush=True,
        )

    record(
        "decode",
        lambda: raw_decode(paths),
        lambda: ImageLoader(size=IMAGE_SIZE, n_jobs=1).transform(paths),
        lambda: ImageLoader(size=IMAGE_SIZE, n_jobs=2).transform(paths),
    )
    for name in BLOCKS:
        est, raw = blocks[name], raw_calls[name]
        record(
            name,
            lambda raw=raw: raw(images),
            lambda est=est: transform_with(est, 1, images),
            lambda est=est: transform_with(est, 2, images),
        )
    record(
        "classical",
        lambda: np.hstack([raw_calls[b](images) for b in BLOCKS]),
        lambda: np.hstack([transform_with(blocks[b], 1, images) for b in BLOCKS]),
        lambda: np.hstack([transform_with(blocks[b], 2, images) for b in BLOCKS]),
    )
    for est in blocks.values():
        est.set_params(n_jobs=None)
    return rows


def run_timing(paths, images, repeats):
    """Both passes: OpenCV's default threads, then everything single-threaded."""
    # SIFT's k-means runs in BLAS/OpenMP threads, which slow it down several
    # times over when the cores are busy; one thread is safe (and untimed).
    with threadpool_limits(limits=1):
        blocks = fitted_blocks(images)
    default_threads = cv2.getNumThreads()
    print(f"Timing with OpenCV's default threads ({default_threads}) ...", flush=True)
    passes = {
        "opencv_default": {
            "cv2_num_threads": default_threads,
            "blas_threads": "default",
            "rows": run_timing_pass(paths, images, blocks, repeats, "default"),
        }
    }
    print("Timing with cv2.setNumThreads(1) and BLAS limited to 1 thread ...",
          flush=True)
    cv2.setNumThreads(1)
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            rows = run_timing_pass(paths, images, blocks, repeats, "1 thread")
        passes["single_thread"] = {
            "cv2_num_threads": cv2.getNumThreads(),
            "blas_threads": 1,
            "rows": rows,
        }
    finally:
        cv2.setNumThreads(default_threads)
    return passes


# -- accuracy ------------------------------------------------------------------
def run_accuracy(images, labels, n_splits, n_repeats, cache_dir):
    """Cross-validated accuracy of each block alone and of the default union.

    The pipelines share ``cache_dir`` as their ``memory``, so the union reuses
    the blocks fitted on the same training folds (the same computation).
    """
    cv = RepeatedStratifiedKFold(n_splits=n_splits, n_repeats=n_repeats,
                                 random_state=0)
    configs = {name: [name] for name in BLOCKS}
    configs["union"] = list(BLOCKS)  # the four classical blocks together
    results = {}
    for name, features in configs.items():
        pipe = make_hybrid_pipeline(features=features, classifier="logistic",
                                    memory=cache_dir)
        used = features or [name for name, _ in iter_feature_blocks(pipe)]
        # images are loaded once, so the pipeline's loader is skipped
        params = {"load": "passthrough"}
        params.update({f"features__{b}__extract__n_jobs": 2 for b in used})
        if "sift" in used:
            params["features__sift__extract__random_state"] = 0
        pipe.set_params(**params)
        start = time.perf_counter()
        scores = cross_validate(
            pipe, images, labels, cv=cv, n_jobs=1,
            scoring=["accuracy", "balanced_accuracy"],
        )
        elapsed = time.perf_counter() - start
        acc, bacc = scores["test_accuracy"], scores["test_balanced_accuracy"]
        results[name] = {
            "features": used,
            "accuracy_mean": float(acc.mean()),
            "accuracy_std": float(acc.std()),
            "balanced_accuracy_mean": float(bacc.mean()),
            "balanced_accuracy_std": float(bacc.std()),
            "accuracy_folds": acc.tolist(),
            "balanced_accuracy_folds": bacc.tolist(),
            "fit_time_mean_s": float(scores["fit_time"].mean()),
            "wall_s": elapsed,
        }
        print(
            f"  {name:<6} accuracy {acc.mean():.3f} +/- {acc.std():.3f}  balanced "
            f"{bacc.mean():.3f} +/- {bacc.std():.3f}  ({elapsed:.1f} s)",
            flush=True,
        )
    return {
        "cv": f"RepeatedStratifiedKFold(n_splits={n_splits}, n_repeats={n_repeats},"
              " random_state=0)",
        "classifier": "LogisticRegression",
        "results": results,
    }


# -- report ----------------------------------------------------------------------
def _flag(text, ok):
    return text if ok else f"**{text}**"


def timing_table(timing_pass):
    lines = [
        "| step | raw call | ours, n_jobs=1 | ours, n_jobs=2 | ratio (<= 1.15) "
        "| speed-up (>= 1.7) | same output |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for step, row in timing_pass["rows"].items():
        ms = row["ms_per_image"]
        check = row["check"]
        same = ("yes" if check["equal"]
                else f"**no** (max diff {check.get('max_abs_diff', 'n/a')})")
        ratio, speedup = row["ratio"], row["speedup_n_jobs_2"]
        ratio_text = _flag(f"{ratio:.2f}", ratio <= MAX_RATIO)
        speedup_text = _flag(f"{speedup:.2f}", speedup >= MIN_SPEEDUP)
        lines.append(
            f"| {step} | {ms['raw']:.3f} | {ms['ours_n_jobs_1']:.3f} "
            f"| {ms['ours_n_jobs_2']:.3f} | {ratio_text} | {speedup_text} "
            f"| {same} |"
        )
    return lines


def accuracy_table(accuracy):
    lines = [
        "| features | accuracy | balanced accuracy | reference (accuracy) |",
        "| --- | ---: | ---: | --- |",
    ]
    for name, res in accuracy["results"].items():
        ref_name, ref = REFERENCE_ACCURACY[name]
        label = name
        if name == "union":
            label = f"union ({', '.join(res['features'])})"
        lines.append(
            f"| {label} | {res['accuracy_mean']:.3f} +/- {res['accuracy_std']:.3f} "
            f"| {res['balanced_accuracy_mean']:.3f} +/- "
            f"{res['balanced_accuracy_std']:.3f} | {ref:.3f} ({ref_name}) |"
        )
    return lines


def render_section(report):
    info, setup = report["machine"], report["setup"]
    timing, accuracy = report["timing"], report["accuracy"]
    default_threads = timing["opencv_default"]["cv2_num_threads"]
    single = timing["single_thread"]["rows"]
    classical_ms = single["classical"]["ms_per_image"]["ours_n_jobs_1"]
    decode_ms = single["decode"]["ms_per_image"]["ours_n_jobs_1"]
    lines = [
        START_MARKER,
        "## Feature extraction (`benchmarks/bench_features.py`)",
        "",
        f"- Date: {report['date']}",
        f"- Machine: {info['nproc']} CPUs (`nproc`), {info['cpu_model']}; Python "
        f"{info['python']}, NumPy {info['numpy']}, OpenCV {info['opencv']}, "
        f"scikit-image {info['scikit-image']}, scikit-learn "
        f"{info['scikit-learn']}, imbalanced-learn {info['imbalanced-learn']}, "
        f"joblib {info['joblib']}.",
        f"- Command: `{QUICK_COMMAND if setup['quick'] else COMMAND}",
        f"- Data: amulet6, {setup['n_images']} JPEG photos of "
        f"{IMAGE_SIZE}x{IMAGE_SIZE} pixels, {setup['n_classes']} classes.",
        "",
        "### Time per image (ms)",
        "",
        f"Median of {setup['repeats']} repeats; the raw loop and ours run "
        "interleaved in the same process. *Raw call*: a plain loop over the "
        "same images doing the same computation with OpenCV, scikit-image and "
        "NumPy directly; *ratio* = ours (n_jobs=1) / raw; *speed-up* = ours "
        "(n_jobs=1) / ours (n_jobs=2). Figures outside the target are in bold. "
        "*decode* reads the files; the blocks start from decoded images; "
        "*classical* is the four blocks one after the other. *Same output*: "
        f"raw and ours (n_jobs=1 and 2) agree within {TOLERANCE:g}.",
        "",
        f"OpenCV's default internal threads (`cv2.getNumThreads()` = "
        f"{default_threads}), BLAS default:",
        "",
        *timing_table(timing["opencv_default"]),
        "",
        "Single-threaded libraries, set by the benchmark: `cv2.setNumThreads(1)` "
        "and BLAS limited to 1 thread (threadpoolctl); the fair baseline for "
        "the n_jobs=2 speed-up:",
        "",
        *timing_table(timing["single_thread"]),
        "",
        f"Whole classical vector, serially (single-threaded, n_jobs=1): "
        f"{classical_ms:.1f} ms/image, {classical_ms + decode_ms:.1f} with "
        "decoding "
        f"(reference: {REFERENCE_VECTOR_MS} ms/image, measured with plain scripts).",
        "",
        "### Accuracy",
        "",
        f"`make_hybrid_pipeline(features=[block])` for each block and "
        f"`make_hybrid_pipeline(features=[all four])` for the union (classifier: "
        f"{accuracy['classifier']}), images loaded once with "
        f"`ImageLoader(size={IMAGE_SIZE})`; {accuracy['cv']}; mean +/- std over "
        "the folds. SIFT with `random_state=0`; each block with n_jobs=2 and "
        "BLAS/OpenMP limited to 1 thread (threadpoolctl; SIFT's k-means is "
        "several times slower with 2 threads on busy cores); the "
        "pipelines share a `memory` cache, so the union reuses the blocks "
        "fitted on the same folds.",
        "",
        *accuracy_table(accuracy),
        "",
        "The folds are stratified but **not grouped by near-duplicate photos**: "
        "amulet6 holds a few near-identical photos, which can fall on both "
        "sides of a split and flatter these figures (grouped folds come with "
        "the dataset inspector). References: plain scripts on amulet6, repeated "
        "stratified 5-fold, LogisticRegression on scaled features unless "
        "another classifier is named.",
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
        help=f"{QUICK_N_IMAGES} images, 1 repeat, 2-fold accuracy; write to a "
             "temporary folder instead of docs/benchmarks.md (for development)",
    )
    parser.add_argument(
        "--repeats", type=int, default=None,
        help="timing repeats per variant (default: 5, or 1 with --quick)",
    )
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    folder = find_dataset()
    if folder is None:
        print(
            "bench_features: the amulet6 data folder is absent (looked in "
            "$HYBRIDCLF_DATA/amulet6, or ../shared/data/amulet6 beside the "
            "checkout); nothing measured, nothing written."
        )
        return 0
    repeats = args.repeats or (1 if args.quick else 5)
    n_splits, n_repeats = (2, 1) if args.quick else (5, 3)
    if args.quick:
        out_dir = Path(tempfile.gettempdir()) / "hybridclf_bench_quick"
        docs_file = out_dir / "benchmarks.md"
        results_file = out_dir / "bench_features.json"
    else:
        docs_file, results_file = DOCS_FILE, RESULTS_FILE

    start = time.perf_counter()
    paths, labels = list_images(folder, QUICK_N_IMAGES if args.quick else None)
    print(f"amulet6: {len(paths)} images, {len(set(labels))} classes from {folder}",
          flush=True)
    images = ImageLoader(size=IMAGE_SIZE).transform(paths)

    timing = run_timing(paths, images, repeats)
    print(f"Accuracy ({n_splits}-fold x {n_repeats}) ...", flush=True)
    with (
        warnings.catch_warnings(record=True) as caught,
        tempfile.TemporaryDirectory(prefix="bench_features_cache_") as cache_dir,
        threadpool_limits(limits=1),  # see run_timing: k-means and busy cores
    ):
        warnings.simplefilter("always")
        accuracy = run_accuracy(images, labels, n_splits, n_repeats, cache_dir)
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
            "data": str(folder),
            "repeats": repeats,
            "tolerance": TOLERANCE,
            "targets": {"max_ratio": MAX_RATIO, "min_speedup": MIN_SPEEDUP},
        },
        "timing": timing,
        "accuracy": accuracy,
        "accuracy_warnings": warning_texts,
        "references": {
            "accuracy": {k: v[1] for k, v in REFERENCE_ACCURACY.items()},
            "classical_vector_ms_per_image": REFERENCE_VECTOR_MS,
        },
        "wall_s": time.perf_counter() - start,
    }
    results_file.parent.mkdir(parents=True, exist_ok=True)
    results_file.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    write_section(docs_file, render_section(report))
    print(f"Wrote {docs_file} and {results_file} ({report['wall_s']:.0f} s).")

    mismatches = [
        f"{label}/{step}"
        for label, timing_pass in timing.items()
        for step, row in timing_pass["rows"].items()
        if not row["check"]["equal"]
    ]
    if mismatches:
        print(f"ERROR: raw and ours differ for {', '.join(mismatches)}; the timing "
              "comparison is not like for like.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
