"""What :func:`~hybridclf.augment.augment_folder` did: the per-class counts.

:class:`ClassCounts` holds one class's images before and after (and those
unreadable, asked for, redrawn and dropped), :class:`AugmentFolderResult`
the whole run; ``_class_counts`` builds the counts from the fitted augmenter
and the files skipped.
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..io import class_name

__all__ = ["AugmentFolderResult", "ClassCounts"]


@dataclass
class ClassCounts:
    """Image counts of one class, before and after :func:`augment_folder`.

    Attributes
    ----------
    label : str
        The class (folder name).

    before : int
        Readable original images, all copied to the output.

    unreadable : int
        Files in the class folder that could not be read; not copied.

    target : int
        Images the class should have: ``before`` plus the number asked of the
        augmenter.

    generated : int
        New images written.

    regenerated : int
        New images that failed the quality check and were drawn again.

    dropped : int
        New images given up after repeated failed checks.
    """

    label: str
    before: int
    unreadable: int
    target: int
    generated: int
    regenerated: int
    dropped: int

    @property
    def after(self):
        """Images of the class in the output: ``before + generated``."""
        return self.before + self.generated


@dataclass
class AugmentFolderResult:
    """What :func:`augment_folder` did.

    Attributes
    ----------
    output_dir : str
        The folder written.

    manifest : str
        Path of ``manifest.csv``.

    classes : list of ClassCounts
        The counts of each class, sorted by name.

    skipped : list of (str, str)
        Every file of the input that was not used, with the reason: not an
        image, unreadable, or outside a class folder.

    n_generated : int
        New images written.

    generate_seconds : float
        Time spent making and checking the new images.

    seconds : float
        Time of the whole run (reading, making, writing).

    augmenter : ClassAwareAugmenter
        The fitted augmenter, with its per-class counts and ``similarity_``.
    """

    output_dir: str
    manifest: str
    classes: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    n_generated: int = 0
    generate_seconds: float = 0.0
    seconds: float = 0.0
    augmenter: object = None


def _class_counts(labels, y, skipped, root, augmenter):
    """The :class:`ClassCounts` of every class folder, in name order."""
    unreadable = _count_by_class(skipped, root)
    before = dict(zip(*np.unique(y, return_counts=True)))
    counts = []
    for label in sorted(set(labels)):
        before_n = int(before.get(label, 0))
        asked = int(augmenter.sampling_strategy_.get(label, 0))
        counts.append(ClassCounts(
            label=label, before=before_n, unreadable=unreadable.get(label, 0),
            target=before_n + max(asked, 0),
            generated=augmenter.n_generated_.get(label, 0),
            regenerated=augmenter.n_regenerated_.get(label, 0),
            dropped=augmenter.n_dropped_.get(label, 0),
        ))
    return counts


def _count_by_class(skipped, root):
    """Number of skipped files under each class folder of ``root``."""
    counts = {}
    for path, _ in skipped:
        try:
            parts = Path(path).relative_to(root).parts
        except ValueError:
            continue
        if len(parts) > 1:
            label = class_name(parts[0])
            counts[label] = counts.get(label, 0) + 1
    return counts
