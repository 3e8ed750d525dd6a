"""The pipeline and the groups of ``hybridclf train``.

:func:`find_training_groups` gives the group id of every image of a
class-per-folder dataset (from a CSV or found on the fly), and
:func:`make_training_pipeline` builds the pipeline from the few choices of
the command. :func:`~hybridclf.training.train_folder` calls both.
"""

import os

import numpy as np

from ..pipeline import DEFAULT_FEATURES, make_hybrid_pipeline, set_image_params
from ..utils._csv import csv_reader, open_csv, read_csv_rows
from ._groups import (
    as_folders,
    duplicate_groups,
    join_groups,
    join_identical_files,
    read_groups_csv,
)

__all__ = [
    "QUICK_CV_FOLDS",
    "augment_origins",
    "find_training_groups",
    "make_training_pipeline",
]

#: The settings of ``quick=True``: two cheap blocks on small images, 3 folds.
QUICK_FEATURES = ("hog", "color")
QUICK_IMAGE_SIZE = 128
QUICK_CV_FOLDS = 3


def find_training_groups(paths, *, groups_csv=None, root=None, n_jobs=None,
                         cache_dir=None):
    """The group id of every image and where the groups came from.

    Parameters
    ----------
    paths : sequence of str
        The images.

    groups_csv : str or None, default=None
        A CSV with the columns ``file`` and ``group`` (:func:`read_groups_csv`);
        None finds groups of near-identical images (:func:`duplicate_groups`).
        Either way, the ``manifest.csv`` of each folder that ``hybridclf
        augment`` wrote joins its copies to the group of their source.

    root : str, sequence of str or None, default=None
        The folder (or folders, each tried) that relative names in the CSV
        start from.

    n_jobs : int, default=None
        Threads for finding duplicates.

    cache_dir : str or None, default=None
        Where the duplicate search keeps what it measured of each photo
        (see :func:`duplicate_groups`); None keeps nothing.

    Returns
    -------
    groups : ndarray of int
        Group id of each image. Byte-identical files always share a group
        (:func:`join_identical_files`), also when the CSV does not say so.

    source : str
        The CSV's path, or ``"found on the fly"``, and the ``manifest.csv``
        of each folder that ``hybridclf augment`` wrote (its copies join the
        group of their source, which the duplicate search, and so a groups
        CSV that ``hybridclf inspect`` wrote, may miss).
    """
    if groups_csv:
        groups = join_identical_files(
            read_groups_csv(groups_csv, paths, root=root), paths)
        found = str(groups_csv)
    else:
        groups = duplicate_groups(paths, n_jobs=n_jobs, cache_dir=cache_dir)
        found = "found on the fly"
    manifests = [m for m in _augment_manifests(root)
                 if not groups_csv or not os.path.samefile(m, groups_csv)]
    for manifest in manifests:
        groups = join_groups(groups, read_groups_csv(manifest, paths,
                                                     root=os.path.dirname(manifest)))
    return groups, ", joined with ".join([found, *manifests])


def augment_origins(paths, root):
    """The image each image was made from, by the data folders' manifests.

    ``hybridclf augment`` writes a ``manifest.csv`` that names the source of
    every generated copy. A copy whose source is among ``paths`` gets the
    source's index; every other image (a photo, or a copy of a photo not
    given) its own.

    Parameters
    ----------
    paths : sequence of str
        The images.

    root : str, sequence of str or None
        The data folder (or folders); each one's ``manifest.csv`` is read.

    Returns
    -------
    origins : ndarray of shape (n_images,), dtype int
        As ``train_model`` takes them (``origins``).

    Examples
    --------
    >>> from hybridclf.training import augment_origins
    >>> augment_origins(["a.jpg", "b.jpg"], None).tolist()
    [0, 1]
    """
    origins = np.arange(len(paths))
    manifests = list(_augment_manifests(root))
    if not manifests:
        return origins
    index = {os.path.realpath(p): i for i, p in enumerate(paths)}
    for manifest in manifests:
        folder = os.path.dirname(manifest)
        # in a legacy code page, no copy would find its source: refused
        _, rows = read_csv_rows(manifest, what="its copies would not find their "
                                "source")
        for row in rows:
            copy = index.get(os.path.realpath(os.path.join(folder, row["file"])))
            source = index.get(os.path.realpath(os.path.join(folder,
                                                             row["source"])))
            if copy is not None and source is not None and copy != source:
                origins[copy] = source
    # a copy of a copy points at the photo itself
    for _ in range(len(manifests) + 1):
        origins = origins[origins]
    return origins


