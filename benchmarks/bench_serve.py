"""Benchmark the prediction service: latency, throughput, errors, memory.

What it measures, over loopback only (127.0.0.1), for the default model (a
cascade, ``make_hybrid_pipeline()``) and the full model
(``make_hybrid_pipeline(cascade=False)``, every block on every photo) in the
same run:

- ``POST /predict`` with one photo per request (base64 JSON), sequentially
  from one client and from 8 concurrent clients, each for a bounded time:
  p50/p95/p99 latency, requests per second, error count (must be 0). The
  photos are amulet6's held-out part (the training split's test part,
  grouped by ``amulet6_groups.csv``), sent in turn: a cascade answers early
  only the photos it is sure of, so one photo sent again and again would
  say nothing about it;
- the two servers run side by side and take turns (A B B A, half the time
  each), so both see the same load of a shared machine; compare them by the
  ratios;
- in-process :func:`hybridclf.prediction.predict_open_set` on the same
  photos, to give the server's overhead (server p50 / in-process median);
- each server's resident memory after start-up, at the end of its load and
  once it has been idle for 1 s.

The servers are ``hybridclf serve`` in subprocesses (one worker each); the
models are trained as ``hybridclf train --groups amulet6_groups.csv
[--no-cascade]`` trains them (open-set checks included), in a temporary
folder.

It writes a section of ``docs/benchmarks.md`` (between the markers
``<!-- bench_serve:start -->`` and ``<!-- bench_serve:end -->``) and the raw
figures to ``benchmarks/results/bench_serve.json``.

Run it from the repository root::

    .venv/bin/python benchmarks/bench_serve.py          # 30 s per phase
    .venv/bin/python benchmarks/bench_serve.py --quick  # small models, 3 s

``--quick`` trains HOG, LBP and colour at 64 px (the cascade: HOG and colour
first) and writes to a temporary folder instead of ``docs/``. The data is read
from ``../shared/data/amulet6`` beside the checkout, or
``$HYBRIDCLF_DATA/amulet6``; without it the script says so and exits with 0.
"""

