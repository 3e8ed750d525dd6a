"""evaluate_model and write_report: metrics worked out by hand, files written."""

import json
import os

import numpy as np
import pytest

from hybridclf import load_image_folder, make_hybrid_pipeline
from hybridclf.evaluation import evaluate_model, reliability_bins, write_report


@pytest.fixture(scope="module")
def evaluated(texture_folder):
    paths, labels = load_image_folder(texture_folder)
    paths, labels = np.asarray(paths, dtype=object), np.asarray(labels)
    pipe = make_hybrid_pipeline(features=["hog", "color"]).set_params(load__size=64)
    pipe.fit(paths[::2], labels[::2])
    return pipe, evaluate_model(pipe, paths[1::2], labels[1::2], n_repeats=2), (
        paths[1::2], labels[1::2])


def test_reliability_bins_by_hand():
    bins, ece = reliability_bins([0.9, 0.9, 0.3, 0.3], [True, False, False, False],
                                 n_bins=2)
    assert [b["count"] for b in bins] == [2, 2]
    assert bins[1]["accuracy"] == 0.5 and bins[1]["confidence"] == pytest.approx(0.9)
    # |0 - 0.3| and |0.5 - 0.9|, each for half of the images
    assert ece == pytest.approx(0.35)


def test_metrics_agree_with_the_pipeline(evaluated):
    pipe, report, (paths, labels) = evaluated
    assert report["metrics"]["accuracy"] == pytest.approx(pipe.score(paths, labels))
    assert report["metrics"]["top_2_accuracy"] >= report["metrics"]["accuracy"]
    matrix = np.asarray(report["confusion_matrix"]["matrix"])
    assert matrix.sum() == len(paths)
    assert np.trace(matrix) / matrix.sum() == pytest.approx(
        report["metrics"]["accuracy"])
    assert len(report["errors"]) == matrix.sum() - np.trace(matrix)
    assert set(report["per_class"]) == {"brick", "grass", "gravel"}
    assert set(report["block_importance"]) == {"hog", "color"}
    assert report["speed_ms_per_image"]["total"] > 0


def test_write_report(evaluated, tmp_path):
    _, report, _ = evaluated
    files = write_report(report, tmp_path)
    data = json.loads(open(files["json"]).read())
    assert "_thumbnails" not in data
    assert data["metrics"] == report["metrics"]
    html = open(files["html"]).read()
    assert html.count("data:image/png;base64,") == len(files["figures"]) >= 4


def test_unknown_test_classes_count_as_wrong(evaluated):
    pipe, _, (paths, labels) = evaluated
    labels = labels.copy()
    labels[0] = "marble"
    with pytest.warns(UserWarning, match=r"1 of \d+ test images belong to classes "
                      r"the model does not know: 'marble' \(1\)"):
        report = evaluate_model(pipe, paths, labels, n_repeats=1)
    assert "marble" in report["confusion_matrix"]["labels"]
    assert report["per_class"]["marble"]["recall"] == 0
    assert report["unknown_classes"] == {"marble": 1}


def test_the_page_says_what_the_command_prints_of_the_classes(evaluated, tmp_path):
    # report.html, the file that is mailed around, said "35 test images, 2
    # classes" and accuracy 0.371, not that 22 of them were of classes the
    # model does not know (the command and report.json said so)
    pipe, _, (paths, labels) = evaluated
    labels = labels.copy()
    labels[labels == "grass"] = "marble"
    with pytest.warns(UserWarning, match="does not know"):
        report = evaluate_model(pipe, paths, labels, n_repeats=1)
    page = open(write_report(report, tmp_path)["html"]).read()
    n = int((labels == "marble").sum())
    assert (f"{n} of the {len(labels)} test images belong to classes the model "
            f"does not know: marble ({n})") in page
    assert "Model classes without a test image (not scored): grass." in page
    # it said "12 test images, 3 classes": the 3 were the model's, the test
    # set's are brick, gravel and marble; and the unknown class's images
    # count as wrong in the calibration error too, which the note left out
    assert f"<p>{len(labels)} test images of 3 classes; the model has 3 classes" \
        in page
    labels = labels.copy()
    labels[np.flatnonzero(labels == "gravel")[:2]] = "slate"
    with pytest.warns(UserWarning, match="does not know"):
        report = evaluate_model(pipe, paths, labels, n_repeats=1)
    page = open(write_report(report, tmp_path)["html"]).read()
    assert f"<p>{len(labels)} test images of 4 classes; the model has 3 classes" \
        in page
    assert "top-k accuracy, expected calibration error and reliability curve" \
        in page


def test_classes_without_test_images_are_listed(evaluated):
    pipe, report, (paths, labels) = evaluated
    assert report["unknown_classes"] == {} and report["absent_classes"] == []
    keep = labels != "grass"
    report = evaluate_model(pipe, paths[keep], labels[keep], n_repeats=1)
    assert report["absent_classes"] == ["grass"]


