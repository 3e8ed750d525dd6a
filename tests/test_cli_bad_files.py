"""Every command on a folder with bad files: each named once, with its reason.

The ground rule: a file that cannot be read is reported with the reason or
loaded, never stops a whole run and is never dropped silently.
"""

import logging
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
