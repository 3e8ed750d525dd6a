"""Random combinations of augmentations: the techniques, their draws, their checks.

:func:`random_augment` applies a random combination: it draws the techniques
and their values with :func:`draw_params` from the policy of
:func:`check_techniques` (:data:`DEFAULT_TECHNIQUES` with your changes), then
applies them with :func:`~hybridclf.augment.apply_geometry` and
:func:`~hybridclf.augment.apply_photometry`. Every random draw comes from the
NumPy :class:`~numpy.random.Generator` the caller passes.
"""

from numbers import Real

import numpy as np

from ..utils._validation import check_image_array
from ._geometry import apply_geometry
from ._photometry import apply_photometry

__all__ = [
    "DEFAULT_TECHNIQUES",
    "check_techniques",
    "draw_params",
    "random_augment",
]

#: Each technique's default (probability, (low, high)) of :func:`draw_params`.
#: Values are drawn uniformly from (low, high); flips have no range. The ranges
#: are mild on purpose: the object must stay recognisable.
DEFAULT_TECHNIQUES = {
    "hflip": (0.5, None),
    "vflip": (0.0, None),
    "rotate": (0.5, (-15.0, 15.0)),
    "scale": (0.5, (0.9, 1.1)),
    "translate": (0.3, (-0.06, 0.06)),
    "perspective": (0.3, (0.0, 0.05)),
    "brightness": (0.5, (-0.1, 0.1)),
    "contrast": (0.5, (0.85, 1.15)),
    "gamma": (0.3, (0.8, 1.25)),
    "hue": (0.3, (-8.0, 8.0)),
    "saturation": (0.3, (0.8, 1.2)),
    "blur": (0.2, (0.5, 1.2)),
    "noise": (0.3, (2.0, 8.0)),
    "jpeg": (0.3, (60.0, 95.0)),
}

# accepted (low, high) bounds of each technique's range, and its unit
_LIMITS = {
    "rotate": (-180.0, 180.0, "degrees"),
    "scale": (0.1, 10.0, "zoom factor"),
    "translate": (-0.5, 0.5, "fraction of the side"),
    "perspective": (0.0, 0.25, "fraction of the side"),
    "brightness": (-1.0, 1.0, "fraction of 255"),
    "contrast": (0.0, 10.0, "factor"),
    "gamma": (0.05, 20.0, "exponent"),
    "hue": (-180.0, 180.0, "degrees"),
    "saturation": (0.0, 10.0, "factor"),
    "blur": (0.0, 20.0, "sigma in pixels"),
    "noise": (0.0, 255.0, "sigma in grey levels"),
    "jpeg": (1.0, 100.0, "quality"),
}


def check_techniques(techniques=None):
    """Merge changes into :data:`DEFAULT_TECHNIQUES` and validate them.

    Parameters
    ----------
    techniques : dict or None, default=None
        Changes to the defaults, by technique name. Each value is either a
        probability (float in [0, 1], keeping the default range) or a
        ``(probability, (low, high))`` pair; flips take ``(probability,
        None)``. A probability of 0 turns a technique off. Names:

        - "hflip", "vflip": mirror left-right, top-bottom;
        - "rotate": degrees, counter-clockwise;
        - "scale": zoom factor about the centre;
        - "translate": shift, fraction of the side (x and y drawn apart);
        - "perspective": largest corner displacement, fraction of the side;
        - "brightness": added level, fraction of 255;
        - "contrast": factor about the image mean;
        - "gamma": exponent of the gamma curve;
        - "hue": rotation in degrees;
        - "saturation": factor;
        - "blur": Gaussian sigma in pixels;
        - "noise": Gaussian sigma in grey levels;
        - "jpeg": JPEG quality, 1 to 100.

    Returns
    -------
    techniques : dict
        Every technique with its ``(probability, range)``.

    Raises
    ------
    ValueError
        For an unknown name, a probability outside [0, 1] or a range that is
        not ``(low, high)`` within the technique's limits.

    Examples
    --------
    >>> from hybridclf.augment import check_techniques
    >>> check_techniques({"rotate": (0.8, (-5, 5)), "jpeg": 0.0})["rotate"]
    (0.8, (-5.0, 5.0))
    """
    merged = dict(DEFAULT_TECHNIQUES)
    if techniques is None:
        return merged
    if not isinstance(techniques, dict):
        raise TypeError(
            "The 'techniques' argument must be a dict mapping technique names to "
            f"a probability or a (probability, (low, high)) pair. Got "
            f"{techniques!r} instead."
        )
    for name, value in techniques.items():
        if name not in DEFAULT_TECHNIQUES:
            raise ValueError(
                f"The 'techniques' argument has an unknown technique {name!r}. "
                f"Known techniques: {sorted(DEFAULT_TECHNIQUES)}."
            )
        default_range = DEFAULT_TECHNIQUES[name][1]
        if isinstance(value, Real) and not isinstance(value, bool):
            probability, value_range = value, default_range
        elif isinstance(value, (tuple, list)) and len(value) == 2:
            probability, value_range = value
        else:
            raise ValueError(
                f"The 'techniques' entry {name!r} must be a probability or a "
                f"(probability, (low, high)) pair. Got {value!r} instead."
            )
        if (
            not isinstance(probability, Real) or isinstance(probability, bool)
            or not 0.0 <= probability <= 1.0
        ):
            raise ValueError(
                f"The probability of technique {name!r} must be a float in [0, 1]. "
                f"Got {probability!r} instead."
            )
        merged[name] = (float(probability), _check_range(name, value_range))
    return merged


