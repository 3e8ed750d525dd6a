"""Benchmark the prediction service: latency, throughput, errors, memory.

What it measures, over loopback only (127.0.0.1):

- ``POST /predict`` with one 224x224 JPEG of ``amulet6`` per request (base64
  JSON), sequentially from one client and from 8 concurrent clients, each for
  a bounded time: p50/p95/p99 latency, requests per second, error count
  (must be 0);
- in-process :func:`hybridclf.prediction.predict_open_set` on the same image
  bytes, to give the server's overhead (server p50 / in-process median);
- the server's resident memory after start-up and after the load.

The server is ``hybridclf serve`` in a subprocess (one worker). Without
``--model-dir`` the default pipeline (``make_hybrid_pipeline()``) is trained on
``amulet6`` and saved in a temporary folder first.

It writes a section of ``docs/benchmarks.md`` (between the markers
``<!-- bench_serve:start -->`` and ``<!-- bench_serve:end -->``) and the raw
figures to ``benchmarks/results/bench_serve.json``.

Run it from the repository root::

    .venv/bin/python benchmarks/bench_serve.py          # 30 s per phase
    .venv/bin/python benchmarks/bench_serve.py --quick  # small model, 3 s

``--quick`` trains HOG + colour at 64 px and writes to a temporary folder
instead of ``docs/``. The data is read from ``../shared/data/amulet6`` beside
the checkout, or ``$HYBRIDCLF_DATA/amulet6``; without it the script says so and
exits with 0.
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


def _percentiles(values):
    if not values:
        return {"p50": None, "p95": None, "p99": None}
    ordered = sorted(values)

    def pick(q):
        return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]

    return {"p50": pick(0.50), "p95": pick(0.95), "p99": pick(0.99)}


#: The models served, by name: the default and the default without a CNN.
MODELS = {
    "make_hybrid_pipeline() defaults (cnn, hog, lbp, color)": {},
    # the fast choice of docs/choosing-features.md: no CNN, no SIFT
    "no CNN, no SIFT (hog, lbp, color)": {"features": ["hog", "lbp", "color"]},
}


def train_model(folder, out, quick, **kwargs):
    """Train and save the benchmark's model; return its folder."""
    from hybridclf import load_image_folder, make_hybrid_pipeline, save_model

    paths, labels = load_image_folder(folder)
    if quick:
        pipe = make_hybrid_pipeline(features=["hog", "color"]).set_params(
            load__size=64)
    else:
        pipe = make_hybrid_pipeline(**kwargs)
    save_model(pipe.fit(paths, labels), out)
    return out, paths


