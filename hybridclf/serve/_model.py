"""One served model, loaded and checked as a whole: :class:`ServedModel`.

A model directory becomes a :class:`ServedModel` only after every check has
passed: the manifest and the model file's hash (through
:func:`~hybridclf.load_model`), its classes (the classifier's must be those
of ``model.json``, at least two), and a warm-up prediction through every
block (a cascade's CNN too) that answers one probability per class. The
service swaps such an object in with one assignment, so a request sees
either the old model or the new one, never a mix of one's classes and the
other's probabilities. This module does not import FastAPI.
"""

import datetime
import os
from dataclasses import dataclass, field

import numpy as np

from .. import prediction
from ..exceptions import ModelLoadError, ModelTypeError
from ..neighbours import EmbeddingIndex
from ..persistence import load_model, read_model_info
from ..pipeline import (
    get_block_extractor,
    get_classifier,
    iter_feature_blocks,
    set_max_pixels,
    set_n_jobs,
)
from ..utils._memory import release_memory
from ._answers import class_names

__all__ = ["ServedModel", "load_served_model", "model_version"]

# the warm-up image: a flat grey square, as small as every loader accepts
_WARM_UP = np.full((32, 32, 3), 127, np.uint8)


@dataclass(frozen=True, eq=False)
class ServedModel:
    """A loaded, checked and warmed-up model and what the service says about it.

    Compared by identity: two loads of one directory are two models.

    Attributes
    ----------
    pipe : Pipeline
        The fitted pipeline.

    info : dict
        Its ``model.json``.

    directory : str
        The absolute path it was loaded from.

    version : str
        See :func:`model_version`.

    classes : list of str
        The classes, in the columns of the probabilities.

    ood_thresholds : dict or None
        The per-block out-of-distribution check in use (None when off, or
        when the model has the novelty check).

    novelty : dict or None
        The novelty check ("unlike any training photo") with the model's
        embedding index (None when off, or for a model trained before it);
        see :func:`~hybridclf.prediction.read_open_set`.

    index : EmbeddingIndex or None
        The model's index of its training photos, for the nearest training
        photos of each answer (``"neighbours": K``); None for a model
        without one (it answers no neighbours).

    confidence_threshold : float
        The confidence threshold learned in training (``open_set`` of
        ``model.json``), used for a request that gives none, as
        ``hybridclf predict`` does without ``--threshold``; 0.5 for a model
        trained without one.

    loaded_at : str
        When it was loaded (UTC, ISO 8601).
    """

    pipe: object
    info: dict
    directory: str
    version: str
    classes: list
    ood_thresholds: dict | None = None
    novelty: dict | None = None
    index: object | None = None
    confidence_threshold: float = 0.5
    loaded_at: str = field(default_factory=lambda: datetime.datetime.now(
        datetime.timezone.utc).isoformat(timespec="seconds"))


def model_version(info):
    """The version string of a model: its hybridclf version and hash prefix.

    ``<hybridclf version that saved it>+<first 12 hex digits of the model
    file's SHA-256>``, from ``model.json``. Two trainings never share it (the
    hash covers the fitted parameters), and the same directory copied
    elsewhere keeps it.

    Parameters
    ----------
    info : dict
        A ``model.json``.

    Returns
    -------
    version : str

    Examples
    --------
    >>> from hybridclf.serve._model import model_version
    >>> model_version({"hybridclf_version": "0.1.0", "sha256": "fdf520376402ab"})
    '0.1.0+fdf520376402'
    """
    return (f"{info.get('hybridclf_version', '?')}+"
            f"{str(info.get('sha256', ''))[:12]}")


def _check_classes(directory, info, classes, proba):
    """Raise ModelLoadError unless the classes and the warm-up answer agree."""
    problem = None
    if len(classes) < 2:
        problem = f"its classifier knows {len(classes)} class(es); at least 2 needed"
    elif "classes" in info and (not isinstance(info["classes"], list) or [
            str(c) for c in info["classes"]] != classes):
        problem = (f"model.json lists the classes {info['classes']!r} but the "
                   f"classifier has {classes!r}")
    elif proba.shape != (1, len(classes)) or not np.all(np.isfinite(proba)):
        problem = (f"the warm-up prediction answered probabilities of shape "
                   f"{proba.shape} (finite: {bool(np.all(np.isfinite(proba)))}) "
                   f"for {len(classes)} classes")
    if problem:
        raise ModelLoadError(
            f"The model in {directory!r} failed its checks: {problem}. Retrain "
            "it, or serve another model directory.")


