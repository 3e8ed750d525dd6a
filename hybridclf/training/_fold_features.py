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
    what fitting the pipeline on them would give.
    """

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
        if not has_hybrid_structure(pipe) or get_sampler(pipe) is not None:
            return False
        union = get_feature_union(pipe)
        if getattr(union, "transformer_weights", None) is not None:
            return False
        extractors = [get_block_extractor(block)
                      for _, block in union.transformer_list]
        if not all(isinstance(e, ImageFeatureExtractor) for e in extractors):
            return False
        return any(not e.learns_from_images() for e in extractors)

    def _block_features(self, block, name, rows, y, fit):
        """Fit (when ``fit``) and apply one block's extract and scale steps."""
        extract, scale = get_block_extractor(block), get_block_scaler(block)
        images = self.images[rows]
        if name in self.fixed:
            raw = self.fixed[name][rows]
            if fit:
                extract.fit(images[:1])
        elif fit:
            raw = extract.fit_transform(images, y)
        else:
            raw = extract.transform(images)
        return scale.fit_transform(raw, y) if fit else scale.transform(raw)

    def fit_pipeline(self, pipe, rows, y):
        """Fit a clone of ``pipe`` but its classifier on images ``rows``."""
        pipe = clone(pipe)
        loader = get_loader(pipe)
        if loader is not None:
            loader.fit()
        blocks = [
            self._block_features(block, name, rows, y, fit=True)
            for name, block in iter_feature_blocks(pipe)
        ]
        return pipe, np.hstack(blocks).astype(np.float32, copy=False)

    def transform(self, fitted, rows):
        """Features of images ``rows`` through a pipeline from fit_pipeline."""
        blocks = [
            self._block_features(block, name, rows, None, fit=False)
            for name, block in iter_feature_blocks(fitted)
        ]
        return np.hstack(blocks).astype(np.float32, copy=False)

    def fold(self, pipe, train, test, y):
        """Like :func:`fold_features` for rows of the shared images."""
        fitted, train_x = self.fit_pipeline(pipe, train, y[train])
        test_x = self.transform(fitted, test)
        return (train_x, y[train], test_x, y[test]), feature_blocks(fitted)


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