def _augment_manifests(root):
    """The ``manifest.csv`` (with a ``source`` column) of each data folder."""
    for folder in as_folders(root):
        path = os.path.join(os.fspath(folder), "manifest.csv")
        if os.path.isfile(path):
            # the header only: a manifest.csv of another program is left alone
            with open_csv(path) as fh:
                header = next(csv_reader(fh), [])
            if {"file", "source"} <= set(header):
                yield path


def make_training_pipeline(*, features=None, classifier="ridge", quick=False,
                           image_size=None, augment=False, views="auto",
                           cache_dir=None, n_jobs=None, random_state=0,
                           cascade="auto"):
    """The pipeline that ``hybridclf train`` trains.

    Parameters
    ----------
    features : sequence of str or None, default=None
        Feature blocks; None takes the default blocks, or HOG and colour with
        ``quick``.

    classifier : str, default="ridge"
        A name of :data:`hybridclf.pipeline.CLASSIFIERS`.

    quick : bool, default=False
        Fast settings for a first look: HOG and colour on 128-pixel images.

    image_size : int or None, default=None
        Side images are resized to; None means 224, or 128 with ``quick``.

    augment : bool, default=False
        Balance classes with :class:`~hybridclf.ClassAwareAugmenter`.

    views : {"auto", "none", "photo", "objects"} or bool, default="auto"
        Views of each training image added in fit when the smallest class
        has fewer than 15 images (:class:`~hybridclf.ViewAugmenter`):
        "auto", the image shrunk, with its hue turned, darkened and blurred
        (the default of :func:`~hybridclf.make_hybrid_pipeline`; they raised
        the learning curve on amulets and on digits,
        ``docs/choosing-features.md``); "photo", the same without the blur;
        "objects" (or True), the photo views with its mirror image, its turns
        by 12 degrees each way and a blur, for objects photographed at any
        angle (not for digits, text or textures, where they cost accuracy);
        "none" (or False), no views. With ``augment``, "auto" gives way to
        the augmenter; the others are refused (the pipeline has one
        ``augment`` step).

    cache_dir : str or None, default=None
        The pipeline's ``memory`` (a joblib cache of fitted feature blocks).

    n_jobs : int, default=None
        Threads of the image steps (loading, augmenting, extracting); the
        classifier keeps its own.

    random_state : int, default=0
        Given to every step that has a ``random_state``.

    cascade : {"auto", True, False}, default="auto"
        A :class:`~hybridclf.cascade.CascadePipeline`, as
        :func:`~hybridclf.make_hybrid_pipeline` makes it ("auto": when the
        blocks include the CNN): HOG, LBP and colour answer the photos they
        are sure of; :func:`train_model` learns its threshold on its grouped
        folds.

    Returns
    -------
    pipe : imblearn.pipeline.Pipeline
        The unfitted pipeline.
    """
    if features is None:
        features = QUICK_FEATURES if quick else DEFAULT_FEATURES
    views = {True: "objects", False: "none"}.get(views, views)
    if views not in ("auto", "none", "photo", "objects"):
        raise ValueError(
            "The 'views' argument of make_training_pipeline must be \"auto\", "
            f"\"none\", \"photo\" or \"objects\". Got {views!r} instead."
        )
    if augment and views not in ("auto", "none"):
        raise ValueError(
            f"make_training_pipeline got augment=True and views={views!r}; the "
            "pipeline has one augment step. Choose one (--augment or --views)."
        )
    sampler = "auto" if views == "auto" else None
    if augment:
        from ..sampling import ClassAwareAugmenter

        sampler = ClassAwareAugmenter(random_state=random_state, n_jobs=n_jobs)
    elif views in ("photo", "objects"):
        from ..view_sampling import DEFAULT_VIEWS, OBJECT_VIEWS, ViewAugmenter

        sampler = ViewAugmenter(views=(OBJECT_VIEWS if views == "objects" else ())
                                + DEFAULT_VIEWS)
    pipe = make_hybrid_pipeline(features=list(features), classifier=classifier,
                                sampler=sampler, memory=cache_dir,
                                cascade=cascade)
    pipe.set_params(load__size=image_size or (QUICK_IMAGE_SIZE if quick else 224))
    # threads for the image steps only; the classifier's n_jobs is deprecated
    set_image_params(pipe, n_jobs=n_jobs)
    return pipe.set_params(**{name: random_state for name in pipe.get_params()
                              if name.endswith("random_state")})
