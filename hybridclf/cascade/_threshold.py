"""Choosing a cascade's threshold and gate from out-of-fold predictions.

Both stages of the cascade are fitted on the training part of each grouped
fold and predict its held-out part (:func:`out_of_fold_stages`); from these
out-of-fold answers, :func:`select_threshold` picks the lowest confidence at
which the cheap stage may answer alone and :func:`ood_limits` the range of
the cheap blocks' out-of-distribution scores within which it may (the gate).
"""

import joblib
import numpy as np
from sklearn.base import clone
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_memory

from ..pipeline import fit_classifier, get_block_extractor, view_groups
from ..prediction import block_ood_scores
from ..view_sampling import ViewAugmenter, make_view

__all__ = ["MAX_FOLD_LOSS", "block_columns", "fixed_features", "ood_limits",
           "out_of_fold_stages", "scaled_folds", "select_threshold"]

#: The most photos the cascade may lose against the full model on one
#: out-of-fold fold (photos the cheap stage gets wrong and the full model right).
MAX_FOLD_LOSS = 1


def block_columns(blocks, names):
    """Column indices of the blocks ``names`` in a table of ``blocks``.

    Parameters
    ----------
    blocks : list of (str, int)
        Block names and widths in column order, as from
        :func:`hybridclf.prediction.feature_blocks`.

    names : sequence of str
        The blocks wanted.

    Returns
    -------
    columns : ndarray of int
        In the order of ``blocks``.

    Examples
    --------
    >>> from hybridclf.cascade import block_columns
    >>> block_columns([("cnn", 3), ("hog", 2)], ["hog"])
    array([3, 4])
    """
    columns, start = [], 0
    for name, width in blocks:
        if name in names:
            columns.extend(range(start, start + width))
        start += width
    return np.asarray(columns, dtype=np.intp)


def select_threshold(y, full_proba, cheap_proba, classes, *, tolerance=0.005,
                     fold=None, eligible=None):
    """The cheap stage's confidence threshold, from out-of-fold probabilities.

    The cascade answers with the cheap stage when its top probability is at
    least the threshold (and the photo is ``eligible``), else with the full
    model. Three rules set the threshold; it is the highest of the three:

    - **accuracy**: scanning thresholds from high (nothing answered early) to
      low, the last one before the photos the cascade loses (the cheap stage
      wrong where the full model is right) exceed ``tolerance`` times the
      photos; photos the cheap stage alone gets right do not offset them, so
      the out-of-fold accuracy is at least the full model's minus
      ``tolerance``;
    - **per fold**: within the same scan, no fold of ``fold`` loses more than
      one photo;
    - **confidence floor**: at least the cheap stage's own out-of-fold
      accuracy, so it answers alone only photos that it finds easier than
      its average photo. On small data the first two rules rest on the few
      most confident mistakes, and a threshold just above them let test folds
      lose two photos; the floor keeps it out of the confidence range where
      the cheap stage is wrong as often as on average (``docs/benchmarks.md``,
      "Cascade").

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        True labels.

    full_proba, cheap_proba : ndarray of shape (n_samples, n_classes)
        Out-of-fold probabilities of the full model and of the cheap stage,
        columns in ``classes`` order.

    classes : ndarray of shape (n_classes,)
        The class labels.

    tolerance : float, default=0.005
        Accuracy the cascade may lose against the full model.

    fold : array-like of shape (n_samples,) or None, default=None
        The out-of-fold fold of each photo; None is one fold (the rule of
        one photo per fold is then not checked).

    eligible : array-like of bool of shape (n_samples,) or None, default=None
        Photos the cheap stage may answer (those its gate lets through, see
        :func:`ood_limits`); None: all.

    Returns
    -------
    stats : dict
        ``threshold`` (``inf`` when no photo can be answered early),
        ``early_share``, ``cheap_accuracy`` (the confidence floor),
        ``early_accuracy``, ``full_accuracy``, ``cascade_accuracy`` and
        ``worst_fold_loss`` (photos lost on the worst fold), all out of fold.

    Examples
    --------
    >>> import numpy as np
    >>> from hybridclf.cascade import select_threshold
    >>> y = np.array([0, 0, 1, 1])
    >>> full = np.array([[.9, .1], [.8, .2], [.2, .8], [.1, .9]])
    >>> cheap = np.array([[.99, .01], [.6, .4], [.3, .7], [.55, .45]])
    >>> stats = select_threshold(y, full, cheap, np.array([0, 1]))
    >>> stats["threshold"], stats["early_share"]  # the floor: cheap accuracy
    (0.75, 0.25)
    """
    y, classes = np.asarray(y), np.asarray(classes)
    full_ok = classes[np.argmax(full_proba, axis=1)] == y
    cheap_ok = classes[np.argmax(cheap_proba, axis=1)] == y
    top = np.max(cheap_proba, axis=1)
    fold_limit = np.inf if fold is None else MAX_FOLD_LOSS
    fold = np.zeros(len(y), dtype=np.intp) if fold is None else np.asarray(fold)
    eligible = (np.ones(len(y), dtype=bool) if eligible is None
                else np.asarray(eligible, dtype=bool))
    lost = ~cheap_ok & full_ok
    threshold = _scan(top, lost, fold, eligible, tolerance * len(y), fold_limit)
    threshold = max(threshold, float(cheap_ok.mean()))
    early = eligible & (top >= threshold)
    cascade_ok = np.where(early, cheap_ok, full_ok)
    _, fold_ids = np.unique(fold, return_inverse=True)
    return {
        "threshold": threshold,
        "early_share": float(early.mean()),
        "cheap_accuracy": float(cheap_ok.mean()),
        "early_accuracy": (float(cheap_ok[early].mean()) if early.any()
                           else float("nan")),
        "full_accuracy": float(full_ok.mean()),
        "cascade_accuracy": float(cascade_ok.mean()),
        "worst_fold_loss": int(np.bincount(fold_ids, weights=early & lost).max()),
    }


