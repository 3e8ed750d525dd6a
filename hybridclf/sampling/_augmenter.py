"""The class-aware over-sampler: :class:`ClassAwareAugmenter`.

The estimator: its parameters, the number of images to generate per class
(``_resolve_strategy``) and the imbalanced-learn entry points (``fit``,
``fit_resample``; ``fit_generate`` and ``fit_generate_each`` for images of
any sizes). The images are made by its mixin
``_ImageGeneration`` (``_generation``: the plan of source images, the
augmentation, the quality check of ``_quality`` and the fitted counts);
``_as_images`` and ``_to_input_layout`` (``_layout``) check the input batch
and give the new images its shape and dtype.
"""

import logging
from collections import Counter
from numbers import Integral, Real

import numpy as np
from imblearn.over_sampling.base import BaseOverSampler
from imblearn.utils import check_sampling_strategy, check_target_type
from sklearn.utils import check_consistent_length

from ..utils._docstrings import Substitution, n_jobs_docstring
from ..utils._validation import (
    Interval,
    _fit_context,
    _random_state_docstring,
    check_image_array,
)
from ._generation import _ImageGeneration
from ._layout import _as_images, _to_input_layout

__all__ = ["ClassAwareAugmenter"]

# the records of the generation (``_generation.logger`` is this logger)
logger = logging.getLogger(__name__)


