"""train_model: grouped split, cross-validation, search on cached features."""

import os

import numpy as np
import pytest

from hybridclf import load_image_folder, make_hybrid_pipeline
from hybridclf.features import ColorHistogram
from hybridclf.prediction import predict_open_set
from hybridclf.training import (
    SEARCH_GRIDS,
    duplicate_groups,
    grouped_train_test_split,
    read_groups_csv,
    train_model,
)


@pytest.fixture(scope="module")
def textures(texture_folder):
    paths, labels = load_image_folder(texture_folder)
    return np.asarray(paths, dtype=object), np.asarray(labels)


class CountingBlock(ColorHistogram):
    """A colour histogram that counts how often it is fitted and applied."""

    fits = 0
    transforms = 0

    def _fit(self, X):
        type(self).fits += 1

    def transform(self, X):
        type(self).transforms += 1
        return super().transform(X)


@pytest.mark.parametrize("seed", range(5))
def test_grouped_split_never_puts_a_group_on_both_sides(seed):
    rng = np.random.RandomState(seed)
    groups = rng.randint(0, 15, size=60)
    labels = np.asarray(["abc"[g % 3] for g in groups])
    train, test = grouped_train_test_split(labels, groups, test_size=0.25,
                                           random_state=seed)
    assert not set(groups[train]) & set(groups[test])
    assert sorted(np.concatenate([train, test])) == list(range(60))
    assert set(labels[test]) == {"a", "b", "c"}


def test_split_by_content_keeps_the_test_part_when_samples_are_added():
    rng = np.random.RandomState(0)
    labels = np.asarray(list("abc"))[rng.randint(0, 3, 300)]
    groups = rng.randint(0, 250, 300)
    keys = [f"photo {i}" for i in range(300)]
    _, before = grouped_train_test_split(labels[:280], groups[:280], keys=keys[:280])
    train, after = grouped_train_test_split(labels, groups, keys=keys)
    assert not set(groups[train]) & set(groups[after])
    for c in "abc":  # stratified
        assert abs(np.isin(np.flatnonzero(labels == c), after).mean() - 0.2) < 0.03
    # of the 280 samples, few change sides (StratifiedGroupKFold moves 76)
    moved = set(before) ^ set(after[after < 280])
    assert len(moved) <= 10
    # the order of the samples does not matter, only what they are
    order = rng.permutation(300)
    _, shuffled = grouped_train_test_split(labels[order], groups[order],
                                           keys=[keys[i] for i in order])
    assert sorted(order[shuffled]) == sorted(after)
    with pytest.raises(ValueError, match="got 2 keys for 300 samples"):
        grouped_train_test_split(labels, groups, keys=keys[:2])


@pytest.mark.parametrize("keyed", [True, False])
def test_the_groups_of_train_only_samples_never_join_the_test_part(keyed):
    # corrections from a feedback folder: the retrained model must learn them
    rng = np.random.RandomState(0)
    labels = np.asarray(list("abc"))[rng.randint(0, 3, 300)]
    groups = rng.randint(0, 250, 300)
    keys = [f"photo {i}" for i in range(300)] if keyed else None
    _, drawn = grouped_train_test_split(labels, groups, keys=keys)
    train_only = np.isin(np.arange(300), drawn[:20])  # 20 the draw held out
    train, test = grouped_train_test_split(labels, groups, keys=keys,
                                           train_only=train_only)
    assert not set(groups[train_only]) & set(groups[test])
    assert not set(groups[train]) & set(groups[test])
    assert sorted(np.concatenate([train, test])) == list(range(300))
    assert set(labels[test]) == {"a", "b", "c"}


