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
  once it has been idle for 1 s;
- for the full model, the cost of the nearest training photos: one client
  alternating ``/predict`` without and with ``"neighbours": 3``, so that both
  see the same load, and in process
  :meth:`~hybridclf.neighbours.EmbeddingIndex.neighbours` on synthetic
  indexes of 10,000 photos of the model's embedding dimension. (The cascade
  runs the CNN on a photo whose neighbours are asked for: they come from its
  embedding.)

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
    .venv/bin/python benchmarks/bench_serve.py --neighbours-only

``--neighbours-only`` measures the nearest training photos alone and rewrites
only their part of the section (its own markers inside it).

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
NB_START = "<!-- bench_serve_neighbours:start -->"
NB_END = "<!-- bench_serve_neighbours:end -->"
COMMAND = ".venv/bin/python benchmarks/bench_serve.py"
QUICK_COMMAND = COMMAND + " --quick"
NB_COMMAND = COMMAND + " --neighbours-only"
CONCURRENCY = 8
#: Nearest training photos asked for in the comparison.
NEIGHBOURS = 3
#: Training photos of the synthetic indexes searched in process.
SYNTHETIC_PHOTOS = 10_000
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


def train_models(folder, out, quick, only_first=False):
    """Train and save both models on the same split; their folders, held-out photos.

    Returns ``[(name, model_dir), ...]`` and the held-out photos' paths.
    """
    from hybridclf.training import train_folder

    csv = folder.parent / "amulet6_groups.csv"
    models, held_out = [], None
    for i, (name, cascade) in enumerate(MODELS.items()):
        if only_first and i:
            break
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


def neighbours_phase(url, bodies, duration):
    """One client alternating two requests for ``duration`` s; their latencies.

    ``bodies`` maps a name to an encoded /predict body. Alternating puts both
    under the same load, which a shared machine changes from second to
    second; the paired differences (each request minus the one before it of
    the other kind) cancel the slow drifts.
    """
    import httpx

    names = list(bodies)
    latencies = {name: [] for name in names}
    sizes, errors = {}, 0
    stop = time.monotonic() + duration
    with httpx.Client(base_url=url, timeout=30) as http:
        while time.monotonic() < stop:
            for name in names:
                start = time.perf_counter()
                r = http.post("/predict", content=bodies[name], headers=JSON_HEADERS)
                elapsed = (time.perf_counter() - start) * 1000.0
                if r.status_code == 200 and r.json().get("success"):
                    latencies[name].append(elapsed)
                    sizes[name] = len(r.content)
                else:
                    errors += 1
    n = min(len(v) for v in latencies.values())
    paired = [b - a for a, b in zip(latencies[names[0]][:n],
                                    latencies[names[1]][:n])]
    return {"errors": errors,
            "paired_diff_p50_ms": statistics.median(paired) if paired else None,
            **{name: {"requests": len(v), "answer_bytes": sizes.get(name),
                      **{f"{k}_ms": x for k, x in _percentiles(v).items()}}
               for name, v in latencies.items()}}


def _search_times(index, queries, repeats):
    """Median ms per image of the service's search and data URIs."""
    from hybridclf.serve._predict import neighbour_answers

    ks = [NEIGHBOURS] * len(queries)
    neighbour_answers(index.neighbours(queries, NEIGHBOURS), ks)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        neighbour_answers(index.neighbours(queries, NEIGHBOURS), ks)
        times.append((time.perf_counter() - start) * 1000.0 / len(queries))
    return statistics.median(times)


def search_ms(dim, repeats=50):
    """In-process :meth:`EmbeddingIndex.neighbours` on synthetic indexes.

    Unit Gaussian embeddings of dimension ``dim`` for
    :data:`SYNTHETIC_PHOTOS` photos, alone and with 3 views each (the
    layout ``hybridclf train`` saves), 4 KB thumbnails; the time includes
    the thumbnails' data URIs, as the service answers them. With NumPy's
    BLAS threads as they are (every core) and with one: on a busy machine a
    small product split over threads waits for a descheduled one.
    """
    import numpy as np
    from threadpoolctl import threadpool_limits

    from hybridclf.neighbours import VIEWS, index_with_views

    rng = np.random.default_rng(0)
    photos = rng.standard_normal((SYNTHETIC_PHOTOS, dim), dtype=np.float32)
    thumbs = [bytes(4096)] * SYNTHETIC_PHOTOS
    out = []
    for n_views in (0, len(VIEWS)):
        views = [photos + 0.3 * rng.standard_normal(photos.shape, dtype=np.float32)
                 for _ in range(n_views)]
        index = index_with_views(photos, views, thumbnails=thumbs)
        row = {"photos": SYNTHETIC_PHOTOS, "entries": len(index.embeddings_)}
        for batch in (1, 32):
            queries = rng.standard_normal((batch, dim), dtype=np.float32)
            row[f"ms_per_image_batch{batch}"] = _search_times(index, queries,
                                                              repeats)
            with threadpool_limits(limits=1, user_api="blas"):
                row[f"ms_per_image_batch{batch}_1thread"] = _search_times(
                    index, queries, repeats)
        out.append(row)
        del index, views
    return out


