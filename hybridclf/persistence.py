"""Saving and loading fitted pipelines as model directories.

A model directory holds four files:

- ``model.skops``: the fitted pipeline, written with :mod:`skops.io`, which
  stores the state of each object and rebuilds only types that are trusted,
  so loading runs no code from the file;
- ``model.json``: what the model is (classes, hybridclf and library versions,
  parameters, metrics, cross-validation scores, a fingerprint of the training
  data, the open-set thresholds) and the SHA-256 of the model file;
- ``README.md``: the same, as a model card for people;
- ``manifest.json``: the SHA-256 of every other file of the directory;

and the files given to :func:`save_model`'s ``files``, such as the
``label_issues.csv`` that ``hybridclf train`` writes (covered by the
manifest like the others).

:func:`save_model` writes a new directory beside the old one and swaps it in
(a crash leaves the old model or the new one, whole). :func:`load_model`
checks the manifest, the format version and every type in the file against
:data:`TRUSTED_TYPES` before it rebuilds anything.

Directories saved before manifests existed (no ``manifest`` entry in
``model.json``) still load, with a warning: their model file is checked
against the SHA-256 in ``model.json`` as before, which guards what runs; only
``model.json`` and the card are not covered. Saving such a model again adds
the manifest. A directory whose ``model.json`` names a manifest that is
missing is refused.
"""

import datetime
import json
import logging
import os
import platform
import sys
import types
import warnings
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from ._model_files import (
    MANIFEST,
    check_manifest,
    replace_directory,
    sha256_file,
    write_manifest,
)
from .exceptions import ModelLoadError, ModelTypeError, PickleLoadWarning
from .neighbours import INDEX_FILE

__all__ = [
    "MODEL_FORMAT_VERSION",
    "TRUSTED_TYPES",
    "ModelLoadError",
    "check_output_dir",
    "load_model",
    "read_model_info",
    "save_model",
]

logger = logging.getLogger(__name__)

#: Version of the model directory layout; a newer one is refused on load.
MODEL_FORMAT_VERSION = 1

#: The types of a hybridclf pipeline that skops does not trust by itself
#: (public scikit-learn estimators, NumPy and builtin types are trusted by
#: skops). Computed with ``skops.io.get_untrusted_types`` on fitted pipelines
#: with the default blocks, the CNN block, the augmenter and every named
#: classifier of ``make_hybrid_pipeline``, and reviewed: each is an estimator
#: or a scikit-learn state container whose state is parameters, NumPy arrays,
#: bytes and dicts of them.
TRUSTED_TYPES = [
    "hybridclf.cascade.CascadePipeline",  # where models saved before 2026-12 name it
    "hybridclf.cascade._pipeline.CascadePipeline",
    "hybridclf.classifiers.RidgeSoftmaxClassifier",
    "hybridclf.features._cnn.CNNFeatures",
    "hybridclf.features._color.ColorHistogram",
    "hybridclf.features._hog.HOGFeatures",
    "hybridclf.features._lbp.LBPFeatures",
    "hybridclf.features._sift.SIFTBoVW",
    "hybridclf.io.ImageLoader",  # where models saved before 2026-12-07 name it
    "hybridclf.io._loader.ImageLoader",
    "hybridclf.sampling.ClassAwareAugmenter",
    "hybridclf.view_sampling.ViewAugmenter",
    "imblearn.pipeline.Pipeline",
    # "svc", "soft_voting", "stacking": the fitted calibrators
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    # "hist_gradient_boosting": its trees
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    # "random_forest", "extra_trees": their trees
    "sklearn.tree._tree.Tree",
    # VotingClassifier.named_estimators_
    "sklearn.utils._bunch.Bunch",
]

_FILES = {"skops": "model.skops", "pickle": "model.joblib"}
_INFO = "model.json"
_CARD = "README.md"
_LIBRARIES = ("hybridclf", "scikit-learn", "imbalanced-learn", "numpy", "scipy",
              "scikit-image", "opencv-contrib-python-headless", "skops",
              "onnxruntime", "torch")




