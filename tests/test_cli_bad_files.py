"""Every command on a folder with bad files: each named once, with its reason.

The ground rule: a file that cannot be read is reported with the reason or
loaded, never stops a whole run and is never dropped silently.
"""

import csv
import json
import logging
import os
import shutil
import warnings

import pytest

from hybridclf.cli import main


@pytest.fixture
def bad_tree(texture_folder, tmp_path):
    """The texture classes, with a text file named .jpg and an empty file."""
    root = tmp_path / "data"
    shutil.copytree(texture_folder, root)
    (root / "brick" / "notes.jpg").write_text("not a photo")
    (root / "grass" / "zero_bytes.png").write_bytes(b"")
    return root


@pytest.fixture(scope="module")
def model_dir(texture_folder, tmp_path_factory):
    model = tmp_path_factory.mktemp("model")
    assert main(["train", "--data-dir", str(texture_folder), "--output-dir",
                 str(model), "--features", "color", "--image-size", "32",
                 "--cv-folds", "2", "--test-size", "0", "--n-jobs", "1"]) == 0
    return model


def _screen(capsys, caplog, caught):
    """What a user sees: standard output and error, warnings, WARNING logs."""
    printed = capsys.readouterr()
    logged = [r.getMessage() for r in caplog.records
              if r.levelno >= logging.WARNING]
    return "\n".join([printed.out, printed.err, *logged,
                      *(str(w.message) for w in caught)])


@pytest.mark.parametrize("command", ["train", "evaluate", "augment"])
def test_each_skipped_file_is_named_once(command, bad_tree, model_dir, tmp_path,
                                         capsys, caplog):
    # train, evaluate and augment logged a WARNING line per skipped file on
    # top of the warning or list that names it: every file showed twice
    args = {
        "train": ["train", "--data-dir", str(bad_tree), "--features", "color",
                  "--image-size", "32", "--cv-folds", "2", "--test-size", "0",
                  "--no-cache"],
        "evaluate": ["evaluate", "--model-dir", str(model_dir), "--test-data-dir",
                     str(bad_tree), "--n-repeats", "1", "--neighbours", "0"],
        "augment": ["augment", "--data-dir", str(bad_tree)],
    }[command] + ["--output-dir", str(tmp_path / "out"), "--n-jobs", "1"]
    capsys.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(args) == 0
    screen = _screen(capsys, caplog, caught)
    for name, reason in (("notes.jpg", "not an image"),
                         ("zero_bytes.png", "empty file")):
        assert screen.count(name) == 1, screen
        assert reason in screen


