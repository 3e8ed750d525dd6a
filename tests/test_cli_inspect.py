"""Tests of ``hybridclf inspect``."""

import codecs
import csv
import json
import os

import cv2
import numpy as np
import pytest

from hybridclf.cli import main


@pytest.fixture()
def small_dataset(tmp_path, texture_folder):
    """The texture folder plus a broken file and a copy filed in another class."""
    root = tmp_path / "data"
    for path in texture_folder.rglob("*.png"):
        target = root / path.parent.name / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    (root / "brick" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 40)
    copy = cv2.imread(str(root / "grass" / "0.png"))
    cv2.imwrite(str(root / "gravel" / "copy_of_grass.jpg"), np.ascontiguousarray(
        copy[:, ::-1]))
    return root


def test_inspect_writes_the_three_files_and_a_summary(small_dataset, tmp_path,
                                                      capsys):
    out = tmp_path / "report"
    code = main(["inspect", "--data-dir", str(small_dataset), "--output-dir",
                 str(out), "--quick", "--n-jobs", "2"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "LABEL CONFLICTS: 1" in printed
    assert "Unreadable: 1" in printed
    assert "StratifiedGroupKFold" in printed
    assert "Skipped:" in printed
    data = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert data["n_files"] == 26 and data["n_label_conflicts"] == 1
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page
    # a byte-order mark: Excel on Windows showed Thai names as mojibake without
    assert (out / "duplicate_groups.csv").read_bytes().startswith(codecs.BOM_UTF8)
    with open(out / "duplicate_groups.csv", newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 26 and set(rows[0]) == {"file", "group"}
    group = {r["file"]: r["group"] for r in rows}
    copy = str(small_dataset / "gravel" / "copy_of_grass.jpg")
    assert group[copy] == group[str(small_dataset / "grass" / "0.png")]


def test_inspect_labels_lists_and_shows_likely_wrong_labels(small_dataset,
                                                           tmp_path, capsys):
    (small_dataset / "brick" / "0.png").rename(small_dataset / "grass" / "brick0.png")
    out = tmp_path / "report"
    assert main(["inspect", "--data-dir", str(small_dataset), "--output-dir",
                 str(out), "--quick", "--labels", "--n-jobs", "1"]) == 0
    printed = capsys.readouterr().out
    assert (out / "label_issues.csv").read_bytes().startswith(codecs.BOM_UTF8)
    with open(out / "label_issues.csv", newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["file", "given_label", "suggested_label", "score"]
    assert ["grass/brick0.png", "grass", "brick"] in [r[:3] for r in rows[1:]]
    scores = [float(r[3]) for r in rows[1:]]
    assert scores == sorted(scores)
    # 24 textures and the copy; the broken file is not checked
    assert f"Likely wrong labels: {len(rows) - 1} of 25 images" in printed
    data = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert len(data["label_issues"]) == len(rows) - 1
    page = (out / "report.html").read_text(encoding="utf-8")
    section = page[page.index("<h2>Likely wrong labels"):]
    section = section[:section.index("<h2>", 4)]
    block = section[section.index("brick0.png"):]
    block = block[:block.index('<div class="group">')
                  if '<div class="group">' in block else None]
    assert block.count("<img") == 4  # the photo and 3 bricks beside it
    assert block.count("<br>brick; similarity") == 3


def test_a_rerun_without_labels_leaves_no_older_label_list(small_dataset, tmp_path):
    """``inspect --labels`` then, the labels fixed, ``inspect`` into the same
    folder: before, the first run's label_issues.csv stayed beside the new
    report, listing photos already moved. A model directory's is kept."""
    out = tmp_path / "report"
    args = ["inspect", "--data-dir", str(small_dataset), "--output-dir", str(out),
            "--quick", "--n-jobs", "1"]
    assert main([*args, "--labels"]) == 0
    assert (out / "label_issues.csv").is_file()
    assert main(args) == 0
    assert not (out / "label_issues.csv").exists()
    # a folder with no earlier report keeps any label_issues.csv it holds
    model = tmp_path / "model"
    model.mkdir()
    (model / "label_issues.csv").write_text("file,given_label,suggested_label,score\n")
    args[args.index(str(out))] = str(model)
    assert main(args) == 0
    assert (model / "label_issues.csv").is_file()


def test_a_rerun_keeps_the_groups_merged_by_hand(small_dataset, tmp_path):
    """The report asks to merge near misses by hand in duplicate_groups.csv;
    before, the next run into the folder (after moving the photos its label
    check flagged) overwrote those merges without a word."""
    out = tmp_path / "report"
    args = ["inspect", "--data-dir", str(small_dataset), "--output-dir", str(out),
            "--quick", "--n-jobs", "1"]
    assert main(args) == 0
    groups_csv = out / "duplicate_groups.csv"
    rows = list(csv.DictReader(groups_csv.open(newline="", encoding="utf-8-sig")))
    rows[1]["group"] = rows[0]["group"]  # one object, by the person's eye
    with groups_csv.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, ["file", "group"])
        writer.writeheader()
        writer.writerows(rows)
    edited = groups_csv.read_text(encoding="utf-8")
    assert main(args) == 0
    assert (out / "duplicate_groups.edited.csv").read_text(encoding="utf-8") == edited
    assert groups_csv.read_text(encoding="utf-8") != edited
    assert main(args) == 0  # nothing edited since: nothing more kept
    assert sorted(p.name for p in out.glob("duplicate_groups*")) == [
        "duplicate_groups.csv", "duplicate_groups.edited.csv"]


def _read_groups(path):
    with open(path, newline="", encoding="utf-8-sig") as fh:
        return {row["file"]: row["group"] for row in csv.DictReader(fh)}


def _partition(groups):
    members = {}
    for name, group in groups.items():
        members.setdefault(group, set()).add(name)
    return {frozenset(files) for files in members.values()}


def test_inspect_groups_carries_the_groups_given_by_hand(small_dataset, tmp_path,
                                                         monkeypatch):
    """The report asks to merge and split groups by hand in
    duplicate_groups.csv and to run inspect again; before, the new run found
    its own groups again (the edits only kept aside) and the label check
    folded by them. With --groups, a merge and a split by hand survive, a new
    photo's copy joins its photo's hand group, and a run on the CSV it wrote
    gives the same groups."""
    import hybridclf.inspect._inspect as inspect_module

    folds = []
    real_check = inspect_module.check_labels
    monkeypatch.setattr(inspect_module, "check_labels", lambda paths, labels,
                        groups, **kw: folds.append(dict(zip(paths, groups)))
                        or real_check(paths, labels, groups, **kw))
    out = tmp_path / "report"
    args = ["inspect", "--data-dir", str(small_dataset), "--output-dir", str(out),
            "--quick", "--n-jobs", "1"]
    assert main(args) == 0
    found = _read_groups(out / "duplicate_groups.csv")
    brick0, brick1 = (str(small_dataset / "brick" / f"{i}.png") for i in (0, 1))
    grass, copy = (str(small_dataset / "grass" / "0.png"),
                   str(small_dataset / "gravel" / "copy_of_grass.jpg"))
    assert found[brick0] != found[brick1] and found[grass] == found[copy]
    edited = dict(found, **{brick1: found[brick0], copy: "split by hand"})
    hand_csv = tmp_path / "edited.csv"
    with hand_csv.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([("file", "group"), *edited.items()])
    new = small_dataset / "brick" / "new_copy.jpg"  # a photo added since
    cv2.imwrite(str(new), np.ascontiguousarray(cv2.imread(brick0)[:, ::-1]))

    assert main([*args, "--groups", str(hand_csv), "--labels"]) == 0
    groups = _read_groups(out / "duplicate_groups.csv")
    assert groups[brick0] == groups[brick1] == groups[str(new)]  # merged, joined
    assert groups[grass] != groups[copy]  # split
    assert _partition({f: g for f, g in groups.items() if f != str(new)}) == \
        _partition(edited)
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["n_label_conflicts"] == 0  # the grass copy split off gravel
    # the label check folds by these groups too
    assert folds[-1][brick0] == folds[-1][brick1] == folds[-1][str(new)]
    assert folds[-1][grass] != folds[-1][copy]

    again = tmp_path / "again.csv"
    again.write_bytes((out / "duplicate_groups.csv").read_bytes())
    assert main([*args, "--groups", str(again)]) == 0
    assert _read_groups(out / "duplicate_groups.csv") == groups  # stable


def test_a_near_miss_left_apart_in_the_groups_csv_is_not_listed_again(
        small_dataset, tmp_path):
    """The report lists near misses for a person to merge by hand; one the
    person looked at and left in its own group (inspect --groups) came back
    among the near misses on every run. Now it is listed as kept apart by
    the CSV, and a near miss of a photo added since is still a near miss."""
    brick0 = small_dataset / "brick" / "0.png"
    blurred = small_dataset / "brick" / "blurred.png"
    # a heavy blur: 8 bits of perceptual hash apart, a near miss (up to 6)
    cv2.imwrite(str(blurred), cv2.GaussianBlur(cv2.imread(str(brick0)), (7, 7), 0))
    out = tmp_path / "report"
    args = ["inspect", "--data-dir", str(small_dataset), "--output-dir", str(out),
            "--quick", "--n-jobs", "1"]
    assert main(args) == 0
    pair = sorted([str(brick0), str(blurred)])
    first = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert pair in [sorted(m[:2]) for m in first["near_misses"]]

    # the person decides they are two objects: the CSV stays as written
    (small_dataset / "brick" / "new.png").write_bytes(blurred.read_bytes())
    assert main([*args, "--groups", str(out / "duplicate_groups.csv")]) == 0
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    near = [sorted(m[:2]) for m in report["near_misses"]]
    assert pair not in near
    assert pair in [sorted(m[:2]) for m in report["kept_apart"]]
    assert sorted([str(brick0), str(small_dataset / "brick" / "new.png")]) in near
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "Kept apart by your groups CSV (" in page
    assert "listed apart as kept apart, not here again" in page


def test_groups_merged_by_hand_in_a_legacy_code_page_are_kept_and_named(
        small_dataset, tmp_path, caplog):
    """duplicate_groups.csv merged in Excel and saved as its plain "CSV" (the
    Windows code page): kept, as before, and now also named as a file that
    `train --groups` refuses, with how to save it as UTF-8."""
    data = tmp_path / "ข้อมูล"
    small_dataset.rename(data)
    out = tmp_path / "report"
    args = ["inspect", "--data-dir", str(data), "--output-dir", str(out),
            "--quick", "--n-jobs", "1"]
    assert main(args) == 0
    groups_csv = out / "duplicate_groups.csv"
    groups_csv.write_bytes(groups_csv.read_text(encoding="utf-8-sig").encode(
        "cp874"))
    assert main(args) == 0
    kept = out / "duplicate_groups.edited.csv"
    assert kept.is_file()
    assert f"{str(kept)!r} is not UTF-8" in caplog.text
    assert "'hybridclf train --groups' would refuse it" in caplog.text


def test_inspect_test_data_dir_reports_leakage(small_dataset, tmp_path, capsys):
    held_out = tmp_path / "held_out" / "grass"
    held_out.mkdir(parents=True)
    (held_out / "leak.png").write_bytes((small_dataset / "grass" / "1.png")
                                        .read_bytes())
    code = main(["inspect", "--data-dir", str(small_dataset), "--test-data-dir",
                 str(tmp_path / "held_out"), "--output-dir", str(tmp_path / "r"),
                 "--quick"])
    assert code == 0
    assert "LEAKAGE: 1" in capsys.readouterr().out


def test_inspect_corruption_threshold_sets_the_exit_code(small_dataset, tmp_path,
                                                         capsys):
    args = ["inspect", "--data-dir", str(small_dataset), "--output-dir",
            str(tmp_path / "r"), "--quick"]
    assert main([*args, "--corruption-threshold", "0"]) == 1
    assert "more than --corruption-threshold 0" in capsys.readouterr().out
    assert main([*args, "--corruption-threshold", "0.1"]) == 0


def test_inspect_no_check_duplicates(small_dataset, tmp_path, capsys):
    code = main(["inspect", "--data-dir", str(small_dataset), "--output-dir",
                 str(tmp_path / "r"), "--quick", "--no-check-duplicates"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "Duplicates: 0 group(s)" in printed
    assert "check_duplicates=False" in printed


def test_inspect_bad_options(tmp_path, capsys):
    assert main(["inspect", "--data-dir", str(tmp_path / "missing"),
                 "--output-dir", str(tmp_path / "r")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["inspect", "--data-dir", str(tmp_path), "--quick",
                 "--corruption-threshold", "2"]) == 2
    assert "argument --corruption-threshold: must be a fraction in [0, 1]" in (
        capsys.readouterr().err)


def test_inspect_is_listed_in_the_help(capsys):
    assert main(["--help"]) == 0
    assert "inspect" in capsys.readouterr().out


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs")
def test_inspect_reports_a_fifo_without_opening_it(small_dataset, tmp_path, capsys):
    import threading

    os.mkfifo(small_dataset / "brick" / "x.jpg")
    out = tmp_path / "report"
    codes = []
    run = threading.Thread(target=lambda: codes.append(main(
        ["inspect", "--data-dir", str(small_dataset), "--output-dir", str(out),
         "--quick", "--no-check-duplicates"])), daemon=True)
    run.start()
    run.join(120)
    assert codes, "inspect blocked on the FIFO"
    text = (out / "report.json").read_text(encoding="utf-8")
    assert "not a regular file (a FIFO" in text and "x.jpg" in text
