"""Where a warm retraining's time goes: ``hybridclf train`` after adding 20 photos.

Sets up what ``bench_train.py --retrain`` measures, in a temporary folder:
amulet6 with 20 photos set aside (the same seed), a previous training that
fills a feature cache, the 20 photos added back; then runs the warm
``hybridclf train`` (``--n-jobs 2``) in a new process, with this checkout's
hybridclf, under one profiler:

- ``--mode phases`` (the default): the wall and CPU time of each phase of the
  training, on the thread that runs it, then the CPU time of every thread
  the command started (the CNN passes of the novelty index's views, the
  index's threads, the feature and duplicate-search workers, the skops
  import) and of the process;
- ``--mode cprofile``: :mod:`cProfile` of the command (its main thread) into
  ``--output FILE``, to read with :mod:`pstats`;
- ``--mode importtime``: ``python -X importtime``, the 25 slowest imports.

Each run starts from a copy of the previous training's cache, so runs
repeat (``--repeat N``). CPU times move less with the machine's other load
than wall times; under load, compare two versions only side by side
(``bench_train.py --retrain --baseline DIR``). Run it from the repository
root::

    .venv/bin/python benchmarks/profile_retrain.py
    .venv/bin/python benchmarks/profile_retrain.py --mode cprofile --output warm.prof
"""

import argparse
import functools
import importlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from _common import REPO_ROOT, find_dataset

N_NEW = 20

#: (module, function) timed by ``--mode phases``, in the order they run
PHASES = [
    ("hybridclf.training._workflow", "find_training_groups"),
    ("hybridclf.training._workflow", "train_model"),
    ("hybridclf.training._train", "_split"),
    ("hybridclf.training._train", "SharedFeatures"),
    ("hybridclf.training._train", "compute_folds"),
    ("hybridclf.training._train", "_out_of_fold"),
    ("hybridclf.training._train", "_fit_final"),
    ("hybridclf.training._train", "_fit_cascade"),
    ("hybridclf.training._train", "_novelty_phase"),
    ("hybridclf.training._final_phases", "novelty_index"),
    ("hybridclf.training._train", "_score_test"),
    ("hybridclf.training._novelty_views", "embed_views"),
    ("hybridclf.persistence", "save_model"),
    ("hybridclf.persistence._formats", "_skops_io"),
]


def prepare(source, workdir, seed=0):
    """The data folder with every photo, and the cache of a training without 20."""
    data, aside = workdir / "data", workdir / "aside"
    shutil.copytree(source, data)
    files = sorted(data.glob("*/*"))
    # the photos bench_train.py --retrain adds (_retrain.measure_retrain)
    for index in np.random.default_rng(seed).choice(len(files), N_NEW,
                                                    replace=False):
        path = files[index]
        (aside / path.parent.name).mkdir(parents=True, exist_ok=True)
        path.rename(aside / path.parent.name / path.name)
    subprocess.run(_train_argv(data, workdir / "model_previous",
                               workdir / "cache_previous", "-m", "hybridclf"),
                   check=True, capture_output=True, env=_env(), cwd=REPO_ROOT)
    shutil.copytree(aside, data, dirs_exist_ok=True)
    return data


def _train_argv(data, model, cache, *head):
    return [sys.executable, *head, "train", "--data-dir", str(data),
            "--output-dir", str(model), "--cache-dir", str(cache),
            "--n-jobs", "2"]


def _env():
    """This checkout's hybridclf first (not another one the venv installs)."""
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT)}


def warm_run(workdir, data, mode, output=None):
    """One warm ``hybridclf train``; returns its output (stderr for phases)."""
    cache = workdir / "cache_warm"
    shutil.rmtree(cache, ignore_errors=True)
    shutil.copytree(workdir / "cache_previous", cache)
    model = workdir / "model_warm"
    head = {"phases": [str(Path(__file__).resolve()), "--child"],
            "cprofile": ["-m", "cProfile", "-o", str(output), "-m", "hybridclf"],
            "importtime": ["-X", "importtime", "-m", "hybridclf"]}[mode]
    done = subprocess.run(_train_argv(data, model, cache, *head), text=True,
                          capture_output=True, env=_env(), cwd=REPO_ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"the warm training failed:\n{done.stderr[-3000:]}")
    return done.stderr