import argparse
import base64
import datetime
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import _common
import numpy as np
from _common import find_dataset, machine_info

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCS_FILE = REPO_ROOT / "docs" / "benchmarks.md"
RESULTS_FILE = REPO_ROOT / "benchmarks" / "results" / "bench_serve.json"
START_MARKER = "<!-- bench_serve:start -->"
END_MARKER = "<!-- bench_serve:end -->"
COMMAND = ".venv/bin/python benchmarks/bench_serve.py"
QUICK_COMMAND = COMMAND + " --quick"
CONCURRENCY = 8
JSON_HEADERS = {"Content-Type": "application/json"}


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def _cpu_s(pid):
    """CPU seconds (user + system, all threads) of a process so far."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rpartition(")")[2].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _percentiles(values):
    if not values:
        return {"p50": None, "p95": None, "p99": None}
    ordered = sorted(values)

    def pick(q):
        return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]

    return {"p50": pick(0.50), "p95": pick(0.95), "p99": pick(0.99)}


#: The models served, by name: the full model and the default cascade.
MODELS = {
    "full, cascade=False (cnn, hog, lbp, color)": False,
    "default: cascade (hog, lbp, color first)": True,
}


def train_models(folder, out, quick):
    """Train and save both models on the same split; their folders, held-out photos.

    Returns ``[(name, model_dir), ...]`` and the held-out photos' paths.
    """
    from hybridclf.training import train_folder

    csv = folder.parent / "amulet6_groups.csv"
    models, held_out = [], None
    for i, (name, cascade) in enumerate(MODELS.items()):
        model_dir = Path(out) / f"model{i}"
        if quick:
            held_out = _train_quick(folder, model_dir, cascade)
        else:
            training = train_folder(
                folder, model_dir, groups_csv=str(csv) if csv.exists() else None,
                cascade=cascade, feature_cache=False, random_state=0)
            from hybridclf import load_image_folder

            paths = np.asarray(load_image_folder(folder)[0])
            held_out = paths[training.result.test_indices]
        if quick:  # the blocks are others than the names say
            name = (f"{name.split(' (')[0]} (--quick: hog, lbp, color at 64 px"
                    + (", hog and color first)" if cascade else ")"))
        models.append((name, model_dir))
    return models, list(held_out)


def _train_quick(folder, model_dir, cascade):
    """HOG, LBP and colour at 64 px (the cascade: HOG and colour first)."""
    from hybridclf import load_image_folder, make_hybrid_pipeline, save_model

    paths, labels = load_image_folder(folder)
    paths, labels = np.asarray(paths), np.asarray(labels)
    train = np.arange(len(paths)) % 5 != 0
    pipe = make_hybrid_pipeline(features=["hog", "lbp", "color"], cascade=cascade)
    pipe.set_params(load__size=64)
    if cascade:
        pipe.set_params(cheap_features=("hog", "color"))
    save_model(pipe.fit(paths[train], labels[train]), model_dir)
    return paths[~train]


def in_process(model_dir, photos, repeats):
    """Median ms of predict_open_set per photo in this process; early share.

    With the model's own open-set checks (``read_open_set``), as served.
    """
    from hybridclf import load_model
    from hybridclf.persistence import read_model_info
    from hybridclf.pipeline import set_n_jobs
    from hybridclf.prediction import predict_open_set, read_open_set

    pipe = load_model(model_dir)
    set_n_jobs(pipe, None)  # as the service does: every core per prediction
    options = read_open_set(read_model_info(model_dir), model_dir)
    options.pop("proba_threshold")
    predict_open_set(pipe, photos[:1], **options)
    times = []
    for _ in range(repeats):
        for data in photos:
            start = time.perf_counter()
            predict_open_set(pipe, [data], **options)
            times.append((time.perf_counter() - start) * 1000.0)
    early = (float(pipe.predict_stages(photos)[2].mean())
             if hasattr(pipe, "predict_stages") else 0.0)
    return statistics.median(times), early


def load_phase(url, bodies, clients, duration):
    """Send /predict for ``duration`` s from ``clients`` threads; latencies.

    Each client sends ``bodies`` in turn, from its own starting point. The
    bodies are JSON requests encoded once: like a load tool (wrk, hey), the
    client spends no CPU re-encoding them, which on 2 cores the server
    would feel.
    """
    import httpx

    latencies, errors, lock = [], [0], threading.Lock()
    stop = time.monotonic() + duration

    def worker(k):
        i = k * len(bodies) // clients
        with httpx.Client(base_url=url, timeout=30) as http:
            while time.monotonic() < stop:
                body, i = bodies[i % len(bodies)], i + 1
                start = time.perf_counter()
                try:
                    r = http.post("/predict", content=body, headers=JSON_HEADERS)
                    ok = r.status_code == 200 and r.json().get("success")
                except httpx.HTTPError:
                    ok = False
                elapsed = (time.perf_counter() - start) * 1000.0
                with lock:
                    if ok:
                        latencies.append(elapsed)
                    else:
                        errors[0] += 1

    start = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=duration + 60)
    return {"latencies": latencies, "errors": errors[0],
            "seconds": time.perf_counter() - start}


def _summary(parts, clients):
    """Percentiles and throughput of a model's phases (A B B A halves)."""
    latencies = [v for p in parts for v in p["latencies"]]
    seconds = sum(p["seconds"] for p in parts)
    return {"clients": clients, "requests": len(latencies),
            "errors": sum(p["errors"] for p in parts),
            "requests_per_s": len(latencies) / seconds,
            # the server's own CPU time per answer: less sensitive to other
            # jobs than latency (they slow it down, they do not add to it)
            "server_cpu_ms": 1000.0 * sum(p["cpu_s"] for p in parts)
            / max(len(latencies), 1),
            **{f"{k}_ms": v for k, v in _percentiles(latencies).items()}}


def server_counters(url):
    """Sums and counts of the server's own histograms, from /metrics.

    ``batch_images``: model calls and images in them; ``request_s`` and
    ``model_s``: /predict requests (from the first byte read to the last
    written) and their model calls, in seconds.
    """
    import httpx

    wanted = {
        "batch_images": ("hybridclf_batch_images", ""),
        "request_s": ("hybridclf_request_latency_seconds", 'endpoint="/predict"'),
        "model_s": ("hybridclf_inference_seconds", 'endpoint="/predict"'),
    }
    values = {f"{k}_{part}": 0.0 for k in wanted for part in ("count", "sum")}
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        for key, (metric, label) in wanted.items():
            for part in ("count", "sum"):
                if line.startswith(f"{metric}_{part}") and label in line:
                    values[f"{key}_{part}"] = float(line.split()[-1])
    return values


def _mean_ms(before, after, key):
    n = after[f"{key}_count"] - before[f"{key}_count"]
    return 1000.0 * (after[f"{key}_sum"] - before[f"{key}_sum"]) / n if n else None