def _skops_io():
    """Import ``skops.io`` without importing torch or dask.

    skops lists scikit-learn's estimators when imported (``all_estimators``),
    and that package walk imports every sub-package, including scikit-learn's
    vendored ``array_api_compat.torch`` and ``array_api_compat.dask``, which
    import torch (15 to 40 s and hundreds of MB) and dask (about 40 MB more)
    into a process that only predicts. Placeholder modules without
    ``__path__`` stop the walk there; they are removed right after, and the
    list of trusted scikit-learn types is the same (neither holds an
    estimator).
    """
    if "skops.io" in sys.modules:
        return sys.modules["skops.io"]
    import sklearn  # noqa: F401 - the walk starts from the imported package

    placeholders = {}
    for backend in ("torch", "dask"):
        name = f"sklearn.externals.array_api_compat.{backend}"
        if name not in sys.modules and backend not in sys.modules:
            placeholders[name] = sys.modules[name] = types.ModuleType(name)
    try:
        import skops.io
    finally:
        for name, placeholder in placeholders.items():
            if sys.modules.get(name) is placeholder:
                del sys.modules[name]
    return skops.io


def library_versions():
    """Installed versions of the libraries a saved model depends on.

    Returns
    -------
    versions : dict of str to str
        Package name to version, ``None`` for a package that is not installed,
        plus ``"python"``.
    """
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return versions


def _json_safe(value):
    """A JSON-serialisable rendering of a parameter value."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)) and all(
        v is None or isinstance(v, (bool, int, float, str)) for v in value
    ):
        return list(value)
    return repr(value)


def _parameters(pipe):
    """The pipeline's steps and its scalar parameters (no nested estimators)."""
    params = {}
    for name, value in pipe.get_params(deep=True).items():
        if hasattr(value, "get_params") or name in ("steps", "transformer_list"):
            continue
        if name.endswith("memory"):
            continue
        params[name] = _json_safe(value)
    steps = {name: (step if isinstance(step, str) else type(step).__name__)
             for name, step in pipe.steps}
    return {"steps": steps, "params": params}


def _without_memory(pipe):
    """Set every ``memory`` parameter to None; return the old values."""
    old = {k: v for k, v in pipe.get_params(deep=True).items()
           if k == "memory" or k.endswith("__memory")}
    pipe.set_params(**{k: None for k in old if old[k] is not None})
    return {k: v for k, v in old.items() if v is not None}


def _fmt(value):
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _model_card(info):
    """The README.md text of a model directory, section by section."""
    lines = [
        f"# hybridclf model: {len(info['classes'])} classes",
        "",
        f"Saved {info['created']} with hybridclf {info['hybridclf_version']}. "
        "Load it with:",
        "",
        "```python",
        "import hybridclf",
        "model = hybridclf.load_model(\"path/to/this/folder\")",
        "model.predict([\"photo.jpg\"])",
        "```",
        "",
        "or predict from the command line with "
        "`hybridclf predict --model-dir <this folder> <images or folders>`.",
        "",
        "## Classes",
        "",
        ", ".join(f"`{c}`" for c in info["classes"]),
        "",
        "## Pipeline",
        "",
    ]
    lines += [f"- `{name}`: {step}"
              for name, step in info["parameters"]["steps"].items()]
    lines += _card_scores(info) + _card_decisions(info) + _card_integrity(info)
    return "\n".join(lines) + "\n"


def _card_scores(info):
    """The model card's test metrics, cross-validation and training sections."""
    lines = []
    metrics = info.get("metrics") or {}
    if metrics:
        lines += ["", "## Held-out test metrics", "", "| metric | value |",
                  "| --- | ---: |"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in metrics.items()
                  if isinstance(v, (int, float))]
    cv = info.get("cv_scores") or {}
    if cv:
        lines += ["", "## Cross-validation on the training part", "",
                  "| metric | mean | std | folds |", "| --- | ---: | ---: | ---: |"]
        for name, values in cv.items():
            if isinstance(values, dict) and "mean" in values:
                lines.append(f"| {name} | {values['mean']:.3f} | "
                             f"{values['std']:.3f} | {len(values['folds'])} |")
    training = info.get("training") or {}
    if training:
        lines += ["", "## Training", ""]
        lines += [f"- {k}: {_fmt(v)}" for k, v in training.items()
                  if not isinstance(v, (dict, list))]
    return lines


