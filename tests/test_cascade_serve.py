"""A cascade in the service: early answers leave first, the warm-up runs the CNN."""

import copy
import threading

import numpy as np
import pytest
from sklearn.base import BaseEstimator, TransformerMixin

pytest.importorskip("fastapi")  # hybridclf.serve needs it

from hybridclf import load_image_folder, make_hybrid_pipeline, save_model  # noqa: E402
from hybridclf.serve._batching import MicroBatcher  # noqa: E402
from hybridclf.serve._predict import classify, classify_stages  # noqa: E402

#: rows each call of HeldBlock.transform received
CALLS = []
#: cleared: HeldBlock.transform waits until it is set again
GO = threading.Event()
GO.set()


class HeldBlock(TransformerMixin, BaseEstimator):
    """Stands in for the CNN: records its calls, waits while GO is clear."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        CALLS.append(len(X))
        assert GO.wait(10), "HeldBlock was never released"
        X = np.asarray(X, dtype=np.float64)
        return np.column_stack([X.mean(axis=(1, 2)), X.std(axis=(1, 2))])

    def get_feature_names_out(self, input_features=None):
        return np.array([f"held{i}" for i in range(6)], dtype=object)


@pytest.fixture(scope="module")
def served(texture_folder):
    """A fitted cascade, the encoded photos, and which ones it answers early."""
    paths, labels = load_image_folder(texture_folder)
    paths, labels = np.asarray(paths, dtype=object), np.asarray(labels)
    pipe = make_hybrid_pipeline(
        features=["hog", "color", ("cnn", HeldBlock())], cascade=True,
    ).set_params(load__size=64, cheap_features=("hog", "color"), cv=3)
    pipe.fit(paths[::2], labels[::2], groups=np.arange(len(labels))[::2] // 2)
    photos = [open(p, "rb").read() for p in paths[1::2]]
    _, _, early = pipe.predict_stages(paths[1::2])
    assert early.any() and not early.all()
    return pipe, photos, early


def test_early_answers_come_first_without_an_embedding(served):
    pipe, photos, early = served
    stages = list(classify_stages(pipe, [b"not an image", *photos]))
    assert len(stages) == 2
    first, second = stages
    assert set(first) == {0, *(1 + np.flatnonzero(early))}
    assert first[0].error is not None
    assert all(first[i].early for i in first if i)
    assert set(second) == set(1 + np.flatnonzero(~early))
    assert not any(r.early for r in second.values())
    # the same answers as in one piece
    whole = classify(pipe, [b"not an image", *photos])
    merged = {**first, **second}
    assert [r.label for r in whole] == [merged[i].label for i in range(len(whole))]


def test_an_easy_photo_does_not_wait_for_the_cnn_of_a_hard_one(served):
    pipe, photos, early = served
    easy = photos[int(np.flatnonzero(early)[0])]
    hard = photos[int(np.flatnonzero(~early)[0])]
    started = threading.Event()

    def fn(items):
        if items == [b"hold"]:  # keeps the worker busy while two requests queue
            started.set()
            assert go_on.wait(10)
            return ["held"]
        return classify_stages(pipe, items)

    go_on = threading.Event()
    batcher = MicroBatcher(fn)
    try:
        batcher.submit([b"hold"])
        assert started.wait(10)
        hard_answer, easy_answer = batcher.submit([hard]), batcher.submit([easy])
        GO.clear()  # the CNN of the hard photo will wait
        go_on.set()
        (result,) = easy_answer.result(10)
        assert result.early and result.label is not None
        assert not hard_answer.done()  # its CNN has not finished
        GO.set()
        assert not hard_answer.result(10)[0].early
    finally:
        GO.set()
        go_on.set()
        batcher.close()


@pytest.mark.filterwarnings("ignore::hybridclf.exceptions.PickleLoadWarning")
def test_the_warm_up_runs_every_block_of_a_cascade(served, tmp_path):
    from hybridclf.serve._model import load_served_model
    from hybridclf.serve._settings import ServiceSettings

    pipe = copy.deepcopy(served[0])
    pipe.threshold_, pipe.ood_limits_ = 0.0, None  # answers every photo early
    save_model(pipe, tmp_path, model_format="pickle")
    CALLS.clear()
    model = load_served_model(tmp_path, ServiceSettings(str(tmp_path),
                                                        allow_pickle=True))
    assert CALLS == [1]  # the grey square went through the CNN's stand-in
    assert model.classes == [str(c) for c in pipe.classes_]


@pytest.fixture
def counted(served, monkeypatch):
    """Rows each feature block transformed, by block, and the open-set passes."""
    from hybridclf import prediction
    from hybridclf.pipeline import get_block_extractor, iter_feature_blocks

    pipe = served[0]
    rows, passes = {}, []
    for name, block in iter_feature_blocks(pipe):
        # a block runs whole, or in parts (one or two photos): count either
        extractor = get_block_extractor(block)
        for owner, method in ((block, "transform"), (extractor, "transform_parts")):
            if not hasattr(owner, method):
                continue

            def counted_call(X, name=name, inner=getattr(owner, method)):
                rows.setdefault(name, []).append(len(X))
                return inner(X)

            monkeypatch.setattr(owner, method, counted_call, raising=False)
    answers = prediction.open_set_answers

    def open_set_answers(*args, **kwargs):
        passes.append(len(args[1]))
        return answers(*args, **kwargs)

    monkeypatch.setattr(prediction, "open_set_answers", open_set_answers)
    return rows, passes


def test_a_hard_photo_runs_each_block_once_and_one_open_set_pass(served, counted):
    pipe, photos, early = served
    rows, passes = counted
    hard = photos[int(np.flatnonzero(~early)[0])]
    CALLS.clear()
    (result,) = classify(pipe, [hard])
    assert not result.early
    # the cheap blocks' features of the cheap stage are those of the full stage
    assert rows == {"hog": [1], "color": [1], "cnn": [1]}
    assert CALLS == [1]
    assert passes == [1]


def test_an_easy_photo_runs_only_the_cheap_blocks(served, counted):
    pipe, photos, early = served
    rows, passes = counted
    easy = photos[int(np.flatnonzero(early)[0])]
    (result,) = classify(pipe, [easy])
    assert result.early
    assert rows == {"hog": [1], "color": [1]}
    assert passes == [1]


def test_a_request_threshold_above_the_cascades_sends_its_photos_on(served):
    # the service held a cheap answer under the request's confidence_threshold
    # as "low confidence" instead of asking the full model
    pipe, photos, early = served
    [first, *rest] = list(classify_stages(pipe, photos,
                                          thresholds=[1.0] * len(photos)))
    assert not rest and not any(r.early for r in first.values())
    mixed = [1.0 if i % 2 else 0.0 for i in range(len(photos))]
    results = classify(pipe, photos, thresholds=mixed)
    assert not any(r.early for r, t in zip(results, mixed) if t == 1.0)
    assert [r.early for r, t in zip(results, mixed) if t == 0.0] == [
        bool(e) for e, t in zip(early, mixed) if t == 0.0]
