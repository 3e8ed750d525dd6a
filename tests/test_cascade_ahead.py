"""The CNN's first layers run ahead of a cascade's cheap stage: same answers."""

import os
import pickle
import subprocess
import sys
import threading
from concurrent.futures import Future

import numpy as np
import pytest

from hybridclf import load_image_folder, make_hybrid_pipeline
from hybridclf.cascade import _ahead
from hybridclf.features import CNNFeatures
from hybridclf.features._cnn_onnx import SplitSessions, stoppable_options
from hybridclf.features._onnx_split import split_graph
from hybridclf.pipeline import (
    get_block_extractor,
    get_classifier,
    iter_feature_blocks,
    set_n_jobs,
)
from hybridclf.prediction import transform_features
from hybridclf.utils._parallel import start_idle

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def cascade(texture_folder):
    """A cascade of HOG and colour first, then a small CNN (random weights)."""
    paths, labels = load_image_folder(texture_folder)
    paths, labels = np.asarray(paths, dtype=object), np.asarray(labels)
    pipe = make_hybrid_pipeline(features=["hog", "color", "cnn"], cascade=True)
    pipe.set_params(load__size=64, cheap_features=("hog", "color"), cv=3,
                    features__cnn__extract__weights=None,
                    features__cnn__extract__image_size=64)
    groups = np.arange(len(labels)) // 2
    pipe.fit(paths[::2], labels[::2], groups=groups[::2])
    set_n_jobs(pipe, 2)  # two threads, as the service's on two cores
    return pipe, paths[1::2]


@pytest.fixture(scope="module")
def small_cnn(real_images):
    """A fitted small CNN (random weights); each test gets a fresh copy."""
    return CNNFeatures(weights=None, image_size=32, device="cpu").fit(real_images)


def _cnn(pipe):
    return next(get_block_extractor(block) for name, block in iter_feature_blocks(pipe)
                if name == "cnn")


def _stages(pipe, photos, *, ahead, full=None):
    kept, _ahead._START_AHEAD = _ahead._START_AHEAD, ahead
    try:
        return [pipe.predict_stages([photo], full=full) for photo in photos]
    finally:
        _ahead._START_AHEAD = kept


@pytest.mark.parametrize("fraction", [0.05, 0.15, 0.6])
def test_the_two_parts_of_the_graph_give_the_whole_graphs_features(
        small_cnn, real_images, fraction, monkeypatch):
    cnn = pickle.loads(pickle.dumps(small_cnn))
    head, tail, cut = split_graph(cnn.onnx_model_, fraction)
    assert cut and len(head) < len(cnn.onnx_model_) and len(tail) > len(head) / 10
    expected = cnn.transform(real_images)  # the whole graph
    monkeypatch.setattr(SplitSessions, "FRACTION", fraction)
    start, rest, _ = cnn.split_transform(real_images[:2])
    first = start(stoppable_options()).result()
    np.testing.assert_array_equal(rest(first), expected[:2])
    np.testing.assert_array_equal(rest(first[1:]), expected[1:2])
    # from now on transform runs the two parts: the same features
    np.testing.assert_array_equal(cnn.transform(real_images), expected)


def test_a_stopped_first_part_gives_nothing(small_cnn, real_images):
    start, _, _ = pickle.loads(pickle.dumps(small_cnn)).split_transform(
        real_images[:1])
    options = stoppable_options()
    options.terminate = True
    assert start(options).result(timeout=10) is None
    assert start(stoppable_options()).result(timeout=10) is not None


@pytest.mark.skipif(not sys.platform.startswith("linux"),
                    reason="a thread's nice is set on Linux only")
def test_the_first_part_runs_on_a_thread_at_the_lowest_priority(
        small_cnn, real_images):
    cnn = pickle.loads(pickle.dumps(small_cnn))
    start, _, split = cnn.split_transform(real_images[:1])
    start(stoppable_options()).result(timeout=10)
    threads = split._idle_threads
    assert threads and split.first_cpu_seconds() > 0
    for tid in threads:
        with open(f"/proc/self/task/{tid}/stat") as fh:
            assert int(fh.read().rsplit(")", 1)[1].split()[16]) == 19  # nice


