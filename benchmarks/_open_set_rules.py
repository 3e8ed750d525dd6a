"""The open-set rules that bench_open_set.py compares, on cached features.

:class:`CachedModel` fits what ``train_model`` fits for the default pipeline
(scalers, ridge, embedding index with its views, thresholds from grouped
out-of-fold scores) on per-image features computed once; :meth:`CachedModel.parts`
gives what every rule needs. A rule maps those parts to

- a **knob score**: the AUROC ranks by it. It traces the rule's ROC curve as
  its confidence threshold (the documented knob) moves while the novelty or
  OOD check stays at its default threshold: an image that check rejects ranks
  first whatever the knob. For "novelty only", the novelty score itself.
- the **decision** at the default thresholds: True for "unknown".

``RULES`` are the columns of the benchmark; ``DESIGN`` the alternatives that
were measured while choosing the rule of ``predict`` ("after").
"""

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.preprocessing import StandardScaler

from hybridclf import make_hybrid_pipeline
from hybridclf.neighbours import index_with_views, novelty_scores
from hybridclf.pipeline import DEFAULT_FEATURES
from hybridclf.prediction import block_ood_scores, confidence_limits
from hybridclf.training import novelty_threshold

BLOCKS = list(DEFAULT_FEATURES)
#: train_model's default open_set_quantile, and the one before issue 18's fix
QUANTILE, PREVIOUS_QUANTILE = 0.995, 0.99
_FIRST = 1e6  # the knob score of an image the fixed check rejects


class CachedModel:
    """Scalers, classifier, index and thresholds fitted as train_model fits them.

    Parameters
    ----------
    feats : dict of str to ndarray
        Raw features of every image per block (``"cnn"`` is the embedding).

    views : list of ndarray
        The CNN embedding of each degraded view of every image.

    rows, y, groups : ndarray
        The training rows, their labels and groups.

    quantile : float
        ``open_set_quantile``.
    """

    def __init__(self, feats, views, rows, y, groups, quantile):
        self.widths = [(b, feats[b].shape[1]) for b in BLOCKS]
        self.scalers = [StandardScaler().fit(feats[b][rows]) for b in BLOCKS]
        # with the groups, as train_model fits it: the ridge's leave-one-out
        # leaves a photo out with its near-duplicates
        self.clf = clone(make_hybrid_pipeline()["clf"]).fit(
            self.scale(feats, rows), y, groups=groups)
        self.index = index_with_views(feats["cnn"][rows], [v[rows] for v in views], y)
        self._thresholds(feats, views, rows, y, groups, quantile)

    def scale(self, feats, rows=slice(None)):
        return np.hstack([s.transform(feats[b][rows])
                          for s, b in zip(self.scalers, BLOCKS)]).astype(np.float32)

    def _thresholds(self, feats, views, rows, y, groups, quantile):
        splitter = StratifiedGroupKFold(5, shuffle=True, random_state=0)
        splits = list(splitter.split(rows, y, groups))
        oof_top, correct, oof_ood = [], [], []
        for tr, te in splits:
            inner = CachedModel.__new__(CachedModel)
            inner.scalers = [StandardScaler().fit(feats[b][rows[tr]]) for b in BLOCKS]
            a, b = inner.scale(feats, rows[tr]), inner.scale(feats, rows[te])
            clf = clone(self.clf).fit(a, y[tr], groups=groups[tr])
            proba = clf.predict_proba(b)
            oof_top.append(proba.max(axis=1))
            correct.append(clf.classes_[proba.argmax(axis=1)] == y[te])
            oof_ood.append(block_ood_scores(b, self.widths))
        top, correct = np.concatenate(oof_top), np.concatenate(correct)
        self.oof_top = top
        self.proba_threshold = float(np.quantile(top[correct], 1 - quantile))
        self.ood_thresholds = np.quantile(np.vstack(oof_ood), quantile, axis=0)
        self.novelty = novelty_threshold(feats["cnn"][rows], [v[rows] for v in views],
                                         splits, quantile=quantile)

    def parts(self, feats):
        """What the rules need: top probability, class, novelty and OOD scores."""
        X = self.scale(feats)
        proba = self.clf.predict_proba(X)
        return {
            "top": proba.max(axis=1),
            "pred": self.clf.classes_[proba.argmax(axis=1)],
            # over their thresholds: above 1 means unknown
            "novelty": (novelty_scores(self.index, feats["cnn"], k=self.novelty["k"])
                        / self.novelty["threshold"]),
            "ood": (block_ood_scores(X, self.widths) / self.ood_thresholds).max(axis=1),
            "threshold": self.proba_threshold,
            "oof_top": self.oof_top,
        }


