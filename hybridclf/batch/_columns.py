"""The columns and cells of the CSV that ``hybridclf predict`` writes.

One row per file: :data:`CSV_COLUMNS`, then three columns per nearest
training photo when they are asked for (:func:`csv_columns`). ``_csv_row``
turns a row of :func:`~hybridclf.prediction.predict_files` into its cells:
numbers with a fixed number of decimals, an empty cell for every missing
value (no score, a file that could not be read), the quality issues and the
top classes joined by ``;``, and a file name that is not UTF-8 with its
other bytes written ``\\xNN`` (:func:`~hybridclf.utils._csv.utf8_text`, as
in Parquet), so that the CSV is valid UTF-8 whether its rows were predicted
now or read back from a stopped run's partitions.
"""

import math

from ..utils._csv import utf8_text

__all__ = ["CSV_COLUMNS", "NEIGHBOUR_COLUMNS", "csv_columns"]


#: The columns of the CSV that :func:`predict_to_csv` writes (without
#: neighbours; see :func:`csv_columns`).
CSV_COLUMNS = ("file", "label", "confidence", "ood_score", "unknown_reason",
               "quality", "top", "error")
#: The columns of each nearest training photo, ``{}`` its rank from 1.
NEIGHBOUR_COLUMNS = ("neighbour_{}_file", "neighbour_{}_label",
                     "neighbour_{}_similarity")


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
    return [utf8_text(cell) for cell in cells]
