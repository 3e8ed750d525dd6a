"""``hybridclf extract`` as a library call: the features of files as Parquet.

:func:`extract_to_parquet` loads a model directory with the run's settings
(``_settings``), expands the inputs into files less its own output folder
(``_output``) and hands them to
:func:`~hybridclf.distributed.extract_features`, here or on a Dask cluster.
"""

from ..prediction import iter_image_files
from ..utils._docstrings import Substitution
from ..utils._paths import check_output_dir
from ._output import _without_own_output
from ._settings import _SETTINGS_DOC, _client, _load

__all__ = ["extract_to_parquet"]


@Substitution(settings=_SETTINGS_DOC)
def extract_to_parquet(model_dir, inputs, output_dir, *, batch_size=32,
                       allow_pickle=False, max_pixels=None, n_jobs=None,
                       scheduler=None, partition_size=256, progress=False):
    """Write the features of a model directory for files and folders to Parquet.

    See :func:`~hybridclf.distributed.extract_features`: one
    ``part-NNNNN.parquet`` per partition, with the columns ``file``, ``error``
    and ``features`` (and each file's ``file_size`` and ``file_mtime_ns``);
    partitions already written are skipped, but for the rows of files
    changed since, computed again.

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
    from ..distributed import extract_features

    # the inputs first: a mistyped path is refused before the model loads
    files = _without_own_output(iter_image_files(inputs), inputs,
                                folders=(output_dir,))
    # as every --output-dir: a file in the way is named, not a bare errno
    check_output_dir(output_dir, parameter="output_dir")
    pipe = _load(model_dir, allow_pickle, max_pixels, n_jobs)
    with _client(scheduler) as client:
        return extract_features(pipe, files, output_dir, client=client,
                                partition_size=partition_size,
                                batch_size=batch_size, progress=progress)
