"""What ``hybridclf train`` saves beside the pipeline.

:func:`training_metadata` gives the ``model.json`` entries of a trained model
(its dataset's fingerprint, blocks, classifier, groups and views) and
:func:`training_files` the files of the model directory (the label issues,
the embedding index, the records of the photos trained on and held out).
:func:`~hybridclf.training.train_folder` saves both.
"""

import copy
import os

import numpy as np

from .._held_out import (
    TEST_PART_FILE,
    TRAIN_PART_FILE,
    test_part_bytes,
    train_part_bytes,
)
from ..label_issues import LABEL_ISSUES_FILE, label_issues_csv
from ..neighbours import INDEX_FILE
from ..pipeline import get_sampler, iter_feature_blocks
from ..utils._csv import csv_bytes
from ._split import data_fingerprint

__all__ = [
    "training_files",
    "training_metadata",
]


def training_metadata(result, paths, labels, *, root=None, names=None,
                      classifier=None, group_source=None, seconds_wall=None,
                      unreadable=(), n_feedback=None, groups_across_classes=()):
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

    unreadable : sequence of (str, str), default=()
        The files of the dataset left out, with the reason: those that cannot
        be read, and those left out for their label (a label conflict, the
        single photo of a class only a feedback folder holds)
        (:attr:`FolderTraining.unreadable`).

    n_feedback : int or None, default=None
        How many of the images came from a feedback folder
        (:attr:`FolderTraining.n_feedback`); None when none was given.

    groups_across_classes : sequence of dict, default=()
        The groups of near-identical photos filed under more than one class
        (:attr:`FolderTraining.groups_across_classes`).

    Returns
    -------
    metadata : dict
        :meth:`TrainingResult.metadata` with ``data_fingerprint`` and the
        entries ``features``, ``classifier``, ``groups``, ``seconds_wall``
        and, with a ViewAugmenter, ``views_added`` and ``views`` (which
        views were added and why), and with ``n_feedback``, ``n_feedback``
        of ``training``; with ``unreadable``,
        ``unreadable``: a list of ``{"file": ..., "reason": ...}``, as in
        the report of ``hybridclf evaluate``; with
        ``groups_across_classes``, ``groups_across_classes``: a list of
        ``{"files": [...], "classes": [...]}``.
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
    if n_feedback is not None:
        training["n_feedback"] = int(n_feedback)
    if seconds_wall is not None:
        training["seconds_wall"] = round(seconds_wall, 2)
    if unreadable:
        metadata["unreadable"] = [{"file": name, "reason": reason}
                                  for name, reason in unreadable]
    if groups_across_classes:
        metadata["groups_across_classes"] = [
            {"files": list(g["files"]), "classes": list(g["classes"])}
            for g in groups_across_classes]
    return metadata



def training_files(result, paths, *, root=None, names=None, data_dirs=None,
                   labels=None, n_jobs=None, cache_dir=None):
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

    data_dirs : sequence of str or None, default=None
        The data folders that ``paths`` lie in, in the order given to the
        training: with them and ``labels``, the files of the held-out test
        part are recorded too (``test_part.json``). None records none.

    labels : sequence or None, default=None
        The classes of ``paths``, for ``test_part.json``.

    n_jobs : int, default=None
        Threads that read the photos trained on for their perceptual hashes
        (``train_part.json``).

    cache_dir : str or None, default=None
        The feature cache's folder, whose duplicate-search records hold
        those hashes already; None decodes every photo again.

    Returns
    -------
    files : dict of str to str or bytes
        ``{"label_issues.csv": data}`` (the bytes of
        :func:`hybridclf.label_issues.label_issues_csv`, with the byte-order
        mark of every CSV file hybridclf writes: :mod:`hybridclf.utils._csv`) and
        ``{"neighbours.npz": data}``, the embedding index of the novelty
        check and of the nearest training photos, with their file names
        (:meth:`~hybridclf.neighbours.EmbeddingIndex.to_bytes`), when the
        result has them; ``{"train_part.json": data}``, the SHA-256 and the
        perceptual hashes of each photo the pipeline was fitted on (for
        ``hybridclf evaluate`` to say which test files it was trained on,
        or are near copies of them); and ``{"test_part.json": data}``,
        the files of the
        held-out test part that the test metrics scored (their path relative
        to their data folder, label and SHA-256, for ``hybridclf evaluate``
        without a test folder), given ``data_dirs`` and a test part; for the
        ``files`` parameter of :func:`~hybridclf.save_model`.
    """
    files = {}
    if names is None:
        names = [_relative(path, root) for path in paths]
    if result.label_issues is not None:
        files[LABEL_ISSUES_FILE] = csv_bytes(
            label_issues_csv(result.label_issues, names))
    if result.neighbours is not None:
        index = copy.copy(result.neighbours)
        index.files_ = np.asarray(names, dtype=str)[result.train_indices]
        files[INDEX_FILE] = index.to_bytes()
    files[TRAIN_PART_FILE] = train_part_bytes(paths, result.train_indices,
                                              n_jobs=n_jobs, cache_dir=cache_dir)
    scored = result.scored_test_indices
    if (data_dirs is not None and labels is not None and scored is not None
            and len(scored)):
        files[TEST_PART_FILE] = test_part_bytes(data_dirs, paths, labels,
                                                scored, groups=result.groups)
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
