"""Evaluating a fitted pipeline on a labelled test set, and writing the report.

:func:`evaluate_model` measures, in one pass over the test images:

- accuracy, balanced accuracy, macro-F1, top-k accuracy and per-class
  precision / recall / F1;
- the confusion matrix;
- a reliability curve of the top-class probability and its expected
  calibration error (ECE);
- the importance of each feature block: the accuracy drop when the block's
  columns are permuted together across images (scikit-learn's permutation
  importance, applied to whole blocks), with its 95% interval over the test
  images (none on fewer than 10);
- the misclassified images with their top guesses (the error gallery);
- per-stage speed: ms per image for decoding, each feature block and the
  classifier;
- with the model's open-set thresholds, how many test images are "unknown";
- with the model's record of its training photos (``train_part.json``),
  the test images that are those photos, or near copies of them, hashed as
  the loader decodes them (one decode of each photo).

:func:`write_report` turns the report into PNG figures, one self-contained
HTML page (figures inlined as base64) and ``report.json``.
:func:`evaluate_folder` does both for a model directory and a test folder, as
``hybridclf evaluate`` does.

The package's modules, one concept each:

- ``_metrics``: the scores of the predictions (:func:`reliability_bins`,
  the summary and per-class metrics, the block importance, the open-set
  shares);
- ``_evaluate``: the one pass over the test images (:func:`evaluate_model`);
- ``_gallery``: the error gallery, each misclassified image with its top
  guesses and nearest training photos;
- ``_page``: the report's self-contained HTML page;
- ``_report``: the report files (:func:`write_report`,
  :func:`evaluate_folder`).
"""

from ._evaluate import evaluate_model
from ._metrics import (
    FEW_TEST_IMAGES,
    accuracy_interval,
    few_test_images,
    reliability_bins,
)
from ._report import evaluate_folder, write_report

__all__ = [
    "FEW_TEST_IMAGES",
    "accuracy_interval",
    "evaluate_folder",
    "evaluate_model",
    "few_test_images",
    "reliability_bins",
    "write_report",
]
