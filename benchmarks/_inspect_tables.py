"""The tables and notes of bench_inspect's duplicate-group sections.

:func:`copies_lines` renders the scores on the OpenCV copies, with what was
measured and kept or not; :func:`side_by_side_lines` the speed of this
checkout beside a baseline's (``bench_inspect.py --baseline``).
"""

import statistics

import _duplicate_truth as truth_set
from _peers import PEER_KEYS, peer_label, peer_notes
from _photo_pairs import separation_lines

_COPIES_TEXT = (
    "Each amulet6 and somdej photo plus 3 copies made with OpenCV (blur, "
    "rotation by 5 to 15 degrees, brightness and contrast, sharpening, hue "
    "shift, flip, JPEG quality 20 to 50, 90% crop; `_duplicate_truth.py`); "
    "amulet6's near-identical originals share an object as "
    "`amulet6_groups.csv` says. The copies are made with random seed "
    f"{truth_set.EVALUATION_SEED}; the inspector's thresholds were tuned on "
    f"other copies (seed {truth_set.TUNING_SEED}, and seeds 2 and 3 for the "
    "checks added for issue 19: other edits and strengths for each photo), so "
    "these figures are held out; nothing was tuned on the pairs of "
    "`amulet6_groups.csv`. *Copy recall*: the recall over the pairs of one "
    "photo and its copies only; *photo recall* over the rest of the true "
    "pairs, files of different photos of one amulet (24% of amulet6's pairs: "
    "336 of 1374). Purity: the share of groups (2+ files) that hold one "
    "object. *average* is the grouping now used, *single* the transitive "
    "grouping over the same pairs; *baseline* is the code named below "
    "(`--baseline`), run in its own process on the same copies. All rows of a "
    "data set run one after the other on the same machine; their speed ratios "
    "are fair on a shared machine, the absolute speeds are not. CPU ms/image: "
    "the process CPU time (every thread) per file. Peers (`_peers.py`; no "
    "dependency of hybridclf): imagededup PHash and DHash (`pip install "
    "'imagededup>=0.3'`, the `bench` extra) at their default Hamming distance "
    "10, timed from encoding to `find_duplicates`; fastdup with its defaults "
    "(`make fastdup-venv` builds its own venv, `benchmarks/.venv-fastdup`: it "
    "pins NumPy 1.26 and scikit-learn 1.5; run in a subprocess by "
    "`_fastdup_pairs.py`, Sentry reports off, images/s and CPU time of its "
    "`run` call). Both answer with pairs, joined into groups as a user would; "
    "fastdup also gives its connected components (at its `ccthreshold`). The "
    "rows marked *tuned on this set* take the threshold of most pair recall at "
    "precision >= 0.95 on these very copies (imagededup: distance 0 to 20; "
    "fastdup: similarity 0.9 to 0.995, as its similarity table stops at 0.9 "
    "and holds each image's 2 nearest neighbours, its default): an upper "
    "bound for the method, not a held-out figure.")

_COPIES_NOTES = [
    "Targets: pair precision >= 0.95 at pair recall >= 0.85, group purity >= "
    "0.98.", "",
    "What limits the pair recall: the photo pairs. Of amulet6_groups.csv's 21 "
    "pairs of different photos of one amulet, 3 are found (with their "
    "copies: 48 file pairs); the others look no closer than different amulets "
    "of one mould by the inspector's measures (their aligned grey pixels "
    "correlate at 0.82 to 0.925 where they align at all, different amulets "
    "of one mould up to 0.93) and by the local-feature and wear-mark measures "
    "of the table below: a threshold that finds a 4th photo pair lets in "
    "about as many pairs of different amulets or more, each merging two "
    "families of 4 files (16 wrong file pairs against 16 right ones). So "
    "none is used. The "
    "four pairs of different amulets with the most SIFT inliers (66 to 156, "
    "more than any listed pair; all wat_nong_e_duk) have their spots line up "
    "once aligned, checked by eye for issue 19: they look like photos of one "
    "amulet missing from the csv. The inspector does not join them either "
    "(aligned grey pixels 0.88 to 0.91).", "",
    "Kept, each measured on the tuning copies: a pair that fails the "
    "alignment on the grey images and whose value-channel hashes are the "
    "closer is aligned again on the value channel (max of R, G, B; a hue "
    "shift leaves it as it was) and must score 0.02 more; every two files "
    "that share a duplicate but are not linked are aligned too (closed "
    "triangles), so the average linkage sees a family of copies whole; a hash "
    "pair whose CNN embeddings are under 0.6 must also align (it is listed "
    "as a near miss when it does not); 120 ORB features instead of 200 (150: "
    "same pairs, about 20% less search CPU; 120: the same groups on tuning "
    "seeds 0 and 3, 0.003 less copy recall on seed 2, about 10% less CPU of "
    "the whole full-mode inspection); the alignment runs in `n_jobs` "
    "threads; each file's ORB features are found once per search (the mirror "
    "image's only for the second file of a pair) and reused by the pass over "
    "closed triangles; the value channel and the greyscale check by "
    "OpenCV's per-channel kernels instead of NumPy's reductions over the "
    "channel axis (same hashes, about 2.4 ms less per 224x224 photo). Tried "
    "for speed and not kept: 5 ORB pyramid levels instead of 8 (lost copies "
    "on seeds 0, 2 and 3, saved 1-5% of CPU); the value-channel retry only "
    "when the value hashes are 2 (or 4) bits the closer, not 1: 35% (63%) "
    "fewer retries and 8-15% (14-24%) less alignment CPU, but 0.003 (0.008) "
    "less copy recall on seed 3. "
    "Measured and not kept: candidates by value-channel hash (12 bits) as "
    "well: +0.003 of copy recall in full mode for 35% more CPU; 3 or 4 "
    "nearest neighbours instead of 5: up to 0.011 less copy recall; the value "
    "channel for every pair that fails on the grey images: 2.6 times the "
    "retries (30% more search CPU) for 0.003 more copy recall. Earlier: the "
    "embedding averaged with the mirror's (flip TTA) and "
    "the GeM-pooled block -4 map of Lite0 put crops and rotations no further "
    "above different amulets of one mould than the head embedding does; "
    "average linkage at 0.5 instead of 0.6 gained 0.03 of recall and lost "
    "0.015 of precision, so 0.6 stays.",
]