def test_fewer_folds_when_no_class_has_enough_images(caplog):
    """Three classes of 3 or 4 ungrouped images and 5 folds wanted:
    scikit-learn's "n_splits=5 cannot be greater than the number of members
    in each class" ended ``hybridclf train``; now 4 folds, and a warning says
    why."""
    from hybridclf.training._split import cv_splits

    labels = np.repeat(["a", "b", "c"], [3, 4, 4])
    with caplog.at_level("WARNING"):
        splits = cv_splits(labels, np.arange(len(labels)), cv_folds=5)
    assert len(splits) == 4
    assert "Using 4 folds instead of 5 ('cv_folds'): no class has more than 4" \
        in caplog.text
    assert sorted(np.concatenate([test for _, test in splits])) == list(range(11))
    # a class of one image: named, with a fix that works at test_size=0 too,
    # and the option too, for 'hybridclf train' (which has no 'test_size')
    labels = np.array(["a", "a", "b", "b", "c"])
    with pytest.raises(ValueError, match="'c' has 1. Add images to that class or "
                       r"leave it out.*'test_size' parameter \(--test-size on "
                       r"the command line\)"):
        cv_splits(labels, np.arange(5), cv_folds=2)


def test_a_class_of_one_photo_and_its_copies_is_named(caplog):
    """A class of one photo's copies (one group) trained and cross-validated
    without a word, its images all errors in the fold that tests it (30
    images of an augmented messy amulet folder). The warning names it."""
    from hybridclf.training._split import cv_splits

    labels = np.repeat(["a", "b", "copies"], [6, 6, 4])
    groups = np.concatenate([np.arange(12), [99] * 4])
    with caplog.at_level("WARNING"):
        cv_splits(labels, groups, cv_folds=3)
    assert "Class(es) 'copies' hold one photo and its copies" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        cv_splits(labels, np.arange(16), cv_folds=3)
    assert "one photo and its copies" not in caplog.text


def test_a_class_in_fewer_groups_than_folds_is_named(caplog):
    """A class of 3 training photos in 5 folds: 2 folds test none of it, and
    its cross-validation scores rest on 3 photos; nothing said so."""
    from hybridclf.training._split import cv_splits

    labels = np.repeat(["a", "b", "c"], [10, 10, 6])
    groups = np.concatenate([np.arange(20), [20, 20, 21, 21, 22, 22]])
    with caplog.at_level("WARNING"):
        splits = cv_splits(labels, groups, cv_folds=5)
    tested = [set(labels[test]) for _, test in splits]
    assert sum("c" not in t for t in tested) == 2
    assert ("Fewer groups of images than the 5 folds in the training part for "
            "'c' (3): some folds test none of it") in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        cv_splits(labels, groups, cv_folds=3)
    assert "Fewer groups" not in caplog.text


def test_the_warning_for_a_group_across_classes_can_be_filtered_by_class():
    """It was a plain UserWarning: a dataset that keeps such a group on
    purpose (one object filed under two names) could silence it only by its
    message, or every UserWarning with it."""
    import warnings

    from hybridclf.exceptions import GroupsAcrossClassesWarning
    from hybridclf.training._groups import groups_across_classes

    assert issubclass(GroupsAcrossClassesWarning, UserWarning)
    args = [0, 0, 1], ["a", "b", "b"], ["a/1.jpg", "b/1.jpg", "b/2.jpg"]
    with pytest.warns(GroupsAcrossClassesWarning, match="a/1.jpg \\(a\\)"):
        assert groups_across_classes(*args) == [
            {"files": ["a/1.jpg", "b/1.jpg"], "classes": ["a", "b"]}]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", category=GroupsAcrossClassesWarning)
        groups_across_classes(*args)
        warnings.warn("another warning", UserWarning)
    assert [str(w.message) for w in caught] == ["another warning"]


def test_bad_test_size_is_explained():
    with pytest.raises(ValueError, match="'test_size' parameter.*Got 0.9"):
        grouped_train_test_split([0, 1], [0, 1], test_size=0.9)


