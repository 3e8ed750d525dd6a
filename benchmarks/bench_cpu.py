"""CPU time and peak memory of the commands users wait on, against a baseline.

Runs, each as a new process, ``hybridclf predict`` on one amulet6 photo and
on the whole folder (a model trained by this checkout, in a temporary
folder), the same for the CNN block alone (``CNNFeatures.transform`` of the
default model on 64 photos, in batches of 32), ``hybridclf train
--no-cache`` (defaults and ``--quick``), ``hybridclf augment`` (defaults),
a ``GridSearchCV`` of the default pipeline with and without a ``memory``
cache (:data:`GRID_SEARCH`, :data:`GRIDS`), and ``hybridclf evaluate`` of a
``train --quick`` model (trained by this checkout on the 36
somdej_fatherguay photos of about 700x1000, in front/ and back/ class folders
of links) on copies of them (re-encoded; 8 enlarged to 45 megapixels), when
that folder is there: with this checkout's hybridclf and with the one in
``--baseline DIR`` (a checkout or a copy of one, such as the snapshot of
``main`` a change started from), taking turns so that both see the same
load. Each run's user + system CPU time and peak resident memory come from
``os.wait4``: on a shared machine they move far less than wall times. The
predictions of both versions are compared (the CSVs byte for byte; for the
trainings, the ``neighbours.npz`` arrays, ``train_part.json`` and the
probabilities of both models on the folder; augment's files byte for byte;
the grid searches' scores; the evaluation reports, but for their speed, the
block importance's interval and the near copies' hash distances).

Writes its section of docs/benchmarks.md. Run it from the repository root::

    .venv/bin/python benchmarks/bench_cpu.py --baseline /tmp/base15b
"""

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from _common import DOCS_FILE, REPO_ROOT, find_dataset, machine_info, write_section

START, END = "<!-- bench_cpu:start -->", "<!-- bench_cpu:end -->"

#: the rows of hybridclf evaluate
EVALUATE = ("evaluate, somdej_fatherguay re-encoded (36 photos)",
            "evaluate, 8 somdej photos enlarged to 45 MP")

#: the CNN block alone: CPU seconds per image of transform (run with -c)
CNN_BLOCK = """
import glob, sys, time
import numpy as np
from hybridclf import load_model
from hybridclf.prediction._features import iter_feature_blocks
pipe = load_model(sys.argv[1])
cnn = dict(iter_feature_blocks(pipe))["cnn"]
files = sorted(glob.glob(sys.argv[2] + "/*/*"))[:64]
images = np.asarray(pipe.steps[0][1].transform(files))
cnn.transform(images[:1])  # the session built
start = time.process_time()
cnn.transform(images)
print((time.process_time() - start) / len(images))
"""


#: GridSearchCV over 3 ridge penalties x 3 grouped folds of the default
#: pipeline (a cascade) on ``per_class`` photos of each amulet6 class, the
#: CNN's backbone and input size and the loader's size given, with a
#: ``memory`` cache in a new folder or none; prints the mean test scores
#: (argv: data, groups CSV, per_class, size, backbone, "memory" or "none")
GRID_SEARCH = """
import csv, sys, tempfile
from pathlib import Path
import numpy as np
from sklearn.model_selection import GridSearchCV, GroupKFold
from hybridclf import make_hybrid_pipeline
data, groups_csv, per_class, size, backbone, cached = sys.argv[1:7]
group_of = {r["file"]: int(r["group"]) for r in csv.DictReader(open(groups_csv))}
files = [f for folder in sorted(Path(data).iterdir()) if folder.is_dir()
         for f in sorted(folder.glob("*.jpg"))[:int(per_class)]]
y = np.array([f.parent.name for f in files])
groups = np.array([group_of[f"{f.parent.name}/{f.name}"] for f in files])
with tempfile.TemporaryDirectory() as cache:
    pipe = make_hybrid_pipeline(memory=cache if cached == "memory" else None)
    pipe.set_params(load__size=int(size), features__cnn__extract__backbone=backbone,
                    features__cnn__extract__image_size=int(size))
    search = GridSearchCV(pipe, {"clf__alphas": [(0.1,), (1.0,), (10.0,)]},
                          cv=GroupKFold(3))
    search.fit([str(f) for f in files], y, groups=groups)
print(" ".join(f"{v:.6f}" for v in search.cv_results_["mean_test_score"]))
"""

