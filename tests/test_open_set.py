"""Open set on real photos: strangers are "unknown" with the reason, worse photos
of known classes keep their class with a quality issue (issue 18)."""

import base64
import csv

import cv2
import numpy as np
import pytest
import skimage.data

from hybridclf import load_image_folder, make_hybrid_pipeline, save_model
from hybridclf.io import read_image
from hybridclf.neighbours import INDEX_FILE
from hybridclf.persistence import read_model_info
from hybridclf.prediction import (
    LOW_CONFIDENCE,
    NOVEL,
    UNKNOWN,
    predict_files,
    predict_with_reasons,
    read_open_set,
)
from hybridclf.training import train_model, training_files

from .conftest import require_shared

SIZE = 96


@pytest.fixture(scope="module")
def amulet_model(tmp_path_factory):
    """A CNN model of three amulet6 classes, saved with its embedding index."""
    paths, labels = load_image_folder(require_shared("amulet6"))
    paths, labels = np.asarray(paths), np.asarray(labels)
    keep = np.isin(labels, np.unique(labels)[:3])
    pipe = make_hybrid_pipeline(features=["cnn", "color"]).set_params(
        load__size=SIZE, features__cnn__extract__image_size=SIZE)
    result = train_model(pipe, paths[keep], labels[keep], test_size=0, cv_folds=3)
    folder = tmp_path_factory.mktemp("amulet_open_set")
    save_model(result.pipeline, folder, metadata=result.metadata(),
               files=training_files(result, paths[keep]))
    return {"dir": folder, "result": result, "paths": paths[keep],
            "labels": labels[keep]}


def _foreign():
    """Photos of other domains: a portrait, a coffee cup, a texture, noise."""
    rng = np.random.default_rng(0)
    return [skimage.data.astronaut(), skimage.data.coffee(),
            np.stack([skimage.data.brick()] * 3, axis=-1),
            rng.integers(0, 256, (200, 200, 3), dtype=np.uint8)]


def test_model_directory_holds_the_novelty_check(amulet_model):
    info = read_model_info(amulet_model["dir"])
    novelty = info["open_set"]["novelty"]
    assert 0 < novelty["threshold"] < 2
    assert (amulet_model["dir"] / INDEX_FILE).exists()
    options = read_open_set(info, amulet_model["dir"])
    index = options["novelty"]["index"]
    # every training photo and its degraded views, each traced to its photo
    n = len(amulet_model["paths"])
    assert len(index.labels_) % n == 0 and len(index.labels_) > n
    assert sorted(set(index.sources_.tolist())) == list(range(n))
    assert options["ood_thresholds"] is None


def test_blurred_training_photo_keeps_its_class_and_is_called_blurry(amulet_model):
    options = read_open_set(read_model_info(amulet_model["dir"]), amulet_model["dir"])
    pipe = amulet_model["result"].pipeline
    photos = [read_image(p) for p in amulet_model["paths"][::6]]
    blurred = [cv2.GaussianBlur(p, (0, 0), 2.0) for p in photos]
    out = predict_with_reasons(pipe, blurred, quality=True, **options)
    assert [q["issues"] for q in out["quality"]] == [["blurry"]] * len(blurred)
    # the quality never makes the answer "unknown" by itself
    kept = out["labels"] == amulet_model["labels"][::6]
    assert kept.mean() >= 0.8
    assert NOVEL not in out["reasons"]
    sharp = predict_with_reasons(pipe, photos, quality=True, **options)
    assert all(q["ok"] for q in sharp["quality"])


def test_foreign_photo_is_unknown_because_unlike_any_training_photo(amulet_model):
    options = read_open_set(read_model_info(amulet_model["dir"]), amulet_model["dir"])
    pipe = amulet_model["result"].pipeline
    out = predict_with_reasons(pipe, _foreign(), **options)
    assert list(out["labels"]) == [UNKNOWN] * 4
    assert out["reasons"] == [NOVEL] * 4
    assert (out["scores"] > 1).all()
    # without the novelty check only the confidence can reject them, in its words
    closed = predict_with_reasons(pipe, _foreign(), proba_threshold=1.01)
    assert closed["reasons"] == [LOW_CONFIDENCE] * 4