def test_groups_from_csv(textures, tmp_path):
    paths, _ = textures
    csv = tmp_path / "groups.csv"
    csv.write_text("file,group\n" + f"{paths[0]},g\n{paths[1]},g\n")
    groups = read_groups_csv(csv, paths)
    assert groups[0] == groups[1]
    assert len(np.unique(groups)) == len(paths) - 1
    # saved by a spreadsheet: a byte-order mark, and names in UTF-8 whatever
    # the locale ("The groups CSV must have the columns 'file' and 'group'.
    # Got the columns ['\ufefffile', 'group']")
    csv.write_bytes(("file,group\n" + f"{paths[0]},g\n{paths[1]},g\n").encode(
        "utf-8-sig"))
    assert (read_groups_csv(csv, paths) == groups).all()
    (tmp_path / "bad.csv").write_text("name,cluster\na,1\n")
    with pytest.raises(ValueError, match="columns 'file' and 'group'"):
        read_groups_csv(tmp_path / "bad.csv", paths)


def test_groups_csv_names_relative_to_where_it_was_written(textures, tmp_path,
                                                          monkeypatch):
    """``hybridclf inspect --output-dir out`` names the files as it was given
    them (relative to the folder it ran in); the training, which passes its
    data folder as ``root``, still finds them there."""
    import shutil

    paths, _ = textures
    data = tmp_path / "out" / "train"
    (data / "a").mkdir(parents=True)
    copies = [shutil.copy(p, data / "a" / f"{i}.png") for i, p in enumerate(paths[:3])]
    csv = tmp_path / "out" / "groups.csv"
    csv.write_text("file,group\nout/train/a/0.png,g\nout/train/a/1.png,g\n"
                   "out/train/a/2.png,h\n")
    monkeypatch.chdir(tmp_path)
    groups = read_groups_csv(csv, [str(c) for c in copies], root=data)
    assert groups[0] == groups[1] != groups[2]


def test_groups_csv_read_from_another_folder(textures, tmp_path, monkeypatch):
    """``hybridclf inspect --data-dir "my photos"`` run in ``project/`` names
    ``my photos/a/0.png``; a training run from ``tmp_path`` with
    ``project/my photos/`` (or a link to it) as its data folder still reads
    the groups."""
    import shutil

    paths, _ = textures
    data = tmp_path / "project" / "my photos"
    (data / "a").mkdir(parents=True)
    for i, p in enumerate(paths[:3]):
        shutil.copy(p, data / "a" / f"{i}.png")
    (tmp_path / "link").symlink_to(data)
    csv = tmp_path / "project" / "inspection" / "duplicate_groups.csv"
    csv.parent.mkdir()
    csv.write_text("file,group\nmy photos/a/0.png,0\nmy photos/a/1.png,0\n"
                   "my photos/a/2.png,1\nheld_out/a/0.png,1\n")
    monkeypatch.chdir(tmp_path)
    for root in ["project/my photos/", "link"]:
        names = [os.path.join(root, "a", f"{i}.png") for i in range(3)]
        groups = read_groups_csv(csv, names, root=[root])
        assert groups[0] == groups[1] != groups[2]


def test_a_file_in_two_groups_of_a_groups_csv_is_refused(textures, tmp_path):
    # a near miss merged by hand by adding a row instead of editing the
    # file's own: the last row silently won and the first group lost it
    paths, _ = textures
    csv = tmp_path / "groups.csv"
    csv.write_text(f"file,group\n{paths[0]},0\n{paths[1]},1\n{paths[0]},1\n")
    with pytest.raises(ValueError) as error:
        read_groups_csv(csv, paths)
    message = str(error.value)
    assert str(csv) in message and "two groups" in message
    assert "'0' (line 2)" in message and "'1' (line 4)" in message
    # named twice in one group: read
    csv.write_text(f"file,group\n{paths[0]},1\n{paths[1]},1\n{paths[0]},1\n")
    groups = read_groups_csv(csv, paths)
    assert groups[0] == groups[1]


def test_a_file_whose_group_is_cleared_gets_a_group_of_its_own(textures,
                                                               tmp_path):
    # two files taken out of their groups by clearing the cell: both got the
    # group '' and so one group together (and a short row got 'None')
    paths, _ = textures
    csv = tmp_path / "groups.csv"
    csv.write_text(f"file,group\n{paths[0]},\n{paths[1]},\n{paths[2]},  \n"
                   f"{paths[3]}\n{paths[4]}\n{paths[5]},g\n{paths[6]},g\n")
    groups = read_groups_csv(csv, paths[:7])
    assert len(set(groups[:5])) == 5 and groups[5] == groups[6] != groups[0]


