"""Batch work on many images, in partitions, on this machine or a Dask cluster.

For collections that outgrow one machine, hybridclf hands its work to
`Dask <https://distributed.dask.org>`_ (``dask.distributed``), an existing
distributed engine, instead of anything home-made:

- :func:`extract_features` writes the features of a fitted pipeline for a
  list of files to a folder of Parquet files, one per **partition**;
- :func:`predict_partitioned` predicts the files partition by partition and
  returns the rows of :func:`hybridclf.prediction.predict_files`, in order;
- :func:`dask_client` opens a client on a new ``LocalCluster`` (``local:N``)
  or on a running scheduler (``tcp://host:port``); inside
  ``joblib.parallel_config(backend="dask")`` the cross-validation and the
  searches of :func:`hybridclf.training.train_model` run on its workers.

How the work is split and sent:

- the file list is cut, in the given order, into partitions of
  ``partition_size`` files (:func:`partition_files`): partition ``i`` always
  holds the same files, so its output is ``part-<i>.parquet``;
- the fitted pipeline is sent to every worker **once** (the result of one
  task, computed again if the workers holding it die) and each task gets a
  reference to it. A CNN block never
  ships a network or a CUDA context: it pickles its weights and builds the
  network on the worker, on first use;
- a partition's file is written under a hidden temporary name and renamed
  when complete, so a killed task leaves no half file; a rerun on the same
  output folder only computes the partitions whose file is missing, and one
  after files were added to the list computes only those (in partitions
  numbered after the others). When a
  worker dies, Dask runs its tasks again on another one; a task that finds its
  partition already written does nothing, so no row is lost or duplicated;
- a file that cannot be read gives a row with its ``error``; it never stops
  the run.

The Parquet files of :func:`extract_features` have one row per file and the
columns ``file`` (string), ``error`` (string, ``""`` when read) and
``features`` (``fixed_size_list<float32>``, null when unreadable). The folder
is a Parquet dataset: ``pyarrow.parquet.read_table(folder)``,
``pandas.read_parquet(folder)``, DuckDB or Spark read it as one table;
:func:`read_features` returns it as NumPy arrays in file order (the files
added by a later run after the others). The column
names of the features (``hog__...``, ``color__red_bin3``, ...) and the
feature blocks are in ``_hybridclf.json`` beside the parts.

Dask and pyarrow are optional: ``pip install 'hybridclf[scale]'``.

The package's modules, one concept each:

- ``_cluster``: the ``--scheduler`` value and its client
  (:func:`parse_scheduler`, :func:`dask_client`);
- ``_partitions``: partitions of a file list and the output folder's part
  files and manifest (:func:`partition_files`, :data:`MANIFEST`);
- ``_run``: one task per partition, here or on the cluster's workers;
- ``_parquet``: the Parquet tables of the partitions (:func:`read_features`);
- ``_extract``: :func:`extract_features` and its :class:`ExtractResult`;
- ``_predict``: :func:`predict_partitioned` (and :func:`partitioned_rows`, its
  rows as they come).
"""

# MANIFEST is public too, outside __all__ as before
from ._cluster import dask_client, parse_scheduler
from ._extract import ExtractResult, extract_features
from ._parquet import read_features
from ._partitions import MANIFEST, partition_files  # noqa: F401
from ._predict import partitioned_rows, predict_partitioned

__all__ = [
    "ExtractResult",
    "dask_client",
    "extract_features",
    "parse_scheduler",
    "partition_files",
    "partitioned_rows",
    "predict_partitioned",
    "read_features",
]