def _scan(top, lost, fold, eligible, allowed, fold_limit):
    """The lowest threshold before the losses break either budget."""
    _, fold_ids = np.unique(fold, return_inverse=True)
    fold_loss = np.zeros(fold_ids.max() + 1 if len(fold_ids) else 1)
    order = [i for i in np.argsort(-top, kind="stable") if eligible[i]]
    threshold, total = np.inf, 0
    for k, i in enumerate(order):
        total += lost[i]
        fold_loss[fold_ids[i]] += lost[i]
        if k + 1 < len(order) and top[order[k + 1]] == top[i]:
            continue  # a threshold cannot split tied confidences
        if total > allowed + 1e-9 or fold_loss.max() > fold_limit:
            break
        threshold = float(top[i])
    return threshold


def ood_limits(cheap_ood, names, quantile):
    """The gate: each cheap block's largest in-distribution OOD score.

    Parameters
    ----------
    cheap_ood : ndarray of shape (n_samples, n_cheap_blocks)
        Out-of-fold block OOD scores of the cheap blocks
        (:func:`~hybridclf.prediction.block_ood_scores`).

    names : sequence of str
        The cheap blocks, in the columns of ``cheap_ood``.

    quantile : float or None
        The quantile of the out-of-fold scores kept as the limit of each
        block; None turns the gate off.

    Returns
    -------
    limits : dict of str to float, or None
        A photo is eligible for an early answer when no cheap block's score
        exceeds its limit.
    """
    if quantile is None:
        return None
    return {name: float(np.quantile(cheap_ood[:, b], quantile))
            for b, name in enumerate(names)}


