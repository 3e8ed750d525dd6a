"""Retraining after adding photos, with the feature cache warm, against a cold train.

Each measurement runs ``hybridclf train`` (default blocks and classifier, groups
found on the fly) as a **separate process**, so both the cold and the warm run
pay Python's imports; the exported ONNX graph of the CNN is on disk for both
(a first run ever also exports it), and so is this checkout's byte code
(compiled first, as an installed package or ``make`` has it: with
``PYTHONDONTWRITEBYTECODE`` set, Python would otherwise compile every module
of hybridclf it imports in each run; a ``--baseline`` checkout runs as it is,
nothing is written into it). Per data set, in one run of the script:

1. a previous training on all photos but 20 fills a fresh feature cache
   (``--cache-dir``; timed too, as a cold train of N - 20 photos);
2. the 20 photos are added and ``train`` runs again on the warm cache: only
   their features are computed (the command prints the count);
3. a cold ``train`` on the same N photos with an empty cache.

Data: amulet6 (173 photos) and a set of 1,000+ photos made from it: each photo
and OpenCV-perturbed copies (rotation, crop, scale, brightness and contrast,
hue, blur, mirror, JPEG quality) written to a temporary folder, deleted after.
Each is measured twice: with the duplicate groups found on the fly (the
default) and with ``--groups CSV`` (``amulet6_groups.csv``; for the copies,
each photo's copies share its group), which skips the duplicate search.
"""

import compileall
import csv
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import _common
import cv2
import numpy as np

N_NEW = 20
MAX_WARM_SHARE = 0.30


def _perturb(image, rng):
    """One OpenCV-perturbed copy of an image (BGR uint8)."""
    h, w = image.shape[:2]
    angle, scale = rng.uniform(-12, 12), rng.uniform(0.85, 1.1)
    matrix = cv2.getRotationMatrix2D((w / 2 + rng.uniform(-8, 8),
                                      h / 2 + rng.uniform(-8, 8)), angle, scale)
    out = cv2.warpAffine(image, matrix, (w, h), borderMode=cv2.BORDER_REFLECT)
    out = cv2.convertScaleAbs(out, alpha=rng.uniform(0.8, 1.2),
                              beta=rng.uniform(-25, 25))
    hsv = cv2.cvtColor(out, cv2.COLOR_BGR2HSV)
    hsv[..., 0] = (hsv[..., 0].astype(int) + int(rng.integers(-6, 7))) % 180
    out = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
    if rng.random() < 0.4:
        out = cv2.GaussianBlur(out, (3, 3), 0)
    if rng.random() < 0.3:
        out = out[:, ::-1]
    side = int(rng.integers(200, 300))
    return cv2.resize(out, (side, side), interpolation=cv2.INTER_AREA)


def make_large_set(source, target, groups_csv, n_total=1040, seed=0):
    """``source`` and perturbed copies of its photos, ``n_total`` JPEGs in all.

    ``groups_csv`` (``file,group``, names relative to ``target``) gets the
    true groups: a photo's copies share the group the photo has in
    ``amulet6_groups.csv`` beside ``source``, or one of their own.
    """
    rng = np.random.default_rng(seed)
    files = sorted(source.glob("*/*.jpg"))
    truth = _read_groups(source.parent / f"{source.name}_groups.csv")
    per_photo = int(np.ceil(n_total / len(files)))
    written, rows = 0, []
    for i in range(per_photo):
        for path in files:
            original = f"{path.parent.name}/{path.name}"
            if written == n_total:
                _write_groups(groups_csv, rows)
                return target
            rows.append((f"{path.parent.name}/{path.stem}_v{i}.jpg",
                         truth.get(original, original)))
            image = cv2.imread(str(path))
            out = image if i == 0 else _perturb(image, rng)
            folder = target / path.parent.name
            folder.mkdir(parents=True, exist_ok=True)
            quality = 95 if i == 0 else int(rng.integers(70, 96))
            cv2.imwrite(str(folder / f"{path.stem}_v{i}.jpg"), out,
                        [cv2.IMWRITE_JPEG_QUALITY, quality])
            written += 1
    _write_groups(groups_csv, rows)
    return target


