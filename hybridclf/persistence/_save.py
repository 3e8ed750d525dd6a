"""Saving a fitted pipeline as a model directory, atomically.

:func:`save_model` writes the model file, ``model.json``, the model card,
the given files and the manifest into a new folder beside the old one and
swaps it in; :func:`check_output_dir` refuses a folder of other data.
"""

import json
import logging
import os
from pathlib import Path

from .._model_files import MANIFEST, replace_directory, write_manifest
from ._card import _CARD, _model_card
from ._formats import _FILES, _dump
from ._metadata import _INFO, _info, _json_safe

__all__ = ["check_output_dir", "save_model"]

logger = logging.getLogger(__name__)

def save_model(pipe, directory, *, metadata=None, model_format="skops",
               files=None):
    """Save a fitted pipeline as a model directory.

    Writes ``model.skops`` (or ``model.joblib``), ``model.json`` and a model
    card ``README.md`` into ``directory``. ``memory`` caches of the pipeline
    are not saved (they are set to None in the saved copy only).

    Parameters
    ----------
    pipe : fitted Pipeline
        The fitted pipeline, as from :func:`~hybridclf.make_hybrid_pipeline`.

    directory : str or os.PathLike
        Folder to write; created if missing. An older model directory there is
        replaced as a whole, atomically: the new one is written beside it
        (hidden name ``.<name>.saving-*``), flushed to disk, then swapped in,
        so a crash at any moment leaves the old model or the new one. A
        folder that holds files but is not a model directory is refused.

    metadata : dict or None, default=None
        More entries for ``model.json``, such as ``metrics``, ``cv_scores``,
        ``data_fingerprint``, ``training`` and ``open_set``; they must be
        JSON-serialisable. The entries that describe what is written
        (``format_version``, ``hybridclf_version``, ``created``,
        ``model_file``, ``model_format``, ``sha256``, ``manifest``,
        ``classes``, ``parameters``, ``library_versions``, ``cascade``) are
        always computed; the same names in ``metadata`` are ignored, so the
        ``model.json`` of an older save can be passed whole
        (``save_model(load_model(d), d, metadata=read_model_info(d))``).

    model_format : {"skops", "pickle"}, default="skops"
        How the pipeline is stored:

        - "skops": safe to load; no code runs.
        - "pickle": joblib pickle; loading it runs code from the file, so
          :func:`load_model` needs ``allow_pickle=True``.

    files : dict of str to str or bytes, default=None
        More files to write into the directory, by name (no folders), such as
        ``{"label_issues.csv": text, "neighbours.npz": data}`` from
        :func:`hybridclf.training.training_files` (the embedding index of the
        novelty check is one of them). They are written inside
        the atomic save and listed in the manifest; text is written as UTF-8.

    Returns
    -------
    info : dict
        The content of ``model.json``.

    Raises
    ------
    ValueError
        When ``directory`` is a file or a folder of other files (see
        :func:`check_output_dir`), ``model_format`` is unknown, or a name in
        ``files`` is a path or the name of a file the directory already has.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from hybridclf import make_hybrid_pipeline, save_model, load_model
    >>> X = np.random.RandomState(0).randint(0, 255, (6, 32, 32, 3), np.uint8)
    >>> pipe = make_hybrid_pipeline(features=["color"]).set_params(load__size=32)
    >>> pipe = pipe.fit(X, [0, 1] * 3)
    >>> folder = tempfile.mkdtemp()
    >>> save_model(pipe, folder)["classes"]
    [0, 1]
    >>> load_model(folder).predict(X[:2]).shape
    (2,)
    """
    from sklearn.utils.validation import check_is_fitted

    if model_format not in _FILES:
        raise ValueError(
            "The 'model_format' parameter of save_model must be a str among "
            f"{sorted(_FILES)}. Got {model_format!r} instead."
        )
    check_is_fitted(pipe)
    files = _check_files_option(files)
    check_output_dir(directory)
    with replace_directory(directory) as new:
        model_path = new / _FILES[model_format]
        _dump(pipe, model_path, model_format)
        info = _info(pipe, model_path, model_format, metadata)
        (new / _INFO).write_text(json.dumps(info, indent=2, default=_json_safe))
        (new / _CARD).write_text(_model_card(info, files), encoding="utf-8",
                                  errors="surrogateescape")
        for name, content in files.items():
            data = (content.encode("utf-8", "surrogateescape")
                    if isinstance(content, str) else content)
            (new / name).write_bytes(data)
        write_manifest(new)
    logger.info("Saved the model to %s (%s)", directory, model_path.name)
    return info


def _check_files_option(files):
    """The ``files`` of :func:`save_model`, checked: plain names, new ones."""
    files = dict(files or {})
    reserved = {*_FILES.values(), _INFO, _CARD, MANIFEST}
    for name, content in files.items():
        if (not isinstance(name, str) or not name or name != os.path.basename(name)
                or name.startswith(".") or name in reserved):
            raise ValueError(
                "The 'files' parameter of save_model maps plain file names (no "
                f"folder, not hidden, none of {sorted(reserved)}) to their content. "
                f"Got the name {name!r}; rename it.")
        if not isinstance(content, (str, bytes)):
            raise ValueError(
                f"The content of {name!r} in the 'files' parameter of save_model "
                f"must be str or bytes. Got {type(content).__name__}; serialise it "
                "first.")
    return files


def check_output_dir(directory):
    """Refuse to save a model over a folder that is not a model directory.

    Saving replaces the whole folder; a folder that holds files but no
    ``model.json`` is someone's other data, and is left alone.

    Parameters
    ----------
    directory : str or os.PathLike
        Where a model is to be saved.

    Raises
    ------
    ValueError
        When ``directory`` is a file, or a folder that is neither empty nor a
        model directory.
    """
    path = Path(directory)
    if path.exists() and not path.is_dir():
        raise ValueError(
            f"Cannot save the model to {os.fspath(directory)!r}: it is a file. "
            "Pass a new folder or an existing model directory.")
    if path.is_dir() and not (path / _INFO).is_file() and any(path.iterdir()):
        raise ValueError(
            f"Cannot save the model to {os.fspath(directory)!r}: the folder holds "
            f"files but is not a model directory (no {_INFO}), and saving "
            "replaces the whole folder. Pass a new or empty folder, or an existing "
            "model directory to replace.")
