"""A saved model over many files: predictions to CSV, features to Parquet.

:func:`predict_to_csv` is ``hybridclf predict`` and :func:`extract_to_parquet`
is ``hybridclf extract``, as library calls: each loads a model directory,
expands the inputs into files (:func:`~hybridclf.prediction.iter_image_files`)
and runs here or, with ``scheduler``, on a Dask cluster
(:mod:`hybridclf.distributed`). An unreadable file is a row with its reason,
never the end of a run.
"""

import csv
import logging
import math
import os
import shutil
from contextlib import nullcontext
from dataclasses import dataclass

from .pipeline import set_image_params
from .prediction import iter_image_files, predict_files, read_open_set
from .utils._docstrings import Substitution
from .utils._paths import make_output_dir

__all__ = [
    "CSV_COLUMNS",
    "BatchPrediction",
    "csv_columns",
    "extract_to_parquet",
    "open_set_options",
    "predict_to_csv",
]

logger = logging.getLogger(__name__)

#: The columns of the CSV that :func:`predict_to_csv` writes (without
#: neighbours; see :func:`csv_columns`).
CSV_COLUMNS = ("file", "label", "confidence", "ood_score", "unknown_reason",
               "quality", "top", "error")
#: The columns of each nearest training photo, ``{}`` its rank from 1.
NEIGHBOUR_COLUMNS = ("neighbour_{}_file", "neighbour_{}_label",
                     "neighbour_{}_similarity")

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


@dataclass
class BatchPrediction:
    """The counts of a :func:`predict_to_csv` run.

    Attributes
    ----------
    n_files, n_predicted, n_unknown, n_unreadable : int
        Files, and those given a class, ``unknown`` or an error.

    n_resumed : int
        Files whose rows were read back from ``<output>.parts``, kept by an
        earlier run of the same command that was stopped.

    output : str or None
        The CSV file written, or None when the rows went to a stream.
    """

    n_files: int
    n_predicted: int = 0
    n_unknown: int = 0
    n_unreadable: int = 0
    output: str | None = None
    n_resumed: int = 0

    def summary(self):
        """One line: ``"N files: P predicted, U unknown, E unreadable"``.

        After a stopped run, it adds how many rows were taken from it.
        """
        resumed = (f" ({self.n_resumed} of them from the stopped run's "
                   f"{self.output}.parts)" if self.n_resumed else "")
        return (f"{self.n_files} files: {self.n_predicted} predicted, "
                f"{self.n_unknown} unknown, {self.n_unreadable} unreadable"
                f"{resumed}")


def _load(model_dir, allow_pickle, max_pixels, n_jobs):
    from .persistence import load_model

    pipe = load_model(model_dir, allow_pickle=allow_pickle)
    return set_image_params(pipe, n_jobs=n_jobs, max_pixels=max_pixels)


def _client(scheduler):
    """A Dask client for ``scheduler``, or a context yielding None."""
    if scheduler is None:
        return nullcontext()
    from .distributed import dask_client

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


def csv_columns(neighbours=0):
    """The columns of :func:`predict_to_csv`'s CSV.

    Parameters
    ----------
    neighbours : int, default=0
        The nearest training photos listed per file.

    Returns
    -------
    columns : tuple of str
        :data:`CSV_COLUMNS`, then for each neighbour ``neighbour_<i>_file``,
        ``neighbour_<i>_label`` and ``neighbour_<i>_similarity``.

    Examples
    --------
    >>> from hybridclf.batch import csv_columns
    >>> csv_columns(1)[-4:]
    ('error', 'neighbour_1_file', 'neighbour_1_label', 'neighbour_1_similarity')
    """
    return CSV_COLUMNS + tuple(column.format(i) for i in range(1, neighbours + 1)
                               for column in NEIGHBOUR_COLUMNS)


def _quality_cell(quality):
    """'ok', the issues joined by ';', or '' when not measured."""
    if quality is None:
        return ""
    return ";".join(quality["issues"]) or "ok"


def _number(value, spec):
    """A number's cell; empty for NaN (no score), as every missing value."""
    return "" if math.isnan(value) else format(value, spec)


def _csv_row(row, neighbours=0):
    ok = not row["error"]
    cells = [row["file"], row["label"], f"{row['confidence']:.4f}" if ok else "",
             _number(row["ood_score"], ".3f") if ok else "",
             row["unknown_reason"], _quality_cell(row["quality"]),
             ";".join(f"{c}:{p:.3f}" for c, p in row["top"]), row["error"]]
    near = row.get("neighbours") or []
    for i in range(neighbours):
        cells += ([near[i]["file"], near[i]["label"], f"{near[i]['similarity']:.4f}"]
                  if i < len(near) else ["", "", ""])
    return cells


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
    from .neighbours import INDEX_FILE, EmbeddingIndex

    index = EmbeddingIndex.load(model_dir)
    if index is None:
        raise ValueError(
            f"The model directory {os.fspath(model_dir)!r} has no {INDEX_FILE}, "
            "so it cannot list the nearest training photos (neighbours="
            f"{neighbours}): only a model trained with a CNN block keeps them. "
            "Retrain it with the cnn feature, or leave out --neighbours."
        )
    return index


