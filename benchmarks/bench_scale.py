"""Benchmark scale-out: feature extraction on a Dask cluster of 1 and 2 workers.

What it measures, on the photos of ``amulet6`` (224x224 JPEG), with
:func:`hybridclf.distributed.extract_features` (what ``hybridclf extract``
runs) and the same pipeline everywhere:

- **local path**: the partitions run one after the other in this process,
  on one thread (the image steps' ``n_jobs=1``, as on a worker);
- **1 worker** and **2 workers**: a ``LocalCluster`` of single-threaded
  worker processes on 127.0.0.1 (``--scheduler local:N``); each is warmed up
  on four partitions first (worker start and imports are not counted), then
  timed on all the files, written to a new folder. The three settings take
  turns, and each keeps its best run;
- **speed-up** of 2 workers over 1 (target >= 1.7x on 2 cores), and the
  **overhead** of the 1-worker cluster over the local path (target <= 10%),
  also given per task (sending the model, scheduling, Parquet write);
- an **estimate**, from the measured per-image cost on one worker, of the
  number of workers (one core each) needed for 10 million images per hour.

Without ``--quick`` the model is ``make_hybrid_pipeline()`` (the CNN, HOG, LBP
and colour at 224 px) fitted on amulet6, and the file list is the 173 amulet6
files 4 times (692 files, partitions of 32), best of 3 runs per setting.
``--quick`` uses HOG + colour at 128 px and partitions of 32; it still writes
its section, marked as a quick run.

It writes a section of ``docs/benchmarks.md`` (between
``<!-- bench_scale:start -->`` and ``<!-- bench_scale:end -->``) and the raw
figures to ``benchmarks/results/bench_scale.json`` (``--quick``: a temporary
folder). Run it from the repository root::

    .venv/bin/python benchmarks/bench_scale.py          # full
    .venv/bin/python benchmarks/bench_scale.py --quick  # small model, one pass

The data is read from ``../shared/data/amulet6`` beside the checkout, or
``$HYBRIDCLF_DATA/amulet6``; without it the script says so and exits with 0.
"""

import argparse
import datetime
import json
import logging
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import _common
from _common import find_dataset, machine_info

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCS_FILE = REPO_ROOT / "docs" / "benchmarks.md"
RESULTS_FILE = REPO_ROOT / "benchmarks" / "results" / "bench_scale.json"
START_MARKER = "<!-- bench_scale:start -->"
END_MARKER = "<!-- bench_scale:end -->"
COMMAND = ".venv/bin/python benchmarks/bench_scale.py"
TARGET_PER_HOUR = 10_000_000


def fit_model(folder, quick):
    """The benchmark's fitted pipeline, its name and the amulet6 files."""
    from hybridclf import load_image_folder, make_hybrid_pipeline

    paths, labels = load_image_folder(folder)
    if quick:
        pipe = make_hybrid_pipeline(features=["hog", "color"]).set_params(
            load__size=128)
        name = "HOG + colour, 128 px (--quick)"
    else:
        pipe = make_hybrid_pipeline()
        name = "make_hybrid_pipeline() defaults (CNN, HOG, LBP, colour, 224 px)"
    pipe.fit(paths, labels)
    # one thread per task everywhere: the local path is one worker's work
    pipe.set_params(**{k: 1 for k in pipe.get_params()
                       if k.endswith(("load__n_jobs", "extract__n_jobs"))})
    return pipe, name, list(paths)


def _cpu_seconds(client):
    """CPU time of this process, or the sum over the workers' processes."""
    if client is None:
        return time.process_time()
    return sum(client.run(time.process_time).values())


def timed_extract(pipe, files, workdir, partition_size, client):
    """(wall, CPU) seconds of extract_features on a fresh folder."""
    from hybridclf.distributed import extract_features

    out = Path(workdir) / "run"
    shutil.rmtree(out, ignore_errors=True)
    cpu = _cpu_seconds(client)
    start = time.perf_counter()
    result = extract_features(pipe, files, out, client=client,
                              partition_size=partition_size)
    seconds = time.perf_counter() - start
    cpu = _cpu_seconds(client) - cpu
    assert len(result.computed) == result.n_partitions and not result.errors
    shutil.rmtree(out)
    return seconds, cpu


def measure(pipe, files, partition_size, repeats):
    """Best times of the local path, 1 worker and 2 workers, runs interleaved.

    The three settings take turns, so that a burst of load from elsewhere on
    the machine does not favour one of them; each keeps its best run.
    """
    from hybridclf.distributed import dask_client

    workdir = tempfile.mkdtemp(prefix="hybridclf_bench_scale_")
    times = {"local": [], "1 worker": [], "2 workers": []}
    try:
        with dask_client("local:1") as one, dask_client("local:2") as two:
            two.wait_for_workers(2)
            clients = {"local": None, "1 worker": one, "2 workers": two}
            for client in clients.values():  # warm-up: imports, first use
                timed_extract(pipe, files[: 4 * partition_size], workdir,
                              partition_size, client)
            for _ in range(repeats):
                for name, client in clients.items():
                    times[name].append(timed_extract(pipe, files, workdir,
                                                     partition_size, client))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    best = {k: min(v) for k, v in times.items()}  # by wall time
    local, one, two = (best[k][0] for k in ("local", "1 worker", "2 workers"))
    n = len(files)
    n_tasks = math.ceil(n / partition_size)
    cost = one / n  # seconds per image on one worker, Dask's overhead included
    return {
        "n_files": n, "partition_size": partition_size, "n_tasks": n_tasks,
        "repeats": repeats,
        "seconds": {"local": local, "1 worker": one, "2 workers": two},
        "images_per_s": {"local": n / local, "1 worker": n / one,
                         "2 workers": n / two},
        "cpu_ms_per_image": {k: 1000 * v[1] / n for k, v in best.items()},
        "ms_per_image_local": 1000 * local / n,
        "speedup_2_over_1": one / two,
        "overhead_1_worker": one / local - 1,
        "overhead_ms_per_task": 1000 * (one - local) / n_tasks,
        "ms_per_image_1_worker": 1000 * cost,
        "per_worker_images_per_s_with_2": n / (two * 2),
        "workers_for_target": math.ceil(TARGET_PER_HOUR / 3600 * cost),
    }


