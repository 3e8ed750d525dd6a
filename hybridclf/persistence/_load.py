"""Loading a model directory, checked before anything is rebuilt.

:func:`load_model` checks the manifest (or, for a directory saved before
manifests, the model file's hash), the format version and the library
versions, then rebuilds the pipeline from a skops file of trusted types or,
when allowed, a pickle.
"""

import os
import warnings
from pathlib import Path

from .._model_files import MANIFEST, check_manifest, expects_manifest, sha256_file
from ..exceptions import ModelLoadError
from ._formats import _FILES, _check_pipeline, _load_pickle, _load_skops
from ._metadata import (
    _INFO,
    MODEL_FORMAT_VERSION,
    library_versions,
    read_model_info,
    saved_by,
)

__all__ = ["load_model"]

def load_model(directory, *, allow_pickle=False, trusted=None):
    """Load a pipeline saved by :func:`save_model`, checking it first.

    Before anything is rebuilt, every file of the directory must match its
    SHA-256 in ``manifest.json`` (and the model file the one in
    ``model.json``), the directory format must be one this version knows, and
    every type in a skops file must be trusted: a scikit-learn, NumPy or
    builtin type that skops trusts, one of :data:`TRUSTED_TYPES`, or one
    listed in ``trusted``. Loading a skops file runs no code from it.

    Parameters
    ----------
    directory : str or os.PathLike
        A folder written by :func:`save_model` or ``hybridclf train``.

    allow_pickle : bool, default=False
        Whether to load a ``model.joblib`` pickle. Unpickling runs code from
        the file: allow it only for files you made yourself. The hashes are
        checked first either way, a :class:`PickleLoadWarning` is issued (and
        logged) before unpickling, and the result must be a fitted Pipeline.

    trusted : list of str or None, default=None
        More type names to trust in a skops file (for a pipeline with your
        own transformer), as ``"module.ClassName"``.

    Returns
    -------
    pipe : Pipeline
        The fitted pipeline.

    Raises
    ------
    ModelLoadError
        When the directory is incomplete, a file was modified (its SHA-256
        differs from ``manifest.json``; the message names it), a pickle is
        found without ``allow_pickle=True``, or the file holds untrusted
        types. A model saved by a newer hybridclf in a newer format, or
        holding types this version does not have or trust, is refused with
        the version that saved it and the ``pip install`` that loads it; the
        format is checked first, before the other files are read.

    ModelTypeError
        When the file holds something else than a fitted Pipeline (a
        ``TypeError`` too).

    Warns
    -----
    PickleLoadWarning
        Before a pickle is unpickled (``allow_pickle=True``).

    UserWarning
        For a directory saved before manifests existed (only the model file
        is checked then), or one holding files the manifest does not list;
        and after loading a model that a newer hybridclf saved (this version
        predicts with its own rules).

    Examples
    --------
    >>> from hybridclf import load_model
    >>> load_model("no/such/folder")
    Traceback (most recent call last):
    ...
    hybridclf.exceptions.ModelLoadError: The model directory 'no/such/folder' ...
    """
    info = read_model_info(directory)
    directory = Path(directory)
    # the format first: a newer one may lay out the manifest and the other
    # files differently, which would otherwise be refused as damaged
    found = info.get("format_version")
    if not isinstance(found, int) or isinstance(found, bool):
        raise ModelLoadError(
            f"The 'format_version' entry of {os.fspath(directory / _INFO)!r} must "
            f"be an int. Got {found!r} instead. Restore the model directory's "
            f"{_INFO} or retrain the model.")
    if found > MODEL_FORMAT_VERSION:
        saver, fix, _ = saved_by(info)
        raise ModelLoadError(
            f"The model in {os.fspath(directory)!r} was saved by {saver}, in "
            f"format_version {found!r}; this hybridclf reads up to "
            f"{MODEL_FORMAT_VERSION}. To load it, {fix}; or retrain the model "
            "with this version (`hybridclf train --data-dir <photos> "
            "--output-dir <model folder>`)."
        )
    checked = _check_files(directory, info)
    model_format = info.get("model_format")
    if model_format not in _FILES:
        raise ModelLoadError(
            f"The 'model_format' entry of {os.fspath(directory / _INFO)!r} must be "
            f"a str among {sorted(_FILES)}. Got {model_format!r} instead."
        )
    model_path = directory / _FILES[model_format]
    if not model_path.is_file():
        raise ModelLoadError(
            f"The model file {os.fspath(model_path)!r} named by model.json is "
            "missing. Copy the whole model directory."
        )
    # the manifest check hashed the model file already (a read of the whole
    # file, paid at every load): its digest is compared with model.json's too
    actual = checked.get(_FILES[model_format]) or sha256_file(model_path)
    expected = info.get("sha256")
    if actual != expected:
        raise ModelLoadError(
            f"The model file {os.fspath(model_path)!r} was modified: its SHA-256 is "
            f"{actual!r} but model.json records {expected!r}. Refusing to load it; "
            "retrain the model or restore the original file."
        )
    _warn_versions(directory, info)
    if model_format == "pickle":
        pipe = _load_pickle(model_path, allow_pickle)
    else:
        pipe = _load_skops(model_path, trusted, info)
    pipe = _check_pipeline(pipe, model_path)
    _warn_newer(directory, info)
    return pipe


def _check_files(directory, info):
    """Check the manifest; warn for files it does not cover.

    Returns the SHA-256 of each file checked against the manifest (relative
    name to hex digest), empty for a directory saved before manifests.
    """
    if expects_manifest(directory, info):
        checked, unlisted = check_manifest(directory, ModelLoadError)
        if unlisted:
            warnings.warn(
                f"The model directory {os.fspath(directory)!r} holds files added "
                f"after it was saved, not covered by {MANIFEST}: {unlisted!r}. "
                "hybridclf does not read them.", UserWarning, stacklevel=3)
        return checked
    # saved by hybridclf before manifests: the model file's hash is checked,
    # model.json and README.md are not covered
    warnings.warn(
        f"The model directory {os.fspath(directory)!r} has no {MANIFEST} (saved "
        "by an older hybridclf): only its model file is checked, not model.json. "
        "Save it again to add one: save_model(load_model(d), d, "
        "metadata=read_model_info(d)).", UserWarning, stacklevel=3)
    return {}


def _warn_newer(directory, info):
    """Warn for a model that a newer hybridclf saved and this one loaded."""
    saver, fix, newer = saved_by(info)
    if newer:
        # its format and types are this version's, so it loads; but what the
        # newer version added to the files is not read here
        warnings.warn(
            f"The model in {os.fspath(directory)!r} was saved by {saver}. This "
            "version reads its format, but predicts with its own rules (what "
            "counts as unknown, for one) and leaves out what the newer version "
            f"added; to predict as it does, {fix}.", UserWarning, stacklevel=3)


def _warn_versions(directory, info):
    saved = (info.get("library_versions") or {}).get("scikit-learn")
    here = library_versions()["scikit-learn"]
    if saved and saved.split(".")[:2] != here.split(".")[:2]:
        warnings.warn(
            f"The model in {os.fspath(directory)!r} was saved with scikit-learn "
            f"{saved} and is loaded with {here}; its predictions may differ. "
            "Retrain it with this version to be sure.",
            UserWarning,
            stacklevel=3,
        )
