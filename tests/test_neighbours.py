"""The embedding index: exact cosine neighbours, float16 storage, its file."""

import io

import numpy as np
import pytest

from hybridclf.exceptions import ModelLoadError
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
    np.savez(tmp_path / INDEX_FILE, embeddings=np.eye(2))
    with pytest.raises(ValueError, match="not a hybridclf embedding index.*retrain"):
        EmbeddingIndex.load(tmp_path)


def test_an_index_of_a_newer_format_says_to_upgrade(tmp_path):
    # an index written by a newer hybridclf said only "retrain the model", as
    # for a file that is no index, and never that an upgrade reads it
    np.savez(tmp_path / INDEX_FILE, embeddings=np.eye(2), version=np.array(99))
    with pytest.raises(ValueError, match="format 99, written by a newer hybridclf; "
                       "this one reads formats up to 2. Upgrade hybridclf, or "
                       "retrain"):
        EmbeddingIndex.load(tmp_path)


def test_an_index_that_unpacks_to_far_more_than_its_size_is_refused(tmp_path):
    # a deflated member of zeros: a 1 MB neighbours.npz took 1.1 GB and 20 s
    # in np.load; the manifest does not help against whoever wrote the folder
    from .conftest import deflate_bombed

    index = index_with_views(np.eye(3), [np.eye(3) + 0.1], ["a", "b", "c"])
    path = index.save(tmp_path)
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, {
        "descr": "<f2", "fortran_order": False, "shape": (80 << 19,)})
    deflate_bombed(path, "embeddings.npy", 80 << 20, head=head.getvalue())
    with pytest.raises(ModelLoadError, match=r"neighbours.npz' would unpack to "
                       r"\d+ bytes.*decompression bomb"):
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


def _views_index(thumbnails=True):
    # three photos; each has one view, nearer to another photo's direction
    photos = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], float)
    view = np.array([[1, 0.2, 0], [0, 1, 0.9], [0.1, 0, 1]], float)
    thumbs = [b"\xff\xd8a", b"\xff\xd8bb", b"\xff\xd8ccc"] if thumbnails else None
    return index_with_views(photos, [view], ["a", "b", "c"],
                            files=["a/1.jpg", "b/2.jpg", "c/3.jpg"],
                            thumbnails=thumbs)


def test_neighbours_are_distinct_photos_with_their_evidence():
    index = _views_index()
    [near] = index.neighbours([[0, 0.5, 1]], k=3)
    # photo b's view [0, 1, 0.9] is closer than photo c itself: b comes first,
    # once, with the similarity of its best entry
    assert [n["file"] for n in near] == ["b/2.jpg", "c/3.jpg", "a/1.jpg"]
    assert [n["label"] for n in near] == ["b", "c", "a"]
    sims = [n["similarity"] for n in near]
    assert sims == sorted(sims, reverse=True)
    expected = np.dot([0, 0.5, 1], [0, 1, 0.9]) / np.linalg.norm([0, 0.5, 1]) \
        / np.linalg.norm([0, 1, 0.9])
    assert sims[0] == pytest.approx(expected, abs=2e-3)
    assert near[0]["thumbnail"] == b"\xff\xd8bb"
    assert set(near[0]) == {"label", "similarity", "file", "thumbnail"}


def test_training_photos_that_are_one_photo_fill_one_slot(tmp_path):
    # b/2.jpg and its copy b/2_copy.jpg (same content, or augmented from it)
    # are one photo: k=2 shows two different photos, b by its closer file
    rows = np.array([[0, 1, 0], [0, 1, 0.05], [0, 0.9, 0.2], [1, 0, 0]], float)
    index = EmbeddingIndex().fit(
        rows, ["b", "b", "b", "a"], files=["b/2.jpg", "b/2_copy.jpg",
                                           "b/2_aug001.jpg", "a/1.jpg"],
        photos=["x", "x", "x", "y"])
    [near] = index.neighbours([[0, 1, 0.06]], k=2)
    assert [n["file"] for n in near] == ["b/2_copy.jpg", "a/1.jpg"]
    assert [len(row) for row in index.neighbours(np.eye(3), k=10)] == [2, 2, 2]
    index.save(tmp_path)
    loaded = EmbeddingIndex.load(tmp_path)
    assert loaded.neighbours([[0, 1, 0.06]], k=2) == index.neighbours(
        [[0, 1, 0.06]], k=2)
    with pytest.raises(ValueError, match="3 photos for 4 training photos"):
        EmbeddingIndex().fit(rows, photos=[0, 0, 1])


@pytest.mark.parametrize("k, n", [(0, 0), (1, 1), (3, 3), (10, 3)])
def test_neighbours_k_zero_to_more_than_the_photos(k, n):
    out = _views_index().neighbours(np.eye(3)[:2], k=k)
    assert [len(row) for row in out] == [n, n]


