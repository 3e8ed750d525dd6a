"""How well ``evaluate``'s quick check names near copies of training photos.

``hybridclf train`` records the perceptual hashes of the photos trained on
(``train_part.json``, :func:`hybridclf.inspect._fingerprint.fingerprint_record`)
and ``hybridclf evaluate`` names the test photos within the quick-mode hash
thresholds of one of them (:func:`hybridclf._held_out.near_trained_on`).
Two measurements, written to their section of docs/benchmarks.md (and
printed; docs/cli.md, evaluate, quotes them):

- **somdej_fatherguay**: 9 of its 16 original photos (5 fronts, 4 backs, by
  name) stand for the training photos; the test photos are each one
  re-encoded (JPEG quality 70), halved (INTER_AREA), its greyscale copy from
  the data set (``(bw)``), cropped by 1, 2, 3 and 5% a side, and the 7 other
  originals (new photos: a hit among them is a false hit). Each set is
  counted twice: with each file's hashes from a full decode (as train
  records them and :func:`near_trained_on` hashes a file), and as
  ``hybridclf evaluate`` hashes each photo, from the one decode of its
  model's loader (at 128 and 224 pixels: a large JPEG decoded at reduced
  scale). Also the time of the fingerprint of one photo (about 700x1000
  pixels).

- **amulet6**: ``train_folder(quick=True)`` (its grouped test part of 0.2),
  then the check on that test part (hits against the hand-checked groups of
  ``amulet6_groups.csv``: a test photo sharing a group with a training photo
  is a true near copy) and on re-encoded, halved and greyscale copies of every
  5th training photo.

Run::

    PYTHONPATH=. .venv/bin/python benchmarks/bench_near_training.py  # a minute
"""

import csv
import json
import os
import tempfile
import time
from pathlib import Path

import _common
import cv2
import numpy as np

from hybridclf._held_out import near_trained_on
from hybridclf.inspect._fingerprint import fingerprint_record, near_copies
from hybridclf.utils._row_store import content_digest


def _copies(source, folder, stem, kinds):
    """Write the copies of one photo named ``stem__kind``; their paths by kind."""
    image = cv2.imread(str(source))
    h, w = image.shape[:2]
    out = {}
    for kind in kinds:
        if kind == "reencoded":
            path, data = folder / f"{stem}__{kind}.jpg", image
            cv2.imwrite(str(path), data, [cv2.IMWRITE_JPEG_QUALITY, 70])
        elif kind == "halved":
            path = folder / f"{stem}__{kind}.png"
            cv2.imwrite(str(path), cv2.resize(image, (w // 2, h // 2),
                                              interpolation=cv2.INTER_AREA))
        elif kind == "greyscale":
            path = folder / f"{stem}__{kind}.jpg"
            grey = cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY),
                                cv2.COLOR_GRAY2BGR)
            cv2.imwrite(str(path), grey, [cv2.IMWRITE_JPEG_QUALITY, 90])
        else:  # "crop N%"
            pct = int(kind.split()[1].rstrip("%"))
            dy, dx = h * pct // 100, w * pct // 100
            path = folder / f"{stem}__crop{pct}.jpg"
            cv2.imwrite(str(path), image[dy : h - dy, dx : w - dx],
                        [cv2.IMWRITE_JPEG_QUALITY, 90])
        out.setdefault(kind, []).append(str(path))
    return out


#: the loader sizes of the evaluate columns: train --quick's and the default
LOADER_SIZES = (128, 224)