def load_average():
    """The 1-minute load average, or None where the OS does not say."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


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


def _shared_words(busy):
    """Whether other work kept the cores busy before the run (None: not known)."""
    if busy is None:
        return (", **the cores may have been shared with other jobs** (not "
                "measured): absolute times may be inflated, compare the models "
                "by the ratios")
    if busy > 0.5:
        return (f", and other processes kept {busy:.1f} CPUs busy just before "
                "the servers were loaded: **the cores were shared with other "
                "jobs**, absolute times are inflated, compare the models by the "
                "ratios")
    return (f", and other processes kept {busy:.1f} CPUs busy just before the "
            "servers were loaded (a quiet machine)")


def _load_words(start, end, nproc, busy=None):
    """The load in words; ``busy``: other processes' busy CPUs, when measured."""
    if start is None:
        return "the load average is not known on this system"
    words = (f"1-minute load average {start:.1f} at the start and {end:.1f} at "
             f"the end, on {nproc} cores")
    if busy is not None:
        words += (f" (the benchmark's own servers and training count in it); "
                  f"other processes kept {busy:.1f} CPUs busy before it")
    if (max(start, end) > 0.5 * nproc) if busy is None else busy > 0.5:
        words += (": the machine was shared with other jobs, so the absolute "
                  "latencies are inflated; the figure is the difference between "
                  "the two kinds of request, measured alternately under the same "
                  "load")
    return words


def render_neighbours(nb, machine, quick):
    """The part of the section on ``"neighbours": 3``, between its markers."""
    phase, index = nb["phase"], nb["index"]
    without, with_ = phase["without"], phase["with"]
    lines = [
        NB_START,
        f"### Nearest training photos (`\"neighbours\": {NEIGHBOURS}`)",
        "",
        f"{nb['model']}, served with the index of its {index['photos']} training "
        f"photos and their degraded views ({index['entries']} entries of "
        f"{index['dim']} dimensions, thumbnails; what `hybridclf train` keeps). "
        f"One client alternates `POST /predict` of the same photo without and "
        f"with `\"neighbours\": {NEIGHBOURS}` for {nb['duration_s']:.0f} s; "
        "*paired* is the median of each request's latency minus the one before "
        "it of the other kind.",
        "",
        "| request | requests | p50 ms | p95 ms | answer bytes |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| without neighbours | {without['requests']} | {without['p50_ms']:.1f} | "
        f"{without['p95_ms']:.1f} | {without['answer_bytes']} |",
        f"| `\"neighbours\": {NEIGHBOURS}` | {with_['requests']} | "
        f"{with_['p50_ms']:.1f} | {with_['p95_ms']:.1f} | {with_['answer_bytes']} |",
        f"| difference | | {with_['p50_ms'] - without['p50_ms']:+.1f} "
        f"(paired {phase['paired_diff_p50_ms']:+.1f}) | "
        f"{with_['p95_ms'] - without['p95_ms']:+.1f} | "
        f"{with_['answer_bytes'] - without['answer_bytes']:+d} |",
        "",
        f"The search alone, in process: `EmbeddingIndex.neighbours(k={NEIGHBOURS})` "
        "and the thumbnails' data URIs, on synthetic unit embeddings of "
        f"{index['dim']} dimensions (float16, as saved); median ms per image.",
        "",
        "| index | entries | one image | in a batch of 32 | one image, 1 BLAS "
        "thread | in a batch of 32, 1 BLAS thread |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in nb["search"]:
        kind = ("photos only" if row["entries"] == row["photos"]
                else "photos and 3 views each")
        lines.append(f"| {row['photos']:,} {kind} | {row['entries']:,} | "
                     + " | ".join(f"{row[f'ms_per_image_batch{b}{t}']:.2f}"
                                  for t in ("", "_1thread") for b in (1, 32))
                     + " |")
    lines += [
        "",
        "On a busy machine NumPy's BLAS splits even a one-image product over "
        "its threads and then waits for one that is descheduled: compare the "
        "1-thread columns.",
        "",
        "Target: the search adds at most 2 ms per image for a 10,000-image index.",
        f"- Load: {_load_words(*nb['load'], machine['nproc'], nb.get('busy'))}.",
        f"- Machine: {machine['cpu_model']}, {machine['nproc']} cores; measured "
        f"{nb['date']}.",
        f"- Command: `{QUICK_COMMAND if quick else nb['command']}`",
        NB_END,
    ]
    return "\n".join(lines) + "\n"


def write_neighbours(docs_file, block):
    """Replace the neighbours part inside the section (or add it at its end)."""
    text = docs_file.read_text(encoding="utf-8") if docs_file.exists() else ""
    if NB_START not in text and END_MARKER in text:
        at = text.index(END_MARKER)
        text = text[:at].rstrip("\n") + "\n\n" + block + text[at:]
        docs_file.write_text(text, encoding="utf-8")
    else:
        _common.write_section(docs_file, block, NB_START, NB_END)


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
        f"{report['load']} at the start{_shared_words(report.get('busy'))}. "
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
        "",
    ]
    if report.get("neighbours"):
        lines.append(render_neighbours(report["neighbours"], m, report["quick"]))
    lines.append(END_MARKER)
    return "\n".join(lines) + "\n"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="small models, 3 s phases, output to a temp folder")
    parser.add_argument("--duration", type=float, default=None,
                        help="seconds per load phase and model (default: 30, 3 "
                        "with --quick)")
    parser.add_argument("--neighbours-only", action="store_true",
                        help="measure only '\"neighbours\": 3' on the full model "
                        "and rewrite only that part of the section")
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


