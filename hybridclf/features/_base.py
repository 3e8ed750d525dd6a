"""What every image feature extractor shares: input checks and the per-image loop."""

import functools
from contextlib import contextmanager
from numbers import Integral

import cv2
import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
)
from sklearn.utils.validation import check_is_fitted

from ..io import array_to_rgb
from ..utils._docstrings import (
    Substitution,
    _features_docstring,
    _fit_parameters_docstring,
)
from ..utils._parallel import run_chunked
from ..utils._validation import _fit_context


def check_images(X, estimator):
    """Validate a batch of images and return it as RGB uint8 (n, h, w, 3).

    The feature extractors take the output of :class:`~hybridclf.io.ImageLoader`:
    uint8 arrays of shape (n_images, height, width, 3). Greyscale batches of
    shape (n_images, height, width) and float batches with values in [0, 1] are
    converted.
    """
    name = type(estimator).__name__
    if isinstance(X, (list, tuple)):
        if X and isinstance(X[0], (str, bytes)):
            raise TypeError(
                f"{name} expects images as arrays, not file paths. Put an "
                "ImageLoader before it (make_hybrid_pipeline does)."
            )
        shapes = sorted({np.shape(img) for img in X})
        if len(shapes) > 1:
            raise ValueError(
                f"{name} expects images of one shape; got images of shapes "
                f"{shapes[:4]}{' ...' if len(shapes) > 4 else ''}. Put an "
                "ImageLoader before it to resize them (make_hybrid_pipeline does)."
            )
        X = np.asarray(X)
    elif not isinstance(X, np.ndarray):
        X = np.asarray(X)
    if X.dtype.kind in "OUS":
        raise TypeError(
            f"{name} expects images as a numeric array of shape (n_images, height,"
            f" width, 3), not {X.dtype} values such as file paths. Put an "
            "ImageLoader before it (make_hybrid_pipeline does)."
        )
    if X.ndim == 3:
        X = X[..., np.newaxis]
    if X.ndim != 4 or X.shape[3] not in (1, 3):
        raise ValueError(
            f"{name} expects images of shape (n_images, height, width, 3) or "
            f"(n_images, height, width); got an array of shape {X.shape}."
        )
    if X.shape[0] == 0:
        raise ValueError(f"{name} needs at least 1 image; got 0.")
    if X.dtype != np.uint8 or X.shape[3] == 1:
        X = np.stack([array_to_rgb(img, (255, 255, 255), source=name) for img in X])
    return X


def to_gray(image):
    """RGB uint8 to greyscale uint8 (ITU-R 601 luma, as OpenCV computes it)."""
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


