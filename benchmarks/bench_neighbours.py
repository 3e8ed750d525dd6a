"""The cost of the nearest training photos: search time and model-directory size.

Three measurements for issue 17 (the evidence behind each answer):

- **Search time** of :class:`hybridclf.neighbours.EmbeddingIndex` on a
  synthetic index of 10,000 training photos of the real CNN dimension (the
  output width of the default ``CNNFeatures``), holding, as a trained index
  does, each photo and its degraded views (:data:`hybridclf.neighbours.VIEWS`):
  50,000 entries. The embeddings are non-negative and clustered like CNN
  outputs (60 classes). Per query image, for batches of 1 (the service) and
  32 (``hybridclf predict``), interleaved repeats, median: the search as
  adopted (on :data:`~hybridclf.neighbours.SEARCH_DIMENSIONS` principal axes,
  one BLAS thread under 64 queries) for the novelty check alone, with 3
  neighbours in the same search (``predict --neighbours 3``) and the
  neighbours alone (``explain()``); then the same search with NumPy's BLAS
  threads, and the full-space search of before.

- **Model-directory growth** per training photo on amulet6: the JPEG size of
  the thumbnails for a few sides and qualities (made from the photos as
  training loads them, 224 pixels), then one real ``train_folder`` with the
  default pipeline and thumbnails, its ``neighbours.npz`` taken apart
  (embeddings of the photos and their views, thumbnails, names and labels)
  and the same directory written with ``thumbnails=False``.

- **How many dimensions**: on amulet6's grouped folds, the index as training
  builds it in 256, 192, 128, 96 and 64 dimensions against the full space:
  top-3 agreement and novelty decisions (known photos, blurred, rotated,
  scikit-image samples, another amulet type).

It rewrites its section of ``docs/benchmarks.md``::

    .venv/bin/python benchmarks/bench_neighbours.py            # about 10 min
    .venv/bin/python benchmarks/bench_neighbours.py --quick    # no training, no docs
    .venv/bin/python benchmarks/bench_neighbours.py --render   # docs from the last run
"""

import argparse
import json
import os
import statistics
import tempfile
import time
import zipfile
from datetime import datetime, timezone

import _common
import numpy as np

from hybridclf._embedding_index import _search
from hybridclf.neighbours import (
    INDEX_FILE,
    SEARCH_DIMENSIONS,
    THUMBNAIL_QUALITY,
    THUMBNAIL_SIDE,
    VIEWS,
    index_with_views,
    jpeg_thumbnails,
    novelty_and_neighbours,
    novelty_scores,
)

START, END = "<!-- bench_neighbours:start -->", "<!-- bench_neighbours:end -->"
COMMAND = ".venv/bin/python benchmarks/bench_neighbours.py"
N_PHOTOS = 10_000
N_CLASSES = 60
K = 3
BATCHES = (1, 32)
# the search in fewer dimensions studied on amulet6 (None: the full space)
STUDY_DIMS = (None, 256, 192, 128, 96, 64)
# scikit-image's sample photos: strangers to an amulet model
SAMPLES = ("astronaut", "coffee", "chelsea", "rocket", "camera", "brick", "grass",
           "gravel", "moon", "page", "text", "immunohistochemistry", "colorwheel",
           "retina", "hubble_deep_field", "logo", "cat", "clock", "coins")
THUMB_GRID = [(96, 60), (96, 75), (112, 60), (112, 75), (112, 85), (128, 75)]


def cnn_dimension():
    """The output width of the default CNN block."""
    from hybridclf.features import CNNFeatures

    return CNNFeatures().fit(np.zeros((2, 64, 64, 3), np.uint8)).n_features_out_


