"""Benchmark ``hybridclf.inspect_dataset`` on amulet6 and somdej_fatherguay.

What it measures, with ``n_jobs=2``:

- Images per second of :func:`hybridclf.inspect_dataset` in quick mode
  (decode, integrity, quality, exact and perceptual-hash duplicates) and in
  full mode (plus CNN embeddings: embedding near duplicates and class
  outliers), on ``amulet6`` (173 photos, 224x224) and ``somdej_fatherguay``
  (36 photos, about 700x1000 to 1400x1900). Full mode is timed *cold* (the
  first call in the process: imports and the ONNX Runtime session; the
  network's ONNX graph comes from hybridclf's on-disk cache, exported on the
  machine's first run; measured on amulet6, the first data set) and *warm*
  (later calls). Quick and warm figures
  are medians of the repeats. The target: full mode at least 5x cleanvision's
  14 images/s, i.e. 70 images/s, on 2 cores.
- Precision and recall of the duplicate pairs on somdej_fatherguay, against
  its 24 known pairs (names ending ``(bw)`` or ``_1`` are copies of the name
  without), in both modes. Peers measured on the same data: cleanvision 0.3.7
  found 4 of 24 in 11 s, imagededup DHash 24 of 24 in 1.2 s.

It writes a section of ``docs/benchmarks.md`` (between the markers
``<!-- bench_inspect:start -->`` and ``<!-- bench_inspect:end -->``) and every
raw figure to ``benchmarks/results/bench_inspect.json``.

Run it from the repository root::

    .venv/bin/python benchmarks/bench_inspect.py          # 3 repeats
    .venv/bin/python benchmarks/bench_inspect.py --quick  # 1 repeat, temp folder

``--quick`` writes to a temporary folder instead of ``docs/``. The data is read
from ``../shared/data`` beside the checkout, or from ``$HYBRIDCLF_DATA``;
without it the script says so and exits with 0.
"""

import argparse
import datetime
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import _common
from _common import machine_info

from hybridclf import inspect_dataset

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCS_FILE = REPO_ROOT / "docs" / "benchmarks.md"
RESULTS_FILE = REPO_ROOT / "benchmarks" / "results" / "bench_inspect.json"
START_MARKER = "<!-- bench_inspect:start -->"
END_MARKER = "<!-- bench_inspect:end -->"
DATASETS = ("amulet6", "somdej_fatherguay")
N_JOBS = 2
CLEANVISION_IMAGES_PER_S = 14.0
TARGET_FACTOR = 5.0
PEERS = "cleanvision 0.3.7: 4 of 24 pairs in 11 s; imagededup DHash: 24 of 24 in 1.2 s"


def data_root():
    """The shared data folder, or None when it is absent."""
    base = os.environ.get("HYBRIDCLF_DATA")
    base = Path(base) if base else REPO_ROOT.parent / "shared" / "data"
    return base if all((base / name).is_dir() for name in DATASETS) else None


def somdej_key(path):
    """The original's name of a somdej file: copies drop '(bw)' and '_1'."""
    stem = os.path.splitext(os.path.basename(path))[0]
    return stem.replace("(bw)", "").removesuffix("_1")


def pair_scores(report):
    """Precision and recall of the duplicate pairs of a somdej report."""
    files = [f["file"] for f in report.files]
    groups = report.groups()
    truth, found = set(), set()
    for a, b in itertools.combinations(range(len(files)), 2):
        if somdej_key(files[a]) == somdej_key(files[b]):
            truth.add((a, b))
        if groups[a] == groups[b]:
            found.add((a, b))
    hits = len(truth & found)
    return {"true_pairs": len(truth), "found_pairs": len(found), "correct": hits,
            "precision": hits / len(found) if found else 1.0,
            "recall": hits / len(truth) if truth else 1.0}


def timed(root, quick):
    """One inspect_dataset call: (seconds, report)."""
    start = time.perf_counter()
    report = inspect_dataset(root, quick=quick, n_jobs=N_JOBS)
    return time.perf_counter() - start, report


def run(base, repeats):
    results = {}
    # the first full call pays the PyTorch import and the ONNX export once
    for mode in ("full_cold", "quick", "full_warm"):
        for name in DATASETS[:1] if mode == "full_cold" else DATASETS:
            root = base / name
            n_calls = 1 if mode == "full_cold" else repeats
            times = []
            for _ in range(n_calls):
                seconds, report = timed(root, quick=mode == "quick")
                times.append(seconds)
            seconds = statistics.median(times)
            entry = {"seconds": seconds, "times": times, "n_files": report.n_files,
                     "images_per_s": report.n_files / seconds,
                     "duplicate_groups": len(report.duplicate_groups),
                     "files_in_groups": sum(len(g["files"])
                                            for g in report.duplicate_groups),
                     "advice": report.advice["splitter"]}
            if name == "somdej_fatherguay":
                entry["pairs"] = pair_scores(report)
            results.setdefault(name, {})[mode] = entry
            print(f"{name:<18} {mode:<9} {entry['images_per_s']:7.1f} images/s "
                  f"({seconds:.2f} s, {entry['duplicate_groups']} groups)", flush=True)
    return results