def _confidence_or(guard, top, threshold):
    """The plain confidence check beside a fixed check (``guard``)."""
    return 1 - top + _FIRST * guard, (top < threshold) | guard


def before(p):
    """Issue 18's starting point: low confidence, or any block's OOD score."""
    return _confidence_or(p["ood"] > 1, p["top"], p["threshold"])


def previous(p):
    """The first fix (fbea326): low confidence, or unlike any training photo."""
    return _confidence_or(p["novelty"] > 1, p["top"], p["threshold"])


def confidence_only(p):
    return 1 - p["top"], p["top"] < p["threshold"]


def novelty_only(p):
    return p["novelty"], p["novelty"] > 1


def after(p):
    """``predict`` now: unlike any training photo, or confidence under the
    threshold scaled by the novelty (:func:`confidence_limits`)."""
    guard = p["novelty"] > 1
    limits = confidence_limits(p["threshold"], p["novelty"])
    scale = np.clip(p["novelty"], 1e-9, 1.0)
    return -p["top"] / scale + _FIRST * guard, (p["top"] < limits) | guard


def after_sqrt(p):
    """``after`` with the threshold scaled by the square root of the novelty."""
    guard = p["novelty"] > 1
    scale = np.sqrt(np.clip(p["novelty"], 1e-9, 1.0))
    unknown = (p["top"] < p["threshold"] * scale) | guard
    return -p["top"] / scale + _FIRST * guard, unknown


def lower_threshold(p):
    """``previous`` with the threshold at 0.5% of all out-of-fold photos."""
    return _confidence_or(p["novelty"] > 1, p["top"], np.quantile(p["oof_top"], 0.005))


def hard_gate(p):
    """Low confidence counts only past half the novelty threshold."""
    guard = p["novelty"] > 1
    gated = p["novelty"] > 0.5
    knob = np.where(gated, 1 - p["top"], -1.0) + _FIRST * guard
    return knob, (gated & (p["top"] < p["threshold"])) | guard


#: the benchmark's columns: (rule, model configuration)
RULES = {
    "before": (before, "previous"),
    "previous": (previous, "previous"),
    "confidence only": (confidence_only, "default"),
    "novelty only": (novelty_only, "default"),
    "after": (after, "default"),
}
#: the model configurations: (views of the index, open_set_quantile); the views
#: are the entries of hybridclf.neighbours.VIEWS, then the extra ones
CONFIGS = {
    "default": ((0, 1, 2, 3), QUANTILE),
    "previous": ((0, 1, 2), PREVIOUS_QUANTILE),
    "no -10 view": ((0, 1, 2), QUANTILE),
    "quantile 0.99": ((0, 1, 2, 3), PREVIOUS_QUANTILE),
    "brightness view": ((0, 1, 2, 3, 4), QUANTILE),
}
#: alternatives measured while choosing "after": (label, rule, configuration)
DESIGN = [
    ("previous rule, confidence threshold at 0.5% of all out-of-fold photos",
     lower_threshold, "default"),
    ("previous rule, index with the -10 degree view, quantile 0.995",
     previous, "default"),
    ("low confidence only past half the novelty threshold", hard_gate, "default"),
    ("after, without the -10 degree view", after, "no -10 view"),
    ("after, quantile 0.99", after, "quantile 0.99"),
    ("after, with a brightened view (+0.15) in the index", after, "brightness view"),
    ("after, threshold scaled by the square root of the novelty", after_sqrt,
     "default"),
    ("after", after, "default"),
]