def render_section(report):
    r, m = report["results"], report["machine"]
    s, ips, cpu = r["seconds"], r["images_per_s"], r["cpu_ms_per_image"]
    quick = report["quick"]
    lines = [
        START_MARKER,
        "## Scale-out on Dask (`bench_scale.py`)",
        "",
        *(["**Quick run** (`--quick`: small model); a full run "
           f"(`{COMMAND}`) replaces these figures.", ""] if quick else []),
        f"`extract_features` (what `hybridclf extract` runs) on {r['n_files']} "
        f"amulet6 files in partitions of {r['partition_size']} "
        f"({r['n_tasks']} tasks); model: {report['model']}; "
        f"best of {r['repeats']}; workers are single-threaded processes of a "
        "LocalCluster on 127.0.0.1, timed after a warm-up.",
        "",
        "| run | seconds | images/s | CPU ms per image |",
        "| --- | ---: | ---: | ---: |",
        *(f"| {label} | {s[k]:.2f} | {ips[k]:.1f} | {cpu[k]:.2f} |"
          for k, label in [("local", "local path (this process, 1 thread)"),
                           ("1 worker", "Dask, 1 worker"),
                           ("2 workers", "Dask, 2 workers")]),
        "",
        "CPU time is that of the worker processes (summed), or of this process "
        "for the local path; equal CPU per image with 1 and 2 workers means "
        "the work does not grow with the workers, and the speed-up is bounded "
        "by the free cores.",
        "",
        f"- Speed-up of 2 workers over 1: **{r['speedup_2_over_1']:.2f}x** "
        "(target >= 1.7x on these 2 cores).",
        f"- Overhead of a 1-worker cluster over the local path: "
        f"**{100 * r['overhead_1_worker']:+.1f}%** (target <= 10%), "
        f"{r['overhead_ms_per_task']:+.1f} ms per task.",
        f"- Measured cost per image: {r['ms_per_image_local']:.2f} ms on the "
        f"local path, {r['ms_per_image_1_worker']:.2f} ms on one worker (Dask "
        f"included); {r['per_worker_images_per_s_with_2']:.1f} images/s per "
        "worker with 2 busy workers.",
        f"- Estimate for 10 million images per hour ({TARGET_PER_HOUR / 3600:.0f} "
        f"images/s at {r['ms_per_image_1_worker']:.2f} ms per image on one "
        f"worker): about **{r['workers_for_target']} single-core workers**, "
        "if reading the files keeps up and scaling stays linear "
        "(partitions of 256 make about 11 tasks/s, far below what one Dask "
        "scheduler handles).",
        f"- Machine: {m['cpu_model']}, {m['nproc']} cores; measured "
        f"{report['date']}. Load average (1 min) before the runs "
        f"{report['load_before']:.1f}, after {report['load_after']:.1f}: above "
        "about 1, other processes took CPU time from the workers, and the "
        "2-worker figures understate the speed-up.",
        f"- Command: `{COMMAND}{' --quick' if quick else ''}`",
        END_MARKER,
    ]
    return "\n".join(lines) + "\n"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="small model (HOG + colour, 128 px)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    folder = find_dataset("amulet6")
    if folder is None:
        print("amulet6 not found (set HYBRIDCLF_DATA); nothing measured.")
        return 0
    logging.getLogger("distributed").setLevel(logging.WARNING)
    pipe, name, paths = fit_model(folder, args.quick)
    load_before = os.getloadavg()[0]
    # the same files listed 4 times: enough work to time 1 and 2 workers
    files = paths * 4
    results = measure(pipe, files, 32, 3)
    report = {"date": datetime.date.today().isoformat(), "quick": args.quick,
              "model": name, "results": results, "machine": machine_info(),
              "load_before": load_before, "load_after": os.getloadavg()[0]}
    results_file = (Path(tempfile.gettempdir()) / "hybridclf_bench_quick"
                    / "bench_scale.json") if args.quick else RESULTS_FILE
    results_file.parent.mkdir(parents=True, exist_ok=True)
    results_file.write_text(json.dumps(report, indent=2))
    _common.write_section(DOCS_FILE, render_section(report), START_MARKER,
                          END_MARKER)
    print(render_section(report))
    print(f"Written to {DOCS_FILE} and {results_file}")
    return 0


if __name__ == "__main__":
    os.chdir(REPO_ROOT)
    sys.exit(main())
