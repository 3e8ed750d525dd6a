"""Every example runs top to bottom and prints what it promises.

Each example runs in a subprocess with this interpreter, on the embedded demo
data (no argument) unless the test gives a folder; its temporary files go to
the test's ``tmp_path`` (``TMPDIR``).
"""

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NUMBER = r"([-+]?\d+(?:\.\d+)?)"


def run_example(name, *args, tmp_path, timeout=600):
    """Run ``examples/<name>`` and return its standard output; fail with stderr."""
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *map(str, args)],
        capture_output=True, text=True, timeout=timeout, env=env, cwd=tmp_path,
    )
    assert result.returncode == 0, (
        f"examples/{name} exited with {result.returncode}\n--- stdout\n"
        f"{result.stdout}\n--- stderr\n{result.stderr}")
    return result.stdout


def number_after(label, text):
    """The number printed right after ``label`` (fails when absent)."""
    match = re.search(re.escape(label) + r"\s*" + NUMBER, text)
    assert match, f"{label!r} followed by a number not found in:\n{text}"
    return float(match.group(1))


def assert_score(label, text, minimum=0.0):
    value = number_after(label, text)
    assert minimum <= value <= 1.0, f"{label} {value} not in [{minimum}, 1]"
    return value


def test_every_example_has_a_test():
    # a new example must be added to this file, and each one says what it shows
    tested = set(re.findall(r"[\w]+\.py", Path(__file__).read_text()))
    for path in EXAMPLES.glob("*.py"):
        assert path.name in tested, f"examples/{path.name} is run by no test"
        text = path.read_text()
        assert text.startswith('"""'), f"examples/{path.name} has no docstring"
        assert f"python examples/{path.name}" in text, (
            f"the docstring of examples/{path.name} does not say how to run it")


@pytest.mark.slow
def test_quickstart_example(texture_folder):
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "quickstart.py"), str(texture_folder)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    accuracy = float(result.stdout.split("3-fold accuracy: ")[1].split()[0])
    assert accuracy >= 0.75
    assert "first three predictions:" in result.stdout
    # the class names as a reader wrote them, not NumPy 2's np.str_('brick')
    assert "np.str_" not in result.stdout


def test_cross_validation_and_search(tmp_path):
    out = run_example("cross_validation_and_search.py", tmp_path=tmp_path)
    # digits are easy: a working pipeline is far above chance (0.1)
    assert_score("3-fold accuracy:", out, minimum=0.5)
    assert_score("3-fold f1_macro:", out)
    assert number_after("candidates:", out) == 6
    best = re.search(r"best parameters: (\{.*\})", out).group(1)
    assert "clf__C" in best and "features__hog__extract__orientations" in best
    assert_score("best CV accuracy:", out, minimum=0.5)
    assert re.search(r"prediction for the first image: digit_\d", out)


@pytest.mark.parametrize("folder", ["demo", "textures"])
def test_custom_feature_block(folder, texture_folder, tmp_path):
    args = [texture_folder] if folder == "textures" else []
    out = run_example("custom_feature_block.py", *args, tmp_path=tmp_path)
    colour_only = assert_score("blocks color: 3-fold accuracy", out)
    with_grid = assert_score("blocks color+grid: 3-fold accuracy", out)
    if folder == "demo":
        # the ink layout tells digits apart; a colour histogram barely does
        assert with_grid > colour_only + 0.2
    # colour histogram (256) + the custom block, set to a 6x6 grid (36)
    assert int(re.search(r"(\d+) feature columns", out).group(1)) == 256 + 36
    assert "'grid__cell35'" in out


def test_augmentation_in_pipeline(tmp_path):
    out = run_example("augmentation_in_pipeline.py", tmp_path=tmp_path)
    before = re.search(r"class counts before: (\{.*\})", out).group(1)
    after = re.search(r"class counts after: +(\{.*\})", out).group(1)
    assert "'digit_1': 4" in before and "'digit_0': 16" in before
    assert set(re.findall(r": (\d+)", after)) == {"16"}
    # three classes of 4 topped up to 16
    assert int(re.search(r"(\d+) augmented images made", out).group(1)) == 3 * 12
    assert_score("without augmentation: 3-fold balanced accuracy", out, 0.5)
    assert_score("with augmentation: 3-fold balanced accuracy", out, 0.5)


