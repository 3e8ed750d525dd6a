"""The :class:`ImageLoader` transformer: a batch of images read to one shape.

The first step of a pipeline: every image of a batch is read (in threads),
resized to ``size`` and stacked; :meth:`ImageLoader.read_measured` also
measures each image as decoded (the photo quality at read), and
:meth:`ImageLoader.read_each` answers each image on its own.
"""

import os
from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from ..exceptions import ImageLoadError
from ..utils._docstrings import Substitution, _ignored_docstring
from ..utils._parallel import run_chunked
from ..utils._validation import Interval, StrOptions, _fit_context
from ._decode import DEFAULT_MAX_PIXELS
from ._read import DEFAULT_MIN_SIZE, _read_one, _source_name, fit_to_size

__all__ = ["ImageLoader"]

#: The modules of this package: they make the loader's images, so their
#: sources key the caches of what is computed from images (the feature cache
#: of training, via the loader's module; the duplicate search cache of
#: ``hybridclf inspect``): a change to any of them misses the caches, as a
#: change to the one module ``hybridclf/io.py`` did.
_SOURCE_MODULES = (
    "hybridclf.io",
    "hybridclf.io._files",
    "hybridclf.io._decode",
    "hybridclf.io._read",
    "hybridclf.io._loader",
    "hybridclf.io._scan",
    "hybridclf.io._folders",
    "hybridclf.io._readable",
    "hybridclf.io._groups_csv",
)


def _as_sequence(X):
    """Return the images of X as an indexable sequence, rejecting single items."""
    if isinstance(X, (str, os.PathLike, bytes, bytearray)):
        raise TypeError(
            "ImageLoader expects a sequence of images (paths, bytes or arrays); "
            f"got a single {type(X).__name__}. Wrap it in a list: [{X!r:.60}]."
        )
    if hasattr(X, "iloc") and getattr(X, "ndim", 1) == 2 and X.shape[1] == 1:
        X = X.iloc[:, 0]  # a one-column DataFrame of paths
    if hasattr(X, "to_numpy"):
        X = X.to_numpy()
    if isinstance(X, np.ndarray):
        if X.dtype.kind in "OUS":
            if X.ndim == 2 and X.shape[1] == 1:
                X = X[:, 0]
            if X.ndim != 1:
                raise ValueError(
                    "ImageLoader expects a 1-D sequence of paths; got an array of "
                    f"shape {X.shape}."
                )
            return list(X)
        if X.ndim not in (3, 4):
            raise ValueError(
                "ImageLoader expects a sequence of images; a numeric array must have"
                " shape (n_images, height, width[, channels]); got shape "
                f"{X.shape}."
            )
        if X.ndim == 3 and X.shape[-1] in (3, 4):
            # read as greyscale images 3 or 4 pixels wide, each "too small"
            raise ValueError(
                "ImageLoader expects a sequence of images; got one array of shape "
                f"{X.shape}, which reads as {X.shape[0]} greyscale images "
                f"{X.shape[-1]} pixels wide. For one colour image, pass [image] "
                "or image[np.newaxis]."
            )
        return X
    return list(X)


