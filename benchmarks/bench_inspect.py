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
  without), in both modes, and the peers' (below) at their defaults;
  cleanvision 0.3.7 (not installed here) found 4 of 24 in 11 s.
- Duplicate groups against a ground truth made without the inspector
  (``_duplicate_truth.py``): amulet6 and somdej photos plus 3 copies of each
  made with OpenCV directly (blur, rotation, brightness and contrast,
  sharpening, hue shift, flip, JPEG re-encoding, 90% crop), written to a
  temporary folder that is deleted afterwards; amulet6's near-identical
  originals share an object as ``amulet6_groups.csv`` says. The copies use
  random seed 1; the inspector's thresholds were tuned on the copies of seeds
  0, 2 and 3, so the scores are held out. Pair precision,
  pair recall (also over the pairs of one photo and its copies alone, and
  over the pairs of different photos of one amulet) and
  group purity (the share of groups of two or more files
  that hold one object), in quick and full mode, for the average linkage
  (the default) and the old single linkage side by side (same process, same
  load: their speed ratio is fair on a shared machine), and for the peers
  (``_peers.py``): imagededup PHash and DHash (the ``bench`` extra) and
  fastdup (its own venv, ``make fastdup-venv``; run in a subprocess by
  ``_fastdup_pairs.py``), at their default thresholds and at the threshold
  tuned on these very copies (labelled so), or a line saying why a peer was
  not measured.
- How well measures the inspector does not use (SIFT and ORB inliers, the
  correlation of fine detail after alignment, the CNN embedding) tell the
  photo pairs of ``amulet6_groups.csv`` from different amulets of one mould
  (``_photo_pairs.py``).
- A combined pair verifier (SIFT inliers, their share, fine detail once
  aligned, the CNN embedding; ``_pair_verifier.py``) that merges the
  inspector's full-mode groups, its bars chosen on one half of amulet6's
  classes and scored on the other: held out, as the inspector does not use it.
- Full mode on amulet6 in its own process, twice (``_speed_probe.py``):
  images per second, CPU time per image, CPU time by phase and from those an
  estimate for a quiet 2-core machine (one core to two), which other jobs on
  the machine hardly move. With ``--baseline DIR``, another version's
  ``hybridclf`` package (in ``DIR``) runs in turn with this checkout, and
  its full-mode groups are scored on the same copies.

It writes a section of ``docs/benchmarks.md`` (between the markers
``<!-- bench_inspect:start -->`` and ``<!-- bench_inspect:end -->``) and every
raw figure to ``benchmarks/results/bench_inspect.json``.

Run it from the repository root::

    .venv/bin/python benchmarks/bench_inspect.py          # 3 repeats
    .venv/bin/python benchmarks/bench_inspect.py --quick  # 1 repeat, temp folder
    .venv/bin/python benchmarks/bench_inspect.py --peers-only  # imagededup, fastdup
    git archive COMMIT hybridclf | tar -x -C /tmp/base    # a baseline
    .venv/bin/python benchmarks/bench_inspect.py --baseline /tmp/base \
        --baseline-label "main at COMMIT"

``--peers-only`` measures only the peers and writes them into the figures of
the last full run (``benchmarks/results/bench_inspect.json``), keeping the
inspector's rows. ``--quick`` writes to a temporary folder instead of
``docs/``. The data is read from ``../shared/data`` beside the checkout, or
from ``$HYBRIDCLF_DATA``; without it the script says so and exits with 0.
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
import _duplicate_truth as truth_set
import _pair_verifier as pair_verifier
from _common import machine_info
from _inspect_tables import (
    copies_lines,
    cpu_estimate,
    side_by_side_lines,
    somdej_peer_lines,
)
from _peers import peer_rows, somdej_peer_pairs
from _photo_pairs import photo_pair_separation
from _speed_probe import baseline_scores, baseline_speed

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
# quoted from an earlier measurement: cleanvision is not installed here
PEERS = "cleanvision 0.3.7: 4 of 24 pairs in 11 s"