def synthetic_index(dim, n_photos=N_PHOTOS, seed=0, n_components=SEARCH_DIMENSIONS):
    """An index of ``n_photos`` clustered embeddings and their views, and queries.

    Also the seconds its fit took (the principal axes of the search).
    """
    rng = np.random.default_rng(seed)
    centres = np.abs(rng.normal(size=(N_CLASSES, dim))).astype(np.float32)
    labels = rng.integers(0, N_CLASSES, n_photos)
    photos = centres[labels] + np.abs(rng.normal(size=(n_photos, dim))).astype(
        np.float32)
    views = [photos + 0.3 * np.abs(rng.normal(size=photos.shape)).astype(np.float32)
             for _ in VIEWS]
    query_labels = rng.integers(0, N_CLASSES, 256)
    queries = centres[query_labels] + np.abs(rng.normal(size=(256, dim))).astype(
        np.float32)
    t0 = time.perf_counter()
    index = index_with_views(photos, views, [f"class_{c}" for c in labels],
                             n_components=n_components,
                             files=[f"class_{c}/{i}.jpg" for i, c in
                                    enumerate(labels)])
    return index, queries, time.perf_counter() - t0


def _all_blas_threads(search):
    """``search`` with the BLAS threads NumPy sets, whatever the batch."""
    def run(q):
        few, _search._FEW_QUERIES = _search._FEW_QUERIES, 0
        try:
            return search(q)
        finally:
            _search._FEW_QUERIES = few
    return run


def _methods(index, full):
    both = f"novelty + {K} neighbours (one search)"
    d, n = index.embeddings_.shape[1], full.embeddings_.shape[1]
    return {
        f"novelty only, {d} dims": lambda q: novelty_scores(index, q, k=1),
        f"{both}, {d} dims": lambda q: novelty_and_neighbours(index, q, k=K),
        f"{K} neighbours alone, {d} dims": lambda q: index.neighbours(q, K),
        f"{both}, {d} dims, BLAS threads as NumPy sets them": _all_blas_threads(
            lambda q: novelty_and_neighbours(index, q, k=K)),
        f"{both}, {n} dims (before: full space)": _all_blas_threads(
            lambda q: novelty_and_neighbours(full, q, k=K)),
    }


def time_search(index, full, queries, repeats):
    """ms per query image of each method and batch size (median), wall and CPU.

    The CPU time is that of this process (all its threads): on a machine
    shared with other jobs the wall time also counts the waits for a core.
    """
    methods = _methods(index, full)
    times = {(m, b, c): [] for m in methods for b in BATCHES for c in ("", "cpu")}
    for method in methods.values():
        method(queries[:1])  # the float32 copies, made once
    for r in range(repeats):
        for batch in BATCHES:
            q = queries[(r * batch) % 224 : (r * batch) % 224 + batch]
            for name, method in methods.items():
                t0, c0 = time.perf_counter(), time.process_time()
                method(q)
                c1, t1 = time.process_time(), time.perf_counter()
                times[name, batch, ""].append((t1 - t0) * 1000 / batch)
                times[name, batch, "cpu"].append((c1 - c0) * 1000 / batch)
    return {key: statistics.median(v) for key, v in times.items() if v}


def thumbnail_sizes(images):
    """Mean JPEG bytes per photo for each (side, quality) of THUMB_GRID."""
    sizes = {}
    for side, quality in THUMB_GRID:
        thumbs = jpeg_thumbnails(images, side=side, quality=quality)
        sizes[side, quality] = float(np.mean([len(t) for t in thumbs]))
    return sizes


