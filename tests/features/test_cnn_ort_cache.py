"""The optimised ONNX graphs kept on disk give the features of a fresh session."""

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from hybridclf.features import _cnn_ort_cache as _ort_cache  # noqa: E402
from hybridclf.features._cnn_onnx import onnx_session  # noqa: E402


def _graph(seed):
    """A small CNN (convolutions ONNX Runtime fuses and re-lays out)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    def weights(name, *shape):
        return numpy_helper.from_array(rng.normal(size=shape).astype(np.float32),
                                       name)

    w1, b1 = weights("w1", 16, 3, 3, 3), weights("b1", 16)
    w2 = weights("w2", 32, 16, 3, 3)
    nodes = [
        helper.make_node("Conv", ["images", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("GlobalAveragePool", ["r2"], ["p"]),
        helper.make_node("Flatten", ["p"], ["embedding"]),
    ]
    graph = helper.make_graph(
        nodes, "small",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["n", 3, 32, 32])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["n", 32])],
        initializer=[w1, b1, w2])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return model.SerializeToString()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HYBRIDCLF_CACHE_DIR", str(tmp_path))
    if _ort_cache.cpu_signature() is None:
        pytest.skip("no /proc/cpuinfo here: no optimised graph is kept")
    return tmp_path


def _run(session, images):
    return session.run(None, {"images": images})[0]


def _level(session):
    return session.get_session_options().graph_optimization_level


def test_the_kept_graph_gives_the_same_features(cache):
    model = _graph(0)
    images = np.random.default_rng(1).random((4, 3, 32, 32), dtype=np.float32)
    fresh = _run(onnx_session(model, 1), images)
    first = onnx_session(model, 1, keep_optimized=True)  # writes the file
    path = _ort_cache.optimized_path(ort, model)
    assert path.startswith(str(cache)) and len(list(cache.rglob("*.onnx"))) == 1
    second = onnx_session(model, 1, keep_optimized=True)  # loads it
    assert _level(second) == ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    np.testing.assert_array_equal(_run(first, images), fresh)
    np.testing.assert_array_equal(_run(second, images), fresh)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_a_damaged_file_is_made_again(cache, damage, caplog):
    model = _graph(0)
    images = np.random.default_rng(1).random((2, 3, 32, 32), dtype=np.float32)
    fresh = _run(onnx_session(model, 1), images)
    onnx_session(model, 1, keep_optimized=True)
    path = _ort_cache.optimized_path(ort, model)
    data = open(path, "rb").read()
    damaged = {"garbage": b"not a graph" * 100, "truncated": data[:len(data) // 2],
               "empty": b""}[damage]
    with open(path, "wb") as fh:
        fh.write(damaged)
    with caplog.at_level("WARNING"):
        session = onnx_session(model, 1, keep_optimized=True)
    assert "damaged optimised ONNX graph" in caplog.text
    np.testing.assert_array_equal(_run(session, images), fresh)
    # the file was made again, whole: the next session loads it
    again = onnx_session(model, 1, keep_optimized=True)
    assert _level(again) == ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    np.testing.assert_array_equal(_run(again, images), fresh)


def test_another_graph_runtime_or_cpu_has_a_file_of_its_own(cache, monkeypatch):
    from types import SimpleNamespace

    a, b = _graph(0), _graph(1)
    images = np.random.default_rng(1).random((2, 3, 32, 32), dtype=np.float32)
    onnx_session(a, 1, keep_optimized=True)
    # never the other graph's optimised file: b's own features
    np.testing.assert_array_equal(
        _run(onnx_session(b, 1, keep_optimized=True), images),
        _run(onnx_session(b, 1), images))
    assert _ort_cache.optimized_path(ort, a) != _ort_cache.optimized_path(ort, b)
    other_version = SimpleNamespace(__version__="0.0.1")
    assert (_ort_cache.optimized_path(other_version, a)
            != _ort_cache.optimized_path(ort, a))
    monkeypatch.setattr(_ort_cache, "cpu_signature", lambda: "another-cpu")
    assert "another-cpu" in _ort_cache.optimized_path(ort, a)
    # where the CPU cannot be told, nothing is kept
    monkeypatch.setattr(_ort_cache, "cpu_signature", lambda: None)
    before = sorted(cache.rglob("*"))
    c = _graph(2)
    np.testing.assert_array_equal(
        _run(onnx_session(c, 1, keep_optimized=True), images),
        _run(onnx_session(c, 1), images))
    assert sorted(cache.rglob("*")) == before