#: the grid searches: (task, per_class, size, backbone, memory)
GRIDS = [
    ("grid search, toy CNN (Lite0 at 64 px, 36 photos), no memory",
     6, 64, "efficientnet_lite0", "none"),
    ("grid search, toy CNN (Lite0 at 64 px, 36 photos), memory",
     6, 64, "efficientnet_lite0", "memory"),
    ("grid search, default CNN (60 photos), no memory",
     10, 224, "efficientnet_lite2", "none"),
    ("grid search, default CNN (60 photos), memory",
     10, 224, "efficientnet_lite2", "memory"),
]


def run(code_dir, argv, python_args=()):
    """(user + system CPU s, peak RSS MB, stdout) of one hybridclf process."""
    env = {**os.environ, "PYTHONPATH": str(code_dir)}
    proc = subprocess.Popen([sys.executable, *python_args, *argv], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            cwd=tempfile.gettempdir())
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if status:
        raise RuntimeError(f"{argv} with {code_dir} failed ({status})")
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out


def cli(*args):
    return ["-m", "hybridclf", *args]


#: writes the somdej folders (run with -c WORK): in a process of its own, so
#: that the 45-megapixel images do not swell the benchmark's process, whose
#: resident memory each measured process starts from (fork)
SOMDEJ_FOLDERS = """
import sys
from pathlib import Path
import cv2
source, work = Path(sys.argv[1]), Path(sys.argv[2])
folders = [work / name for name in ("somdej", "somdej_reencoded", "somdej_45mp")]
for i, photo in enumerate(sorted(source.glob("*.jpg"))):
    side = "front" if photo.stem.split("-")[-1].startswith("f") else "back"
    for folder in folders:
        (folder / side).mkdir(parents=True, exist_ok=True)
    (folders[0] / side / photo.name).symlink_to(photo)
    image = cv2.imread(str(photo))
    cv2.imwrite(str(folders[1] / side / photo.name), image,
                [cv2.IMWRITE_JPEG_QUALITY, 90])
    if i % 9 in (0, 5):  # 8 photos of both sides
        h, w = image.shape[:2]
        cv2.imwrite(str(folders[2] / side / photo.name),
                    cv2.resize(image, (8 * w, 8 * h), interpolation=cv2.INTER_CUBIC),
                    [cv2.IMWRITE_JPEG_QUALITY, 90])
"""


def somdej_folders(work):
    """somdej_fatherguay as class folders (front/, back/): links, copies, large copies.

    None when the data set is absent. The links are trained on; the test
    folders hold each photo re-encoded (JPEG quality 90: other bytes, so
    that evaluate checks every one for near copies, as it does new photos)
    and 8 of them enlarged 8 times (about 5600x8000, 45 megapixels).
    """
    source = find_dataset("somdej_fatherguay")
    if source is None:
        return None
    subprocess.run([sys.executable, "-c", SOMDEJ_FOLDERS, str(source), str(work)],
                   check=True)
    return [work / name for name in ("somdej", "somdej_reencoded", "somdej_45mp")]