def render_section(report):
    machine = report["machine"]
    target = CLEANVISION_IMAGES_PER_S * TARGET_FACTOR
    lines = [
        START_MARKER,
        "## Dataset inspection (`benchmarks/bench_inspect.py`)",
        "",
        f"- Date: {report['date']}",
        f"- Machine: {machine['nproc']} CPUs (`nproc`), {machine['cpu_model']}; "
        f"Python {machine['python']}, NumPy {machine['numpy']}, OpenCV "
        f"{machine['opencv']}; `n_jobs={N_JOBS}`.",
        f"- Command: `.venv/bin/python benchmarks/bench_inspect.py"
        f"{' --quick' if report['quick'] else ''}` ({report['repeats']} repeat(s)).",
        "",
        "### Images per second",
        "",
        f"Target: full mode >= {target:.0f} images/s ({TARGET_FACTOR:.0f}x "
        f"cleanvision's {CLEANVISION_IMAGES_PER_S:.0f}). *Cold*: the first full "
        "call of the process (amulet6 only): imports and the ONNX Runtime "
        "session, with the network's ONNX graph read from hybridclf's on-disk "
        "cache (the machine's very first run exports it, a few seconds more: "
        "22 images/s then); *warm*: later calls. Figures under the target are "
        "in bold. The target is set on amulet6's 224x224 photos; somdej's "
        "photos are 10 to 50 times larger and decoding dominates (cleanvision "
        "ran at 3.3 images/s there: 36 photos in 11 s).",
        "",
        "| data | files | quick | full, warm | full, cold | duplicate groups "
        "(quick / full) |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, modes in report["results"].items():
        def cell(mode, flag=False, modes=modes):
            if mode not in modes:
                return "n/a"
            value = modes[mode]["images_per_s"]
            text = f"{value:.1f}"
            return f"**{text}**" if flag and value < target else text

        lines.append(
            f"| {name} | {modes['quick']['n_files']} | {cell('quick')} | "
            f"{cell('full_warm', True)} | {cell('full_cold', True)} | "
            f"{modes['quick']['duplicate_groups']} / "
            f"{modes['full_warm']['duplicate_groups']} |"
        )
    lines += ["", "### Duplicate pairs on somdej_fatherguay", "",
              "| mode | true pairs | found pairs | correct | precision | recall |",
              "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for mode in ("quick", "full_warm"):
        p = report["results"]["somdej_fatherguay"][mode]["pairs"]
        lines.append(f"| {mode} | {p['true_pairs']} | {p['found_pairs']} | "
                     f"{p['correct']} | {p['precision']:.3f} | {p['recall']:.3f} |")
    lines += ["", f"Peers on the same data: {PEERS}.", END_MARKER]
    return "\n".join(lines) + "\n"


def write_section(path, section):
    _common.write_section(path, section, START_MARKER, END_MARKER)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="1 repeat; write to a temporary folder instead of "
                        "docs/benchmarks.md (for development)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="calls per warm mode (default: 3, or 1 with --quick)")
    args = parser.parse_args(argv)
    base = data_root()
    if base is None:
        print("bench_inspect: the shared data (amulet6, somdej_fatherguay) is absent"
              " (looked in $HYBRIDCLF_DATA, or ../shared/data beside the checkout);"
              " nothing measured, nothing written.")
        return 0
    repeats = args.repeats or (1 if args.quick else 3)
    if args.quick:
        out_dir = Path(tempfile.gettempdir()) / "hybridclf_bench_quick"
        docs_file = out_dir / "benchmarks.md"
        results_file = out_dir / "bench_inspect.json"
    else:
        docs_file, results_file = DOCS_FILE, RESULTS_FILE
    start = time.perf_counter()
    results = run(base, repeats)
    report = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="minutes"),
        "machine": machine_info(), "quick": args.quick, "repeats": repeats,
        "n_jobs": N_JOBS, "results": results,
        "references": {"cleanvision_images_per_s": CLEANVISION_IMAGES_PER_S,
                       "target_factor": TARGET_FACTOR, "peers": PEERS},
        "wall_s": time.perf_counter() - start,
    }
    results_file.parent.mkdir(parents=True, exist_ok=True)
    results_file.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    write_section(docs_file, render_section(report))
    print(f"Wrote {docs_file} and {results_file} ({report['wall_s']:.0f} s).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
