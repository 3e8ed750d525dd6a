"""Photo quality: is one image blurry, too dark, over-exposed or too small?

The one home of the per-image measures and thresholds: the dataset inspector
(``hybridclf inspect``) measures and judges its images here, and so does
prediction, which returns the answer beside the class so that a user knows
when to retake a photo. Quality never changes a class.

Each image is measured on a grey copy whose longer side is at most
:data:`MEASURE_SIDE` pixels, so the figures do not depend on the resolution
of the camera:

- **sharpness**: the variance of the Laplacian [1]_; edges give large
  values, a blurred photo small ones;
- **brightness**: the mean grey level, from 0 (black) to 1 (white);
- **entropy**: the Shannon entropy of the grey histogram in bits; a flat or
  nearly uniform image has little information, and so no edges either.

References
----------
.. [1] J. L. Pech-Pacheco, G. Cristobal, J. Chamorro-Martinez and
   J. Fernandez-Valdivia, "Diatom autofocusing in brightfield microscopy: a
   comparative study", ICPR 2000, :doi:`10.1109/ICPR.2000.903548`.
"""

import cv2
import numpy as np

__all__ = [
    "BLUR_THRESHOLD",
    "BRIGHT_THRESHOLD",
    "DARK_THRESHOLD",
    "ENTROPY_THRESHOLD",
    "ISSUE_TEXT",
    "MEASURE_SIDE",
    "MIN_SIZE",
    "measure_grey",
    "measure_photo",
    "photo_issues",
    "photo_quality",
    "quality_answer",
    "quality_message",
    "read_quality",
    "shrink",
]

#: Longer side, in pixels, of the grey copy that is measured.
MEASURE_SIDE = 256
#: Variance of the Laplacian under which a photo is blurry.
BLUR_THRESHOLD = 100.0
#: Mean brightness (0-1) under which a photo is too dark.
DARK_THRESHOLD = 0.1
#: Mean brightness (0-1) over which a photo is over-exposed.
BRIGHT_THRESHOLD = 0.9
#: Grey-histogram entropy (bits) under which a photo carries little information.
ENTROPY_THRESHOLD = 3.0
#: Smallest side, in pixels, of a photo that is not too small.
MIN_SIZE = 32

#: Each issue in words, for people.
ISSUE_TEXT = {
    "blurry": "blurry",
    "too_dark": "too dark",
    "too_bright": "over-exposed",
    "too_small": "too small",
    "low_information": "almost uniform (little detail)",
}


def measure_photo(image):
    """Sharpness, brightness, entropy and size of one RGB image.

    Parameters
    ----------
    image : ndarray of shape (height, width, 3) or (height, width), dtype uint8
        The decoded image at its own size.

    Returns
    -------
    measures : dict
        ``sharpness`` (variance of the Laplacian), ``brightness`` (0-1),
        ``entropy`` (bits), ``width`` and ``height`` (of ``image``).

    Examples
    --------
    >>> import numpy as np
    >>> from hybridclf.quality import measure_photo
    >>> m = measure_photo(np.full((40, 60, 3), 255, dtype=np.uint8))
    >>> m["brightness"], m["sharpness"], m["entropy"], m["width"]
    (1.0, 0.0, 0.0, 60)
    """
    image = np.asarray(image)
    if image.ndim not in (2, 3) or image.dtype != np.uint8:
        raise ValueError(
            "measure_photo takes one uint8 image of shape (height, width[, 3]). "
            f"Got an array of shape {image.shape} and dtype {image.dtype}; read "
            "it with hybridclf.io.read_image first."
        )
    height, width = image.shape[:2]
    small = shrink(image, MEASURE_SIDE)
    gray = small if small.ndim == 2 else cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    return {**measure_grey(gray), "width": int(width), "height": int(height)}


def shrink(image, side):
    """``image`` with its longer side reduced to ``side`` pixels (never enlarged).

    Parameters
    ----------
    image : ndarray of shape (height, width[, n_channels])
        The image.

    side : int
        The longest side wanted, in pixels.

    Returns
    -------
    small : ndarray
        ``image`` itself when its longer side is ``side`` or less, else a copy
        resized with area averaging, in its dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from hybridclf.quality import shrink
    >>> shrink(np.zeros((512, 300), np.uint8), 256).shape
    (256, 150)
    """
    height, width = image.shape[:2]
    scale = side / max(height, width)
    if scale >= 1:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def measure_grey(gray):
    """Sharpness, brightness and entropy of a grey image already shrunk.

    The measures of :func:`measure_photo` without the size; the inspector
    calls it on the grey copy it also hashes.

    Parameters
    ----------
    gray : ndarray of shape (height, width), dtype uint8
        The grey image, its longer side at most :data:`MEASURE_SIDE` pixels
        (see :func:`shrink`).

    Returns
    -------
    measures : dict
        ``sharpness``, ``brightness`` and ``entropy``.
    """
    hist = np.bincount(gray.ravel(), minlength=256).astype(np.float64)
    p = hist[hist > 0] / gray.size
    return {
        "sharpness": float(cv2.Laplacian(gray, cv2.CV_64F).var()),
        "brightness": float(gray.mean()) / 255.0,
        "entropy": max(0.0, float(-(p * np.log2(p)).sum())),
    }


