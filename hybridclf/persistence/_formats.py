"""The model file: a skops file of trusted types, or a pickle only when allowed.

``_dump`` writes the fitted pipeline (without its ``memory`` caches) as
``model.skops`` or ``model.joblib``; ``_load_skops`` rebuilds a skops file
only when every type in it is trusted (:data:`TRUSTED_TYPES`),
``_load_pickle`` unpickles only with ``allow_pickle=True`` and warns, and
``_check_pipeline`` accepts only a fitted pipeline. ``_skops_io`` imports
skops without torch or dask; ``import_skops_early`` starts that import in a
thread, for a process that will save a model after other work.
"""

import logging
import os
import sys
import threading
import types
import warnings

from .._model_files import check_archive
from ..exceptions import ModelLoadError, ModelTypeError, PickleLoadWarning

__all__ = ["TRUSTED_TYPES"]

logger = logging.getLogger(__name__)

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
    "hybridclf.grouped_fit.GroupedPipeline",
    "hybridclf.io.ImageLoader",  # where models saved before 2026-12-07 name it
    "hybridclf.io._loader.ImageLoader",
    "hybridclf.sampling.ClassAwareAugmenter",  # models saved before 2026-12-07
    "hybridclf.sampling._augmenter.ClassAwareAugmenter",
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


#: the thread of :func:`import_skops_early`, while one was started
_EARLY_IMPORT = {}
_EARLY_LOCK = threading.Lock()


def import_skops_early():
    """Start importing ``skops.io`` in a thread; the next save waits for it.

    For a process that saves a model after long work: skops' import is
    about 0.15 s of Python work (it lists every scikit-learn estimator, see
    :func:`_skops_io`), which would otherwise run after the work, on one
    core. ``hybridclf train`` starts it where the training waits for ONNX
    Runtime's threads (``train_model``'s ``while_waiting``), which leave
    Python's lock free and often a core idle. Nothing is imported twice; an
    import that fails there fails again, with its message, when the model is
    saved.
    """
    with _EARLY_LOCK:
        if "skops.io" in sys.modules or "thread" in _EARLY_IMPORT:
            return
        thread = threading.Thread(target=_import_quietly, name="hybridclf-skops")
        _EARLY_IMPORT["thread"] = thread
        thread.start()


def _import_quietly():
    try:
        _skops_io()
    except ImportError:  # raised again where the model is saved
        logger.debug("importing skops.io early failed", exc_info=True)


def _skops_io():
    """Import ``skops.io`` without importing torch or dask.

    skops lists scikit-learn's estimators when imported (``all_estimators``),
    and that package walk imports every sub-package, including scikit-learn's
    vendored ``array_api_compat.torch`` and ``array_api_compat.dask``, which
    import torch (15 to 40 s and hundreds of MB) and dask (about 40 MB more)
    into a process that only predicts. Placeholder modules without
    ``__path__`` stop the walk there; they are removed right after, and the
    list of trusted scikit-learn types is the same (neither holds an
    estimator). An import :func:`import_skops_early` started is waited for.
    """
    early = _EARLY_IMPORT.get("thread")
    if early is not None and early is not threading.current_thread():
        early.join()
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


def _without_memory(pipe):
    """Set every ``memory`` parameter to None; return the old values."""
    old = {k: v for k, v in pipe.get_params(deep=True).items()
           if k == "memory" or k.endswith("__memory")}
    pipe.set_params(**{k: None for k in old if old[k] is not None})
    return {k: v for k, v in old.items() if v is not None}


def _without_frame_names(pipe):
    """Take out the column names a FeatureUnion keeps with pandas output.

    After a transform with ``set_output(transform="pandas")``, scikit-learn's
    FeatureUnion keeps each block's columns as a ``pandas.Index``, which
    skops cannot store (saving failed with "no default __reduce__"); the next
    transform makes them again. Returns (union, names) pairs to put back.
    """
    from sklearn.pipeline import FeatureUnion

    unions = [value for value in pipe.get_params(deep=True).values()
              if isinstance(value, FeatureUnion)]
    return [(union, union.__dict__.pop("_transformers_feature_names_out"))
            for union in unions
            if "_transformers_feature_names_out" in union.__dict__]


def _dump(pipe, model_path, model_format):
    """Write the pipeline to ``model_path``, without its ``memory`` caches."""
    memory = _without_memory(pipe)
    frame_names = _without_frame_names(pipe)
    try:
        if model_format == "skops":
            _skops_io().dump(pipe, model_path)
        else:
            import joblib

            joblib.dump(pipe, model_path)
    finally:
        if memory:
            pipe.set_params(**memory)
        for union, names in frame_names:
            union._transformers_feature_names_out = names


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


def _load_skops(model_path, trusted, info):
    """Rebuild the skops file ``model_path`` if every type in it is trusted.

    ``info`` (its ``model.json``) names the hybridclf that saved it, for the
    message that refuses types this version lacks or does not trust.
    """
    from ._metadata import saved_by

    check_archive(model_path, ModelLoadError)  # a deflated bomb: gigabytes
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
    saver, fix, newer = saved_by(info)
    # every hybridclf type this version can load is in TRUSTED_TYPES (under
    # its old names too): another one was written by another hybridclf. A
    # newer one also trusts more types of the libraries it builds on (a new
    # classifier's state). Trusting them here cannot help in either case
    unknown = [name for name in untrusted if name.split(".")[0] == "hybridclf"]
    if unknown or (untrusted and newer):
        raise ModelLoadError(
            f"The model file {os.fspath(model_path)!r} was saved by {saver}, and "
            f"holds types that this hybridclf does not "
            f"{'have' if unknown else 'trust'}: {unknown or untrusted!r}. To load "
            f"it, {fix}; or retrain the model with this version (`hybridclf "
            "train --data-dir <photos> --output-dir <model folder>`)."
        )
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
