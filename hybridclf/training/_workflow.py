"""``hybridclf train`` as one library call: :func:`train_folder`.

:func:`train_folder` finds the groups of a class-per-folder dataset
(:func:`find_training_groups`), builds the pipeline from a few choices
(:func:`make_training_pipeline`), trains it with :func:`train_model` and
saves it with the metadata of :func:`training_metadata` and the files of
:func:`training_files`. The command only parses its options, calls it and
prints the :class:`FolderTraining` it returns.
"""

import copy
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from ..label_issues import LABEL_ISSUES_FILE, label_issues_csv
from ..neighbours import INDEX_FILE
from ..pipeline import (
    DEFAULT_FEATURES,
    get_sampler,
    iter_feature_blocks,
    make_hybrid_pipeline,
    set_image_params,
)
from ._feature_cache import FeatureCache
from ._result import TrainingResult
from ._split import (
    data_fingerprint,
    duplicate_groups,
    join_identical_files,
    read_groups_csv,
)
from ._train import train_model

__all__ = [
    "QUICK_CV_FOLDS",
    "FolderTraining",
    "find_training_groups",
    "make_training_pipeline",
    "train_folder",
    "training_files",
    "training_metadata",
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
        The CSV's path, or ``"found on the fly"``.
    """
    if groups_csv:
        groups = read_groups_csv(groups_csv, paths, root=root)
        return join_identical_files(groups, paths), str(groups_csv)
    return (duplicate_groups(paths, n_jobs=n_jobs, cache_dir=cache_dir),
            "found on the fly")


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


def training_metadata(result, paths, labels, *, root=None, names=None,
                      classifier=None, group_source=None, seconds_wall=None):
    """The ``model.json`` entries of a model that ``hybridclf train`` saves.

    Parameters
    ----------
    result : TrainingResult
        What :func:`train_model` returned.

    paths, labels : sequence
        The dataset it was trained on (for its fingerprint).

    root : str or None, default=None
        The dataset's folder; names in the fingerprint are relative to it.

    names : sequence of str or None, default=None
        The files' names from :func:`~hybridclf.io.load_image_folders`, for a
        dataset of several folders (they replace ``root``).

    classifier : str or None, default=None
        The classifier's name, as given to :func:`make_training_pipeline`.

    group_source : str or None, default=None
        Where the groups came from (:func:`find_training_groups`).

    seconds_wall : float or None, default=None
        The whole command's time.

    Returns
    -------
    metadata : dict
        :meth:`TrainingResult.metadata` with ``data_fingerprint`` and the
        entries ``features``, ``classifier``, ``groups``, ``seconds_wall``
        and, with a ViewAugmenter, ``views_added`` and ``views`` (which
        views were added and why) of ``training``.
    """
    metadata = result.metadata()
    metadata["data_fingerprint"] = data_fingerprint(paths, labels, root=root,
                                                    names=names)
    training = metadata["training"]
    training["features"] = [name for name, _ in iter_feature_blocks(result.pipeline)]
    training["classifier"] = classifier
    training["groups"] = group_source
    if _views_added(result.pipeline) is not None:
        training["views_added"] = list(_views_added(result.pipeline))
        training["views"] = _views_reason(get_sampler(result.pipeline))
    if seconds_wall is not None:
        training["seconds_wall"] = round(seconds_wall, 2)
    return metadata



def training_files(result, paths, *, root=None, names=None):
    """The files beside the model that ``hybridclf train`` saves.

    Parameters
    ----------
    result : TrainingResult
        What :func:`train_model` returned.

    paths : sequence of str
        The images it was trained on, in the same order.

    root : str or None, default=None
        The dataset's folder; file names are written relative to it (the
        base name without it).

    names : sequence of str or None, default=None
        The file names to write, one per path (as
        :func:`~hybridclf.io.load_image_folders` gives them); overrides
        ``root``.

    Returns
    -------
    files : dict of str to str or bytes
        ``{"label_issues.csv": text}`` (see
        :func:`hybridclf.label_issues.label_issues_csv`) and
        ``{"neighbours.npz": data}``, the embedding index of the novelty
        check and of the nearest training photos, with their file names
        (:meth:`~hybridclf.neighbours.EmbeddingIndex.to_bytes`), when the
        result has them; for the ``files`` parameter of
        :func:`~hybridclf.save_model`.
    """
    files = {}
    if names is None:
        names = [_relative(path, root) for path in paths]
    if result.label_issues is not None:
        files[LABEL_ISSUES_FILE] = label_issues_csv(result.label_issues, names)
    if result.neighbours is not None:
        index = copy.copy(result.neighbours)
        index.files_ = np.asarray(names, dtype=str)[result.train_indices]
        files[INDEX_FILE] = index.to_bytes()
    return files


def _views_reason(sampler):
    """Which views a fitted :class:`~hybridclf.ViewAugmenter` added, and why.

    For the training summary and the model card: for example "zoom_out,
    hue_turn, darken, blur added in fit: the smallest class has 3 photos
    (< 15)".
    """
    below = sampler.max_smallest_class
    n = sampler.smallest_class_
    if sampler.views_:
        why = ("always" if below is None else
               f"the smallest class has {n} photos (< {below})")
        return f"{', '.join(sampler.views_)} added in fit: {why}"
    return f"none added: the smallest class has {n} photos (>= {below})"


def _views_added(pipe):
    """The views a fitted pipeline's ViewAugmenter added (None without one)."""
    return getattr(get_sampler(pipe), "views_", None)