def photo_issues(measures, *, blur_threshold=BLUR_THRESHOLD,
                 dark_threshold=DARK_THRESHOLD, bright_threshold=BRIGHT_THRESHOLD,
                 entropy_threshold=ENTROPY_THRESHOLD, min_size=MIN_SIZE):
    """The quality issues of one measured photo, worst first.

    An almost uniform photo has no edges either: it is reported once, as
    ``"low_information"``, not also as blurry.

    Parameters
    ----------
    measures : dict
        As from :func:`measure_photo`.

    blur_threshold : float, default=100.0
        Sharpness under which the photo is ``"blurry"``.

    dark_threshold : float, default=0.1
        Brightness under which the photo is ``"too_dark"``.

    bright_threshold : float, default=0.9
        Brightness over which the photo is ``"too_bright"`` (over-exposed).

    entropy_threshold : float, default=3.0
        Entropy under which the photo is ``"low_information"``.

    min_size : int, default=32
        Smallest side under which the photo is ``"too_small"``.

    Returns
    -------
    issues : list of str
        Among ``"too_small"``, ``"low_information"``, ``"blurry"``,
        ``"too_dark"`` and ``"too_bright"``; empty for a good photo.

    Examples
    --------
    >>> from hybridclf.quality import photo_issues
    >>> photo_issues({"sharpness": 20.0, "brightness": 0.05, "entropy": 6.0,
    ...               "width": 640, "height": 480})
    ['blurry', 'too_dark']
    """
    issues = []
    if min(measures["width"], measures["height"]) < min_size:
        issues.append("too_small")
    if measures["entropy"] < entropy_threshold:
        issues.append("low_information")
    elif measures["sharpness"] < blur_threshold:
        issues.append("blurry")
    if measures["brightness"] < dark_threshold:
        issues.append("too_dark")
    elif measures["brightness"] > bright_threshold:
        issues.append("too_bright")
    return issues


def photo_quality(image, **thresholds):
    """The quality answer of one photo: ``{"ok": bool, "issues": [...]}``.

    Parameters
    ----------
    image : ndarray of shape (height, width[, 3]), dtype uint8
        The decoded photo at its own size (not resized for a model).

    **thresholds
        Keyword arguments of :func:`photo_issues`.

    Returns
    -------
    quality : dict
        ``ok`` (no issue), ``issues`` (as from :func:`photo_issues`) and the
        ``measures`` of :func:`measure_photo`.

    Examples
    --------
    >>> import cv2
    >>> import numpy as np
    >>> from skimage import data
    >>> from hybridclf.quality import photo_quality
    >>> photo = data.astronaut()
    >>> photo_quality(photo)["ok"]
    True
    >>> photo_quality(cv2.GaussianBlur(photo, (0, 0), 4))["issues"]
    ['blurry']
    """
    measures = measure_photo(image)
    issues = photo_issues(measures, **thresholds)
    return {"ok": not issues, "issues": issues, "measures": measures}


def quality_answer(image):
    """The quality answer of one decoded photo, as prediction returns it.

    :func:`photo_quality` without the measures: what ``/predict`` and
    ``hybridclf predict`` report. Prediction passes it to
    :meth:`hybridclf.io.ImageLoader.read_measured`, so each photo is measured
    as the loader decodes it, not decoded a second time.

    Parameters
    ----------
    image : ndarray of shape (height, width[, 3]), dtype uint8
        The decoded photo at its own size.

    Returns
    -------
    quality : dict
        ``ok`` and ``issues``, as in :func:`photo_quality`.

    Examples
    --------
    >>> import numpy as np
    >>> from hybridclf.quality import quality_answer
    >>> quality_answer(np.zeros((20, 20, 3), np.uint8))["issues"]
    ['too_small', 'low_information', 'too_dark']
    """
    answer = photo_quality(image)
    return {"ok": answer["ok"], "issues": answer["issues"]}


def read_quality(source, *, max_pixels=None):
    """The quality answer of an image file, bytes or array, as prediction gives it.

    A large JPEG is decoded at a reduced scale (never under
    :data:`MEASURE_SIDE` pixels), which the measures do not notice: they are
    taken at that size anyway.

    Parameters
    ----------
    source : str, os.PathLike, bytes or ndarray
        The photo, as :func:`hybridclf.io.read_image` takes it; an array at
        its own size, not resized for a model.

    max_pixels : int or None, default=None
        The pixel budget of :func:`hybridclf.io.read_image`; None takes its
        default. Pass the model loader's, which read the photo already.

    Returns
    -------
    quality : dict
        ``ok`` and ``issues``, as in :func:`photo_quality` (without the
        measures).

    Raises
    ------
    ImageLoadError
        When the photo cannot be read.
    """
    from .io import DEFAULT_MAX_PIXELS, read_image

    image = read_image(source, draft_size=(MEASURE_SIDE,) * 2,
                       max_pixels=max_pixels or DEFAULT_MAX_PIXELS)
    return quality_answer(image)


def quality_message(issues):
    """One sentence for people about a photo's quality issues, or "".

    Parameters
    ----------
    issues : list of str
        As from :func:`photo_issues`.

    Returns
    -------
    message : str
        Empty for a good photo.

    Examples
    --------
    >>> from hybridclf.quality import quality_message
    >>> quality_message(["blurry", "too_dark"])[:36]
    'This photo is blurry and too dark: t'
    """
    if not issues:
        return ""
    words = [ISSUE_TEXT.get(kind, kind.replace("_", " ")) for kind in issues]
    listed = words[-1] if len(words) == 1 else (
        ", ".join(words[:-1]) + " and " + words[-1])
    return (f"This photo is {listed}: the answer may be less reliable; retake it "
            "if you can.")
