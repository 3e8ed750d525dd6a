"""The features of each cross-validation fold, computed once for every fit.

The default classifier and every candidate of a classifier search are fitted
on the same fold features, so a search over 20 values of ``C`` costs 20 small
fits per fold, not 20 feature extractions. :class:`SharedFeatures` goes
further: blocks that learn nothing from the images are computed once for all
folds.
"""

import time

import numpy as np
from sklearn.base import clone

from ..features import ImageFeatureExtractor
from ..pipeline import (
    get_block_extractor,
    get_block_scaler,
    get_feature_union,
    get_loader,
    get_sampler,
    has_hybrid_structure,
    iter_feature_blocks,
)
from ..prediction import feature_blocks, transform_features
from ..view_sampling import ViewAugmenter, make_view

__all__ = ["SharedFeatures", "compute_folds", "fit_features", "fold_features"]


def fit_features(pipe, X, y):
    """Fit every step but the classifier; return (pipe, features, y after sampling)."""
    pipe = clone(pipe)
    loader, sampler = get_loader(pipe), get_sampler(pipe)
    images = X if loader is None else loader.fit_transform(X, y)
    y_fit = np.asarray(y)
    if sampler is not None:
        images, y_fit = sampler.fit_resample(images, y_fit)
    features = get_feature_union(pipe).fit_transform(images, y_fit)
    return pipe, np.asarray(features, dtype=np.float32), y_fit


def fold_features(pipe, X_train, y_train, X_test, y_test):
    """((train_x, train_y, test_x, test_y), blocks) of one cross-validation fold."""
    fitted, train_x, train_y = fit_features(pipe, X_train, y_train)
    test_x = transform_features(fitted, X_test)
    return (train_x, train_y, test_x, y_test), feature_blocks(fitted)


class SharedFeatures:
    """Features of the blocks that learn nothing, computed once for all folds.

    HOG, LBP, colour and a pretrained CNN map an image to the same vector
    whatever images they were fitted on, so cross-validation and the final fit
    can slice one table instead of extracting each image once per fold (the
    CNN dominates training time otherwise). Blocks that learn (SIFT's
    vocabulary, a fine-tuned CNN, a transformer of your own) and the per-block
    scalers are still fitted on each training fold, so the folds are exactly
    what fitting the pipeline on them would give. A
    :class:`~hybridclf.ViewAugmenter`'s views are fixed too: when no block
    learns, the features of each view are also computed once for all folds.
    """

    #: {(block, view, angle, crop_fraction): features of every image's view}
    _view_tables = None

    def __init__(self, pipe, X, y):
        started = time.perf_counter()
        loader = get_loader(pipe)
        self.images = X if loader is None else clone(loader).fit_transform(X, y)
        self.fixed = {}
        for name, block in iter_feature_blocks(pipe):
            extract = get_block_extractor(block)
            if not extract.learns_from_images():
                self.fixed[name] = clone(extract).fit_transform(self.images)
        #: seconds spent loading the images and computing the fixed blocks
        self.seconds = time.perf_counter() - started

    @staticmethod
    def applies(pipe):
        """Whether the pipeline has the shape this shortcut reproduces exactly."""
        if not has_hybrid_structure(pipe) or not _views_or_none(get_sampler(pipe)):
            return False
        union = get_feature_union(pipe)
        if getattr(union, "transformer_weights", None) is not None:
            return False
        extractors = [get_block_extractor(block)
                      for _, block in union.transformer_list]
        if not all(isinstance(e, ImageFeatureExtractor) for e in extractors):
            return False
        learns = [e.learns_from_images() for e in extractors]
        # views are shared only when no block would fit on their images
        return not all(learns) and (get_sampler(pipe) is None or not any(learns))

    def _block_features(self, block, name, rows, y, fit, views=None):
        """Fit (when ``fit``) and apply one block's extract and scale steps."""
        extract, scale = get_block_extractor(block), get_block_scaler(block)
        images = self.images[rows]
        if name in self.fixed:
            raw = self.fixed[name][rows]
            if views is not None:
                raw = np.vstack([raw, self._view_features(name, extract, views, rows)])
            if fit:
                extract.fit(images[:1])
        elif fit:
            raw = extract.fit_transform(images, y)
        else:
            raw = extract.transform(images)
        return scale.fit_transform(raw, y) if fit else scale.transform(raw)

    def fit_pipeline(self, pipe, rows, y):
        """Fit a clone of ``pipe`` but its classifier on images ``rows``.

        Returns the pipeline, the training features and their labels, as
        :func:`fit_features` does (with a ViewAugmenter that adds views: the
        images, then each view of them in turn).
        """
        pipe = clone(pipe)
        loader = get_loader(pipe)
        if loader is not None:
            loader.fit()
        views = _fit_views(get_sampler(pipe), self.images[rows], y)
        y = np.tile(np.asarray(y), 1 if views is None else 1 + len(views.views_))
        blocks = [
            self._block_features(block, name, rows, y, fit=True, views=views)
            for name, block in iter_feature_blocks(pipe)
        ]
        return pipe, np.hstack(blocks).astype(np.float32, copy=False), y

    def _view_features(self, name, extract, sampler, rows):
        """Fixed block ``name``'s features of images ``rows`` in each added view.

        Each view of all the images is computed once, like the fixed table,
        and sliced; the rows are in ``ViewAugmenter.fit_resample``'s order.
        """
        if self._view_tables is None:
            self._view_tables = {}
        parts = []
        for view in sampler.views_:
            key = (name, view, sampler.angle, sampler.crop_fraction)
            if key not in self._view_tables:
                seen = np.stack([
                    make_view(image, view, angle=sampler.angle,
                              crop_fraction=sampler.crop_fraction)
                    for image in self.images])
                self._view_tables[key] = clone(extract).fit_transform(seen)
            parts.append(self._view_tables[key][rows])
        return np.vstack(parts)

    def transform(self, fitted, rows):
        """Features of images ``rows`` through a pipeline from fit_pipeline."""
        blocks = [
            self._block_features(block, name, rows, None, fit=False)
            for name, block in iter_feature_blocks(fitted)
        ]
        return np.hstack(blocks).astype(np.float32, copy=False)

    def fold(self, pipe, train, test, y):
        """Like :func:`fold_features` for rows of the shared images."""
        fitted, train_x, train_y = self.fit_pipeline(pipe, train, y[train])
        test_x = self.transform(fitted, test)
        return (train_x, train_y, test_x, y[test]), feature_blocks(fitted)