def _relative(path, root):
    if not isinstance(path, (str, os.PathLike)):
        return ""
    name = os.path.relpath(path, root) if root else os.path.basename(path)
    return name.replace(os.sep, "/")


@dataclass
class FolderTraining:
    """What :func:`train_folder` did.

    Attributes
    ----------
    result : TrainingResult
        What :func:`train_model` returned (scores, search, open set).

    model_dir : str
        The model directory written.

    class_counts : dict of str to int
        Images per class of the dataset.

    n_groups : int
        Groups of near-identical images (cross-validation groups).

    group_source : str
        Where the groups came from: the CSV, or ``"found on the fly"``.

    group_seconds, seconds : float
        Time spent finding the groups, and in all.

    cache_dir : str or None
        The feature cache's folder, or None without one.
    """

    result: TrainingResult
    model_dir: str
    class_counts: dict
    n_groups: int
    group_source: str
    group_seconds: float
    seconds: float
    cache_dir: str = None

    @property
    def n_images(self):
        """Images in the dataset."""
        return sum(self.class_counts.values())

    @property
    def views_added(self):
        """The views added in the final fit: a tuple, or None without ``views``."""
        return _views_added(self.result.pipeline)

    @property
    def views(self):
        """Which views were added in the final fit and why; None without views."""
        sampler = get_sampler(self.result.pipeline)
        return None if _views_added(self.result.pipeline) is None else (
            _views_reason(sampler))


@contextmanager
def _dask_backend(scheduler):
    """joblib's Dask backend on a ``--scheduler`` cluster; nothing when None."""
    if scheduler is None:
        yield
        return
    import joblib

    from ..distributed import dask_client

    with dask_client(scheduler), joblib.parallel_config(backend="dask", n_jobs=-1):
        yield