def _stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def measure_neighbours(name, model_dir, data, duration, command):
    """``"neighbours": 3`` against none on one server, and the search alone."""
    from hybridclf.neighbours import EmbeddingIndex

    index = EmbeddingIndex.load(model_dir)
    if index is None:
        print(f"{name}: no embedding index; the neighbours are not measured.")
        return None
    image = base64.b64encode(data).decode()
    bodies = {"without": json.dumps({"image_data": image}).encode(),
              "with": json.dumps({"image_data": image,
                                  "neighbours": NEIGHBOURS}).encode()}
    load = [load_average()]
    port = _free_port()
    proc = start_server(model_dir, port)
    try:
        url = f"http://127.0.0.1:{port}"
        neighbours_phase(url, bodies, min(2.0, duration))  # warm-up
        phase = neighbours_phase(url, bodies, duration)
    finally:
        _stop(proc)
    dim = index.embeddings_.shape[1]
    search = search_ms(dim)
    load.append(load_average())
    print(f"{name}: p50 {phase['without']['p50_ms']:.1f} ms without neighbours, "
          f"{phase['with']['p50_ms']:.1f} ms with {NEIGHBOURS}", flush=True)
    return {"model": name.split(" (")[0], "phase": phase, "search": search,
            "index": {"photos": index.n_sources_,
                      "entries": len(index.embeddings_), "dim": dim},
            "duration_s": duration, "load": load, "command": command,
            "date": datetime.date.today().isoformat()}


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
            _stop(s["proc"])
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
    models, held_out = train_models(folder, tmp, args.quick,
                                    only_first=args.neighbours_only)
    photos = [Path(p).read_bytes() for p in held_out]
    bodies = [json.dumps({"image_data": base64.b64encode(d).decode()}).encode()
              for d in photos]
    command = NB_COMMAND if args.neighbours_only else COMMAND
    busy = _common.other_busy_cpus()  # after the training, before the load
    nb = measure_neighbours(*models[0], photos[0], duration, command)
    if nb:
        nb["busy"] = busy
    results = []
    for s in ([] if args.neighbours_only else _serve_both(models, bodies, duration)):
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
        "n_photos": len(photos), "load": load, "busy": busy,
        "duration_s": duration,
        "models": results, "neighbours": nb, "machine": machine_info(),
    }
    return _write(args, report, results, nb)


def _write(args, report, results, nb):
    """The section (or its neighbours part) and the JSON; the exit code."""
    if args.quick:
        out_dir = Path(tempfile.gettempdir()) / "hybridclf_bench_quick"
        docs_file = out_dir / "benchmarks.md"
        results_file = out_dir / "bench_serve.json"
    else:
        docs_file, results_file = DOCS_FILE, RESULTS_FILE
    results_file.parent.mkdir(parents=True, exist_ok=True)
    if args.neighbours_only:
        results_file = results_file.with_name("bench_serve_neighbours.json")
        block = render_neighbours(nb, report["machine"], args.quick) if nb else ""
        if block:
            write_neighbours(docs_file, block)
        print(block)
    else:
        _common.write_section(docs_file, render_section(report), START_MARKER,
                              END_MARKER)
        print(render_section(report))
    results_file.write_text(json.dumps(report, indent=2))
    print(f"Written to {docs_file} and {results_file}")
    errors = sum(r["sequential"]["errors"] + r["concurrent"]["errors"]
                 for r in results) + (nb["phase"]["errors"] if nb else 0)
    if errors:
        print(f"{errors} requests failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    os.chdir(REPO_ROOT)
    sys.exit(main())
