"""The hybridclf command line."""

from importlib.metadata import entry_points

import joblib

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
    accuracy = float(out.split("3-fold accuracy: ")[1].split()[0])
    assert accuracy >= 0.75
    model = joblib.load(tmp_path / "model.joblib")
    assert str(tmp_path / "model.joblib") in out
    assert set(model.predict([next(texture_folder.glob("grass/*.png"))])) <= {
        "brick", "grass", "gravel"}


def test_missing_data_dir_is_an_error(tmp_path, capsys):
    code = main(["quickstart", "--data-dir", str(tmp_path / "nope"),
                 "--output-dir", str(tmp_path)])
    assert code == 1
    assert "does not exist" in capsys.readouterr().err


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "quickstart" in capsys.readouterr().out
