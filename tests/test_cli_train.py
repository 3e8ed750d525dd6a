"""The train, evaluate and predict commands, end to end on a small real tree."""

import codecs
import csv
import html as html_module
import json
import os
import shutil
import warnings

import numpy as np
import pytest

from hybridclf.cli import main
from hybridclf.exceptions import SkippedFilesWarning


@pytest.fixture(scope="module")
def trained(texture_folder, tmp_path_factory):
    model = tmp_path_factory.mktemp("model")
    code = main(["train", "--data-dir", str(texture_folder), "--output-dir",
                 str(model), "--features", "hog", "color", "--image-size", "64",
                 "--cv-folds", "3", "--test-size", "0.25", "--search", "grid",
                 "--n-jobs", "1"])
    assert code == 0
    return model


def test_train_writes_a_model_directory(trained, capsys):
    info = json.loads((trained / "model.json").read_text())
    assert info["classes"] == ["brick", "grass", "gravel"]
    assert info["search"]["n_candidates"] == 20
    assert len(info["cv_scores"]["accuracy"]["folds"]) == 3
    assert info["data_fingerprint"]["n_images"] == 24
    assert info["training"]["features"] == ["hog", "color"]
    assert (trained / "README.md").read_text().startswith("# hybridclf model")


def test_cv_scores_after_a_search_are_called_optimistic(trained, texture_folder,
                                                       tmp_path, capsys):
    # the CV score of the candidate a search picked on the same folds is
    # biased upward; the command, model.json and the card presented it as
    # the model's cross-validated score, without pointing to the test part
    info = json.loads((trained / "model.json").read_text())
    assert info["search"]["cv_scores_optimistic"] is True
    card = (trained / "README.md").read_text()
    cv_section = card.split("## Cross-validation on the training part")[1]
    assert "These scores are optimistic" in cv_section
    assert "held-out test metrics above" in cv_section
    assert main(["train", "--data-dir", str(texture_folder), "--output-dir",
                 str(tmp_path / "m"), "--features", "color", "--image-size", "32",
                 "--cv-folds", "3", "--search", "grid", "--no-cache",
                 "--n-jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert "3-fold grouped CV accuracy: " in out
    assert all("(optimistic" in line for line in out.splitlines()
               if "grouped CV" in line)
    assert "the test scores below, on photos the search never saw" in out
    assert main(["train", "--data-dir", str(texture_folder), "--output-dir",
                 str(tmp_path / "plain"), "--features", "color", "--image-size",
                 "32", "--cv-folds", "3", "--no-cache", "--n-jobs", "1"]) == 0
    assert "optimistic" not in capsys.readouterr().out
    plain = json.loads((tmp_path / "plain" / "model.json").read_text())
    assert "optimistic" not in (tmp_path / "plain" / "README.md").read_text()
    assert "cv_scores_optimistic" not in (plain.get("search") or {})


def test_the_model_card_names_what_the_search_chose(trained):
    # after 'train --search grid' printed "best {'clf__alpha': ...} (CV accuracy
    # ...)", README.md named neither the chosen parameters nor the search
    info = json.loads((trained / "model.json").read_text())
    card = (trained / "README.md").read_text()
    assert "## Hyper-parameter search" in card
    def shown(value):
        if isinstance(value, list):
            return "[" + ", ".join(map(shown, value)) + "]"
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    for name, value in info["best_params"].items():
        assert f"`{name}` = {shown(value)}" in card
    assert f"(CV accuracy {info['search']['best_score']:.3f}," in card
    assert f"search over {info['search']['n_candidates']} candidates" in card


@pytest.fixture(scope="module")
def mislabelled(texture_folder, tmp_path_factory):
    """The textures with one brick photo filed under grass."""
    import shutil

    root = tmp_path_factory.mktemp("mislabelled") / "data"
    shutil.copytree(texture_folder, root)
    (root / "brick" / "0.png").rename(root / "grass" / "brick0.png")
    return root


def test_train_lists_likely_wrong_labels(mislabelled, tmp_path, capsys):
    model = tmp_path / "model"
    assert main(["train", "--data-dir", str(mislabelled), "--output-dir",
                 str(model), "--features", "hog", "color", "--image-size", "64",
                 "--cv-folds", "3", "--test-size", "0", "--n-jobs", "1",
                 "--no-views"]) == 0
    # a byte-order mark, for Excel (a Thai class name was mojibake without)
    assert (model / "label_issues.csv").read_bytes().startswith(codecs.BOM_UTF8)
    with open(model / "label_issues.csv", newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["file", "given_label", "suggested_label", "score"]
    rows = rows[1:]
    scores = [float(r[3]) for r in rows]
    assert scores == sorted(scores)  # most suspicious (lowest score) first
    assert ["grass/brick0.png", "grass", "brick"] in [r[:3] for r in rows]
    assert len(rows) <= 4  # not every image of a clean class
    info = json.loads((model / "model.json").read_text())
    assert info["label_issues"] == {"file": "label_issues.csv",
                                    "n_flagged": len(rows), "n_checked": 24}
    assert (f"likely wrong labels: {len(rows)} of the 24 training photos checked; "
            "grouped out-of-fold predictions" in capsys.readouterr().out)
    assert (f"{len(rows)} of the 24 training photos checked have a label"
            in (model / "README.md").read_text())
    manifest = json.loads((model / "manifest.json").read_text())["files"]
    assert "label_issues.csv" in manifest


def test_predict_files_and_folders_reports_unreadable(trained, texture_folder,
                                                      tmp_path, capsys):
    broken = tmp_path / "inputs"
    broken.mkdir()
    (broken / "truncated.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    (broken / "blank.png").write_bytes(_png(np.full((64, 64, 3), 255, np.uint8)))
    out = tmp_path / "preds.csv"
    code = main(["predict", "--model-dir", str(trained), str(texture_folder / "brick"),
                 str(broken), "--output", str(out), "--batch-size", "3"])
    assert code == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8-sig")))
    assert len(rows) == 8 + 2
    by_name = {r["file"].rsplit("/", 1)[-1]: r for r in rows}
    assert by_name["truncated.jpg"]["label"] == ""
    assert by_name["truncated.jpg"]["error"]
    assert by_name["blank.png"]["label"] == "unknown"
    bricks = [r for r in rows if "/brick/" in r["file"]]
    assert sum(r["label"] == "brick" for r in bricks) >= 6
    assert "1 unreadable" in capsys.readouterr().out


def test_evaluate_writes_html_json_and_figures(trained, texture_folder, tmp_path,
                                               capsys):
    report = tmp_path / "report"
    code = main(["evaluate", "--model-dir", str(trained), "--test-data-dir",
                 str(texture_folder), "--output-dir", str(report),
                 "--n-repeats", "1"])
    assert code == 0
    data = json.loads((report / "report.json").read_text())
    assert data["n_images"] == 24
    assert set(data["block_importance"]) == {"hog", "color"}
    assert {"decode", "block hog", "block color", "classifier"} <= set(
        data["speed_ms_per_image"])
    html = (report / "report.html").read_text()
    assert "data:image/png;base64," in html
    for name in ("confusion_matrix", "reliability", "block_importance",
                 "stage_speed"):
        assert (report / f"{name}.png").stat().st_size > 1000
    out = capsys.readouterr().out
    assert "accuracy:" in out
    # the block importance, which only the figure showed, with its interval
    line = next(line for line in out.splitlines()
                if line.startswith("block importance"))
    assert "95% interval over the 24 test images): hog " in line
    assert line in html_module.unescape(html)


def test_evaluate_gives_the_accuracy_interval_everywhere(trained, texture_folder,
                                                         tmp_path, capsys):
    # "accuracy: 1.000" on a handful of test images, with no word of how far
    # that goes, in the command, report.json or report.html
    from scipy.stats import binomtest

    report = tmp_path / "report"
    test = tmp_path / "test"
    for name in ("brick", "grass"):
        (test / name).mkdir(parents=True)
        for path in sorted((texture_folder / name).iterdir())[:3]:
            (test / name / path.name).write_bytes(path.read_bytes())
    assert main(["evaluate", "--model-dir", str(trained), "--test-data-dir",
                 str(test), "--output-dir", str(report), "--n-repeats", "1"]) == 0
    data = json.loads((report / "report.json").read_text())
    ci = binomtest(round(data["metrics"]["accuracy"] * 6), 6).proportion_ci(
        0.95, method="wilson")
    assert data["accuracy_interval"] == pytest.approx([ci.low, ci.high])
    text = f"{ci.low:.3f} to {ci.high:.3f}"
    assert (f"accuracy 95% interval: {text} (6 test images, each counted as "
            "independent") in capsys.readouterr().out
    assert (f"Accuracy 95% interval (Wilson): {text}, from 6 test images."
            in (report / "report.html").read_text())


def test_evaluate_says_when_it_scores_photos_the_model_was_trained_on(
        trained, texture_folder, tmp_path, capsys):
    # evaluate on the training folder scored 1.000 (0.971 on amulet6 with
    # --quick) with no word that 18 of its 24 photos had been trained on
    test = tmp_path / "test"
    (test / "brick").mkdir(parents=True)
    for path in sorted((texture_folder / "brick").iterdir()):
        (test / "brick" / f"copy_{path.name}").write_bytes(path.read_bytes())
    for folder, n_trained, n_images in ((texture_folder, 18, 24), (test, 6, 8)):
        report = tmp_path / f"report_{n_images}"
        assert main(["evaluate", "--model-dir", str(trained), "--test-data-dir",
                     str(folder), "--output-dir", str(report),
                     "--n-repeats", "1"]) == 0
        data = json.loads((report / "report.json").read_text())
        assert data["trained_on"]["n_images"] == n_trained
        assert len(data["trained_on"]["files"]) == n_trained
        warned = (f"{n_trained} of the {n_images} test images are photos the "
                  "model was trained on")
        assert warned in capsys.readouterr().out
        assert warned in (report / "report.html").read_text()
    # the test part train held out was never trained on
    assert main(["evaluate", "--model-dir", str(trained), "--output-dir",
                 str(tmp_path / "part"), "--n-repeats", "1"]) == 0
    data = json.loads((tmp_path / "part" / "report.json").read_text())
    assert data["trained_on"] == {"n_images": 0, "files": []}
    assert "trained on" not in capsys.readouterr().out


def _trained_files(model, folder):
    """The files of ``folder`` that the model in ``model`` was trained on."""
    from hybridclf.utils._row_store import content_digest

    digests = set(json.loads((model / "train_part.json").read_text())["sha256"])
    return [p for p in sorted(folder.rglob("*.png")) if content_digest(p) in digests]


def test_evaluate_finds_near_copies_of_training_photos(trained, texture_folder,
                                                       tmp_path, capsys):
    # a re-encoded or resized copy of a training photo has other bytes, so
    # trained_on missed it and its score read as one on a new photo
    import cv2
    import skimage.data

    source = _trained_files(trained, texture_folder)[0]
    photo = cv2.imread(str(source))
    test = tmp_path / "test" / source.parent.name
    test.mkdir(parents=True)
    cv2.imwrite(str(test / "reencoded.jpg"), photo, [cv2.IMWRITE_JPEG_QUALITY, 80])
    cv2.imwrite(str(test / "resized.png"), cv2.resize(photo, (150, 150)))
    cv2.imwrite(str(test / "new.png"), skimage.data.camera()[100:196, 200:296])
    report = tmp_path / "report"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["evaluate", "--model-dir", str(trained), "--test-data-dir",
                     str(tmp_path / "test"), "--output-dir", str(report),
                     "--n-repeats", "1"]) == 0
    # said once, in the summary below, not again as a Python warning
    assert not [w for w in caught if "near copies" in str(w.message)]
    data = json.loads((report / "report.json").read_text())
    assert data["trained_on"] == {"n_images": 0, "files": []}
    near = data["near_training"]
    assert near["n_images"] == 2
    assert sorted(os.path.basename(m["file"]) for m in near["files"]) == [
        "reencoded.jpg", "resized.png"]
    assert "inspect --data-dir TRAIN --test-data-dir TEST" in near["check"]
    out = capsys.readouterr().out
    assert ("2 of the 3 test images are near copies of photos the model was "
            "trained on") in out
    assert ("2 of the 3 test images are near copies"
            in (report / "report.html").read_text())


def test_evaluate_decodes_each_test_photo_once(trained, texture_folder, tmp_path,
                                              monkeypatch):
    # the near-copy check decoded each test photo a second time, for its
    # perceptual hashes, after the decode of the predictions: a 48-megapixel
    # photo twice
    from hybridclf.evaluation import evaluate_folder
    from hybridclf.io import _read

    decoded = []
    decode = _read._decode

    def counted(data, *args, **kwargs):
        decoded.append(len(data))
        return decode(data, *args, **kwargs)

    monkeypatch.setattr(_read, "_decode", counted)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 18 of the 24 photos were trained on
        report, _ = evaluate_folder(trained, texture_folder, tmp_path / "report",
                                    n_repeats=1, neighbours=0)
    assert report["near_training"] == {"n_images": 0, "files": [],
                                       "check": report["near_training"]["check"]}
    assert len(decoded) == report["n_images"] == 24


def test_evaluate_model_checks_arrays_as_it_checks_files(trained, texture_folder):
    # evaluate_model had no near-copy check, and the fingerprints of arrays
    # were zeros: an array of a training photo was never named
    import cv2

    from hybridclf import load_model
    from hybridclf.evaluation import evaluate_model

    pipe = load_model(trained)
    record = json.loads((trained / "train_part.json").read_text())
    files = _trained_files(trained, texture_folder)[:2]
    labels = [p.parent.name for p in files]
    arrays = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in files]
    with pytest.warns(UserWarning, match="2 of the 2 test images are photos"):
        by_file = evaluate_model(pipe, [str(p) for p in files], labels,
                                 n_repeats=1, neighbours=0, train_part=record)
    assert by_file["trained_on"]["files"] == [str(p) for p in files]
    with pytest.warns(UserWarning, match="2 of the 2 test images are near copies"):
        by_array = evaluate_model(pipe, arrays, labels, n_repeats=1, neighbours=0,
                                  train_part=record)
    # the same pixels in other bytes: named by the hashes, at distance 0
    assert by_array["trained_on"] == {"n_images": 0, "files": []}
    assert by_array["near_training"]["files"] == [
        {"file": "<array 0>", "hash_distance": 0},
        {"file": "<array 1>", "hash_distance": 0}]
    # without the record, both say they were not checked
    unchecked = evaluate_model(pipe, arrays, labels, n_repeats=1, neighbours=0)
    assert unchecked["trained_on"] is None and unchecked["near_training"] is None


def test_evaluate_a_model_without_fingerprints(trained, texture_folder, tmp_path,
                                              capsys):
    # a model saved before train_part.json held fingerprints: nothing to say
    from hybridclf._model_files import write_manifest

    old = tmp_path / "old"
    shutil.copytree(trained, old)
    part = json.loads((old / "train_part.json").read_text())
    (old / "train_part.json").write_text(json.dumps({"sha256": part["sha256"]}))
    write_manifest(old)
    assert main(["evaluate", "--model-dir", str(old), "--test-data-dir",
                 str(texture_folder), "--output-dir", str(tmp_path / "report"),
                 "--n-repeats", "1"]) == 0
    data = json.loads((tmp_path / "report" / "report.json").read_text())
    assert data["near_training"] is None
    assert data["trained_on"]["n_images"] == 18
    assert "near copies" not in capsys.readouterr().out


def test_evaluate_counts_the_unknown_answers_of_each_class_as_predict_gives_them(
        trained, texture_folder, tmp_path, capsys):
    # with 10 photos of a class the model does not know, the report said
    # "unknown_share 0.077, wrong_share_rejected 0.091": none of the 10 was
    # answered unknown (the 2 were of a known class), which no number showed
    import cv2
    import skimage.data

    test = tmp_path / "test"
    for name, source in (("brick", "brick"), ("moss", "grass")):
        (test / name).mkdir(parents=True)
        for path in sorted((texture_folder / source).iterdir()):
            (test / name / path.name).write_bytes(path.read_bytes())
    (test / "camera").mkdir()
    for i in range(4):
        cv2.imwrite(str(test / "camera" / f"{i}.png"),
                    skimage.data.camera()[i * 96 : i * 96 + 96, :96])
    report = tmp_path / "report"
    assert main(["evaluate", "--model-dir", str(trained), "--test-data-dir",
                 str(test), "--output-dir", str(report), "--n-repeats", "1",
                 "--neighbours", "0"]) == 0
    printed = capsys.readouterr().out
    open_set = json.loads((report / "report.json").read_text())["open_set"]
    preds = tmp_path / "preds.csv"
    assert main(["predict", "--model-dir", str(trained), str(test),
                 "--output", str(preds)]) == 0
    rows = list(csv.DictReader(preds.open(encoding="utf-8-sig")))
    true = [os.path.basename(os.path.dirname(r["file"])) for r in rows]
    for name in ("brick", "moss", "camera"):
        answers = [r["label"] for r, t in zip(rows, true) if t == name]
        assert open_set["unknown_by_class"][name] == {
            "n_images": len(answers), "n_unknown": answers.count("unknown")}
        assert (f"{name} {answers.count('unknown')} of {len(answers)}"
                in printed)
    unknown_class = [r["label"] == "unknown" for r, t in zip(rows, true)
                     if t != "brick"]
    assert open_set["unknown_class_share_rejected"] == pytest.approx(
        np.mean(unknown_class))
    right = [r["label"] == (t if t == "brick" else "unknown")
             for r, t in zip(rows, true)]
    assert open_set["open_set_accuracy"] == pytest.approx(np.mean(right))
    assert f"open-set accuracy {np.mean(right):.3f}" in printed
    assert "closed-set scores" in printed


def test_evaluate_without_a_test_folder_scores_the_held_out_test_part(
        trained, tmp_path, capsys):
    # 'evaluate --model-dir M' (the original system's Quick Start) was a usage
    # error: --test-data-dir was required and the model recorded only the
    # size of its test part, not its files
    info = json.loads((trained / "model.json").read_text())
    report = tmp_path / "report"
    assert main(["evaluate", "--model-dir", str(trained), "--output-dir",
                 str(report), "--n-repeats", "1"]) == 0
    data = json.loads((report / "report.json").read_text())
    assert data["n_images"] == info["test_part"]["n_images"] == 6
    for metric, value in info["metrics"].items():
        assert data["metrics"][metric] == value
    assert data["unreadable"] == []
    assert "the test part held out by train: 6 files" in capsys.readouterr().out


def test_the_accuracy_interval_counts_each_group_of_near_identical_photos_once(
        texture_folder, tmp_path, capsys):
    # somdej_fatherguay: 8 test photos in 4 pairs (each photo and its
    # greyscale copy) were given the interval of 8 independent photos,
    # 0.676 to 1.000, where 4 objects go as far as 0.510 to 1.000
    from hybridclf.evaluation import accuracy_interval

    groups = tmp_path / "groups.csv"
    groups.write_text("file,group\n" + "".join(
        f"{name}/{i}.png,{name}{i // 2}\n" for name in ("brick", "grass", "gravel")
        for i in range(8)))
    model = tmp_path / "model"
    assert main(["train", "--data-dir", str(texture_folder), "--groups",
                 str(groups), "--output-dir", str(model), "--features", "color",
                 "--image-size", "32", "--cv-folds", "2", "--test-size", "0.25",
                 "--n-jobs", "1", "--no-views", "--no-cache"]) == 0
    trained = capsys.readouterr().out
    info = json.loads((model / "model.json").read_text())
    part = info["test_part"]
    files = json.loads((model / "test_part.json").read_text())["files"]
    assert part["n_images"] == len(files) == 2 * part["n_groups"]
    pairs = {}
    for f in files:  # the record keeps each pair under one group
        pairs.setdefault(f["group"], set()).add(f["file"][:-5]
                                                + str(int(f["file"][-5]) // 2))
    assert len(pairs) == part["n_groups"] and all(len(p) == 1
                                                  for p in pairs.values())
    n, m = part["n_images"], part["n_groups"]
    n_correct = round(info["metrics"]["accuracy"] * n)
    assert part["accuracy_interval"] == pytest.approx(
        accuracy_interval(n_correct, n, n_groups=m))
    assert part["accuracy_interval"][0] < accuracy_interval(n_correct, n)[0]
    said = f"({n} test images in {m} groups of near-identical photos"
    assert said in trained
    assert f"On {n} held-out images in {m} groups" in (model / "README.md").read_text()
    assert main(["evaluate", "--model-dir", str(model), "--output-dir",
                 str(tmp_path / "report"), "--n-repeats", "1"]) == 0
    assert said in capsys.readouterr().out
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["accuracy_interval"] == pytest.approx(part["accuracy_interval"])
    assert report["n_groups"] == m


def test_train_and_evaluate_name_the_classes_of_few_test_images(
        trained, tmp_path, capsys):
    # 2 test photos per class: the balanced accuracy and each class's scores
    # rest on them, and nothing said so
    info = json.loads((trained / "model.json").read_text())
    few = info["test_part"]["few_test_images"]
    assert few == {"brick": 2, "grass": 2, "gravel": 2}
    card = (trained / "README.md").read_text()
    assert ("The scores of `brick` (2 held-out images), `grass` (2 held-out "
            "images), `gravel` (2 held-out images) rest on a handful") in card
    assert main(["evaluate", "--model-dir", str(trained), "--output-dir",
                 str(tmp_path / "report"), "--n-repeats", "1"]) == 0
    printed = capsys.readouterr().out
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["few_test_images"] == few
    line = next(x for x in printed.splitlines() if "fewer than 10 test" in x)
    for name, scores in report["per_class"].items():
        low, high = scores["recall_interval"]
        assert (f"{name} (2: recall {scores['recall']:.3f}, 95% interval "
                f"{low:.3f} to {high:.3f})") in line


def test_evaluate_groups_the_photos_of_a_test_folder_as_a_csv_says(
        trained, texture_folder, tmp_path, capsys):
    # a test folder's interval counted each photo as independent, and
    # nothing said so: 8 photos in 4 pairs read as 8 draws
    from hybridclf.evaluation import accuracy_interval

    test = tmp_path / "test"
    (test / "brick").mkdir(parents=True)
    for path in sorted((texture_folder / "brick").iterdir()):
        (test / "brick" / path.name).write_bytes(path.read_bytes())
    groups = tmp_path / "groups.csv"
    groups.write_text("file,group\n" + "".join(
        f"brick/{i}.png,pair{i // 2}\n" for i in range(8)))
    for extra, n_groups in (([], None), (["--groups", str(groups)], 4)):
        report = tmp_path / f"report{n_groups}"
        assert main(["evaluate", "--model-dir", str(trained), "--test-data-dir",
                     str(test), "--output-dir", str(report), "--n-repeats", "1",
                     "--neighbours", "0", *extra]) == 0
        printed = capsys.readouterr().out
        data = json.loads((report / "report.json").read_text())
        assert data["n_groups"] == n_groups
        n_correct = round(data["metrics"]["accuracy"] * 8)
        assert data["accuracy_interval"] == pytest.approx(
            accuracy_interval(n_correct, 8, n_groups=n_groups))
        assert data["per_class"]["brick"]["recall_interval"] == pytest.approx(
            accuracy_interval(n_correct, 8, n_groups=n_groups))
        assert ("(8 test images in 4 groups of near-identical photos" if n_groups
                else "(8 test images, each counted as independent") in printed


def test_evaluate_names_the_test_files_missing_or_changed_since_training(
        texture_folder, tmp_path, capsys):
    import shutil

    from hybridclf.evaluation import evaluate_folder

    data, model = tmp_path / "data", tmp_path / "model"
    shutil.copytree(texture_folder, data)
    assert main(["train", "--data-dir", str(data), "--output-dir", str(model),
                 "--features", "color", "--image-size", "32", "--cv-folds", "3",
                 "--no-cache", "--n-jobs", "1"]) == 0
    recorded = json.loads((model / "test_part.json").read_text())
    assert recorded["data_dirs"] == [str(data)]
    assert "test_part.json" in json.loads(
        (model / "manifest.json").read_text())["files"]
    # the model card says where the held-out photos are and how to rescore them
    card = (model / "README.md").read_text()
    assert "`test_part.json` lists them: `hybridclf evaluate --model-dir" in card
    moved = tmp_path / "moved"
    data.rename(moved)
    gone, edited, *kept = [f["file"] for f in recorded["files"]]
    (moved / gone).unlink()
    (moved / edited).write_bytes((moved / kept[0]).read_bytes())
    assert main(["evaluate", "--model-dir", str(model), "--data-dir", str(moved),
                 "--output-dir", str(tmp_path / "report"), "--n-repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert f"{len(kept)} test images" in out
    assert f"{moved / gone}: missing" in out
    assert f"{moved / edited}: changed since the training" in out
    report, _ = evaluate_folder(model, None, tmp_path / "api", n_repeats=1,
                                data_dir=moved)
    assert [u["file"] for u in report["unreadable"]] == [str(moved / gone),
                                                         str(moved / edited)]
    assert report["recorded_test_part"]["n_left_out"] == 2
    # where the data was, every file is missing: not a silent empty set, and
    # not ten "missing" files with "fix or replace them": the folder moved,
    # and the fix is to say where it is now
    assert main(["evaluate", "--model-dir", str(model), "--output-dir",
                 str(tmp_path / "r2")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: The data folder(s) of the training {str(data)!r} "
                          "do not exist")
    assert "--data-dir DIR" in err and "--test-data-dir DIR" in err
    assert main(["evaluate", "--model-dir", str(model), "--data-dir",
                 str(tmp_path / "nowhere"), "--output-dir", str(tmp_path / "r3")]) == 1
    assert "The data folder(s) given " in capsys.readouterr().err


def test_evaluate_without_a_recorded_test_part_says_to_pass_a_test_folder(
        texture_folder, tmp_path, capsys):
    model = tmp_path / "model"
    assert main(["train", "--data-dir", str(texture_folder), "--output-dir",
                 str(model), "--features", "color", "--image-size", "32",
                 "--cv-folds", "3", "--test-size", "0", "--no-cache",
                 "--n-jobs", "1"]) == 0
    assert not (model / "test_part.json").exists()
    assert "test_part.json" not in (model / "README.md").read_text()
    assert "--test-data-dir <folder>" in capsys.readouterr().out
    assert main(["evaluate", "--model-dir", str(model), "--output-dir",
                 str(tmp_path / "report")]) == 1
    err = capsys.readouterr().err
    assert "trained without a test part (--test-size 0" in err
    assert "Pass a labelled class-per-folder test set: --test-data-dir DIR" in err


def test_evaluate_takes_a_test_folder_or_the_data_folders_not_both(
        trained, texture_folder, tmp_path, capsys):
    assert main(["evaluate", "--model-dir", str(trained), "--test-data-dir",
                 str(texture_folder), "--data-dir", str(texture_folder),
                 "--output-dir", str(tmp_path)]) == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_an_output_in_the_way_is_one_error_line_before_the_work(
        trained, texture_folder, tmp_path, capsys):
    # a file given for a folder, a folder for a file: each was a traceback,
    # evaluate's and inspect's after all their work
    in_the_way = tmp_path / "report.txt"
    in_the_way.write_text("not a folder")
    for argv in (
        ["evaluate", "--model-dir", str(trained), "--test-data-dir",
         str(texture_folder), "--output-dir", str(in_the_way / "sub")],
        ["inspect", "--data-dir", str(texture_folder), "--quick",
         "--output-dir", str(in_the_way)],
    ):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: The 'output_dir' folder ")
        assert f"{str(in_the_way)!r} is a file" in err
        assert "Traceback" not in err and "test images" not in err
    assert main(["predict", "--model-dir", str(trained), str(texture_folder),
                 "--output", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: The output {str(tmp_path)!r} is a folder")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_predict_writes_utf8_names_whatever_the_locale(trained, texture_folder,
                                                      tmp_path):
    # under an ASCII locale the CSV of a photo named 'พระ é.png' failed with
    # "'ascii' codec can't encode characters" before its first row
    import shutil
    import subprocess
    import sys

    photo = tmp_path / "พระ é.png"
    shutil.copy(texture_folder / "brick" / "0.png", photo)
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONCOERCECLOCALE": "0",
           "PYTHONUTF8": "0"}
    result = subprocess.run(
        [sys.executable, "-m", "hybridclf", "predict", "--model-dir", str(trained),
         str(photo), "--output", str(tmp_path / "out.csv")],
        env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader((tmp_path / "out.csv").open(encoding="utf-8-sig")))
    assert rows[0]["file"] == str(photo) and rows[0]["label"]


def test_a_tampered_model_fails_with_a_clear_message(trained, tmp_path, capsys):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(trained, copy)
    with open(copy / "model.skops", "r+b") as fh:
        fh.seek(100)
        fh.write(b"XX")
    assert main(["predict", "--model-dir", str(copy), str(tmp_path)]) == 1
    assert "was modified" in capsys.readouterr().err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs")
def test_predict_reports_a_fifo_and_a_bomb_without_hanging(trained, tmp_path,
                                                            capsys):
    import threading

    from .conftest import bomb_png

    inputs = tmp_path / "inputs"
    inputs.mkdir()
    os.mkfifo(inputs / "x.jpg")  # opening it would block forever
    (inputs / "bomb.png").write_bytes(bomb_png(9000))
    out = tmp_path / "preds.csv"
    codes = []
    run = threading.Thread(target=lambda: codes.append(main(
        ["predict", "--model-dir", str(trained), str(inputs), "--output", str(out),
         "--max-pixels", "50000000"])), daemon=True)
    run.start()
    run.join(60)
    assert codes == [0], "predict blocked"
    errors = {r["file"].rsplit("/", 1)[-1]: r["error"]
              for r in csv.DictReader(out.open(encoding="utf-8-sig"))}
    assert "not a regular file (a FIFO" in errors["x.jpg"]
    assert "9000x9000 pixels" in errors["bomb.png"]
    assert "limit of 50000000" in errors["bomb.png"]


def test_train_refuses_an_output_folder_that_is_not_a_model(texture_folder,
                                                            tmp_path, capsys):
    (tmp_path / "README.md").write_text("my notes")
    assert main(["train", "--data-dir", str(texture_folder), "--output-dir",
                 str(tmp_path), "--features", "color"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not a model directory" in err
    assert (tmp_path / "README.md").read_text() == "my notes"


def test_train_counts_the_images_that_share_a_group(texture_folder, tmp_path,
                                                    capsys):
    # one group of three photos: 22 groups of 24 images. The line said "2
    # images share a group with another" (images minus groups); on amulet6,
    # 15 where 25 photos are in 10 groups
    groups = tmp_path / "groups.csv"
    groups.write_text("file,group\nbrick/0.png,g\nbrick/1.png,g\nbrick/2.png,g\n")
    assert main(["train", "--data-dir", str(texture_folder), "--groups",
                 str(groups), "--output-dir", str(tmp_path / "my model"),
                 "--features", "color", "--image-size", "32", "--cv-folds", "2",
                 "--test-size", "0", "--n-jobs", "1", "--no-views",
                 "--no-cache"]) == 0
    out = capsys.readouterr().out
    # and named neither the images it counts groups among (both parts) nor
    # that the other photos are groups of their own (169 groups of 173 photos)
    assert ("22 groups of near-identical photos among the 24 images of both "
            "parts (3 images in 1 group(s) of two or more, the other 21 alone; "
            f"{groups})") in out
    # the commands to go on with quote a folder name with a space
    assert f"hybridclf predict --model-dir '{tmp_path / 'my model'}' <images" in out


def test_train_says_when_the_feature_cache_is_not_used(texture_folder, tmp_path,
                                                      capsys):
    # --cache-dir with --augment was ignored without a word
    assert main(["train", "--data-dir", str(texture_folder), "--output-dir",
                 str(tmp_path / "model"), "--features", "color", "--image-size",
                 "32", "--cv-folds", "2", "--test-size", "0", "--n-jobs", "1",
                 "--augment", "--cache-dir", str(tmp_path / "cache")]) == 0
    out = capsys.readouterr().out
    assert f"the feature cache {tmp_path / 'cache'} was not used: it does not " \
        "serve --augment" in out
    assert "features computed for" not in out


def test_train_names_an_empty_class_folder(texture_folder, tmp_path, capsys):
    import shutil

    from hybridclf import SkippedFilesWarning

    data = tmp_path / "data"
    shutil.copytree(texture_folder, data)
    (data / "empty_class").mkdir()
    with pytest.warns(SkippedFilesWarning, match="empty_class.*without any image"):
        assert main(["train", "--data-dir", str(data), "--output-dir",
                     str(tmp_path / "model"), "--features", "color",
                     "--image-size", "32", "--cv-folds", "2", "--test-size", "0",
                     "--n-jobs", "1"]) == 0


def test_train_views_adds_mirror_and_turns_in_fit(texture_folder, tmp_path,
                                                  capsys):
    from hybridclf import load_model

    model = tmp_path / "model"
    assert main(["train", "--data-dir", str(texture_folder), "--output-dir",
                 str(model), "--features", "color", "--image-size", "32",
                 "--cv-folds", "2", "--test-size", "0", "--n-jobs", "1",
                 "--views"]) == 0
    info = json.loads((model / "model.json").read_text())
    assert info["training"]["views_added"] == ["hflip", "rotate_left",
                                               "rotate_right", "blur",
                                               "zoom_out", "hue_turn", "darken"]
    assert ("views added in fit: hflip, rotate_left, rotate_right, blur, zoom_out"
            in capsys.readouterr().out)
    brick = str(texture_folder / "brick" / "0.png")
    assert load_model(model).predict([brick]).shape == (1,)
    # one augment step: --views and --augment exclude each other
    assert main(["train", "--data-dir", str(texture_folder), "--output-dir",
                 str(tmp_path / "other"), "--views", "--augment"]) == 2
    assert "not allowed with argument" in capsys.readouterr().err
    # --photo-views: only the views that keep any photo's class
    photo = tmp_path / "photo"
    assert main(["train", "--data-dir", str(texture_folder), "--output-dir",
                 str(photo), "--features", "color", "--image-size", "32",
                 "--cv-folds", "2", "--test-size", "0", "--n-jobs", "1",
                 "--photo-views"]) == 0
    info = json.loads((photo / "model.json").read_text())
    assert info["training"]["views_added"] == ["zoom_out", "hue_turn", "darken"]
    # the default: the photo views and a blur, and why; --no-views: none
    for extra, name in [([], "default"), (["--no-views"], "none")]:
        capsys.readouterr()
        assert main(["train", "--data-dir", str(texture_folder), "--output-dir",
                     str(tmp_path / name), "--features", "color", "--image-size",
                     "32", "--cv-folds", "2", "--test-size", "0", "--n-jobs", "1",
                     *extra]) == 0
        training = json.loads((tmp_path / name / "model.json").read_text())[
            "training"]
        printed = capsys.readouterr().out
        if not extra:
            assert training["views_added"] == ["zoom_out", "hue_turn", "darken",
                                               "blur"]
            why = "the smallest class has 8 photos (< 15)"
            assert training["views"].endswith(why) and why in printed
            assert why in (tmp_path / name / "README.md").read_text()
        else:
            assert "views_added" not in training and "views added" not in printed


def _png(image):
    import cv2

    return cv2.imencode(".png", image)[1].tobytes()


def test_train_merges_a_feedback_folder_and_reuses_cached_features(
        texture_folder, tmp_path, capsys):
    import hashlib

    import cv2
    import skimage.data

    feedback = tmp_path / "feedback"
    coffee = cv2.cvtColor(skimage.data.coffee(), cv2.COLOR_RGB2BGR)

    def correct(label, data):
        (feedback / label).mkdir(parents=True, exist_ok=True)
        name = hashlib.sha256(data).hexdigest()
        (feedback / label / f"{name}.png").write_bytes(data)

    for i in range(4):  # a new class, from the feedback folder alone
        correct("coffee", _png(coffee[i * 90:i * 90 + 96, 100:196]))
    # the same photo as one in the data folder: kept, in the same group
    correct("grass", (texture_folder / "grass" / "0.png").read_bytes())
    argv = ["train", "--data-dir", str(texture_folder), str(feedback),
            "--features", "hog", "color", "--image-size", "48", "--cv-folds", "2",
            "--test-size", "0.25", "--n-jobs", "1", "--cache-dir",
            str(tmp_path / "cache")]
    assert main([*argv, "--output-dir", str(tmp_path / "first")]) == 0
    # not "the others read from the cache": none was
    assert ("features computed for 29 of 29 images, none read from the cache"
            in capsys.readouterr().out)
    info = json.loads((tmp_path / "first" / "model.json").read_text())
    assert info["classes"] == ["brick", "coffee", "grass", "gravel"]
    assert info["data_fingerprint"]["class_counts"]["grass"] == 9
    assert info["training"]["n_groups"] == 28  # the two identical photos: one
    correct("coffee", _png(coffee[300:396, 200:296]))
    assert main([*argv, "--output-dir", str(tmp_path / "second")]) == 0
    assert ("features computed for 1 of 30 images, the other 29 read from the "
            "cache" in capsys.readouterr().out)
    # the duplicate search keeps what it measured of each photo there too
    kept = [json.loads(p.read_text())
            for p in (tmp_path / "cache").glob("*/settings.json")]
    assert any(k.get("duplicate search") == "scan records" for k in kept)


def test_predict_output_in_a_new_folder_makes_the_folder(trained, texture_folder,
                                                        tmp_path, capsys):
    # as --output-dir everywhere: was "[Errno 2] No such file or directory"
    out = tmp_path / "new" / "sub" / "preds.csv"
    assert main(["predict", "--model-dir", str(trained),
                 str(texture_folder / "brick"), "--output", str(out)]) == 0
    assert len(list(csv.DictReader(out.open(encoding="utf-8-sig")))) == 8
    capsys.readouterr()
    in_the_way = tmp_path / "file.txt"
    in_the_way.write_text("not a folder")
    assert main(["predict", "--model-dir", str(trained),
                 str(texture_folder / "brick"),
                 "--output", str(in_the_way / "preds.csv")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: The 'output' folder ")
    assert f"{str(in_the_way)!r} is a file" in err


@pytest.mark.parametrize("flag", ["--closed-set", "--no-ood"])
def test_predict_without_a_score_writes_an_empty_cell(trained, texture_folder,
                                                     tmp_path, flag):
    # as every other missing value of the CSV: the column had 'nan'
    out = tmp_path / "preds.csv"
    assert main(["predict", "--model-dir", str(trained),
                 str(texture_folder / "brick"), "--output", str(out), flag]) == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8-sig")))
    assert len(rows) == 8
    assert [r["ood_score"] for r in rows] == [""] * 8
    assert all(float(r["confidence"]) > 0 for r in rows)


def test_evaluate_reports_unreadable_test_files_and_evaluates_the_rest(
        trained, texture_folder, tmp_path, capsys):
    # one bad file refused the whole test folder; predict goes on past it
    import shutil

    test = tmp_path / "test"
    shutil.copytree(texture_folder, test)
    (test / "brick" / "truncated.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    (test / "grass" / "zero_bytes.png").write_bytes(b"")
    report = tmp_path / "report"
    assert main(["evaluate", "--model-dir", str(trained), "--test-data-dir",
                 str(test), "--output-dir", str(report), "--n-repeats", "1",
                 "--neighbours", "0"]) == 0
    printed = capsys.readouterr().out
    data = json.loads((report / "report.json").read_text())
    assert data["n_images"] == 24
    unreadable = {os.path.basename(u["file"]): u["reason"]
                  for u in data["unreadable"]}
    assert set(unreadable) == {"truncated.jpg", "zero_bytes.png"}
    assert all(unreadable.values())
    assert "2 unreadable test files (left out)" in printed
    assert "truncated.jpg" in printed and "zero_bytes.png" in printed
    html = (report / "report.html").read_text()
    assert "truncated.jpg" in html and unreadable["zero_bytes.png"] in html
    # nothing readable: one error that says so
    empty = tmp_path / "bad"
    (empty / "brick").mkdir(parents=True)
    (empty / "brick" / "a.jpg").write_bytes(b"not an image")
    assert main(["evaluate", "--model-dir", str(trained), "--test-data-dir",
                 str(empty), "--output-dir", str(tmp_path / "r2")]) == 1
    err = capsys.readouterr().err
    assert "no test image" in err.lower() and "a.jpg" in err


def test_train_leaves_out_a_photo_filed_under_two_classes(texture_folder,
                                                          tmp_path, capsys):
    # a correction that contradicts the data folder: the same bytes as
    # grass/0.png, filed as gravel in the feedback folder
    feedback = tmp_path / "feedback" / "gravel"
    feedback.mkdir(parents=True)
    (feedback / "copy.png").write_bytes(
        (texture_folder / "grass" / "0.png").read_bytes())
    with pytest.warns(SkippedFilesWarning, match=r"(?s)label conflict.*"
                      r"grass/0\.png \(grass\).*copy\.png \(gravel\).*Delete"):
        assert main(["train", "--data-dir", str(texture_folder),
                     str(tmp_path / "feedback"), "--output-dir",
                     str(tmp_path / "model"), "--features", "hog",
                     "--image-size", "48", "--cv-folds", "2", "--n-jobs", "1",
                     "--no-cache"]) == 0
    info = json.loads((tmp_path / "model" / "model.json").read_text())
    counts = info["data_fingerprint"]["class_counts"]
    n_grass = len(list((texture_folder / "grass").iterdir()))
    n_gravel = len(list((texture_folder / "gravel").iterdir()))
    assert (counts["grass"], counts["gravel"]) == (n_grass - 1, n_gravel)
    # recorded as the undecodable files are: the warning alone was lost on a
    # retraining run from cron, and neither model.json nor the card said it
    left_out = {u["file"]: u["reason"] for u in info["unreadable"]}
    grass_name = f"{texture_folder.name}/grass/0.png"
    assert set(left_out) == {grass_name, "feedback/gravel/copy.png"}
    assert left_out[grass_name].startswith("label conflict")
    assert "feedback/gravel/copy.png (gravel)" in left_out[grass_name]
    printed = capsys.readouterr().out
    assert "2 file(s) were left out of the training for their label" in printed
    assert f"  {grass_name}: label conflict" in printed
    card = (tmp_path / "model" / "README.md").read_text()
    assert "2 file(s) of the data folders were left out" in card
    assert "`feedback/gravel/copy.png`: label conflict" in card


def test_train_names_a_group_of_near_identical_photos_under_two_classes(
        texture_folder, tmp_path, capsys):
    # a near-identical copy (re-encoded, not byte-identical) filed under
    # another class was trained on under both labels without a word; it is
    # kept (an object may rightly be filed under two names) and named
    import shutil

    import cv2

    data = tmp_path / "data"
    shutil.copytree(texture_folder, data)
    cv2.imwrite(str(data / "gravel" / "copy.jpg"),
                cv2.imread(str(data / "grass" / "0.png")))
    groups = tmp_path / "groups.csv"
    groups.write_text("file,group\ngrass/0.png,g\ngravel/copy.jpg,g\n")
    model = tmp_path / "model"
    from hybridclf.exceptions import GroupsAcrossClassesWarning

    with pytest.warns(GroupsAcrossClassesWarning,
                      match=r"(?s)1 group\(s\) of near-identical "
                      r"photos.*trained on under each label.*grass/0\.png "
                      r"\(grass\), gravel/copy\.jpg \(gravel\).*Move or delete"
                      r".*hybridclf inspect"):
        assert main(["train", "--data-dir", str(data), "--groups", str(groups),
                     "--output-dir", str(model), "--features", "color",
                     "--image-size", "32", "--cv-folds", "2", "--n-jobs", "1",
                     "--no-cache"]) == 0
    info = json.loads((model / "model.json").read_text())
    assert info["data_fingerprint"]["class_counts"]["gravel"] == 9  # kept
    assert info["groups_across_classes"] == [
        {"files": ["grass/0.png", "gravel/copy.jpg"], "classes": ["grass", "gravel"]}]
    assert "  grass/0.png, gravel/copy.jpg: grass, gravel" in capsys.readouterr().out
    assert ("- `grass/0.png`, `gravel/copy.jpg`: `grass`, `gravel`"
            in (model / "README.md").read_text())


def test_a_group_whose_other_class_photo_does_not_decode_is_not_named(
        texture_folder, tmp_path, capsys):
    # the groups across classes were found before the undecodable files were
    # left out: a truncated copy under another class, never trained on, still
    # had its group named in the warning, the summary, model.json and the card
    import shutil
    import warnings

    import cv2

    data = tmp_path / "data"
    shutil.copytree(texture_folder, data)
    _, jpeg = cv2.imencode(".jpg", cv2.imread(str(data / "grass" / "0.png")))
    (data / "gravel" / "copy.jpg").write_bytes(jpeg.tobytes()[: len(jpeg) // 2])
    groups = tmp_path / "groups.csv"
    groups.write_text("file,group\ngrass/0.png,g\ngravel/copy.jpg,g\n")
    model = tmp_path / "model"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["train", "--data-dir", str(data), "--groups", str(groups),
                     "--output-dir", str(model), "--features", "color",
                     "--image-size", "32", "--cv-folds", "2", "--n-jobs", "1",
                     "--no-cache"]) == 0
    info = json.loads((model / "model.json").read_text())
    assert "gravel/copy.jpg" in {u["file"] for u in info["unreadable"]}
    assert "groups_across_classes" not in info
    assert not [w for w in caught if "near-identical" in str(w.message)]
    assert "grass/0.png, gravel/copy.jpg" not in capsys.readouterr().out
    assert "gravel/copy.jpg`: `grass`" not in (model / "README.md").read_text()


def test_train_on_one_class_says_a_second_is_needed(texture_folder, tmp_path,
                                                    capsys):
    data = tmp_path / "data"
    (data / "grass").mkdir(parents=True)
    for image in (texture_folder / "grass").iterdir():
        (data / "grass" / image.name).write_bytes(image.read_bytes())
    assert main(["train", "--data-dir", str(data), "--output-dir",
                 str(tmp_path / "model"), "--features", "hog", "--image-size",
                 "48", "--n-jobs", "1", "--no-cache"]) == 1
    err = capsys.readouterr().err
    assert "at least two classes" in err and "'grass'" in err
    assert "shape mismatch" not in err


def test_a_class_named_unknown_is_refused_before_training(texture_folder, tmp_path,
                                                         capsys):
    # a folder called "Unknown" trained into a class whose answers the
    # service, predict and the page took for rejections
    data = tmp_path / "data"
    for source, name in (("grass", "grass"), ("gravel", "Unknown")):
        (data / name).mkdir(parents=True)
        for image in (texture_folder / source).iterdir():
            (data / name / image.name).write_bytes(image.read_bytes())
    assert main(["train", "--data-dir", str(data), "--output-dir",
                 str(tmp_path / "model"), "--features", "hog", "--image-size",
                 "48", "--n-jobs", "1", "--no-cache"]) == 1
    err = capsys.readouterr().err
    assert "class named 'Unknown'" in err and "Rename that class folder" in err
    assert not (tmp_path / "model").exists()


def test_predict_refuses_an_output_that_is_an_input_or_a_model_file(
        trained, texture_folder, tmp_path, capsys):
    # '--output M/model.json' replaced the model's metadata by the CSV, and an
    # input image given as the output was emptied before it was read
    photo = tmp_path / "photo.png"
    photo.write_bytes((texture_folder / "brick" / "0.png").read_bytes())
    model_json = trained / "model.json"
    kept = model_json.read_bytes(), photo.read_bytes()
    for output in (model_json, photo):
        assert main(["predict", "--model-dir", str(trained), str(photo),
                     "--output", str(output)]) == 1
        err = capsys.readouterr().err
        assert "would destroy it" in err and "--output" in err
    assert (model_json.read_bytes(), photo.read_bytes()) == kept
    assert main(["predict", "--model-dir", str(trained), str(photo), "--output",
                 str(trained / "predictions.csv")]) == 0  # a new file is fine
    (trained / "predictions.csv").unlink()


def test_names_that_are_not_utf8_train_or_are_reported(texture_folder, tmp_path,
                                                       capsys):
    # a Latin-1 photo name crashed train at its very end ("'utf-8' codec can't
    # encode '\udce9'"); a Latin-1 class folder crashed the model card, then
    # every plot of evaluate: the class is now left out with the reason
    import shutil

    data = tmp_path / "data"
    shutil.copytree(texture_folder, data)
    os.rename(os.fsencode(data / "brick" / "0.png"),
              os.fsencode(data / "brick") + b"/caf\xe9.png")
    os.mkdir(os.fsencode(data) + b"/gr\xe8s")
    from PIL import Image

    Image.open(data / "grass" / "0.png").transpose(Image.FLIP_LEFT_RIGHT).save(
        os.fsdecode(os.fsencode(data) + b"/gr\xe8s/0.png"))
    model = tmp_path / "model"
    with pytest.warns(SkippedFilesWarning, match=r"class folder whose name is not "
                      r"UTF-8 text \(b'gr\\xe8s'\): the class is left out"):
        code = main(["train", "--data-dir", str(data), "--output-dir", str(model),
                     "--features", "color", "--image-size", "32", "--cv-folds", "2",
                     "--test-size", "0", "--n-jobs", "1"])
    assert code == 0, capsys.readouterr().err
    info = json.loads((model / "model.json").read_text())
    assert info["classes"] == ["brick", "grass", "gravel"]
    assert info["data_fingerprint"]["n_images"] == 24


def test_predict_prints_a_name_that_is_not_utf8_in_a_utf8_locale(trained,
                                                                 texture_folder,
                                                                 tmp_path):
    # in en_US.UTF-8 (not C) Python's stdout refuses the surrogates of such a
    # name: predict's CSV on stdout stopped with "'utf-8' codec can't encode";
    # the name is written with its other bytes as \xNN, as in Parquet
    import subprocess
    import sys

    raw = os.fsencode(tmp_path) + b"/caf\xe9.png"
    with open(raw, "wb") as fh:
        fh.write((texture_folder / "brick" / "0.png").read_bytes())
    answer = subprocess.run(
        [sys.executable, "-m", "hybridclf", "predict", "--model-dir", str(trained),
         os.fsdecode(raw)], capture_output=True, timeout=120,
        env={**os.environ, "PYTHONIOENCODING": "utf-8:strict"})
    assert answer.returncode == 0, answer.stderr.decode(errors="replace")
    assert os.fsencode(tmp_path) + b"/caf\\xe9.png,brick," in answer.stdout


def test_train_says_how_far_its_test_metrics_go(texture_folder, tmp_path, capsys):
    # a class of 2 photos keeps both for training: "test balanced_accuracy"
    # was the mean over the other classes, and neither the command nor the
    # model card gave the test metrics' size or spread
    import shutil

    from scipy.stats import binomtest

    data = tmp_path / "data"
    shutil.copytree(texture_folder, data)
    for extra in sorted((data / "grass").iterdir())[2:]:
        extra.unlink()
    model = tmp_path / "model"
    assert main(["train", "--data-dir", str(data), "--output-dir", str(model),
                 "--features", "hog", "color", "--image-size", "64",
                 "--cv-folds", "2", "--n-jobs", "1", "--no-cache"]) == 0
    printed = capsys.readouterr().out
    info = json.loads((model / "model.json").read_text())
    n = info["training"]["n_test"]
    ci = binomtest(round(info["metrics"]["accuracy"] * n), n).proportion_ci(
        0.95, method="wilson")
    assert (f"test accuracy 95% interval: {ci.low:.3f} to {ci.high:.3f} ({n} test "
            "images)") in printed
    assert "the test metrics leave out the classes without a test image: grass" \
        in printed
    card = (model / "README.md").read_text()
    assert (f"On {n} held-out images: the accuracy's 95% interval (Wilson) is "
            f"{ci.low:.3f} to {ci.high:.3f}.") in card
    assert (" These metrics leave out the classes without a held-out image: "
            "`grass`.") in card


def test_train_on_a_folder_one_level_too_deep_names_the_right_one(
        texture_folder, tmp_path, capsys):
    # photos/dataset/<class>/<image>, given as --data-dir photos/: one class,
    # 'dataset'; the message names photos/dataset as the data folder
    data = tmp_path / "photos" / "dataset"
    for name in ("grass", "gravel"):
        (data / name).mkdir(parents=True)
        for image in sorted((texture_folder / name).iterdir())[:4]:
            (data / name / image.name).write_bytes(image.read_bytes())
    assert main(["train", "--data-dir", str(tmp_path / "photos"), "--output-dir",
                 str(tmp_path / "model"), "--features", "hog", "--image-size",
                 "48", "--n-jobs", "1", "--no-cache"]) == 1
    err = capsys.readouterr().err
    assert "'grass', 'gravel'" in err and f"--data-dir {data}" in err
    assert "Add a folder of images for each other class" not in err


def test_train_says_how_many_feedback_photos_it_used(texture_folder, tmp_path,
                                                     capsys):
    import cv2
    import skimage.data

    from hybridclf.feedback import FeedbackStore

    store = FeedbackStore(tmp_path / "feedback")
    for name in ("brick", "grass"):
        crop = getattr(skimage.data, name)()[300:396, :96]
        store.add(cv2.imencode(".png", crop)[1].tobytes(), name)
    store.add(cv2.imencode(".png", crop)[1].tobytes(), name)  # sent twice
    model = tmp_path / "model"
    assert main(["train", "--data-dir", str(texture_folder), str(store.directory),
                 "--output-dir", str(model), "--features", "color", "--image-size",
                 "32", "--cv-folds", "3", "--no-cache", "--n-jobs", "1"]) == 0
    assert ("26 images in 3 classes (8 to 9 per class); 2 of them from the "
            "feedback folder, all in the training part") in capsys.readouterr().out
    info = json.loads((model / "model.json").read_text())
    assert info["training"]["n_feedback"] == 2
    assert "- n_feedback: 2" in (model / "README.md").read_text()
    # without a feedback folder, nothing is said
    assert main(["train", "--data-dir", str(texture_folder), "--output-dir",
                 str(tmp_path / "plain"), "--features", "color", "--image-size",
                 "32", "--cv-folds", "3", "--no-cache", "--n-jobs", "1"]) == 0
    assert "feedback" not in capsys.readouterr().out
    info = json.loads((tmp_path / "plain" / "model.json").read_text())
    assert "n_feedback" not in info["training"]


def test_the_cv_spread_is_named_a_standard_deviation_over_the_folds(capsys):
    # "0.929 +/- 0.047" (CLI summary) and a bare "std" column (model card)
    # read as a confidence interval; it is the fold scores' standard deviation
    from hybridclf.cli._train import _print_scores
    from hybridclf.persistence._card import _card_scores

    cv = {"accuracy": {"mean": 0.929, "std": 0.047, "folds": [0.93] * 15}}
    said = "0.929 +/- 0.047 (standard deviation over 15 folds)"
    assert f"| accuracy | {said} |" in _card_scores({"cv_scores": cv})

    class Result:
        search, cv_scores, test_metrics, test_part = {}, cv, {}, {}

    _print_scores(Result())
    assert f"15-fold grouped CV accuracy: {said}" in capsys.readouterr().out
