"""The features of each cross-validation fold, computed once for every fit.

The default classifier and every candidate of a classifier search are fitted
on the same fold features, so a search over 20 values of ``C`` costs 20 small
fits per fold, not 20 feature extractions. :class:`SharedFeatures` (in
``_shared_features``) goes further: blocks that learn nothing from the images
are computed once for all folds.
"""

import numpy as np
from sklearn.base import clone

from ..pipeline import get_feature_union, get_loader, get_sampler
from ..prediction import feature_blocks, transform_features
from ._shared_features import SharedFeatures

__all__ = ["compute_folds", "fit_features", "fold_features"]


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


def on_cluster():
    """Whether joblib's active backend is Dask (``parallel_config("dask")``)."""
    from joblib.parallel import get_active_backend

    return type(get_active_backend()[0]).__name__ == "DaskDistributedBackend"


def _progress(items, desc, progress):
    if not progress:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, unit="fold")


def compute_folds(pipe, X, y, splits, *, n_jobs=None, progress=False,
                  shared=None):
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

    shared : SharedFeatures or None, default=None
        The shared features of exactly ``X`` (e.g. a :meth:`~SharedFeatures.subset`
        of a larger table); None makes them when the pipeline allows.

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
    if on_cluster():
        # one fold per worker; the image steps' threads stay inside each fold
        from joblib import Parallel, delayed

        shared = None
        done = Parallel(n_jobs=n_jobs)(
            delayed(fold_features)(pipe, X[tr], y[tr], X[te], y[te])
            for tr, te in splits)
    elif shared is not None or SharedFeatures.applies(pipe):
        shared = shared or SharedFeatures(pipe, X, y)
        done = [shared.fold(pipe, tr, te, y)
                for tr, te in _progress(splits, "cross-validation folds", progress)]
    else:
        done = [fold_features(pipe, X[tr], y[tr], X[te], y[te])
                for tr, te in _progress(splits, "cross-validation features",
                                        progress)]
    return [fold for fold, _ in done], done[0][1], shared