def _table(rows):
    evaluate = len(rows[0]) > 3
    lines = ["| test photos | n | named |"
             + "".join(f" named by evaluate, {s}-pixel loader |"
                       for s in LOADER_SIZES if evaluate),
             "| --- | ---: | ---: |" + " ---: |" * (len(rows[0]) - 3)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    return "\n".join(lines)


def _as_evaluate_hashes(paths, record):
    """Near copies named, and the largest bit gap to the file's hash, per loader size.

    ``hybridclf evaluate`` hashes each photo as the model's loader decodes
    it (a large JPEG at 1/2 to 1/8 scale), not from a full decode.
    """
    from hybridclf.inspect._fingerprint import (
        fingerprint_of,
        fingerprints,
        match_fingerprints,
    )
    from hybridclf.io import ImageLoader

    full = fingerprints(paths)
    named, gaps = [], []
    for size in LOADER_SIZES:
        hashes = np.stack(ImageLoader(size=size).read_measured(paths,
                                                                fingerprint_of)[1])
        named.append(len(match_fingerprints(hashes, record)))
        gaps.append(int(np.bitwise_count(hashes[:, :, 0] ^ full[:, :, 0]).max()))
    return named, gaps


def somdej(folder, work):
    """The somdej table and the milliseconds of one fingerprint."""
    originals = sorted(p for p in folder.glob("*.jpg")
                       if "(bw)" not in p.name and not p.stem.endswith("_1"))
    fronts = [p for p in originals if p.stem[-2] == "f"]
    backs = [p for p in originals if p.stem[-2] == "b"]
    trained, new = fronts[:5] + backs[:4], fronts[5:] + backs[4:]
    start = time.process_time()
    record = fingerprint_record([str(p) for p in trained])
    ms = (time.process_time() - start) / len(trained) * 1000
    kinds = {"new photos (false hits)": [str(p) for p in new]}
    for path in trained:
        for kind, paths in _copies(path, work, path.stem, [
                "reencoded", "halved", "crop 1%", "crop 2%", "crop 3%",
                "crop 5%"]).items():
            kinds.setdefault(kind, []).extend(paths)
        grey = folder / f"{path.stem}(bw).jpg"
        kinds.setdefault("greyscale (the data set's (bw) copy)", []).append(str(grey))
    rows, gaps = [], [0] * len(LOADER_SIZES)
    for kind, paths in kinds.items():
        named, gap = _as_evaluate_hashes(paths, record)
        gaps = [max(a, b) for a, b in zip(gaps, gap)]
        rows.append((kind, len(paths), len(near_copies(paths, record)), *named))
    return _table(rows), ms, gaps


def amulet6(folder, work):
    """The amulet6 table: its own test part, and copies of training photos."""
    from hybridclf.training import train_folder

    model = work / "model"
    train_folder(folder, model, quick=True, n_jobs=1)
    part = json.loads((model / "test_part.json").read_text())["files"]
    tests = [f["file"] for f in part]
    trained = set(json.loads((model / "train_part.json").read_text())["sha256"])
    names = sorted(str(p.relative_to(folder)) for p in folder.glob("*/*.jpg"))
    train = [n for n in names if content_digest(folder / n) in trained]
    rows = []
    groups_csv = folder.parent / "amulet6_groups.csv"
    if groups_csv.is_file():
        with open(groups_csv, newline="", encoding="utf-8") as fh:
            group = {row["file"]: row["group"] for row in csv.DictReader(fh)}
        leaked = {n for n in tests if group[n] in {group[t] for t in train}}
    else:
        leaked = set()
    hits = {os.path.relpath(m["file"], folder) for m in near_trained_on(
        model, [str(folder / n) for n in tests])}
    rows.append(("its own test part", len(tests), len(hits)))
    rows.append(("  of which share a hand-checked group with a training photo",
                 len(leaked), len(hits & leaked)))
    copies = {}
    for name in train[::5]:
        stem = name.replace("/", "_")[:-4]
        for kind, paths in _copies(folder / name, work, stem, [
                "reencoded", "halved", "greyscale"]).items():
            copies.setdefault(kind, []).extend(paths)
    for kind, paths in copies.items():
        rows.append((f"copies of training photos: {kind}", len(paths),
                     len(near_trained_on(model, paths))))
    return _table(rows)


START_MARKER = "<!-- bench_near_training:start -->"
END_MARKER = "<!-- bench_near_training:end -->"


def render_section(parts):
    """The docs/benchmarks.md section: date, machine, command, the tables."""
    from datetime import datetime, timezone

    info = _common.machine_info()
    date = datetime.now(timezone.utc).isoformat(timespec="minutes")
    return "\n".join([
        START_MARKER,
        "## Near copies of training photos (`benchmarks/bench_near_training.py`)",
        "",
        f"- Date: {date}",
        f"- Machine: {info['nproc']} CPUs, {info['cpu_model']}; "
        f"scikit-learn {info['scikit-learn']}, OpenCV {info['opencv']}",
        "- Command: `PYTHONPATH=. .venv/bin/python benchmarks/bench_near_training.py`",
        "- What it measures: how many test photos `hybridclf evaluate`'s quick "
        "check (`near_training`: the inspector's perceptual hashes of the "
        "training photos, recorded in `train_part.json`) names as near copies "
        "of a training photo. Counts do not depend on the load; the "
        "milliseconds do.",
        "",
        *parts,
        END_MARKER,
    ]) + "\n"


def main():
    parts = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        folder = _common.find_dataset("somdej_fatherguay")
        if folder is None:
            parts.append("somdej_fatherguay is absent: skipped\n")
        else:
            (tmp / "somdej").mkdir()
            table, ms, gaps = somdej(folder, tmp / "somdej")
            parts.append(
                f"### somdej_fatherguay\n\n{table}\n\n*named*: the hashes of "
                "each file decoded at full size, as train records them; *named "
                "by evaluate*: as `hybridclf evaluate` hashes each photo, decoded "
                "once by the model's loader (a large JPEG at 1/2 to 1/8 scale), "
                "for the predictions and the check. Largest gap between the two "
                "hashes of one photo: " + ", ".join(
                    f"{g} bits ({s}-pixel loader)" for g, s in
                    zip(gaps, LOADER_SIZES)) + "; the threshold is 6.\n\n"
                f"fingerprint: {ms:.0f} ms of CPU per photo (about 700x1000 "
                "pixels)\n")
        folder = _common.find_dataset("amulet6")
        if folder is None:
            parts.append("amulet6 is absent: skipped\n")
        else:
            (tmp / "amulet6").mkdir()
            parts.append(f"### amulet6 (train --quick, seed 0)\n\n"
                         f"{amulet6(folder, tmp / 'amulet6')}\n")
    section = render_section(parts)
    print(section)
    _common.write_section(_common.DOCS_FILE, section, START_MARKER, END_MARKER)


if __name__ == "__main__":
    main()
