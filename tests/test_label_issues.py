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