def train_folder(data_dir, output_dir, *, features=None, classifier="ridge",
                 quick=False, cv_folds=None, test_size=0.2, search="none",
                 groups_csv=None, augment=False, views="auto", image_size=None,
                 cache_dir=None, feature_cache=True, n_jobs=None, max_pixels=None,
                 scheduler=None, random_state=0, cascade="auto", thumbnails=True,
                 progress=False):
    """Train a pipeline on a class-per-folder dataset and save a model directory.

    The output folder is checked before anything else, so a training is not
    lost to a folder that cannot be written. The groups of near-identical
    images come from ``groups_csv`` or are found on the fly; the pipeline of
    :func:`make_training_pipeline` is trained by :func:`train_model` and saved
    by :func:`~hybridclf.save_model` with :func:`training_metadata`.

    Parameters
    ----------
    data_dir : str, os.PathLike or sequence of them
        The dataset: ``data_dir/<class>/<image>``. Several folders (the data
        and a feedback folder, say) are merged class by class
        (:func:`~hybridclf.io.load_image_folders`).

    output_dir : str or os.PathLike
        A new or empty folder, or a model directory to replace (atomically).

    features, classifier, quick, image_size, augment, views, cascade
        As in :func:`make_training_pipeline`.

    cache_dir : str or None, default=None
        The folder of the per-image feature cache (:class:`FeatureCache`);
        None is :func:`default_feature_cache_dir`. It also keeps the
        embeddings of the novelty index's views and what the duplicate search
        measured of each photo.

    feature_cache : bool, default=True
        Read unchanged photos' features (and views and duplicate-search
        measures) from the cache and write new ones; False computes
        everything.

    cv_folds : int or None, default=None
        Grouped cross-validation folds; None means 5, or 3 with ``quick``.

    test_size, search, thumbnails, progress
        As in :func:`train_model`.

    groups_csv : str or None, default=None
        As in :func:`find_training_groups`.

    n_jobs : int or None, default=None
        Threads for loading, features, duplicates and search.

    max_pixels : int or None, default=None
        The image loader's pixel limit; None keeps its default.

    scheduler : str or None, default=None
        Run the cross-validation and search on Dask (``"local:N"`` or an
        address, see :func:`hybridclf.distributed.dask_client`).

    random_state : int, default=0
        Seed of the split, the folds and every step.

    Returns
    -------
    training : FolderTraining
        The training result and a summary of the dataset.
    """
    from ..io import load_image_folders
    from ..persistence import check_output_dir, save_model

    started = time.perf_counter()
    check_output_dir(output_dir)  # before the training, not after
    roots = [data_dir] if isinstance(data_dir, (str, os.PathLike)) else list(data_dir)
    paths, labels, names = load_image_folders(roots)
    classes, counts = np.unique(labels, return_counts=True)
    cache = FeatureCache(cache_dir) if feature_cache else None
    t0 = time.perf_counter()
    groups, source = find_training_groups(
        paths, groups_csv=groups_csv, root=roots, n_jobs=n_jobs,
        cache_dir=None if cache is None else cache.directory)
    group_seconds = time.perf_counter() - t0
    pipe = make_training_pipeline(
        features=features, classifier=classifier, quick=quick,
        image_size=image_size, augment=augment, views=views, n_jobs=n_jobs,
        random_state=random_state, cascade=cascade)
    set_image_params(pipe, max_pixels=max_pixels)
    if cv_folds is None:
        cv_folds = QUICK_CV_FOLDS if quick else 5
    with _dask_backend(scheduler):
        result = train_model(pipe, paths, labels, groups=groups,
                             test_size=test_size, cv_folds=cv_folds, search=search,
                             random_state=random_state, n_jobs=n_jobs,
                             feature_cache=cache, thumbnails=thumbnails,
                             progress=progress)
    metadata = training_metadata(
        result, paths, labels, names=names, classifier=classifier,
        group_source=source, seconds_wall=time.perf_counter() - started)
    save_model(result.pipeline, output_dir, metadata=metadata,
               files=training_files(result, paths, names=names))
    return FolderTraining(
        result=result, model_dir=str(output_dir),
        class_counts={str(c): int(n) for c, n in zip(classes, counts)},
        n_groups=len(np.unique(groups)), group_source=source,
        group_seconds=group_seconds, seconds=time.perf_counter() - started,
        cache_dir=None if cache is None else str(cache.directory))
