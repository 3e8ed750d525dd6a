"""The nearest training photos of an answer (issue 17): a trained model keeps
its training photos' file names and thumbnails, and explain() finds them."""

import csv
import io
import shutil

import cv2
import numpy as np
import pytest
from PIL import Image

from hybridclf import load_model
from hybridclf._model_files import write_manifest
from hybridclf.cli import main
from hybridclf.neighbours import INDEX_FILE, EmbeddingIndex, explain
from hybridclf.training import train_folder

SIZE = 64


@pytest.fixture(scope="module")
def copies_folder(texture_folder, tmp_path_factory):
    """The textures, with two near-duplicate copies of brick/0.png, and one
    byte-identical copy of it."""
    root = tmp_path_factory.mktemp("copies")
    shutil.copytree(texture_folder, root, dirs_exist_ok=True)
    image = cv2.imread(str(root / "brick" / "0.png"))
    cv2.imwrite(str(root / "brick" / "0_copy.jpg"), image,
                [cv2.IMWRITE_JPEG_QUALITY, 80])
    brighter = cv2.convertScaleAbs(image, alpha=1.0, beta=12)
    cv2.imwrite(str(root / "brick" / "0_brighter.png"), brighter)
    shutil.copyfile(root / "brick" / "0.png", root / "brick" / "0_same.png")
    return root


def _train(data, out, thumbnails):
    return train_folder(data, out, features=["cnn", "color"], image_size=SIZE,
                        cv_folds=3, test_size=0, feature_cache=False,
                        thumbnails=thumbnails)