_VERIFIER_ROWS = {"full_verified_any": "average + verifier, any pair",
                  "full_verified_quarter": "average + verifier, 1/4 of pairs"}


def _rule_text(rule):
    return (f"SIFT inliers >= {rule['sift']}, inlier share >= {rule['ratio']}, "
            f"detail >= {rule['detail']}, embedding >= {rule['embedding']}")


def verifier_lines(copies):
    """The combined verifier's rules and what they found where chosen and held out."""
    rules = copies["amulet6"]["verifier_rules"]
    lines = ["", "#### A combined verifier, held out (`_pair_verifier.py`)", "",
             "Cluster, then verify: two of the inspector's full-mode groups are "
             "joined when pairs of their files pass four bars at once (SIFT "
             "inliers of a RANSAC homography, those inliers' share of the "
             "ratio-test matches, the correlation of fine detail once aligned, "
             "the CNN embedding), *any pair*: one verified pair; *1/4 of "
             "pairs*: a quarter of their cross pairs. The bars are chosen on "
             "the originals of one half of amulet6's classes (grid search: "
             "photo pairs of `amulet6_groups.csv` found less twice the pairs "
             "of different amulets of one class and side let in) and scored on "
             "the copies of the other half; somdej gets the bars chosen on all "
             "of amulet6. Its CPU time is in the rows above (the inspector's "
             "plus the verifier's).", "",
             "| classes scored | bars (chosen on the other half) | chosen on: "
             "photo pairs / different | held out: photo pairs / different |",
             "| --- | --- | ---: | ---: |"]
    for half in rules["halves"]:
        lines.append(f"| {', '.join(half['classes'])} | {_rule_text(half['rule'])} "
                     f"| {half['photo_pairs']} / {half['different_pairs']} | "
                     f"{half['held_out_photo_pairs']} / "
                     f"{half['held_out_different_pairs']} |")
    lines.append(f"| somdej_fatherguay | {_rule_text(rules['somdej'])} (all of "
                 "amulet6) | | |")
    checked = "; ".join(f"{name}: {e['verifier']['checked_pairs']} pairs of files "
                        f"measured, {e['verifier']['group_links']} pairs of groups "
                        f"with a verified pair, {e['verifier']['seconds']:.0f} s"
                        for name, e in copies.items() if "verifier" in e)
    lines += ["", f"Verifier work: {checked}."]
    amulet = copies["amulet6"]
    base = amulet["full_average"]
    verdicts = []
    for key, label in _VERIFIER_ROWS.items():
        v = amulet[key]
        ok = v["precision"] >= 0.95 and v["purity"] >= 0.98
        cpu = v["cpu_ms_per_image"] / base["cpu_ms_per_image"]
        verdicts.append(
            f"*{label}*: precision {v['precision']:.3f}, recall {v['recall']:.3f} "
            f"({v['recall'] - base['recall']:+.3f}), purity {v['purity']:.3f} "
            f"(precision and purity bars {'met' if ok else 'missed'}), CPU "
            f"x{cpu:.1f}")
    lines += ["", "The bar to keep it: precision >= 0.95 and purity >= 0.98, more "
              "recall than the inspector alone (precision / recall / purity "
              f"{base['precision']:.3f} / {base['recall']:.3f} / "
              f"{base['purity']:.3f}), somdej still 1.0 / 1.0, and little more "
              f"CPU. On amulet6: {'; '.join(verdicts)}. Held out, each half's "
              "bars find fewer new photo pairs than they let in pairs of "
              "different amulets (the table above); what recall the stricter "
              "merge gains comes from copies, not from photo pairs (photo "
              "recall as the inspector's), at a cost in precision and purity "
              "and the SIFT features of every file with a close neighbour. So "
              "the verifier is not used by the inspector."]
    return lines