def reduction_study(folder, groups_csv, dims=STUDY_DIMS, quantile=0.995):
    """Exact float16 search against searches in fewer dimensions, on amulet6.

    Grouped 5-fold: each fold's index holds its training photos and their
    views; its test photos, their blurred (sigma 2) and rotated (15 degrees)
    copies, the scikit-image sample photos and somdej_fatherguay (another
    amulet type) are scored. The novelty threshold of each search is the
    ``quantile`` of the known test photos' scores, as training learns it.
    """
    import skimage.data
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedGroupKFold

    from hybridclf import load_image_folder
    from hybridclf.augment import gaussian_blur, rotate
    from hybridclf.features import CNNFeatures
    from hybridclf.io import ImageLoader
    from hybridclf.neighbours import degraded_views
    from hybridclf.training import read_groups_csv

    paths, labels = load_image_folder(folder)
    labels = np.asarray(labels)
    groups = read_groups_csv(groups_csv, paths, root=folder)
    loader = ImageLoader(size=224)
    images = loader.fit_transform(paths)
    cnn = CNNFeatures().fit(images[:2])
    embed = {"photos": cnn.transform(images),
             "blurred": cnn.transform(np.stack([gaussian_blur(i, 2.0)
                                                for i in images])),
             "rotated": cnn.transform(np.stack([rotate(i, 15.0) for i in images]))}
    views = [cnn.transform(v) for v in degraded_views(images)]
    samples = [np.asarray(getattr(skimage.data, name)()) for name in SAMPLES]
    samples = [np.stack([s] * 3, -1) if s.ndim == 2 else s[..., :3] for s in samples]
    strangers = {"scikit-image samples": cnn.transform(loader.transform(samples))}
    other = _common.find_dataset("somdej_fatherguay")
    if other is not None:
        strangers["somdej_fatherguay"] = cnn.transform(loader.transform(
            sorted(str(p) for p in other.glob("*.jpg"))))
    folds = StratifiedGroupKFold(5, shuffle=True, random_state=0).split(
        images, labels, groups)
    scores = {d: {} for d in dims}
    overlap = {d: [] for d in dims}
    kept = {d: [] for d in dims}
    for train, test in folds:
        for d in dims:
            # the index of hybridclf train, its axes learned from the fold
            index = index_with_views(embed["photos"][train],
                                     [v[train] for v in views], labels[train],
                                     n_components=d, files=[str(i) for i in train])
            if d is None:
                exact, full_rows = index, index.embeddings_.astype(np.float32)
            else:
                kept[d].append(float(np.sum((full_rows @ index.components_.T) ** 2)
                                     / np.sum(full_rows ** 2)))
            for name, X in [*((k, v[test]) for k, v in embed.items()),
                            *strangers.items()]:
                scores[d].setdefault(name, []).append(novelty_scores(index, X))
            near = index.neighbours(embed["photos"][test], K)
            truth = exact.neighbours(embed["photos"][test], K)
            overlap[d] += [len({n["file"] for n in a} & {n["file"] for n in b}) / K
                           for a, b in zip(near, truth)]
    rows_out, decided = [], {}
    for d in dims:
        known = np.concatenate(scores[d]["photos"])
        threshold = np.quantile(known, quantile)
        decided[d] = np.concatenate([np.concatenate(v) for v in scores[d].values()]
                                    ) > threshold
        row = {"dims": d or embed["photos"].shape[1],
               "energy": float(np.mean(kept[d])) if kept[d] else 1.0,
               "overlap": float(np.mean(overlap[d])),
               "same decisions": float(np.mean(decided[d] == decided[dims[0]]))}
        for name in scores[d]:
            every = np.concatenate(scores[d][name])
            row[name] = float(np.mean(every > threshold))
            if name in strangers:
                row[f"{name} AUROC"] = float(roc_auc_score(
                    np.r_[np.zeros(len(known)), np.ones(len(every))],
                    np.r_[known, every]))
        rows_out.append(row)
    return rows_out


def _npz_parts(path):
    """Bytes of each array of an .npz archive (stored, not compressed)."""
    with zipfile.ZipFile(path) as archive:
        return {info.filename[:-4]: info.file_size for info in archive.infolist()}


def _dir_size(folder):
    return sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))


