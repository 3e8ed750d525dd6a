"""A calibrated cascade: cheap feature blocks answer the easy photos alone.

:class:`CascadePipeline` (``make_hybrid_pipeline(cascade=True)``) runs the
cheap blocks (HOG, LBP, colour) first and answers every photo its cheap
classifier is sure of, and that looks like the training photos to those
blocks; only the other photos run the CNN and the full classifier. Its
threshold and gate are learned in ``fit`` from grouped out-of-fold
predictions of both stages (:func:`out_of_fold_stages`,
:func:`select_threshold`, :func:`ood_limits`).
"""

from ._pipeline import CHEAP_FEATURES, CascadePipeline, is_cascade
from ._threshold import (
    MAX_FOLD_LOSS,
    block_columns,
    fixed_features,
    ood_limits,
    out_of_fold_stages,
    scaled_folds,
    select_threshold,
)

__all__ = [
    "CHEAP_FEATURES",
    "MAX_FOLD_LOSS",
    "CascadePipeline",
    "block_columns",
    "fixed_features",
    "is_cascade",
    "ood_limits",
    "out_of_fold_stages",
    "scaled_folds",
    "select_threshold",
]
