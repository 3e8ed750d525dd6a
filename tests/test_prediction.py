"""Feature computation for prediction: blocks side by side for single images."""

import threading

import numpy as np

from hybridclf import make_hybrid_pipeline
from hybridclf.features import ColorHistogram, HOGFeatures
from hybridclf.prediction import transform_features


class ThreadRecordingHOG(HOGFeatures):
    threads = set()

    def transform(self, X):
        type(self).threads.add(threading.current_thread().name)
        return super().transform(X)


def test_single_images_run_blocks_side_by_side_with_the_same_result(real_images):
    labels = np.array([0, 1] * 4)
    pipe = make_hybrid_pipeline(
        features=[("hog", ThreadRecordingHOG(n_jobs=2)),
                  ("color", ColorHistogram(n_jobs=2))],
    ).set_params(load="passthrough").fit(real_images, labels)
    union = pipe["features"]
    for n in (1, 2, 5):
        ThreadRecordingHOG.threads = set()
        np.testing.assert_allclose(transform_features(pipe, real_images[:n]),
                                   union.transform(real_images[:n]), rtol=1e-6)
        threads = ThreadRecordingHOG.threads
        side_by_side = any(t.startswith("hybridclf") for t in threads)
        # one or two images: the blocks run in pool threads; a batch: in turn
        assert side_by_side == (n <= 2)


def test_one_thread_keeps_blocks_in_turn(real_images):
    labels = np.array([0, 1] * 4)
    pipe = make_hybrid_pipeline(
        features=[("hog", ThreadRecordingHOG()), ("color", ColorHistogram())],
    ).set_params(load="passthrough").fit(real_images, labels)
    ThreadRecordingHOG.threads = set()
    transform_features(pipe, real_images[:1])
    assert ThreadRecordingHOG.threads == {threading.current_thread().name}