def measure(versions, data, work, repeat):
    """{(task, version): [(cpu, rss), ...]} and the outputs' comparison."""
    model = work / "model"
    run(REPO_ROOT, cli("train", "--data-dir", str(data), "--output-dir",
                       str(model), "--no-cache", "--seed", "0"))
    somdej = somdej_folders(work)
    photo = sorted(data.glob("*/*"))[0]
    groups_csv = data.parent / f"{data.name}_groups.csv"
    tasks = {
        "predict, 1 photo": lambda v: cli(
            "predict", "--model-dir", str(model), str(photo),
            "--output", str(work / f"one-{v}.csv")),
        f"predict, folder ({len(list(data.glob('*/*')))} photos)": lambda v: cli(
            "predict", "--model-dir", str(model), str(data),
            "--output", str(work / f"folder-{v}.csv")),
        "CNN block alone, per image (ms)": lambda v: [
            "-c", CNN_BLOCK, str(model), str(data)],
        "train --no-cache": lambda v: cli(
            "train", "--data-dir", str(data), "--output-dir",
            str(work / f"train-{v}"), "--no-cache", "--seed", "0"),
        "train --quick --no-cache": lambda v: cli(
            "train", "--quick", "--data-dir", str(data), "--output-dir",
            str(work / f"quick-{v}"), "--no-cache", "--seed", "0"),
        "augment": lambda v: cli(
            "augment", "--data-dir", str(data), "--output-dir",
            str(work / f"augment-{v}"), "--seed", "0"),
    }
    for task, *args in GRIDS:
        tasks[task] = lambda v, args=args: [
            "-c", GRID_SEARCH, str(data), str(groups_csv), *map(str, args)]
    # the folders each task writes, made anew at each run
    fresh = {"train --no-cache": "train", "train --quick --no-cache": "quick",
             "augment": "augment"}
    if somdej is not None:
        run(REPO_ROOT, cli("train", "--data-dir", str(somdej[0]), "--output-dir",
                           str(work / "quick"), "--quick", "--no-cache",
                           "--seed", "0"))
        for task, folder in zip(EVALUATE, somdej[1:]):
            tasks[task] = lambda v, f=folder, t=task: cli(
                "evaluate", "--model-dir", str(work / "quick"), "--test-data-dir",
                str(f), "--output-dir", str(work / f"evaluate-{EVALUATE.index(t)}-{v}"))
    results, scores = {}, {}
    for _ in range(repeat):
        for task, argv in tasks.items():
            for name, code_dir in versions.items():
                if task in fresh:
                    subprocess.run(["rm", "-rf", str(work / f"{fresh[task]}-{name}")],
                                   check=True)
                if task in EVALUATE:
                    subprocess.run(["rm", "-rf", *map(str, work.glob(
                        f"evaluate-{EVALUATE.index(task)}-{name}"))], check=True)
                cpu, rss, out = run(code_dir, argv(name))
                if task.startswith("CNN"):
                    cpu, rss = float(out) * 1000, None
                if task.startswith("grid"):
                    scores.setdefault(task, set()).add(out)
                results.setdefault((task, name), []).append((cpu, rss))
                print(f"{task} | {name} | {cpu:.2f} | {rss}", file=sys.stderr)
    return results, compare(work, list(versions), scores)


def _tree(folder):
    """{relative path: bytes} of every file under ``folder``."""
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in folder.rglob("*") if p.is_file()}


def compare(work, names, scores):
    """What the two versions' outputs have in common, in words."""
    base, this = names
    lines = []
    for kind in ("one", "folder"):
        same = ((work / f"{kind}-{base}.csv").read_bytes()
                == (work / f"{kind}-{this}.csv").read_bytes())
        lines.append(f"predict CSV ({kind}): {'the same bytes' if same else 'DIFFER'}")
    a = np.load(work / f"train-{base}" / "neighbours.npz")
    b = np.load(work / f"train-{this}" / "neighbours.npz")
    same = all(np.array_equal(a[k], b[k]) for k in a.files)
    lines.append(f"trained neighbours.npz: {'the same arrays' if same else 'DIFFER'}")
    for i, task in enumerate(EVALUATE):
        if not (work / f"evaluate-{i}-{base}").is_dir():
            continue
        a, b = (_comparable(json.loads(
            (work / f"evaluate-{i}-{n}" / "report.json").read_text()))
            for n in names)
        lines.append(f"{task.split(' (')[0]} report.json: " + (
            "the same" if a == b else "DIFFERS in " + ", ".join(
                sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k)))))
    same = all((work / f"{kind}-{base}" / "train_part.json").read_bytes()
               == (work / f"{kind}-{this}" / "train_part.json").read_bytes()
               for kind in ("train", "quick"))
    lines.append("train_part.json of both trainings: "
                 f"{'the same bytes' if same else 'DIFFER'}")
    same = _tree(work / f"augment-{base}") == _tree(work / f"augment-{this}")
    lines.append("augment's files and manifest.csv: "
                 f"{'the same bytes' if same else 'DIFFER'}")
    same = all(len(outputs) == 1 for outputs in scores.values())
    lines.append("grid searches' mean test scores: "
                 f"{'the same in every run' if same else 'DIFFER'}")
    return lines


def _comparable(report):
    """What two versions' evaluation reports should share.

    Not the speed; of the block importance, each block's mean and spread
    over the permutations (the interval is new in 2026-12); of the near
    copies, the files named (the hash distances move by a bit or two since
    each photo is hashed from the loader's reduced decode of a large JPEG).
    """
    report = {k: v for k, v in report.items() if k != "speed_ms_per_image"}
    report["block_importance"] = {k: (v["mean"], v["std"]) for k, v in
                                  report["block_importance"].items()}
    if report.get("near_training"):
        report["near_training"] = sorted(m["file"] for m in
                                         report["near_training"]["files"])
    return report