def model_growth(folder, groups_csv):
    """Train the default pipeline on amulet6 with and without thumbnails."""
    from hybridclf.training import train_folder

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for thumbnails in (True, False):
            model = os.path.join(tmp, f"model_{thumbnails}")
            t0 = time.perf_counter()
            training = train_folder(folder, model, groups_csv=groups_csv,
                                    thumbnails=thumbnails, n_jobs=2,
                                    cache_dir=os.path.join(tmp, "features"))
            n_train = len(training.result.train_indices)
            out[thumbnails] = {
                "seconds": time.perf_counter() - t0, "n_train": n_train,
                "dir": _dir_size(model),
                "index": os.path.getsize(os.path.join(model, INDEX_FILE)),
                "parts": _npz_parts(os.path.join(model, INDEX_FILE)),
                "n_entries": len(training.result.neighbours.embeddings_),
                "dim": training.result.neighbours.embeddings_.shape[1],
            }
            print(f"trained with thumbnails={thumbnails} in "
                  f"{out[thumbnails]['seconds']:.0f} s", flush=True)
    return out


def _both(s, b, before=False, key="ms"):
    """ms per image of novelty + neighbours, as adopted or before."""
    tag = f"{s['full_dim']} dims (before: full space)" if before else f"{s['dim']} dims"
    return s[key][f"novelty + {K} neighbours (one search), {tag}|{b}"]


def target_notes(report):
    """The issue's two targets against this run's figures, in sentences."""
    s = report["search"]
    both = {b: _both(s, b) for b in BATCHES}
    before = {b: _both(s, b, before=True) for b in BATCHES}
    cpu = {b: _both(s, b, key="cpu_ms") for b in BATCHES}
    notes = [
        f"- *The search adds at most 2 ms per image* ({s['n_photos']:,} photos, "
        f"{s['n_entries']:,} entries): novelty and {K} neighbours in one search "
        f"of {s['dim']} dimensions cost "
        + ", ".join(f"{both[b]:.2f} ms per image at batch {b}" for b in BATCHES)
        + " in wall time under load, " + ", ".join(
            f"{cpu[b]:.2f} ms" for b in BATCHES) + " of CPU time: "
        + ("met" if max(both.values()) <= 2 else
           "met in CPU time, not in the wall time of this shared machine"
           if max(cpu.values()) <= 2 else
           "met at batch 32" if both[32] <= 2 else "not met")
        + f" (the full {s['full_dim']}-dimensional search "
        "before: " + ", ".join(f"{before[b]:.2f} ms at batch {b}" for b in BATCHES)
        + f"). The search reads {s['mb_float32']:.0f} MB of float32 rows per batch "
        f"instead of {s['mb_float32_full']:.0f} MB; fitting its axes took "
        f"{s['fit_seconds']:.0f} s."]
    g = report.get("growth")
    if g:
        w = g["True"]
        n = w["n_train"]
        fixed = w["parts"].get("components", 0)
        per_photo = (w["index"] - fixed) / n / 1000
        notes.append(
            f"- *The model directory grows by at most 5 KB per training photo "
            f"with thumbnails*: {per_photo:.2f} KB per photo "
            + ("(met)" if per_photo <= 5 else "(not met)")
            + f": {w['n_entries'] // n} float16 embeddings of {w['dim']} values, "
            "the thumbnail, the file name and the label. The axes of the search "
            f"add a fixed {fixed / 1000:.0f} KB per model (not per photo: "
            f"{fixed / n / 1000:.2f} KB per photo for amulet6's {n} photos, "
            f"{fixed / 10_000 / 1000:.2f} KB per photo at 10,000).")
    return notes


