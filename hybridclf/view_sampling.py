"""Fixed extra views of every training image, when the classes are small."""

import logging
from numbers import Integral, Real

import cv2
import numpy as np
from imblearn.base import BaseSampler
from sklearn.base import clone
from sklearn.utils import check_consistent_length
from sklearn.utils.multiclass import check_classification_targets

from .utils._validation import Interval, _fit_context

__all__ = ["AUTO_VIEWS", "DEFAULT_VIEWS", "OBJECT_VIEWS", "VIEWS", "ViewAugmenter",
           "decide_views", "make_view"]

logger = logging.getLogger(__name__)

#: The views that ``ViewAugmenter(views=...)`` knows by name.
VIEWS = ("hflip", "vflip", "rotate_left", "rotate_right", "crop", "zoom_out",
         "hue_turn", "darken", "blur")

#: ViewAugmenter's default views (``--photo-views``): they keep the class of
#: any photo (amulets, digits) and the detail of textures that fill the frame.
DEFAULT_VIEWS = ("zoom_out", "hue_turn", "darken")

#: The mirror image, small turns and a blur, for objects photographed at any
#: angle (``hybridclf train --views`` adds them to the default views).
OBJECT_VIEWS = ("hflip", "rotate_left", "rotate_right", "blur")

#: The views of ``make_hybrid_pipeline()``'s default (``sampler="auto"``): the
#: default views and a blur, the best on the learning curve that lost nowhere
#: (``docs/benchmarks.md``).
AUTO_VIEWS = (*DEFAULT_VIEWS, "blur")

# fixed settings of the photometric views (the benchmark's; not parameters)
_GAMMA = 1.5  # "darken": out = 255 * (in / 255) ** _GAMMA
_BLUR_SIGMA = 1.5  # "blur": Gaussian sigma in pixels


def _rotate(image, degrees):
    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    # reflected borders: black corners would be a pattern shared by every copy
    return cv2.warpAffine(image, matrix, (w, h), borderMode=cv2.BORDER_REFLECT)


def _crop(image, fraction):
    h, w = image.shape[:2]
    ch, cw = max(1, int(h * fraction)), max(1, int(w * fraction))
    top, left = (h - ch) // 2, (w - cw) // 2
    return cv2.resize(image[top:top + ch, left:left + cw], (w, h),
                      interpolation=cv2.INTER_LINEAR)


def _zoom_out(image, fraction):
    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), 0.0, fraction)
    return cv2.warpAffine(image, matrix, (w, h), borderMode=cv2.BORDER_REFLECT)


def _hue_turn(image):
    """Hue turned half a circle (red <-> cyan); grey and 2-D images unchanged."""
    if image.ndim != 3 or image.shape[2] != 3:
        return image.copy()
    if image.dtype == np.uint8:
        hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
        hsv[..., 0] = (hsv[..., 0].astype(np.int16) + 90) % 180  # hue: 0-179
        return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    # float (or 16-bit) RGB: OpenCV's float HSV, hue in degrees; the turn
    # keeps each pixel's min and max, so any value range comes back as it was
    hsv = cv2.cvtColor(image.astype(np.float32), cv2.COLOR_RGB2HSV)
    hsv[..., 0] = (hsv[..., 0] + 180.0) % 360.0
    rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    return (np.rint(rgb) if np.issubdtype(image.dtype, np.integer) else rgb
            ).astype(image.dtype)


def _darken(image):
    if image.dtype != np.uint8:
        top = 1.0 if image.max() <= 1.0 else 255.0
        return (top * (np.clip(image, 0, top) / top) ** _GAMMA).astype(image.dtype)
    lut = (255.0 * (np.arange(256) / 255.0) ** _GAMMA).astype(np.uint8)
    return lut[image]


def make_view(image, view, *, angle=12.0, crop_fraction=0.85):
    """One named view of one image, in the image's shape and dtype.

    Parameters
    ----------
    image : ndarray of shape (height, width[, n_channels])
        The image.

    view : {"hflip", "vflip", "rotate_left", "rotate_right", "crop", \
"zoom_out", "hue_turn", "darken", "blur"}
        The mirror image, the image upside down, turned by ``angle`` degrees
        anticlockwise or clockwise (borders reflected), its centre part of
        ``crop_fraction`` of each side enlarged back to the full size, the
        whole image shrunk to ``crop_fraction`` of its side (borders
        reflected), its hue turned half a circle (red becomes cyan; grey
        stays grey), darkened (gamma 1.5), or blurred (Gaussian, sigma 1.5
        pixels).

    angle : float, default=12.0
        Degrees of the two rotations.

    crop_fraction : float, default=0.85
        Side of the centre crop, and of the shrunk image of "zoom_out", as a
        fraction of the image's.

    Returns
    -------
    view : ndarray of the shape and dtype of ``image``
    """
    if view == "hflip":
        return np.ascontiguousarray(image[:, ::-1])
    if view == "vflip":
        return np.ascontiguousarray(image[::-1])
    if view == "rotate_left":
        return _rotate(image, angle)
    if view == "rotate_right":
        return _rotate(image, -angle)
    if view == "crop":
        return _crop(image, crop_fraction)
    if view == "zoom_out":
        return _zoom_out(image, crop_fraction)
    if view == "hue_turn":
        return _hue_turn(image)
    if view == "darken":
        return _darken(image)
    if view == "blur":
        return cv2.GaussianBlur(image, (0, 0), _BLUR_SIGMA)
    raise ValueError(
        f"The 'views' parameter of ViewAugmenter must list names among "
        f"{list(VIEWS)}. Got {view!r} instead."
    )


