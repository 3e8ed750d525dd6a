"""Peers of the inspector's duplicate groups, scored on the same OpenCV copies.

- imagededup (``pip install 'imagededup>=0.3'``, the ``bench`` extra): PHash
  and DHash with their default ``max_distance_threshold=10``, timed as a user
  runs them (encode every file, then ``find_duplicates``). Its CNN method
  downloads its weights at run time, which an offline machine cannot.
- fastdup, in its own virtual environment (``make fastdup-venv``; it pins
  NumPy, scikit-learn and Pillow below hybridclf's), run in a subprocess by
  ``_fastdup_pairs.py`` with its defaults: its similar pairs (similarity >=
  0.9) and its connected components (>= 0.96).

Both answer with pairs; groups are made by joining them, as a user would.
The ``*_tuned`` rows take the threshold with the most pair recall at pair
precision >= 0.95 on the very set they score (an upper bound for the method,
not a held-out figure). When a peer cannot run, the result says why.
"""

import json
import logging
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import _duplicate_truth as truth_set

BENCH_DIR = Path(__file__).resolve().parent
FASTDUP_PYTHON = BENCH_DIR / ".venv-fastdup" / "bin" / "python"
FASTDUP_SCRIPT = BENCH_DIR / "_fastdup_pairs.py"
FASTDUP_TIMEOUT_S = 900
TARGET_PRECISION = 0.95
# imagededup's default Hamming distance, and the range searched when tuned
IMAGEDEDUP_DEFAULT = 10
IMAGEDEDUP_SWEEP = range(0, 21)
FASTDUP_SWEEP = [0.9 + 0.005 * k for k in range(20)]


