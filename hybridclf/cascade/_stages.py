"""Staged prediction of a :class:`CascadePipeline`: cheap blocks first.

:func:`iter_stages` runs the cheap blocks on every photo, answers the photos
that the cheap classifier is sure of and whose cheap blocks are within the
gate (:func:`cheap_stage`), and runs the remaining blocks and the full
classifier on the others only. :func:`predict_stages` gathers the stages
into one table; :func:`stages_from_features` gives the same answers from a
table with every block computed. These are the bodies of the methods of
:class:`~hybridclf.cascade.CascadePipeline` of the same names, which
document them; ``pipe`` is the fitted pipeline.
"""

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ..pipeline import get_classifier, get_loader, iter_feature_blocks
from ..prediction import block_ood_scores, transform_blocks
from ._ahead import start_ahead
from ._threshold import block_columns

__all__ = ["block_widths", "cheap_stage", "early_proba", "in_gate", "iter_stages",
           "predict_stages", "stages_from_features"]


def block_widths(pipe):
    """The name and the number of columns of each feature block of ``pipe``."""
    return [(name, int(block[-1].n_features_in_) if hasattr(block, "steps")
             else int(len(block.get_feature_names_out())))
            for name, block in iter_feature_blocks(pipe)]


def in_gate(pipe, cheap_ood):
    """Whether each photo's cheap-block OOD scores are within the gate."""
    if pipe.ood_limits_ is None:
        return np.ones(len(cheap_ood), dtype=bool)
    limits = np.array(list(pipe.ood_limits_.values()))
    return np.all(cheap_ood <= limits, axis=1)


def cheap_stage(pipe, cheap_x, min_confidence=None):
    """The cheap stage's probabilities, and which photos it answers.

    A photo is answered early when its cheap top probability reaches
    ``threshold_`` and ``min_confidence`` (the caller's confidence
    threshold, one or one per photo), and its cheap blocks are within the
    gate. A photo the cheap stage is less sure of than the caller asks goes
    on to the full model, which may be sure enough; answered early, it
    would be "low confidence" on the cheap stage's word alone.
    """
    if pipe.cheap_classifier_ is None:  # fitted on too few photos
        n_classes = len(get_classifier(pipe).classes_)
        return (np.full((len(cheap_x), n_classes), 1.0 / n_classes),
                np.zeros(len(cheap_x), dtype=bool))
    cheap_proba = pipe.cheap_classifier_.predict_proba(cheap_x)
    needed = pipe.threshold_ if min_confidence is None else np.maximum(
        pipe.threshold_, np.asarray(min_confidence, dtype=np.float64))
    early = cheap_proba.max(axis=1) >= needed
    if pipe.ood_limits_ is not None:
        cheap = [(name, width) for name, width in block_widths(pipe)
                 if name in pipe.cheap_features]
        early &= in_gate(pipe, block_ood_scores(cheap_x, cheap))
    return cheap_proba, early


def early_proba(pipe, cheap_proba):
    """The cheap stage's probabilities in the columns of ``classes_``."""
    classes = get_classifier(pipe).classes_
    proba = np.zeros((len(cheap_proba), len(classes)))
    proba[:, np.searchsorted(classes, pipe.cheap_classifier_.classes_)] = (
        cheap_proba)
    return proba


def iter_stages(pipe, X, *, full=None, min_confidence=None):
    """The cascade's answers stage by stage: the early answers first.

    See :meth:`CascadePipeline.iter_stages`. For one or two photos the
    CNN's first layers start beside the cheap stage (:func:`start_ahead`)
    and stop once every photo is answered early.
    """
    check_is_fitted(pipe, "threshold_")
    loader = get_loader(pipe)
    images = np.asarray(X if loader is None else loader.transform(X))
    blocks = list(iter_feature_blocks(pipe))
    cheap = [(name, block) for name, block in blocks
             if name in pipe.cheap_features]
    rest = [(name, block) for name, block in blocks
            if name not in pipe.cheap_features]
    ahead = start_ahead([block for _, block in rest], images)
    try:
        yield from _stages(pipe, images, blocks, cheap, rest, ahead, full,
                           min_confidence)
    finally:
        if ahead is not None:
            ahead.stop()  # no-op once its features were taken


def _stages(pipe, images, blocks, cheap, rest, ahead, full, min_confidence):
    """The body of :func:`iter_stages`; ``ahead`` from :func:`start_ahead` or None."""
    # the cheap blocks on this thread alone while the CNN starts on another:
    # two threads for the cheap parts gained little, and the second one
    # would take the core from the CNN's first layers
    parts = dict(zip([name for name, _ in cheap], transform_blocks(
        [block for _, block in cheap], images,
        n_threads=None if ahead is None else 1)))
    cheap_proba, early = cheap_stage(
        pipe, np.hstack([parts[name] for name, _ in cheap]), min_confidence)
    if full is not None:
        early &= ~np.asarray(full, dtype=bool)
    widths = dict(block_widths(pipe))
    rows = np.flatnonzero(early)
    if ahead is not None and len(rows) == len(images):
        ahead.stop()  # every photo answered here: the CNN is not wanted
    if len(rows):
        table = np.hstack([
            parts[name][rows] if name in parts
            else np.full((len(rows), widths[name]), np.nan, dtype=np.float32)
            for name, _ in blocks])
        yield rows, table, early_proba(pipe, cheap_proba[rows]), True
    rows = np.flatnonzero(~early)
    if len(rows):
        late = None if ahead is None else ahead.result(rows)
        if late is None:
            late = transform_blocks([block for _, block in rest], images[rows])
        late = dict(zip([name for name, _ in rest], late))
        table = np.hstack([parts[name][rows] if name in parts else late[name]
                           for name, _ in blocks])
        yield rows, table, get_classifier(pipe).predict_proba(table), False


def predict_stages(pipe, X, *, full=None, min_confidence=None):
    """Features, probabilities and early exits of every photo.

    See :meth:`CascadePipeline.predict_stages`.
    """
    # before block_widths, which reads the fitted scalers
    check_is_fitted(pipe, "threshold_")
    n_samples = len(X)
    features = np.zeros((n_samples, sum(w for _, w in block_widths(pipe))),
                        dtype=np.float32)
    proba = np.zeros((n_samples, len(get_classifier(pipe).classes_)))
    early = np.zeros(n_samples, dtype=bool)
    for rows, table, stage_proba, stage_early in pipe.iter_stages(
            X, full=full, min_confidence=min_confidence):
        features[rows], proba[rows], early[rows] = table, stage_proba, stage_early
    return features, proba, early


def stages_from_features(pipe, features, full_proba):
    """The cascade's answers from the full feature table.

    See :meth:`CascadePipeline.stages_from_features`.
    """
    check_is_fitted(pipe, "threshold_")
    columns = block_columns(block_widths(pipe), tuple(pipe.cheap_features))
    cheap_proba, early = cheap_stage(pipe, np.asarray(features)[:, columns])
    proba = np.array(full_proba, dtype=np.float64)
    if early.any():
        proba[early] = early_proba(pipe, cheap_proba[early])
    return proba, early
