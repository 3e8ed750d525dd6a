"""The one place that imports scikit-learn's and imbalanced-learn's private helpers.

Everything else in hybridclf imports them from here, so a change in their
private APIs is fixed in one file. :func:`check_image_array` is the image
check of the augmentation functions and the class-aware augmenter.
"""

import numpy as np
from imblearn.utils._docstring import _random_state_docstring
from sklearn.base import _fit_context
from sklearn.utils._param_validation import (
    HasMethods,
    Interval,
    InvalidParameterError,
    Options,
    StrOptions,
    generate_invalid_param_val,
    make_constraint,
    validate_params,
)
from sklearn.utils._set_output import _get_output_config
from sklearn.utils._user_interface import _print_elapsed_time
from sklearn.utils.validation import _check_sample_weight

__all__ = [
    "_random_state_docstring",
    "HasMethods",
    "Interval",
    "InvalidParameterError",
    "Options",
    "StrOptions",
    "_check_sample_weight",
    "_fit_context",
    "_get_output_config",
    "_print_elapsed_time",
    "check_image_array",
    "generate_invalid_param_val",
    "make_constraint",
    "validate_params",
]

_SHAPES = {
    False: "(height, width) or (height, width, 3)",
    True: "(n_samples, height, width), (n_samples, height, width, 1) or "
          "(n_samples, height, width, 3)",
}


def check_image_array(X, *, what, batch=False, allow_float=False, hint=""):
    """Check an image (or a batch) as a numpy array and return it as uint8.

    Parameters
    ----------
    X : object
        The image: shape (height, width) or (height, width, 3); with
        ``batch``, images stacked along a first axis, which may also end in
        one channel.

    what : str
        How errors name ``X`` (``"The 'image' argument"``).

    batch : bool, default=False
        Whether ``X`` is a batch of images.

    allow_float : bool, default=False
        Also accept float32/float64 values in [0, 1] (converted to uint8).

    hint : str, default=""
        A sentence that errors end with: how to fix the input.

    Returns
    -------
    images : ndarray of dtype uint8
        ``X`` itself when it is uint8; a single channel axis is dropped.

    Raises
    ------
    TypeError
        When ``X`` is not a numpy array or has another dtype.

    ValueError
        When the shape is not an image's, or float values leave [0, 1].
    """
    hint = f" {hint}" if hint else ""
    if not isinstance(X, np.ndarray):
        raise TypeError(f"{what} must be a numpy array of shape {_SHAPES[batch]}; "
                        f"got {type(X).__name__}.{hint}")
    ndim, channels = X.ndim - batch, (1, 3) if batch else (3,)
    if ndim not in (2, 3) or (ndim == 3 and X.shape[-1] not in channels):
        raise ValueError(f"{what} must have shape {_SHAPES[batch]}; got shape "
                         f"{X.shape}.{hint}")
    if X.dtype == np.uint8:
        images = X
    elif allow_float and X.dtype in (np.float32, np.float64):
        if X.size and (not np.isfinite(X).all() or X.min() < 0 or X.max() > 1):
            raise ValueError(
                f"{what} must hold float values in [0, 1]; got values in "
                f"[{X.min():.3g}, {X.max():.3g}]. Divide 8-bit values by 255."
            )
        images = np.rint(X * 255.0).astype(np.uint8)
    else:
        dtypes = "uint8, float32 or float64" if allow_float else "uint8"
        raise TypeError(f"{what} must have dtype {dtypes}; got {X.dtype}. Convert "
                        "it first, for example with hybridclf.io.read_image.")
    if ndim == 3 and images.shape[-1] == 1:
        images = images[..., 0]
    return images
