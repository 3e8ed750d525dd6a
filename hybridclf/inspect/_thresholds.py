"""The thresholds of :func:`~hybridclf.inspect_dataset`, as one documented object."""

import dataclasses
from numbers import Integral, Real

from .. import quality
from ._docs import fill_doc


@fill_doc
@dataclasses.dataclass(frozen=True)
class InspectThresholds:
    """Where :func:`~hybridclf.inspect_dataset` draws its lines.

    Each field is also accepted as a keyword argument of
    :func:`~hybridclf.inspect_dataset` (``inspect_dataset(root,
    blur_threshold=50)``); pass one object to reuse a set of thresholds.
    Values are checked when the object is made.

    Parameters
    ----------
    {hash_distance}

    {rotations}

    embedding_similarity : float, default=0.95
        Smallest cosine similarity of the CNN embeddings (EfficientNet-Lite0 at
        128x128 pixels) of near duplicates. On amulet6 and somdej, different
        photos stay under 0.93.

    {aligned_similarity}

    {linkage}

    min_size : int, default=32
        Smallest accepted width and height, in pixels.

    blur_threshold : float, default=100.0
        Variance of the Laplacian of the grey image (scaled to 256 pixels on
        its longer side) under which an image is blurry. Sharp photos of
        amulet6 score 970 and more.

    dark_threshold : float, default=0.1
        Mean grey level (0 to 1) under which an image is too dark.

    bright_threshold : float, default=0.9
        Mean grey level (0 to 1) over which an image is too bright.

    entropy_threshold : float, default=3.0
        Entropy of the grey-level histogram, in bits (0 to 8), under which an
        image holds too little information (blank, nearly uniform).

    max_aspect_ratio : float, default=3.0
        Longer side / shorter side over which the aspect ratio is odd.

    size_ratio : float, default=4.0
        An image whose shorter side is this many times smaller or larger than
        the median shorter side has an odd size.

    outlier_threshold : float, default=5.0
        Robust z-score (median and MAD of the class) of the cosine distance to
        the class centre over which an image is a class outlier, when it is
        also nearer another class's centre than its own.

    Raises
    ------
    ValueError
        When a value is out of its range; the message names the field.

    Examples
    --------
    >>> from hybridclf.inspect import InspectThresholds
    >>> InspectThresholds(blur_threshold=50).blur_threshold
    50
    """

    hash_distance: int = 6
    rotations: bool = True
    embedding_similarity: float = 0.95
    aligned_similarity: float | None = 0.93
    linkage: str = "average"
    # the defaults of the photo-quality answer at prediction (one home)
    min_size: int = quality.MIN_SIZE
    blur_threshold: float = quality.BLUR_THRESHOLD
    dark_threshold: float = quality.DARK_THRESHOLD
    bright_threshold: float = quality.BRIGHT_THRESHOLD
    entropy_threshold: float = quality.ENTROPY_THRESHOLD
    max_aspect_ratio: float = 3.0
    size_ratio: float = 4.0
    outlier_threshold: float = 5.0

    def __post_init__(self):
        for name in ("min_size", "blur_threshold", "max_aspect_ratio", "size_ratio",
                     "outlier_threshold"):
            check_range(name, getattr(self, name), "> 0", lambda v: v > 0)
        check_hash_distance(self.hash_distance)
        check_similarity("embedding_similarity", self.embedding_similarity,
                         allow_none=False)
        check_similarity("aligned_similarity", self.aligned_similarity)
        check_linkage(self.linkage)

    def as_dict(self):
        """The thresholds as a plain dict (for JSON)."""
        return dataclasses.asdict(self)


def check_range(name, value, wanted, test, owner="inspect_dataset"):
    """Raise the house ValueError unless ``value`` is a number that passes ``test``."""
    if (isinstance(value, bool) or not isinstance(value, Real)
            or not test(value)):
        raise ValueError(
            f"The {name!r} parameter of {owner} must be {wanted}. Got {value!r} "
            "instead."
        )


def check_hash_distance(value, owner="inspect_dataset"):
    """Raise unless ``value`` is an int Hamming distance of 64-bit hashes."""
    check_range("hash_distance", value, "an int in 0..64",
                lambda v: isinstance(v, Integral) and 0 <= v <= 64, owner)


def check_similarity(name, value, owner="inspect_dataset", allow_none=True):
    """Raise unless ``value`` is a similarity in (0, 1] (or None when allowed)."""
    if value is None and allow_none:
        return
    wanted = "a float in (0, 1]" + (" or None" if allow_none else "")
    check_range(name, value, wanted, lambda v: 0 < v <= 1, owner)


def check_linkage(value, owner="inspect_dataset"):
    """Raise unless ``value`` names a linkage."""
    if value not in ("average", "single"):
        raise ValueError(
            f"The 'linkage' parameter of {owner} must be a str among "
            f"{{'average', 'single'}}. Got {value!r} instead."
        )


def resolve_thresholds(thresholds, overrides):
    """One :class:`InspectThresholds` from an object (or None) and keyword fields."""
    if thresholds is None:
        thresholds = InspectThresholds()
    elif isinstance(thresholds, dict):
        overrides = {**thresholds, **overrides}
        thresholds = InspectThresholds()
    elif not isinstance(thresholds, InspectThresholds):
        raise TypeError(
            "The 'thresholds' parameter of inspect_dataset must be an "
            f"InspectThresholds, a dict or None. Got {thresholds!r} instead."
        )
    fields = {f.name for f in dataclasses.fields(InspectThresholds)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise TypeError(
            f"inspect_dataset got unknown keyword argument(s) {unknown}; the "
            f"thresholds are {sorted(fields)}."
        )
    return dataclasses.replace(thresholds, **overrides)
