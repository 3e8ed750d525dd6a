"""find_label_issues and label_issues_csv on probabilities made by hand."""

import numpy as np
import pytest

from hybridclf.label_issues import find_label_issues, label_issues_csv


def _proba(rng, labels, classes, wrong):
    """Confident, right probabilities; for the rows in ``wrong``, the next class."""
    codes = np.searchsorted(classes, labels)
    codes[wrong] = (codes[wrong] + 1) % len(classes)
    proba = rng.uniform(0, 0.1, (len(labels), len(classes)))
    proba[np.arange(len(labels)), codes] = rng.uniform(0.7, 0.9, len(labels))
    return proba / proba.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("filter_by", ["low_self_confidence", "prune_by_noise_rate",
                                       "predicted_neq_given"])
def test_contradicted_labels_are_found_worst_first(filter_by):
    rng = np.random.default_rng(0)
    classes = np.array(["a", "b", "c"])
    labels = np.repeat(classes, 20)
    wrong = np.array([3, 25, 47])
    proba = _proba(rng, labels, classes, wrong)
    proba[25] = [0.02, 0.01, 0.97]  # the surest contradiction
    issues = find_label_issues(labels, proba, classes, filter_by=filter_by)
    assert sorted(issues["index"]) == sorted(wrong)
    assert issues["index"][0] == 25
    assert issues["suggested_label"][0] == "c"
    assert (np.diff(issues["score"]) >= 0).all()
    text = label_issues_csv(issues, [f"{lab}/{i}.jpg" for i, lab in enumerate(labels)])
    assert text.splitlines()[:2] == ["file,given_label,suggested_label,score",
                                     "b/25.jpg,b,c,0.0100"]


def test_bad_input_is_explained():
    proba = np.full((2, 2), 0.5)
    with pytest.raises(ValueError, match="'x', which is not among"):
        find_label_issues(["a", "x"], proba, ["a", "b"])
    with pytest.raises(ValueError, match=r"shape \(n_samples, n_classes\)"):
        find_label_issues(["a"], proba, ["a", "b"])
    with pytest.raises(ValueError, match="'filter_by'.*Got 'nope'"):
        find_label_issues(["a", "b"], proba, ["a", "b"], filter_by="nope")


def test_nothing_to_check_gives_an_empty_list():
    issues = find_label_issues(["a", "a"], np.ones((2, 1)), ["a"])
    assert len(issues["index"]) == 0
    assert label_issues_csv(issues, ["x", "y"]) == (
        "file,given_label,suggested_label,score\n")


def _hard_cases(rng):
    """Probabilities of the kinds that decide ties: peaked, flat, equal rows."""
    for n, k in [(60, 3), (40, 2), (139, 6), (25, 5), (80, 4)]:
        labels = rng.integers(0, k, n)
        peaked = rng.dirichlet(np.full(k, 0.3), n)
        flat = rng.dirichlet(np.full(k, 5.0), n)
        rounded = np.round(rng.dirichlet(np.ones(k), n), 1) + 1e-3  # many ties
        yield labels, peaked
        yield labels, flat
        yield labels, rounded / rounded.sum(axis=1, keepdims=True)
        if k > 2:  # the last class never given (cleanlab wants two given)
            yield np.minimum(labels, k - 2), peaked


def test_low_self_confidence_flags_what_cleanlab_flags():
    # the default filter runs without importing cleanlab; its answer must be
    # cleanlab's own, row for row
    cleanlab_filter = pytest.importorskip("cleanlab.filter")
    rng = np.random.default_rng(1)
    for codes, proba in _hard_cases(rng):
        classes = np.arange(proba.shape[1])
        # what find_label_issues gave cleanlab: rows scaled to sum to 1 (which
        # moves the last bits, and so the order of tied rows)
        scaled = proba / np.maximum(proba.sum(axis=1, keepdims=True), 1e-12)
        expected = np.flatnonzero(cleanlab_filter.find_label_issues(
            codes, scaled, filter_by="low_self_confidence", n_jobs=1))
        issues = find_label_issues(codes, proba, classes)
        assert sorted(issues["index"]) == expected.tolist()


def test_the_default_filter_does_not_import_cleanlab():
    import subprocess
    import sys

    code = ("import sys, numpy as np\n"
            "from hybridclf.label_issues import find_label_issues\n"
            "find_label_issues(['a', 'b', 'a'], np.eye(2)[[0, 1, 1]], ['a', 'b'])\n"
            "print('cleanlab' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "False"