def _views_or_none(sampler):
    """Whether SharedFeatures can reproduce this ``augment`` step exactly."""
    return sampler is None or isinstance(sampler, ViewAugmenter)


def _fit_views(sampler, images, y):
    """The fitted ViewAugmenter when it adds views to these images, else None."""
    if sampler is None or not sampler.fit(images, y).views_:
        return None
    return sampler


def on_cluster():
    """Whether joblib's active backend is Dask (``parallel_config("dask")``)."""
    from joblib.parallel import get_active_backend

    return type(get_active_backend()[0]).__name__ == "DaskDistributedBackend"


def _progress(items, desc, progress):
    if not progress:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, unit="fold")


def compute_folds(pipe, X, y, splits, *, n_jobs=None, progress=False):
    """The features of every fold, each computed once.

    Parameters
    ----------
    pipe : Pipeline
        The unfitted hybrid pipeline.

    X, y : ndarray
        The training part.

    splits : list of (ndarray, ndarray)
        The folds' (train, test) rows of ``X``.

    n_jobs : int, default=None
        Folds at once on Dask (one fold per worker); ignored otherwise.

    progress : bool, default=False
        Show a progress bar over the folds (not on Dask).

    Returns
    -------
    folds : list of (train_x, train_y, test_x, test_y)
        The scaled features and labels of each fold.

    blocks : list of (str, int)
        The feature blocks and their widths (:func:`feature_blocks`).

    shared : SharedFeatures or None
        The shared features, when the pipeline allows them; the final fit
        reuses them.
    """
    shared = None
    if on_cluster():
        # one fold per worker; the image steps' threads stay inside each fold
        from joblib import Parallel, delayed

        done = Parallel(n_jobs=n_jobs)(
            delayed(fold_features)(pipe, X[tr], y[tr], X[te], y[te])
            for tr, te in splits)
    elif SharedFeatures.applies(pipe):
        shared = SharedFeatures(pipe, X, y)
        done = [shared.fold(pipe, tr, te, y)
                for tr, te in _progress(splits, "cross-validation folds", progress)]
    else:
        done = [fold_features(pipe, X[tr], y[tr], X[te], y[te])
                for tr, te in _progress(splits, "cross-validation features",
                                        progress)]
    return [fold for fold, _ in done], done[0][1], shared