def _read_groups(path):
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8-sig") as fh:  # Excel adds a BOM
        return {row["file"]: row["group"] for row in csv.DictReader(fh)}


def _write_groups(path, rows):
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "group"])
        writer.writerows(rows)


def byte_compile():
    """Compile the byte code of the hybridclf this process imports.

    What an installed wheel and ``make`` (its ``bytecode`` step) give; only
    modules changed since are compiled again.
    """
    import hybridclf

    compileall.compile_dir(Path(hybridclf.__file__).parent, quiet=1)


def _train(data, model, cache, groups_csv=None, root=None):
    """Wall seconds and output of ``hybridclf train`` in a new process.

    ``root``: the checkout whose hybridclf runs (its folder first on the
    path, and the working folder); None runs the one this process imports.
    """
    command = [sys.executable, "-m", "hybridclf", "train", "--data-dir", str(data),
               "--output-dir", str(model), "--cache-dir", str(cache),
               "--n-jobs", "2",
               *(["--groups", str(groups_csv)] if groups_csv else [])]
    env = None if root is None else {**os.environ, "PYTHONPATH": str(root)}
    load, busy = os.getloadavg()[0], _common.other_busy_cpus()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False,
                          env=env, cwd=root)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    computed = re.search(r"features computed for (\d+) of (\d+)", done.stdout)
    groups = re.search(r"groups \(.*\) in ([\d.]+) s", done.stdout)
    info = json.loads((Path(model) / "model.json").read_text())["training"]
    return {"wall_s": seconds, "cpu_s": cpu, "load": load, "busy": busy,
            "computed": [int(computed[1]), int(computed[2])] if computed else None,
            "groups_s": float(groups[1]) if groups else None,
            "features_s": info.get("seconds_features_shared"),
            # the views' own time (embedded in a thread beside the classifier
            # fits); older versions embedded them in the novelty phase
            "novelty_s": info.get("seconds_novelty_views",
                                  info.get("seconds_novelty")),
            "training_s": info.get("seconds_total")}


def measure_retrain(source, workdir, groups_csv=None, n_new=N_NEW, seed=0,
                    root=None):
    """Cold and warm ``train`` on one data set; see the module's docstring.

    ``root``: the checkout that trains, as in :func:`_train`.
    """
    if root is None:
        byte_compile()
    rng = np.random.default_rng(seed)
    data, aside = workdir / "data", workdir / "aside"
    shutil.copytree(source, data)
    files = sorted(data.glob("*/*"))
    for index in rng.choice(len(files), n_new, replace=False):
        path = files[index]
        (aside / path.parent.name).mkdir(parents=True, exist_ok=True)
        path.rename(aside / path.parent.name / path.name)
    previous = _train(data, workdir / "model_previous", workdir / "cache",
                      groups_csv, root)
    shutil.copytree(aside, data, dirs_exist_ok=True)
    warm = _train(data, workdir / "model_warm", workdir / "cache", groups_csv, root)
    cold = _train(data, workdir / "model_cold", workdir / "cache_cold", groups_csv,
                  root)
    n_images = len(files)
    shutil.rmtree(workdir, ignore_errors=True)
    print(f"  {n_images} photos: cold {cold['wall_s']:.1f} s, warm "
          f"{warm['wall_s']:.1f} s ({warm['wall_s'] / cold['wall_s']:.0%}); "
          f"computed {warm['computed']}", flush=True)
    return {"n_images": n_images, "n_new": n_new, "previous": previous,
            "warm": warm, "cold": cold,
            "warm_over_cold": warm["wall_s"] / cold["wall_s"]}