def test_train_leaves_out_an_undecodable_photo_and_says_so(bad_tree, tmp_path,
                                                           capsys):
    # a truncated photo among the others stopped the whole training, while
    # evaluate, predict and extract named it and went on
    good = (bad_tree / "gravel" / "3.png").read_bytes()
    (bad_tree / "gravel" / "cut.png").write_bytes(good[: len(good) // 2])
    model = tmp_path / "model"
    with pytest.warns(UserWarning, match="notes.jpg"):
        assert main(["train", "--data-dir", str(bad_tree), "--output-dir",
                     str(model), "--features", "color", "--image-size", "32",
                     "--cv-folds", "2", "--test-size", "0", "--n-jobs", "1",
                     "--no-cache"]) == 0
    printed = capsys.readouterr().out
    assert "1 file(s) could not be decoded and were left out" in printed
    assert "gravel/cut.png: truncated image data" in printed
    assert "24 images in 3 classes" in printed
    info = json.loads((model / "model.json").read_text())
    assert info["data_fingerprint"]["n_images"] == 24
    left_out = {u["file"]: u["reason"] for u in info["unreadable"]}
    assert set(left_out) == {"brick/notes.jpg", "grass/zero_bytes.png",
                             "gravel/cut.png"}
    assert left_out["gravel/cut.png"].startswith("truncated image data")
    card = (model / "README.md").read_text()
    assert "3 file(s) of the data folders were left out" in card
    assert "`gravel/cut.png`: truncated image data" in card


def test_train_names_the_left_out_photos_when_too_few_remain(
        texture_folder, tmp_path, capsys):
    # every photo of a class undecodable: the error that a second class is
    # needed comes with the files that were left out
    data = tmp_path / "data"
    shutil.copytree(texture_folder / "brick", data / "brick")
    (data / "grass").mkdir()
    for i in range(2):
        good = (texture_folder / "grass" / f"{i}.png").read_bytes()
        (data / "grass" / f"cut{i}.png").write_bytes(good[: len(good) // 2])
    with pytest.warns(UserWarning, match=r"(?s)2 file\(s\) could not be decoded.*"
                      r"grass/cut0\.png: truncated.*grass/cut1\.png"):
        assert main(["train", "--data-dir", str(data), "--output-dir",
                     str(tmp_path / "model"), "--no-cache", "--n-jobs", "1"]) == 1
    assert "at least two classes" in capsys.readouterr().err
    assert not (tmp_path / "model" / "model.json").exists()


@pytest.mark.parametrize("command", ["predict", "extract"])
def test_a_broken_link_named_as_input_is_a_row_not_the_end(command, model_dir,
                                                           texture_folder,
                                                           tmp_path, capsys):
    # a symbolic link loop (or to a deleted file) named on the command line
    # stopped the run: "The input ... does not exist"; inside a folder it was
    # a row with its reason
    (tmp_path / "loop_a").symlink_to(tmp_path / "loop_b")
    (tmp_path / "loop_b").symlink_to(tmp_path / "loop_a")
    (tmp_path / "gone.jpg").symlink_to(tmp_path / "deleted.jpg")
    good = str(texture_folder / "brick" / "0.png")
    output = (["--output", str(tmp_path / "p.csv")] if command == "predict"
              else ["--output-dir", str(tmp_path / "features")])
    assert main([command, "--model-dir", str(model_dir), good,
                 str(tmp_path / "loop_a"), str(tmp_path / "gone.jpg"),
                 *output]) == 0
    printed = capsys.readouterr().out
    assert "2 unreadable" in printed
    if command == "predict":
        with open(tmp_path / "p.csv", newline="", encoding="utf-8-sig") as fh:
            rows = {os.path.basename(r["file"]): r for r in csv.DictReader(fh)}
        assert rows["0.png"]["label"] == "brick"
        assert "a loop of symbolic links" in rows["loop_a"]["error"]
        assert "deleted.jpg', which does not exist" in rows["gone.jpg"]["error"]
    else:
        assert "loop_a: cannot be read" in printed
        assert "gone.jpg: cannot be read" in printed


def test_quickstart_serves_a_readable_photo_when_the_first_is_not(
        model_dir, texture_folder, tmp_path, capsys):
    # quickstart --data-dir my_photos/ whose first photo is truncated: the
    # inspection, training and evaluation went past it, then its last step
    # sent it to the service and ended on "HTTP Error 400: Bad Request"
    pytest.importorskip("fastapi")
    from hybridclf.cli._quickstart import _serve_once

    data = tmp_path / "data"
    shutil.copytree(texture_folder, data)
    good = (data / "brick" / "0.png").read_bytes()
    (data / "brick" / "0-cut.png").write_bytes(good[: len(good) // 2])
    (data / "brick" / "0-notes.png").write_text("not a photo")
    _serve_once(str(model_dir), str(data))
    printed = capsys.readouterr().out
    assert f"with {data / 'brick' / '0.png'}:" in printed
    assert "predicted_class='brick'" in printed


@pytest.mark.parametrize("command", ["predict", "extract", "train", "inspect"])
@pytest.mark.parametrize("holds", ["nothing", "a hidden file", "an empty folder"])
def test_a_folder_holding_no_file_is_an_error_naming_it(command, holds, model_dir,
                                                         tmp_path, capsys):
    # predict and extract of an empty folder, or of a folder named x.jpg
    # (a mistyped path), said "0 files" and exited 0 with an empty CSV or
    # dataset; inspect wrote a report of nothing; only train said why
    folder = tmp_path / "x.jpg"
    folder.mkdir()
    if holds == "a hidden file":
        (folder / ".DS_Store").write_bytes(b"\0")
    elif holds == "an empty folder":
        (folder / "cats").mkdir()
    output = tmp_path / "out"
    args = {"predict": ["--model-dir", str(model_dir), str(folder), "--output",
                        str(output / "p.csv")],
            "extract": ["--model-dir", str(model_dir), str(folder), "--output-dir",
                        str(output)],
            "train": ["--data-dir", str(folder), "--output-dir", str(output)],
            "inspect": ["--data-dir", str(folder), "--output-dir", str(output),
                        "--quick"]}[command]
    assert main([command, *args]) == 1
    err = capsys.readouterr().err
    assert f"error: No images found in {str(folder)!r}" in err
    assert "(a folder, not an image file" in err
    assert ".jpg" in err and "names starting with '.' are left out" in err
    assert "Check the path" in err
    assert not output.exists()


def test_an_empty_folder_among_photos_is_named_in_a_warning(model_dir, tmp_path,
                                                            texture_folder,
                                                            caplog):
    # one of several inputs mistyped: the others are predicted, the empty
    # one is named
    (tmp_path / "empty").mkdir()
    photo = sorted(p for p in texture_folder.rglob("*") if p.is_file())[0]
    assert main(["predict", "--model-dir", str(model_dir), str(tmp_path / "empty"),
                 str(photo), "--output", str(tmp_path / "p.csv")]) == 0
    assert f"No images found in {str(tmp_path / 'empty')!r}, an empty folder" in (
        caplog.text)
    assert len((tmp_path / "p.csv").read_text().splitlines()) == 2