def test_the_cnn_started_ahead_changes_no_answer(cascade):
    pipe, photos = cascade
    with_ahead = _stages(pipe, photos, ahead=True)
    without = _stages(pipe, photos, ahead=False)
    early = np.concatenate([stage[2] for stage in without])
    assert early.any() and not early.all()  # both kinds of photo
    for a, b in zip(with_ahead, without):
        np.testing.assert_array_equal(a[0], b[0])  # NaN where a block did not run
        np.testing.assert_array_equal(a[1], b[1])
        np.testing.assert_array_equal(a[2], b[2])


def test_a_hard_photos_answer_is_the_full_models(cascade):
    pipe, photos = cascade
    for photo, (features, proba, early) in zip(
            photos[:3], _stages(pipe, photos[:3], ahead=True, full=[True])):
        expected = transform_features(pipe, [photo])
        np.testing.assert_array_equal(features, expected)
        np.testing.assert_array_equal(
            proba, get_classifier(pipe).predict_proba(expected))
        assert not early.any()


def test_a_photo_answered_early_stops_the_cnn_started_ahead(cascade, monkeypatch):
    pipe, photos = cascade
    calls = []
    for method in ("stop", "result"):
        original = getattr(_ahead._Ahead, method)

        def recorded(self, *args, method=method, original=original):
            calls.append(method)
            return original(self, *args)

        monkeypatch.setattr(_ahead._Ahead, method, recorded)
    monkeypatch.setattr(pipe, "threshold_", 0.0)
    monkeypatch.setattr(pipe, "ood_limits_", None)  # every photo answered early
    _, _, early = pipe.predict_stages(photos[:1])
    assert early.all() and "stop" in calls and "result" not in calls


def test_first_layers_not_done_in_time_start_over(cascade, monkeypatch):
    pipe, photos = cascade
    expected = _stages(pipe, photos, ahead=False)
    cnn = _cnn(pipe)
    split = type(cnn).split_transform

    def slow_split(self, X):
        start, rest, sessions = split(self, X)

        def slow_start(options):
            late = Future()
            threading.Timer(0.05, lambda: late.set_result(
                start(options).result())).start()
            return late

        return slow_start, rest, sessions

    monkeypatch.setattr(type(cnn), "split_transform", slow_split)
    late = []
    result = _ahead._Ahead.result
    monkeypatch.setattr(_ahead._Ahead, "result",
                        lambda self, rows: late.append(result(self, rows)) or late[-1])
    for a, b in zip(_stages(pipe, photos, ahead=True), expected):
        np.testing.assert_array_equal(a[1], b[1])
    assert late and all(r is None for r in late)


def test_nothing_starts_ahead_for_a_batch_or_in_a_worker(cascade):
    pipe, photos = cascade
    images = pipe.named_steps["load"].transform(photos[:3])
    rest = [block for name, block in iter_feature_blocks(pipe) if name == "cnn"]
    assert _ahead.start_ahead(rest, images) is None  # three photos
    assert start_idle(lambda: _ahead.start_ahead(rest, images[:1])).result(
        ) is None  # a thread that already works beside another
    ahead = _ahead.start_ahead(rest, images[:1])
    assert ahead is not None
    ahead.stop()
    set_n_jobs(pipe, 1)
    try:
        assert _ahead.start_ahead(rest, images[:1]) is None  # one thread only
    finally:
        set_n_jobs(pipe, 2)


@pytest.mark.skipif(not sys.platform.startswith("linux"),
                    reason="the thread's nice is set on Linux only")
def test_the_idle_thread_runs_at_the_lowest_priority():
    assert start_idle(lambda: os.getpriority(os.PRIO_PROCESS, 0)).result() == 19


def test_a_process_exits_cleanly_with_first_layers_still_running(tmp_path):
    # a run that ended after the interpreter had gone aborted the process
    code = (
        "import numpy as np\n"
        "from hybridclf.features import CNNFeatures\n"
        "from hybridclf.features._cnn_onnx import stoppable_options\n"
        "images = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3), np.uint8)\n"
        "cnn = CNNFeatures(weights=None, image_size=128, device='cpu').fit(images)\n"
        "start, _, _ = cnn.split_transform(images[:1])\n"
        "for _ in range(30):\n"  # runs queued beyond the end of the script
        "    start(stoppable_options())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True,
                          timeout=120, env={**os.environ})
    assert done.returncode == 0, done.stderr.decode()[-2000:]
