"""The hybridclf command line."""

import gc
import json
import os
import shlex
import subprocess
import sys
from importlib.metadata import entry_points

import numpy as np
import pytest

from hybridclf import load_model
from hybridclf.cli import main


def test_console_script_is_declared():
    scripts = entry_points(group="console_scripts")
    assert scripts["hybridclf"].value == "hybridclf.cli:main"


def test_imports_pause_the_collector_and_calls_in_a_process_freeze_nothing(
        capsys):
    """The command's imports run with the garbage collector off, and it is on
    again after; only the process's own command (argv None) freezes objects,
    so calling main() in a process never keeps its garbage for good."""
    from hybridclf.cli._common import collector_paused

    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    frozen = gc.get_freeze_count()
    assert main(["train", "--help"]) == 0
    assert main(["inspect", "--data-dir", "/nonexistent-folder"]) == 1
    assert gc.get_freeze_count() == frozen
    assert gc.isenabled()
    capsys.readouterr()


def test_a_command_imports_neither_pytest_nor_pandas_until_it_needs_them(
        texture_folder, tmp_path):
    """scikit-learn and imbalanced-learn would import pandas and pytest with
    the command's modules; both are kept out (a fresh interpreter: this one
    imported them long ago), and the label issues' cleanlab, which needs
    pandas, still imports it later: the training finds its label issues."""
    argv = ["train", "--data-dir", str(texture_folder), "--output-dir",
            str(tmp_path / "model"), "--features", "hog", "color",
            "--cv-folds", "3", "--image-size", "64", "--n-jobs", "1"]
    code = ("import sys\nfrom hybridclf.cli import main\n"
            f"assert main({argv!r}) == 0\n"
            "import sklearn.utils.fixes\n"
            "print('pandas at import:', sklearn.utils.fixes.pd is not None)\n"
            "print('pytest:', 'pytest' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True,
                            text=True, env=os.environ, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-2:] == ["pandas at import: False",
                                               "pytest: False"]
    metadata = json.loads((tmp_path / "model" / "model.json").read_text())
    assert metadata["label_issues"]["n_checked"] > 0


def test_quickstart_on_a_folder(texture_folder, tmp_path, capsys):
    tmp_path = tmp_path / "quick start"  # the printed commands still copy-paste
    code = main(["quickstart", "--data-dir", str(texture_folder), "--output-dir",
                 str(tmp_path), "--cv-folds", "3", "--image-size", "64",
                 "--n-jobs", "1"])
    out = capsys.readouterr().out
    assert code == 0
    commands = [shlex.split(line.split("hybridclf ", 1)[1].split(",")[0])
                for line in out.splitlines() if "hybridclf " in line]
    assert sum(str(tmp_path / "model") in argv for argv in commands) >= 5
    assert "24 images in 3 classes" in out
    accuracy = float(out.split("3-fold grouped CV accuracy: ")[1].split()[0])
    assert accuracy >= 0.75
    assert (tmp_path / "inspection" / "report.html").is_file()
    model = load_model(tmp_path / "model")
    grass = next(texture_folder.glob("grass/*.png"))
    assert set(model.predict([grass])) <= {"brick", "grass", "gravel"}
    # no held-out folder given: the test part that train held out is scored
    assert "the test part held out by train" in out
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    info = json.loads((tmp_path / "model" / "model.json").read_text())
    assert report["metrics"]["accuracy"] == info["metrics"]["accuracy"]


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


