"""The library steps of 'hybridclf train' around train_model."""

import json
import os
import tempfile

import numpy as np
import pytest

from hybridclf import ClassAwareAugmenter, load_image_folder
from hybridclf.pipeline import get_classifier, get_loader, get_sampler
from hybridclf.training import (
    find_training_groups,
    make_training_pipeline,
    train_model,
    training_files,
    training_metadata,
)


def test_quick_pipeline_settings_and_threads():
    pipe = make_training_pipeline(quick=True, classifier="logistic", augment=True,
                                  n_jobs=2, random_state=7)
    assert get_loader(pipe).size == 128
    assert [name for name, _ in pipe["features"].transformer_list] == ["hog", "color"]
    assert type(get_classifier(pipe)).__name__ == "LogisticRegression"
    sampler = get_sampler(pipe)
    assert isinstance(sampler, ClassAwareAugmenter)
    assert sampler.random_state == 7 and sampler.n_jobs == 2
    assert pipe.get_params()["features__hog__extract__n_jobs"] == 2
    # the classifier keeps its own n_jobs
    assert get_classifier(pipe).n_jobs is None
    full = make_training_pipeline(features=["lbp"], image_size=64, views="none")
    assert get_loader(full).size == 64 and get_sampler(full) is None


def test_views_by_default_and_exclude_augment():
    from hybridclf import ViewAugmenter
    from hybridclf.view_sampling import AUTO_VIEWS, DEFAULT_VIEWS, OBJECT_VIEWS

    # the default adds the photo views and a blur below 15 photos per class
    assert get_sampler(make_training_pipeline()).views == AUTO_VIEWS
    assert get_sampler(make_training_pipeline(views="none")) is None
    assert get_sampler(make_training_pipeline(views=False)) is None
    # --augment replaces the default views
    assert isinstance(get_sampler(make_training_pipeline(augment=True)),
                      ClassAwareAugmenter)
    assert get_sampler(make_training_pipeline(views="photo")).views == DEFAULT_VIEWS
    objects = get_sampler(make_training_pipeline(views=True))
    assert isinstance(objects, ViewAugmenter)
    assert objects.views == OBJECT_VIEWS + DEFAULT_VIEWS
    with pytest.raises(ValueError, match="augment=True and views='objects'.*Choose"):
        make_training_pipeline(augment=True, views=True)
    with pytest.raises(ValueError, match="'views' argument.*Got 'some'"):
        make_training_pipeline(views="some")


def test_groups_from_a_csv_and_the_metadata(texture_folder, tmp_path):
    paths, labels = load_image_folder(texture_folder)
    csv = tmp_path / "groups.csv"
    csv.write_text("file,group\nbrick/0.png,g\nbrick/1.png,g\n")
    groups, source = find_training_groups(paths, groups_csv=str(csv),
                                          root=texture_folder)
    assert source == str(csv)
    first, second = (paths.index(str(texture_folder / "brick" / f"{i}.png"))
                     for i in (0, 1))
    assert groups[first] == groups[second]
    assert len(np.unique(groups)) == len(paths) - 1

    pipe = make_training_pipeline(features=["color"], image_size=32)
    result = train_model(pipe, paths, labels, groups=groups, cv_folds=3)
    metadata = training_metadata(result, paths, labels, root=texture_folder,
                                 classifier="ridge", group_source=source,
                                 seconds_wall=1.234)
    assert metadata["training"]["features"] == ["color"]
    assert metadata["training"]["groups"] == str(csv)
    assert metadata["training"]["seconds_wall"] == 1.23
    assert metadata["data_fingerprint"]["n_images"] == len(paths)
    text = training_files(result, paths, root=texture_folder)["label_issues.csv"]
    text = text.decode("utf-8-sig")
    rows = [line.split(",") for line in text.splitlines()[1:]]
    assert len(rows) == metadata["label_issues"]["n_flagged"]
    names = {os.path.relpath(p, texture_folder).replace(os.sep, "/") for p in paths}
    assert {row[0] for row in rows} <= names


def test_byte_identical_files_share_a_group_whatever_the_csv_says(texture_folder,
                                                                  tmp_path):
    import shutil

    from hybridclf.training import join_identical_files

    copy = tmp_path / "copy.png"
    shutil.copy(texture_folder / "grass" / "0.png", copy)
    paths = [str(texture_folder / "grass" / "0.png"),
             str(texture_folder / "grass" / "1.png"), str(copy)]
    assert join_identical_files([5, 7, 9], paths).tolist() == [0, 1, 0]
    csv = tmp_path / "groups.csv"
    csv.write_text(f"file,group\n{paths[0]},g\n{paths[1]},g\n")
    groups, _ = find_training_groups(paths, groups_csv=str(csv))
    assert len(set(groups.tolist())) == 1


def test_while_waiting_runs_once_where_the_views_are_awaited(texture_folder):
    """With a CNN block, the caller's work runs once, while the novelty
    index's views are embedded in their thread; without one, never."""
    paths, labels = load_image_folder(texture_folder)
    calls = []

    def note():
        calls.append("called")

    pipe = make_training_pipeline(features=["cnn", "color"], image_size=64,
                                  views="none")
    result = train_model(pipe, paths, labels, cv_folds=3, test_size=0,
                         while_waiting=note)
    assert len(calls) == 1 and result.neighbours is not None
    train_model(make_training_pipeline(features=["color"], image_size=64,
                                       views="none"),
                paths, labels, cv_folds=3, test_size=0, while_waiting=note)
    assert len(calls) == 1