def _growth_lines(report):
    t = report.get("thumbnails")
    lines = ["", "### Model-directory growth per training photo (amulet6)", ""]
    if t:
        lines += [f"Mean JPEG bytes of a thumbnail of the {t['n']} amulet6 photos "
                  "(loaded at 224 pixels, as training does); the default is "
                  f"{THUMBNAIL_SIDE} px, quality {THUMBNAIL_QUALITY}.", "",
                  "| longest side (px) | JPEG quality | bytes per photo |",
                  "| ---: | ---: | ---: |"]
        lines += [f"| {side} | {q} | {b:.0f} |" for (side, q), b in
                  ((tuple(map(int, k.split("|"))), v) for k, v in t["sizes"].items())]
    g = report.get("growth")
    if not g:
        return lines
    w, wo = g["True"], g["False"]
    n = w["n_train"]
    parts = w["parts"]
    fixed = parts.get("components", 0)
    thumbs = (parts.get("thumbnail_data", 0) + parts.get("thumbnail_offsets", 0)) / n
    names = (parts["files"] + parts["labels"] + parts["sources"]) / n
    return lines + [
        "", f"One `train_folder` of the default pipeline on amulet6 "
        f"({n} training photos, {w['n_entries']} index entries of {w['dim']} "
        f"float16 values; {w['seconds']:.0f} s):", "",
        "| part of the model directory | KB per training photo |",
        "| --- | ---: |",
        f"| embeddings (each photo and its {len(VIEWS)} views, {w['dim']} dims) "
        f"| {parts['embeddings'] / n / 1000:.2f} |",
        f"| thumbnails (JPEG, {THUMBNAIL_SIDE} px, quality {THUMBNAIL_QUALITY}) "
        f"| {thumbs / 1000:.2f} |",
        f"| file names, labels (once per photo), sources | {names / 1000:.2f} |",
        f"| **neighbours.npz** with thumbnails, less the axes "
        f"| **{(w['index'] - fixed) / n / 1000:.2f}** |",
        f"| neighbours.npz with `--no-thumbnails`, less the axes "
        f"| {(wo['index'] - fixed) / n / 1000:.2f} |",
        f"| the axes of the search (float16, fixed: {fixed / 1000:.0f} KB per model) "
        f"| {fixed / n / 1000:.2f} |",
        "", f"The whole model directory: {w['dir'] / 1e6:.2f} MB with "
        f"thumbnails, {wo['dir'] / 1e6:.2f} MB without; of which "
        f"{(w['dir'] - w['index']) / 1e6:.2f} MB is the model itself "
        "(it does not grow with the photos)."]


