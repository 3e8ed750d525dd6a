"""The speed of ``inspect_dataset`` in full mode, for one version of the code.

Run as a script under the ``PYTHONPATH`` of the code to time (the checkout of
another commit, say), so that two versions can be timed side by side on one
machine by ``bench_inspect.py --baseline``::

    PYTHONPATH=/tmp/base .venv/bin/python benchmarks/_speed_probe.py FOLDER
    PYTHONPATH=/tmp/base .venv/bin/python benchmarks/_speed_probe.py FOLDER --groups

With ``--groups`` it makes one full-mode call (``n_jobs=2``) and prints the
files, their duplicate groups, the images per second and the CPU time per
image as JSON. Otherwise it prints one line of JSON:

- ``images_per_s``: files over the median wall time of ``repeats`` warm calls
  with ``n_jobs=2`` (after one call that pays the imports and the ONNX
  session);
- ``cpu_ms_per_image``: the process CPU time (``time.process_time``, every
  thread) of those calls per file; less sensitive to other jobs on the
  machine than the wall time;
- ``phases_ms_per_image``: the CPU time per file of calls with ``n_jobs=1``,
  split into the phases that run in threads (reading, CNN, alignment where
  the code threads it) and the rest;
- ``quiet_images_per_s``: what a quiet 2-core machine would reach by those
  phases: the threaded phases on 2 cores, the rest on one (Amdahl); an upper
  bound, since threads never split work perfectly; ``one_core_images_per_s``
  is the lower bound, everything on one core.
"""

import argparse
import importlib
import inspect
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import _duplicate_truth as truth_set

from hybridclf import inspect_dataset

REPO_ROOT = Path(__file__).resolve().parents[1]


def _module(*names):
    for name in names:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ImportError(f"none of {names}")


def _timed_phases():
    """Wrap the phases of the inspector; return the dict they add CPU time to."""
    spent = {}
    inspector = _module("hybridclf.inspect._inspect")
    try:
        # the alignment of one channel, called through its module's globals
        # (duplicate_pairs binds aligned_pairs as a default argument, which a
        # wrapper set on the module afterwards would miss)
        aligner = importlib.import_module("hybridclf.inspect._alignment")
        align_name = "_align_channel"
        getattr(aligner, align_name)
    except (ImportError, AttributeError):
        aligner = _module("hybridclf.inspect._evidence",
                          "hybridclf.inspect._duplicates")
        align_name = "aligned_pairs"
    threaded = (align_name == "_align_channel"
                or "n_jobs" in inspect.signature(aligner.aligned_pairs).parameters)
    for module, name, phase in ((inspector, "scan_files", "read"),
                                (inspector, "embed", "cnn"),
                                (aligner, align_name, "align")):
        func = getattr(module, name)

        def timed(*args, _func=func, _phase=phase, **kwargs):
            start = time.process_time()
            try:
                return _func(*args, **kwargs)
            finally:
                spent[_phase] = spent.get(_phase, 0.0) + time.process_time() - start

        setattr(module, name, timed)
    return spent, threaded


def probe(folder, repeats=3):
    spent, threaded = _timed_phases()
    report = inspect_dataset(folder, n_jobs=2)
    n = report.n_files
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        inspect_dataset(folder, n_jobs=2)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    spent.clear()
    cpu = time.process_time()
    for _ in range(repeats):
        inspect_dataset(folder, n_jobs=1)
    total = (time.process_time() - cpu) / repeats
    phases = {k: v / repeats for k, v in spent.items()}
    parallel = phases["read"] + phases["cnn"] + (phases.get("align", 0.0)
                                                 if threaded else 0.0)
    phases["rest"] = total - phases["read"] - phases["cnn"] - phases.get("align", 0.0)
    return {
        "n_files": n, "wall_s": walls, "cpu_s": cpus,
        "images_per_s": n / statistics.median(walls),
        "cpu_ms_per_image": 1000 * statistics.median(cpus) / n,
        "phases_ms_per_image": {k: 1000 * v / n for k, v in phases.items()},
        "alignment_threaded": threaded,
        "one_core_images_per_s": n / total,
        "quiet_images_per_s": n / (total - parallel / 2),
    }


def groups(folder):
    """One full-mode call: the files, their groups, its speed."""
    wall, cpu = time.perf_counter(), time.process_time()
    report = inspect_dataset(folder, n_jobs=2)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"files": [f["file"] for f in report.files],
            "groups": [int(g) for g in report.groups()],
            "images_per_s": report.n_files / wall,
            "cpu_ms_per_image": 1000 * cpu / report.n_files}


def _probe(code_dir, *args):
    """This script run with ``code_dir`` first on the path; its JSON answer."""
    env = dict(os.environ, PYTHONPATH=str(code_dir))
    out = subprocess.run([sys.executable, __file__, *map(str, args)], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.splitlines()[-1])


def baseline_speed(base, baseline=None, rounds=2, repeats=3):
    """Full mode on amulet6, the baseline's code and this checkout's in turn.

    Without ``baseline``, this checkout's alone (for its CPU-time estimate).
    """
    codes = [("this", REPO_ROOT)]
    if baseline is not None:
        codes.insert(0, ("baseline", baseline))
    runs = {key: [] for key, _ in codes}
    for _ in range(rounds):
        for key, code in codes:
            runs[key].append(_probe(code, base / "amulet6", "--repeats", repeats))
            print(f"side by side {key:<8} "
                  f"{runs[key][-1]['images_per_s']:.1f} images/s, "
                  f"{runs[key][-1]['cpu_ms_per_image']:.1f} CPU ms/image", flush=True)
    return runs


def baseline_scores(folder, truth, baseline):
    """The baseline code's full-mode groups on ``folder``, scored."""
    found = _probe(baseline, folder, "--groups")
    scores = truth_set.pair_scores(found["files"], found["groups"], truth)
    scores.update(images_per_s=found["images_per_s"],
                  cpu_ms_per_image=found["cpu_ms_per_image"])
    return scores


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--groups", action="store_true")
    args = parser.parse_args(argv)
    result = groups(args.folder) if args.groups else probe(args.folder, args.repeats)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
