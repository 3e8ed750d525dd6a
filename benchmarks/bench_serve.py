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


def train_model(folder, out, quick):
    """Train and save the benchmark's model; return its folder."""
    from hybridclf import load_image_folder, make_hybrid_pipeline, save_model

    paths, labels = load_image_folder(folder)
    if quick:
        pipe = make_hybrid_pipeline(features=["hog", "color"]).set_params(
            load__size=64)
    else:
        pipe = make_hybrid_pipeline()
    save_model(pipe.fit(paths, labels), out)
    return out, paths


def in_process_ms(model_dir, data, repeats):
    """Median ms of predict_open_set on the image bytes, in this process."""
    from hybridclf import load_model
    from hybridclf.prediction import predict_open_set

    pipe = load_model(model_dir)
    predict_open_set(pipe, [data], proba_threshold=0.5)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        predict_open_set(pipe, [data], proba_threshold=0.5)
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def load_phase(url, body, clients, duration):
    """Send /predict for ``duration`` s from ``clients`` threads; latencies."""
    import httpx

    latencies, errors, lock = [], [0], threading.Lock()
    stop = time.monotonic() + duration

    def worker():
        with httpx.Client(base_url=url, timeout=30) as http:
            while time.monotonic() < stop:
                start = time.perf_counter()
                try:
                    r = http.post("/predict", json=body)
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


def render_section(report):
    s, c = report["sequential"], report["concurrent"]

    def row(name, r):
        return (f"| {name} | {r['requests']} | {r['requests_per_s']:.1f} | "
                f"{r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['p99_ms']:.1f} | "
                f"{r['errors']} |")

    m = report["machine"]
    lines = [
        START_MARKER,
        "## Prediction service (`bench_serve.py`)",
        "",
        f"`POST /predict` of one {report['image']} over loopback, model: "
        f"{report['model']}; {report['duration_s']:.0f} s per phase.",
        "",
        "| clients | requests | req/s | p50 ms | p95 ms | p99 ms | errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        row("1 (sequential)", s),
        row(f"{CONCURRENCY} concurrent", c),
        "",
        f"- In-process `predict_open_set` on the same bytes: "
        f"{report['in_process_ms']:.1f} ms (median); server overhead "
        f"(sequential p50 / in-process): {report['overhead_ratio']:.2f}x.",
        f"- Server memory (RSS): {report['rss_mb_start']:.0f} MB after start-up, "
        f"{report['rss_mb_end']:.0f} MB after the load.",
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
    if args.model_dir:
        from hybridclf import load_image_folder

        model_dir, paths = Path(args.model_dir), load_image_folder(folder)[0]
        model_name = str(model_dir)
    else:
        model_dir, paths = train_model(folder, Path(tmp) / "model", args.quick)
        model_name = ("HOG + colour, 64 px (--quick)" if args.quick
                      else "make_hybrid_pipeline() defaults")
    data = Path(paths[0]).read_bytes()
    body = {"image_data": base64.b64encode(data).decode()}
    port = _free_port()
    proc = start_server(model_dir, port)
    try:
        rss_start = _rss_mb(proc.pid)
        url = f"http://127.0.0.1:{port}"
        load_phase(url, body, 1, min(2.0, duration))  # warm-up, not reported
        sequential = load_phase(url, body, 1, duration)
        concurrent = load_phase(url, body, CONCURRENCY, duration)
        rss_end = _rss_mb(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    local = in_process_ms(model_dir, data, 20 if args.quick else 100)
    report = {
        "date": datetime.date.today().isoformat(), "quick": args.quick,
        "model": model_name, "image": f"{Path(paths[0]).name} ({len(data)} bytes)",
        "duration_s": duration, "sequential": sequential, "concurrent": concurrent,
        "in_process_ms": local,
        "overhead_ratio": (sequential["p50_ms"] or float("nan")) / local,
        "rss_mb_start": rss_start or float("nan"),
        "rss_mb_end": rss_end or float("nan"), "machine": machine_info(),
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
    errors = sequential["errors"] + concurrent["errors"]
    if errors:
        print(f"{errors} requests failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    os.chdir(REPO_ROOT)
    sys.exit(main())