@pytest.mark.parametrize("folder", ["demo", "textures"])
def test_inspect_and_group_cv(folder, texture_folder, tmp_path):
    args = [texture_folder] if folder == "textures" else []
    out = run_example("inspect_and_group_cv.py", *args, tmp_path=tmp_path)
    assert "report files: report.json, report.html, duplicate_groups.csv" in out
    assert "every group in one fold only: True" in out
    assert_score("grouped 3-fold accuracy:", out)
    n_multi = number_after("groups;", out)
    if folder == "demo":
        # the three planted copy pairs are found (digits may hold more)
        assert n_multi >= 3
        assert re.search(r"Duplicates: \d+ group", out)
    reports = list(tmp_path.glob("hybridclf-inspect-*/report/report.html"))
    assert reports and reports[0].stat().st_size > 1000


@pytest.mark.slow
def test_train_evaluate_save(tmp_path):
    out_dir = tmp_path / "out"
    out = run_example("train_evaluate_save.py", "--output-dir", out_dir,
                      tmp_path=tmp_path)
    assert_score("3-fold grouped CV accuracy:", out, minimum=0.5)
    assert_score("test-part accuracy:", out)
    assert_score("held-out accuracy:", out, minimum=0.5)
    for name in ("model.skops", "model.json", "README.md"):
        assert (out_dir / "model" / name).is_file()
    assert (out_dir / "report" / "report.html").is_file()
    assert (out_dir / "report" / "report.json").is_file()
    assert re.search(r"loaded model predicts: \['digit_\d', 'digit_\d'\]", out)


def test_service_client(tmp_path):
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    out = run_example("service_client.py", tmp_path=tmp_path)
    assert "started a local service on http://127.0.0.1:" in out
    assert "GET /health -> 200: status='healthy', model_loaded=True" in out
    assert re.search(r"POST /predict \(base64 JSON\) -> 200: predicted_class="
                     r"'digit_\d' confidence=[01]\.\d{3}", out)
    assert re.search(r"POST /predict/file \(upload\) -> 200: predicted_class="
                     r"'digit_\d'", out)
    # the bad input gives the service's own 400 message, not a traceback
    assert re.search(r"POST /predict \(not an image\) -> 400: error: Cannot "
                     r"decode the uploaded image: not an image", out)


def test_batch_predict_folder(tmp_path):
    output = tmp_path / "preds.csv"
    out = run_example("batch_predict_folder.py", "--output", output,
                      tmp_path=tmp_path)
    assert re.search(r"unreadable: .*notes\.txt: not an image", out)
    counts = re.search(r"(\d+) files: (\d+) predicted, (\d+) unknown, "
                       r"(\d+) unreadable", out)
    total, predicted, unknown, unreadable = map(int, counts.groups())
    assert total == 31 and unreadable == 1
    assert predicted + unknown == 30 and predicted >= 20
    with open(output, newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == total
    assert sum(1 for r in rows if r["error"]) == 1
    assert all(r["label"].startswith("digit_") or r["label"] == "unknown"
               for r in rows if not r["error"])


def test_run_on_dask(tmp_path):
    pytest.importorskip("distributed")
    out = run_example("run_on_dask.py", tmp_path=tmp_path)
    assert "cluster local:2: 2 workers" in out
    assert re.search(r"extract: 81 files in 6 partitions, 6 computed", out)
    assert re.search(r"unreadable: .*notes\.png: not an image", out)
    assert "same features as a local run: True" in out
    assert "same predictions as a local run: True" in out
    assert 0.9 <= number_after("training accuracy on the cluster:", out) <= 1.0
