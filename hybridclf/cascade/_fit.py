"""Fitting a :class:`CascadePipeline`: the full pipeline, then the cheap stage.

:func:`fit_cascade` loads the photos once, computes the grouped out-of-fold
answers of both stages (:mod:`hybridclf.cascade._threshold`), fits the steps
after ``load`` as ``Pipeline.fit`` would (:func:`fit_steps`, reusing the
features of the blocks computed for the folds), and ends with
:func:`fit_cheap_stage`: the cheap classifier on the cheap blocks' columns,
the gate and the threshold. These are the bodies of the methods ``fit`` and
``fit_cheap_stage`` of :class:`~hybridclf.cascade.CascadePipeline`, which
document them; ``pipe`` is the pipeline.
"""

import logging
import warnings

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.utils.validation import check_memory

from ..grouped_fit import _keyed_by_content
from ..pipeline import (
    fit_classifier,
    get_block_scaler,
    get_classifier,
    get_loader,
    get_sampler,
    iter_feature_blocks,
    view_groups,
)
from ..utils._validation import _get_output_config, _print_elapsed_time
from ..view_sampling import ViewAugmenter, decide_views
from ._stages import block_widths, in_gate
from ._threshold import (
    block_columns,
    fixed_features,
    fixed_rows,
    ood_limits,
    out_of_fold_stages,
    resample,
    scaled_folds,
    select_threshold,
)

__all__ = ["cheap_blocks", "fit_cascade", "fit_cheap_stage", "fit_steps",
           "fit_without_early_exit"]

# the name of the module these functions came from, which logging configurations
# may name
logger = logging.getLogger("hybridclf.cascade._pipeline")

#: The out-of-fold statistics kept as attributes (``<key>_``) and in model.json.
_STATS = ("threshold", "early_share", "cheap_accuracy", "early_accuracy",
          "full_accuracy", "cascade_accuracy", "worst_fold_loss")


def cheap_blocks(pipe):
    """The ``cheap_features`` of ``pipe``, checked against its feature blocks."""
    names = [name for name, _ in iter_feature_blocks(pipe)]
    cheap = tuple(pipe.cheap_features)
    if not cheap or set(cheap) - set(names) or set(names) <= set(cheap):
        raise ValueError(
            "The 'cheap_features' parameter of CascadePipeline must name some "
            f"but not all of the feature blocks {names}. Got {cheap!r} instead; "
            + _cheap_features_fix(names)
        )
    return cheap


def _cheap_features_fix(names):
    """How to fix ``cheap_features`` for the feature blocks ``names``.

    The example offered is one that would pass: the blocks that are not a
    CNN or SIFT (the costly ones a cascade answers without). A pipeline of
    cheap blocks only has no second stage worth waiting for: it is told to
    drop the cascade instead.
    """
    cheap = [name for name in names if name not in ("cnn", "sift")]
    if cheap and len(cheap) < len(names):
        return f"pass e.g. cheap_features={tuple(cheap)!r}."
    return ("a cascade needs costly blocks (e.g. 'cnn') beside cheap ones: "
            "add one, or build the pipeline without a cascade "
            "(make_hybrid_pipeline(..., cascade=False)).")


def _check_probabilities(clf):
    """Refuse, before any work, a ``clf`` step without ``predict_proba``."""
    if not hasattr(clf, "predict_proba"):
        raise TypeError(
            "The 'clf' step of CascadePipeline must have predict_proba: the "
            "cascade compares the two stages' probabilities. Got "
            f"{type(clf).__name__}, which has none; wrap it in "
            "sklearn.calibration.CalibratedClassifierCV, or build the pipeline "
            "without a cascade (make_hybrid_pipeline(..., cascade=False)).")