class ImageLoader(TransformerMixin, BaseEstimator, auto_wrap_output_keys=None):
    """Read images and resize them to one shape: the first step of a pipeline.

    Turns a 1-D sequence of image files, encoded byte strings or arrays of any
    sizes into one ``uint8`` array of shape (n_images, height, width, 3) in RGB
    order, ready for the feature extractors of :mod:`hybridclf.features`. Files
    are decoded with OpenCV (complete JPEGs, the common case) or Pillow (every
    other format, and any JPEG that may be truncated), with the EXIF
    orientation applied and greyscale, palette, CMYK, RGBA and 16-bit images
    converted to 8-bit RGB.

    Every image is read; none is skipped or replaced. If any cannot be read, one
    :class:`~hybridclf.exceptions.ImageLoadError` names every failing file with
    its reason, after all images were tried.

    The loader learns nothing: ``fit`` only validates the parameters, and
    ``transform`` works on an unfitted loader too.

    Parameters
    ----------
    size : int or tuple of (int, int), default=224
        Output (height, width); an int gives a square.

    aspect : {"pad", "crop", "stretch"}, default="pad"
        How an image whose aspect ratio differs from ``size`` is fitted:

        - "pad": scale to fit inside, fill the borders with ``background``;
          nothing of the image is lost.
        - "crop": scale to cover, then cut the centre; no border.
        - "stretch": scale each axis on its own; shapes are distorted.

    background : tuple of 3 int, default=(255, 255, 255)
        RGB colour behind transparent pixels and of the "pad" borders.

    min_size : int, default=16
        Smallest accepted height and width of a source image, in pixels;
        smaller images are reported as too small. The default,
        :data:`~hybridclf.io.DEFAULT_MIN_SIZE`, is every model's.

    max_pixels : int, default=64_000_000
        Most pixels (width x height) an encoded image may declare in its
        header; a larger one is refused before it is decoded and reported
        like an unreadable image (a decompression bomb costs nothing).
        64 megapixels (:data:`DEFAULT_MAX_PIXELS`) holds a 64 MP camera photo.
        Large JPEGs under the limit are still decoded at a reduced scale
        when far larger than ``size``.

    n_jobs : int, default=None
        Number of threads that decode and resize. ``None`` means 1 unless in a
        :func:`joblib.parallel_config` context; ``-1`` means all processors.

    See Also
    --------
    read_image : Read one image at its own size.
    load_image_folder : List the images and labels of a class-per-folder tree.

    Examples
    --------
    >>> import numpy as np
    >>> from hybridclf.io import ImageLoader
    >>> images = [np.zeros((30, 60), dtype=np.uint8), np.ones((50, 40, 3))]
    >>> ImageLoader(size=32).fit_transform(images).shape
    (2, 32, 32, 3)
    """

    _parameter_constraints: dict = {
        "size": [Interval(Integral, 1, None, closed="left"), tuple],
        "aspect": [StrOptions({"pad", "crop", "stretch"})],
        "background": [tuple, list],
        "min_size": [Interval(Integral, 1, None, closed="left")],
        "max_pixels": [Interval(Integral, 1, None, closed="left")],
        "n_jobs": [Integral, None],
    }

    def __init__(self, *, size=224, aspect="pad", background=(255, 255, 255),
                 min_size=DEFAULT_MIN_SIZE, max_pixels=DEFAULT_MAX_PIXELS,
                 n_jobs=None):
        self.size = size
        self.aspect = aspect
        self.background = background
        self.min_size = min_size
        self.max_pixels = max_pixels
        self.n_jobs = n_jobs

    @_fit_context(prefer_skip_nested_validation=True)
    @Substitution(ignored=_ignored_docstring("X", "y"))
    def fit(self, X=None, y=None):
        """Validate the parameters; the loader learns nothing from data.

        Parameters
        ----------
        {ignored}

        Returns
        -------
        self : object
            The loader.
        """
        self._target()
        self._background()
        return self

    def __setstate__(self, state):
        # loaders saved before 'max_pixels' existed get the default
        state.setdefault("max_pixels", DEFAULT_MAX_PIXELS)
        super().__setstate__(state)

    def _target(self):
        """Validated (height, width) of the output."""
        size = self.size
        if isinstance(size, Integral):
            return (int(size), int(size))
        if (
            len(size) != 2
            or not all(isinstance(s, Integral) and s >= 1 for s in size)
        ):
            raise ValueError(
                "The 'size' parameter of ImageLoader must be an int >= 1 or a "
                f"tuple of two such ints (height, width). Got {size!r} instead."
            )
        return (int(size[0]), int(size[1]))

    def _background(self):
        bg = tuple(self.background)
        if len(bg) != 3 or not all(isinstance(c, Integral) and 0 <= c <= 255
                                   for c in bg):
            raise ValueError(
                "The 'background' parameter of ImageLoader must be a tuple of 3 "
                f"ints in 0..255 (an RGB colour). Got {self.background!r} instead."
            )
        return bg

    def transform(self, X):
        """Read and resize every image.

        Parameters
        ----------
        X : sequence of str, os.PathLike, bytes or ndarray, or ndarray
            The images: a 1-D sequence (list, array, pandas Series) of file
            paths, encoded image bytes or arrays of shape (height, width[,
            channels]) of any sizes; or one array of shape (n_images, height,
            width[, channels]).

        Returns
        -------
        images : ndarray of shape (n_images, height, width, 3), dtype uint8
            The images in RGB order, with (height, width) equal to ``size``.

        Raises
        ------
        ImageLoadError
            When any image cannot be read. All images are tried first, and the
            message lists every failure.

        See Also
        --------
        read_each : The images that can be read, and a reason for each other.
        read_measured : The images, and a measure of each as decoded.
        """
        return self.read_measured(X, None)[0]

    def read_measured(self, X, measure):
        """Read and resize every image, and measure each as it was decoded.

        What :meth:`transform` does, and ``measure`` called on every image at
        its own size (a large JPEG possibly decoded at a reduced scale, never
        under ``size``), before it is resized: what a photo-quality check
        needs, without decoding the file a second time.

        Parameters
        ----------
        X : sequence of str, os.PathLike, bytes or ndarray, or ndarray
            The images, as :meth:`transform` takes them.

        measure : callable or None
            Called with each decoded image, an RGB ``uint8`` array of shape
            (height, width, 3); None measures nothing.

        Returns
        -------
        images : ndarray of shape (n_images, height, width, 3), dtype uint8
            As from :meth:`transform`.

        measures : list
            What ``measure`` returned for each image (None without it).

        Raises
        ------
        ImageLoadError
            As :meth:`transform`.

        Examples
        --------
        >>> import numpy as np
        >>> from hybridclf.io import ImageLoader
        >>> images, shapes = ImageLoader(size=8).read_measured(
        ...     [np.zeros((40, 30), np.uint8)], lambda image: image.shape)
        >>> images.shape, shapes
        ((1, 8, 8, 3), [(40, 30, 3)])
        """
        images = _as_sequence(X)
        out, reasons, measures = self._read(images, measure)
        failures = [(_source_name(images[i], i), reason)
                    for i, reason in enumerate(reasons) if reason is not None]
        if failures:
            raise ImageLoadError(
                failures,
                hint=(
                    "Fix or remove these files (`hybridclf inspect` lists every "
                    "problem of a dataset), lower 'min_size' for small images or "
                    "raise 'max_pixels' for huge ones."
                ),
            )
        return out, measures

    def read_each(self, X, *, measure=None):
        """Read and resize the images that can be read; say why for the others.

        Unlike :meth:`transform`, an unreadable image raises nothing: its
        reason is returned in its place, and the others are read as usual.
        This is what a service needs that answers each image of a batch on
        its own.

        Parameters
        ----------
        X : sequence of str, os.PathLike, bytes or ndarray, or ndarray
            The images, as :meth:`transform` takes them.

        measure : callable or None, default=None
            Also call it on each image read, as decoded (see
            :meth:`read_measured`), and return what it gave.

        Returns
        -------
        images : ndarray of shape (n_read, height, width, 3), dtype uint8
            The images that could be read, in the order of ``X``.

        reasons : list of str or None
            One entry per image of ``X``: None when it was read, else why it
            could not be (empty, truncated, not an image, too small, ...).

        measures : list
            Only with ``measure``: what it returned for each image read, in
            the order of ``images``.

        Examples
        --------
        >>> import numpy as np
        >>> from hybridclf.io import ImageLoader
        >>> images, reasons = ImageLoader(size=8, min_size=1).read_each(
        ...     [np.zeros((4, 4), np.uint8), b"not an image"])
        >>> images.shape, reasons[0], reasons[1] is not None
        ((1, 8, 8, 3), None, True)
        """
        out, reasons, measures = self._read(_as_sequence(X), measure)
        read = [i for i, reason in enumerate(reasons) if reason is None]
        if len(read) < len(reasons):
            out, measures = out[read], [measures[i] for i in read]
        return (out, reasons) if measure is None else (out, reasons, measures)

    def _read(self, images, measure):
        """Every image resized (zeros where unread), the reasons, the measures."""
        self._validate_params()
        target = self._target()
        background = self._background()
        n = len(images)
        out = np.empty((n, target[0], target[1], 3), dtype=np.uint8)
        reasons, measures = [None] * n, [None] * n

        def work(chunk):
            for i in range(chunk.start, chunk.stop):
                try:
                    rgb = _read_one(images[i], background, self.min_size, target,
                                    self.max_pixels)
                    out[i] = fit_to_size(rgb, target, self.aspect, background)
                except ValueError as exc:
                    reasons[i] = str(exc)
                    continue
                if measure is not None:
                    measures[i] = measure(rgb)

        run_chunked(work, n, self.n_jobs)
        return out, reasons, measures

    def set_output(self, *, transform=None):
        """Accept an output container and keep returning arrays of images.

        Images of shape (n_images, height, width, 3) are no table, so
        ``transform`` returns them as an ndarray whatever the container. This
        method lets ``pipe.set_output(transform="pandas")`` (and
        ``sklearn.set_config(transform_output=...)``) apply to the steps after
        the loader: the feature blocks then return DataFrames.

        Parameters
        ----------
        transform : {"default", "pandas", "polars"} or None, default=None
            Ignored: the loader's output is always an ndarray.

        Returns
        -------
        self : object
            The loader.
        """
        return self

    @Substitution(ignored=_ignored_docstring("input_features"))
    def get_feature_names_out(self, input_features=None):
        """Return None: images have no feature names.

        A pipeline's feature names come from the extractors after the loader,
        so ``pipe[:-1].get_feature_names_out()`` works on a hybrid pipeline.

        Parameters
        ----------
        {ignored}

        Returns
        -------
        None
        """
        return None

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.input_tags.three_d_array = True
        return tags