def test_the_final_model_never_sees_the_test_part(texture_folder):
    # evaluate --model-dir (no test folder) scores the recorded test part
    # again: the final model must have been fitted on the training part only
    from hybridclf.pipeline import get_block_scaler, iter_feature_blocks

    paths, labels = load_image_folder(texture_folder)
    pipe = make_training_pipeline(features=["color"], image_size=32, views="none")
    result = train_model(pipe, paths, labels, cv_folds=3, test_size=0.25)
    assert len(result.test_indices) > 0
    assert not set(result.test_indices) & set(result.train_indices)
    (_, block), = iter_feature_blocks(result.pipeline)
    assert get_block_scaler(block).n_samples_seen_ == len(result.train_indices)


def test_corrections_from_a_feedback_folder_are_trained_on(texture_folder,
                                                          tmp_path):
    """``train --data-dir photos/ feedback/``: the corrected photos are learned.

    A test part drawn from the photos' content held about a fifth of the
    corrections out, so the retrained model still got them wrong.
    """
    import cv2
    import skimage.data

    from hybridclf.feedback import FeedbackStore
    from hybridclf.training import train_folder

    store = FeedbackStore(tmp_path / "feedback")
    for name in ("brick", "grass", "gravel"):
        image = getattr(skimage.data, name)()
        for i in range(4):  # crops that the data folder does not hold
            crop = image[300:396, i * 100 : i * 100 + 96]
            store.add(cv2.imencode(".png", crop)[1].tobytes(), name)
    model = tmp_path / "model"
    train_folder([texture_folder, tmp_path / "feedback"], model,
                 features=["color"], image_size=32, views="none", cv_folds=3,
                 test_size=0.25, feature_cache=False, n_jobs=1)
    scored = json.loads((model / "test_part.json").read_text())["files"]
    assert scored  # the data folder's photos are still tested
    assert [f["file"] for f in scored if f["data_dir"] == 1] == []


def test_a_new_class_of_one_feedback_photo_waits_instead_of_stopping_training(
        texture_folder, tmp_path):
    # one visitor's photo of a new class stopped every retraining ("needs at
    # least 2 images per class") until someone moved it out of the folder
    import cv2
    import skimage.data

    from hybridclf.exceptions import SkippedFilesWarning
    from hybridclf.feedback import FeedbackStore
    from hybridclf.training import train_folder

    store = FeedbackStore(tmp_path / "feedback")
    coins = skimage.data.coins()
    store.add(cv2.imencode(".png", coins[:96, :96])[1].tobytes(), "coins")
    options = dict(features=["color"], image_size=32, views="none", cv_folds=3,
                   feature_cache=False, n_jobs=1)
    with pytest.warns(SkippedFilesWarning, match=r"single photo.*'coins' "
                      r"\(feedback/coins/[0-9a-f]{64}\.png\)"):
        training = train_folder([texture_folder, store.directory],
                                tmp_path / "model", **options)
    assert training.result.classes == ["brick", "grass", "gravel"]
    assert training.n_feedback == 0
    # the model records it, as it does an undecodable photo: a retraining run
    # from cron showed it only in a warning
    (name, reason), = training.unreadable
    assert name.startswith("feedback/coins/") and "'coins'" in reason
    info = json.loads((tmp_path / "model" / "model.json").read_text())
    assert info["unreadable"] == [{"file": name, "reason": reason}]
    assert f"`{name}`: the only photo of the class 'coins'" in (
        tmp_path / "model" / "README.md").read_text()
    store.add(cv2.imencode(".png", coins[100:196, 100:196])[1].tobytes(), "coins")
    training = train_folder([texture_folder, store.directory], tmp_path / "model",
                            **options)
    assert "coins" in training.result.classes and training.n_feedback == 2


def test_without_the_feature_cache_each_photo_is_scanned_once(texture_folder,
                                                             tmp_path,
                                                             monkeypatch):
    # with feature_cache=False (--no-cache) the fingerprints of the photos
    # trained on (train_part.json) decoded and measured every photo again
    # after the duplicate search had (0.4 s of CPU on amulet6's 173)
    from collections import Counter

    from hybridclf.inspect import _scan
    from hybridclf.training import train_folder

    scans = Counter()

    def scan_and_count(path, **kwargs):
        scans[path] += 1
        return _scan_file(path, **kwargs)

    _scan_file = _scan.scan_file
    monkeypatch.setattr(_scan, "scan_file", scan_and_count)
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    options = dict(features=["color"], image_size=32, views="none", cv_folds=3,
                   n_jobs=1)
    train_folder(texture_folder, tmp_path / "model", feature_cache=False, **options)
    assert scans and set(scans.values()) == {1}
    assert list((tmp_path / "tmp").iterdir()) == []  # its scans removed
    train_folder(texture_folder, tmp_path / "cached", cache_dir=tmp_path / "cache",
                 **options)
    part = json.loads((tmp_path / "model" / "train_part.json").read_text())
    assert part == json.loads((tmp_path / "cached" / "train_part.json").read_text())