def load_served_model(directory, settings):
    """Load, check and warm up a model directory (blocking; seconds).

    Parameters
    ----------
    directory : str or os.PathLike
        The model directory.

    settings : ServiceSettings
        ``allow_pickle``, ``threads``, ``max_pixels`` and ``use_ood``.

    Returns
    -------
    model : ServedModel
        Ready to answer.

    Raises
    ------
    ModelLoadError
        When the directory is missing, unreadable or incomplete, a file
        differs from its manifest, the file holds no fitted pipeline, the
        classes do not match ``model.json``, the embedding index
        (``neighbours.npz``) is not one, or the warm-up prediction fails; the
        message says which.
    """
    directory = os.path.abspath(os.fspath(directory))
    try:
        pipe = load_model(directory, allow_pickle=settings.allow_pickle)
        info = read_model_info(directory)
    except (ModelTypeError, OSError) as exc:  # a reload must refuse, not crash
        raise ModelLoadError(f"The model in {directory!r} cannot be served: {exc}"
                             ) from exc
    set_n_jobs(pipe, settings.threads)
    set_max_pixels(pipe, settings.max_pixels)
    try:
        proba = _warm_up(pipe)
    except Exception as exc:  # noqa: BLE001 - any failure refuses the model
        raise ModelLoadError(
            f"The model in {directory!r} failed its warm-up prediction "
            f"({type(exc).__name__}: {exc}). Retrain it, or serve another model "
            "directory.") from exc
    classes = class_names(pipe)
    _check_classes(directory, info, classes, np.asarray(proba))
    options, index = open_set_and_index(directory, info, use_ood=settings.use_ood)
    learned = (info.get("open_set") or {}).get("proba_threshold")
    _release_graphs(pipe)
    release_memory()  # what loading and the warm-up freed
    return ServedModel(
        pipe=pipe, info=info, directory=directory, version=model_version(info),
        classes=classes, ood_thresholds=options["ood_thresholds"],
        novelty=options["novelty"], index=index,
        confidence_threshold=0.5 if learned is None else float(learned))


def open_set_and_index(directory, info, *, use_ood=True):
    """The open-set options and the embedding index a served model answers with.

    Parameters
    ----------
    directory : str or os.PathLike
        The model directory.

    info : dict
        Its ``model.json`` (:func:`~hybridclf.persistence.read_model_info`).

    use_ood : bool, default=True
        Whether the novelty (or OOD) check is on.

    Returns
    -------
    options : dict
        ``ood_thresholds`` and ``novelty``, as from
        :func:`hybridclf.prediction.read_open_set` (both None without
        ``use_ood``).

    index : EmbeddingIndex or None
        One index for the novelty check and the nearest training photos.

    Raises
    ------
    ModelLoadError
        When model.json's ``open_set`` entry is malformed or
        ``neighbours.npz`` cannot be read (another format, not an index).
    """
    directory = os.fspath(directory)
    options = {"ood_thresholds": None, "novelty": None}
    try:
        prediction.read_open_set(info)  # checks model.json's open_set entry
        if use_ood:
            options = prediction.read_open_set(info, directory)
        index = (options["novelty"]["index"] if options["novelty"]
                 else EmbeddingIndex.load(directory))
    except (ValueError, OSError) as exc:  # a bad open_set, an unreadable index
        raise ModelLoadError(f"The model in {directory!r} cannot be served: "
                             f"{exc}") from exc
    return options, index


def _release_graphs(pipe):
    """Drop the CNN graphs' bytes once their ONNX Runtime sessions are built.

    The sessions hold the weights; the bytes (about 18 MB for the default
    backbone) would serve only to save the model again, which the service
    never does. See :meth:`~hybridclf.features.CNNFeatures.release_graph`.
    """
    for _, block in iter_feature_blocks(pipe):
        release = getattr(get_block_extractor(block), "release_graph", None)
        if release is not None:
            release()


def _warm_up(pipe):
    """Run every block and every classifier once; the probabilities.

    Every block, the CNN included (its ONNX Runtime session is made here, not
    on the first request), whatever a cascade would answer early; then the
    cascade's cheap stage on the same features.
    """
    if hasattr(pipe, "iter_stages") and any(
            hasattr(get_block_extractor(block), "split_transform")
            for _, block in iter_feature_blocks(pipe)):
        # first one photo through both stages: a cascade cuts its CNN in two
        # for one photo's requests (CNNFeatures.split_transform), so the
        # whole graph's session is never made, and runs both parts
        for _ in pipe.iter_stages([_WARM_UP], full=[True]):
            pass
    features = prediction.transform_features(pipe, [_WARM_UP])
    proba = get_classifier(pipe).predict_proba(features)
    if hasattr(pipe, "stages_from_features"):
        proba, _ = pipe.stages_from_features(features, proba)
    return proba