@pytest.mark.parametrize("k", [-1, 1.5, "3", True])
def test_neighbours_bad_k_is_explained(k):
    with pytest.raises(ValueError, match=r"'k' parameter.*int >= 0"):
        _views_index().neighbours(np.eye(3), k=k)


def test_neighbours_of_any_source_layout():
    # sources in any order give the same answer as the photos-then-views layout
    rows = np.array([[0, 1, 0.9], [1, 0, 0], [0, 0, 1], [0, 1, 0]], float)
    index = EmbeddingIndex().fit(rows, ["b", "a", "c", "b"], sources=[1, 0, 2, 1])
    [near] = index.neighbours([[0, 0.5, 1]], k=2)
    assert [n["label"] for n in near] == ["b", "c"]
    assert near[0]["file"] == "" and near[0]["thumbnail"] is None
    with pytest.raises(ValueError, match="numbering the training photos from 0"):
        EmbeddingIndex().fit(rows, sources=[0, 0, 2, 2])
    with pytest.raises(ValueError, match="2 files for 3 training photos"):
        EmbeddingIndex().fit(rows, sources=[1, 0, 2, 1], files=["x", "y"])


def test_files_and_thumbnails_survive_the_file_without_pickles(tmp_path):
    index = _views_index()
    index.save(tmp_path)
    with np.load(tmp_path / INDEX_FILE, allow_pickle=False) as data:
        assert all(data[key].dtype != object for key in data)
        assert data["thumbnail_data"].dtype == np.uint8
    loaded = EmbeddingIndex.load(tmp_path)
    assert loaded.files_.tolist() == ["a/1.jpg", "b/2.jpg", "c/3.jpg"]
    assert loaded.thumbnails_ == index.thumbnails_
    assert loaded.neighbours(np.eye(3), 2) == index.neighbours(np.eye(3), 2)
    # without thumbnails
    _views_index(thumbnails=False).save(tmp_path)
    loaded = EmbeddingIndex.load(tmp_path)
    assert loaded.thumbnails_ is None and loaded.files_[2] == "c/3.jpg"


def test_an_index_saved_before_files_and_thumbnails_still_loads(tmp_path):
    # the format of the first release: embeddings, labels, sources, version
    np.savez(tmp_path / INDEX_FILE, embeddings=np.eye(2, dtype=np.float16),
             labels=np.array(["a", "b"]), sources=np.array([0, 1]),
             version=np.array(1))
    index = EmbeddingIndex.load(tmp_path)
    assert index.files_.tolist() == ["", ""] and index.thumbnails_ is None
    [near] = index.neighbours([[1, 0.1]], k=1)
    assert near == [{"label": "a", "similarity": pytest.approx(0.995, abs=1e-3),
                     "file": "", "thumbnail": None}]


def test_a_thumbnail_far_larger_than_hybridclf_writes_is_left_out(caplog):
    # a neighbours.npz from someone else held a 2 MB JPEG of 12000 x 12000
    # pixels: `hybridclf evaluate` decoded and drew it in its error gallery,
    # took 21 GB and was killed
    import cv2

    from hybridclf.neighbours import jpeg_thumbnails

    small = jpeg_thumbnails([np.zeros((60, 40, 3), np.uint8)])[0]
    ok, big = cv2.imencode(".jpg", np.zeros((8, 3000, 3), np.uint8))
    index = EmbeddingIndex().fit(np.eye(3), ["a", "b", "c"],
                                 thumbnails=[small, big.tobytes(), b"\xff\xd8a"])
    near = index.neighbours(np.eye(3), 1)
    assert [row[0]["thumbnail"] for row in near] == [small, None, b"\xff\xd8a"]
    assert "3000 x 8 pixels (hybridclf writes at most 1024" in caplog.text