def in_process_ms(model_dir, data, repeats):
    """Median ms of predict_open_set on the image bytes, in this process."""
    from hybridclf import load_model
    from hybridclf.pipeline import set_n_jobs
    from hybridclf.prediction import predict_open_set

    pipe = load_model(model_dir)
    set_n_jobs(pipe, None)  # as the service does: every core per prediction
    predict_open_set(pipe, [data], proba_threshold=0.5)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        predict_open_set(pipe, [data], proba_threshold=0.5)
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def load_phase(url, body, clients, duration):
    """Send /predict for ``duration`` s from ``clients`` threads; latencies.

    ``body`` is the JSON request, encoded once: like a load tool (wrk, hey),
    the client spends no CPU re-encoding it, which on 2 cores the server
    would feel.
    """
    import httpx

    latencies, errors, lock = [], [0], threading.Lock()
    stop = time.monotonic() + duration

    def worker():
        with httpx.Client(base_url=url, timeout=30) as http:
            while time.monotonic() < stop:
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
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=duration + 60)
    wall = time.perf_counter() - start
    return {"clients": clients, "requests": len(latencies), "errors": errors[0],
            "requests_per_s": len(latencies) / wall,
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


def render_section(report):
    m = report["machine"]
    lines = [
        START_MARKER,
        "## Prediction service (`bench_serve.py`)",
        "",
        f"`POST /predict` of one {report['image']} over loopback, "
        f"{report['duration_s']:.0f} s per phase; `hybridclf serve` with one "
        "worker and its default threads (every core per prediction). "
        "*In-process*: median of `predict_open_set` on the same bytes in the "
        "benchmark's process; *overhead* = sequential p50 / in-process.",
        "",
        "| model | clients | requests | req/s | p50 ms | p95 ms | p99 ms | errors "
        "| in-process ms | overhead | RSS MB (start / end) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in report["models"]:
        for name, phase in (("1 (sequential)", r["sequential"]),
                            (f"{CONCURRENCY} concurrent", r["concurrent"])):
            first = name.startswith("1")
            lines.append(
                f"| {r['model'] if first else ''} | {name} | {phase['requests']} | "
                f"{phase['requests_per_s']:.1f} | {phase['p50_ms']:.1f} | "
                f"{phase['p95_ms']:.1f} | {phase['p99_ms']:.1f} | "
                f"{phase['errors']} | "
                + (f"{r['in_process_ms']:.1f} | {r['overhead_ratio']:.2f}x | "
                   f"{r['rss_mb_start']:.0f} / {r['rss_mb_end']:.0f} |"
                   if first else " | | |"))
    lines += [
        "",
        "With " + str(CONCURRENCY) + " clients, micro-batching joined "
        + ", ".join(f"{r['concurrent'].get('images_per_model_call', 1):.1f}"
                    for r in report["models"])
        + " images per model call on average (in the order of the table).",
        "",
        "Where a sequential request's time goes, from the server's own metrics "
        "(means): "
        + "; ".join(_time_split(r) for r in report["models"]
                    if r["sequential"].get("model_mean_ms") is not None)
        + ". The rest of the client's latency is loopback and the client itself.",
        "",
        "Targets: p50 <= 20 ms for the default model, overhead <= 1.3x, memory "
        "<= 500 MB, 0 errors. Reference, the original system measured here: p50 "
        "145-170 ms, p95 about 190-210 ms, 870 MB.",
        f"- Machine: {m['cpu_model']}, {m['nproc']} cores; measured "
        f"{report['date']}.",
        f"- Command: `{QUICK_COMMAND if report['quick'] else COMMAND}`",
        END_MARKER,
    ]
    return "\n".join(lines) + "\n"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="small model, 3 s phases, output to a temp folder")
    parser.add_argument("--model-dir", default=None,
                        help="serve this model instead of training one")
    parser.add_argument("--duration", type=float, default=None,
                        help="seconds per load phase (default: 30, 3 with --quick)")
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


def measure(args, folder, duration, tmp):
    """Train (unless --model-dir), serve, load, write the figures; exit code."""
    if args.model_dir:
        from hybridclf import load_image_folder

        paths = load_image_folder(folder)[0]
        models = [(str(args.model_dir), Path(args.model_dir))]
    elif args.quick:
        model_dir, paths = train_model(folder, Path(tmp) / "quick", True)
        models = [("HOG + colour, 64 px (--quick)", model_dir)]
    else:
        models = []
        for i, (name, kwargs) in enumerate(MODELS.items()):
            model_dir, paths = train_model(folder, Path(tmp) / f"model{i}", False,
                                           **kwargs)
            models.append((name, model_dir))
    data = Path(paths[0]).read_bytes()
    body = json.dumps({"image_data": base64.b64encode(data).decode()}).encode()
    results = []
    for name, model_dir in models:
        port = _free_port()
        proc = start_server(model_dir, port)
        try:
            rss_start = _rss_mb(proc.pid)
            url = f"http://127.0.0.1:{port}"
            load_phase(url, body, 1, min(2.0, duration))  # warm-up, not reported
            before = server_counters(url)
            sequential = load_phase(url, body, 1, duration)
            between = server_counters(url)
            concurrent = load_phase(url, body, CONCURRENCY, duration)
            after = server_counters(url)
            # where a sequential request's time goes, as the server sees it
            sequential["server_mean_ms"] = _mean_ms(before, between, "request_s")
            sequential["model_mean_ms"] = _mean_ms(before, between, "model_s")
            concurrent["images_per_model_call"] = (
                (after["batch_images_sum"] - between["batch_images_sum"])
                / max(after["batch_images_count"] - between["batch_images_count"], 1))
            rss_end = _rss_mb(proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        local = in_process_ms(model_dir, data, 20 if args.quick else 100)
        results.append({
            "model": name, "sequential": sequential, "concurrent": concurrent,
            "in_process_ms": local,
            "overhead_ratio": (sequential["p50_ms"] or float("nan")) / local,
            "rss_mb_start": rss_start or float("nan"),
            "rss_mb_end": rss_end or float("nan"),
        })
        print(f"{name}: p50 {sequential['p50_ms']:.1f} ms", flush=True)
    report = {
        "date": datetime.date.today().isoformat(), "quick": args.quick,
        "image": f"{Path(paths[0]).name} ({len(data)} bytes)",
        "duration_s": duration, "models": results, "machine": machine_info(),
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