def run(source, workdir):
    """Both data sets, groups found on the fly and from a CSV; folders deleted."""
    results = {}
    large = make_large_set(source, workdir / "large_source",
                           workdir / "large_groups.csv")
    sets = {"amulet6": (source, source.parent / f"{source.name}_groups.csv"),
            "large": (large, workdir / "large_groups.csv")}
    for name, (folder, groups_csv) in sets.items():
        for variant, csv_path in (("", None), ("_csv", groups_csv)):
            if csv_path is not None and not Path(csv_path).is_file():
                continue
            how = "groups from a CSV" if csv_path else "groups found on the fly"
            print(f"Retraining after adding photos ({name}, {how}) ...", flush=True)
            results[name + variant] = measure_retrain(folder, workdir / name,
                                                      csv_path)
    shutil.rmtree(workdir / "large_source", ignore_errors=True)
    return results


def compare_versions(source, workdir, baseline, repeats=2):
    """amulet6 retrained by another checkout and by this one, taking turns.

    Under the same load (the two alternate, ``repeats`` times each), the
    ratios of the two versions compare where the machine's load moves both.
    """
    runs = []
    for i in range(repeats):
        for version, root in (("baseline", Path(baseline).resolve()),
                              ("this checkout", None)):
            print(f"Retraining amulet6 with {version} ({i + 1}/{repeats}) ...",
                  flush=True)
            result = measure_retrain(source, workdir / f"v{i}_{root is None}",
                                     root=root)
            runs.append({"version": version, **result})
    return {"baseline": str(baseline), "runs": runs}


def _start(run):
    """A run's load average at start, and other work's busy CPUs if known."""
    busy = run.get("busy")
    return f"{run['load']:.1f}" + ("" if busy is None else f" ({busy:.1f})")


def _version_rows(versions):
    """Table rows of compare_versions: each run, then each version's mean."""
    lines = []
    for version in ("baseline", "this checkout"):
        runs = [r for r in versions["runs"] if r["version"] == version]
        for r in runs:
            cold, warm = r["cold"], r["warm"]
            lines.append(
                f"| {version} | {_start(cold)} / {_start(warm)} | "
                f"{cold['wall_s']:.1f} / {warm['wall_s']:.1f} s | "
                f"{warm['wall_s'] / cold['wall_s']:.0%} | {cold['cpu_s']:.1f} / "
                f"{warm['cpu_s']:.1f} s | {warm['cpu_s'] / cold['cpu_s']:.0%} |")
        wall = np.mean([r["warm"]["wall_s"] / r["cold"]["wall_s"] for r in runs])
        cpu = np.mean([r["warm"]["cpu_s"] / r["cold"]["cpu_s"] for r in runs])
        lines.append(f"| {version}, mean | | | {wall:.0%} | | {cpu:.0%} |")
    return lines


def render_versions(versions):
    """The markdown lines of the side-by-side comparison with a baseline."""
    return [
        "",
        f"The same on amulet6 (groups found on the fly) by the checkout in "
        f"`{versions['baseline']}` (*baseline*, run as it is: its modules "
        "compiled in each run where it has no byte code) and by this "
        "checkout, taking turns, so that both see the same load:",
        "",
        "| version | load average at start (other work's busy CPUs), cold / "
        "warm | command, cold / warm | "
        "warm / cold | CPU time, cold / warm | warm / cold |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
        *_version_rows(versions),
    ]


_ROWS = (("amulet6", "amulet6"), ("amulet6_csv", "amulet6, `--groups CSV`"),
         ("large", "amulet6 + copies"),
         ("large_csv", "amulet6 + copies, `--groups CSV`"))


def _seconds(value):
    return "-" if value is None else f"{value:.1f} s"


def _share(value):
    text = f"{value:.0%}"
    return text if value <= MAX_WARM_SHARE else f"**{text}**"


