"""The library behind ``hybridclf predict`` and ``extract``: hybridclf.batch."""

import pytest

from hybridclf.batch import BatchPrediction, open_set_options

INFO = {"open_set": {"proba_threshold": 0.4, "ood_thresholds": {"hog": 3.0}}}


@pytest.mark.parametrize("kwargs, expected", [
    ({}, (0.4, {"hog": 3.0})),
    ({"threshold": 0.7}, (0.7, {"hog": 3.0})),
    ({"ood": False}, (0.4, None)),
    ({"closed_set": True, "threshold": 0.7}, (0.0, None)),
])
def test_open_set_options_take_the_model_s_unless_overridden(kwargs, expected):
    options = open_set_options(INFO, **kwargs)
    assert (options["proba_threshold"], options["ood_thresholds"]) == expected


def test_a_model_without_open_set_thresholds_never_says_unknown():
    assert open_set_options({}) == {"proba_threshold": 0.0, "ood_thresholds": None,
                                    "novelty": None}


def test_summary_line():
    counts = BatchPrediction(5, n_predicted=3, n_unknown=1, n_unreadable=1)
    assert counts.summary() == "5 files: 3 predicted, 1 unknown, 1 unreadable"


@pytest.mark.parametrize("name", ["predict_to_csv", "extract_to_parquet"])
def test_the_run_settings_are_documented(name):
    # help(predict_to_csv) showed a bare "{settings}" and no allow_pickle,
    # max_pixels, n_jobs, scheduler or partition_size
    import hybridclf.batch

    doc = getattr(hybridclf.batch, name).__doc__
    assert "{settings}" not in doc
    for parameter in ("allow_pickle", "max_pixels, n_jobs", "scheduler",
                      "partition_size"):
        assert f"    {parameter} :" in doc
