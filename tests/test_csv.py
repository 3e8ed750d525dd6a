"""The CSV files hybridclf writes for people: no cell a spreadsheet runs.

A photo named ``=HYPERLINK("evil.example","x").jpg`` or a class folder named
``@SUM(1)`` ended up as a cell that Excel and LibreOffice run as a formula
(CSV injection). Such a cell is now written with a single quote in front, and
hybridclf's own readers take the quote off again.
"""

import csv
import io
import os
import shutil

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hybridclf.utils._csv import (
    FORMULA_STARTS,
    csv_dict_reader,
    csv_reader,
    csv_writer,
    open_csv,
)

FORMULAS = ['=HYPERLINK("evil.example","x").jpg', "+cmd|' -C calc'!A0.jpg",
            "@SUM(1)", "-2+3.jpg", "\tx.jpg", "\r=1"]
# legitimate names a spreadsheet would misread, and those a quote starts
QUOTED = ["-1.jpg", "+2.png", "'-draft.jpg", "''x.jpg"]
# cells written as they are: a number stays a number
PLAIN = ["'plain'.jpg", "'", "พระสมเด็จ.jpg", "a=b.jpg", "-0.25", "1e-3", ""]


def executable(cell):
    """Whether a spreadsheet would run ``cell`` (a number is not run)."""
    if not cell or cell[0] not in FORMULA_STARTS:
        return False
    try:
        float(cell)
    except ValueError:
        return True
    return False


def raw_cells(path):
    """Every cell of a CSV file as a spreadsheet gets it."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        return [cell for row in csv.reader(fh) for cell in row]


@pytest.mark.parametrize("name", FORMULAS + QUOTED + PLAIN)
def test_a_cell_is_never_run_and_reads_back_as_it_was(name):
    out = io.StringIO()
    csv_writer(out).writerow([name, 3])
    written = next(csv.reader(io.StringIO(out.getvalue())))
    assert not executable(written[0])
    assert next(csv_reader(io.StringIO(out.getvalue()))) == [name, "3"]
    assert (written[0] == name) == (name in PLAIN)


@given(st.text(alphabet=st.sampled_from("=+-@'\t\rab.1 "), max_size=6))
def test_any_cell_round_trips(name):
    out = io.StringIO()
    csv_writer(out).writerow(["x", name])
    rows = list(csv_dict_reader(io.StringIO("file,name\r\n" + out.getvalue())))
    assert rows == [{"file": "x", "name": name}]


def test_a_spreadsheet_that_dropped_the_quote_reads_the_same(tmp_path):
    from hybridclf.training import read_groups_csv

    root = tmp_path / "data"
    (root / "@SUM(1)").mkdir(parents=True)
    paths = []
    for name in ("=a.png", "-b.png", "c.png"):
        paths.append(str(root / "@SUM(1)" / name))
        open(paths[-1], "wb").close()
    groups = tmp_path / "groups.csv"
    groups.write_text("file,group\n'@SUM(1)/=a.png,7\n@SUM(1)/-b.png,7\n"
                      "@SUM(1)/c.png,8\n", encoding="utf-8")
    a, b, c = read_groups_csv(groups, paths, root=str(root))
    assert a == b != c


@pytest.fixture(scope="module")
def hostile_model(tmp_path_factory):
    """A model whose classes are '@SUM(1)' and '=cmd' (digit PNGs)."""
    from hybridclf.cli import main
    from hybridclf.sample_data import write_digits_folder

    root = tmp_path_factory.mktemp("hostile_csv")
    write_digits_folder(root / "digits", n_per_class=3, size=32, random_state=0)
    for digit in range(2, 10):
        shutil.rmtree(root / "digits" / f"digit_{digit}")
    os.rename(root / "digits" / "digit_0", root / "digits" / "@SUM(1)")
    os.rename(root / "digits" / "digit_1", root / "digits" / "=cmd")
    code = main(["train", "--data-dir", str(root / "digits"), "--output-dir",
                 str(root / "model"), "--features", "hog", "--image-size", "32",
                 "--cv-folds", "2", "--test-size", "0", "--n-jobs", "1"])
    assert code == 0
    return root


def test_predictions_of_hostile_names_are_not_formulas(hostile_model, tmp_path,
                                                       monkeypatch):
    import hybridclf.batch

    photo = next((hostile_model / "digits" / "@SUM(1)").glob("*.png"))
    for name in ('=HYPERLINK("evil.example","x").png', "+cmd|' -C calc'!A0.png",
                 "-1.png"):
        shutil.copy(photo, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    names = sorted(os.listdir("."))
    hybridclf.batch.predict_to_csv(hostile_model / "model", names, "out.csv",
                                   top_k=2)
    assert not [cell for cell in raw_cells("out.csv") if executable(cell)]
    with open_csv("out.csv") as fh:
        rows = list(csv_dict_reader(fh))
    assert sorted(row["file"] for row in rows) == names
    assert {row["label"] for row in rows} == {"@SUM(1)"}


def test_augment_s_manifest_is_safe_and_our_readers_read_it(hostile_model,
                                                           tmp_path):
    from hybridclf.cli import main
    from hybridclf.training import augment_origins

    data = tmp_path / "data"
    shutil.copytree(hostile_model / "digits", data)
    for k, photo in enumerate(sorted((data / "=cmd").glob("*.png"))):
        photo.rename(photo.with_name(["-1.png", "=x.png", "@y.png"][k]))
    os.remove(next((data / "@SUM(1)").glob("*.png")))  # 2 vs 3: one copy made
    out = tmp_path / "out"
    assert main(["augment", "--data-dir", str(data), "--output-dir", str(out),
                 "--seed", "0", "--n-jobs", "1"]) == 0
    assert not [c for c in raw_cells(out / "manifest.csv") if executable(c)]
    with open_csv(out / "manifest.csv") as fh:
        rows = list(csv_dict_reader(fh))
    assert {row["label"] for row in rows} == {"@SUM(1)", "=cmd"}
    generated = [row for row in rows if row["kind"] == "generated"]
    assert generated and all((out / row["source"]).is_file() for row in generated)
    paths = sorted(str(p) for p in out.rglob("*.png"))
    origins = augment_origins(paths, str(out))
    copy = paths.index(str(out / generated[0]["file"]))
    assert paths[origins[copy]] == str(out / generated[0]["source"])