def _row(label, r):
    """One table row: a data set's cold and warm runs."""
    cold, warm = r["cold"], r["warm"]
    computed = (f"{warm['computed'][0]} of {warm['computed'][1]}"
                if warm["computed"] else "?")
    cpu = "- | -"
    if cold.get("cpu_s") and warm.get("cpu_s"):
        cpu = (f"{cold['cpu_s']:.1f} / {warm['cpu_s']:.1f} s | "
               f"{warm['cpu_s'] / cold['cpu_s']:.0%}")
    return (
        f"| {label} | {r['n_images']} | {computed} | {cold['wall_s']:.1f} / "
        f"{warm['wall_s']:.1f} s | {_share(r['warm_over_cold'])} | {cpu} | "
        f"{cold['training_s']:.1f} / {warm['training_s']:.1f} s | "
        f"{warm['training_s'] / cold['training_s']:.0%} | "
        f"{cold['features_s']:.1f} / {warm['features_s']:.1f} s | "
        f"{_seconds(cold.get('novelty_s'))} / {_seconds(warm.get('novelty_s'))} | "
        f"{_seconds(cold['groups_s'])} / {_seconds(warm['groups_s'])} |")


def _figures(results, key):
    """Each run's ``key`` (``load``, ``busy``), None left out."""
    return [run[key] for name, _ in _ROWS if name in results
            for run in (results[name]["warm"], results[name]["cold"])
            if run.get(key) is not None]


def _loads(results):
    """The 1-minute load averages and the other work's busy CPUs at each start."""
    loads, busy = _figures(results, "load"), _figures(results, "busy")
    text = f"load average {min(loads):.1f} to {max(loads):.1f}" if loads else "?"
    if busy:
        text += (f", of which other processes kept {min(busy):.1f} to "
                 f"{max(busy):.1f} CPUs busy in the half second before each run")
    return text


def _busy(results):
    """Whether other processes kept half a CPU busy before a run started.

    Without that figure (older results), whether the load average was over
    half the CPUs.
    """
    busy = _figures(results, "busy")
    if busy:
        return max(busy) > 0.5
    loads = _figures(results, "load")
    nproc = results.get("machine", {}).get("nproc") or os.cpu_count() or 1
    return bool(loads) and max(loads) > nproc / 2