def fit_cascade(pipe, X, y, groups, params):
    """Fit the pipeline, the cheap stage and the threshold.

    See :meth:`CascadePipeline.fit`; ``params`` is its ``**params``.
    """
    _refuse_fit_params(params)
    cheap = cheap_blocks(pipe)
    _check_probabilities(get_classifier(pipe))
    y = np.asarray(y)
    memory = check_memory(pipe.memory)
    loader = get_loader(pipe)
    with _timed(pipe, 0):
        images = X if loader is None else memory.cache(_load)(
            loader.fit(X, y), _keyed_by_content(X))
        images = np.asarray(images)
    given = groups is not None
    groups = np.arange(len(y)) if groups is None else np.asarray(groups)
    n_splits = min(pipe.cv, len(np.unique(groups)),
                   int(np.unique(y, return_counts=True)[1].min()))
    if n_splits < 2:
        return fit_without_early_exit(pipe, images, y)
    splits = list(StratifiedGroupKFold(
        n_splits, shuffle=True, random_state=pipe.random_state,
    ).split(images, y, groups))
    blocks = list(iter_feature_blocks(pipe))
    sampler = get_sampler(pipe)
    # with the pipeline's memory, the loaded images and these features are
    # cached as Pipeline.fit caches its steps' (a search over the classifier)
    with _timed(pipe, what=f"{len(splits)} threshold folds' features"):
        fixed = fixed_features(images, blocks, memory) if sampler is None or (
            isinstance(sampler, ViewAugmenter)) else {}
        # the classifiers' leave-one-out leaves a photo out with its
        # near-duplicates; the folds add views exactly when the final fit on
        # all of y does, so the threshold is learned on models like the one
        # it is applied to
        folds = list(scaled_folds(images, y, blocks, splits,
                                  decide_views(sampler, y), fixed,
                                  groups if given else None))
    train_x, train_y, view_rows = fit_steps(pipe, images, y, fixed,
                                            groups if given else None)
    with _timed(pipe, what="cheap stage and threshold"):
        oof = out_of_fold_stages(
            folds, len(y), get_classifier(pipe).classes_, block_widths(pipe),
            cheap, get_classifier(pipe), pipe.cheap_classifier_template())
        return pipe.fit_cheap_stage(train_x, train_y, y, oof, groups=view_rows)


def _timed(pipe, step=None, what=None):
    """With ``verbose``, print the time of step ``step`` (index) or of ``what``.

    As ``Pipeline.fit`` does for its steps: "[CascadePipeline] ... (step 1 of
    4) Processing load, total= 0.2s".
    """
    message = None
    if pipe.verbose:
        message = pipe._log_message(step) if step is not None else (
            f"Processing {what}")
    return _print_elapsed_time("CascadePipeline", message)


def _load(loader, X):
    """The fitted ``loader``'s images of ``X``; cached with the pipeline's memory.

    ``X`` is keyed by its files' content (``_keyed_by_content``), as the
    ``load`` step of a :class:`~hybridclf.grouped_fit.GroupedPipeline` is.
    """
    return loader.transform(X)


def _refuse_fit_params(params):
    """Refuse fit parameters of the steps before any work, saying what works.

    The cascade fits its steps, the threshold folds and the cheap stage
    itself, none of them with fit parameters. The message said "set them
    with set_params instead", which is no way to give ``sample_weight`` (one
    weight per photo, not a setting); it came after the features of every
    threshold fold. ``class_weight`` is a setting of the classifier, and
    :class:`~hybridclf.grouped_fit.GroupedPipeline` (``cascade=False``)
    routes per-photo weights to every view of the photo.
    """
    if not params:
        return
    weights = sorted(p for p in params if p.endswith("__sample_weight"))
    advice = (
        " Per-photo weights are not routed through the cascade's threshold "
        "folds and cheap stage: fit the pipeline without the cascade "
        "(make_hybrid_pipeline(cascade=False)), which takes "
        f"{weights[0]}= and gives each view its photo's weight; or weight "
        "the classes, a setting: set_params(clf__class_weight='balanced') "
        "for the full model, and cheap_classifier=RidgeSoftmaxClassifier("
        "class_weight='balanced') for the cheap stage." if weights else
        " Settings of a step go through set_params before fit "
        "(pipe.set_params(step__param=value)).")
    raise TypeError(
        f"CascadePipeline.fit takes no fit parameters of its steps; got "
        f"{sorted(params)}.{advice}")


