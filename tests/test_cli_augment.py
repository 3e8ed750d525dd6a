"""``hybridclf augment`` and the library function behind it."""

import codecs
import csv
import os
import shutil

import numpy as np
import pytest
from sklearn.model_selection import GroupKFold

from hybridclf import ClassAwareAugmenter, read_image
from hybridclf.augment import augment_folder
from hybridclf.cli import main

from .conftest import require_shared


@pytest.fixture
def uneven_tree(texture_folder, tmp_path):
    """brick 6, grass 2 + a truncated PNG, gravel 4 + a text file; a stray file."""
    root = tmp_path / "data"
    for name, n in (("brick", 6), ("grass", 2), ("gravel", 4)):
        (root / name).mkdir(parents=True)
        for i in range(n):
            shutil.copy(texture_folder / name / f"{i}.png", root / name / f"{i}.png")
    good = (texture_folder / "grass" / "5.png").read_bytes()
    (root / "grass" / "broken.png").write_bytes(good[: len(good) // 2])
    (root / "gravel" / "notes.jpg").write_text("not a photo")
    (root / "README.txt").write_text("class per folder")
    return root


def read_manifest(out):
    # a byte-order mark, for Excel (a Thai class name was mojibake without)
    assert (out / "manifest.csv").read_bytes().startswith(codecs.BOM_UTF8)
    with open(out / "manifest.csv", newline="", encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


def count_images(out):
    return {d.name: len(list(d.glob("*.png"))) for d in sorted(out.iterdir())
            if d.is_dir()}


def test_balances_the_tree_and_writes_the_manifest(uneven_tree, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["augment", "--data-dir", str(uneven_tree), "--output-dir",
                 str(out), "--seed", "0", "--n-jobs", "1"])
    stdout = capsys.readouterr().out
    assert code == 0
    assert count_images(out) == {"brick": 6, "grass": 6, "gravel": 6}

    rows = read_manifest(out)
    assert len(rows) == 18
    assert list(rows[0]) == ["file", "label", "kind", "source", "similarity",
                             "techniques"]
    generated = [r for r in rows if r["kind"] == "generated"]
    assert [r["label"] for r in generated].count("grass") == 4
    assert [r["label"] for r in generated].count("gravel") == 2
    for row in rows:
        assert (out / row["file"]).is_file()
        assert row["source"].split("/")[0] == row["label"]
        if row["kind"] == "original":
            assert row["source"] == row["file"]
            assert (out / row["file"]).read_bytes() == (
                uneven_tree / row["file"]).read_bytes()
        else:
            assert (uneven_tree / row["source"]).is_file()
            assert float(row["similarity"]) >= 0.6 and row["techniques"]
            assert read_image(out / row["file"]).shape == (96, 96, 3)

    table = {line.split()[0]: line.split()[1:] for line in stdout.splitlines()
             if line.split() and line.split()[0] in {"brick", "grass", "gravel",
                                                      "total"}}
    # before, unreadable, target, generated, redrawn, dropped, after
    assert table["grass"] == ["2", "1", "6", "4", "0", "0", "6"]
    assert table["gravel"] == ["4", "1", "6", "2", "0", "0", "6"]
    assert table["total"][-1] == "18"
    assert "3 file(s) not used" in stdout
    assert "broken.png: truncated image data" in stdout
    assert "notes.jpg: not an image: the content is text" in stdout
    assert "README.txt: not inside a class folder" in stdout


def test_target_samples_and_factor(uneven_tree, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["augment", "--data-dir", str(uneven_tree), "--output-dir",
                 str(out), "--target-samples", "5", "--augmentation-factor", "2",
                 "--quality-threshold", "0.5"])
    assert code == 0
    # brick is above the target and stays; grass is capped at 2 x 2
    assert count_images(out) == {"brick": 6, "grass": 4, "gravel": 5}


def test_same_seed_same_files(uneven_tree, tmp_path):
    for name in ("a", "b"):
        assert main(["augment", "--data-dir", str(uneven_tree), "--output-dir",
                     str(tmp_path / name), "--seed", "3"]) == 0
    rows_a, rows_b = read_manifest(tmp_path / "a"), read_manifest(tmp_path / "b")
    assert rows_a == rows_b
    for row in rows_a:
        assert (tmp_path / "a" / row["file"]).read_bytes() == (
            tmp_path / "b" / row["file"]).read_bytes()


def test_errors_are_reported(uneven_tree, tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "old.txt").write_text("x")
    assert main(["augment", "--data-dir", str(uneven_tree),
                 "--output-dir", str(taken)]) == 1
    assert "not an empty folder" in capsys.readouterr().err
    assert main(["augment", "--data-dir", str(uneven_tree),
                 "--output-dir", str(uneven_tree / "out")]) == 1
    assert "inside the input folder" in capsys.readouterr().err
    assert main(["augment", "--data-dir", str(tmp_path / "nope"),
                 "--output-dir", str(tmp_path / "o")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["augment", "--data-dir", str(uneven_tree), "--output-dir",
                 str(tmp_path / "o"), "--target-samples", "0"]) == 2
    assert "argument --target-samples: must be a positive integer" in (
        capsys.readouterr().err)
    assert main([]) == 2
    assert "augment" in capsys.readouterr().out


def test_a_class_whose_every_file_is_unreadable_is_named_with_its_files(
        uneven_tree, tmp_path, capsys):
    # only "grass" (2 photos, a truncated one) and a class holding nothing
    # but a truncated copy: imblearn's "needs to have more than 1 class" before
    for name in ("brick", "gravel"):
        shutil.rmtree(uneven_tree / name)
    (uneven_tree / "chipped").mkdir()
    shutil.copy(uneven_tree / "grass" / "broken.png", uneven_tree / "chipped" / "b.png")
    out = tmp_path / "out"
    assert main(["augment", "--data-dir", str(uneven_tree), "--output-dir",
                 str(out), "--n-jobs", "1"]) == 1
    err = capsys.readouterr().err
    assert "No image of class 'chipped'" in err
    assert "chipped/b.png (truncated image data" in err
    assert "--target-samples N" in err
    assert not out.exists() or not any(out.iterdir())
    # the fix it names works: grass alone, brought up to a count
    assert main(["augment", "--data-dir", str(uneven_tree), "--output-dir",
                 str(out), "--n-jobs", "1", "--target-samples", "3"]) == 0
    assert count_images(out) == {"grass": 3}


def test_library_result_and_grouped_folds(uneven_tree, tmp_path):
    result = augment_folder(uneven_tree, tmp_path / "out",
                            ClassAwareAugmenter(random_state=0))
    assert [(c.label, c.before, c.unreadable, c.after) for c in result.classes] == [
        ("brick", 6, 0, 6), ("grass", 2, 1, 6), ("gravel", 4, 1, 6)]
    assert result.n_generated == 6 and len(result.skipped) == 3
    assert result.augmenter.n_generated_ == {"brick": 0, "grass": 4, "gravel": 2}
    rows = read_manifest(tmp_path / "out")
    groups = np.array([r["source"] for r in rows])
    for train, test in GroupKFold(n_splits=3).split(rows, groups=groups):
        assert not set(groups[train]) & set(groups[test])


def test_an_augmented_folder_augmented_again_keeps_each_copys_original(
        uneven_tree, tmp_path):
    """``hybridclf augment`` on a folder it wrote (a higher target): before,
    the first run's copies became "original" rows, each its own source, so
    grouping by ``source`` put 42 of 208 copies of a messy amulet folder in
    another group than their photo. They stay copies of their photo now."""
    augment_folder(uneven_tree, tmp_path / "once",
                   ClassAwareAugmenter(random_state=0))
    augment_folder(tmp_path / "once", tmp_path / "twice",
                   ClassAwareAugmenter(target_samples=9, random_state=0))
    first = {r["file"]: r for r in read_manifest(tmp_path / "once")}
    rows = read_manifest(tmp_path / "twice")
    originals = {r["file"] for r in rows if r["kind"] == "original"}
    assert originals == {f for f, r in first.items() if r["kind"] == "original"}
    for row in rows:
        assert row["source"] in originals
        if row["file"] in first:  # written by the first run: its row is kept
            assert row["kind"] == first[row["file"]]["kind"]
            assert row["source"] == first[row["file"]]["source"]
    assert sum(r["kind"] == "generated" for r in rows) == 27 - len(originals)


def test_a_run_stopped_half_way_leaves_no_copies_without_manifest(
        uneven_tree, tmp_path, monkeypatch):
    """A full disk (or Ctrl+C) while the copies were written left a folder
    of originals and copies without manifest.csv: a training on it grouped
    no copy with its source. Nothing is left now."""
    from hybridclf.augment import _folder

    written = []

    def encode_then_fail(image, as_jpeg):
        if written:
            raise OSError(28, "No space left on device")
        written.append(1)
        return b"partial"

    monkeypatch.setattr(_folder, "_encode", encode_then_fail)
    out = tmp_path / "out"
    with pytest.raises(OSError, match="No space left"):
        augment_folder(uneven_tree, out, ClassAwareAugmenter(random_state=0,
                                                             n_jobs=1))
    assert [p for p in out.rglob("*")] == []
    # the remains of a killed run are named, not just "not empty"
    (out / ".partial-123" / "brick").mkdir(parents=True)
    with pytest.raises(ValueError, match="'.partial-123', the remains of an "
                                         "interrupted run. Delete it"):
        augment_folder(uneven_tree, out)


def test_the_photos_are_read_one_at_a_time_not_all_at_once(uneven_tree, tmp_path,
                                                           monkeypatch):
    # six 8000x6000 photos took 3.3 GB: every photo was decoded and held
    # until the last copy was written; now a thread holds one photo at a time
    import weakref

    from hybridclf.augment import _folder

    alive, most = [], []

    def read_and_track(path, **kwargs):
        image = _folder_read(path, **kwargs)
        most.append(sum(ref() is not None for ref in alive))
        alive.append(weakref.ref(image))
        return image

    _folder_read = _folder.read_image
    monkeypatch.setattr(_folder, "read_image", read_and_track)
    result = augment_folder(uneven_tree, tmp_path / "out",
                            ClassAwareAugmenter(random_state=0, n_jobs=1))
    assert result.n_generated == 6
    assert max(most) == 0  # no other photo was still held when one was read


def test_broken_real_files_are_listed_not_fatal(tmp_path):
    broken = require_shared("broken")
    root = tmp_path / "data"
    shutil.copytree(broken, root / "awkward")
    (root / "other").mkdir()
    shutil.copy(broken / "good_reference.jpg", root / "other" / "a.jpg")
    result = augment_folder(root, tmp_path / "out", ClassAwareAugmenter(
        target_samples=2, random_state=0))
    reasons = dict((p.split("/")[-1], r) for p, r in result.skipped)
    assert "truncated" in reasons["truncated_half.jpg"]
    assert "empty" in reasons["zero_bytes.jpg"]
    assert result.classes[1].after == 2


def test_an_image_too_small_for_training_is_left_out_not_multiplied(uneven_tree,
                                                                    tmp_path):
    # a 1x1 placeholder was copied as an original and augmented 1x1 copies
    # made of it, which balanced its class on disk; training then refused
    # every one of them as too small, as predict does
    from PIL import Image

    from hybridclf.io import ImageLoader

    Image.new("RGB", (1, 1), (90, 120, 30)).save(uneven_tree / "grass" / "dot.png")
    out = tmp_path / "out"
    result = augment_folder(uneven_tree, out, ClassAwareAugmenter(random_state=0))
    reasons = {p.split("/")[-1]: r for p, r in result.skipped}
    assert reasons["dot.png"].startswith("too small (1x1 pixels)")
    assert [(c.label, c.before, c.unreadable, c.after) for c in result.classes] == [
        ("brick", 6, 0, 6), ("grass", 2, 2, 6), ("gravel", 4, 1, 6)]
    rows = read_manifest(out)
    assert not [r for r in rows if r["source"].startswith("grass/dot")]
    # every image written is one that training reads
    _, failed = ImageLoader().read_each([str(out / r["file"]) for r in rows])
    assert failed == [None] * len(rows)


def test_a_file_name_that_is_not_utf8_reaches_the_manifest_and_its_group(
        uneven_tree, tmp_path):
    from hybridclf.training._groups import read_groups_csv

    raw = os.fsencode(uneven_tree / "grass") + b"/caf\xe9.png"
    os.rename(os.fsencode(uneven_tree / "grass" / "0.png"), raw)
    out = tmp_path / "out"
    augment_folder(uneven_tree, out, ClassAwareAugmenter(random_state=0))
    assert b"grass/caf\xe9.png" in (out / "manifest.csv").read_bytes()
    name = os.fsdecode(os.fsencode(out / "grass") + b"/caf\xe9.png")
    copies = [str(p) for p in (out / "grass").glob("caf*_aug*")]
    groups = read_groups_csv(out / "manifest.csv", [name, *copies], root=out)
    assert len(copies) >= 1 and len(set(groups)) == 1
    # its bytes are a file name's, not a code page's: augmented again, the
    # manifest is read and its copies stay copies
    augment_folder(out, tmp_path / "again",
                   ClassAwareAugmenter(target_samples=7, random_state=0))
    with open(tmp_path / "again" / "manifest.csv", newline="",
              encoding="utf-8-sig", errors="surrogateescape") as fh:
        rows = {r["file"]: r for r in csv.DictReader(fh)}
    assert all(rows[os.path.relpath(c, out)]["kind"] == "generated" for c in copies)


@pytest.mark.parametrize("code_page, name", [("cp1252", "café"),
                                              ("cp874", "พระสมเด็จ")])
def test_a_manifest_saved_in_a_legacy_code_page_is_refused_by_every_reader(
        uneven_tree, tmp_path, capsys, code_page, name):
    """A manifest.csv opened in Excel and saved as its plain "CSV" (the
    Windows code page): augmenting the folder again made the earlier copies
    "original" rows of their own, and inspect counted them as photos, both
    without a word (train refused it). Each reader refuses it now, with the
    file, its line and how to save it as UTF-8."""
    os.rename(uneven_tree / "grass", uneven_tree / name)
    once = tmp_path / "once"
    augment_folder(uneven_tree, once, ClassAwareAugmenter(random_state=0))
    manifest = once / "manifest.csv"
    text = manifest.read_text(encoding="utf-8-sig")
    manifest.write_bytes(text.encode(code_page))
    again = ["augment", "--data-dir", str(once), "--output-dir",
             str(tmp_path / "twice"), "--target-samples", "7"]
    for command in (again, ["inspect", "--data-dir", str(once), "--output-dir",
                            str(tmp_path / "report"), "--quick", "--n-jobs", "1"]):
        assert main(command) == 1
        error = capsys.readouterr().err
        assert f"{str(manifest)!r} is not UTF-8 (line " in error
        assert "'CSV UTF-8'" in error and "LibreOffice" in error
    assert not (tmp_path / "twice").exists()
    # saved again as "CSV UTF-8": the copies stay copies of their photo
    manifest.write_bytes(text.encode("utf-8-sig"))
    assert main(again) == 0
    generated = {r["file"] for r in read_manifest(once) if r["kind"] == "generated"}
    rows = {r["file"]: r for r in read_manifest(tmp_path / "twice")}
    assert generated and all(rows[f]["kind"] == "generated" for f in generated)
