"""``hybridclf predict`` as a library call: image files and folders to a CSV.

:func:`predict_to_csv` expands the inputs into files
(:func:`~hybridclf.prediction.iter_image_files`), predicts them in batches
(:func:`~hybridclf.prediction.predict_files`), here or on a Dask cluster,
through partitions whose rows are kept for a rerun when the output is a CSV
file (:func:`~hybridclf.distributed.partitioned_rows`), and writes one row per
file as it comes (``_columns``) to the output (``_output``), counting the
files predicted, unknown and unreadable (:class:`BatchPrediction`). An
unreadable file is a row with its reason, never the end of a run.
"""

import contextlib
import os
from dataclasses import dataclass

from ..prediction import iter_image_files, predict_files
from ..utils._csv import csv_writer
from ..utils._docstrings import Substitution
from ..utils._paths import make_output_dir
from ._columns import _csv_row, csv_columns
from ._output import _check_csv_output, _CsvOutput, _without_own_output
from ._settings import (
    _SETTINGS_DOC,
    _client,
    _load,
    _neighbour_index,
    open_set_options,
)

__all__ = ["BatchPrediction", "predict_to_csv"]


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
        The CSV file written, or None when the rows went to a stream or a
        device (``/dev/stdout``).
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


@contextlib.contextmanager
def _predicted_rows(pipe, files, options, scheduler, parts_dir, partition_size):
    """A block with (files read back from ``parts_dir``, the rows in file
    order, lazily); the Dask client of ``scheduler``, if any, open inside it.

    With ``parts_dir`` (a CSV file), here as on Dask, the rows go through
    partitions kept in ``parts_dir`` (:func:`~hybridclf.distributed.
    partitioned_rows`), so a stopped run goes on where it stopped; they need
    pyarrow, without which a run here predicts file by file, from the start.
    A run here over one partition, with no rows of a stopped run to go on
    from, keeps none either (:func:`_nothing_to_keep`). On Dask too the rows
    are written as their partitions come in, inside the block: they were
    all held until the last partition (about 1 kB each, so 10 GB for 10
    million files) because the cluster closed when this returned.
    """
    if scheduler is None and (parts_dir is None or not _have_pyarrow()
                              or _nothing_to_keep(files, parts_dir,
                                                  partition_size)):
        yield 0, predict_files(pipe, files, **options)
        return
    from ..distributed import partitioned_rows

    with _client(scheduler) as client:
        yield partitioned_rows(
            pipe, files, client=client, parts_dir=parts_dir,
            partition_size=partition_size, **options)


def _nothing_to_keep(files, parts_dir, partition_size):
    """Whether a run here would keep no rows worth keeping in ``parts_dir``.

    So when the files fit in one partition and ``parts_dir`` does not exist
    (no stopped run to go on from): that partition's rows would be kept only
    once every file is predicted, a moment before the CSV is written and
    ``parts_dir`` deleted, so a stopped run would start again from the first
    file either way. Keeping them cost 0.2-0.3 s of CPU time per command,
    about a tenth of predicting one photo (pyarrow imports pandas when it
    first builds an array, and the manifest hashes the model and hybridclf's
    source; docs/benchmarks.md, CPU time of the commands).
    """
    return len(files) <= partition_size and not os.path.exists(parts_dir)


def _have_pyarrow():
    """Whether pyarrow (the 'scale' extra) can be imported, without importing it."""
    import importlib.util

    return importlib.util.find_spec("pyarrow") is not None


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
        predicted. A CSV file (a regular one, not ``/dev/stdout``) starts
        with a UTF-8 byte-order mark, so that a spreadsheet reads its names
        as UTF-8 (:mod:`hybridclf.utils._csv`; a stream has none), and is
        written as ``<output>.partial`` and renamed
        to ``output`` once every row is in, so an interrupted run leaves
        ``output`` as it was and its rows so far in ``<output>.partial``.
        The rows of each finished partition (``partition_size`` files) are
        kept in ``<output>.parts`` until the CSV is written, here as on
        Dask, so a rerun after an interrupted run goes on where it stopped
        (here this needs pyarrow, the ``scale`` extra; without it a rerun
        predicts every file again; a run here over at most
        ``partition_size`` files keeps none, as its one partition would be
        kept only once every file is predicted). A rerun with another model or other
        settings is refused with the folder to delete; one with another
        file list (photos added) predicts every file again, and a partition
        holding a photo edited or replaced since (another size or
        modification time) is predicted again, with a warning. Refused
        before any work: a folder, a name of another format (``.parquet``,
        ``.xlsx``, ``.csv.gz``, ...), an input image, a file of the model
        directory, a file that is no CSV of predict, and a read-only one.
        A path under ``/dev`` or ``/proc`` (``/dev/stdout``) is written as
        it is, without a mark.

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
    from ..persistence import read_model_info

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
    target = _CsvOutput(output)
    with target.claimed():  # a second run on this output is refused, not mixed in
        with target.open() as fh:
            writer = csv_writer(fh)
            writer.writerow(csv_columns(neighbours))
            fh.flush()  # a full disk fails here, before the work
            with _predicted_rows(pipe, files, options, scheduler, target.parts,
                                 partition_size) as (resumed, rows):
                counts = BatchPrediction(
                    len(files), n_resumed=resumed,
                    output=os.fspath(output) if target.partial else None)
                for row in rows:
                    counts.n_unreadable += bool(row["error"])
                    counts.n_unknown += (not row["error"]
                                         and row["label"] == "unknown")
                    writer.writerow(_csv_row(row, neighbours))
                    if not target.partial:
                        fh.flush()  # a stream gets each row as it is predicted
        target.finish()
    counts.n_predicted = counts.n_files - counts.n_unknown - counts.n_unreadable
    return counts