def _predicted_rows(pipe, files, options, scheduler, parts_dir, partition_size):
    """(files read back from ``parts_dir``, the rows in file order, lazily).

    With ``parts_dir`` (a CSV file), here as on Dask, the rows go through
    partitions kept in ``parts_dir`` (:func:`~hybridclf.distributed.
    partitioned_rows`), so a stopped run goes on where it stopped; they need
    pyarrow, without which a run here predicts file by file, from the start.
    """
    if scheduler is None and (parts_dir is None or not _have_pyarrow()):
        return 0, predict_files(pipe, files, **options)
    from .distributed import partitioned_rows

    with _client(scheduler) as client:
        resumed, rows = partitioned_rows(
            pipe, files, client=client, parts_dir=parts_dir,
            partition_size=partition_size, **options)
        if client is None:
            return resumed, rows
        return resumed, iter(list(rows))  # the cluster closes with the block


def _have_pyarrow():
    """Whether pyarrow (the 'scale' extra) can be imported, without importing it."""
    import importlib.util

    return importlib.util.find_spec("pyarrow") is not None


def _without_own_output(files, inputs, paths=(), folders=()):
    """The files less this command's own output found in an input folder.

    ``predict photos/ --output photos/predictions.csv`` run again found the
    last CSV (or its ``.partial`` and ``.parts``) among the photos, and
    ``extract photos/ --output-dir photos/features`` its own partitions. A
    file given by name stays (:func:`_check_csv_output` refuses it).
    """
    own = {os.path.realpath(path) for path in paths}
    inside = tuple(os.path.join(os.path.realpath(f), "") for f in folders)
    given = {os.path.realpath(item) for item in inputs}
    return [f for f in files if (real := os.path.realpath(f)) in given
            or not (real in own or real.startswith(inside))]


def _check_csv_output(output, model_dir, files):
    """Refuse a CSV path that would overwrite an input image or the model."""
    real = os.path.realpath(output)
    if any(os.path.realpath(f) == real for f in files):
        what = "one of the images to predict"
    elif (os.path.exists(real)
          and os.path.dirname(real) == os.path.realpath(model_dir)):
        what = f"a file of the model directory {os.fspath(model_dir)!r}"
    else:
        return
    raise ValueError(
        f"The output {os.fspath(output)!r} is {what}: writing the CSV there "
        "would destroy it. Give the output (--output) a path of its own, such "
        "as predictions.csv."
    )