class ViewAugmenter(BaseSampler):
    """Add fixed views of every training image when the smallest class is small.

    A sampler for the ``augment`` step of
    :func:`~hybridclf.make_hybrid_pipeline`: during ``fit`` only, each image
    is joined by the same few views of it (by default: shrunk to 85 %, its hue
    turned half a circle, darkened), with its label, so a class of 3 photos
    trains on 12. ``predict`` sees the images unchanged.

    Unlike :class:`~hybridclf.ClassAwareAugmenter`, which balances classes
    with random changes, the views are the same for every image and every
    class, and they are added only when they pay: when the training set's
    smallest class has fewer than ``max_smallest_class`` images
    (``make_hybrid_pipeline(sampler="views")``, ``hybridclf train
    --photo-views``; with a blur, the default ``sampler="auto"``). On the
    learning curve (``docs/benchmarks.md``, ``bench_learning_curve.py``, 20
    paired draws) the default views raised
    the default pipeline by 3.9, 3.4 and 0.7 points at 3, 5 and 10 photos
    per class on amulet6, and by 4.6, 2.6 and 0.8 on handwritten digits; at
    15 photos or more they are not added (at 20 on amulet6, added always,
    they cost 0.4 points).
    Which views were added is kept in ``views_`` (empty when none were).

    With a blur beside them (:data:`AUTO_VIEWS`) they are the default of
    :func:`~hybridclf.make_hybrid_pipeline` (``sampler="auto"``). A
    classifier that leaves one image out to calibrate its probabilities must
    leave its views out with it, or its probabilities come out overconfident
    (and so do the open-set thresholds learned from them): the pipeline
    passes ``groups`` (the image each row was made from,
    :func:`~hybridclf.grouped_fit.view_groups`) to
    :class:`~hybridclf.classifiers.RidgeSoftmaxClassifier`'s ``fit``, which
    then leaves each image out with its views (``docs/benchmarks.md``,
    "Calibration with views").

    :data:`OBJECT_VIEWS`, the mirror image, 12-degree turns and a blur
    (``hybridclf train --views`` adds them to the default ones), suit
    objects whose class does not depend on the side or the angle they are
    seen from (amulets, coins, leaves), but on handwritten digits the mirror
    and turns cost accuracy from 5 images per class on, and the blur erases
    textures that fill the frame (``docs/choosing-features.md``). Drop a
    view that changes the class, such as ``"hflip"`` for text or digits.

    Parameters
    ----------
    views : tuple of str, default=("zoom_out", "hue_turn", "darken")
        The views added per image (:data:`DEFAULT_VIEWS`), among:

        - "hflip": the mirror image (left-right).
        - "vflip": the image upside down.
        - "rotate_left", "rotate_right": turned by ``angle`` degrees.
        - "crop": the centre ``crop_fraction`` enlarged to the full size.
        - "zoom_out": the whole image shrunk to ``crop_fraction``, borders
          reflected (the object seen from further away).
        - "hue_turn": the hue turned half a circle (another background or
          lighting colour); "darken": gamma 1.5; "blur": Gaussian, sigma 1.5.

    angle : float, default=12.0
        Degrees of the two rotations.

    crop_fraction : float, default=0.85
        Side of the centre crop, and of the shrunk image of "zoom_out", as a
        fraction of the image's.

    max_smallest_class : int or None, default=15
        Views are added only when the smallest class has fewer images than
        this; ``None`` adds them always.

    Attributes
    ----------
    views_ : tuple of str
        The views added in the last ``fit_resample``: ``views``, or ``()``
        when the classes were large enough.

    smallest_class_ : int
        Number of images of the smallest class seen in ``fit_resample``.

    sample_indices_ : ndarray of shape (n_samples_new,)
        Index in the input of the image each output image was made from.

    See Also
    --------
    hybridclf.ClassAwareAugmenter : Random augmentation that balances classes.

    References
    ----------
    .. [1] K. Chatfield, K. Simonyan, A. Vedaldi and A. Zisserman, "Return of
       the devil in the details: delving deep into convolutional nets", BMVC
       2014 (flips and crops of the training images for CNN features).
       :doi:`10.5244/C.28.6`

    Examples
    --------
    >>> import numpy as np
    >>> from hybridclf.view_sampling import ViewAugmenter
    >>> images = np.zeros((4, 32, 32, 3), np.uint8)
    >>> X, y = ViewAugmenter().fit_resample(images, [0, 0, 1, 1])
    >>> X.shape, y[:6].tolist()
    ((16, 32, 32, 3), [0, 0, 1, 1, 0, 0])
    """

    _sampling_type = "bypass"

    _parameter_constraints: dict = {
        "views": [tuple, list],
        "angle": [Interval(Real, 0, 180, closed="neither")],
        "crop_fraction": [Interval(Real, 0, 1, closed="neither")],
        "max_smallest_class": [Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(self, *, views=DEFAULT_VIEWS,
                 angle=12.0, crop_fraction=0.85, max_smallest_class=15):
        self.views = views
        self.angle = angle
        self.crop_fraction = crop_fraction
        self.max_smallest_class = max_smallest_class

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Check the images and decide which views to add.

        You should use ``fit_resample`` in all cases.

        Parameters
        ----------
        X : ndarray of shape (n_samples, height, width[, n_channels])
            The images.

        y : array-like of shape (n_samples,)
            The class of each image.

        Returns
        -------
        self : object
            The sampler, with ``views_`` and ``smallest_class_`` set.
        """
        if not isinstance(X, np.ndarray) or X.ndim not in (3, 4):
            raise ValueError(
                "ViewAugmenter expects images as one array of shape (n_samples, "
                "height, width[, n_channels]); got "
                f"{getattr(X, 'shape', type(X).__name__)!r}. Put it after the "
                "ImageLoader, before the feature extraction."
            )
        y = np.asarray(y)
        check_consistent_length(X, y)
        check_classification_targets(y)
        for view in self.views:
            if view not in VIEWS:
                raise ValueError(
                    "The 'views' parameter of ViewAugmenter must list names among "
                    f"{list(VIEWS)}. Got {view!r} instead."
                )
        _, counts = np.unique(y, return_counts=True)
        self.smallest_class_ = int(counts.min())
        small = (self.max_smallest_class is None
                 or self.smallest_class_ < self.max_smallest_class)
        self.views_ = tuple(self.views) if small else ()
        logger.info("ViewAugmenter: smallest class %d images; views added: %s",
                    self.smallest_class_, list(self.views_) or "none")
        return self

    def fit_resample(self, X, y):
        """Return the images and, when the classes are small, their views.

        Parameters
        ----------
        X : ndarray of shape (n_samples, height, width[, n_channels])
            The images. It is not modified.

        y : array-like of shape (n_samples,)
            The class of each image.

        Returns
        -------
        X_resampled : ndarray of shape (n_samples * (1 + len(views_)), height, \
width[, n_channels])
            The input images, then each view of all of them in turn.

        y_resampled : ndarray of shape (n_samples * (1 + len(views_)),)
            The class of each output image.
        """
        self.fit(X, y)
        made = [X] + [
            np.stack([make_view(img, view, angle=self.angle,
                                crop_fraction=self.crop_fraction) for img in X])
            for view in self.views_
        ]
        self.sample_indices_ = np.tile(np.arange(len(X)), len(made))
        return np.concatenate(made), np.asarray(y)[self.sample_indices_]

    def _fit_resample(self, X, y):  # pragma: no cover - fit_resample does it all
        return self.fit_resample(X, y)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.input_tags.sparse = False
        return tags


def decide_views(sampler, y):
    """The sampler for the inner folds of ``y``, its views decided on ``y``.

    A :class:`ViewAugmenter` adds views when the smallest class it is fitted
    on has fewer than ``max_smallest_class`` images. Each inner fold of a
    training set (the cross-validation of :func:`~hybridclf.train_model`,
    the threshold folds of :class:`~hybridclf.cascade.CascadePipeline`) holds
    fewer images per class than the whole set, so a fold may add views
    where the fit on the whole set does not: on amulet6's grouped folds, 16
    photos of the smallest class in a training part and about 13 in an inner
    fold's. What the folds measure (the cross-validation score, the
    cascade's threshold) would then be measured on other models than the
    one fitted on the whole set. The decision is taken once, on ``y``, and
    every fold follows it.

    Parameters
    ----------
    sampler : sampler or None
        The pipeline's ``augment`` step.

    y : array-like of shape (n_samples,)
        The labels of the whole training set (the data the outer ``fit``
        receives).

    Returns
    -------
    sampler : sampler or None
        ``sampler`` itself when it is not a :class:`ViewAugmenter` with a
        ``max_smallest_class``; else an unfitted clone that adds its views
        always (``max_smallest_class=None``) when the smallest class of ``y``
        is under the bar, and never (``views=()``) when it is not.

    Examples
    --------
    >>> from hybridclf.view_sampling import ViewAugmenter, decide_views
    >>> decide_views(ViewAugmenter(max_smallest_class=3), [0, 0, 0, 1, 1, 1]).views
    ()
    >>> decide_views(ViewAugmenter(max_smallest_class=4), [0, 0, 0, 1, 1, 1])
    ViewAugmenter(max_smallest_class=None)
    """
    if not isinstance(sampler, ViewAugmenter) or sampler.max_smallest_class is None:
        return sampler
    smallest = np.unique(np.asarray(y), return_counts=True)[1].min()
    if smallest < sampler.max_smallest_class:
        return clone(sampler).set_params(max_smallest_class=None)
    return clone(sampler).set_params(views=())
