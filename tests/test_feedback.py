"""The feedback store and the prediction log: files a training and an audit read."""

import json
import threading
import warnings

import cv2
import numpy as np
import pytest

from hybridclf.exceptions import SkippedFilesWarning
from hybridclf.feedback import FeedbackStore, PredictionLog, check_label
from hybridclf.io import load_image_folders


def _jpeg(seed):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)
    return cv2.imencode(".jpg", image)[1].tobytes()


def test_a_correction_lands_once_as_a_file_and_a_log_line(tmp_path):
    store = FeedbackStore(tmp_path / "feedback")
    entry = store.add(_jpeg(0), "waek_man", predicted_class="phra_sivali",
                      model_version="0.1.0+ab12")
    path = tmp_path / "feedback" / entry["file"]
    assert path.read_bytes() == _jpeg(0)
    assert path.parent.name == "waek_man" and path.suffix == ".jpg"
    assert path.stem == entry["sha256"]
    lines = (tmp_path / "feedback" / "feedback.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [entry]
    assert entry["predicted_class"] == "phra_sivali" and entry["new"]
    # the same photo again: one file, a second line saying it was known
    again = store.add(_jpeg(0), "waek_man")
    assert again["file"] == entry["file"] and not again["new"]
    assert len(list((tmp_path / "feedback").rglob("*.jpg"))) == 1
    assert [e["new"] for e in store.entries()] == [True, False]
    assert store.labels() == ["waek_man"]


def test_each_correction_says_how_many_photos_its_class_holds(tmp_path):
    # a new class is trained on from its second photo: the answer tells
    store = FeedbackStore(tmp_path / "feedback")
    assert store.add(_jpeg(0), "new_amulet")["class_photos"] == 1
    assert store.add(_jpeg(0), "new_amulet")["class_photos"] == 1  # stored once
    assert store.add(_jpeg(1), "new_amulet")["class_photos"] == 2
    assert store.add(_jpeg(2), "waek_man")["class_photos"] == 1


def test_the_same_photo_under_another_label_is_named_a_conflict(tmp_path):
    # two people disagreeing: training leaves every copy out, so say so
    store = FeedbackStore(tmp_path / "feedback")
    assert store.add(_jpeg(0), "waek_man")["also_under"] == []
    store.add(_jpeg(1), "phra_sivali")
    entry = store.add(_jpeg(0), "phra_sivali")
    assert entry["new"] and entry["also_under"] == ["waek_man"]
    assert store.entries()[-1]["also_under"] == ["waek_man"]
    assert store.add(_jpeg(0), "somdej")["also_under"] == ["phra_sivali",
                                                            "waek_man"]


def test_the_feedback_folder_is_a_dataset_with_the_new_class(tmp_path):
    store = FeedbackStore(tmp_path / "feedback")
    for seed in range(3):
        store.add(_jpeg(seed), "new_amulet")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the log beside the classes is no stray file
        paths, labels, _ = load_image_folders([tmp_path / "feedback"])
    assert labels == ["new_amulet"] * 3


def test_a_feedback_folder_inside_the_data_folder_is_no_class(tmp_path):
    # 'serve --feedback-dir photos/feedback' then 'train --data-dir photos'
    # trained every correction as the class 'feedback'
    data = tmp_path / "photos"
    (data / "waek_man").mkdir(parents=True)
    (data / "waek_man" / "a.jpg").write_bytes(_jpeg(10))
    store = FeedbackStore(data / "feedback")
    store.add(_jpeg(0), "new_amulet")
    store.add(_jpeg(1), "waek_man")
    with pytest.warns(SkippedFilesWarning, match="a feedback folder .*--data-dir"):
        paths, labels, _ = load_image_folders([data])
    assert labels == ["waek_man"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # given as a folder of its own: no warning
        paths, labels, _ = load_image_folders([data, data / "feedback"])
    assert sorted(labels) == ["new_amulet", "waek_man", "waek_man"]


def test_a_photo_over_the_pixel_budget_is_refused_unwritten(tmp_path):
    store = FeedbackStore(tmp_path, max_pixels=40 * 40 - 1)
    with pytest.raises(ValueError, match="not a readable image"):
        store.add(_jpeg(0), "waek_man")
    assert list(tmp_path.iterdir()) == []
    assert FeedbackStore(tmp_path, max_pixels=40 * 40).add(_jpeg(0), "waek_man")["new"]


@pytest.mark.parametrize("label", [
    "", " ", "../evil", "a/b", "a\\b", ".hidden", "..", "x" * 101, "tab\there",
    " padded", "c:d", None,
])
def test_unsafe_labels_are_refused_and_nothing_is_written(tmp_path, label):
    store = FeedbackStore(tmp_path)
    with pytest.raises(ValueError, match="label"):
        store.add(_jpeg(0), label)
    assert list(tmp_path.iterdir()) == []


def test_labels_a_file_system_refuses_are_refused_unwritten(tmp_path):
    # 100 Thai characters are 300 bytes: over a folder name's 255 (an OSError
    # and a 500 from the service before); the log's own name is no folder
    store = FeedbackStore(tmp_path)
    store.add(_jpeg(0), "waek_man")
    before = sorted(p.name for p in tmp_path.iterdir())
    for label in ("ก" * 100, "ก" * 86, "feedback.jsonl", "Feedback.JSONL"):
        with pytest.raises(ValueError, match="label"):
            store.add(_jpeg(1), label)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert store.add(_jpeg(1), "ก" * 85)["new"]  # 255 bytes


def test_the_unknown_answer_is_no_label(tmp_path):
    # a correction typed as "unknown" made a class of that name in the next
    # training, whose answers the service and the page took for rejections
    store = FeedbackStore(tmp_path)
    for label in ("unknown", "Unknown", "UNKNOWN"):
        with pytest.raises(ValueError, match="no known class"):
            store.add(_jpeg(0), label)
    assert list(tmp_path.iterdir()) == []
    assert store.add(_jpeg(0), "unknown_amulet")["new"]


def test_one_label_typed_two_ways_is_one_class_folder(tmp_path):
    store = FeedbackStore(tmp_path)
    composed, decomposed = "caf\u00e9", "cafe\u0301"  # look the same
    first = store.add(_jpeg(0), decomposed)
    second = store.add(_jpeg(1), composed)
    assert first["label"] == second["label"] == composed == check_label(decomposed)
    assert store.labels() == [composed]


def test_the_same_photo_sent_at_once_is_new_once(tmp_path, monkeypatch):
    # several requests checked that the file was missing, then all wrote it
    # and all logged "new": true (6 of 8 in a run)
    import hybridclf.feedback

    real, barrier = hybridclf.feedback.read_image, threading.Barrier(8)

    def read_image(*args, **kwargs):  # all 8 go on from here together
        image = real(*args, **kwargs)
        barrier.wait(10)
        return image

    monkeypatch.setattr(hybridclf.feedback, "read_image", read_image)
    for seed in range(5):
        store, news = FeedbackStore(tmp_path / str(seed)), []
        threads = [threading.Thread(target=lambda: news.append(
            store.add(_jpeg(seed), "waek_man")["new"])) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sorted(news) == [False] * 7 + [True]
        assert [e["new"] for e in store.entries()].count(True) == 1
        assert len(list((tmp_path / str(seed)).rglob("*"))) == 3  # no temp file


def test_plain_names_in_any_script_are_labels():
    for label in ("waek_man", "Somdej 2", "พระสมเด็จ", "phra-sivali (old)"):
        assert check_label(label) == label


def test_a_file_that_is_not_an_image_is_refused(tmp_path):
    store = FeedbackStore(tmp_path)
    for data in (b"hello world", _jpeg(0)[:100]):
        with pytest.raises(ValueError, match="not a readable image"):
            store.add(data, "waek_man")
    assert list(tmp_path.iterdir()) == []


def test_concurrent_writers_never_interleave_lines(tmp_path):
    log = PredictionLog(tmp_path / "logs" / "answers.jsonl")
    store = FeedbackStore(tmp_path / "feedback")

    def answer(worker):
        for i in range(50):
            log.write(f"class_{worker}", 0.5 + i / 100, quality={"blur": i},
                      model_version="v1", note="x" * 500)
        store.add(_jpeg(worker % 2), "waek_man")

    threads = [threading.Thread(target=answer, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = (tmp_path / "logs" / "answers.jsonl").read_text().splitlines()
    assert len(lines) == 400
    entries = [json.loads(line) for line in lines]  # every line whole
    assert {e["class"] for e in entries} == {f"class_{w}" for w in range(8)}
    assert set(entries[0]) == {"time", "class", "confidence", "quality",
                               "model_version", "note"}
    assert len(store.entries()) == 8
    assert len(list((tmp_path / "feedback" / "waek_man").iterdir())) == 2


@pytest.mark.parametrize("failing", ["photo", "log"])
def test_a_full_disk_leaves_nothing_half_written(tmp_path, monkeypatch, failing):
    import errno
    import os

    import hybridclf.feedback as feedback

    store = FeedbackStore(tmp_path / "feedback")
    store.add(_jpeg(1), "waek_man")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    log_bytes = store.log_path and open(store.log_path, "rb").read()
    real_write = os.write

    def full(fd, data):  # a short write, then ENOSPC: as a disk that fills up
        real_write(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    if failing == "log":
        monkeypatch.setattr(feedback.os, "write", full)
    else:
        class Full:
            def __init__(self, fd, mode):
                self.fh = real_fdopen(fd, mode)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.fh.close()

            def write(self, data):
                self.fh.write(data[: len(data) // 2])
                raise OSError(errno.ENOSPC, "No space left on device")

        real_fdopen = os.fdopen
        monkeypatch.setattr(feedback.os, "fdopen", Full)
    with pytest.raises(OSError, match="No space"):
        store.add(_jpeg(2), "phra_sivali")
    # no photo without its line, no temporary file, no half line
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert open(store.log_path, "rb").read() == log_bytes


def test_a_link_planted_in_the_feedback_folder_is_never_written_through(tmp_path):
    # a class folder (or feedback.jsonl) that was a symbolic link made
    # /feedback write the photo (or the log line) wherever the link pointed
    outside = tmp_path / "outside"
    outside.mkdir()
    folder = tmp_path / "feedback"
    store = FeedbackStore(folder)
    store.add(_jpeg(0), "waek_man")
    (folder / "planted").symlink_to(outside)
    (folder / "dangling").symlink_to(outside / "new_class")
    for label in ("planted", "dangling"):
        with pytest.raises(OSError, match=f"'{label}' in it is a symbolic link"):
            store.add(_jpeg(1), label)
    (folder / "feedback.jsonl").rename(tmp_path / "old.jsonl")
    (folder / "feedback.jsonl").symlink_to(outside / "log.jsonl")
    with pytest.raises(OSError, match="'feedback.jsonl' in it is a symbolic link"):
        store.add(_jpeg(2), "waek_man")
    assert list(outside.iterdir()) == []
    # nothing half-stored: the photo of the refused log line is gone too
    first = json.loads((tmp_path / "old.jsonl").read_text())["file"]
    assert [f"waek_man/{p.name}" for p in (folder / "waek_man").iterdir()] == [first]
