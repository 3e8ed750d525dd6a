"""Training a hybrid pipeline honestly: grouped split, cross-validation, search.

:func:`train_model` is what ``hybridclf train`` runs:

1. a test part is split off by **groups** of near-identical images
   (:func:`duplicate_groups` or a CSV read by :func:`read_groups_csv`), so no
   copy of a test image is trained on (:func:`grouped_train_test_split`),
   drawn from the images' content so that adding images moves few others;
2. the training part is cross-validated with ``StratifiedGroupKFold``. The
   features of each fold are computed **once** and kept in memory; the
   default classifier and every candidate of a classifier search are fitted
   on them, so a search over 20 values of ``C`` costs 20 small fits per fold,
   not 20 feature extractions. A grid over feature parameters falls back to
   scikit-learn's searches with the pipeline's ``memory`` cache;
3. the out-of-fold predictions set the open-set thresholds (see
   :mod:`hybridclf.prediction`) and flag likely wrong labels (see
   :mod:`hybridclf.label_issues`); with a CNN block, the training photos are
   embedded into the index of the novelty check (:func:`novelty_threshold`);
4. the final pipeline is fitted on the whole training part and scored on the
   test part.

:func:`train_folder` is the whole of ``hybridclf train``: it finds the
groups (:func:`find_training_groups`), builds the pipeline
(:func:`make_training_pipeline`), trains it and saves it with
:func:`training_metadata` and the files of :func:`training_files`.
:class:`FeatureCache` keeps the features of single photos on disk (and the
CNN embeddings of their views for the novelty index, and what the duplicate
search measured of them), so training again after adding photos computes only
the new ones.
"""

from ._feature_cache import FeatureCache, default_feature_cache_dir
from ._groups import duplicate_groups, join_identical_files, read_groups_csv
from ._novelty import novelty_threshold
from ._result import TrainingResult
from ._search import SEARCH_GRIDS
from ._split import data_fingerprint, grouped_train_test_split
from ._train import train_model
from ._workflow import (
    QUICK_CV_FOLDS,
    FolderTraining,
    augment_origins,
    find_training_groups,
    make_training_pipeline,
    train_folder,
    training_files,
    training_metadata,
)

__all__ = [
    "QUICK_CV_FOLDS",
    "SEARCH_GRIDS",
    "FeatureCache",
    "FolderTraining",
    "TrainingResult",
    "augment_origins",
    "data_fingerprint",
    "default_feature_cache_dir",
    "duplicate_groups",
    "find_training_groups",
    "grouped_train_test_split",
    "join_identical_files",
    "make_training_pipeline",
    "novelty_threshold",
    "read_groups_csv",
    "train_folder",
    "train_model",
    "training_files",
    "training_metadata",
]
