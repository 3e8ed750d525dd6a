"""A saved model over many files: predictions to CSV, features to Parquet.

:func:`predict_to_csv` is ``hybridclf predict`` and :func:`extract_to_parquet`
is ``hybridclf extract``, as library calls: each loads a model directory,
expands the inputs into files (:func:`~hybridclf.prediction.iter_image_files`)
and runs here or, with ``scheduler``, on a Dask cluster
(:mod:`hybridclf.distributed`). An unreadable file is a row with its reason,
never the end of a run.

The parts:

- ``_predict``: :func:`predict_to_csv` and its counts, :class:`BatchPrediction`;
- ``_extract``: :func:`extract_to_parquet`;
- ``_settings``: what a run loads and checks first: the model, the open-set
  checks (:func:`open_set_options`), the neighbour index, the Dask client;
- ``_columns``: the CSV's columns (:data:`CSV_COLUMNS`, :func:`csv_columns`)
  and the cells of a row;
- ``_output``: the inputs less the run's own output, and the CSV written as
  ``<output>.partial`` and renamed when complete.
"""

from ._columns import CSV_COLUMNS, csv_columns
from ._extract import extract_to_parquet
from ._predict import BatchPrediction, predict_to_csv
from ._settings import open_set_options

__all__ = [
    "CSV_COLUMNS",
    "BatchPrediction",
    "csv_columns",
    "extract_to_parquet",
    "open_set_options",
    "predict_to_csv",
]
