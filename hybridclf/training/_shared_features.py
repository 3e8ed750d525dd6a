"""Features of the blocks that learn nothing, computed once for all folds.

HOG, LBP, colour and a pretrained CNN give an image the same vector whatever
images they were fitted on, so :class:`SharedFeatures` computes them once (or
reads them from a :class:`FeatureCache`) and every cross-validation fold and
the final fit slice that table; the blocks that learn and the per-block
scalers are still fitted on each fold. :func:`compute_folds` uses it when
:meth:`SharedFeatures.applies` to the pipeline.
"""

import copy
import logging
import time
from functools import partial

import numpy as np
from sklearn.base import clone

from ..features import ImageFeatureExtractor
from ..features._base import showing_progress
from ..pipeline import (
    get_block_extractor,
    get_block_scaler,
    get_feature_union,
    get_loader,
    get_sampler,
    has_hybrid_structure,
    iter_feature_blocks,
)
from ..prediction import feature_blocks
from ..view_sampling import ViewAugmenter, make_view
from ._feature_cache import image_digest

__all__ = ["SharedFeatures"]

# the records keep the logger name they had before this module was split off
logger = logging.getLogger("hybridclf.training._fold_features")


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
    learns, the features of each view are also computed once for all folds
    (not kept in the cache).

    With a :class:`FeatureCache`, the table's rows of images seen before (same
    bytes, same settings) come from disk, and only images that some block
    misses are loaded; without a block that learns, the others are never
    decoded.

    Parameters
    ----------
    pipe : Pipeline
        The hybrid pipeline (:meth:`applies` is true).

    X, y : sequence
        The images (paths, bytes or arrays) and their labels.

    cache : FeatureCache or None, default=None
        Where the fixed blocks' features of single images are kept.

    digests : list of str or None, default=None
        The images' :func:`image_digest`, when known; computed when needed.

    progress : bool, default=False
        Show the progress bar of a block that has one (the CNN's ``verbose``)
        while it computes the table; the block's parameters stay as given.
    """

    def __init__(self, pipe, X, y=None, *, cache=None, digests=None,
                 progress=False):
        started = time.perf_counter()
        self._X, self._rows = X, np.arange(len(X))
        loader = get_loader(pipe)
        self._loader = None if loader is None else clone(loader).fit()
        blocks = [(name, get_block_extractor(block))
                  for name, block in iter_feature_blocks(pipe)]
        learns = any(e.learns_from_images() for _, e in blocks)
        #: the loaded images: all of them when a block learns, else a few
        self.images = self._load(self._rows) if learns else None
        self.digests = digests
        self._some, self._prefit = {}, {}
        self._views = {}  # a ViewAugmenter's images and features, for all subsets
        todo = self._from_cache(cache, [(n, e) for n, e in blocks
                                        if not e.learns_from_images()])
        needed = sorted({i for rows, _ in todo.values() for i in rows})
        if self.images is None and len(needed) == len(X):
            self.images = self._load(self._rows)
        elif self.images is None and needed:
            self._some = dict(zip(needed, self._load(np.asarray(needed))))
        for name, (rows, store) in todo.items():
            extract = self._prefit[name] = clone(dict(blocks)[name])
            with showing_progress(extract, progress):
                computed = extract.fit_transform(self._images(rows))
            table = self.fixed.get(name)
            if table is not None and table.shape[1] != computed.shape[1]:
                logger.warning("The cached %s features have %d columns, the "
                               "computed ones %d; the cache is not used for it.",
                               name, table.shape[1], computed.shape[1])
                self._ensure_loaded()
                rows, table = self._rows, None
                computed = extract.transform(self.images)
                store = partial(store, replace=True)
            self.fixed[name] = _fill(table, rows, computed, len(X))
            store(rows, computed)
        #: images whose features some block computed (the rest came from cache)
        self.n_computed = len(needed)
        #: seconds spent loading the images and computing the fixed blocks
        self.seconds = time.perf_counter() - started

    def _ensure_loaded(self):
        if self.images is None:
            self.images = self._load(self._rows)

    def _load(self, rows):
        X = self._X
        if self._loader is None:
            return np.asarray(X)[rows] if len(rows) != len(X) else X
        return self._loader.transform([X[i] for i in rows])

    def _images(self, rows):
        """Images ``rows`` (of the whole X), from what was loaded."""
        if self.images is not None:
            return self.images[rows]
        return np.stack([self._some[i] for i in rows])

    def _from_cache(self, cache, fixed):
        """Fill ``fixed`` from the cache; return {name: (missing rows, store)}."""
        self.fixed, todo = {}, {}
        everything = list(range(len(self._X)))
        digests = self.digests
        for name, extract in fixed:
            key = None if cache is None else cache.settings_key(extract, self._loader)
            if key is None:
                todo[name] = (everything, _no_store)
                continue
            if digests is None:
                digests = self.digests = [image_digest(x) for x in self._X]
            found, missing = cache.lookup(key, digests)
            if found:
                width = len(next(iter(found.values())))
                table = np.empty((len(self._X), width), dtype=np.float32)
                table[list(found)] = np.stack(list(found.values()))
                self.fixed[name] = table
            if missing:
                todo[name] = (missing, partial(_store, cache, key, digests, self._X))
        return todo

    def subset(self, rows):
        """The same features seen as images ``rows`` only (no copy)."""
        view = copy.copy(self)
        view._rows = self._rows[rows]
        return view

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

    def fitted(self, name, extract):
        """The fixed block ``extract`` fitted once, for every fold and the final fit.

        It learns nothing, so fitting it on one image (which records the
        image shape) gives what fitting it on a fold would; a CNN is fitted
        (its runtime session built) once, not once per fold. The final
        pipeline of :meth:`fit_pipeline` holds this very object.
        """
        prefit = self._prefit.get(name)
        if prefit is None or not _same_params(prefit, extract):
            prefit = self._prefit[name] = clone(extract).fit(self._probe())
        return prefit

    def _probe(self):
        """One loaded image, as an array of one image."""
        if self.images is not None:
            return self.images[:1]
        if not self._some:
            self._some = {0: self._load(np.arange(1))[0]}
        return np.stack([next(iter(self._some.values()))])

    def loaded(self, rows):
        """Images ``rows`` (of the whole X) as the loader gives them.

        Those loaded already (every image, or the ones whose features were
        computed) are not decoded again; the others are loaded now and not
        kept.
        """
        rows = np.asarray(rows, dtype=int)
        if self.images is not None:
            return self.images[rows]
        if "images" in self._views:
            return self._views["images"][rows]
        absent = [i for i in rows.tolist() if i not in self._some]
        extra = dict(zip(absent, self._load(np.asarray(absent, dtype=int))
                         if absent else []))
        return np.stack([self._some[i] if i in self._some else extra[i]
                         for i in rows.tolist()])

    def _block_features(self, block, name, rows, y, fit, views=None):
        """Fit (when ``fit``) and apply one block's extract and scale steps."""
        extract, scale = get_block_extractor(block), get_block_scaler(block)
        rows = self._rows[rows]
        if name in self.fixed:
            raw = self.fixed[name][rows]
            if views is not None:
                raw = np.vstack([raw, self._view_features(name, extract, views, rows)])
            if fit:
                block.steps[0] = (block.steps[0][0], self.fitted(name, extract))
        elif fit:
            raw = extract.fit_transform(self.images[rows], y)
        else:
            raw = extract.transform(self.images[rows])
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
        views = self._fit_views(get_sampler(pipe), rows, y)
        y = np.tile(np.asarray(y), 1 if views is None else 1 + len(views.views_))
        blocks = [
            self._block_features(block, name, rows, y, fit=True, views=views)
            for name, block in iter_feature_blocks(pipe)
        ]
        return pipe, np.hstack(blocks).astype(np.float32, copy=False), y

    def _fit_views(self, sampler, rows, y):
        """The fitted ViewAugmenter when it adds views to images ``rows``, else None.

        Its ``fit`` decides from the labels and checks only the images' shape
        and count, so unless every image is loaded anyway, the first one
        stands for all (repeated without a copy): a retraining whose other
        features come from the cache decodes no image for it.
        """
        if sampler is None:
            return None
        if self.images is not None or "images" in self._views:
            images = self._all_images()[self._rows[rows]]
        else:
            probe = self._probe()
            images = np.broadcast_to(probe, (len(rows),) + probe.shape[1:])
        return sampler if sampler.fit(images, y).views_ else None

    def _all_images(self):
        """Every image of X (not only this subset's), loaded once."""
        if self.images is not None:
            return self.images
        if "images" not in self._views:
            self._views["images"] = self._load(np.arange(len(self._X)))
        return self._views["images"]

    def _view_features(self, name, extract, sampler, rows):
        """Fixed block ``name``'s features of images ``rows`` (of X) in each view.

        Each view of all the images is computed once, like the fixed table,
        and sliced; the rows are in ``ViewAugmenter.fit_resample``'s order.
        """
        parts = []
        for view in sampler.views_:
            key = (name, view, sampler.angle, sampler.crop_fraction)
            if key not in self._views:
                seen = np.stack([
                    make_view(image, view, angle=sampler.angle,
                              crop_fraction=sampler.crop_fraction)
                    for image in self._all_images()])
                self._views[key] = clone(extract).fit_transform(seen)
            parts.append(self._views[key][rows])
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


def _same_params(a, b):
    try:
        return type(a) is type(b) and bool(
            a.get_params(deep=False) == b.get_params(deep=False))
    except (TypeError, ValueError):  # arrays among the parameters
        return False


def _fill(table, rows, computed, n):
    """``table`` (or a new one of n rows) with ``computed`` at ``rows``."""
    if table is None:
        table = np.empty((n, computed.shape[1]), dtype=np.float32)
    table[rows] = computed
    return table


def _store(cache, key, digests, X, rows, features, replace=False):
    cache.store(key, [digests[i] for i in rows], features, replace=replace,
                images=[X[i] for i in rows])


def _no_store(rows, features, replace=False):
    """Where the features of a block that is not cached go."""