def test_classes_without_test_images_have_no_scores(evaluated, tmp_path):
    # report.html listed a model class without test images, never predicted,
    # as precision, recall and F1 0.000 (a class the model fails), and the
    # mean of the table's F1 column was not the f1_macro printed above it
    pipe, _, (paths, labels) = evaluated
    predicted = pipe.predict(paths)
    # a class left out of the test set that no other test image is taken for
    absent = next(c for c in pipe.classes_ if c not in predicted[labels != c])
    keep = labels != absent
    report = evaluate_model(pipe, paths[keep], labels[keep], n_repeats=1)
    row = report["per_class"][absent]
    assert row == {"precision": None, "recall": None, "recall_interval": None,
                   "f1": None, "support": 0}
    f1 = [r["f1"] for r in report["per_class"].values() if r["f1"] is not None]
    assert np.mean(f1) == pytest.approx(report["metrics"]["f1_macro"])
    html = open(write_report(report, tmp_path)["html"]).read()
    assert (f"<tr><td>{absent}</td><td></td><td></td><td></td><td></td>"
            '<td class="num">0</td></tr>') in html


def test_the_page_says_which_classes_the_test_set_lacks_or_adds(evaluated):
    # the summary printed both, report.json held both, but report.html said only
    # "51 test images, 4 classes." above lower scores and blank table cells
    from hybridclf.evaluation._page import evaluation_page

    report = dict(evaluated[1], unknown_classes={"marble <b>": 4},
                  absent_classes=["grass"])
    page = evaluation_page(report, [], "t")
    assert ("classes the model does not know: marble &lt;b&gt; (4). They count "
            "as wrong") in page
    assert "Model classes without a test image (not scored): grass.</p>" in page
    assert "does not know" not in evaluation_page(evaluated[1], [], "t")


def test_the_gallery_says_when_it_shows_only_some_errors(evaluated):
    # 30 misclassified images, 24 drawn: the caption read as if that were all
    from hybridclf.evaluation._page import evaluation_page

    error = {"file": "a.png", "true": "brick", "predicted": "grass",
             "top": [("grass", 0.6)]}
    report = dict(evaluated[1], errors=[error] * 30, _thumbnails=[None] * 24)
    page = evaluation_page(report, [("error_gallery", b"png")], "t")
    assert ("<h2>Misclassified images (the first 24 of 30; all are in the table "
            "of errors)</h2>") in page
    report = dict(report, errors=[error] * 24)
    page = evaluation_page(report, [("error_gallery", b"png")], "t")
    assert "<h2>Misclassified images</h2>" in page


def test_a_script_no_font_has_is_not_one_warning_per_character(evaluated,
                                                                 tmp_path):
    # a Thai class name printed one matplotlib "Glyph ... missing" warning per
    # character under the summary (11 lines for one name); hybridclf.plotting
    # names them once, with the fix
    import warnings

    report = dict(evaluated[1])
    labels = ["พระสมเด็จ วัดระฆัง", *report["confusion_matrix"]["labels"][1:]]
    report["confusion_matrix"] = dict(report["confusion_matrix"], labels=labels)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        write_report(report, tmp_path)
    assert [str(w.message) for w in caught
            if "missing from font" in str(w.message)] == []


def test_the_open_set_thresholds_read_as_numbers(evaluated, tmp_path):
    # report.html showed the OOD thresholds as a Python dict, unrounded:
    # "{'hog': 2.641783214697648, 'color': 47.148721108153296}"
    report = dict(evaluated[1])
    report["open_set"] = {"proba_threshold": 0.425,
                          "ood_thresholds": {"hog": 2.641783214697648,
                                             "color": 47.148721108153296},
                          "unknown_share": 0.1}
    html = open(write_report(report, tmp_path)["html"]).read()
    assert "<td>ood_thresholds</td><td>hog 2.642, color 47.149</td>" in html


def test_unknown_classes_are_never_in_the_top_k(evaluated):
    # one test image of a class the model never saw: its rank was the number
    # of test images (1), within the top 2 of three classes
    pipe, _, (paths, _) = evaluated
    with pytest.warns(UserWarning, match=r"does not know: 'marble' \(1\)"):
        report = evaluate_model(pipe, paths[:1], np.array(["marble"]), n_repeats=1)
    assert report["metrics"]["accuracy"] == 0
    assert report["metrics"]["top_2_accuracy"] == 0


def test_write_report_draws_a_file_name_that_is_not_utf8(evaluated, tmp_path):
    # os.listdir gives a Latin-1 name with surrogates; the font renderer of
    # the error gallery refused it, after the whole evaluation
    _, report, _ = evaluated
    assert report["errors"], "the fixture needs a misclassified image"
    report = dict(report, errors=[dict(e, file=os.fsdecode(b"/data/caf\xe9.png"))
                                  for e in report["errors"]])
    files = write_report(report, tmp_path)
    assert "error_gallery" in files["figures"]
    assert b"caf\xe9.png" in open(files["html"], "rb").read()


