"""What :func:`~hybridclf.training.train_model` returns, and its metrics."""

import warnings
from dataclasses import dataclass, field

import numpy as np
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

from ..label_issues import LABEL_ISSUES_FILE

__all__ = ["TrainingResult", "plain", "scores"]


def scores(y_true, y_pred):
    """Accuracy, balanced accuracy and macro-F1 of predictions, as floats."""
    with warnings.catch_warnings():
        # a fold without an image of a class (a class of few groups): the
        # balanced accuracy averages the classes tested, as in evaluate
        warnings.filterwarnings("ignore", "y_pred contains classes not in y_true")
        balanced = float(balanced_accuracy_score(y_true, y_pred))
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": balanced,
        "f1_macro": float(f1_score(y_true, y_pred, average="macro")),
    }


@dataclass
class TrainingResult:
    """What :func:`train_model` returns.

    Attributes
    ----------
    pipeline : Pipeline
        The final pipeline, fitted on the training part.

    classes : list
        The class labels, in the order of ``predict_proba``'s columns.

    train_indices, test_indices : ndarray of int
        The two parts of the grouped split (``test_indices`` is empty with
        ``test_size=0``).

    scored_test_indices : ndarray of int or None
        The rows of ``test_indices`` that ``test_metrics`` score: the photos,
        not their copies (:func:`~hybridclf.training.training_files` records
        their files, so that ``hybridclf evaluate`` scores them again).

    groups : ndarray of int
        The group id of every image.

    cv_scores : dict
        Per metric (accuracy, balanced_accuracy, f1_macro): ``mean``, ``std``
        and ``folds``, for the chosen parameters (after a search, on the
        folds that chose them: optimistic, see ``search``).

    test_metrics : dict
        The same metrics on the test part (empty without one).

    test_part : dict
        How far to trust them: ``n_images``, ``n_groups`` (the groups of
        near-identical photos they fall in), the 95% ``accuracy_interval``
        (Wilson's, :func:`~hybridclf.evaluation.accuracy_interval`, each
        group counted once), ``few_test_images`` (classes with fewer than
        10 test images, and how many),
        ``untested_classes`` (classes without a test image, which the test
        metrics do not score) and, when the test part holds copies of its
        photos (``origins``, or the same file twice), ``n_copies``: held out
        with their photos, not scored. Empty without a test part.

    best_params : dict
        Parameters chosen by the search (empty with ``search="none"``).

    search : dict
        ``kind``, ``n_candidates``, ``n_fits``, ``seconds``, the mean CV
        accuracy of each candidate, and ``cv_scores_optimistic`` (True): the
        search chose the parameters by their scores on the same folds as
        ``cv_scores``, which are therefore biased upward; ``test_metrics``,
        on photos the search never saw, are the honest figure. Empty without
        a search.

    open_set : dict
        ``proba_threshold``, ``novelty`` (see
        :func:`~hybridclf.training.novelty_threshold`) and ``ood_thresholds``
        (per block, the rule of older models), learned from out-of-fold
        predictions; see :func:`hybridclf.prediction.predict_open_set`.

    oof_proba : ndarray of shape (n_train, n_classes)
        Out-of-fold probabilities on the training part.

    label_issues : dict of ndarray
        The training images whose label the out-of-fold probabilities
        contradict, most suspicious first (see
        :func:`hybridclf.label_issues.find_label_issues`): ``index`` (into the
        images given to :func:`train_model`), ``given_label``,
        ``suggested_label`` and ``score``; and ``n_checked`` (photos checked;
        copies of a photo are not)
        and ``not_checked`` (the classes a fold had no image of to learn from,
        whose images are not checked). The test part is not checked.

    timings : dict
        Seconds spent: ``groups``, ``features_cv``, ``search``,
        ``label_issues``, ``final_fit``, ``novelty``, ``test``, ``total``.

    feature_cache : dict
        With a feature cache: ``n_images`` (train and test parts) and
        ``n_computed`` (images whose features some block computed; the others
        came from the cache). Empty without one.

    neighbours : EmbeddingIndex or None
        The embeddings of the training images and their degraded views, for
        the novelty check and the nearest training photos of an answer (with
        their file names and, unless ``thumbnails=False``, thumbnails);
        :func:`~hybridclf.training.training_files` gives it to
        :func:`~hybridclf.save_model` as ``neighbours.npz``. None for a
        pipeline without a ``"cnn"`` block, whose open set keeps the per-block
        OOD check.
    """

    pipeline: object
    classes: list
    train_indices: np.ndarray
    test_indices: np.ndarray
    groups: np.ndarray
    cv_scores: dict
    test_metrics: dict
    best_params: dict = field(default_factory=dict)
    search: dict = field(default_factory=dict)
    open_set: dict = field(default_factory=dict)
    oof_proba: np.ndarray = None
    label_issues: dict = None
    timings: dict = field(default_factory=dict)
    feature_cache: dict = field(default_factory=dict)
    neighbours: object = None
    test_part: dict = field(default_factory=dict)
    scored_test_indices: np.ndarray = None

    def metadata(self):
        """The entries of ``model.json`` for :func:`~hybridclf.save_model`.

        Returns
        -------
        metadata : dict
            ``metrics``, ``test_part``, ``cv_scores``, ``best_params``,
            ``search``, ``open_set``, ``label_issues`` (how many training images were
            flagged) and ``training`` (sizes and timings).
        """
        metadata = {
            "metrics": self.test_metrics,
            **({"test_part": self.test_part} if self.test_part else {}),
            "cv_scores": self.cv_scores,
            "best_params": {k: plain(v) for k, v in self.best_params.items()},
            "search": {k: v for k, v in self.search.items() if k != "candidates"},
            "open_set": self.open_set,
            "training": {
                "n_train": int(len(self.train_indices)),
                "n_test": int(len(self.test_indices)),
                "n_groups": int(len(np.unique(self.groups))),
                **{f"seconds_{k}": round(v, 2) for k, v in self.timings.items()},
                **({"feature_cache": self.feature_cache} if self.feature_cache
                   else {}),
            },
        }
        if self.label_issues is not None:
            metadata["label_issues"] = {
                "file": LABEL_ISSUES_FILE,
                "n_flagged": int(len(self.label_issues["index"])),
                "n_checked": int(self.label_issues.get(
                    "n_checked", len(self.train_indices))),
            }
            if self.label_issues.get("not_checked"):
                metadata["label_issues"]["not_checked"] = list(
                    self.label_issues["not_checked"])
        return metadata


def plain(value):
    """A numpy scalar as a Python one (for JSON); anything else unchanged."""
    return value.item() if hasattr(value, "item") else value