def joined_groups(files, pairs):
    """The group of each of ``files`` when every pair in ``pairs`` is joined."""
    index = {f: k for k, f in enumerate(files)}
    parent = list(range(len(files)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in pairs:
        if a in index and b in index:
            ra, rb = find(index[a]), find(index[b])
            parent[max(ra, rb)] = min(ra, rb)
    return [find(k) for k in range(len(files))]


def _scored(files, pairs, truth, n_seconds, cpu_seconds, **extra):
    scores = truth_set.pair_scores(files, joined_groups(files, pairs), truth)
    scores.update(images_per_s=len(files) / n_seconds,
                  cpu_ms_per_image=1000 * cpu_seconds / len(files), **extra)
    return scores


def _tuned(files, scored_pairs, truth, thresholds, keep, timing, **extra):
    """The threshold of most recall at precision >= 0.95 on this very set."""
    best = None
    for t in thresholds:
        s = _scored(files, [(a, b) for a, b, d in scored_pairs if keep(d, t)],
                    truth, *timing, threshold=round(t, 3), **extra)
        key = (s["precision"] >= TARGET_PRECISION, s["recall"] if
               s["precision"] >= TARGET_PRECISION else s["precision"])
        if best is None or key > best[0]:
            best = (key, s)
    return best[1]


def imagededup_rows(folder, truth, tuned=True):
    """imagededup PHash and DHash on ``folder``: default (and tuned) rows."""
    try:
        import imagededup
        from imagededup.methods import DHash, PHash
    except ImportError:
        return {"imagededup_absent": "imagededup is not installed (`pip install "
                "'imagededup>=0.3'`, or the `bench` extra)"}
    # its modules log each search at INFO on their own handlers
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("imagededup"):
            logging.getLogger(name).setLevel(logging.WARNING)
    files = sorted(truth)
    rows = {}
    for method in (PHash, DHash):
        start, cpu = time.perf_counter(), time.process_time()
        hasher = method(verbose=False)
        encodings = {f: hasher.encode_image(image_file=f) for f in files}
        with warnings.catch_warnings():  # num_enc_workers: no effect here
            warnings.simplefilter("ignore", RuntimeWarning)
            found = hasher.find_duplicates(encoding_map=encodings)  # default: 10
        timing = (time.perf_counter() - start, time.process_time() - cpu)
        pairs = [(f, o) for f, others in found.items() for o in others]
        key = f"imagededup_{method.__name__.lower()}"
        rows[key] = _scored(files, pairs, truth, *timing,
                            threshold=IMAGEDEDUP_DEFAULT,
                            version=imagededup.__version__)
        print(f"  {key}: P {rows[key]['precision']:.3f} R "
              f"{rows[key]['recall']:.3f}", flush=True)
        if not tuned:
            continue
        with warnings.catch_warnings():  # num_enc_workers: no effect here
            warnings.simplefilter("ignore", RuntimeWarning)
            scored = hasher.find_duplicates(
                encoding_map=encodings, scores=True,
                max_distance_threshold=max(IMAGEDEDUP_SWEEP))
        scored_pairs = [(f, o, d) for f, others in scored.items() for o, d in others]
        rows[key + "_tuned"] = _tuned(files, scored_pairs, truth, IMAGEDEDUP_SWEEP,
                                      lambda d, t: d <= t, timing,
                                      version=imagededup.__version__)
        print(f"  {key}, tuned ({rows[key + '_tuned']['threshold']}): P "
              f"{rows[key + '_tuned']['precision']:.3f} R "
              f"{rows[key + '_tuned']['recall']:.3f}", flush=True)
    return rows


def run_fastdup(folder):
    """fastdup's answer on ``folder`` (``_fastdup_pairs.py``), or why there is none."""
    if not FASTDUP_PYTHON.exists():
        return None, ("fastdup was not measured: benchmarks/.venv-fastdup is "
                      "absent (`make fastdup-venv` builds it)")
    with tempfile.TemporaryDirectory(prefix="hybridclf_fastdup_") as tmp:
        out = Path(tmp) / "answer.json"
        try:
            done = subprocess.run([str(FASTDUP_PYTHON), str(FASTDUP_SCRIPT),
                                   str(folder), str(out)], cwd=tmp,
                                  capture_output=True, text=True,
                                  timeout=FASTDUP_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            return None, f"fastdup did not finish in {FASTDUP_TIMEOUT_S} s"
        if done.returncode != 0 or not out.exists():
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:]
            return None, (f"fastdup failed (exit {done.returncode}): "
                          f"{tail[0] if tail else 'no message'}")
        return json.loads(out.read_text(encoding="utf-8")), None


def fastdup_rows(folder, truth, tuned=True):
    """fastdup on ``folder``: its pairs joined, its components (and tuned)."""
    answer, why = run_fastdup(folder)
    if answer is None:
        print(f"  {why}", flush=True)
        return {"fastdup_absent": why}
    files = sorted(truth)
    index = {str(Path(f).resolve()): f for f in files}
    pairs = [(index.get(a), index.get(b), s) for a, b, s in answer["pairs"]]
    timing = (answer["seconds"], answer["cpu_seconds"])
    extra = {"version": answer["version"]}
    default = [(a, b) for a, b, s in pairs if s >= answer["threshold"]]
    rows = {"fastdup_pairs": _scored(files, default, truth, *timing,
                                     threshold=answer["threshold"], **extra)}
    component = {index.get(f): k for k, comp in enumerate(answer["components"])
                 for f in comp}
    groups = [component.get(f, len(files) + k) for k, f in enumerate(files)]
    scores = truth_set.pair_scores(files, groups, truth)
    scores.update(images_per_s=rows["fastdup_pairs"]["images_per_s"],
                  cpu_ms_per_image=rows["fastdup_pairs"]["cpu_ms_per_image"],
                  threshold=answer["ccthreshold"], **extra)
    rows["fastdup_components"] = scores
    if tuned:
        rows["fastdup_pairs_tuned"] = _tuned(
            files, pairs, truth, FASTDUP_SWEEP, lambda s, t: s >= t - 1e-9,
            timing, **extra)
    for key, s in rows.items():
        print(f"  {key}: P {s['precision']:.3f} R {s['recall']:.3f} "
              f"(threshold {s['threshold']})", flush=True)
    return rows


def peer_rows(folder, truth, tuned=True):
    """Every peer's rows on ``folder`` (the copies of one data set)."""
    print(f"peers on {folder}", flush=True)
    return {**imagededup_rows(folder, truth, tuned),
            **fastdup_rows(folder, truth, tuned)}


def somdej_peer_pairs(folder):
    """The peers' default answers on somdej's 36 photos (its 24 known pairs)."""
    files = sorted(str(f) for f in Path(folder).glob("*.jpg"))
    truth = {f: truth_set.somdej_key(f) for f in files}
    return peer_rows(folder, truth, tuned=False)


PEER_KEYS = ("imagededup_phash", "imagededup_phash_tuned", "imagededup_dhash",
             "imagededup_dhash_tuned", "fastdup_pairs", "fastdup_components",
             "fastdup_pairs_tuned")


def peer_label(key, scores):
    """(mode, grouping) cells of a peer's row in the docs' tables."""
    tool, _, rest = key.partition("_")
    version = scores.get("version", "")
    if tool == "imagededup":
        mode = f"{_name(key)} {version}, distance <= {scores['threshold']}"
    elif rest == "components":
        return (f"fastdup {version}, ccthreshold {scores['threshold']} (default)",
                "fastdup's connected components")
    else:
        mode = f"fastdup {version} pairs, similarity >= {scores['threshold']}"
    tuned = key.endswith("_tuned")
    return (mode + (", **tuned on this set**" if tuned else " (default)"),
            "its pairs joined")


def _name(key):
    """A peer row's short name: 'imagededup PHash', 'fastdup pairs' ..."""
    tool, _, rest = key.removesuffix("_tuned").partition("_")
    method = {"phash": "PHash", "dhash": "DHash"}.get(rest, rest)
    return f"{tool} {method}"


def _best(entry, keys, field="recall"):
    return max((entry[k][field], k) for k in keys)


def peer_notes(copies):
    """What the peers' rows say about the pair-recall target, in numbers."""
    amulet = copies.get("amulet6", {})
    absent = [amulet[k] for k in ("imagededup_absent", "fastdup_absent")
              if k in amulet]
    defaults = [k for k in PEER_KEYS if k in amulet and not k.endswith("_tuned")]
    tuned = [k for k in PEER_KEYS if k in amulet and k.endswith("_tuned")]
    lines = ["Peers: imagededup's CNN method was not run: its default model "
             "(torchvision's MobileNetV3-small ImageNet weights) downloads from "
             "download.pytorch.org at first use, and this machine reaches only "
             "package registries." + "".join(f" {why}." for why in absent)]
    if not defaults or "full_average" not in amulet:
        return lines
    own = amulet["full_average"]
    n_copy, n_photo = own["copy_pairs"], own["photo_pairs"]
    need = (0.85 * (n_copy + n_photo) - n_copy) / n_photo
    met = [_name(k) for k in defaults
           if amulet[k]["precision"] >= TARGET_PRECISION]
    scores = "; ".join(f"{_name(k)}: {amulet[k]['precision']:.3f} / "
                       f"{amulet[k]['recall']:.3f} / {amulet[k]['purity']:.3f}"
                       for k in defaults)
    text = (f"On amulet6's copies, at their defaults, {', '.join(met) or 'no peer'}"
            f" reaches pair precision {TARGET_PRECISION} (precision / recall / "
            f"purity: {scores}).")
    if tuned:
        recall, key = _best(amulet, tuned)
        photo, photo_key = _best(amulet, tuned, "photo_recall")
        text += (f" At the threshold of most recall with precision >= "
                 f"{TARGET_PRECISION} on this very set (an upper bound, not held "
                 f"out), the best peer, {_name(key)}, reaches recall {recall:.3f} "
                 f"(copy recall {amulet[key]['copy_recall']:.3f}), and the most "
                 f"photo recall of those rows is {photo:.3f} ({_name(photo_key)}); "
                 f"the "
                 f"inspector's full mode, held out: recall {own['recall']:.3f}, "
                 f"copy recall {own['copy_recall']:.3f}, photo recall "
                 f"{own['photo_recall']:.3f}.")
    high, high_key = _best(amulet, defaults, "photo_recall")
    text += (f" A peer finds more photo pairs only where it joins much of the "
             f"set: photo recall {high:.3f} ({_name(high_key)} at its default) at "
             f"precision {amulet[high_key]['precision']:.3f}. So the peers miss "
             f"the pairs of different photos of one amulet too. With every copy "
             f"pair found, pair recall 0.85 needs photo recall {need:.2f} (of "
             f"{n_photo} photo pairs beside {n_copy} copy pairs).")
    return lines + ["", text]