def data_root():
    """The shared data folder, or None when it is absent."""
    base = os.environ.get("HYBRIDCLF_DATA")
    base = Path(base) if base else REPO_ROOT.parent / "shared" / "data"
    return base if all((base / name).is_dir() for name in DATASETS) else None


def pair_scores(report):
    """Precision and recall of the duplicate pairs of a somdej report."""
    files = [f["file"] for f in report.files]
    return truth_set.pair_scores(files, report.groups(),
                                 {f: truth_set.somdej_key(f) for f in files})


def timed(root, quick):
    """One inspect_dataset call: (seconds, CPU seconds of every thread, report)."""
    start, cpu = time.perf_counter(), time.process_time()
    report = inspect_dataset(root, quick=quick, n_jobs=N_JOBS)
    return time.perf_counter() - start, time.process_time() - cpu, report


def run(base, repeats):
    results = {}
    # the first full call pays the PyTorch import and the ONNX export once
    for mode in ("full_cold", "quick", "full_warm"):
        for name in DATASETS[:1] if mode == "full_cold" else DATASETS:
            root = base / name
            n_calls = 1 if mode == "full_cold" else repeats
            times, cpus = [], []
            for _ in range(n_calls):
                seconds, cpu, report = timed(root, quick=mode == "quick")
                times.append(seconds)
                cpus.append(cpu)
            seconds = statistics.median(times)
            entry = {"seconds": seconds, "times": times, "n_files": report.n_files,
                     "images_per_s": report.n_files / seconds,
                     "cpu_ms_per_image": 1000 * statistics.median(cpus)
                     / report.n_files,
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


def _score(report, truth):
    return truth_set.pair_scores([f["file"] for f in report.files],
                                 report.groups(), truth)


def _rule_of(name, rules):
    """Which verifier rule a file of data set ``name`` gets (held out)."""
    if name == "amulet6":
        return lambda path: rules["by_class"][Path(path).parent.name]
    return lambda path: rules["somdej"]


def verifier_rows(entry, name, report, truth, rules, full_s, full_cpu):
    """The inspector's full-mode groups merged by the combined verifier, scored."""
    files = [f["file"] for f in report.files]
    groups = report.groups()
    start, cpu = time.perf_counter(), time.process_time()
    links, n_checked = pair_verifier.verified_links(files, groups,
                                                    _rule_of(name, rules))
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    entry["verifier"] = {"checked_pairs": n_checked, "group_links": len(links),
                         "seconds": seconds}
    for share, key in ((0.0, "full_verified_any"), (0.25, "full_verified_quarter")):
        scores = truth_set.pair_scores(
            files, pair_verifier.merged_groups(groups, links, share), truth)
        scores["images_per_s"] = len(files) / (full_s + seconds)
        scores["cpu_ms_per_image"] = 1000 * (full_cpu + cpu) / len(files)
        entry[key] = scores
        print(f"copies {name:<18} verifier {share:.2f} P {scores['precision']:.3f} "
              f"R {scores['recall']:.3f} purity {scores['purity']:.3f}", flush=True)


def copy_sets(base):
    """``(name, folder, truth)`` of amulet6's and somdej's OpenCV copies.

    Each set is written (seed ``EVALUATION_SEED``) into a temporary folder
    that is deleted once the caller moves on to the next set.
    """
    for name, objects in (("amulet6", truth_set.amulet6_objects),
                          ("somdej_fatherguay", truth_set.somdej_objects)):
        with tempfile.TemporaryDirectory(prefix="hybridclf_bench_copies_") as tmp:
            folder = Path(tmp) / name
            truth = truth_set.write_copies(*objects(base), folder,
                                           seed=truth_set.EVALUATION_SEED)
            yield name, folder, truth


def copies_run(base, repeats, baseline=None):
    """Scores and speed on the OpenCV copies of amulet6 and somdej."""
    results = {}
    rules = pair_verifier.cross_fitted_rules(base)
    for name, folder, truth in copy_sets(base):
        entry = results.setdefault(name, {"n_files": len(truth)})
        for mode, linkage in itertools.product(("quick", "full"),
                                               ("single", "average")):
            times, cpus = [], []
            for _ in range(repeats):
                start, cpu = time.perf_counter(), time.process_time()
                report = inspect_dataset(folder, quick=mode == "quick",
                                         n_jobs=N_JOBS, linkage=linkage)
                times.append(time.perf_counter() - start)
                cpus.append(time.process_time() - cpu)
            scores = _score(report, truth)
            scores["images_per_s"] = report.n_files / statistics.median(times)
            scores["cpu_ms_per_image"] = (1000 * statistics.median(cpus)
                                          / report.n_files)
            entry[f"{mode}_{linkage}"] = scores
            if (mode, linkage) == ("full", "average"):
                full = (report, statistics.median(times), statistics.median(cpus))
            print(f"copies {name:<18} {mode:<5} {linkage:<7} "
                  f"P {scores['precision']:.3f} R {scores['recall']:.3f} "
                  f"(copies {scores['copy_recall']:.3f}, "
                  f"photos {scores['photo_recall']:.3f}) "
                  f"purity {scores['purity']:.3f} "
                  f"{scores['images_per_s']:.1f} images/s", flush=True)
        verifier_rows(entry, name, full[0], truth, rules, *full[1:])
        if baseline is not None:
            entry["baseline_full_average"] = baseline_scores(folder, truth,
                                                             baseline)
        entry.update(peer_rows(folder, truth))
    results["amulet6"]["photo_pairs"] = photo_pair_separation(base)
    results["amulet6"]["verifier_rules"] = rules
    return results


def _load_line(report, machine):
    """A warning when other jobs shared the CPUs: the speeds are then low."""
    load = report.get("load_average")
    if load is None or load < 0.5 * machine["nproc"] + 1:
        return []
    return [f"- Load: the 1-minute load average was {load:.1f} on "
            f"{machine['nproc']} CPUs when the run started: other jobs shared "
            "the machine, so the speeds below are lower than on a quiet one "
            "(compare only figures of one run)."]


def _peers_run_line(report):
    """When the peers were measured apart (``--peers-only``), and under what load."""
    run = report.get("peers_run")
    if not run:
        return []
    load = run.get("load_average")
    return [f"- Peers (imagededup, fastdup) measured apart on {run['date']} by "
            "`.venv/bin/python benchmarks/bench_inspect.py --peers-only`"
            + (f" (1-minute load average {load:.1f} at the start)"
               if load is not None else "")
            + "; the other rows come from the run above, so compare the "
            "peers' CPU ms/image with the inspector's, not their images/s."]


def _baseline_args(report):
    if not report.get("baseline_label"):
        return ""
    return (f" --baseline {report.get('baseline_dir', '/tmp/base')} "
            f"--baseline-label '{report['baseline_label']}'")


def _estimate_cell(estimate, target):
    """'low to high' images/s, each under the target in bold; n/a without."""
    if estimate is None:
        return "n/a"
    return " to ".join(f"**{v:.0f}**" if v < target else f"{v:.0f}"
                       for v in estimate)


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
        f"{' --quick' if report['quick'] else ''}"
        f"{_baseline_args(report)}` ({report['repeats']} repeat(s)).",
        *_load_line(report, machine),
        *_peers_run_line(report),
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
        "ran at 3.3 images/s there: 36 photos in 11 s). The wall-time figures "
        "depend on the other jobs on the machine; *full, estimate* does not "
        "much: the images/s a quiet 2-core machine reaches by the CPU time of "
        "each phase, from one core (lower bound) to the threaded phases on "
        "two (upper bound; see the CPU time by phase below).",
        "",
        "| data | files | quick | full, warm | full, cold | full, warm: CPU "
        "ms/image | full, estimate (one / two cores) | duplicate groups "
        "(quick / full) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    estimate = cpu_estimate(report)
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
            f"{modes['full_warm'].get('cpu_ms_per_image', float('nan')):.1f} | "
            f"{_estimate_cell(estimate if name == 'amulet6' else None, target)} | "
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
    lines += somdej_peer_lines(report.get("somdej_peers") or {})
    lines += ["", "Below the inspector's rows, the peers (`_peers.py`) at their "
              "defaults: imagededup's pairs joined into groups; fastdup's pairs "
              "joined, and its connected components. Quoted from an earlier "
              f"run: {PEERS}."]
    lines += side_by_side_lines(report)
    if report.get("copies"):
        lines += copies_lines(report["copies"])
    lines.append(END_MARKER)
    return "\n".join(lines) + "\n"


def write_section(path, section):
    _common.write_section(path, section, START_MARKER, END_MARKER)


def peers_only(base):
    """The peers alone, written into the last full run's figures."""
    if not RESULTS_FILE.exists():
        print(f"bench_inspect --peers-only: {RESULTS_FILE} is absent; run "
              "bench_inspect.py without it first.")
        return 1
    report = json.loads(RESULTS_FILE.read_text(encoding="utf-8"))
    if not report.get("copies"):
        print("bench_inspect --peers-only: the last run had no copies (--no-copies)")
        return 1
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    start = time.perf_counter()
    for name, folder, truth in copy_sets(base):
        entry = report["copies"][name]
        for key in [k for k in entry if k.startswith(("imagededup", "fastdup"))]:
            del entry[key]
        entry.update(peer_rows(folder, truth))
    report["somdej_peers"] = somdej_peer_pairs(base / "somdej_fatherguay")
    report["peers_run"] = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="minutes"),
        "load_average": load, "wall_s": time.perf_counter() - start}
    RESULTS_FILE.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    write_section(DOCS_FILE, render_section(report))
    print(f"Wrote the peers into {DOCS_FILE} and {RESULTS_FILE}.")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="1 repeat; write to a temporary folder instead of "
                        "docs/benchmarks.md (for development)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="calls per warm mode (default: 3, or 1 with --quick)")
    parser.add_argument("--no-copies", action="store_true",
                        help="skip the ground truth of OpenCV copies")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="a folder holding another version's hybridclf "
                        "package (e.g. `git archive COMMIT hybridclf | tar -x -C "
                        "/tmp/base`): timed side by side with this checkout, "
                        "and scored on the same copies")
    parser.add_argument("--baseline-label", default=None,
                        help="what the baseline is, for the docs (e.g. the "
                        "commit)")
    parser.add_argument("--peers-only", action="store_true",
                        help="measure only the peers (imagededup, fastdup) on "
                        "the same copies and somdej photos, and write them into "
                        "the figures of the last full run "
                        "(benchmarks/results/bench_inspect.json)")
    args = parser.parse_args(argv)
    base = data_root()
    if base is None:
        print("bench_inspect: the shared data (amulet6, somdej_fatherguay) is absent"
              " (looked in $HYBRIDCLF_DATA, or ../shared/data beside the checkout);"
              " nothing measured, nothing written.")
        return 0
    if args.peers_only:
        return peers_only(base)
    repeats = args.repeats or (1 if args.quick else 3)
    if args.quick:
        out_dir = Path(tempfile.gettempdir()) / "hybridclf_bench_quick"
        docs_file = out_dir / "benchmarks.md"
        results_file = out_dir / "bench_inspect.json"
    else:
        docs_file, results_file = DOCS_FILE, RESULTS_FILE
    start = time.perf_counter()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    results = run(base, repeats)
    # the CPU-time estimate of full mode, with the baseline's when given
    side_by_side = baseline_speed(base, args.baseline)
    copies = None if args.no_copies else copies_run(base, 1, args.baseline)
    somdej_peers = somdej_peer_pairs(base / "somdej_fatherguay")
    report = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="minutes"),
        "machine": machine_info(), "quick": args.quick, "repeats": repeats,
        "n_jobs": N_JOBS, "results": results, "copies": copies,
        "side_by_side": side_by_side, "somdej_peers": somdej_peers,
        "baseline_label": (args.baseline_label or str(args.baseline)
                           if args.baseline is not None else None),
        "baseline_dir": None if args.baseline is None else str(args.baseline),
        "load_average": load,
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
