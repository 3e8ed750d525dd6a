"""Retraining after adding photos, with the feature cache warm, against a cold train.

Each measurement runs ``hybridclf train`` (default blocks and classifier, groups
found on the fly) as a **separate process**, so both the cold and the warm run
pay Python's imports; the exported ONNX graph of the CNN is on disk for both
(a first run ever also exports it). Per data set, in one run of the script:

1. a previous training on all photos but 20 fills a fresh feature cache
   (``--cache-dir``; timed too, as a cold train of N - 20 photos);
2. the 20 photos are added and ``train`` runs again on the warm cache: only
   their features are computed (the command prints the count);
3. a cold ``train`` on the same N photos with an empty cache.

Data: amulet6 (173 photos) and a set of 1,000+ photos made from it: each photo
and OpenCV-perturbed copies (rotation, crop, scale, brightness and contrast,
hue, blur, mirror, JPEG quality) written to a temporary folder, deleted after.
"""

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

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


def make_large_set(source, target, n_total=1040, seed=0):
    """``source`` and perturbed copies of its photos, ``n_total`` JPEGs in all."""
    rng = np.random.default_rng(seed)
    files = sorted(source.glob("*/*.jpg"))
    per_photo = int(np.ceil(n_total / len(files)))
    written = 0
    for i in range(per_photo):
        for path in files:
            if written == n_total:
                return target
            image = cv2.imread(str(path))
            out = image if i == 0 else _perturb(image, rng)
            folder = target / path.parent.name
            folder.mkdir(parents=True, exist_ok=True)
            quality = 95 if i == 0 else int(rng.integers(70, 96))
            cv2.imwrite(str(folder / f"{path.stem}_v{i}.jpg"), out,
                        [cv2.IMWRITE_JPEG_QUALITY, quality])
            written += 1
    return target


def _train(data, model, cache):
    """Wall seconds and output of ``hybridclf train`` in a new process."""
    command = [sys.executable, "-m", "hybridclf", "train", "--data-dir", str(data),
               "--output-dir", str(model), "--cache-dir", str(cache),
               "--n-jobs", "2"]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    computed = re.search(r"features computed for (\d+) of (\d+)", done.stdout)
    groups = re.search(r"groups \(.*\) in ([\d.]+) s", done.stdout)
    info = json.loads((Path(model) / "model.json").read_text())["training"]
    return {"wall_s": seconds,
            "computed": [int(computed[1]), int(computed[2])] if computed else None,
            "groups_s": float(groups[1]) if groups else None,
            "features_s": info.get("seconds_features_shared"),
            "training_s": info.get("seconds_total")}


def measure_retrain(source, workdir, n_new=N_NEW, seed=0):
    """Cold and warm ``train`` on one data set; see the module's docstring."""
    rng = np.random.default_rng(seed)
    data, aside = workdir / "data", workdir / "aside"
    shutil.copytree(source, data)
    files = sorted(data.glob("*/*"))
    for index in rng.choice(len(files), n_new, replace=False):
        path = files[index]
        (aside / path.parent.name).mkdir(parents=True, exist_ok=True)
        path.rename(aside / path.parent.name / path.name)
    previous = _train(data, workdir / "model_previous", workdir / "cache")
    shutil.copytree(aside, data, dirs_exist_ok=True)
    warm = _train(data, workdir / "model_warm", workdir / "cache")
    cold = _train(data, workdir / "model_cold", workdir / "cache_cold")
    n_images = len(files)
    print(f"  {n_images} photos: cold {cold['wall_s']:.1f} s, warm "
          f"{warm['wall_s']:.1f} s ({warm['wall_s'] / cold['wall_s']:.0%}); "
          f"computed {warm['computed']}", flush=True)
    return {"n_images": n_images, "n_new": n_new, "previous": previous,
            "warm": warm, "cold": cold,
            "warm_over_cold": warm["wall_s"] / cold["wall_s"]}


def run(source, workdir):
    """Both data sets; the temporary folders are deleted."""
    results = {}
    print("Retraining after adding photos (amulet6) ...", flush=True)
    results["amulet6"] = measure_retrain(source, workdir / "amulet6")
    large = make_large_set(source, workdir / "large_source")
    print("Retraining after adding photos (1,000+ made from amulet6) ...", flush=True)
    results["large"] = measure_retrain(large, workdir / "large")
    shutil.rmtree(workdir / "large_source", ignore_errors=True)
    for name in ("amulet6", "large"):
        shutil.rmtree(workdir / name, ignore_errors=True)
    return results


def render(results, command):
    """The markdown lines of the retraining subsection."""
    lines = [
        "### Retraining after adding 20 photos (feature cache)",
        "",
        f"Command: `{command}`. Each `hybridclf train` (default blocks and "
        "classifier, duplicate groups found on the fly, `--n-jobs 2`) runs as a "
        "separate process, cold and warm in the same run of the script, one "
        "after the other (the machine's other load shifts both; the ratio is "
        "the figure). *Warm*: the feature cache holds every photo but the 20 "
        "new ones, from a previous training; *cold*: an empty cache. The "
        "1,000+ set is amulet6 with OpenCV-perturbed copies of each photo "
        "(rotation, crop, scale, brightness, hue, blur, mirror, JPEG quality), "
        "made in a temporary folder and deleted after.",
        "",
        "| data | photos | cold train | warm train (20 added) | warm / cold | "
        "target | features computed (warm) | of which: duplicate groups cold / "
        "warm | features cold / warm |",
        "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    for name, label in (("amulet6", "amulet6"), ("large", "amulet6 + copies")):
        r = results[name]
        cold, warm = r["cold"], r["warm"]
        share = r["warm_over_cold"]
        ratio = f"{share:.0%}" if share <= MAX_WARM_SHARE else f"**{share:.0%}**"
        computed = (f"{warm['computed'][0]} of {warm['computed'][1]}"
                    if warm["computed"] else "?")
        lines.append(
            f"| {label} | {r['n_images']} | {cold['wall_s']:.1f} s | "
            f"{warm['wall_s']:.1f} s | {ratio} | <= {MAX_WARM_SHARE:.0%} | "
            f"{computed} | {cold['groups_s']:.1f} / {warm['groups_s']:.1f} s | "
            f"{cold['features_s']:.1f} / {warm['features_s']:.1f} s |")
    lines += [
        "",
        "What stays in a warm run: starting Python and importing the libraries, "
        "the duplicate search over every photo (it decodes each one; a groups "
        "CSV skips it), the classifier fits and saving the model.",
    ]
    return lines
