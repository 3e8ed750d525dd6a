"""``hybridclf train`` as one library call: :func:`train_folder`.

:func:`train_folder` finds the groups of a class-per-folder dataset
(:func:`find_training_groups`), builds the pipeline from a few choices
(:func:`make_training_pipeline`), trains it with :func:`train_model` and
saves it with the metadata of :func:`training_metadata` and the files of
:func:`training_files`. The command only parses its options, calls it and
prints the :class:`FolderTraining` it returns.

The groups and the pipeline are built in :mod:`._training_pipeline`, the
metadata and files in :mod:`._training_metadata`; their names stay
importable from here.
"""

import os
import tempfile
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from sklearn.base import clone

from ..exceptions import SkippedFilesWarning
from ..pipeline import get_sampler, set_image_params
from ._feature_cache import FeatureCache
from ._groups import drop_label_conflicts, groups_across_classes
from ._result import TrainingResult
from ._train import train_model
from ._training_metadata import (  # noqa: F401 (importable from here)
    _relative,
    _views_added,
    _views_reason,
    training_files,
    training_metadata,
)
from ._training_pipeline import (  # noqa: F401 (importable from here)
    QUICK_CV_FOLDS,
    QUICK_FEATURES,
    QUICK_IMAGE_SIZE,
    augment_origins,
    find_training_groups,
    make_training_pipeline,
)