class ImageFeatureExtractor(
    ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator
):
    """Base class: turn a batch of RGB uint8 images into one feature row each.

    Subclasses implement ``_n_features_for(height, width)`` and
    ``_transform_chunk(images, out)``, which fills ``out`` (float32, one row per
    image) and may run in several threads at once on different chunks. They
    may override ``_fit(X)`` to learn something (a vocabulary); when learning
    already computed the features of ``X``, ``_fit`` returns them and
    ``fit_transform`` does not compute them twice.
    """

    _parameter_constraints: dict = {"n_jobs": [Integral, None]}

    @property
    def n_features_out_(self):
        """Number of features of an image: the columns of ``transform``."""
        return self._n_features_out

    def _fit(self, X):
        """Learn from the images; return their features if computed, else None."""

    def learns_from_images(self):
        """Whether ``fit`` learns from the images (else features are per image).

        When it does not, an image has the same features whatever images the
        extractor was fitted on, so cross-validation can compute them once
        (:func:`~hybridclf.training.train_model` does).

        Returns
        -------
        learns : bool
            True when the features of an image depend on the images fitted on.
        """
        return type(self)._fit is not ImageFeatureExtractor._fit

    def feature_settings(self):
        """The parameters that decide an image's features, for a feature cache.

        An extractor that learns nothing maps an image to the same vector in
        every process, so its features can be kept on disk under the image's
        content and these settings (:class:`~hybridclf.training.FeatureCache`).
        Subclasses drop parameters that change nothing (threads) and return
        None when the features are not reproducible.

        Returns
        -------
        settings : dict or None
            ``get_params(deep=False)`` without ``n_jobs`` and ``verbose``; None
            when the extractor learns from the images.
        """
        if self.learns_from_images():
            return None
        settings = self.get_params(deep=False)
        settings.pop("n_jobs", None)
        settings.pop("verbose", None)
        return settings

    def _fit_images(self, X):
        """Check X, record its shape, learn; return (features or None, X)."""
        X = check_images(X, self)
        self.image_shape_ = X.shape[1:]
        self._n_features_out = self._n_features_for(X.shape[1], X.shape[2])
        return self._fit(X), X

    @_fit_context(prefer_skip_nested_validation=True)
    @Substitution(parameters=_fit_parameters_docstring)
    def fit(self, X, y=None):
        """Check the images and learn what the extractor needs from them.

        Parameters
        ----------
        {parameters}

        Returns
        -------
        self : object
            Fitted extractor.
        """
        self._fit_images(X)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    @Substitution(parameters=_fit_parameters_docstring, features=_features_docstring)
    def fit_transform(self, X, y=None):
        """Fit to the images, then compute their features.

        The same as ``fit(X).transform(X)``; an extractor that computes the
        features while it learns (:class:`~hybridclf.features.SIFTBoVW`) does
        not compute them twice.

        Parameters
        ----------
        {parameters}

        Returns
        -------
        {features}
        """
        out, X = self._fit_images(X)
        return self._extract(X) if out is None else out

    @Substitution(features=_features_docstring)
    def transform(self, X):
        """Compute one feature row per image.

        Parameters
        ----------
        X : ndarray of shape (n_samples, height, width[, 3])
            Images of the shape seen in ``fit``.

        Returns
        -------
        {features}
        """
        return self._extract(self._check_transform_input(X))

    def transform_parts(self, X):
        """The work of :meth:`transform` as parts that may run side by side.

        Each part computes some columns of ``transform(X)``, independently of
        the others: the threads of a machine can share the features of a
        single image (:func:`hybridclf.prediction.transform_blocks` does).
        Most extractors are one part; :class:`LBPFeatures` is one per scale.

        Parameters
        ----------
        X : ndarray of shape (n_samples, height, width[, 3])
            Images of the shape seen in ``fit``.

        Returns
        -------
        parts : list of (slice, callable)
            The columns of each part, in order and covering every column,
            and a function without arguments that returns them: an array of
            shape (n_samples, width of the slice), equal to those columns of
            ``transform(X)`` once cast to float32.
        """
        if type(self).transform is not ImageFeatureExtractor.transform:
            # a subclass's own transform decides its features: one part
            check_is_fitted(self)
            return [(slice(0, self._n_features_out),
                     functools.partial(self.transform, X))]
        return self._extract_parts(self._check_transform_input(X))

    def _check_transform_input(self, X):
        check_is_fitted(self)
        X = check_images(X, self)
        if X.shape[1:] != tuple(self.image_shape_):
            raise ValueError(
                f"{type(self).__name__} was fitted on images of shape "
                f"{tuple(self.image_shape_)} but got images of shape {X.shape[1:]}."
                " Resize them with the same ImageLoader used for fitting."
            )
        return X

    def _extract_parts(self, X):
        """Checked images to :meth:`transform_parts`; one part by default."""
        return [(slice(0, self._n_features_out), functools.partial(self._extract, X))]

    def _extract(self, X):
        out = np.empty((X.shape[0], self._n_features_out), dtype=np.float32)
        run_chunked(
            lambda sl: self._transform_chunk(X[sl], out[sl]), X.shape[0], self.n_jobs
        )
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        return tags


@contextmanager
def showing_progress(extract, progress=True):
    """``extract`` with its progress bar on (``verbose=True``), then as it was.

    Parameters
    ----------
    extract : estimator
        A feature extractor; one without a ``verbose`` parameter, or with it
        already on, is left alone.

    progress : bool, default=True
        False leaves ``extract`` alone.
    """
    if not progress or extract.get_params(deep=False).get("verbose") is not False:
        yield extract
        return
    extract.set_params(verbose=True)
    try:
        yield extract
    finally:
        extract.set_params(verbose=False)