def _card_decisions(info):
    """The model card's open-set, label-issue and cascade sections."""
    lines = []
    open_set = info.get("open_set") or {}
    if open_set:
        novelty = open_set.get("novelty")
        rule = (f"the photo's CNN embedding is further than "
                f"{_fmt(novelty.get('threshold'))} (cosine distance) from every "
                f"training photo in `{INDEX_FILE}` (unlike any training photo)"
                if novelty else
                "the out-of-distribution score of a feature block is above its "
                "threshold: " + ", ".join(
                    f"{k} {_fmt(v)}"
                    for k, v in (open_set.get("ood_thresholds") or {}).items()))
        limit = _fmt(open_set.get("proba_threshold"))
        confidence = (f"below {limit} times the photo's cosine distance over that "
                      "threshold, at most 1" if novelty else f"below {limit}")
        lines += ["", "## Open set", "",
                  f"`hybridclf predict` answers \"unknown\" when {rule}, or when "
                  f"the top probability is {confidence} (low confidence)."]
    issues = info.get("label_issues") or {}
    if issues:
        lines += ["", "## Likely wrong labels", "",
                  f"{issues.get('n_flagged')} of the {issues.get('n_checked')} "
                  "training images have a label that the grouped out-of-fold "
                  "predictions contradict (confident learning, cleanlab); "
                  f"`{issues.get('file')}` lists them, most suspicious first, "
                  "with the class the model suggests. Check them by eye."]
    cascade = info.get("cascade") or {}
    if cascade:
        lines += ["", "## Cascade", "",
                  f"The blocks {', '.join(cascade['cheap_features'])} answer alone "
                  "when their classifier's top probability is at least "
                  f"{_fmt(cascade['threshold'])}"
                  + ("" if not cascade.get("ood_limits") else
                     " and the photo's out-of-distribution score in each of them "
                     "is within " + ", ".join(
                         f"{k} {_fmt(v)}" for k, v in cascade["ood_limits"].items()))
                  + "; other photos run every block. Out of fold: " + ", ".join(
                      f"{k.replace('_', ' ')} {_fmt(v)}" for k, v in cascade.items()
                      if k not in ("threshold", "cheap_features", "ood_limits"))
                  + "."]
    return lines


def _card_integrity(info):
    """The model card's data, integrity and library-version sections."""
    lines = []
    fingerprint = info.get("data_fingerprint") or {}
    if fingerprint:
        lines += ["", "## Data", "",
                  f"- images: {fingerprint.get('n_images')}",
                  f"- fingerprint (SHA-256 of names, sizes and labels): "
                  f"`{fingerprint.get('sha256')}`"]
    lines += ["", "## Integrity", "",
              f"`{info['model_file']}` ({info['model_format']}) has SHA-256 "
              f"`{info['sha256']}`. `{MANIFEST}` lists the SHA-256 of every "
              "file of this folder, this one included; `load_model` refuses the "
              "model if any differs, so edit nothing here.",
              "", "## Library versions", ""]
    lines += [f"- {k}: {v}" for k, v in info["library_versions"].items() if v]
    return lines


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
        JSON-serialisable.

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
        (new / _CARD).write_text(_model_card(info))
        for name, content in files.items():
            data = content.encode("utf-8") if isinstance(content, str) else content
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


def _dump(pipe, model_path, model_format):
    """Write the pipeline to ``model_path``, without its ``memory`` caches."""
    memory = _without_memory(pipe)
    try:
        if model_format == "skops":
            _skops_io().dump(pipe, model_path)
        else:
            import joblib

            joblib.dump(pipe, model_path)
    finally:
        if memory:
            pipe.set_params(**memory)


def _info(pipe, model_path, model_format, metadata):
    """The content of ``model.json``."""
    classes = getattr(pipe, "classes_", None)
    versions = library_versions()
    info = {
        "format_version": MODEL_FORMAT_VERSION,
        "hybridclf_version": versions["hybridclf"],
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"),
        "model_file": model_path.name,
        "model_format": model_format,
        "sha256": sha256_file(model_path),
        "manifest": MANIFEST,
        "classes": [c.item() if hasattr(c, "item") else c for c in classes],
        "parameters": _parameters(pipe),
        "library_versions": versions,
    }
    if hasattr(pipe, "cascade_summary"):
        info["cascade"] = pipe.cascade_summary()
    info.update(metadata or {})
    return info