def test_a_cleared_file_and_one_the_csv_does_not_name_stay_apart(textures,
                                                                tmp_path):
    # the group of a cleared cell was keyed by its CSV line, that of an image
    # the CSV does not name by its index: line 2 and image 2 shared a group
    paths, _ = textures
    csv = tmp_path / "groups.csv"
    csv.write_text(f"file,group\n{paths[0]},\n")
    groups = read_groups_csv(csv, paths[:3])
    assert len(set(groups.tolist())) == 3


def test_a_groups_csv_of_another_folder_is_refused(textures, tmp_path):
    # inspect's CSV of one folder given to train on another: every photo
    # got its own group, with only a warning, and near-duplicates could be
    # trained on and tested on
    paths, _ = textures
    csv = tmp_path / "groups.csv"
    csv.write_text("file,group\nother/a/0.png,0\nother/a/1.png,0\n")
    with pytest.raises(ValueError) as error:
        read_groups_csv(csv, paths)
    message = str(error.value)
    assert f"None of the {len(paths)} images is in the groups CSV" in message
    assert "other/a/0.png" in message and str(csv) in message


def test_a_groups_csv_written_before_a_photo_moved_names_both(textures, tmp_path,
                                                             caplog):
    # a wrongly labelled photo moved to its class folder after inspect wrote
    # the CSV: it lost its group with no name given, and the warning advised
    # to give the files as absolute paths
    import shutil

    paths, _ = textures
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
    photos = [shutil.copy(p, tmp_path / "a" / f"{i}.png")
              for i, p in enumerate(paths[:3])]
    csv = tmp_path / "groups.csv"
    csv.write_text("file,group\na/0.png,0\na/1.png,0\na/2.png,1\n")
    moved = shutil.move(photos[1], tmp_path / "b" / "1.png")
    with caplog.at_level("WARNING"):
        groups = read_groups_csv(csv, [photos[0], moved, photos[2]])
    assert len(set(groups)) == 3
    assert f"1 of 3 images are not in {csv}" in caplog.text
    assert str(moved) in caplog.text and "a/1.png" in caplog.text
    assert "Give a moved photo its new path" in caplog.text


@pytest.mark.parametrize("code_page, name", [("cp1252", "café"),
                                              ("cp874", "พระสมเด็จ")])
def test_a_groups_csv_in_a_legacy_code_page_is_refused(textures, tmp_path,
                                                       code_page, name):
    # saved as Excel's plain "CSV" on Windows: the names were decoded with
    # surrogate escapes, matched no photo, and each photo silently got its own
    # group (only a warning that 2 of 2 images are not in the CSV)
    import shutil

    paths, _ = textures
    photos = [shutil.copy(p, tmp_path / f"{name}{i}.png")
              for i, p in enumerate(paths[:2])]
    csv = tmp_path / "groups.csv"
    csv.write_bytes(f"file,group\n{name}0.png,g\n{name}1.png,g\n".encode(code_page))
    with pytest.raises(ValueError) as error:
        read_groups_csv(csv, photos)
    message = str(error.value)
    assert str(csv) in message and "not UTF-8" in message
    assert "line 2" in message and "'CSV UTF-8'" in message
    # the same names saved as "CSV UTF-8" (with its byte-order mark) group them
    csv.write_bytes(f"file,group\n{name}0.png,g\n{name}1.png,g\n".encode(
        "utf-8-sig"))
    groups = read_groups_csv(csv, photos)
    assert groups[0] == groups[1]