def render(report):
    lines = [START, "## Nearest training photos (`benchmarks/bench_neighbours.py`)",
             "", f"- Date: {report['date']}", f"- Machine: {report['machine']}",
             f"- Command: `{COMMAND}`",
             "- Measured on 2 cores shared with other jobs (load average about "
             f"{report.get('load', 8):.0f}): absolute times are inflated; compare "
             "the rows of one table.", ""]
    s = report["search"]
    lines += [
        f"### Search time, {s['n_photos']:,} training photos "
        f"({s['n_entries']:,} entries with their views)",
        "",
        f"Exact cosine search in NumPy on the first {s['dim']} principal axes "
        f"(`SEARCH_DIMENSIONS`) of the {s['full_dim']}-dimensional CNN embedding, "
        "learned when the index is fitted; float16 stored, float32 copy in "
        f"memory ({s['mb_float32']:.0f} MB; {s['mb_float32_full']:.0f} MB in the "
        "full space). Searches of fewer than 64 queries run on one BLAS thread. "
        f"ms per query image, median of {s['repeats']} interleaved repeats: "
        "wall time, and the CPU time of the process (all its threads; the wall "
        "time also counts the waits for a core of this shared machine).", "",
        "| method | " + " | ".join(f"batch {b} wall | batch {b} CPU"
                                    for b in BATCHES) + " |",
        "| --- | " + " | ".join("---: | ---:" for _ in BATCHES) + " |"]
    cpu = s.get("cpu_ms", {})
    for name in s["methods"]:
        cells = [f"{times[f'{name}|{b}']:.2f}" if f"{name}|{b}" in times else ""
                 for b in BATCHES for times in (s["ms"], cpu)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += _growth_lines(report)
    study = report.get("study")
    if study:
        names = [k for k in study[0]
                 if k not in ("dims", "energy", "overlap", "same decisions")]
        lines += [
            "", "### How many dimensions: the search on amulet6", "",
            "Each fold's index (grouped 5-fold on amulet6: its training photos "
            "and their views) as `hybridclf train` builds it, its axes learned "
            "from the fold (uncentred principal axes; queries projected too but "
            "keeping their full length, so that a stranger's energy off the axes "
            "keeps it far); float16 storage. *Energy*: the share of the index's "
            "squared norm on the axes; *top-3 overlap*: share of the full "
            "space's 3 nearest training photos found; *same decisions*: share "
            "of all the photos below scored known/novel as in the full space; "
            "then the share of each set over the novelty threshold (the 0.995 "
            "quantile of the known test photos' scores).", "",
            "| dimensions | energy | top-3 overlap | same decisions | "
            + " | ".join(names) + " |",
            "| ---: | ---: | ---: | ---: | " + " | ".join("---:" for _ in names) + " |"]
        for row in study:
            lines.append(f"| {row['dims']} | {row['energy']:.3f} | "
                         f"{row['overlap']:.3f} | {row['same decisions']:.3f} | "
                         + " | ".join(f"{row[n]:.3f}" for n in names) + " |")
    lines += ["", "### Targets (issue 17)", ""] + target_notes(report)
    if report.get("notes"):
        lines += [""] + report["notes"]
    lines += ["", END]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="2,000 photos, few repeats, no training, no docs update")
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--notes", nargs="*", default=[],
                        help="lines added under the tables")
    parser.add_argument("--render", action="store_true",
                        help="rewrite the docs section from the last run's JSON")
    args = parser.parse_args(argv)
    if args.render:
        report = json.loads((_common.RESULTS_DIR / "bench_neighbours.json")
                            .read_text())
        _common.write_section(_common.DOCS_FILE, render(report), START, END)
        print(f"wrote {_common.DOCS_FILE}")
        return 0
    dim = cnn_dimension()
    n_photos = 2000 if args.quick else N_PHOTOS
    repeats = 8 if args.quick else args.repeats
    index, queries, fit_seconds = synthetic_index(dim, n_photos)
    full, _, _ = synthetic_index(dim, n_photos, n_components=None)
    ms = time_search(index, full, queries, repeats)
    info = _common.machine_info()
    report = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M+00:00"),
        "machine": f"{info['nproc']} CPUs, {info['cpu_model']}; numpy "
                   f"{info['numpy']}",
        "load": os.getloadavg()[0],
        "search": {"n_photos": n_photos, "n_entries": len(index.embeddings_),
                   "dim": index.embeddings_.shape[1], "full_dim": dim,
                   "repeats": repeats, "fit_seconds": fit_seconds,
                   "mb_float32": index.embeddings_.nbytes * 2 / 1e6,
                   "mb_float32_full": full.embeddings_.nbytes * 2 / 1e6,
                   "methods": list(_methods(index, full)),
                   "ms": {f"{m}|{b}": v for (m, b, c), v in ms.items() if not c},
                   "cpu_ms": {f"{m}|{b}": v for (m, b, c), v in ms.items() if c}},
        "notes": args.notes,
    }
    del full
    folder = _common.find_dataset("amulet6")
    if folder is None:
        print("amulet6 not found (set HYBRIDCLF_DATA): no size figures")
    else:
        from hybridclf import load_image_folder
        from hybridclf.io import ImageLoader

        paths, _ = load_image_folder(folder)
        images = ImageLoader(size=224).fit_transform(paths)
        report["thumbnails"] = {"n": len(images), "sizes": {
            f"{s}|{q}": b for (s, q), b in thumbnail_sizes(images).items()}}
        if not args.quick:
            groups_csv = folder.parent / "amulet6_groups.csv"
            growth = model_growth(folder, groups_csv)
            report["growth"] = {str(k): v for k, v in growth.items()}
            report["study"] = reduction_study(folder, groups_csv)
    if not args.quick:
        _common.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        (_common.RESULTS_DIR / "bench_neighbours.json").write_text(
            json.dumps(report, indent=1))
    text = render(report)
    print(text)
    if not args.quick:
        _common.write_section(_common.DOCS_FILE, text, START, END)
        print(f"wrote {_common.DOCS_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