@Substitution(
    sampling_strategy=BaseOverSampler._sampling_strategy_docstring,
    random_state=_random_state_docstring,
    n_jobs=n_jobs_docstring("Number of threads that make images.",
                            "The images do not depend on it."),
)
class ClassAwareAugmenter(_ImageGeneration, BaseOverSampler):
    """Over-sample classes with augmented copies of their own images.

    An imbalanced-learn over-sampler for images: each class that the sampling
    strategy targets is brought up to its target count with new images made
    from that class's images by random rotations, flips, scaling, shifts,
    perspective changes, brightness, contrast, gamma, hue and saturation
    changes, blur, noise and JPEG re-compression (:mod:`hybridclf.augment`).
    The source images are used in turn, in a shuffled order, so every image of
    a class gets the same number of copies, give or take one.

    Every generated image is checked: it must not be blank, not much more
    clipped to black or white than its source, and similar to its source (SSIM
    at least ``quality_threshold``). An image that fails is drawn again, up to
    ``max_attempts`` times, then dropped. The counts are kept in
    ``n_regenerated_`` and ``n_dropped_``, and a dropped image is also logged
    and warned about.

    As the ``augment`` step of :func:`~hybridclf.make_hybrid_pipeline` it acts
    only during ``fit``: the classifier learns from the originals and their
    copies, and ``predict`` sees the images unchanged. Since copies are made
    inside ``fit``, cross-validation never trains on a copy of a test image.

    Parameters
    ----------
    {sampling_strategy}

    target_samples : int or None, default=None
        Number of images every class should have: classes with fewer are
        brought up to it, classes with as many or more are left as they are.
        Replaces ``sampling_strategy``, which must then stay "auto".

    augmentation_factor : float or None, default=None
        The most a class may grow: a class of ``n`` images ends with at most
        ``floor(augmentation_factor * n)``, so no image gets more than
        ``augmentation_factor - 1`` copies on average. It caps the target of
        ``sampling_strategy`` or ``target_samples``; ``None`` sets no cap.

    techniques : dict or None, default=None
        Changes to the augmentation techniques and their ``(probability,
        (low, high))``, as in :func:`hybridclf.augment.check_techniques`; for
        example ``{{"vflip": 0.5, "hue": 0.0}}``. ``None`` keeps
        :data:`hybridclf.augment.DEFAULT_TECHNIQUES`.

    quality_threshold : float, default=0.6
        Lowest accepted structural similarity (SSIM, from -1 to 1) between a
        generated image and its source after the same geometric transform,
        computed on 64x64 greyscale copies. With the default techniques the
        SSIM of amulet photos stays above 0.8; below about 0.6 the engraving
        of an amulet is lost in darkness, blur or noise. 0 accepts any image
        that is neither blank nor saturated.

    max_attempts : int, default=3
        How many times an image that fails the quality check is drawn before
        it is dropped.

    {random_state}

    {n_jobs}

    Attributes
    ----------
    sampling_strategy_ : dict
        The number of images asked to be generated for each class, after
        ``target_samples`` and ``augmentation_factor``.

    sample_indices_ : ndarray of shape (n_samples_new,)
        For each output image, the index of the input image it is (the first
        ``n_samples`` rows) or was made from.

    n_generated_ : dict
        Number of generated images kept, for every class (0 for the classes
        not targeted).

    n_regenerated_ : dict
        Number of generated images that failed the quality check and were
        drawn again, for every class.

    n_dropped_ : dict
        Number of images given up after ``max_attempts`` failed checks, for
        every class; the class ends that many images short of its target.

    rejections_ : dict
        Number of failed checks by reason: "blank", "saturated" and
        "dissimilar".

    similarity_ : ndarray of shape (n_generated,)
        SSIM of each generated image kept, in output order.

    augmentation_params_ : list of dict
        The techniques and values applied to each generated image kept, as
        drawn by :func:`hybridclf.augment.draw_params`.

    image_shape_ : tuple of int
        Shape of one input image.

    See Also
    --------
    imblearn.over_sampling.RandomOverSampler : Over-sample with exact copies.
    hybridclf.augment.random_augment : Augment one image.

    Notes
    -----
    Unlike the original tool's augmentation script, classes already at or
    above ``target_samples`` are not enlarged.

    The similarity is measured after the geometric transform because SSIM
    compares pixels in place: a 10 degree rotation alone gives a low SSIM on a
    detailed photo although nothing of the object is lost. The geometric ranges
    are bounded instead (see :data:`hybridclf.augment.DEFAULT_TECHNIQUES`).

    References
    ----------
    Z. Wang, A. C. Bovik, H. R. Sheikh and E. P. Simoncelli, "Image quality
    assessment: from error visibility to structural similarity", IEEE
    Transactions on Image Processing 13(4), 600-612, 2004.
    :doi:`10.1109/TIP.2003.819861`

    Examples
    --------
    >>> import numpy as np
    >>> from skimage.data import astronaut
    >>> from hybridclf import ClassAwareAugmenter
    >>> X = np.stack([astronaut()[i : i + 32, :32] for i in range(0, 160, 32)])
    >>> y = np.array([0, 0, 0, 0, 1])
    >>> X_res, y_res = ClassAwareAugmenter(random_state=0).fit_resample(X, y)
    >>> X_res.shape, np.bincount(y_res)
    ((8, 32, 32, 3), array([4, 4]))
    """

    _parameter_constraints: dict = {
        **BaseOverSampler._parameter_constraints,
        "target_samples": [Interval(Integral, 1, None, closed="left"), None],
        "augmentation_factor": [Interval(Real, 1, None, closed="left"), None],
        "techniques": [dict, None],
        "quality_threshold": [Interval(Real, 0, 1, closed="both")],
        "max_attempts": [Interval(Integral, 1, None, closed="left")],
        "n_jobs": [Integral, None],
    }

    def __init__(
        self, *, sampling_strategy="auto", target_samples=None,
        augmentation_factor=None, techniques=None, quality_threshold=0.6,
        max_attempts=3, random_state=None, n_jobs=None,
    ):
        self.sampling_strategy = sampling_strategy
        self.target_samples = target_samples
        self.augmentation_factor = augmentation_factor
        self.techniques = techniques
        self.quality_threshold = quality_threshold
        self.max_attempts = max_attempts
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _check_X_y(self, X, y, accept_sparse=None):
        # imblearn's check requires 2-D tables; images are 3-D or 4-D arrays
        y, binarize_y = check_target_type(y, indicate_one_vs_all=True)
        _as_images(X, type(self).__name__)
        check_consistent_length(X, y)
        return X, y, binarize_y

    def _resolve_strategy(self, y):
        """Number of images to generate per class, as a dict."""
        counts = Counter(np.asarray(y).tolist())
        if self.target_samples is not None:
            if not (isinstance(self.sampling_strategy, str)
                    and self.sampling_strategy == "auto"):
                raise ValueError(
                    "The 'target_samples' parameter of ClassAwareAugmenter replaces "
                    "'sampling_strategy', which must then be 'auto'. Got "
                    f"sampling_strategy={self.sampling_strategy!r} and "
                    f"target_samples={self.target_samples!r}; set one of them."
                )
            wanted = {c: self.target_samples - n for c, n in counts.items()
                      if n < self.target_samples}
        else:
            wanted = check_sampling_strategy(
                self.sampling_strategy, y, self._sampling_type)
        strategy = {}
        for label in sorted(wanted):
            n_new = int(wanted[label])
            if self.augmentation_factor is not None:
                cap = int(np.floor(self.augmentation_factor * counts[label] + 1e-9))
                n_new = min(n_new, cap - counts[label])
            strategy[np.asarray(label).item()] = n_new
        return strategy

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Check the images and work out how many to generate per class.

        You should use ``fit_resample`` in all cases.

        Parameters
        ----------
        X : ndarray of shape (n_samples, height, width[, n_channels])
            The images: uint8, or float32/float64 with values in [0, 1].

        y : array-like of shape (n_samples,)
            The class of each image.

        Returns
        -------
        self : object
            The sampler, with ``sampling_strategy_`` set.
        """
        X, y, _ = self._check_X_y(X, y)
        self.sampling_strategy_ = self._resolve_strategy(y)
        self.image_shape_ = X.shape[1:]
        return self

    def fit_resample(self, X, y):
        """Add augmented images to the classes the strategy targets.

        Parameters
        ----------
        X : ndarray of shape (n_samples, height, width[, n_channels])
            The images: uint8, or float32/float64 with values in [0, 1]. It is
            not modified.

        y : array-like of shape (n_samples,)
            The class of each image.

        Returns
        -------
        X_resampled : ndarray of shape (n_samples_new, height, width[, \
n_channels])
            The input images, then the generated ones, in the input's dtype.

        y_resampled : ndarray of shape (n_samples_new,)
            The class of each output image.
        """
        return super().fit_resample(X, y)

    def _fit_resample(self, X, y):
        images = _as_images(X, type(self).__name__)
        self.image_shape_ = X.shape[1:]
        generated, sources = self._generate(images, y)
        self.sample_indices_ = np.concatenate([np.arange(len(X)), sources])
        X_new = _to_input_layout(generated, X)
        return np.concatenate([X, X_new]), np.concatenate([y, y[sources]])

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_generate(self, images, y, *, progress=False):
        """Fit on images of any sizes and return only the generated images.

        What :meth:`fit_resample` does, for images that cannot be stacked into
        one array, such as photos of different sizes (``hybridclf augment``
        uses it). The fitted attributes are set as by :meth:`fit_resample`,
        except ``sample_indices_`` and ``image_shape_``.

        Parameters
        ----------
        images : sequence of ndarray of shape (height, width[, 3]), dtype uint8
            The images, each of its own size, in RGB order.

        y : array-like of shape (n_samples,)
            The class of each image.

        progress : bool, default=False
            Show a progress bar over the images made.

        Returns
        -------
        generated : list of ndarray
            The new images, each of its source's shape.

        sources : ndarray of shape (n_generated,), dtype intp
            The index in ``images`` of each new image's source.
        """
        images = [check_image_array(image, what=f"Image {i} of 'images'")
                  for i, image in enumerate(images)]
        y, _ = check_target_type(y, indicate_one_vs_all=True)
        check_consistent_length(images, y)
        return self._generate(images, y, progress=progress)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_generate_each(self, load, y, write, *, progress=False):
        """Fit, and hand each generated image to ``write`` as soon as it is made.

        What :meth:`fit_generate` does, with the images loaded one source at
        a time and none kept: about one source image per thread is in
        memory, however many images there are (``hybridclf augment`` reads
        its photos this way). The images made, and the fitted attributes,
        are those of :meth:`fit_generate` on the same images.

        Parameters
        ----------
        load : callable
            ``load(i)`` returns image ``i`` (an ndarray of shape
            (height, width[, 3]), dtype uint8, RGB). It is called once per
            source image and thread, from ``n_jobs`` threads at once; the
            images of a class without new images are never loaded.

        y : array-like of shape (n_samples,)
            The class of each image.

        write : callable
            ``write(k, i, image)`` takes new image ``k`` (its rank in the
            plan, from 0; a gap where one was dropped), made from image ``i``,
            as soon as it has passed the quality check; from ``n_jobs``
            threads at once, in no set order.

        progress : bool, default=False
            Show a progress bar over the images made.

        Returns
        -------
        written : ndarray of shape (n_generated,), dtype intp
            The ``k`` of every image passed to ``write``, ascending: the
            order of :meth:`fit_generate`'s images.

        sources : ndarray of shape (n_generated,), dtype intp
            The source index of each of them.
        """
        y, _ = check_target_type(y, indicate_one_vs_all=True)

        def checked(i):
            return check_image_array(load(i), what=f"Image {i} of 'load'")

        written, sources = self._generate_each(checked, y, write, progress=progress)
        return np.asarray(written, dtype=np.intp), sources

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.input_tags.sparse = False
        tags.input_tags.dataframe = False
        return tags