def test_a_groups_csv_naming_files_whose_names_are_not_utf8_is_read(textures,
                                                                   tmp_path):
    # an old Latin-1 file name on Linux, named by the same bytes in the CSV
    # (as hybridclf inspect writes it): the bytes are the file's, not a code
    # page's, and the CSV is read
    import shutil

    paths, _ = textures
    folder = os.fsencode(tmp_path)
    photos = [os.fsdecode(folder + b"/caf\xe9%d.png" % i) for i in range(2)]
    for source, photo in zip(paths, photos):
        shutil.copy(source, photo)
    csv = tmp_path / "groups.csv"
    csv.write_bytes(b"file,group\ncaf\xe90.png,g\ncaf\xe91.png,g\n")
    groups = read_groups_csv(csv, photos)
    assert groups[0] == groups[1]


def _augmented_folder(textures, tmp_path):
    """A folder ``augment`` could have written: two photos, one copy, manifest."""
    import shutil

    paths, _ = textures
    data = tmp_path / "balanced"
    (data / "a").mkdir(parents=True)
    for name, source in [("0.png", 0), ("0_aug1.png", 9), ("1.png", 18)]:
        shutil.copy(paths[source], data / "a" / name)
    (data / "manifest.csv").write_text(
        "file,label,kind,source,similarity,techniques\n"
        "a/0.png,a,original,a/0.png,,\na/0_aug1.png,a,generated,a/0.png,0.8,flip\n"
        "a/1.png,a,original,a/1.png,,\n")
    return data, [str(data / "a" / n) for n in ("0.png", "0_aug1.png", "1.png")]


@pytest.mark.parametrize("code_page, name", [("cp1252", "café"),
                                              ("cp874", "พระสมเด็จ")])
def test_augment_origins_refuses_a_manifest_in_a_legacy_code_page(
        textures, tmp_path, code_page, name):
    # saved from Excel as plain "CSV": no copy found its source, and each
    # copy silently counted as a photo of its own (it may then be tested on
    # beside its source in the training)
    from hybridclf.training import augment_origins

    data, names = _augmented_folder(textures, tmp_path)
    os.rename(data / "a", data / name)
    names = [n.replace(f"{os.sep}a{os.sep}", f"{os.sep}{name}{os.sep}")
             for n in names]
    text = (data / "manifest.csv").read_text().replace("a/", f"{name}/")
    (data / "manifest.csv").write_bytes(text.encode(code_page))
    with pytest.raises(ValueError, match=r"manifest\.csv' is not UTF-8 \(line 2"):
        augment_origins(names, str(data))
    (data / "manifest.csv").write_bytes(text.encode("utf-8-sig"))
    assert augment_origins(names, str(data)).tolist() == [0, 0, 2]


def test_an_augmented_folder_groups_copies_with_their_source(textures, tmp_path):
    """``hybridclf train --data-dir balanced/`` on a folder that ``hybridclf
    augment`` wrote: a copy the duplicate search does not recognise (here a
    photo of another texture) shares the group of its source, from the
    folder's manifest.csv; before, 13 of 29 copies on amulet photos had a
    group of their own, beside their source in the folds."""
    from hybridclf.training._training_pipeline import find_training_groups

    data, names = _augmented_folder(textures, tmp_path)
    groups, source = find_training_groups(names, root=[str(data)], n_jobs=1)
    assert groups[0] == groups[1] != groups[2]
    assert source == f"found on the fly, joined with {data / 'manifest.csv'}"


def test_an_augmented_folder_keeps_its_copies_grouped_with_a_groups_csv(
        textures, tmp_path):
    """``hybridclf train --data-dir balanced/ --groups duplicate_groups.csv``,
    the CSV that ``hybridclf inspect --data-dir balanced/`` wrote (as its
    advice says): a copy the inspector did not recognise still shares the
    group of its source. Before, the manifest was read only without
    ``--groups``: 32 of 82 copies of a messy amulet folder had a group of
    their own, beside their source in the folds."""
    from hybridclf.training._training_pipeline import find_training_groups

    data, names = _augmented_folder(textures, tmp_path)
    groups_csv = tmp_path / "report" / "duplicate_groups.csv"
    groups_csv.parent.mkdir()
    groups_csv.write_text("file,group\n" + "".join(
        f"{name},{i}\n" for i, name in enumerate(names)))
    groups, source = find_training_groups(names, groups_csv=str(groups_csv),
                                          root=[str(data)])
    assert groups[0] == groups[1] != groups[2]
    assert source == f"{groups_csv}, joined with {data / 'manifest.csv'}"
    # the manifest itself as the groups CSV is read once
    groups, source = find_training_groups(
        names, groups_csv=str(data / "manifest.csv"), root=[str(data)])
    assert groups[0] == groups[1] != groups[2]
    assert source == str(data / "manifest.csv")


