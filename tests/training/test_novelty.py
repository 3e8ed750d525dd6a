"""The novelty threshold of train_model: the same whether its folds run in threads."""

import numpy as np
from threadpoolctl import threadpool_info

from hybridclf.training import novelty_threshold


def test_folds_indexed_in_threads_give_the_same_threshold():
    rng = np.random.default_rng(0)
    embeddings = rng.normal(size=(60, 40)).astype(np.float32)
    views = [embeddings + rng.normal(scale=0.3, size=embeddings.shape)
             .astype(np.float32) for _ in range(4)]
    splits = [(np.setdiff1d(np.arange(60), test), test)
              for test in np.array_split(rng.permutation(60), 5)]
    blas = [lib["num_threads"] for lib in threadpool_info()
            if lib["user_api"] == "blas"]
    in_order = novelty_threshold(embeddings, views, splits)
    assert novelty_threshold(embeddings, views, splits, n_jobs=2) == in_order
    assert 0 < in_order["threshold"] < 2
    # the threads' one-thread BLAS is undone after
    assert [lib["num_threads"] for lib in threadpool_info()
            if lib["user_api"] == "blas"] == blas


def test_embedding_the_views_shows_a_progress_bar(capsys):
    # training spent 25 s of its 39 on the demo's digits here with nothing on
    # the screen; `hybridclf train` passes progress=True
    from hybridclf.neighbours import VIEWS
    from hybridclf.training._novelty_views import embed_views

    images = np.zeros((3, 16, 16, 3), np.uint8)
    views = embed_views(lambda x: np.zeros((len(x), 2), np.float32),
                        lambda rows: images[rows], 3, thumbnails=False,
                        progress=True)
    assert len(views.views) == len(VIEWS)
    err = capsys.readouterr().err
    assert "novelty index" in err and f"{3 * len(VIEWS)}/{3 * len(VIEWS)}" in err
    embed_views(lambda x: np.zeros((len(x), 2), np.float32),
                lambda rows: images[rows], 3, thumbnails=False)
    assert "novelty index" not in capsys.readouterr().err
