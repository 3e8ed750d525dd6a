"""The classifier fitted with the image each resampled row was made from.

A sampler in the ``augment`` step (:class:`~hybridclf.ViewAugmenter`,
:class:`~hybridclf.ClassAwareAugmenter`) adds rows made from the training
images. A classifier that leaves one row out to choose its penalty or to
calibrate its probabilities (:class:`~hybridclf.classifiers.RidgeSoftmaxClassifier`)
would then leave an image out while its views stay in, and come out
overconfident. :func:`view_groups` tells which image each row came from;
:func:`fit_classifier` passes that as ``groups`` to a classifier whose ``fit``
takes it; :class:`GroupedPipeline` does both inside ``Pipeline.fit``.
"""

import os

import numpy as np
from imblearn.pipeline import Pipeline
from sklearn.utils import Bunch
from sklearn.utils.validation import _num_samples, has_fit_parameter

from .utils._row_store import content_digest
from .view_sampling import ViewAugmenter

__all__ = ["GroupedPipeline", "fit_classifier", "view_groups"]

# the fit methods of imblearn's Pipeline whose final step gets the fit params
_FINAL_FIT_METHODS = ("fit", "fit_predict", "fit_transform")


def view_groups(sampler, n_images, n_rows, groups=None):
    """The image each training row was made from, when a sampler added rows.

    A :class:`~hybridclf.ViewAugmenter` returns the images, then each view of
    them in turn (also when only its ``fit`` ran, as in
    :class:`~hybridclf.training.SharedFeatures`); another sampler tells its
    rows' sources by ``sample_indices_``.

    With ``groups`` (near-identical photos share one), each row gets the
    group of its image instead: a classifier that leaves rows out to choose
    its penalty or calibrate its probabilities then leaves a photo out with
    its views and its near-duplicates. Left in, a near-duplicate vouches for
    the photo, and the probabilities, the thresholds learned from them (the
    confidence threshold, the cascade's) and the label check come out
    overconfident.

    Parameters
    ----------
    sampler : sampler or None
        The pipeline's ``augment`` step, fitted on the ``n_images`` images.

    n_images : int
        Images given to the sampler.

    n_rows : int
        Rows it returned (rows of the classifier's training table).

    groups : array-like of shape (n_images,) or None, default=None
        The group of each image (near-identical photos share one).

    Returns
    -------
    groups : ndarray of shape (n_rows,) or None
        The image of each row, or with ``groups`` its image's group. None
        when no rows were added and no ``groups`` given, or when the rows'
        sources are unknown.
    """
    rows = _row_images(sampler, n_images, n_rows)
    if groups is None:
        return rows
    groups = np.asarray(groups)
    if len(groups) != n_images:
        raise ValueError(
            f"The 'groups' of view_groups must hold one group per image: got "
            f"{len(groups)} for {n_images} images.")
    if rows is None:
        return groups if n_rows == n_images else None
    return groups[rows]