def test_duplicate_groups_join_copies(tmp_path):
    import shutil

    import skimage.data
    from PIL import Image

    Image.fromarray(skimage.data.astronaut()[:64, :64]).save(tmp_path / "a.png")
    Image.fromarray(skimage.data.coffee()[:64, :64]).save(tmp_path / "b.png")
    shutil.copy(tmp_path / "a.png", tmp_path / "a_copy.png")
    files = [str(tmp_path / n) for n in ("a.png", "b.png", "a_copy.png")]
    groups = duplicate_groups(files)
    assert groups[0] == groups[2] != groups[1]


def test_train_model_grouped_and_scored(textures):
    paths, labels = textures
    groups = np.arange(len(paths)) // 2  # pairs of neighbouring crops
    pipe = make_hybrid_pipeline(features=["hog", "color"]).set_params(load__size=64)
    result = train_model(pipe, paths, labels, groups=groups, test_size=0.25,
                         cv_folds=3)
    train, test = result.train_indices, result.test_indices
    assert not set(groups[train]) & set(groups[test])
    assert len(result.cv_scores["accuracy"]["folds"]) == 3
    assert result.test_metrics["accuracy"] >= 0.5
    assert result.classes == ["brick", "grass", "gravel"]
    assert result.oof_proba.shape == (len(train), 3)
    assert 0 < result.open_set["proba_threshold"] < 1
    assert set(result.open_set["ood_thresholds"]) == {"hog", "color"}
    assert result.pipeline.predict(paths[:2]).shape == (2,)
    meta = result.metadata()
    assert meta["training"]["n_test"] == len(test)
    # likely wrong labels: training images only, indices into the given paths
    flagged = result.label_issues["index"]
    assert set(flagged) <= set(train)
    assert (result.label_issues["given_label"] == labels[flagged]).all()
    assert (result.label_issues["suggested_label"] != labels[flagged]).all()
    assert meta["label_issues"]["n_flagged"] == len(flagged)
    assert meta["label_issues"]["n_checked"] == len(train)
    assert "not_checked" not in meta["label_issues"]


def test_a_class_no_fold_could_learn_is_not_flagged_as_wrong_labels(
        textures, tmp_path):
    """A class made of one photo and its copies (one group) is, in its fold,
    missing from the training part: its images get no probability, and
    before, every one of them was listed as a likely wrong label (30 of the
    58 flagged images of a messy amulet folder after ``hybridclf augment``).
    It is now left out of the check, and named."""
    import cv2
    import skimage.data

    paths, labels = textures
    photo = skimage.data.camera()[100:196, 200:296]
    copies = []
    for i in range(6):
        copies.append(str(tmp_path / f"copy_{i}.png"))
        cv2.imwrite(copies[-1], np.clip(photo.astype(int) + 3 * i, 0, 255)
                    .astype(np.uint8))
    paths = np.concatenate([paths, np.asarray(copies, dtype=object)])
    labels = np.concatenate([labels, ["copies"] * 6])
    groups = np.concatenate([np.arange(len(labels) - 6), [999] * 6])
    pipe = make_hybrid_pipeline(features=["hog", "color"]).set_params(load__size=64)
    result = train_model(pipe, paths, labels, groups=groups, test_size=0,
                         cv_folds=3)
    flagged = result.label_issues["index"]
    assert "copies" not in set(labels[flagged])
    meta = result.metadata()["label_issues"]
    assert meta["not_checked"] == ["copies"]
    assert meta["n_checked"] == len(labels) - 6