def out_of_fold_stages(fold_features, n_samples, classes, blocks, cheap,
                       full_classifier, cheap_classifier):
    """Out-of-fold probabilities of both stages and the cheap blocks' OOD scores.

    Parameters
    ----------
    fold_features : iterable of (test_index, train_x, train_y, test_x[, groups])
        Per fold: the test rows and the scaled feature tables of all blocks
        (the input of the full classifier); optionally the image each
        training row was made from (:func:`~hybridclf.pipeline.view_groups`),
        so that the classifiers leave an image out with its views.

    n_samples : int
        Rows of the out-of-fold tables.

    classes : ndarray of shape (n_classes,)
        The class labels (columns of the returned tables).

    blocks : list of (str, int)
        Block names and widths, in the columns of the tables.

    cheap : sequence of str
        The blocks of the cheap stage.

    full_classifier, cheap_classifier : classifier
        Unfitted; cloned for each fold. ``full_classifier`` may be None when
        the full model's out-of-fold probabilities are known already.

    Returns
    -------
    oof : dict
        ``full_proba`` and ``cheap_proba`` (ndarray of shape (n_samples,
        n_classes); ``full_proba`` is None without ``full_classifier``),
        ``fold`` (the fold of each row) and ``cheap_ood`` (ndarray of shape
        (n_samples, n_cheap_blocks), in ``blocks`` order).
    """
    cheap_blocks = [(name, width) for name, width in blocks if name in cheap]
    cheap_columns = block_columns(blocks, cheap)
    full = np.zeros((n_samples, len(classes)))
    oof = {"full_proba": full if full_classifier is not None else None,
           "cheap_proba": np.zeros((n_samples, len(classes))),
           "fold": np.full(n_samples, -1, dtype=np.intp),
           "cheap_ood": np.zeros((n_samples, len(cheap_blocks)))}
    stages = [(oof["cheap_proba"], cheap_classifier, cheap_columns)]
    if full_classifier is not None:
        stages.append((full, full_classifier, slice(None)))
    for k, (test, train_x, train_y, test_x, *groups) in enumerate(fold_features):
        oof["fold"][test] = k
        oof["cheap_ood"][test] = block_ood_scores(test_x[:, cheap_columns],
                                                  cheap_blocks)
        for out, clf, cols in stages:
            model = fit_classifier(clone(clf), train_x[:, cols], train_y,
                                   groups[0] if groups else None)
            columns = np.searchsorted(classes, model.classes_)
            out[np.ix_(test, columns)] = model.predict_proba(test_x[:, cols])
    return oof


class _FixedFeatures(dict):
    """:func:`fixed_features`' dict, with the ``memory`` that caches views' features.

    ``keys`` holds, per block, the joblib hash of its fitted extractor, taken
    once when it was fitted and cached with it: the key of its views'
    features in ``memory`` (:func:`fixed_rows`).
    """

    memory = None

    def __init__(self):
        super().__init__()
        self.keys = {}


def fixed_features(images, blocks, memory=None):
    """The blocks that learn nothing from the images, fitted once, and their features.

    Parameters
    ----------
    images : ndarray of shape (n_images, height, width, 3)
        Loaded images.

    blocks : list of (str, Pipeline)
        The feature blocks (``extract`` and ``scale`` steps).

    memory : str, joblib.Memory or None, default=None
        The pipeline's ``memory``: where each block's features (and those of
        the views :func:`fixed_rows` makes) are cached, keyed by the block's
        parameters and the images, so that the next fit on the same images
        (a search over the classifier, a cross-validation's folds) reuses
        them, as a ``Pipeline`` with ``memory`` does.

    Returns
    -------
    fixed : dict of str to (transformer, ndarray)
        For each such block (HOG, LBP, colour, a pretrained CNN): its
        extractor fitted on ``images`` and its raw features of every image.
        The folds and the final fit slice them instead of extracting again.
    """
    fixed = _FixedFeatures()
    fixed.memory = check_memory(memory)
    for name, block in blocks:
        extract = get_block_extractor(block)
        if getattr(extract, "learns_from_images", lambda: True)():
            continue
        if isinstance(fixed.memory, joblib.Memory) and fixed.memory.location:
            fitted, features, fixed.keys[name] = fixed.memory.cache(
                _fit_fixed_keyed)(clone(extract), images)
            fixed[name] = (fitted, features)
        else:  # no cache, or one of the user's own (only its cache method)
            fixed[name] = fixed.memory.cache(_fit_fixed)(clone(extract), images)
    return fixed


def _fit_fixed(extract, images):
    """(fitted ``extract``, its features of ``images``): :func:`fixed_features`."""
    return extract, np.asarray(extract.fit_transform(images))


def _fit_fixed_keyed(extract, images):
    """:func:`_fit_fixed` and the joblib hash of the fitted ``extract``.

    The hash keys the features of its views in the pipeline's ``memory``
    (:func:`fixed_rows`). Passing the fitted extractor itself had joblib hash
    it at each view of each fit: for a CNN, its whole ONNX graph (tens of MB)
    each time, which made a grid search with ``memory`` slower than one
    without. Taken here, once per fit of the block and stored with it, the
    hash is that of the very extractor it comes back with: an extractor
    fitted anew to another graph (a weights file replaced) gets another key,
    never the features of the old one.
    """
    extract, features = _fit_fixed(extract, images)
    return extract, features, joblib.hash(extract)