def _row_images(sampler, n_images, n_rows):
    """:func:`view_groups` without ``groups``."""
    if sampler is None or n_rows == n_images:
        return None
    if isinstance(sampler, ViewAugmenter) and n_images and n_rows % n_images == 0:
        return np.tile(np.arange(n_images), n_rows // n_images)
    groups = getattr(sampler, "sample_indices_", None)
    return None if groups is None or len(groups) != n_rows else np.asarray(groups)


def fit_classifier(clf, X, y, groups=None):
    """Fit ``clf``, leaving each group of rows out as a whole where it can.

    ``clf.fit(X, y, groups=groups)`` when ``groups`` is given and the
    classifier's ``fit`` takes ``groups`` (such as
    :class:`~hybridclf.classifiers.RidgeSoftmaxClassifier`, whose leave-one-out
    penalty and calibration then leave an image out with its views); else
    ``clf.fit(X, y)``.

    Parameters
    ----------
    clf : classifier
        The unfitted classifier.

    X : array-like of shape (n_rows, n_features)
        Training features.

    y : array-like of shape (n_rows,)
        Their labels.

    groups : array-like of shape (n_rows,) or None, default=None
        The image each row was made from (:func:`view_groups`).

    Returns
    -------
    clf : classifier
        The fitted classifier.
    """
    if groups is not None and has_fit_parameter(clf, "groups"):
        return clf.fit(X, y, groups=groups)
    return clf.fit(X, y)


class GroupedPipeline(Pipeline):
    """An imbalanced-learn ``Pipeline`` that tells its classifier the rows' images.

    The same as :class:`imblearn.pipeline.Pipeline`, except that when one
    sampler step added rows, the final step's ``fit`` also gets
    ``groups=``: the image each of its rows was made from
    (:func:`view_groups`), if it takes ``groups`` and none was given
    (``clf__groups=``). :func:`~hybridclf.make_hybrid_pipeline` returns it
    when it makes no cascade; :class:`~hybridclf.cascade.CascadePipeline`
    does the same in its own ``fit``.

    Parameters
    ----------
    steps, transform_input, memory, verbose
        As for :class:`imblearn.pipeline.Pipeline`.

    Examples
    --------
    >>> import numpy as np
    >>> from hybridclf import ViewAugmenter, make_hybrid_pipeline
    >>> pipe = make_hybrid_pipeline(features=["color"], sampler=ViewAugmenter())
    >>> type(pipe).__name__
    'GroupedPipeline'
    """

    def fit(self, X, y=None, groups=None, **params):
        """Fit every step, as :meth:`imblearn.pipeline.Pipeline.fit` does.

        Parameters
        ----------
        X : sequence of images or paths
            What the first step takes.

        y : array-like of shape (n_samples,)
            Class labels.

        groups : array-like of shape (n_samples,) or None, default=None
            Groups of near-identical photos, as
            :meth:`CascadePipeline.fit <hybridclf.cascade.CascadePipeline.fit>`
            takes them, so that one call fits either pipeline: a classifier
            whose ``fit`` takes ``groups`` gets the group of each row's
            image (:func:`view_groups`), so that its leave-one-out leaves a
            photo out with its views and its near-duplicates. Checked to
            hold one entry per image.

        **params : dict
            Fit parameters of the steps (``step__param``). The classifier's
            ``sample_weight`` (``clf__sample_weight=``) holds one weight per
            image: each row made from an image (its views) gets its weight.

        Returns
        -------
        self : GroupedPipeline
        """
        if groups is not None and _num_samples(groups) != _num_samples(X):
            raise ValueError(
                f"The 'groups' parameter of {type(self).__name__}.fit must hold "
                f"one group per image: got {_num_samples(groups)} for "
                f"{_num_samples(X)} images.")
        self._image_groups = groups  # for _fit, which Pipeline.fit calls
        try:
            return super().fit(X, y, **params)
        finally:
            del self._image_groups

    def _check_method_params(self, method, props, **kwargs):
        routed = super()._check_method_params(method, props, **kwargs)
        # with metadata routing on and no parameters, scikit-learn answers a
        # stand-in that makes new dicts on every access, so the groups that
        # _fit adds for the classifier were lost: keep one per step
        return Bunch(**{name: routed[name] for name, _ in self.steps})

    def _fit(self, X, y=None, routed_params=None, raw_params=None):
        # the hook of imblearn's fit, fit_transform, fit_resample, fit_predict:
        # every step but the last is fitted here, the last after it returns
        n_images = _num_samples(X)
        if self.memory is not None:
            X = _keyed_by_content(X)
        Xt, yt = super()._fit(X, y, routed_params, raw_params)
        samplers = [step for _, _, step in self._iter(
            with_final=False, filter_passthrough=True, filter_resample=False)
            if hasattr(step, "fit_resample")]
        final = self._final_estimator
        image_groups = getattr(self, "_image_groups", None)
        if (len(samplers) > 1 or final is None or isinstance(final, str)
                or (not samplers and image_groups is None)):
            return Xt, yt
        step_params = routed_params[self.steps[-1][0]]
        if samplers:
            _weigh_rows(step_params, _row_images(samplers[0], n_images,
                                                 _num_samples(Xt)), n_images)
        groups = view_groups(samplers[0] if samplers else None, n_images,
                             _num_samples(Xt), image_groups)
        if groups is not None and has_fit_parameter(final, "groups"):
            for method in _FINAL_FIT_METHODS:
                if method in step_params:
                    step_params[method].setdefault("groups", groups)
        return Xt, yt


def _weigh_rows(step_params, rows, n_images):
    """Give each row the ``sample_weight`` of its image, in place.

    A ``sample_weight`` passed to the final step (``clf__sample_weight=``)
    holds one weight per image; a sampler that added rows (the views of
    :class:`~hybridclf.ViewAugmenter`) gave the classifier more rows than
    weights, and its fit raised on the mismatch. ``rows`` is the image of
    each row (:func:`_row_images`), or None when unknown or none were added.
    """
    if rows is None:
        return
    for method in _FINAL_FIT_METHODS:
        weights = step_params[method].get("sample_weight") if (
            method in step_params) else None
        if weights is not None and _num_samples(weights) == n_images:
            step_params[method]["sample_weight"] = np.asarray(weights)[rows]


class _PathsAndDigests(list):
    """Image paths that carry their files' SHA-256 (``digests``).

    joblib's ``Memory`` keys the ``load`` step of a pipeline with ``memory``
    by what pickling its input gives: for a plain list of paths, the paths
    alone, so a photo edited or replaced under the same name was answered
    with its old pixels. Pickling this list also gives the digests.
    """


def _keyed_by_content(X):
    """X as the pipeline's ``memory`` should key it: with its files' content.

    A sequence that holds file paths (also a Series, a one-column DataFrame
    or a column array of them, which ImageLoader takes) comes back as
    :class:`_PathsAndDigests` (the same paths); anything else (arrays,
    bytes) as it is.
    """
    if hasattr(X, "iloc") and getattr(X, "ndim", 1) == 2 and X.shape[1] == 1:
        X = X.iloc[:, 0]  # a one-column DataFrame of paths, as ImageLoader takes
    if hasattr(X, "to_numpy") and getattr(X, "ndim", 2) == 1:
        X = X.to_numpy()  # a Series of paths
    if (isinstance(X, np.ndarray) and X.ndim == 2 and X.shape[1] == 1
            and X.dtype.kind in "OU"):
        X = X[:, 0]  # a column of paths
    if isinstance(X, np.ndarray) and (X.ndim != 1 or X.dtype.kind not in "OU"):
        return X
    if not isinstance(X, (list, tuple, np.ndarray)) or not any(
            isinstance(x, (str, os.PathLike)) for x in X):
        return X
    keyed = _PathsAndDigests(X)
    keyed.digests = [content_digest(x) if isinstance(x, (str, os.PathLike))
                     else None for x in keyed]
    return keyed
