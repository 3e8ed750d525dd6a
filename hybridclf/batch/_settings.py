"""What a batch run loads and checks before its first file.

The model directory loaded with the run's image settings (``_load``), the
Dask client of ``scheduler`` (``_client``), the open-set checks from the
model and the caller's overrides (:func:`open_set_options`) and the
embedding index that the nearest training photos come from
(``_neighbour_index``). ``_SETTINGS_DOC`` documents the parameters that
:func:`~hybridclf.batch.predict_to_csv` and
:func:`~hybridclf.batch.extract_to_parquet` share.
"""

import os
from contextlib import nullcontext

from ..pipeline import set_image_params
from ..prediction import read_open_set

__all__ = ["open_set_options"]

_SETTINGS_DOC = """allow_pickle : bool, default=False
        Load a pickled model (runs code from the file).

    max_pixels, n_jobs : int or None, default=None
        Run-time settings of the image steps
        (:func:`~hybridclf.pipeline.set_image_params`); None keeps the model's.

    scheduler : str or None, default=None
        Run on Dask: ``"local:N"`` or a scheduler address
        (:func:`~hybridclf.distributed.dask_client`); None runs here.

    partition_size : int, default=256
        Files per partition: on Dask the unit of work and of retry, and for
        :func:`predict_to_csv`'s CSV file the rows kept for a rerun after a
        stopped run (here too).
"""


def _load(model_dir, allow_pickle, max_pixels, n_jobs):
    from ..persistence import load_model

    pipe = load_model(model_dir, allow_pickle=allow_pickle)
    return set_image_params(pipe, n_jobs=n_jobs, max_pixels=max_pixels)


def _client(scheduler):
    """A Dask client for ``scheduler``, or a context yielding None."""
    if scheduler is None:
        return nullcontext()
    from ..distributed import dask_client

    return dask_client(scheduler)


def open_set_options(model_info, *, threshold=None, ood=True, closed_set=False,
                     model_dir=None):
    """The open-set checks of a prediction run, from the model and the overrides.

    Parameters
    ----------
    model_info : dict
        The model's ``model.json`` (:func:`~hybridclf.persistence.read_model_info`).

    threshold : float or None, default=None
        Lowest top probability of a known class ("low confidence"); None
        takes the model's.

    ood : bool, default=True
        Apply the model's "unlike any training photo" check: the novelty
        check of its embedding index, or the per-block out-of-distribution
        thresholds of a model trained before it.

    closed_set : bool, default=False
        Never answer ``unknown`` (overrides both).

    model_dir : str, os.PathLike or None, default=None
        The model directory, whose embedding index the novelty check reads
        (:func:`~hybridclf.prediction.read_open_set`); None leaves it out.

    Returns
    -------
    options : dict
        ``proba_threshold``, ``ood_thresholds`` and ``novelty``, as
        :func:`~hybridclf.prediction.predict_files` takes them.
    """
    if closed_set:
        return {"proba_threshold": 0.0, "ood_thresholds": None, "novelty": None}
    options = read_open_set(model_info, model_dir)
    if threshold is not None:
        options["proba_threshold"] = threshold
    if not ood:
        options.update(ood_thresholds=None, novelty=None)
    return options


def _neighbour_index(neighbours, options, model_dir):
    """The embedding index that ``neighbours`` > 0 needs, or None for 0."""
    if not isinstance(neighbours, int) or isinstance(neighbours, bool) or (
            neighbours < 0):
        raise ValueError(
            "The 'neighbours' parameter of predict_to_csv must be an int >= 0 "
            f"(nearest training photos per file). Got {neighbours!r} instead."
        )
    if not neighbours:
        return None
    if options.get("novelty"):
        return options["novelty"]["index"]
    from ..neighbours import INDEX_FILE, EmbeddingIndex

    index = EmbeddingIndex.load(model_dir)
    if index is None:
        raise ValueError(
            f"The model directory {os.fspath(model_dir)!r} has no {INDEX_FILE}, "
            "so it cannot list the nearest training photos (neighbours="
            f"{neighbours}): only a model trained with a CNN block keeps them. "
            "Retrain it with the cnn feature, or leave out --neighbours."
        )
    return index