def _view_features(fitted, images, view, angle, crop_fraction, fitted_key=None):
    """``fitted``'s features of one view of every image: :func:`fixed_rows`.

    Cached (:func:`fixed_rows`) by ``fitted_key``, the hash of ``fitted``,
    instead of ``fitted``, which joblib would hash whole at every call.
    """
    seen = np.stack([make_view(image, view, angle=angle, crop_fraction=crop_fraction)
                     for image in images])
    return np.asarray(fitted.transform(seen))


def fixed_rows(fixed, name, rows, sampler, images):
    """Fixed block ``name``'s features of images ``rows`` and of their views.

    The rows of a :class:`~hybridclf.ViewAugmenter`'s ``fit_resample``: the
    images, then each view of them that ``sampler`` (fitted) adds. The
    features of each view of all ``images`` are computed once and kept in
    ``fixed`` (under ``(name, view, angle, crop_fraction)``) for the other
    folds and the final fit, and in the ``memory`` given to
    :func:`fixed_features`.
    """
    fitted, table = fixed[name]
    parts = [table[rows]]
    fitted_key = getattr(fixed, "keys", {}).get(name)
    memory = check_memory(getattr(fixed, "memory", None))
    view_features = (memory.cache(_view_features) if fitted_key is None
                     else memory.cache(_view_features, ignore=["fitted"]))
    for view in getattr(sampler, "views_", ()):
        key = (name, view, sampler.angle, sampler.crop_fraction)
        if key not in fixed:
            fixed[key] = (fitted, view_features(
                fitted, images, view, sampler.angle, sampler.crop_fraction,
                fitted_key=fitted_key))
        parts.append(fixed[key][1][rows])
    return np.vstack(parts) if len(parts) > 1 else parts[0]


def resample(sampler, images, y, blocks, fixed):
    """The sampler's (images, y), fitting ``sampler``; see :func:`scaled_folds`.

    A :class:`~hybridclf.ViewAugmenter` whose views only blocks of ``fixed``
    see does not make them (:func:`fixed_rows` has them): ``images`` come
    back unchanged with the resampled labels.
    """
    if (isinstance(sampler, ViewAugmenter) and fixed
            and all(name in fixed for name, _ in blocks)):
        sampler.fit(images, y)
        return images, np.tile(np.asarray(y), 1 + len(sampler.views_))
    return sampler.fit_resample(images, y)


def scaled_folds(images, y, blocks, splits, sampler, fixed, groups=None):
    """Yield (test, train_x, train_y, test_x, groups) per fold, each block scaled.

    The yielded ``groups`` are the image (or, with ``groups``, the group of
    near-identical photos) of each training row, for the classifiers'
    leave-one-out (:func:`~hybridclf.pipeline.view_groups`).

    The blocks of ``fixed`` (:func:`fixed_features`; give ``{}`` with a
    sampler that changes the images at random) are sliced, with the views of
    a :class:`~hybridclf.ViewAugmenter` (:func:`fixed_rows`); the others, and
    every scaler, are fitted on each training fold, as fitting the pipeline
    there would.
    """
    for train, test in splits:
        train_images, train_y = images[train], y[train]
        rows = fitted = None
        if sampler is not None:
            fitted = clone(sampler)
            train_images, train_y = resample(fitted, train_images, train_y,
                                             blocks, fixed)
        rows = view_groups(fitted, len(train), len(train_y),
                           None if groups is None else np.asarray(groups)[train])
        parts_train, parts_test = [], []
        for name, block in blocks:
            if name in fixed:
                a = fixed_rows(fixed, name, train, fitted, images)
                b = fixed[name][1][test]
            else:
                extract = clone(get_block_extractor(block))
                a = extract.fit_transform(train_images, train_y)
                b = extract.transform(images[test])
            scaler = StandardScaler().fit(a)
            parts_train.append(scaler.transform(a))
            parts_test.append(scaler.transform(b))
        yield (test, np.hstack(parts_train).astype(np.float32), train_y,
               np.hstack(parts_test).astype(np.float32), rows)