def probabilities_difference(work, names, data):
    """Max abs difference of the probabilities of the two trained models."""
    code = ("import sys, glob, numpy as np; from hybridclf import load_model; "
            "f = sorted(glob.glob(sys.argv[3] + '/*/*')); "
            "a = load_model(sys.argv[1]).predict_proba(f); "
            "b = load_model(sys.argv[2]).predict_proba(f); "
            "print(np.abs(a - b).max())")
    _, _, out = run(REPO_ROOT, ["-c", code, str(work / f"train-{names[0]}"),
                                str(work / f"train-{names[1]}"), str(data)])
    return float(out)


def table(results, names):
    rows = ["| task | " + " | ".join(f"{n}: CPU s (runs)" for n in names)
            + " | ratio | " + " | ".join(f"{n}: peak RSS MB" for n in names) + " |",
            "| --- |" + " ---: |" * (2 * len(names) + 1)]
    tasks = dict.fromkeys(t for t, _ in results)
    for task in tasks:
        cells, means, rss = [], [], []
        for name in names:
            values = [c for c, _ in results[(task, name)]]
            means.append(np.mean(values))
            cells.append(f"{means[-1]:.2f} ({', '.join(f'{v:.2f}' for v in values)})")
            peaks = [r for _, r in results[(task, name)] if r is not None]
            rss.append(f"{max(peaks):.0f}" if peaks else "")
        rows.append(f"| {task} | " + " | ".join(cells)
                    + f" | {means[1] / means[0]:.2f} | " + " | ".join(rss) + " |")
    return "\n".join(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, type=Path,
                        help="folder holding the hybridclf package to compare with")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    data = find_dataset("amulet6")
    if data is None:
        parser.error("amulet6 is missing (set HYBRIDCLF_DATA)")
    names = ["baseline", "this checkout"]
    versions = dict(zip(names, [args.baseline.resolve(), REPO_ROOT]))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        results, same = measure(versions, data, work, args.repeat)
        same.append("probabilities of the two trained models on the folder: max "
                    f"abs difference {probabilities_difference(work, names, data):.1e}")
    load = os.getloadavg()[0]
    info = machine_info()
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M+00:00")
    section = f"""{START}
## CPU time of the commands (`benchmarks/bench_cpu.py`)

- Date: {when}; 1-minute load average {load:.1f} at the end on {info['nproc']} CPUs
  (shared with other work: compare the versions, not the figures of other sections).
- Machine: {info['cpu_model']}; Python {info['python']}.
- Command: `.venv/bin/python benchmarks/bench_cpu.py --baseline {args.baseline}`
- Data: amulet6; the model of the predictions trained by this checkout
  (`hybridclf train --no-cache --seed 0`, the default cascade). The evaluate
  rows: a model trained by this checkout (`train --quick --seed 0`) on
  somdej_fatherguay's 36 photos of about 700x1000 (front/ and back/ folders),
  `hybridclf evaluate --test-data-dir` on copies of them: each re-encoded
  (JPEG quality 90), and 8 of them enlarged 8 times (about 5600x8000); other
  bytes, so that the near-copy check hashes every one, as it does new photos.

Each figure is a new process's user + system CPU time (all its threads,
`os.wait4`), the versions taking turns, {args.repeat} runs each; *ratio* =
this checkout / baseline. The CNN block alone is `CNNFeatures.transform` of
the default model on 64 photos in batches of 32 (CPU ms per image, in the
process; no RSS). The grid searches: `GridSearchCV` of
`make_hybrid_pipeline(memory=...)` (the default cascade) over
`clf__alphas` in (0.1,), (1.0,), (10.0,) with `GroupKFold(3)` on the first
photos of each amulet6 class (groups from `amulet6_groups.csv`), the CNN's
backbone and `image_size` and `load__size` as named; *memory*: a
`joblib.Memory` folder made for the run, *no memory*: `memory=None`.

{table(results, names)}

Same results: {'; '.join(same)}.
{END}
"""
    print(section)
    if not args.no_write:
        write_section(DOCS_FILE, section, START, END)


if __name__ == "__main__":
    main()
