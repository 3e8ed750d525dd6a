"""The hybridclf command line."""

from importlib.metadata import entry_points

import pytest

from hybridclf import load_model
from hybridclf.cli import main


def test_console_script_is_declared():
    scripts = entry_points(group="console_scripts")
    assert scripts["hybridclf"].value == "hybridclf.cli:main"


def test_quickstart_on_a_folder(texture_folder, tmp_path, capsys):
    code = main(["quickstart", "--data-dir", str(texture_folder), "--output-dir",
                 str(tmp_path), "--cv-folds", "3", "--image-size", "64",
                 "--n-jobs", "1"])
    out = capsys.readouterr().out
    assert code == 0
    assert "24 images in 3 classes" in out
    accuracy = float(out.split("3-fold grouped CV accuracy: ")[1].split()[0])
    assert accuracy >= 0.75
    assert (tmp_path / "inspection" / "report.html").is_file()
    model = load_model(tmp_path / "model")
    grass = next(texture_folder.glob("grass/*.png"))
    assert set(model.predict([grass])) <= {"brick", "grass", "gravel"}
    assert "evaluation report" not in out  # no held-out folder was given


@pytest.mark.slow
def test_quickstart_builtin_digits_runs_the_whole_workflow(tmp_path, capsys):
    code = main(["quickstart", "--output-dir", str(tmp_path), "--cv-folds", "3"])
    out = capsys.readouterr().out
    assert code == 0
    for step in ("1. Inspect", "2. Train", "3. Evaluate", "4. Serve"):
        assert step in out
    for report in ("inspection/report.html", "report/report.html",
                   "model/model.json", "model/README.md"):
        assert (tmp_path / report).is_file()
    assert "predicted_class='digit_0'" in out  # the first held-out image, a 0
    # ten digit classes, 10 held-out images each; scans this clean are easy
    assert float(out.split("\naccuracy: ")[1].split()[0]) >= 0.85


def test_missing_data_dir_is_an_error(tmp_path, capsys):
    code = main(["quickstart", "--data-dir", str(tmp_path / "nope"),
                 "--output-dir", str(tmp_path)])
    assert code == 1
    assert "does not exist" in capsys.readouterr().err


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "quickstart" in capsys.readouterr().out