def test_a_fold_without_a_class_scores_without_a_library_warning():
    """A fold with no test image of a class the model predicts (a class of
    few groups): ``hybridclf train`` printed scikit-learn's "y_pred contains
    classes not in y_true" with its file path, once per fold."""
    import warnings

    from hybridclf.training._result import scores

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        found = scores(np.array(["a", "a", "b"]), np.array(["a", "c", "b"]))
    assert found["balanced_accuracy"] == 0.75


def test_train_model_takes_a_list_of_equal_sized_image_arrays(textures):
    # found by the API audit: train_model(pipe, list_of_arrays, ...) turned a
    # list of same-sized images into one 4-D object array and failed with
    # "images must be numeric arrays; got dtype object"
    from hybridclf import ImageLoader

    paths, labels = textures
    images = list(ImageLoader(size=32).transform(paths))
    pipe = make_hybrid_pipeline(features=["color"]).set_params(load__size=32)
    result = train_model(pipe, images, labels, test_size=0.25, cv_folds=2)
    assert result.pipeline.predict(images[:2]).shape == (2,)


@pytest.mark.parametrize("search", ["grid", "halving"])
def test_search_reuses_cached_features(textures, search):
    paths, labels = textures
    CountingBlock.fits = CountingBlock.transforms = 0
    pipe = make_hybrid_pipeline(features=[("count", CountingBlock())],
                                classifier="logistic").set_params(load__size=32)
    grid = {"clf__C": [0.01, 0.1, 1.0, 10.0, 100.0, 1000.0]}
    result = train_model(pipe, paths, labels, test_size=0.25, cv_folds=3,
                         search=search, param_grid=grid)
    # 3 folds + the final fit, whatever the number of candidates
    assert CountingBlock.fits == 4
    # the test part of each fold and the held-out test part, once each (fitting
    # computes the training features itself)
    assert CountingBlock.transforms == 3 + 1
    assert result.best_params["clf__C"] in grid["clf__C"]
    assert result.search["n_candidates"] == 6
    if search == "grid":
        assert result.search["n_fits"] == 6 * 3


def test_documented_grids_have_about_20_candidates():
    from sklearn.model_selection import ParameterGrid

    assert len(ParameterGrid(SEARCH_GRIDS["logistic"])) == 20
    for name, grid in SEARCH_GRIDS.items():
        pipe = make_hybrid_pipeline(classifier=name)
        assert set(grid) <= set(pipe.get_params()), name


def test_bad_search_is_explained(textures):
    paths, labels = textures
    with pytest.raises(ValueError, match="'search' parameter.*'none', 'grid'"):
        train_model(make_hybrid_pipeline(), paths, labels, search="random")


def test_unknown_for_a_clearly_foreign_image(textures):
    paths, labels = textures
    pipe = make_hybrid_pipeline(features=["hog", "color"]).set_params(load__size=64)
    result = train_model(pipe, paths, labels, test_size=0.25, cv_folds=3)
    import skimage.data

    # a blank page and a colour photo of a face: unlike grey textures
    blank = np.full((1, 64, 64, 3), 255, np.uint8)
    face = skimage.data.astronaut()[None, 40:200:2, 160:320:2][:, :64, :64]
    foreign = np.concatenate([blank, face])
    found, _, scores = predict_open_set(
        result.pipeline, list(foreign), **{
            k: result.open_set[k] for k in ("proba_threshold", "ood_thresholds")})
    assert list(found) == ["unknown", "unknown"]
    assert (scores > 1).all()
    known, _, _ = predict_open_set(
        result.pipeline, paths[result.train_indices], **{
            k: result.open_set[k] for k in ("proba_threshold", "ood_thresholds")})
    assert np.mean(known == "unknown") < 0.2


