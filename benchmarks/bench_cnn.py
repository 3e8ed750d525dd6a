"""Benchmark CNNFeatures: CPU speed against bare PyTorch, memory, GPU.

Measures on the amulet6 photos (``../shared/data/amulet6`` or
``$HYBRIDCLF_DATA/amulet6``):

- CPU throughput (images per second, batch 1 and batch 32) of
  ``CNNFeatures.transform`` (ONNX Runtime) against a bare PyTorch loop
  ``net(x)`` over the same prepared tensors with the same network, both with 2
  threads, repeats interleaved; outputs checked equal;
- resident memory of a process that loads a pickled fitted estimator and
  embeds images, with ONNX Runtime (no torch import) and with PyTorch;
- on a machine with a CUDA GPU, end-to-end images per second from JPEG files
  to embeddings (threaded decoding overlapped with batched bf16 inference);
- (accuracy is measured with grouped folds by ``bench_accuracy.py``).

It rewrites its section of ``docs/benchmarks.md`` and writes every figure to
``benchmarks/results/bench_cnn.json``. Run it with::

    .venv/bin/python benchmarks/bench_cnn.py           # full, about 10 minutes
    .venv/bin/python benchmarks/bench_cnn.py --quick   # a smoke test
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import _common
import numpy as np
from _common import find_dataset

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "benchmarks.md"
START, END = "<!-- bench_cnn:start -->", "<!-- bench_cnn:end -->"
COMMAND = ".venv/bin/python benchmarks/bench_cnn.py"


def _median_rate(fn, n_images, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return n_images / statistics.median(times)


def cpu_speed(images, repeats, quick):
    """Images per second: ours (ONNX Runtime) vs bare torch, batch 1 and 32."""
    import torch

    from hybridclf.features import CNNFeatures

    torch.set_num_threads(2)
    rows = []
    lite0 = {"backbone": "efficientnet_lite0", "layer": "head"}
    for label, params in [
        ("Lite0, GeM, no TTA", {**lite0, "flip_tta": False}),
        ("Lite0, GeM, flip TTA", {**lite0, "flip_tta": True}),
        ("Lite2, block -4 + head, 224 px (default)", {}),
    ]:
        ours = CNNFeatures(device="cpu", n_jobs=2, **params).fit(images[:2])
        net = ours._network()
        tensors = ours._prepare(images)
        np.testing.assert_allclose(
            ours.transform(images[:8]),
            net(torch.from_numpy(tensors[:8])).detach().numpy(), atol=1e-4)
        for batch in (1, 32):
            n = min(len(images), 8 if quick else (24 if batch == 1 else 96))

            def bare(batch=batch, n=n):
                with torch.no_grad():
                    for s in range(0, n, batch):
                        net(torch.from_numpy(tensors[s : s + batch]))

            def ours_run(batch=batch, n=n):
                ours.set_params(batch_size=batch)
                if batch == 1:
                    for s in range(n):
                        ours.transform(images[s : s + 1])
                else:
                    ours.transform(images[:n])

            bare(), ours_run()  # warm up
            bare_rates, our_rates = [], []
            for _ in range(repeats):  # interleaved: same machine state for both
                bare_rates.append(_median_rate(bare, n, 1))
                our_rates.append(_median_rate(ours_run, n, 1))
            row = {
                "config": label, "batch": batch,
                "bare_torch_img_s": statistics.median(bare_rates),
                "ours_img_s": statistics.median(our_rates),
            }
            row["speedup"] = row["ours_img_s"] / row["bare_torch_img_s"]
            row["ours_ms_per_image"] = 1000 / row["ours_img_s"]
            rows.append(row)
            print(f"  {label:32s} batch {batch:2d}: bare torch "
                  f"{row['bare_torch_img_s']:7.1f} img/s, ours {row['ours_img_s']:7.1f}"
                  f" img/s ({row['ours_ms_per_image']:.1f} ms/img), x"
                  f"{row['speedup']:.2f}", flush=True)
    return rows


_MEMORY_SCRIPT = """
import pickle, sys, numpy as np
est = pickle.load(open(sys.argv[1], "rb"))
images = np.load(sys.argv[2])
est.transform(images)
# VmHWM: this process's peak resident memory (ru_maxrss survives exec on Linux)
status = open("/proc/self/status").read().split("VmHWM:")[1]
print(int(status.split()[0]) / 1024, "torch" in sys.modules)
"""


def serving_memory(images):
    """Peak RSS of a fresh process embedding images with a pickled estimator."""
    import pickle

    from hybridclf.features import CNNFeatures

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "x.npy", images[:32])
        for engine in ("onnx", "torch"):
            est = CNNFeatures(device="cpu", engine=engine, n_jobs=2).fit(images[:2])
            path = Path(tmp) / f"{engine}.pkl"
            path.write_bytes(pickle.dumps(est))
            result = subprocess.run(
                [sys.executable, "-c", _MEMORY_SCRIPT, str(path),
                 str(Path(tmp) / "x.npy")],
                capture_output=True, text=True, check=True,
            )
            rss, torch_loaded = result.stdout.split()
            out[engine] = {"peak_rss_mb": float(rss), "torch_imported": torch_loaded}
            print(f"  serving with {engine}: peak RSS {float(rss):.0f} MB, torch "
                  f"imported: {torch_loaded}", flush=True)
    return out


def gpu_end_to_end(paths, quick):
    """JPEG files -> embeddings on a CUDA GPU, decoding overlapped with inference."""
    import torch

    if not torch.cuda.is_available():
        print("  no CUDA GPU: end-to-end GPU throughput not measured", flush=True)
        return None
    from hybridclf.features import CNNFeatures
    from hybridclf.io import ImageLoader

    files = list(paths) * (4 if quick else 120)
    chunk = 1024
    loader = ImageLoader(n_jobs=-1)
    cnn = CNNFeatures(device="cuda", batch_size=256, flip_tta=False).fit(
        loader.transform(files[:2]))
    cnn.transform(loader.transform(files[:512]))  # warm up kernels
    queue, done = [], threading.Event()
    lock = threading.Condition()

    def produce():
        for s in range(0, len(files), chunk):
            batch = loader.transform(files[s : s + chunk])
            with lock:
                queue.append(batch)
                lock.notify()
        done.set()
        with lock:
            lock.notify()

    start = time.perf_counter()
    thread = threading.Thread(target=produce)
    thread.start()
    n = 0
    while True:
        with lock:
            while not queue and not done.is_set():
                lock.wait()
            if not queue and done.is_set():
                break
            batch = queue.pop(0)
        n += len(cnn.transform(batch))
    thread.join()
    torch.cuda.synchronize()
    rate = n / (time.perf_counter() - start)
    name = torch.cuda.get_device_name(0)
    print(f"  {name}: {rate:.0f} img/s end to end ({n} images)", flush=True)
    return {"device": name, "img_s": rate, "n_images": n}


def render(res):
    import onnxruntime
    import torch

    lines = [
        START, "## CNN features (`benchmarks/bench_cnn.py`)", "",
        f"- Date: {res['date']}",
        f"- Machine: {os.cpu_count()} CPUs, {platform.processor() or 'x86_64'}; "
        f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}",
        f"- Command: `{res['command']}`",
        "- Data: amulet6, 173 JPEG photos of 224x224 pixels, 6 classes.", "",
        "### CPU speed, 2 threads", "",
        "Median of interleaved repeats. *Bare torch*: `net(x)` under "
        "`torch.no_grad()` over the same prepared float32 tensors with the same "
        "network; *ours*: `CNNFeatures.transform` on the uint8 images (ONNX "
        "Runtime, preparation included). Outputs agree within 1e-4.", "",
        "| configuration | batch | bare torch (img/s) | ours (img/s) | ours (ms/image)"
        " | speed-up (>= 3) |", "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in res["cpu"]:
        lines.append(
            f"| {r['config']} | {r['batch']} | {r['bare_torch_img_s']:.1f} | "
            f"{r['ours_img_s']:.1f} | {r['ours_ms_per_image']:.1f} | "
            f"{r['speedup']:.2f} |")
    mem = res["memory"]
    lines += [
        "", "### Serving memory", "",
        "Peak resident memory of a fresh process that unpickles a fitted "
        "`CNNFeatures` and embeds 32 images:", "",
        "| engine | peak RSS (MB) | torch imported |", "| --- | ---: | --- |",
        *[f"| {k} | {v['peak_rss_mb']:.0f} | {v['torch_imported']} |"
          for k, v in mem.items()],
        "", "### GPU, end to end from JPEG files", "",
    ]
    gpu = res["gpu"]
    if gpu is None:
        lines.append("Not measured: the machine that ran this had no CUDA GPU. "
                     "Reference on one H200 with a plain script: 4.4k img/s "
                     "(naive threaded loader + bf16); target >= 6k img/s.")
    else:
        lines.append(f"{gpu['device']}: {gpu['img_s']:.0f} img/s over "
                     f"{gpu['n_images']} images (target >= 6k img/s on an H200).")
    lines += [
        "", "### Accuracy", "",
        "Measured with grouped folds by `benchmarks/bench_accuracy.py`: see "
        "[Accuracy](#accuracy-benchmarksbench_accuracypy) (the default CNN "
        "alone, and with the classical blocks).",
        END,
    ]
    return "\n".join(lines)


def write_section(text, path):
    _common.write_section(path, text, START, END)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a smoke test; writes to a temporary folder")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    root = find_dataset()
    if root is None:
        print("amulet6 not found (set HYBRIDCLF_DATA); nothing measured.")
        return 0
    from hybridclf import ImageLoader, load_image_folder

    paths, labels = load_image_folder(root)
    if args.quick:
        paths, labels = paths[::6], labels[::6]
    images = ImageLoader(n_jobs=2).transform(paths)
    labels = np.asarray(labels)
    repeats = 1 if args.quick else args.repeats
    res = {"date": datetime.now(timezone.utc).isoformat(timespec="minutes"),
           "command": COMMAND + (" --quick" if args.quick else "")}
    print("CPU speed ...", flush=True)
    res["cpu"] = cpu_speed(images, repeats, args.quick)
    print("Serving memory ...", flush=True)
    res["memory"] = serving_memory(images)
    print("GPU ...", flush=True)
    res["gpu"] = gpu_end_to_end(paths, args.quick)
    print("Accuracy ...", flush=True)
    out_dir = Path(tempfile.gettempdir()) / "hybridclf_bench_quick" if args.quick \
        else REPO / "benchmarks" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "bench_cnn.json").write_text(json.dumps(res, indent=2))
    write_section(render(res), out_dir / "benchmarks.md" if args.quick else DOC)
    print(f"Wrote {out_dir}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
