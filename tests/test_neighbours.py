"""The embedding index: exact cosine neighbours, float16 storage, its file."""

import numpy as np
import pytest

from hybridclf.neighbours import (
    INDEX_FILE,
    VIEWS,
    EmbeddingIndex,
    degraded_views,
    index_with_views,
    novelty_scores,
)


def test_query_returns_the_most_similar_first():
    # four directions in the plane, worked out by hand
    index = EmbeddingIndex().fit([[1, 0], [0, 1], [-1, 0], [1, 1]],
                                 ["east", "north", "west", "north-east"])
    idx, sim = index.query([[3, 0.2], [0, -1]], k=2)
    assert idx[0].tolist() == [0, 3]
    assert sim[0, 0] > sim[0, 1] > 0.7
    # south: east and west are both at 90 degrees; north is the farthest
    assert set(idx[1].tolist()) == {0, 2}
    np.testing.assert_allclose(sim[1], [0, 0], atol=1e-3)
    assert index.labels_[idx[0, 1]] == "north-east"


def test_embeddings_are_unit_float16_and_scale_free():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 16))
    index = EmbeddingIndex().fit(X)
    assert index.embeddings_.dtype == np.float16
    np.testing.assert_allclose(np.linalg.norm(index.embeddings_.astype(float), axis=1),
                               1, atol=1e-3)
    a, _ = index.query(X * 7.5, k=1)  # the length of a query does not matter
    assert a[:, 0].tolist() == list(range(20))
    exact = EmbeddingIndex(dtype="float32").fit(X)
    np.testing.assert_allclose(novelty_scores(index, X[::-1]),
                               novelty_scores(exact, X[::-1]), atol=2e-3)


def test_save_and_load_round_trip(tmp_path):
    index = index_with_views(np.eye(3), [np.eye(3) + 0.1], ["a", "b", "c"])
    assert index.save(tmp_path).endswith(INDEX_FILE)
    loaded = EmbeddingIndex.load(tmp_path)
    np.testing.assert_array_equal(loaded.embeddings_, index.embeddings_)
    assert loaded.labels_.tolist() == ["a", "b", "c"] * 2
    assert loaded.sources_.tolist() == [0, 1, 2] * 2
    assert EmbeddingIndex.load(tmp_path / "elsewhere") is None


def test_a_file_of_another_format_is_refused(tmp_path):
    np.savez(tmp_path / INDEX_FILE, embeddings=np.eye(2), version=np.array(99))
    with pytest.raises(ValueError, match="not a hybridclf embedding index.*retrain"):
        EmbeddingIndex.load(tmp_path)


@pytest.mark.parametrize("k", [0, 4, 1.5])
def test_bad_k_names_the_range(k):
    index = EmbeddingIndex().fit(np.eye(3))
    with pytest.raises(ValueError, match=r"'k' parameter.*\[1, 3\]"):
        index.query(np.eye(3), k=k)


def test_bad_inputs_are_explained():
    index = EmbeddingIndex().fit(np.eye(3))
    with pytest.raises(ValueError, match="4 features; the index holds 3"):
        index.query(np.ones((1, 4)))
    with pytest.raises(ValueError, match="3 embeddings and 2 labels"):
        EmbeddingIndex().fit(np.eye(3), ["a", "b"])
    with pytest.raises(ValueError, match="'dtype' parameter"):
        EmbeddingIndex(dtype="int8").fit(np.eye(3))
    with pytest.raises(ValueError, match="not fitted"):
        EmbeddingIndex().query(np.eye(3))


def test_novelty_is_zero_on_a_training_embedding_and_grows_away():
    index = EmbeddingIndex().fit([[1, 0, 0], [0, 1, 0]])
    scores = novelty_scores(index, [[1, 0, 0], [1, 1, 0], [0, 0, 1]])
    assert scores[0] == pytest.approx(0, abs=1e-3)
    assert 0 < scores[1] < scores[2] == pytest.approx(1, abs=1e-3)


def test_degraded_views_blur_and_rotate():
    image = np.zeros((1, 32, 32, 3), np.uint8)
    image[0, :, 14:18] = 255  # a vertical bar
    views = degraded_views(image)
    assert len(views) == len(VIEWS)
    for view, (kind, _) in zip(views, VIEWS):
        assert view.shape == image.shape and view.dtype == np.uint8
        assert not np.array_equal(view, image), kind