def _copies_row(name, entry, key):
    s = entry[key]
    if key in PEER_KEYS:
        mode, grouping = peer_label(key, s)
    elif key.startswith("baseline"):
        mode, grouping = "full", "baseline"
    elif key in _VERIFIER_ROWS:
        mode, grouping = "full", _VERIFIER_ROWS[key]
    else:
        mode, grouping = key.split("_")
    cpu = s.get("cpu_ms_per_image")
    return (f"| {name} | {entry['n_files']} | {mode} | {grouping} | "
            f"{s['precision']:.3f} | {s['recall']:.3f} | "
            f"{s['copy_recall']:.3f} | {s['photo_recall']:.3f} | "
            f"{s['purity']:.3f} | {s['groups']} | {s['images_per_s']:.1f} | "
            f"{'n/a' if cpu is None else f'{cpu:.1f}'} |")


def copies_lines(copies):
    lines = ["", "### Duplicate groups on OpenCV copies (ground truth without the "
             "inspector)", "", _COPIES_TEXT, "",
             "| data | files | mode | grouping | pair precision | pair recall | "
             "copy recall | photo recall | group purity | groups | images/s | "
             "CPU ms/image |",
             "| --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | "
             "---: | ---: |"]
    for name, entry in copies.items():
        for key in ("quick_single", "quick_average", "full_single",
                    "baseline_full_average", "full_average", *_VERIFIER_ROWS,
                    *PEER_KEYS):
            if key in entry:
                lines.append(_copies_row(name, entry, key))
    if "photo_pairs" in copies.get("amulet6", {}):
        lines += separation_lines(copies["amulet6"]["photo_pairs"])
    if "verifier_rules" in copies.get("amulet6", {}):
        lines += verifier_lines(copies)
    notes = _COPIES_NOTES[:2] + peer_notes(copies) + [""] + _COPIES_NOTES[2:]
    return lines + [""] + notes


def somdej_peer_lines(peers):
    """Rows of the somdej pair table for the peers' default answers."""
    lines = []
    for key in PEER_KEYS:
        if key in peers:
            p = peers[key]
            mode, grouping = peer_label(key, p)
            lines.append(f"| {mode}, {grouping} | {p['true_pairs']} | "
                         f"{p['found_pairs']} | {p['correct']} | "
                         f"{p['precision']:.3f} | {p['recall']:.3f} |")
    return lines


def cpu_estimate(report):
    """(one core, two cores) images/s of full mode on amulet6 by CPU time, or None.

    The medians over the probe runs of this checkout (``_speed_probe.py``):
    the lower bound runs everything on one core, the upper bound the threaded
    phases on two. Unlike the wall time, the CPU time of a process hardly
    depends on how many other jobs share the machine.
    """
    runs = (report.get("side_by_side") or {}).get("this")
    if not runs:
        return None
    return (statistics.median(r["one_core_images_per_s"] for r in runs),
            statistics.median(r["quiet_images_per_s"] for r in runs))


def side_by_side_lines(report):
    """The speed of this checkout by phase, beside a baseline's when given."""
    runs = report.get("side_by_side")
    if not runs:
        return []
    if "baseline" in runs:
        head = ["", "### Full mode side by side with the baseline", "",
                f"Baseline: {report['baseline_label']} (its `hybridclf` package, "
                "from `git archive COMMIT hybridclf | tar -x -C /tmp/base`). The "
                "two codes ran in turn, twice. "]
    else:
        head = ["", "### Full mode by phase", "",
                "This checkout, twice (with `--baseline DIR`, another version "
                "runs in turn with it). "]
    head[-1] += (
        "Each row is one process "
        "(`benchmarks/_speed_probe.py`) that inspects amulet6 in full mode "
        "once to warm up and then 3 times with `n_jobs=2` (images/s: "
        "median wall time; CPU ms/image: process CPU time of every thread), "
        "then 3 times with `n_jobs=1`, split by phase (CPU ms per image: "
        "reading, CNN, alignment, the rest). *Estimate*: the images/s of a "
        "quiet 2-core machine by those CPU times, the threaded phases "
        "(reading, CNN, and the alignment where the code threads it) on 2 "
        "cores and the rest on one (an upper bound: threads never split work "
        "perfectly), and everything on one core (the lower bound). CPU time "
        "measured under load runs slower than on a quiet machine (shared "
        "caches and cores), so both bounds are on the low side; the wall-time "
        "images/s depend on the other jobs and are not comparable across runs.")
    lines = head + ["",
             "| code | images/s (wall) | CPU ms/image | read | CNN | align | rest | "
             "estimate: one core | estimate: two cores |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for key, label in (("baseline", "baseline"), ("this", "this checkout")):
        for run in runs.get(key, []):
            ph = run["phases_ms_per_image"]
            lines.append(
                f"| {label} | {run['images_per_s']:.1f} | "
                f"{run['cpu_ms_per_image']:.1f} | {ph['read']:.1f} | "
                f"{ph['cnn']:.1f} | {ph.get('align', 0.0):.1f}"
                f"{'' if run['alignment_threaded'] else ' (1 thread)'} | "
                f"{ph['rest']:.1f} | {run['one_core_images_per_s']:.0f} | "
                f"{run['quiet_images_per_s']:.0f} |")
    return lines
