"""Small real image sets that ship with hybridclf's dependencies, written as folders."""

import logging
import os

import numpy as np

__all__ = ["write_digits_folder"]

logger = logging.getLogger(__name__)


def write_digits_folder(root, *, n_per_class=40, size=32, holdout_root=None,
                        n_holdout=0, random_state=0):
    """Write scikit-learn's handwritten digits as a class-per-folder PNG dataset.

    The 1,797 digits of :func:`sklearn.datasets.load_digits` are real scans
    (8x8 pixels, 16 grey levels) from the UCI ML hand-written digits set. This
    writes a random subset, upscaled to ``size`` pixels, as
    ``root/<digit>/<index>.png``: a small dataset in the layout every hybridclf
    command reads, available offline on any machine.

    Parameters
    ----------
    root : str or os.PathLike
        Folder to write into; created if missing.

    n_per_class : int, default=40
        Images per digit class (at most 174).

    size : int, default=32
        Side of the written images, in pixels.

    holdout_root : str, os.PathLike or None, default=None
        Folder for a held-out test set of other digits, in the same layout.

    n_holdout : int, default=0
        Images per class written to ``holdout_root``; none of them is in
        ``root``.

    random_state : int, default=0
        Seeds which digits are taken.

    Returns
    -------
    root : str
        The dataset folder.

    Examples
    --------
    >>> import tempfile
    >>> from hybridclf.sample_data import write_digits_folder
    >>> from hybridclf.io import load_image_folder
    >>> paths, labels = load_image_folder(write_digits_folder(tempfile.mkdtemp(),
    ...                                                       n_per_class=2))
    >>> len(paths), sorted(set(labels))[:3]
    (20, ['digit_0', 'digit_1', 'digit_2'])
    """
    import cv2
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.RandomState(random_state)
    root = os.fspath(root)
    for label in range(10):
        indices = np.flatnonzero(digits.target == label)
        n_holdout_here = n_holdout if holdout_root is not None else 0
        take = rng.choice(indices, min(n_per_class + n_holdout_here, len(indices)),
                          replace=False)
        parts = [(root, take[n_holdout_here:])]
        if n_holdout_here:
            parts.append((os.fspath(holdout_root), take[:n_holdout_here]))
        for base, chosen in parts:
            folder = os.path.join(base, f"digit_{label}")
            os.makedirs(folder, exist_ok=True)
            for index in sorted(chosen):
                # 0..16 ink levels to dark ink on white paper, like a scanned page
                image = (255 - digits.images[index] * (255 / 16)).round()
                image = cv2.resize(image.astype(np.uint8), (size, size),
                                   interpolation=cv2.INTER_CUBIC)
                cv2.imwrite(os.path.join(folder, f"{index:04d}.png"), image)
    logger.info("Wrote %d digit images per class to %s", n_per_class, root)
    return root