def fit_without_early_exit(pipe, images, y):
    """Too few photos for out-of-fold answers: fit the full model only."""
    # stacklevel: this function, fit_cascade, CascadePipeline.fit, its
    # _fit_context wrapper (parameter validation), its caller
    warnings.warn(
        "CascadePipeline.fit needs at least 2 groups and 2 photos per class "
        "to choose its threshold out of fold; every photo will run every "
        "block. Add photos, or build the pipeline with cascade=False.",
        UserWarning, stacklevel=5)
    fit_steps(pipe, images, y, {})
    pipe.cheap_classifier_, pipe.ood_limits_ = None, None
    for key in _STATS:
        setattr(pipe, f"{key}_", np.inf if key == "threshold" else np.nan)
    pipe.worst_fold_loss_ = 0
    return pipe


def fit_steps(pipe, images, y, fixed, groups=None):
    """Fit the steps after ``load`` as ``Pipeline.fit`` would.

    Returns the features, their labels and the image each row was made
    from, or with ``groups`` (near-identical photos share one) its group
    (:func:`~hybridclf.pipeline.view_groups`; None when the sampler added no
    rows and no ``groups`` were given).

    The blocks of ``fixed`` take their fitted extractor from there and
    fit only their scaler: no photo is extracted twice.
    """
    sampler, n_images, loaded = get_sampler(pipe), len(y), images
    blocks = list(iter_feature_blocks(pipe))
    if sampler is not None:
        with _timed(pipe, 1):
            images, y = resample(sampler, images, y, blocks, fixed)
    groups = view_groups(sampler, n_images, len(y), groups)
    parts = []
    with _timed(pipe, 2):
        for name, block in blocks:
            if name in fixed:
                block.steps[0] = (block.steps[0][0], fixed[name][0])
                parts.append(np.asarray(get_block_scaler(block).fit_transform(
                    _as_transformed(fixed[name][0], fixed_rows(
                        fixed, name, np.arange(n_images), sampler, loaded)))))
            else:
                parts.append(block.fit_transform(images, y))
    train_x = np.hstack(parts).astype(np.float32)
    with _timed(pipe, 3):
        fit_classifier(get_classifier(pipe), train_x, y, groups)
    return train_x, y, groups


def _as_transformed(extract, table):
    """``table``, ``extract``'s features, in the container its ``transform`` gives.

    With ``set_output(transform="pandas")`` (on the pipeline or globally) the
    block's scaler sees a named table at prediction, so it is fitted on one:
    fitted on an array, it warned on every prediction that "X has feature
    names, but StandardScaler was fitted without feature names".
    """
    if _get_output_config("transform", extract)["dense"] != "pandas":
        return table
    import pandas as pd

    return pd.DataFrame(table, columns=extract.get_feature_names_out())


def fit_cheap_stage(pipe, train_x, train_y, y_oof, oof, groups=None):
    """Fit the cheap stage on a fitted pipeline's features; set the threshold.

    See :meth:`CascadePipeline.fit_cheap_stage`.
    """
    cheap = cheap_blocks(pipe)
    blocks = block_widths(pipe)
    pipe.cheap_classifier_ = fit_classifier(
        pipe.cheap_classifier_template(),
        np.asarray(train_x)[:, block_columns(blocks, cheap)], train_y, groups)
    pipe.ood_limits_ = ood_limits(
        oof["cheap_ood"], [name for name, _ in blocks if name in cheap],
        pipe.ood_quantile)
    stats = select_threshold(
        y_oof, oof["full_proba"], oof["cheap_proba"],
        get_classifier(pipe).classes_, tolerance=pipe.tolerance,
        fold=oof["fold"], eligible=in_gate(pipe, oof["cheap_ood"]))
    for key in _STATS:
        setattr(pipe, f"{key}_", stats[key])
    logger.info(
        "Cascade: threshold %.3f answers %.0f%% of the photos early; out of "
        "fold accuracy %.3f (full %.3f, cheap %.3f)", pipe.threshold_,
        100 * pipe.early_share_, pipe.cascade_accuracy_, pipe.full_accuracy_,
        pipe.cheap_accuracy_)
    return pipe
