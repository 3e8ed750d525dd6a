"""What every benchmark script shares: where the data is, the machine, the docs file."""

import os
import platform
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCS_FILE = REPO_ROOT / "docs" / "benchmarks.md"


def shared_data_dir():
    """$HYBRIDCLF_DATA, else ../shared/data beside the checkout."""
    base = os.environ.get("HYBRIDCLF_DATA")
    return Path(base) if base else REPO_ROOT.parent / "shared" / "data"


def find_dataset(name="amulet6"):
    """The folder of one shared dataset, or None when it is absent."""
    folder = shared_data_dir() / name
    return folder if folder.is_dir() else None


def machine_info():
    """CPU, core count and the versions of the libraries that set the figures."""
    from importlib.metadata import PackageNotFoundError, version

    cpu_model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    nproc = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
             else os.cpu_count())
    info = {"nproc": nproc, "cpu_model": cpu_model, "platform": platform.platform(),
            "python": platform.python_version()}
    for package, key in [("numpy", "numpy"), ("opencv-contrib-python-headless",
                         "opencv"), ("scikit-image", "scikit-image"),
                         ("scikit-learn", "scikit-learn"),
                         ("imbalanced-learn", "imbalanced-learn"),
                         ("joblib", "joblib"), ("hybridclf", "hybridclf")]:
        try:
            info[key] = version(package)
        except PackageNotFoundError:
            info[key] = None
    return info


def write_section(path, section, start_marker, end_marker):
    """Replace the text between the markers in ``path``, or append ``section``."""
    path = Path(path)
    if path.exists():
        text = path.read_text(encoding="utf-8")
    else:
        text = (
            "# Benchmarks\n\nFigures measured by the scripts in `benchmarks/`; "
            "each script rewrites its own section.\n"
        )
    start, end = text.find(start_marker), text.find(end_marker)
    if start != -1 and end > start:
        end += len(end_marker)
        if text[end : end + 1] == "\n":
            end += 1
        text = text[:start] + section.rstrip("\n") + "\n" + text[end:]
    else:
        text = text.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"  # gitignored


def fixed_block(name):
    """A feature block whose ``fit`` learns nothing from the images, by name.

    The names of :data:`hybridclf.pipeline.FEATURE_BLOCKS` with their defaults,
    and variants that the accuracy benchmarks compare.
    """
    from _block_variants import ColorHOG, GridColor

    from hybridclf.features import CNNFeatures, HOGFeatures, LBPFeatures
    from hybridclf.pipeline import FEATURE_BLOCKS

    variants = {
        "cnn_tta": lambda: CNNFeatures(flip_tta=True),
        "cnn_lite0": lambda: CNNFeatures(backbone="efficientnet_lite0",
                                         layer="head", flip_tta=True),
        "cnn_head_only": lambda: CNNFeatures(layer="head"),
        "cnn_mid": lambda: CNNFeatures(layer=(-8, -6, -4, "head")),
        "cnn_mid_avg": lambda: CNNFeatures(layer=(-8, -6, -4, "head"),
                                           pooling="avg"),
        "hog_fine": lambda: HOGFeatures(pixels_per_cell=(8, 8)),
        "hog_coarse": lambda: HOGFeatures(image_size=64),
        "hog_signed": lambda: HOGFeatures(signed_gradient=True, orientations=18),
        "cnn_320": lambda: CNNFeatures(image_size=320),
        "cnn_lite0_gem": lambda: CNNFeatures(backbone="efficientnet_lite0"),
        "cnn_260": lambda: CNNFeatures(image_size=260),
        # issue 21, second round: HOG, LBP, colour and CNN variants
        "hog_s_c8": lambda: HOGFeatures(signed_gradient=True, orientations=18,
                                        pixels_per_cell=(8, 8)),
        "hog_s_c32": lambda: HOGFeatures(signed_gradient=True, orientations=18,
                                         pixels_per_cell=(32, 32)),
        "hog_s_192": lambda: HOGFeatures(signed_gradient=True, orientations=18,
                                         image_size=192),
        "hog_s_b1": lambda: HOGFeatures(signed_gradient=True, orientations=18,
                                        cells_per_block=(1, 1)),
        "hog_s_12": lambda: HOGFeatures(signed_gradient=True, orientations=12),
        "hog_s_color": lambda: ColorHOG(signed_gradient=True, orientations=18),
        "lbp_3": lambda: LBPFeatures(points_radii=((8, 1), (16, 2), (24, 3))),
        "lbp_nri": lambda: LBPFeatures(method="nri_uniform"),
        "color_lab_grid": lambda: GridColor(color_space="lab", bins=(4, 6, 6)),
        "color_hsv_grid": lambda: GridColor(),
        "cnn_avg": lambda: CNNFeatures(pooling="avg"),
        "hog_12": lambda: HOGFeatures(orientations=12),
        "hog_c32": lambda: HOGFeatures(pixels_per_cell=(32, 32)),
    }
    return variants[name]() if name in variants else FEATURE_BLOCKS[name]()


def block_features(name, images, *, cache_key=None, n_jobs=2):
    """Features of a fixed block for every image, and ms per image.

    With ``cache_key`` (a name for the image set), they are kept in
    ``benchmarks/results/features/`` keyed by it, the block's parameters and
    the image bytes' hash, so a re-run skips the extraction.
    """
    import hashlib
    import time

    import numpy as np

    est = fixed_block(name).set_params(n_jobs=n_jobs)
    path = None
    if cache_key is not None:
        digest = hashlib.sha256(repr((sorted(est.get_params().items()),
                                      images.shape)).encode())
        digest.update(np.ascontiguousarray(images).tobytes())
        path = RESULTS_DIR / "features" / (
            f"{cache_key}-{name}-{digest.hexdigest()[:16]}.npz")
        if path.exists():
            data = np.load(path)
            return data["features"], float(data["ms_per_image"])
    # fit (loading the network, warming ONNX Runtime up) is not prediction
    est.fit(images[:2])
    t = time.perf_counter()
    features = est.transform(images)
    ms = (time.perf_counter() - t) * 1000 / len(images)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, features=features, ms_per_image=ms)
    return features, ms


def other_busy_cpus(seconds=0.5):
    """CPUs busy over ``seconds`` while this process waits; None off Linux.

    Read from ``/proc/stat`` just before a run starts, while the benchmark
    itself sleeps: the work of other processes. The load average counts the
    benchmark's own runs of the last minutes too.
    """
    def _ticks():
        with open("/proc/stat") as fh:
            values = [int(v) for v in fh.readline().split()[1:]]
        return sum(values) - values[3] - values[4], sum(values)  # idle, iowait

    try:
        busy0, total0 = _ticks()
        time.sleep(seconds)
        busy1, total1 = _ticks()
    except (OSError, ValueError, IndexError):
        return None
    return (busy1 - busy0) / max(total1 - total0, 1) * (os.cpu_count() or 1)


def fold_groups(folder, paths):
    """The folds' groups and where they come from.

    ``amulet6_groups.csv`` beside the data (checked by eye), else the
    inspector's duplicate groups.
    """
    import numpy as np

    from hybridclf.training import duplicate_groups, read_groups_csv

    csv = folder.parent / "amulet6_groups.csv"
    if csv.is_file():
        groups = read_groups_csv(csv, paths, root=folder)
        return np.asarray(groups), f"`{csv.name}`, checked by eye"
    print(f"{csv} not found: folds grouped by the inspector's duplicate groups")
    groups = duplicate_groups(paths, n_jobs=2)
    return np.asarray(groups), "the inspector's duplicate groups"