def start_server(model_dir, port):
    """``hybridclf serve`` in a subprocess; wait (bounded) until /ready."""
    import httpx

    proc = subprocess.Popen(
        [sys.executable, "-m", "hybridclf", "serve", "--model-dir",
         str(model_dir), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the server exited: "
                               + proc.stderr.read().decode(errors="replace"))
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready",
                         timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the server was not ready within 180 s")


def _time_split(result):
    seq = result["sequential"]
    http = seq["server_mean_ms"] - seq["model_mean_ms"]
    return (f"{result['model'].split(' (')[0]}: {seq['model_mean_ms']:.1f} ms in the "
            f"model call, {http:.1f} ms in HTTP, JSON and the hand-over to the "
            "model's thread")


def _ratio_lines(report):
    """The cascade's figures over the full model's, phase by phase."""
    if len(report["models"]) != 2:
        return []
    full, casc = report["models"]
    lines = ["", "Cascade / full, measured side by side (below 1: the cascade is "
             "faster or lighter; for req/s above 1 is better):", "",
             "| clients | p50 | p95 | p99 | req/s | server CPU per request |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for phase, name in (("sequential", "1"), ("concurrent", str(CONCURRENCY))):
        f, c = full[phase], casc[phase]
        lines.append(f"| {name} | " + " | ".join(
            f"{c[k] / f[k]:.2f}" for k in ("p50_ms", "p95_ms", "p99_ms",
                                           "requests_per_s", "server_cpu_ms"))
            + " |")
    return lines


def render_section(report):
    m = report["machine"]
    lines = [
        START_MARKER,
        "## Prediction service (`bench_serve.py`)",
        "",
        f"`POST /predict` of one photo per request over loopback: the "
        f"{report['n_photos']} held-out amulet6 photos (the test part of the "
        "grouped training split) in turn, "
        f"{report['duration_s']:.0f} s per phase and model; `hybridclf serve` "
        "with one worker and its default threads (every core per prediction). "
        "Both servers ran side by side and took turns (A B B A), so that both "
        "saw the same load: the load average was "
        f"{report['load']} at the start, **the 2 cores were shared with other "
        "jobs**: absolute times are inflated, compare the models by the ratios. "
        "*In-process*: median of `predict_open_set` (the model's own open-set "
        "checks) on the same photos in the benchmark's process; *overhead* = "
        "sequential p50 / in-process. *RSS*: resident memory of the server "
        "after start-up, at the end of its load, and after 1 s idle.",
        "",
        "| model | clients | requests | req/s | p50 ms | p95 ms | p99 ms | errors "
        "| server CPU ms per request | in-process ms | overhead "
        "| RSS MB (start / end / idle) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| --- |",
    ]
    for r in report["models"]:
        for name, phase in (("1 (sequential)", r["sequential"]),
                            (f"{CONCURRENCY} concurrent", r["concurrent"])):
            first = name.startswith("1")
            lines.append(
                f"| {r['model'] if first else ''} | {name} | {phase['requests']} | "
                f"{phase['requests_per_s']:.1f} | {phase['p50_ms']:.1f} | "
                f"{phase['p95_ms']:.1f} | {phase['p99_ms']:.1f} | "
                f"{phase['errors']} | {phase['server_cpu_ms']:.1f} | "
                + (f"{r['in_process_ms']:.1f} | {r['overhead_ratio']:.2f}x | "
                   f"{r['rss_mb_start']:.0f} / {r['rss_mb_end']:.0f} / "
                   f"{r['rss_mb_idle']:.0f} |" if first else " | | |"))
    lines += _ratio_lines(report)
    lines += [
        "",
        "The cascade answered "
        + ", ".join(f"{r['early_share']:.0%}" for r in report["models"]
                    if r["early_share"])
        + " of these photos without the CNN (in-process). With "
        + str(CONCURRENCY) + " clients, micro-batching joined "
        + ", ".join(f"{r['concurrent'].get('images_per_model_call', 1):.1f}"
                    for r in report["models"])
        + " images per model call on average (in the order of the table).",
        "",
        "Where a sequential request's time goes, from the server's own metrics "
        "(means): "
        + "; ".join(_time_split(r) for r in report["models"]
                    if r["sequential"].get("model_mean_ms") is not None)
        + " (for the cascade, to its answer). The rest of the client's latency "
        "is loopback and the client itself.",
        "",
        "Targets (issue 20): p50 <= 10 ms for the default model on these 2 "
        "cores, p95 no worse than the full model's, throughput with 8 clients at "
        "least the full model's, memory <= 300 MB after the load, 0 errors.",
        f"- Machine: {m['cpu_model']}, {m['nproc']} cores; measured "
        f"{report['date']}.",
        f"- Command: `{QUICK_COMMAND if report['quick'] else COMMAND}`",
        END_MARKER,
    ]
    return "\n".join(lines) + "\n"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="small models, 3 s phases, output to a temp folder")
    parser.add_argument("--duration", type=float, default=None,
                        help="seconds per load phase and model (default: 30, 3 "
                        "with --quick)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    folder = find_dataset("amulet6")
    if folder is None:
        print("amulet6 not found (set HYBRIDCLF_DATA); nothing measured.")
        return 0
    duration = args.duration or (3.0 if args.quick else 30.0)
    tmp = tempfile.mkdtemp(prefix="hybridclf_bench_serve_")
    try:
        return measure(args, folder, duration, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # the trained models


def _serve_both(models, bodies, duration):
    """Both servers side by side, in turns; each model's phases and memory."""
    servers = []
    try:
        for name, model_dir in models:
            port = _free_port()
            servers.append({"name": name, "proc": start_server(model_dir, port),
                            "url": f"http://127.0.0.1:{port}", "parts": {}})
        for s in servers:
            s["rss_start"] = _rss_mb(s["proc"].pid)
            load_phase(s["url"], bodies, 1, min(2.0, duration))  # warm-up
            s["before"] = server_counters(s["url"])
        order = servers + servers[::-1]  # A B B A
        for phase, clients in (("sequential", 1), ("concurrent", CONCURRENCY)):
            for s in order:
                cpu = _cpu_s(s["proc"].pid)
                part = load_phase(s["url"], bodies, clients, duration / 2)
                part["cpu_s"] = _cpu_s(s["proc"].pid) - cpu
                s["parts"].setdefault(phase, []).append(part)
            for s in servers:
                s[f"after_{phase}"] = server_counters(s["url"])
                s["rss_end"] = _rss_mb(s["proc"].pid)
        time.sleep(1.0)
        for s in servers:
            s["rss_idle"] = _rss_mb(s["proc"].pid)
    finally:
        for s in servers:
            s["proc"].terminate()
            try:
                s["proc"].wait(timeout=20)
            except subprocess.TimeoutExpired:
                s["proc"].kill()
    return servers


def _model_report(s):
    sequential = _summary(s["parts"]["sequential"], 1)
    concurrent = _summary(s["parts"]["concurrent"], CONCURRENCY)
    before, between = s["before"], s["after_sequential"]
    after = s["after_concurrent"]
    # where a sequential request's time goes, as the server sees it
    sequential["server_mean_ms"] = _mean_ms(before, between, "request_s")
    sequential["model_mean_ms"] = _mean_ms(before, between, "model_s")
    concurrent["images_per_model_call"] = (
        (after["batch_images_sum"] - between["batch_images_sum"])
        / max(after["batch_images_count"] - between["batch_images_count"], 1))
    return {"model": s["name"], "sequential": sequential, "concurrent": concurrent,
            "rss_mb_start": s["rss_start"] or float("nan"),
            "rss_mb_end": s["rss_end"] or float("nan"),
            "rss_mb_idle": s["rss_idle"] or float("nan")}


def measure(args, folder, duration, tmp):
    """Train, serve both models, load them in turns, write the figures; exit code."""
    load = " ".join(f"{v:.1f}" for v in os.getloadavg())
    models, held_out = train_models(folder, tmp, args.quick)
    photos = [Path(p).read_bytes() for p in held_out]
    bodies = [json.dumps({"image_data": base64.b64encode(d).decode()}).encode()
              for d in photos]
    results = []
    for s in _serve_both(models, bodies, duration):
        result = _model_report(s)
        model_dir = dict(models)[s["name"]]
        result["in_process_ms"], result["early_share"] = in_process(
            model_dir, photos, 1 if args.quick else 3)
        result["overhead_ratio"] = (result["sequential"]["p50_ms"]
                                    or float("nan")) / result["in_process_ms"]
        results.append(result)
        print(f"{s['name']}: p50 {result['sequential']['p50_ms']:.1f} ms", flush=True)
    report = {
        "date": datetime.date.today().isoformat(), "quick": args.quick,
        "n_photos": len(photos), "load": load, "duration_s": duration,
        "models": results, "machine": machine_info(),
    }
    if args.quick:
        out_dir = Path(tempfile.gettempdir()) / "hybridclf_bench_quick"
        docs_file = out_dir / "benchmarks.md"
        results_file = out_dir / "bench_serve.json"
    else:
        docs_file, results_file = DOCS_FILE, RESULTS_FILE
    results_file.parent.mkdir(parents=True, exist_ok=True)
    results_file.write_text(json.dumps(report, indent=2))
    _common.write_section(docs_file, render_section(report), START_MARKER,
                          END_MARKER)
    print(render_section(report))
    print(f"Written to {docs_file} and {results_file}")
    errors = sum(r["sequential"]["errors"] + r["concurrent"]["errors"]
                 for r in results)
    if errors:
        print(f"{errors} requests failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    os.chdir(REPO_ROOT)
    sys.exit(main())