def read_model_info(directory):
    """Read the ``model.json`` of a model directory.

    Parameters
    ----------
    directory : str or os.PathLike
        A folder written by :func:`save_model` or ``hybridclf train``.

    Returns
    -------
    info : dict
        Classes, versions, metrics, parameters, open-set thresholds, hash.

    Raises
    ------
    ModelLoadError
        When the folder or its ``model.json`` is missing or unreadable.
    """
    path = Path(directory) / _INFO
    if not Path(directory).is_dir():
        raise ModelLoadError(
            f"The model directory {os.fspath(directory)!r} does not exist. Pass a "
            "folder written by save_model or `hybridclf train`."
        )
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ModelLoadError(
            f"The model directory {os.fspath(directory)!r} has no {_INFO}. Pass a "
            "folder written by save_model or `hybridclf train`."
        ) from exc
    except json.JSONDecodeError as exc:
        raise ModelLoadError(f"{os.fspath(path)!r} is not valid JSON ({exc}).") from exc


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
        differs from ``manifest.json``; the message names it), the format is
        newer than this hybridclf, a pickle is found without
        ``allow_pickle=True``, or the file holds untrusted types.

    ModelTypeError
        When the file holds something else than a fitted Pipeline (a
        ``TypeError`` too).

    Warns
    -----
    PickleLoadWarning
        Before a pickle is unpickled (``allow_pickle=True``).

    UserWarning
        For a directory saved before manifests existed (only the model file
        is checked then), or one holding files the manifest does not list.

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
    _check_files(directory, info)
    found = info.get("format_version")
    if not isinstance(found, int) or found > MODEL_FORMAT_VERSION:
        raise ModelLoadError(
            f"The model in {os.fspath(directory)!r} has format_version {found!r}; "
            f"this hybridclf ({library_versions()['hybridclf']}) reads up to "
            f"{MODEL_FORMAT_VERSION}. Upgrade hybridclf (the model was saved by "
            f"{info.get('hybridclf_version')!r}) or retrain the model."
        )
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
    expected, actual = info.get("sha256"), sha256_file(model_path)
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
        pipe = _load_skops(model_path, trusted)
    return _check_pipeline(pipe, model_path)


def _check_files(directory, info):
    """Check the manifest; warn for files it does not cover."""
    if info.get("manifest") or (directory / MANIFEST).exists():
        unlisted = check_manifest(directory, ModelLoadError)
        if unlisted:
            warnings.warn(
                f"The model directory {os.fspath(directory)!r} holds files added "
                f"after it was saved, not covered by {MANIFEST}: {unlisted!r}. "
                "hybridclf does not read them.", UserWarning, stacklevel=3)
        return
    # saved by hybridclf before manifests: the model file's hash is checked,
    # model.json and README.md are not covered
    warnings.warn(
        f"The model directory {os.fspath(directory)!r} has no {MANIFEST} (saved "
        "by an older hybridclf): only its model file is checked, not model.json. "
        "Save it again to add one: save_model(load_model(d), d, "
        "metadata=read_model_info(d)).", UserWarning, stacklevel=3)


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


def _load_pickle(model_path, allow_pickle):
    """Unpickle the model, loudly, when allowed."""
    if not allow_pickle:
        raise ModelLoadError(
            f"The model in {os.fspath(model_path.parent)!r} is a pickle "
            f"({model_path.name}), and unpickling runs code from the file. Pass "
            "allow_pickle=True if you trust it, or save it again with "
            "model_format='skops'."
        )
    message = (f"Unpickling {os.fspath(model_path)!r} (allow_pickle=True): this "
               "runs any code the file holds, with this process's rights. Do it "
               "only for files you made yourself; save_model(..., "
               "model_format='skops') writes a model that runs no code on load.")
    logger.warning(message)
    warnings.warn(message, PickleLoadWarning, stacklevel=3)
    import joblib

    return joblib.load(model_path)


def _load_skops(model_path, trusted):
    sio = _skops_io()
    allowed = set(TRUSTED_TYPES) | set(trusted or ())
    try:
        found_types = sio.get_untrusted_types(file=model_path)
    except Exception as exc:  # noqa: BLE001 - skops raises many kinds on bad files
        raise ModelLoadError(
            f"The model file {os.fspath(model_path)!r} is not a readable skops file "
            f"({type(exc).__name__}: {exc})."
        ) from exc
    untrusted = sorted(set(found_types) - allowed)
    if untrusted:
        raise ModelLoadError(
            f"The model file {os.fspath(model_path)!r} holds types that hybridclf "
            f"does not trust: {untrusted!r}. Pass them in 'trusted' only if you "
            "know what they are."
        )
    return sio.load(model_path, trusted=sorted(found_types))


def _check_pipeline(pipe, model_path):
    """The loaded object, if it is a fitted pipeline; TypeError otherwise."""
    from sklearn.exceptions import NotFittedError
    from sklearn.pipeline import Pipeline
    from sklearn.utils.validation import check_is_fitted

    if not isinstance(pipe, Pipeline):
        raise ModelTypeError(
            f"The model file {os.fspath(model_path)!r} holds a "
            f"{type(pipe).__module__}.{type(pipe).__qualname__}, not a "
            "scikit-learn or hybridclf Pipeline. Save a fitted pipeline, as from "
            "make_hybrid_pipeline(...).fit(X, y), with save_model.")
    try:
        check_is_fitted(pipe)
    except NotFittedError as exc:
        raise ModelTypeError(
            f"The pipeline in {os.fspath(model_path)!r} is not fitted. Fit it "
            "before saving it with save_model.") from exc
    return pipe