@pytest.mark.parametrize("classifier, params", [
    ("svc", {}),
    ("random_forest", {"clf__n_estimators": 10}),
    ("hist_gradient_boosting", {"clf__max_iter": 10}),
    ("soft_voting", {"clf__extra_trees__n_estimators": 10,
                     "clf__hist_gradient_boosting__max_iter": 10}),
    ("stacking", {"clf__extra_trees__n_estimators": 10,
                  "clf__hist_gradient_boosting__max_iter": 10}),
])
def test_ensembles_give_probabilities_and_load_safely(textures, classifier, params,
                                                      tmp_path):
    from hybridclf import load_model, save_model

    paths, labels = textures
    pipe = make_hybrid_pipeline(features=["color"], classifier=classifier)
    pipe.set_params(load__size=32, **params).fit(paths, labels)
    proba = pipe.predict_proba(paths[:4])
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
    # every type in these models is on hybridclf's trusted list
    save_model(pipe, tmp_path)
    np.testing.assert_allclose(load_model(tmp_path).predict_proba(paths[:4]), proba)


def test_train_model_uses_shared_features_and_predicts_like_a_refit(textures):
    paths, labels = textures
    pipe = make_hybrid_pipeline(features=["hog", "color"]).set_params(load__size=64)
    result = train_model(pipe, paths, labels, test_size=0.25, cv_folds=3)
    assert "features_shared" in result.timings
    train = result.train_indices
    refit = make_hybrid_pipeline(features=["hog", "color"]).set_params(
        load__size=64).fit(paths[train], labels[train])
    np.testing.assert_allclose(result.pipeline.predict_proba(paths),
                               refit.predict_proba(paths), atol=1e-6)


def test_augment_origins_reads_each_copys_source_from_the_manifest(textures,
                                                                   tmp_path):
    from hybridclf.training import augment_origins

    data, names = _augmented_folder(textures, tmp_path)
    assert augment_origins(names, [str(data)]).tolist() == [0, 0, 2]
    assert augment_origins(names, None).tolist() == [0, 1, 2]


def test_copies_are_trained_on_but_not_scored_or_flagged_as_photos(textures):
    """A folder that ``hybridclf augment`` wrote holds copies of its photos.
    Before, the test part scored each copy of a test photo as a photo of its
    own (amulet6 augmented to 40 per class: 51 'test images', 18 of them
    copies) and label_issues.csv flagged copies (2 of 4 flags). Now a copy
    joins its source's group, the test metrics count photos and only photos
    are checked for wrong labels; byte-identical files are one photo too."""
    paths, labels = textures
    labels = labels.copy()
    grass = np.flatnonzero(labels == "grass")[:3]
    labels[grass] = "brick"  # one wrong photo, and its two "copies"
    origins = np.arange(len(labels))
    origins[grass[1:]] = grass[0]
    paths = np.append(paths, paths[0])  # the same file twice
    labels = np.append(labels, labels[0])
    origins = np.append(origins, len(origins))
    copies = np.zeros(len(labels), bool)
    copies[grass[1:]] = True
    copies[-1] = True
    pipe = make_hybrid_pipeline(features=["color"], classifier="logistic",
                                sampler=None).set_params(load__size=32)
    # the wrong photo is flagged once, not once per copy
    result = train_model(pipe, paths, labels, origins=origins, test_size=0,
                         cv_folds=3)
    flagged = result.label_issues["index"]
    assert grass[0] in flagged and not copies[flagged].any()
    assert result.label_issues["n_checked"] == int((~copies).sum())
    # a copy is held out with its photo, and not scored as another photo
    result = train_model(pipe, paths, labels, origins=origins, test_size=0.3,
                         cv_folds=3)
    groups = result.groups
    assert groups[grass[0]] == groups[grass[1]] == groups[grass[2]]
    assert groups[0] == groups[-1]
    in_test = np.isin(np.arange(len(labels)), result.test_indices)
    assert (in_test & copies).any()
    assert result.test_part["n_images"] == int((in_test & ~copies).sum())
    assert result.test_part["n_copies"] == int((in_test & copies).sum())
    with pytest.raises(ValueError, match="'origins' parameter of train_model"):
        train_model(pipe, paths, labels, origins=[0, 1])