@Substitution(settings=_SETTINGS_DOC)
def predict_to_csv(model_dir, inputs, output, *, batch_size=32, threshold=None,
                   ood=True, closed_set=False, top_k=3, neighbours=0,
                   allow_pickle=False, max_pixels=None, n_jobs=None, scheduler=None,
                   partition_size=256, progress=False):
    """Predict image files and folders with a model directory; write a CSV.

    The CSV has the columns :data:`CSV_COLUMNS` (and those of the
    neighbours, :func:`csv_columns`). ``label`` is a class,
    ``unknown`` (the open-set checks of :func:`open_set_options`) or empty
    when the file cannot be read; ``error`` then says why.
    ``unknown_reason`` says which check made an answer unknown, in words
    ("unlike any training photo" or "low confidence"), and ``quality`` is
    ``ok`` or the photo's issues joined by ``;`` (``blurry``, ``too_dark``,
    ...); quality never changes the class.

    Parameters
    ----------
    model_dir : str or os.PathLike
        A model directory (:func:`~hybridclf.save_model`).

    inputs : sequence of str or os.PathLike
        Image files and folders (walked recursively; hidden files skipped).

    output : str, os.PathLike or file object
        The CSV file to write (its folder is made if missing), or a text
        stream (such as ``sys.stdout``) that gets each row as soon as it is
        predicted. A CSV file (a regular one, not ``/dev/stdout``) is
        written as ``<output>.partial`` and renamed
        to ``output`` once every row is in, so an interrupted run leaves
        ``output`` as it was and its rows so far in ``<output>.partial``.
        The rows of each finished partition (``partition_size`` files) are
        kept in ``<output>.parts`` until the CSV is written, here as on
        Dask, so a rerun after an interrupted run goes on where it stopped
        (here this needs pyarrow, the ``scale`` extra; without it a rerun
        predicts every file again). A rerun with another model or other
        settings is refused with the folder to delete; one with another
        file list (photos added) predicts every file again.

    batch_size, top_k, progress
        As in :func:`~hybridclf.prediction.predict_files`.

    threshold, ood, closed_set
        As in :func:`open_set_options`.

    neighbours : int, default=0
        List the nearest training photos of each file, this many, in the
        columns ``neighbour_<i>_file`` (relative to the training data folder),
        ``neighbour_<i>_label`` and ``neighbour_<i>_similarity`` (cosine of
        the CNN embeddings on the index's principal axes: near 1, not 1, for
        the same photo; see :class:`~hybridclf.neighbours.EmbeddingIndex`).
        Needs a model trained with
        a CNN block (its ``neighbours.npz``).

    {settings}
    Returns
    -------
    counts : BatchPrediction
        Files predicted, unknown and unreadable.
    """
    from .persistence import read_model_info

    files = iter_image_files(inputs)
    if isinstance(output, str | os.PathLike):
        output_name = os.fspath(output)
        files = _without_own_output(files, inputs, (output, f"{output_name}.partial"),
                                    (f"{output_name}.parts",))
        _check_csv_output(output, model_dir, files)
        # as every --output-dir: its folder is made
        make_output_dir(os.path.dirname(os.path.abspath(output)), parameter="output")
    options = open_set_options(read_model_info(model_dir), threshold=threshold,
                               ood=ood, closed_set=closed_set, model_dir=model_dir)
    index = _neighbour_index(neighbours, options, model_dir)
    pipe = _load(model_dir, allow_pickle, max_pixels, n_jobs)
    options.update(batch_size=batch_size, top_k=top_k, progress=progress)
    if neighbours:
        options.update(neighbours=neighbours, index=index)
    is_path = isinstance(output, str | os.PathLike)
    # the rows go to <output>.partial, renamed when all are in: an interrupted
    # run never leaves a short CSV that reads as whole, nor destroys the last one
    # (not /dev/stdout, /dev/null or a named pipe: those are written as they are)
    partial = f"{os.fspath(output)}.partial" if is_path and (
        os.path.isfile(output) or not os.path.exists(output)) else None
    parts = f"{os.fspath(output)}.parts" if partial else None
    resumed, rows = _predicted_rows(pipe, files, options, scheduler, parts,
                                    partition_size)
    counts = BatchPrediction(len(files), output=os.fspath(output) if is_path else None,
                             n_resumed=resumed)
    # UTF-8 whatever the locale, as every CSV hybridclf writes; a file name
    # that is not valid in the file system's encoding keeps its bytes
    with (open(partial or output, "w", newline="", encoding="utf-8",
               errors="surrogateescape")
          if is_path else nullcontext(output)) as fh:
        writer = csv.writer(fh)
        writer.writerow(csv_columns(neighbours))
        for row in rows:
            counts.n_unreadable += bool(row["error"])
            counts.n_unknown += not row["error"] and row["label"] == "unknown"
            writer.writerow(_csv_row(row, neighbours))
            if not is_path:
                fh.flush()
    if partial:
        os.replace(partial, output)
    if parts and os.path.isdir(parts):
        shutil.rmtree(parts)
    counts.n_predicted = counts.n_files - counts.n_unknown - counts.n_unreadable
    return counts


@Substitution(settings=_SETTINGS_DOC)
def extract_to_parquet(model_dir, inputs, output_dir, *, batch_size=32,
                       allow_pickle=False, max_pixels=None, n_jobs=None,
                       scheduler=None, partition_size=256, progress=False):
    """Write the features of a model directory for files and folders to Parquet.

    See :func:`~hybridclf.distributed.extract_features`: one
    ``part-NNNNN.parquet`` per partition, with the columns ``file``, ``error``
    and ``features``; partitions already written are skipped.

    Parameters
    ----------
    model_dir : str or os.PathLike
        A model directory (:func:`~hybridclf.save_model`).

    inputs : sequence of str or os.PathLike
        Image files and folders.

    output_dir : str or os.PathLike
        The Parquet dataset folder; on Dask, writable by every worker.

    batch_size : int, default=32
        Images read and transformed at once.

    progress : bool, default=False
        Show a progress bar over the images.

    {settings}
    Returns
    -------
    result : ExtractResult
        As from :func:`~hybridclf.distributed.extract_features`.
    """
    from .distributed import extract_features

    pipe = _load(model_dir, allow_pickle, max_pixels, n_jobs)
    files = _without_own_output(iter_image_files(inputs), inputs,
                                folders=(output_dir,))
    with _client(scheduler) as client:
        return extract_features(pipe, files, output_dir, client=client,
                                partition_size=partition_size,
                                batch_size=batch_size, progress=progress)