def test_evaluating_shows_the_cnn_progress_bar(texture_folder, capsys):
    # `hybridclf evaluate` ran the CNN over every test image with nothing on
    # the screen; the model's own parameters stay as they were
    paths, labels = load_image_folder(texture_folder)
    pipe = make_hybrid_pipeline(features=["cnn"], sampler=None, cascade=False)
    pipe.set_params(load__size=32, features__cnn__extract__batch_size=2,
                    features__cnn__extract__backbone="efficientnet_lite0",
                    features__cnn__extract__engine="torch")
    pipe.fit(paths[:6], labels[:6])
    capsys.readouterr()
    evaluate_model(pipe, paths[:6], labels[:6], n_repeats=1, neighbours=0,
                   progress=True)
    assert "CNN features" in capsys.readouterr().err
    assert pipe.get_params()["features__cnn__extract__verbose"] is False
    evaluate_model(pipe, paths[:6], labels[:6], n_repeats=1, neighbours=0)
    assert "CNN features" not in capsys.readouterr().err


def test_a_thumbnail_that_does_not_decode_draws_the_caption_alone():
    # an index thumbnail cut short after its JPEG header raised from PIL in the
    # middle of `hybridclf evaluate`, after all its work
    from hybridclf.evaluation._gallery import _decode

    assert _decode(b"\xff\xd8a") is None and _decode(None) is None


@pytest.mark.parametrize("n_correct, n_groups", [(0, 3), (2, 5), (7, 7), (9, 13)])
def test_an_interval_over_pairs_is_that_of_one_photo_per_pair(n_correct, n_groups):
    # photos of one object are right or wrong together: the interval of
    # 2k right of 2m photos in m pairs is that of k right of m photos
    from scipy.stats import binomtest

    from hybridclf.evaluation import accuracy_interval

    ci = binomtest(n_correct, n_groups).proportion_ci(0.95, method="wilson")
    assert accuracy_interval(2 * n_correct, 2 * n_groups,
                             n_groups=n_groups) == pytest.approx([ci.low, ci.high])
    assert accuracy_interval(n_correct, n_groups, n_groups=n_groups) == \
        accuracy_interval(n_correct, n_groups)


def test_each_recall_has_its_interval_and_few_test_images_are_named(evaluated,
                                                                   tmp_path):
    # a class of 4 photos kept 1 for the test part: "recall 1.000" and a
    # balanced accuracy of 1.000 came with no word that they rest on one photo
    from scipy.stats import binomtest

    pipe, report, (paths, labels) = evaluated
    predicted = pipe.predict(paths)
    for name, scores in report["per_class"].items():
        mine = labels == name
        ci = binomtest(int((predicted[mine] == name).sum()),
                       int(mine.sum())).proportion_ci(0.95, method="wilson")
        assert scores["recall_interval"] == pytest.approx([ci.low, ci.high])
    assert report["few_test_images"] == {c: 4 for c in ("brick", "grass", "gravel")}
    html = open(write_report(report, tmp_path)["html"]).read()
    assert "Few test images:</strong> brick (4), grass (4), gravel (4)" in html
    assert "recall 95% interval" in html


def test_a_test_set_of_one_class_all_right_warns_nothing(evaluated):
    # scikit-learn's balanced accuracy warned "A single label was found in
    # 'y_true' and 'y_pred' ... use the 'labels' parameter", which the user
    # of hybridclf evaluate cannot act on
    import warnings

    pipe, _, (paths, labels) = evaluated
    predicted = pipe.predict(paths)
    right = np.flatnonzero((predicted == labels) & (labels == labels[0]))
    assert len(right), "the fixture needs a right answer"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = evaluate_model(pipe, paths[right], labels[right], n_repeats=1)
    assert report["metrics"]["balanced_accuracy"] == 1.0


def test_block_importance_says_how_far_it_goes(evaluated, tmp_path):
    # on a small test set the importance was the mean drop of 3 permutations
    # and their spread: "hog 0.125" on 8 photos (one photo) read as a block
    # that matters, with nothing to say how far other photos would move it
    from hybridclf.evaluation._page import importance_sentence

    pipe, report, (paths, labels) = evaluated
    assert len(paths) == 12
    for block in report["block_importance"].values():
        low, high = block["interval"]
        assert -1 <= low <= block["mean"] <= high <= 1
    assert "95% interval over the 12 test images" in importance_sentence(
        report["block_importance"], 12)
    # 12 photos in 6 pairs go as far as 6 draws: fewer than 10, no interval,
    # and the report says so
    grouped = evaluate_model(pipe, paths, labels, groups=np.arange(12) // 2,
                             n_repeats=2)
    assert [b["mean"] for b in grouped["block_importance"].values()] == [
        b["mean"] for b in report["block_importance"].values()]
    assert all(b["interval"] is None for b in grouped["block_importance"].values())
    why = ("no interval: 12 test images in 6 groups, each counted once, fewer "
           "than 10")
    assert why in importance_sentence(grouped["block_importance"], 12, 6)
    assert why in open(write_report(grouped, tmp_path)["html"]).read()
