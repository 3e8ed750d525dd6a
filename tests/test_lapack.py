"""largest_eigh: scipy.linalg.eigh's largest eigenpairs, the same bits, without
holding Python's lock (the novelty indexes of a training build in threads)."""

import threading

import numpy as np
import pytest
from scipy.linalg import eigh

from hybridclf.utils._lapack import largest_eigh


def _gram(n_rows, n_features, seed):
    rows = np.random.default_rng(seed).normal(size=(n_rows, n_features))
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows @ rows.T


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(("n_rows", "n_features", "k"), [
    (300, 500, 128),  # an index's rows fewer than its features
    (40, 500, 40),  # every eigenpair
    (60, 20, 5),  # rank below the rows: tied zero eigenvalues
    (3, 4, 1),
])
def test_same_bits_as_scipy(n_rows, n_features, k, dtype):
    gram = _gram(n_rows, n_features, seed=k).astype(dtype)
    values, vectors = largest_eigh(gram, k)
    expected = eigh(gram, subset_by_index=[n_rows - k, n_rows - 1])
    assert values.dtype == vectors.dtype == expected[0].dtype == dtype
    np.testing.assert_array_equal(values, expected[0])
    np.testing.assert_array_equal(vectors, expected[1])
    assert vectors.shape == (n_rows, k)
    # the input is left as it was (LAPACK overwrites a copy)
    np.testing.assert_array_equal(
        gram, _gram(n_rows, n_features, seed=k).astype(dtype))


def test_same_results_in_threads():
    grams = [_gram(200, 300, seed) for seed in range(4)]
    alone = [largest_eigh(g, 50) for g in grams]
    together = [None] * len(grams)

    def work(i):
        together[i] = largest_eigh(grams[i], 50)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(grams))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for (v1, w1), (v2, w2) in zip(alone, together):
        np.testing.assert_array_equal(v1, v2)
        np.testing.assert_array_equal(w1, w2)


def test_other_dtypes_and_bad_values_as_scipy():
    gram = _gram(30, 40, seed=0).astype(np.float16)
    values, _ = largest_eigh(gram, 3)  # scipy's own path for other dtypes
    np.testing.assert_array_equal(values, eigh(gram, subset_by_index=[27, 29])[0])
    gram = _gram(30, 40, seed=0)
    gram[0, 0] = np.nan
    with pytest.raises(ValueError, match="infs or NaNs"):
        largest_eigh(gram, 3)
