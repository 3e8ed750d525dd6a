"""What a model is: its ``model.json`` (classes, versions, parameters, hash).

``_info`` writes the description of a fitted pipeline, with
:func:`library_versions` and its scalar parameters; :func:`read_model_info`
reads it back from a model directory.
"""

import datetime
import errno
import os
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from .._model_files import MANIFEST, read_json, sha256_file
from ..exceptions import ModelLoadError

__all__ = ["MODEL_FORMAT_VERSION", "library_versions", "read_model_info"]

#: Version of the model directory layout; a newer one is refused on load.
#: Raised only when a model directory changes so that an older hybridclf
#: would misread it (a file or ``model.json`` entry it needs changes meaning
#: or layout), never for a new class in the model file: the type check
#: refuses those, naming the hybridclf that saved the model (docs/guide.md,
#: "Upgrading hybridclf").
MODEL_FORMAT_VERSION = 1


_INFO = "model.json"
_LIBRARIES = ("hybridclf", "scikit-learn", "imbalanced-learn", "numpy", "scipy",
              "scikit-image", "opencv-contrib-python-headless", "skops",
              "onnxruntime", "torch")


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


def saved_by(info):
    """Who saved a model, against this hybridclf: for the message that refuses it.

    Parameters
    ----------
    info : dict
        The model's ``model.json``.

    Returns
    -------
    saver : str
        "hybridclf 0.2.0, newer than this 0.1.0"; for a version number equal
        to this one's (another build of it), the date the model was saved.

    fix : str
        The command that installs a hybridclf that reads the model.

    newer : bool
        Whether the recorded version is newer than this one.

    Examples
    --------
    >>> from hybridclf.persistence._metadata import saved_by
    >>> saved_by({"hybridclf_version": "999.0"})[1]
    "upgrade hybridclf to 999.0 or later (pip install -U 'hybridclf>=999.0')"
    """
    from packaging.version import InvalidVersion, Version

    try:
        here = version("hybridclf")  # not library_versions(): 10 look-ups
    except PackageNotFoundError:
        here = None
    saved = info.get("hybridclf_version")
    try:
        order = (Version(saved) > Version(here)) - (Version(saved) < Version(here))
    except (InvalidVersion, TypeError):
        order = None
    if order == 1:
        return (f"hybridclf {saved}, newer than this {here}",
                f"upgrade hybridclf to {saved} or later (pip install -U "
                f"'hybridclf>={saved}')", True)
    if order == -1:
        return (f"hybridclf {saved}, older than this {here}",
                f"load it with hybridclf {saved} (pip install "
                f"'hybridclf=={saved}')", False)
    # the same version number (a development build) or none recorded: the
    # date tells the builds apart
    created = info.get("created")
    when = f" on {created}" if isinstance(created, str) else ""
    return (f"hybridclf {saved!s}{when}, a build other than this one ({here})",
            "install the hybridclf that saved it (pip install -U hybridclf "
            "gives the latest)", False)


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
    # the entries above describe the files just written: metadata read from an
    # older model.json (the re-save that adds a manifest) must not put back
    # that file's hash, format or versions, which would make the model refused
    info.update({k: v for k, v in (metadata or {}).items() if k not in info})
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
        problem = "is not a folder" if Path(directory).exists() else "does not exist"
        raise ModelLoadError(
            f"The model directory {os.fspath(directory)!r} {problem}. Pass a "
            "folder written by save_model or `hybridclf train`."
        )
    try:
        # a FIFO named model.json would block a plain read (and a reload) for
        # ever; a link may name any file (of a directory from someone else)
        info = read_json(path, follow_links=False)
    except FileNotFoundError as exc:
        raise ModelLoadError(
            f"The model directory {os.fspath(directory)!r} has no {_INFO}. "
            + (_what_it_holds(directory) or "Pass a folder written by save_model "
               "or `hybridclf train`.")
        ) from exc
    except OSError as exc:
        # too big, or a link: the reason says it; else a FIFO, a folder, ...
        only = "" if exc.errno in (errno.EFBIG, errno.ELOOP) else (
            "; only a regular file is read")
        raise ModelLoadError(
            f"{os.fspath(path)!r} cannot be read ({exc.strerror or exc}){only}. "
            f"Restore the model directory's {_INFO} or retrain the model.") from exc
    except (ValueError, RecursionError) as exc:  # not JSON, not UTF-8, too deep
        raise ModelLoadError(
            f"{os.fspath(path)!r} is not valid JSON ({exc}), as save_model writes "
            f"it (UTF-8). Restore the model directory's {_INFO} or retrain the "
            "model.") from exc
    if not isinstance(info, dict):
        raise ModelLoadError(
            f"{os.fspath(path)!r} holds a JSON {type(info).__name__}, not the "
            "object that save_model writes. Restore the model directory's "
            f"{_INFO} or retrain the model."
        )
    return info


#: The model file of the original system's model folders.
_ORIGINAL_MODEL = "ensemble_model.joblib"


def _what_it_holds(directory, most=50):
    """The fix for a folder without model.json that a newcomer passes.

    A model folder of the original system that hybridclf replaces
    (``ensemble_model.joblib``) says it must be retrained; a folder holding a
    model directory (``demo_output/`` for ``demo_output/model/``) names it; a
    folder of class folders of images (a dataset) says so. "" otherwise.
    Looks at ``most`` sub-folders and ``most`` entries of each, never more.
    """
    from ..io import IMAGE_EXTENSIONS

    if os.path.isfile(os.path.join(directory, _ORIGINAL_MODEL)):
        return (f"Its {_ORIGINAL_MODEL} is a model of the original system, which "
                "hybridclf does not load (a joblib pickle runs code when loaded, "
                "and its features are computed differently): train a model on "
                "the same photos with `hybridclf train --data-dir <dataset> "
                "--output-dir <new folder>` and pass that folder.")
    try:
        subs = [e for _, e in zip(range(most), os.scandir(directory))
                if e.is_dir(follow_symlinks=False)]
        models = [e.path for e in subs if os.path.isfile(os.path.join(e.path, _INFO))]
        if models:
            return (f"It holds the model directory {sorted(models)[0]!r}: pass "
                    "that folder.")
        for sub in subs:
            names = [e.name for _, e in zip(range(most), os.scandir(sub.path))]
            if any(os.path.splitext(n)[1].lower() in IMAGE_EXTENSIONS for n in names):
                return ("It holds class folders of images: it is a dataset, not "
                        "a model. Pass the folder that `hybridclf train` wrote "
                        "(its --output-dir), or train one first.")
    except OSError:
        pass
    return ""