def render(results, command):
    """The markdown lines of the retraining subsection."""
    lines = [
        "### Retraining after adding 20 photos (feature cache)",
        "",
        f"Command: `{command}` ({results.get('date', '?')}, "
        f"{results.get('machine', {}).get('nproc', '?')} CPUs: "
        f"{_loads(results)}). Each "
        "`hybridclf train` (default blocks and classifier, "
        "`--n-jobs 2`; duplicate groups found on the fly, or read with "
        "`--groups CSV`: `amulet6_groups.csv`, and for the copies each photo's "
        "copies in its group) runs as a separate process, cold and warm in the "
        "same run of the script, one after the other (the machine's other load "
        "shifts both; the ratios are the figures), with this checkout's byte code "
        "compiled beforehand, as `make` and an installed package have it "
        "(this machine sets `PYTHONDONTWRITEBYTECODE`, so each run would "
        "compile the modules of hybridclf it imports: about 0.1 s). *Warm*: "
        "the feature cache "
        "holds every photo but the 20 new ones, from a previous training; "
        "*cold*: an empty cache. The "
        "1,000+ set is amulet6 with OpenCV-perturbed copies of each photo "
        "(rotation, crop, scale, brightness, hue, blur, mirror, JPEG quality), "
        "made in a temporary folder and deleted after.",
        "",
        "| data | photos | features computed (warm) | command, cold / warm | "
        "warm / cold | CPU time, cold / warm | warm / cold | training "
        "(`train_model`), cold / warm | warm / cold | of which features | "
        "of which novelty views | duplicate groups |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | "
        "---: | ---: |",
    ]
    lines += [_row(label, results[name]) for name, label in _ROWS
              if name in results]
    lines += [
        "",
        f"Target: warm at most {MAX_WARM_SHARE:.0%} of cold, for the whole "
        "command (a ratio over it is in bold). *Command* is the wall time of "
        "the whole process; *CPU time* its user and system time (all threads), "
        "which the machine's other load shifts less; *training* is "
        "`train_model` (split, features, cross-validation, final fit, test "
        "part) as `model.json` records it; *novelty views*: the CNN embeddings "
        "of each training photo's blurred and turned views for the novelty "
        "index, the time of the thread that embeds them beside the folds' "
        "classifier fits. The cache holds each photo's features, the embeddings of its "
        "views, and what the duplicate search measured of it (hashes, "
        "sharpness) with the aligned similarity of each pair it checked; the "
        "test part is drawn from the photos' content, so adding photos moves "
        "few old ones between the parts. A warm command computes the features "
        "of the new photos and, from the same decoded photos, the views of "
        "the new training photos (and of the few old ones that left the test "
        "part), decodes the new photos and aligns the pairs with one in the "
        "duplicate search, and pays what does not depend on the photos: "
        "starting Python and importing scikit-learn (whose "
        "`sklearn.utils.fixes` imports SciPy's statistics whatever the "
        "command) and imbalanced-learn (whose `sklearn_compat` imports "
        "scikit-learn's test helpers and most of its estimators): 1.3 s of "
        "CPU time on one thread, interpreter included, before any work "
        "starts (1.55 s before the command kept out the pandas and pytest "
        "those imports would also load, `hybridclf.cli._common."
        "command_imports`; the label issues' default filter runs without "
        "cleanlab, whose package imports pandas: 0.3 s of CPU time), under "
        "load a larger share of the wall time than of the "
        "CPU time; then the classifier fits of the folds, the open-set "
        "thresholds, the novelty index and writing the model. The views are "
        "embedded (ONNX Runtime, two threads) in a thread of their own while "
        "the folds' classifiers, the label issues and the final pipeline are "
        "fitted; skops (whose list of trusted "
        "types imports every scikit-learn estimator module: 0.15 s of "
        "Python) is imported in another thread while the training waits for "
        "the views, not after it. The novelty index's six indexes (five "
        "folds' and the final one) are built two at a time, and their "
        "eigendecompositions call LAPACK through SciPy's Cython export, "
        "which leaves Python's lock free (through `scipy.linalg.eigh` the "
        "two threads took turns; the same bits either way). "
        "The command imports with Python's garbage "
        "collector paused and freezes its objects at the end (`gc.freeze`: "
        "the exit of a training took 0.4 s of CPU time without), and the "
        "novelty index's search axes come from the Gram matrix of its rows "
        "(a third of the SVD's time), in float32 (six indexes 0.15 s of CPU "
        "time, 0.45 s in float64); the CNN's ONNX Runtime session loads the "
        "graph it optimised in an earlier run (`hybridclf.features."
        "_cnn_ort_cache`: 37 ms of CPU time, 84 ms optimising it again). "
        "On amulet6 these fixed costs are most "
        "of a warm command, so its ratio moves by a few points with the "
        "machine's load from one run to the next. Running the new photos' "
        "CNN work (their features and views, 92 passes) in a thread started "
        "before the imports, on the core they leave idle, was tried as a "
        "prototype (2026-12-07): the imports took 0.45 to 0.65 s longer and "
        "the passes about 70% longer than alone, about what moving them "
        "saved, so it was not built.",
    ]
    if _busy(results):
        lines += [
            "",
            "The machine was busy during these runs (other sessions' jobs on "
            "the same CPUs): a busy machine slows the cold command's "
            "two-thread CNN work more than the warm command's one-thread "
            "start-up, so the wall-time ratios read lower than on a quiet "
            "machine; the CPU-time ratios move less with the load.",
        ]
    if results.get("versions"):
        lines += render_versions(results["versions"])
    return lines