def test_a_missing_extra_is_one_error_line_naming_it(tmp_path, monkeypatch,
                                                      capsys):
    # --scheduler without Dask installed ended in a traceback
    from hybridclf.sample_data import write_digits_folder

    write_digits_folder(tmp_path / "digits", n_per_class=3, size=16)
    monkeypatch.setitem(sys.modules, "distributed", None)  # not installed
    code = main(["train", "--data-dir", str(tmp_path / "digits"), "--output-dir",
                 str(tmp_path / "model"), "--features", "color", "--scheduler",
                 "local:2"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: ") and "Traceback" not in err
    assert "pip install 'hybridclf[scale]'" in err


def test_ctrl_c_is_one_line_and_status_130(tmp_path, monkeypatch, capsys):
    # a user stopping a long inspection sees one line, not a traceback
    from hybridclf.cli import _inspect

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(_inspect, "run", interrupted)
    code = main(["inspect", "--data-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 130
    assert err == "interrupted\n"


def test_output_piped_into_head_ends_quietly(tmp_path, monkeypatch, capsys):
    # 'hybridclf predict DIR | head' ended with "error: [Errno 32] Broken
    # pipe" and status 1, as if the run had failed
    from hybridclf.cli import _inspect

    def reader_gone(args):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(_inspect, "run", reader_gone)
    code = main(["inspect", "--data-dir", str(tmp_path)])
    assert code == 141  # 128 + SIGPIPE, as a shell tool stopped by it
    assert capsys.readouterr().err == ""


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "quickstart" in capsys.readouterr().out


@pytest.mark.parametrize("command", [[], ["train"], ["predict"], ["serve"],
                                     ["evaluate"], ["inspect"]])
def test_help_imports_no_heavy_library(command):
    # a fresh interpreter: this one has imported them all already
    code = ("import sys\nfrom hybridclf.cli import main\n"
            f"assert main({command + ['--help']!r}) == 0\n"
            "heavy = {'sklearn', 'torch', 'onnxruntime', 'numpy'} & set(sys.modules)\n"
            "print('imported:', *sorted(heavy))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True,
                            text=True, env=os.environ)
    assert result.returncode == 0, result.stderr
    assert "--help" in result.stdout  # the help was printed
    assert result.stdout.splitlines()[-1] == "imported:"


@pytest.mark.parametrize("argv, message", [
    (["train", "--data-dir", "d", "--output-dir", "o", "--cv-folds", "1"],
     "argument --cv-folds: must be a number >= 2"),
    # 0.7 passed the parser and stopped the training with "The 'test_size'
    # parameter of grouped_train_test_split must be ... in the range (0, 0.5]"
    (["train", "--data-dir", "d", "--output-dir", "o", "--test-size", "0.7"],
     "argument --test-size: must be a fraction in [0, 0.5]"),
    (["train", "--data-dir", "d", "--output-dir", "o", "--classifier", "svm"],
     "argument --classifier: invalid choice: 'svm' (choose from ridge, "),
    (["train", "--data-dir", "d", "--output-dir", "o", "--features", "hog", "x"],
     "argument --features: invalid choice: 'x'"),
    (["train", "--data-dir", "d", "--output-dir", "o", "--n-jobs", "0"],
     "argument --n-jobs: must be a non-zero integer"),
    (["predict", "--model-dir", "m", "x.jpg", "--max-pixels", "0"],
     "argument --max-pixels: must be a positive integer"),
    (["predict", "--model-dir", "m", "x.jpg", "--threshold", "1.5"],
     "argument --threshold: must be a fraction in [0, 1]"),
    (["serve", "--model-dir", "m", "--port", "70000"],
     "argument --port: must be a port number in [1, 65535]"),
    (["evaluate", "--model-dir", "m", "--test-data-dir", "t", "--output-dir", "o",
      "--n-repeats", "two"], "argument --n-repeats: not a positive integer: 'two'"),
    # inspect read the last folder alone, as if the first were not given
    (["inspect", "--data-dir", "a", "--data-dir", "b"],
     "--data-dir takes one folder; got 'a' and 'b'. 'hybridclf train' merges"),
    (["augment", "--data-dir", "a", "--output-dir", "o", "--data-dir", "b"],
     "--data-dir takes one folder; got 'a' and 'b'"),
])
def test_invalid_values_are_usage_errors(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("usage: hybridclf ")


@pytest.mark.parametrize("argv", [
    ["train", "--output-dir", "-", "--data-dir", "d"],
    ["train", "--cache-dir", "-", "--data-dir", "d", "--output-dir", "o"],
    ["evaluate", "--output-dir", "-", "--model-dir", "m", "--test-data-dir", "t"],
    ["inspect", "--output-dir", "-", "--data-dir", "d"],
    ["augment", "--output-dir", "-", "--data-dir", "d"],
    ["deploy", "--output-dir", "-", "--type", "docker", "--model-dir", "m"],
    ["quickstart", "--output-dir", "-"],
    ["extract", "--output-dir", "-", "--model-dir", "m", "x.jpg"],
    ["serve", "--feedback-dir", "-", "--model-dir", "m"],
], ids=lambda argv: f"{argv[0]} {argv[1]}")
def test_an_output_folder_is_not_standard_output(argv, tmp_path, monkeypatch,
                                                 capsys):
    # '-' is standard output for 'predict --output'; these made (or began to
    # make) a folder named '-' in the working directory
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"argument {argv[1]}: '-' (standard output) cannot take " in err
    assert "./- for a folder named '-'" in err
    assert os.listdir(tmp_path) == []


def test_train_help_agrees_with_the_library(capsys):
    # the help is written without importing the library; it must not drift
    from hybridclf.io import DEFAULT_MAX_PIXELS
    from hybridclf.pipeline import FEATURE_BLOCKS

    assert main(["train", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert f"default: {DEFAULT_MAX_PIXELS})" in text
    assert f"FEATURE_BLOCKS: {', '.join(FEATURE_BLOCKS)} " in text


def test_python_m_hybridclf_runs_the_cli():
    result = subprocess.run([sys.executable, "-m", "hybridclf", "--version"],
                            capture_output=True, text=True, env=os.environ)
    assert result.returncode == 0 and result.stdout.startswith("hybridclf ")


def test_a_typo_in_an_option_names_the_option_meant(capsys):
    # `hybridclf train ... --cvfolds 3` said only "hybridclf: error:
    # unrecognized arguments", under the top level's usage
    assert main(["train", "--data-dir", "d", "--output-dir", "m",
                 "--cvfolds", "3"]) == 2
    err = capsys.readouterr().err
    assert "hybridclf train: error: unrecognized arguments: --cvfolds 3" in err
    assert "(did you mean --cv-folds?)" in err
    assert "usage: hybridclf train" in err
    assert main(["predict", "--model-dir", "m", "--treshold=0.3", "x.jpg"]) == 2
    assert "(did you mean --threshold?)" in capsys.readouterr().err
    assert main(["predict", "--model-dir", "m", "--zzzz", "x.jpg"]) == 2
    assert "unrecognized arguments: --zzzz\n" in capsys.readouterr().err
    # a typo of a required option: argparse said only that it is required
    assert main(["train", "--data-dir", "d", "--output-dirr", "m"]) == 2
    err = capsys.readouterr().err
    assert "required: --output-dir (unknown: --output-dirr; did you mean " \
        "--output-dir?)" in err


def test_warnings_show_no_library_source_line(tmp_path):
    # images directly in the data folder: the warning listing them came with
    # ".../_workflow.py:201:" and a line of hybridclf's source
    import cv2

    data = tmp_path / "flat"
    data.mkdir()
    cv2.imwrite(str(data / "a.png"), np.full((32, 32, 3), 90, np.uint8))
    result = subprocess.run(
        [sys.executable, "-m", "hybridclf", "train", "--data-dir", str(data),
         "--output-dir", str(tmp_path / "model")],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "SkippedFilesWarning: 1 file(s)" in result.stderr
    assert ".py:" not in result.stderr and "load_image_folders(" not in result.stderr
    assert "in class sub-folders, as root/<class name>/<image file>" in result.stderr


def test_the_original_systems_option_names_are_understood():
    # users of the original system type `--quick-mode`, `augment --input-dir`
    # and `--verbose` after the command; each was "unrecognized arguments"
    from hybridclf.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["train", "--data-dir", "d", "--output-dir", "m",
                              "--quick-mode", "--verbose"])
    assert args.quick and args.verbose == 1 and args.data_dir == ["d"]
    args = parser.parse_args(["inspect", "--data-dir", "d", "--quick-mode", "-vv"])
    assert args.quick and args.verbose == 2
    args = parser.parse_args(["augment", "--input-dir", "d", "--output-dir", "o"])
    assert args.data_dir == "d" and args.verbose == 0
    # the top-level place still works, and is not reset by the command
    args = parser.parse_args(["-vv", "evaluate", "--model-dir", "m",
                              "--test-data-dir", "t", "--output-dir", "o"])
    assert args.verbose == 2


def test_verbose_before_and_after_the_command_add_up():
    # `-v train ... --verbose` counted once (INFO): the command's count
    # replaced the top level's instead of adding to it, as -vv does
    from hybridclf.cli import build_parser

    parser = build_parser()
    train = ["train", "--data-dir", "d", "--output-dir", "m"]
    assert parser.parse_args(["-v", *train, "--verbose"]).verbose == 2
    assert parser.parse_args(["-vv", *train, "-v"]).verbose == 3
    assert parser.parse_args(["-v", *train]).verbose == 1
    assert parser.parse_args([*train, "-v"]).verbose == 1
    assert parser.parse_args(train).verbose == 0