def _importtime(stderr, n=25):
    rows = []
    for line in stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if match:
            rows.append((int(match[2]), int(match[1]), len(match[3]), match[4]))
    total = sum(cum for cum, _, depth, _ in rows if depth == 1)
    lines = [f"imports: {total / 1e6:.2f} s (top-level, cumulative)",
             "cumulative ms | self ms | module"]
    lines += [f"{cum / 1e3:10.1f} | {own / 1e3:7.1f} | {' ' * (depth - 1)}{name}"
              for cum, own, depth, name in sorted(rows, reverse=True)[:n]]
    return "\n".join(lines)


# -- the child process of --mode phases ----------------------------------------
def _child(argv):
    """Run ``hybridclf`` with the phases timed; print them to stderr at exit."""
    started = time.perf_counter()
    rows, threads = [], []

    def timed(module, name):
        module = importlib.import_module(module)
        original = getattr(module, name)

        @functools.wraps(original)
        def wrapper(*args, **kwargs):
            wall, cpu = time.perf_counter(), time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                rows.append((wall - started, name, threading.current_thread().name,
                             time.perf_counter() - wall, time.thread_time() - cpu))

        setattr(module, name, wrapper)

    run = threading.Thread.run

    def counted(thread):
        try:
            run(thread)
        finally:
            threads.append((thread.name, thread.native_id, time.thread_time()))

    threading.Thread.run = counted
    import concurrent.futures.thread as pool

    worker = pool._worker

    def counted_worker(*args, **kwargs):
        try:
            worker(*args, **kwargs)
        finally:
            thread = threading.current_thread()
            threads.append((thread.name, thread.native_id, time.thread_time()))

    pool._worker = counted_worker
    from hybridclf.cli import main
    from hybridclf.cli._common import command_imports

    wall, cpu = time.perf_counter(), time.thread_time()
    with command_imports():  # what the command imports before it works
        importlib.import_module("hybridclf.pipeline")
        importlib.import_module("hybridclf.training")
    rows.append((wall - started, "imports (hybridclf.pipeline, .training)",
                 "MainThread", time.perf_counter() - wall,
                 time.thread_time() - cpu))
    for module, name in PHASES:
        timed(module, name)
    sys.argv = ["hybridclf", *argv]
    code = main()
    out = sys.stderr
    out.write("\nphase | thread | starts at | wall s | CPU s (its thread)\n")
    for start, name, thread, wall, cpu in sorted(rows):
        out.write(f"{name:40s} {thread:20s} {start:6.2f} {wall:6.2f} {cpu:6.2f}\n")
    out.write("\nthread (Python threads; ONNX Runtime's own are counted in the "
              "process only) | id | CPU s\n")
    for name, ident, cpu in sorted(threads, key=lambda row: -row[2]):
        out.write(f"{name:40s} {ident:8d} {cpu:6.2f}\n")
    times = os.times()
    out.write(f"{'MainThread':40s} {threading.main_thread().native_id:8d} "
              f"{time.thread_time():6.2f}\n")
    out.write(f"process: wall {time.perf_counter() - started:.2f} s, CPU "
              f"{times.user + times.system:.2f} s\n")
    return code


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["phases", "cprofile", "importtime"],
                        default="phases")
    parser.add_argument("--output", default="retrain_warm.prof", metavar="FILE",
                        help="the cProfile file of --mode cprofile")
    parser.add_argument("--repeat", type=int, default=1, metavar="N",
                        help="warm runs, each from the same cache")
    if argv is None and sys.argv[1:2] == ["--child"]:
        return _child(sys.argv[2:])
    args = parser.parse_args(argv)
    source = find_dataset()
    if source is None:
        print("profile_retrain: the amulet6 data folder is absent; nothing run.")
        return 0
    workdir = Path(tempfile.mkdtemp(prefix="profile_retrain_"))
    try:
        print("A previous training fills the cache ...", flush=True)
        data = prepare(source, workdir)
        for i in range(args.repeat):
            print(f"Warm training {i + 1}/{args.repeat} ({args.mode}) ...",
                  flush=True)
            stderr = warm_run(workdir, data, args.mode, Path(args.output).resolve())
            if args.mode == "phases":
                print(stderr[stderr.index("\nphase | "):])
            elif args.mode == "importtime":
                print(_importtime(stderr))
            else:
                print(f"Wrote {args.output}; read it with: python -c \"import "
                      f"pstats; pstats.Stats('{args.output}').sort_stats("
                      "'cumulative').print_stats(40)\"")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