def _check_range(name, value_range):
    if name not in _LIMITS:
        if value_range is not None:
            raise ValueError(
                f"Technique {name!r} has no range; give (probability, None). Got "
                f"{value_range!r} instead."
            )
        return None
    low_limit, high_limit, unit = _LIMITS[name]
    try:
        low, high = (float(v) for v in value_range)
    except (TypeError, ValueError):
        low = high = None
    if low is None or not low_limit <= low <= high <= high_limit:
        raise ValueError(
            f"The range of technique {name!r} must be a pair (low, high) with "
            f"{low_limit:g} <= low <= high <= {high_limit:g} ({unit}). Got "
            f"{value_range!r} instead."
        )
    return (low, high)


def draw_params(rng, techniques=None):
    """Draw which techniques to apply, and their values.

    Each technique is applied with its probability; the value is drawn
    uniformly from its range. When no technique is drawn, one is picked with
    odds proportional to the probabilities, so the result always differs from
    the source (unless every probability is 0).

    Parameters
    ----------
    rng : numpy.random.Generator, int or None
        Source of the draws; an int or None seeds a new generator.

    techniques : dict or None, default=None
        Changes to :data:`DEFAULT_TECHNIQUES`; see :func:`check_techniques`.

    Returns
    -------
    params : dict
        The drawn techniques: ``True`` for a flip, the drawn value otherwise
        (``"translate"``: (dx, dy); ``"perspective"``: a (4, 2) array of
        corner offsets; ``"jpeg"``: an int quality).

    Examples
    --------
    >>> from hybridclf.augment import draw_params
    >>> params = draw_params(0, {"rotate": (1.0, (10, 10)), "hflip": 0.0})
    >>> params["rotate"]
    10.0
    """
    rng = np.random.default_rng(rng)
    policy = check_techniques(techniques)
    names = list(policy)
    applied = rng.random(len(names)) < [policy[n][0] for n in names]
    if not applied.any():
        weights = np.array([policy[n][0] for n in names])
        if weights.sum() == 0:
            return {}
        applied[rng.choice(len(names), p=weights / weights.sum())] = True
    params = {}
    for name, on in zip(names, applied):
        if not on:
            continue
        value_range = policy[name][1]
        if value_range is None:
            params[name] = True
        elif name == "translate":
            params[name] = tuple(float(v) for v in rng.uniform(*value_range, size=2))
        elif name == "perspective":
            magnitude = rng.uniform(*value_range)
            params[name] = rng.uniform(-magnitude, magnitude, size=(4, 2))
        elif name == "jpeg":
            params[name] = int(round(rng.uniform(*value_range)))
        else:
            params[name] = float(rng.uniform(*value_range))
    return params






def random_augment(image, rng, techniques=None):
    """Apply a random combination of augmentations to one image.

    The same as ``apply_photometry(apply_geometry(image, params), params,
    rng)`` with ``params = draw_params(rng, techniques)``.

    Parameters
    ----------
    image : ndarray of shape (height, width[, 3]), dtype uint8
        The image, in RGB order.

    rng : numpy.random.Generator, int or None
        Source of every random draw; the same generator state gives the same
        output.

    techniques : dict or None, default=None
        Changes to :data:`DEFAULT_TECHNIQUES`; see :func:`check_techniques`.

    Returns
    -------
    augmented : ndarray of the same shape and dtype
        A new image.

    See Also
    --------
    hybridclf.ClassAwareAugmenter : Over-sample classes with these
        augmentations and check the quality of each image.

    Examples
    --------
    >>> import numpy as np
    >>> from hybridclf.augment import random_augment
    >>> image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), np.uint8)
    >>> random_augment(image, np.random.default_rng(1)).shape
    (32, 32, 3)
    """
    check_image_array(image, what="The 'image' argument")
    rng = np.random.default_rng(rng)
    params = draw_params(rng, techniques)
    return apply_photometry(apply_geometry(image, params), params, rng)