def test_predict_csv_has_the_reason_and_the_quality(amulet_model, tmp_path):
    from hybridclf.cli import main

    cv2.imwrite(str(tmp_path / "stranger.png"), skimage.data.coffee()[..., ::-1])
    photo = read_image(amulet_model["paths"][0])
    cv2.imwrite(str(tmp_path / "blurred.png"),
                cv2.GaussianBlur(photo, (0, 0), 2.0)[..., ::-1])
    out = tmp_path / "predictions.csv"
    assert main(["predict", "--model-dir", str(amulet_model["dir"]), str(tmp_path),
                 "--output", str(out)]) == 0
    rows = {r["file"].rsplit("/", 1)[-1]: r
            for r in csv.DictReader(out.open(encoding="utf-8-sig"))}
    assert rows["stranger.png"]["label"] == "unknown"
    assert rows["stranger.png"]["unknown_reason"] == NOVEL
    assert rows["blurred.png"]["quality"] == "blurry"
    assert rows["blurred.png"]["label"] == amulet_model["labels"][0]
    assert rows["blurred.png"]["unknown_reason"] == ""


def test_predict_files_rows_without_quality(amulet_model):
    options = read_open_set(read_model_info(amulet_model["dir"]), amulet_model["dir"])
    pipe = amulet_model["result"].pipeline
    rows = list(predict_files(pipe, amulet_model["paths"][:2], quality=False,
                              **options))
    assert [r["quality"] for r in rows] == [None, None]
    assert all(r["unknown_reason"] in ("", NOVEL, LOW_CONFIDENCE) for r in rows)


def test_service_answers_quality_and_reason_in_its_schema(amulet_model):
    pytest.importorskip("fastapi")
    from hybridclf.serve import create_app

    from .test_serve import _Server

    photo = read_image(amulet_model["paths"][0])
    ok, blurred = cv2.imencode(".png", cv2.GaussianBlur(photo, (0, 0), 2.0)[..., ::-1])
    ok, stranger = cv2.imencode(".png", skimage.data.coffee()[..., ::-1])
    with _Server(create_app(amulet_model["dir"])) as client:
        schema = client.get("/openapi.json").json()["components"]["schemas"]
        answers = [client.post("/predict", json={
            "image_data": base64.b64encode(data.tobytes()).decode(),
            "confidence_threshold": 0.0}).json() for data in (blurred, stranger)]
    response = schema["PredictResponse"]["properties"]
    assert {"quality", "unknown_reason"} <= set(response)
    assert {"ok", "issues", "message"} <= set(schema["PhotoQuality"]["properties"])
    assert answers[0]["quality"]["issues"] == ["blurry"]
    assert not answers[0]["quality"]["ok"]
    assert "blurry" in answers[0]["quality"]["message"]
    assert answers[0]["predicted_class"] == amulet_model["labels"][0]
    assert answers[0]["unknown_reason"] is None
    assert answers[1]["predicted_class"] == "unknown"
    assert answers[1]["unknown_reason"] == NOVEL
    assert answers[1]["quality"]["ok"]


def test_the_service_scales_the_request_threshold_by_the_novelty():
    pytest.importorskip("fastapi")
    from hybridclf.serve._predict import ItemResult, prediction_body

    def answer(novelty):
        result = ItemResult(label="a", proba=np.array([0.45, 0.35, 0.2]),
                            novelty=novelty)
        return prediction_body(result, name="the uploaded image",
                               classes=["a", "b", "c"], threshold=0.5,
                               with_proba=False)

    # close to a training photo: 0.45 is enough under 0.5 x 0.4
    assert answer(0.4)["predicted_class"] == "a"
    # at the novelty threshold, or without the check, the whole 0.5 applies
    for novelty in (0.95, float("nan")):
        body = answer(novelty)
        assert body["predicted_class"] == UNKNOWN
        assert body["unknown_reason"] == LOW_CONFIDENCE


def test_evaluate_applies_the_novelty_check(amulet_model):
    from hybridclf.evaluation import evaluate_model

    info = read_model_info(amulet_model["dir"])
    options = read_open_set(info, amulet_model["dir"])
    pipe = amulet_model["result"].pipeline
    stranger = skimage.data.coffee()
    rows = [0, len(amulet_model["paths"]) // 2, -1]  # three classes
    X = [*amulet_model["paths"][rows], stranger]
    labels = [*amulet_model["labels"][rows], amulet_model["labels"][0]]
    report = evaluate_model(pipe, X, labels, n_repeats=1, model_info=info,
                            novelty=options["novelty"])
    open_set = report["open_set"]
    assert open_set["novelty_threshold"] == info["open_set"]["novelty"]["threshold"]
    assert "ood_thresholds" not in open_set
    # the coffee cup at least is rejected
    assert open_set["unknown_share"] >= 0.25
