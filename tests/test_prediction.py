"""Prediction: blocks side by side for single images, the confidence check
scaled by the novelty, the photo quality from the decoded photo."""

import threading

import cv2
import numpy as np
import pytest

import hybridclf.io._read
from hybridclf import make_hybrid_pipeline
from hybridclf.features import ColorHistogram, HOGFeatures
from hybridclf.neighbours import EmbeddingIndex
from hybridclf.pipeline import iter_feature_blocks, set_n_jobs
from hybridclf.prediction import (
    LOW_CONFIDENCE,
    NOVEL,
    embedding_of,
    predict_files,
    predict_with_reasons,
    transform_blocks,
    transform_features,
)
from hybridclf.prediction._block_parts import longest_first


class ThreadRecordingHOG(HOGFeatures):
    threads = set()
    #: set: wait (a bounded time) for the colour block to start elsewhere
    wait_for_color = None

    def transform(self, X):
        type(self).threads.add(threading.current_thread().name)
        if type(self).wait_for_color is not None:
            type(self).wait_for_color.wait(10)
        return super().transform(X)


class ThreadRecordingColor(ColorHistogram):
    threads = set()
    started = None

    def transform(self, X):
        type(self).threads.add(threading.current_thread().name)
        if type(self).started is not None:
            type(self).started.set()
        return super().transform(X)


def test_single_images_run_blocks_side_by_side_with_the_same_result(real_images):
    labels = np.array([0, 1] * 4)
    pipe = make_hybrid_pipeline(
        features=[("hog", ThreadRecordingHOG(n_jobs=2)),
                  ("color", ThreadRecordingColor(n_jobs=2))],
    ).set_params(load="passthrough").fit(real_images, labels)
    union = pipe["features"]
    here = threading.current_thread().name
    try:
        for n in (1, 2, 5):
            ThreadRecordingHOG.threads, ThreadRecordingColor.threads = set(), set()
            started = threading.Event() if n <= 2 else None
            ThreadRecordingHOG.wait_for_color = ThreadRecordingColor.started = started
            np.testing.assert_array_equal(transform_features(pipe, real_images[:n]),
                                          union.transform(real_images[:n]))
            threads = ThreadRecordingHOG.threads | ThreadRecordingColor.threads
            if n <= 2:  # side by side: this thread and a pool thread
                assert started.is_set() and len(threads) == 2 and here in threads
            else:  # a batch: in turn, each spread over its own threads
                assert threads == {here}
    finally:
        ThreadRecordingHOG.wait_for_color = ThreadRecordingColor.started = None


def test_one_thread_keeps_blocks_in_turn(real_images):
    labels = np.array([0, 1] * 4)
    pipe = make_hybrid_pipeline(
        features=[("hog", ThreadRecordingHOG()), ("color", ColorHistogram())],
    ).set_params(load="passthrough").fit(real_images, labels)
    ThreadRecordingHOG.threads = set()
    transform_features(pipe, real_images[:1])
    assert ThreadRecordingHOG.threads == {threading.current_thread().name}


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_blocks_in_parts_equal_their_transform(real_images, n_jobs):
    # LBP's scales and the other blocks run as parts, scaled column by
    # column: the features must be those of each block's own transform
    labels = np.array([0, 1] * 4)
    pipe = make_hybrid_pipeline(features=["hog", "lbp", "color"]).set_params(
        load="passthrough").fit(real_images, labels)
    set_n_jobs(pipe, n_jobs)
    blocks = [block for _, block in iter_feature_blocks(pipe)]
    for images in (real_images[:1], real_images[3:5]):
        for got, block in zip(transform_blocks(blocks, images), blocks):
            assert got.dtype == np.float32
            np.testing.assert_array_equal(got, block.transform(images))


def test_parts_are_handed_out_longest_first():
    assert longest_first([1.0, 5.0, 2.0, 2.5, 0.5]) == [1, 3, 2, 0, 4]
    assert longest_first([1.0, 1.0, 2.0]) == [2, 0, 1]  # ties keep their order
    assert longest_first([]) == []


def _small_model(images):
    labels = np.array([0, 1] * 4)
    return make_hybrid_pipeline(features=["hog", "color"]).set_params(
        load__size=64).fit(images, labels)


def test_photos_close_to_training_photos_need_less_confidence(real_images):
    pipe = _small_model(list(real_images))
    index = EmbeddingIndex().fit(embedding_of(
        pipe, transform_features(pipe, list(real_images))))
    novelty = {"index": index, "threshold": 0.5, "k": 1}
    # even the largest threshold leaves copies of the training photos known:
    # their novelty is about 0, and so is the confidence they need
    out = predict_with_reasons(pipe, list(real_images), proba_threshold=1.0,
                               novelty=novelty)
    assert out["reasons"] == [""] * 8
    # without the novelty check the threshold applies as it is
    plain = predict_with_reasons(pipe, list(real_images), proba_threshold=1.0)
    assert plain["reasons"] == [LOW_CONFIDENCE] * 8
    # a photo unlike every training photo is unknown for that reason
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)
    stranger = predict_with_reasons(pipe, [noise], proba_threshold=1.0,
                                    novelty={**novelty, "threshold": 1e-3})
    assert stranger["reasons"] == [NOVEL]


def test_each_file_is_decoded_once_for_the_class_and_the_quality(
        real_images, tmp_path, monkeypatch):
    files = []
    for i, image in enumerate(real_images[:4]):
        files.append(str(tmp_path / f"{i}.png"))
        cv2.imwrite(files[-1], image[..., ::-1])
    files.append(str(tmp_path / "blurred.png"))
    cv2.imwrite(files[-1], cv2.GaussianBlur(real_images[0], (0, 0), 3)[..., ::-1])
    pipe = _small_model(list(real_images))
    reads = []
    read_file = hybridclf.io._read._read_file
    monkeypatch.setattr(hybridclf.io._read, "_read_file",
                        lambda path, *a, **k: reads.append(path) or read_file(
                            path, *a, **k))
    rows = list(predict_files(pipe, files, quality=True))
    assert sorted(reads) == sorted(files)
    assert [r["quality"]["issues"] for r in rows][-1] == ["blurry"]
    assert [r["label"] for r in rows] == list(pipe.predict(files))