@pytest.fixture(scope="module")
def trained(copies_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "model"
    _train(copies_folder, out, thumbnails=True)
    return out


def test_a_training_photo_finds_itself_and_its_copies(trained, copies_folder):
    pipe = load_model(trained)
    photo = str(copies_folder / "brick" / "0.png")
    [near] = explain(pipe, [photo], k=3, index=trained)
    # the byte-identical brick/0_same.png is the same photo: no slot of its own
    assert near[0]["file"] in ("brick/0.png", "brick/0_same.png")
    assert near[0]["similarity"] == pytest.approx(1, abs=2e-3)
    assert {n["file"] for n in near[1:]} == {"brick/0_copy.jpg",
                                             "brick/0_brighter.png"}
    assert all(n["label"] == "brick" for n in near)
    assert all(n["similarity"] > 0.9 for n in near)
    # as arrays too, and through a loaded index
    image = cv2.cvtColor(cv2.imread(photo), cv2.COLOR_BGR2RGB)
    [again] = explain(pipe, [image], k=1, index=EmbeddingIndex.load(trained))
    assert again[0]["file"] == "brick/0.png"


def test_a_model_saved_with_a_format_1_index_still_explains(trained, copies_folder,
                                                           tmp_path):
    # before the search in fewer dimensions: full-space float16 embeddings,
    # labels per entry and names as str
    from hybridclf.pipeline import get_loader
    from hybridclf.prediction import embed_images

    pipe = load_model(trained)
    index = EmbeddingIndex.load(trained)
    assert index.components_ is not None or index.embeddings_.shape[1] <= 128
    photos = [str(copies_folder / f) for f in index.files_]
    full = embed_images(pipe, get_loader(pipe).transform(photos))
    unit = full / np.linalg.norm(full, axis=1, keepdims=True)
    old = tmp_path / "old_model"
    shutil.copytree(trained, old)
    np.savez(old / INDEX_FILE, embeddings=unit.astype(np.float16),
             labels=index.labels_[:len(photos)].astype(str),
             sources=np.arange(len(photos)), files=index.files_.astype(str),
             version=np.array(1))
    write_manifest(old)  # as that model was saved
    [near] = explain(pipe, [str(copies_folder / "brick" / "0.png")], k=4, index=old)
    assert near[0]["similarity"] == pytest.approx(1, abs=2e-3)
    # that index does not know which files are one photo: each has a slot
    assert {n["file"] for n in near} == {"brick/0.png", "brick/0_same.png",
                                         "brick/0_copy.jpg", "brick/0_brighter.png"}


def test_the_index_keeps_names_and_thumbnails(trained, copies_folder):
    index = EmbeddingIndex.load(trained)
    files = sorted(p.relative_to(copies_folder).as_posix()
                   for p in copies_folder.rglob("*") if p.is_file())
    assert sorted(index.files_.tolist()) == files
    assert len(index.thumbnails_) == len(files)
    thumb = Image.open(io.BytesIO(index.thumbnails_[0]))
    assert thumb.format == "JPEG" and max(thumb.size) <= SIZE


def test_no_thumbnails_leaves_them_out(copies_folder, trained, tmp_path):
    assert main(["train", "--data-dir", str(copies_folder), "--output-dir",
                 str(tmp_path / "bare"), "--features", "cnn", "color",
                 "--image-size", str(SIZE), "--cv-folds", "3", "--test-size", "0",
                 "--no-cache", "--no-thumbnails"]) == 0
    index = EmbeddingIndex.load(tmp_path / "bare")
    assert index.thumbnails_ is None and index.files_.size > 0
    [near] = explain(load_model(tmp_path / "bare"),
                     [str(copies_folder / "grass" / "3.png")], k=2,
                     index=tmp_path / "bare")
    assert near[0]["file"] == "grass/3.png" and near[0]["thumbnail"] is None
    with_thumbs = (trained / INDEX_FILE).stat().st_size
    assert (tmp_path / "bare" / INDEX_FILE).stat().st_size < with_thumbs


def test_explain_without_an_index_says_how_to_get_one(trained, tmp_path):
    with pytest.raises(ValueError, match="has no neighbours.npz.*CNN block"):
        explain(load_model(trained), [np.zeros((SIZE, SIZE, 3), np.uint8)],
                index=tmp_path)


def test_an_index_that_is_not_the_models_is_refused(trained, copies_folder,
                                                    tmp_path, capsys):
    # before, explain() and the novelty check read any neighbours.npz: another
    # model's gave its photos as evidence, and a deleted one made predict
    # warn of a fallback and advise retraining with a CNN block
    from hybridclf.exceptions import ModelLoadError

    pipe, photo = load_model(trained), str(copies_folder / "brick" / "0.png")
    model = tmp_path / "model"
    shutil.copytree(trained, model)
    ours = EmbeddingIndex.load(trained)
    width = (ours.embeddings_ if ours.components_ is None
             else ours.components_).shape[1]
    # another model's index, of the same CNN
    EmbeddingIndex().fit(np.eye(3, width), ["x", "y", "z"]).save(model)
    with pytest.raises(ModelLoadError, match="neighbours.npz' was modified"):
        explain(pipe, [photo], index=model)
    (model / INDEX_FILE).unlink()
    with pytest.raises(ModelLoadError, match="neighbours.npz' listed in manifest"
                       ".json is missing. Copy the whole model directory"):
        explain(pipe, [photo], index=model)
    assert main(["predict", "--model-dir", str(model), photo]) == 1
    err = capsys.readouterr().err
    assert "is missing. Copy the whole model directory" in err
    assert "per-block OOD" not in err and "CNN block" not in err
    write_manifest(model)  # a model saved without an index, and one copied in
    shutil.copy(trained / INDEX_FILE, model / INDEX_FILE)
    with pytest.raises(ModelLoadError, match="not listed in manifest.json"):
        explain(pipe, [photo], index=model)
    (model / INDEX_FILE).unlink()
    with pytest.raises(ValueError, match="has no neighbours.npz"):
        explain(pipe, [photo], index=model)


def test_explain_refuses_an_index_of_other_classes(trained, copies_folder):
    # before, another model's index gave its photos and classes as evidence
    pipe = load_model(trained)
    ours = EmbeddingIndex.load(trained)
    width = (ours.embeddings_ if ours.components_ is None
             else ours.components_).shape[1]
    other = EmbeddingIndex().fit(np.eye(3, width), ["x", "brick", "z"])
    with pytest.raises(ValueError, match="classes the pipeline does not know "
                       r"\('x', 'z'\): it is another model's index"):
        explain(pipe, [str(copies_folder / "brick" / "0.png")], index=other)
    unlabelled = EmbeddingIndex().fit(np.eye(3, width))  # no labels: allowed
    assert len(explain(pipe, [str(copies_folder / "brick" / "0.png")], k=2,
                       index=unlabelled)[0]) == 2


def test_predict_lists_the_nearest_training_files(trained, copies_folder, tmp_path):
    out = tmp_path / "preds.csv"
    assert main(["predict", "--model-dir", str(trained), str(copies_folder / "brick"),
                 "--neighbours", "2", "--output", str(out)]) == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8-sig")))
    assert list(rows[0])[-6:] == [
        "neighbour_1_file", "neighbour_1_label", "neighbour_1_similarity",
        "neighbour_2_file", "neighbour_2_label", "neighbour_2_similarity"]
    for row in rows:  # every input is a training photo: it finds itself first
        # (brick/0_same.png finds brick/0.png, the same bytes: one photo)
        found = (copies_folder / row["neighbour_1_file"]).read_bytes()
        assert found == open(row["file"], "rb").read()
        assert float(row["neighbour_1_similarity"]) > 0.99
        assert row["neighbour_1_label"] == "brick"
        assert 0 < float(row["neighbour_2_similarity"]) <= float(
            row["neighbour_1_similarity"])
    # 0 (the default) adds no column
    assert main(["predict", "--model-dir", str(trained), str(copies_folder / "brick"),
                 "--output", str(out)]) == 0
    header = next(csv.reader(out.open(encoding="utf-8-sig")))
    assert not any(c.startswith("neighbour") for c in header)


def test_predict_bad_neighbours_is_a_usage_error(trained, copies_folder, capsys):
    assert main(["predict", "--model-dir", str(trained), str(copies_folder),
                 "--neighbours", "-1"]) == 2
    assert "--neighbours: must be a number >= 0" in capsys.readouterr().err


def test_predict_neighbours_of_a_model_without_cnn_says_why(copies_folder, tmp_path,
                                                           capsys):
    train_folder(copies_folder, tmp_path / "color", features=["color"],
                 image_size=SIZE, cv_folds=3, test_size=0, feature_cache=False)
    assert main(["predict", "--model-dir", str(tmp_path / "color"),
                 str(copies_folder / "grass"), "--neighbours", "3"]) == 1
    err = capsys.readouterr().err
    assert "has no neighbours.npz" in err and "CNN block" in err


def test_evaluation_gallery_shows_each_error_beside_its_nearest_photos(
        trained, copies_folder, tmp_path):
    import json

    from hybridclf.evaluation import evaluate_folder

    test = tmp_path / "test"
    for name in ("brick", "grass"):
        (test / name).mkdir(parents=True)
    shutil.copy(copies_folder / "brick" / "1.png", test / "grass" / "misfiled.png")
    shutil.copy(copies_folder / "grass" / "2.png", test / "grass" / "2.png")
    shutil.copy(copies_folder / "brick" / "3.png", test / "brick" / "3.png")
    report, files = evaluate_folder(trained, test, tmp_path / "report", n_repeats=1,
                                    neighbours=2)
    [error] = [e for e in report["errors"] if e["file"].endswith("misfiled.png")]
    assert error["predicted"] == "brick"
    assert [n["label"] for n in error["neighbours"]] == ["brick", "brick"]
    assert error["neighbours"][0]["file"] == "brick/1.png"
    assert error["neighbours"][0]["similarity"] > 0.99
    assert len(report["_neighbour_thumbnails"][0]) == 2
    assert report["_neighbour_thumbnails"][0][0].shape[2] == 3
    saved = json.loads(open(files["json"]).read())
    assert saved["errors"][0]["neighbours"] == error["neighbours"]
    page = open(files["html"]).read()
    assert "Misclassified images and their nearest training photos" in page
    assert "brick 1.00 (brick/1.png)" in page
    assert "error_gallery" in files["figures"]
    # 0 shows none
    report, _ = evaluate_folder(trained, test, tmp_path / "bare", n_repeats=1,
                                neighbours=0)
    assert all("neighbours" not in e for e in report["errors"])