def test_jpeg_thumbnails_are_small_and_keep_the_aspect(real_images):
    import io

    from PIL import Image

    from hybridclf.neighbours import THUMBNAIL_SIDE, jpeg_thumbnails

    wide = np.concatenate([real_images[0], real_images[1]], axis=1)  # 64 x 128
    big = np.repeat(np.repeat(real_images[0], 4, axis=0), 4, axis=1)  # 256 x 256
    thumbs = jpeg_thumbnails([wide, big])
    sizes = [Image.open(io.BytesIO(t)).size for t in thumbs]
    assert sizes[0] == (128 if THUMBNAIL_SIDE >= 128 else THUMBNAIL_SIDE,
                        64 if THUMBNAIL_SIDE >= 128 else THUMBNAIL_SIDE // 2)
    assert sizes[1] == (THUMBNAIL_SIDE, THUMBNAIL_SIDE)
    assert all(len(t) < 5000 for t in thumbs)


def test_novelty_and_neighbours_in_one_search_equal_each_alone():
    from hybridclf.neighbours import novelty_and_neighbours

    rng = np.random.default_rng(1)
    index = index_with_views(rng.normal(size=(30, 8)), [rng.normal(size=(30, 8))],
                             rng.choice(["a", "b"], 30))
    X = rng.normal(size=(5, 8))
    scores, near = novelty_and_neighbours(index, X, novelty_k=2, k=4)
    np.testing.assert_allclose(scores, novelty_scores(index, X, k=2))
    assert near == index.neighbours(X, k=4)


def test_a_refitted_index_searches_its_new_embeddings():
    index = EmbeddingIndex().fit(np.eye(3), ["a", "b", "c"])
    assert index.neighbours([[1, 0, 0]], k=1)[0][0]["label"] == "a"
    index.fit(np.eye(3)[::-1], ["x", "y", "z"])  # same shape, new content
    assert index.neighbours([[1, 0, 0]], k=1)[0][0]["label"] == "z"
    assert novelty_scores(index, [[0, 0, 1]])[0] == pytest.approx(0, abs=1e-3)


def test_a_missing_embedding_has_no_neighbours():
    # a cascade's photo answered without its CNN block has a NaN embedding
    index = _views_index()
    out = index.neighbours([[np.nan, np.nan, np.nan], [1, 0, 0]], k=2)
    assert out[0] == [] and [n["label"] for n in out[1]] == ["a", "c"]


def _low_rank_case(n_rows, n_features, rank, seed=0):
    # non-negative like CNN outputs, all but a trace of their energy on
    # `rank` axes: a search on those axes must find what the exact one finds
    rng = np.random.default_rng(seed)
    basis = np.abs(rng.normal(size=(rank, n_features)))
    def draw(n):
        return (np.abs(rng.normal(size=(n, rank))) ** 3 @ basis
                + 1e-4 * rng.normal(size=(n, n_features)))
    return draw(n_rows), draw(20)


@pytest.mark.parametrize("n_rows", [40, 300])  # fewer and more rows than features
def test_projected_search_agrees_with_exact_search(n_rows):
    X, queries = _low_rank_case(n_rows, 120, rank=6)
    exact = EmbeddingIndex().fit(X)
    projected = EmbeddingIndex(n_components=6).fit(X)
    assert projected.embeddings_.shape == (n_rows, 6)
    assert projected.components_.shape == (6, 120)
    full = exact._similarities(queries)
    for index_k in (1, 3):
        a, sim_a = exact.query(queries, k=index_k)
        b, sim_b = projected.query(queries, k=index_k)
        np.testing.assert_allclose(sim_a, sim_b, atol=2e-3)
        # the rows it picks are the nearest ones, up to float16 ties
        np.testing.assert_allclose(np.take_along_axis(full, b, axis=1), sim_a,
                                   atol=2e-3)
        assert (a == b).mean() > 0.8
    # a stranger off the learned axes stays a stranger: the query keeps its
    # full length, so its similarity is not inflated by the projection
    stranger = np.linalg.svd(X, full_matrices=True)[2][-1:]  # no energy of X
    np.testing.assert_allclose(novelty_scores(projected, stranger),
                               novelty_scores(exact, stranger), atol=2e-3)


def test_axes_of_few_rows_are_the_first_singular_vectors():
    """Rows fewer than their features: the axes (from the rows' Gram matrix)
    are the SVD's first right singular vectors, each with a fixed sign."""
    rng = np.random.default_rng(0)
    X = rng.random((60, 200)) ** 3  # non-negative, like CNN embeddings
    unit = X / np.linalg.norm(X, axis=1, keepdims=True)
    axes = EmbeddingIndex(n_components=20).fit(X).components_
    svd = np.linalg.svd(unit, full_matrices=False)[2][:20]
    np.testing.assert_allclose(np.abs(axes @ svd.T), np.eye(20), atol=2e-3)
    largest = axes[np.arange(20), np.abs(axes).argmax(axis=1)]
    assert (largest > 0).all()
    # the same rows in another order give the same axes
    again = EmbeddingIndex(n_components=20).fit(X[::-1]).components_
    np.testing.assert_allclose(again, axes, atol=2e-3)


def test_axes_in_float32_search_as_those_in_float64(monkeypatch):
    """The Gram matrix's eigenpairs in float32 (half the time) give the
    projected similarities of float64's, and rows of lower rank than the
    axes wanted still get orthonormal axes (float64, then the SVD)."""
    from hybridclf._embedding_index import _axes

    rng = np.random.default_rng(0)
    X = rng.random((300, 500)) ** 3  # non-negative, like CNN embeddings
    queries = rng.random((30, 500)) ** 3
    fast = EmbeddingIndex(n_components=64).fit(X)
    monkeypatch.setattr(_axes, "_FLOAT32_FLOOR", np.inf)  # float64 only
    slow = EmbeddingIndex(n_components=64).fit(X)
    np.testing.assert_allclose(np.abs(fast.components_ @ slow.components_.T),
                               np.eye(64), atol=2e-3)
    assert (fast.query(queries, k=5)[0] == slow.query(queries, k=5)[0]).all()
    np.testing.assert_allclose(fast.query(queries, k=5)[1],
                               slow.query(queries, k=5)[1], atol=2e-4)
    monkeypatch.undo()
    copies = np.vstack([X[:40]] * 3)  # rank 40, 64 axes wanted
    axes = EmbeddingIndex(n_components=64).fit(copies).components_
    assert np.isfinite(axes).all()
    np.testing.assert_allclose(axes[:40] @ axes[:40].T, np.eye(40), atol=2e-3)


def test_more_components_than_features_or_rows_search_the_space_they_span():
    X, queries = _low_rank_case(10, 30, rank=3)
    assert EmbeddingIndex(n_components=30).fit(X).components_ is None
    few_rows = EmbeddingIndex(n_components=25).fit(X)  # 10 rows span 10 axes
    assert few_rows.embeddings_.shape == (10, 10)
    np.testing.assert_allclose(few_rows.query(queries, k=3)[1],
                               EmbeddingIndex().fit(X).query(queries, k=3)[1],
                               atol=2e-3)
    with pytest.raises(ValueError, match="'n_components' parameter.*>= 1 or None"):
        EmbeddingIndex(n_components=0).fit(X)


def test_a_projected_index_searches_the_same_after_loading(tmp_path):
    X, queries = _low_rank_case(60, 50, rank=5)
    views = [X + 0.01]
    index = index_with_views(X, views, [f"c{i % 4}" for i in range(60)],
                             n_components=5, files=[f"{i}.jpg" for i in range(60)])
    index.save(tmp_path)
    with np.load(tmp_path / INDEX_FILE, allow_pickle=False) as data:
        assert int(data["version"]) == 2
        assert data["components"].dtype == np.float16
        assert len(data["labels"]) == 60  # once per photo, not per entry
    loaded = EmbeddingIndex.load(tmp_path)
    np.testing.assert_array_equal(loaded._similarities(queries),
                                  index._similarities(queries))
    assert loaded.labels_.tolist() == index.labels_.tolist()
    assert loaded.neighbours(queries, 3) == index.neighbours(queries, 3)


def test_views_labelled_unlike_their_photo_keep_their_labels(tmp_path):
    EmbeddingIndex().fit(np.eye(3), ["a", "b", "c"], sources=[0, 1, 0]).save(tmp_path)
    assert EmbeddingIndex.load(tmp_path).labels_.tolist() == ["a", "b", "c"]


def test_an_index_of_format_1_with_views_still_loads(tmp_path):
    # as written before the projection: full-space rows, labels per entry, str
    index = _views_index()
    np.savez(tmp_path / INDEX_FILE, embeddings=index.embeddings_,
             labels=index.labels_, sources=index.sources_, files=index.files_,
             thumbnail_offsets=np.array([0, 3, 7, 12]),
             thumbnail_data=np.frombuffer(b"".join(index.thumbnails_), np.uint8),
             version=np.array(1))
    loaded = EmbeddingIndex.load(tmp_path)
    assert loaded.components_ is None
    assert loaded.neighbours([[0, 0.5, 1]], k=3) == index.neighbours([[0, 0.5, 1]],
                                                                     k=3)


def test_a_search_leaves_the_blas_threads_as_they_were():
    from threadpoolctl import threadpool_info

    before = [i["num_threads"] for i in threadpool_info()]
    index = EmbeddingIndex(n_components=4).fit(_low_rank_case(50, 20, rank=4)[0])
    index.query(np.ones((1, 20)))  # one BLAS thread during the search
    assert [i["num_threads"] for i in threadpool_info()] == before


def test_a_file_name_that_is_not_utf8_is_saved_and_answered(tmp_path):
    # train with a CNN block failed at its end on a Latin-1 photo name (the
    # index encoded names strictly); the service's answer naming it gave 500
    import json
    import os

    from hybridclf.serve._answers import neighbour_answers

    name = os.fsdecode(b"a/caf\xe9.jpg")
    index = EmbeddingIndex().fit(np.eye(2), ["a", "b"], files=[name, "b/2.jpg"])
    index.save(tmp_path)
    loaded = EmbeddingIndex.load(tmp_path)
    assert loaded.files_.tolist() == [name, "b/2.jpg"]
    near = {"label": "a", "similarity": 1.0, "file": name, "thumbnail": None}
    answer = neighbour_answers([[near]], [1])
    assert answer[0][0]["file"] == "a/caf\\xe9.jpg"
    json.dumps(answer, ensure_ascii=False).encode("utf-8")