__all__ = [
    "QUICK_CV_FOLDS",
    "FolderTraining",
    "augment_origins",
    "find_training_groups",
    "make_training_pipeline",
    "train_folder",
    "training_files",
    "training_metadata",
]


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

    unreadable : list of (str, str)
        Each file of the data folders left out, named as in the model's
        data fingerprint, with the reason: first those the folder walk did
        not take (not an image, empty, ...: warned about as they were
        found), then those left out for their label (label conflicts, the
        single photo of a class that only a feedback folder holds: warned
        about too), then those that could not be decoded (truncated, too
        small, ...). ``model.json`` and the model card list them too.

    n_set_aside : int
        How many of ``unreadable`` were left out for their label (those
        just before the undecodable ones).

    n_undecodable : int
        How many of ``unreadable`` (the last ones) could not be decoded.

    n_feedback : int or None
        How many of the images trained on came from a feedback folder (one
        holding ``feedback.jsonl``), all of them in the training part;
        None when no data folder is one.

    groups_across_classes : list of dict
        Each group of near-identical photos filed under more than one class
        (``files``, ``classes``): trained on under each label, and named in
        a warning (:func:`groups_across_classes`), ``model.json`` and the
        model card.
    """

    result: TrainingResult
    model_dir: str
    class_counts: dict
    n_groups: int
    group_source: str
    group_seconds: float
    seconds: float
    cache_dir: str = None
    unreadable: list = ()
    n_undecodable: int = 0
    n_set_aside: int = 0
    n_feedback: int = None
    groups_across_classes: list = ()

    @property
    def n_images(self):
        """Images in the dataset."""
        return sum(self.class_counts.values())

    @property
    def n_grouped_images(self):
        """(images that share their group with others, groups of two or more)."""
        counts = np.unique(self.result.groups, return_counts=True)[1]
        return int(counts[counts > 1].sum()), int((counts > 1).sum())

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


def _from_feedback(paths, roots):
    """Whether each image lies in a feedback folder (one holding ``feedback.jsonl``).

    Those photos are the corrections of wrong answers: the training that
    is run to learn them trains on them (``train_model``'s ``train_only``),
    where a test part drawn at random held about a fifth of them out.
    """
    from ..io import FEEDBACK_LOG

    folders = [os.path.join(os.path.realpath(r), "") for r in roots
               if os.path.isfile(os.path.join(r, FEEDBACK_LOG))]
    if not folders:
        return None
    return np.array([isinstance(p, (str, os.PathLike))
                     and os.path.realpath(p).startswith(tuple(folders))
                     for p in paths], dtype=bool)


def _drop_lone_feedback_classes(paths, labels, names, roots):
    """Leave out a class of one photo that only a feedback folder holds, and say so.

    One visitor's photo of a new class would stop every retraining (the
    folds need two images of each class) until someone moved it away; it
    waits in the feedback folder instead, and is trained on once a second
    photo of the class comes. A class of the data folders keeps the error.

    Returns the three lists without those photos, and each photo left out
    (its name) with the reason, for the model's record of the files it never
    saw.
    """
    from_feedback = _from_feedback(paths, roots)
    if from_feedback is None:
        return paths, labels, names, []
    lone = {}
    for i, label in enumerate(labels):
        lone.setdefault(label, []).append(i)
    lone = {c: idx for c, idx in lone.items()
            if len(idx) < 2 and from_feedback[idx].all()}
    if not lone:
        return paths, labels, names, []
    shown = ", ".join(f"{c!r} ({names[idx[0]]})" for c, idx in sorted(lone.items()))
    warnings.warn(
        f"{len(lone)} class(es) of the feedback folder have a single photo and "
        f"are left out of this training: {shown}. A class needs at least 2 "
        "photos (the cross-validation tests each class); it is trained on once "
        "a second photo of it is sent, or added to the data folder.",
        SkippedFilesWarning, stacklevel=3)
    keep = [i for i, label in enumerate(labels) if label not in lone]
    left_out = [(names[idx[0]], f"the only photo of the class {c!r}, which only "
                 "the feedback folder holds: trained on once a second photo of "
                 "it comes (a class needs at least 2)")
                for c, idx in sorted(lone.items())]
    return ([paths[i] for i in keep], [labels[i] for i in keep],
            [names[i] for i in keep], left_out)


def _scans_folder(cache):
    """(the folder of the duplicate search's scans, its temporary folder).

    The scan of every photo is kept for the fingerprints of the photos
    trained on (``train_part.json``), which scanned them all again without
    the feature cache: then it goes to a temporary folder (the second item;
    None with the cache), removed at the end of the training, or with its
    object if the training fails.
    """
    if cache is not None:
        return str(cache.directory), None
    temporary = tempfile.TemporaryDirectory(prefix="hybridclf-scans-")
    return temporary.name, temporary


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
    by :func:`~hybridclf.save_model` with :func:`training_metadata`. A photo
    filed under two classes (byte-identical files) is left out, with a
    warning that names its files (a label conflict), and recorded with
    the unreadable files (below). A group of near-identical photos (not
    byte-identical) filed under two classes is trained on under both, as
    one object may rightly be, with a warning, once the training is done,
    that names its files and classes (:func:`groups_across_classes`; of
    the photos trained on: a copy that does not decode is not named). The photos of a
    feedback folder (one holding ``feedback.jsonl``, as
    :class:`~hybridclf.feedback.FeedbackStore` writes) are always trained
    on, never drawn into the test part: they are the corrections the new
    model is trained to learn; a class that only a feedback folder holds,
    with a single photo, is left out with a warning until a second photo
    of it comes (the folds need two), and recorded so too. A file that cannot be
    read never stops the training: the folder walk skips what is not an
    image, with a warning, and a file that cannot be decoded (truncated,
    too small, over ``max_pixels``) is left out
    (:func:`~hybridclf.io.call_on_readable`); both are named with their
    reason in :attr:`FolderTraining.unreadable`, ``model.json``
    (``unreadable``) and the model card. Only a dataset without a readable
    image is an error.

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
        everything (the duplicate search's measures are then kept in a
        temporary folder until the fingerprints of the photos trained on
        are taken from them, and removed).

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
    from ..io import call_on_readable, load_image_folders
    from ..persistence import check_output_dir, import_skops_early, save_model

    started = time.perf_counter()
    check_output_dir(output_dir)  # before the training, not after
    roots = [data_dir] if isinstance(data_dir, (str, os.PathLike)) else list(data_dir)
    paths, labels, names, skipped = load_image_folders(roots, return_skipped=True)
    paths, labels, names, conflicts = drop_label_conflicts(
        paths, labels, names, return_left_out=True)
    paths, labels, names, lone = _drop_lone_feedback_classes(paths, labels, names,
                                                             roots)
    # recorded with the undecodable files: a retraining run from cron is
    # read from its model, not from the warnings it printed
    set_aside = conflicts + lone
    cache = FeatureCache(cache_dir) if feature_cache else None
    scans, temporary = _scans_folder(cache)
    t0 = time.perf_counter()
    groups, source = find_training_groups(
        paths, groups_csv=groups_csv, root=roots, n_jobs=n_jobs, cache_dir=scans)
    group_seconds = time.perf_counter() - t0
    pipe = make_training_pipeline(
        features=features, classifier=classifier, quick=quick,
        image_size=image_size, augment=augment, views=views, n_jobs=n_jobs,
        random_state=random_state, cascade=cascade)
    set_image_params(pipe, max_pixels=max_pixels)
    if cv_folds is None:
        cv_folds = QUICK_CV_FOLDS if quick else 5

    def fit(paths, labels, groups):
        return train_model(clone(pipe), paths, labels, groups=np.asarray(groups),
                           test_size=test_size, cv_folds=cv_folds, search=search,
                           random_state=random_state, n_jobs=n_jobs,
                           feature_cache=cache, thumbnails=thumbnails,
                           progress=progress,
                           origins=augment_origins(paths, roots),
                           train_only=_from_feedback(paths, roots),
                           # the model's saving imports skops: on the core
                           # that the training leaves idle
                           while_waiting=import_skops_early)

    with _dask_backend(scheduler):
        # a file that cannot be decoded is left out and named, as evaluate,
        # predict and extract do, not the end of the training
        result, kept, failed = call_on_readable(fit, paths, labels, groups)
    failed = dict(failed)
    undecodable = [(name, failed[path]) for path, name in zip(paths, names)
                   if path in failed]
    paths, labels, names = ([column[i] for i in kept]
                            for column in (paths, labels, names))
    # on the photos trained on: a group whose copy under the other class does
    # not decode is trained on under one label
    spanning = groups_across_classes([groups[i] for i in kept], labels, names,
                                     source=source)
    classes, counts = np.unique(labels, return_counts=True)
    from_feedback = _from_feedback(paths, roots)
    n_feedback = None if from_feedback is None else int(from_feedback.sum())
    metadata = training_metadata(
        result, paths, labels, names=names, classifier=classifier,
        group_source=source, seconds_wall=time.perf_counter() - started,
        unreadable=skipped + set_aside + undecodable, n_feedback=n_feedback,
        groups_across_classes=spanning)
    save_model(result.pipeline, output_dir, metadata=metadata,
               files=training_files(
                   result, paths, names=names, data_dirs=roots, labels=labels,
                   n_jobs=n_jobs, cache_dir=scans))
    if temporary is not None:
        temporary.cleanup()
    return FolderTraining(
        result=result, model_dir=str(output_dir),
        class_counts={str(c): int(n) for c, n in zip(classes, counts)},
        n_groups=len(np.unique(result.groups)), group_source=source,
        group_seconds=group_seconds, seconds=time.perf_counter() - started,
        cache_dir=None if cache is None else str(cache.directory),
        unreadable=skipped + set_aside + undecodable,
        n_set_aside=len(set_aside), n_undecodable=len(undecodable),
        n_feedback=n_feedback, groups_across_classes=spanning)
