"""The Parquet tables of partitions: features, and prediction rows.

A feature part has the columns ``file``, ``error`` and ``features``
(``fixed_size_list<float32>``, null when unreadable); :func:`read_features`
reads a folder of them back as NumPy arrays. A prediction part holds the rows
of :func:`hybridclf.prediction.predict_files`, one column per field.
Parquet text is UTF-8: a file name that is not (a Latin-1 name from an old
archive) is stored with its other bytes written ``\\xNN``. Both kinds also
keep each file's size and modification time (:data:`STAMP_COLUMNS`) when
its row was computed; ``_kept_stamps`` reads them back for a rerun.
"""

import os

import numpy as np

from ..utils._csv import utf8_text
from ..utils._optional import import_or_raise
from ._partitions import _PART, STAMP_COLUMNS

__all__ = ["read_features"]


def _utf8_names(files):
    """The file names as Parquet can hold them: bytes not UTF-8 as ``\\xNN``
    (:func:`~hybridclf.utils._csv.utf8_text`, as in predict's CSV)."""
    return [utf8_text(os.fspath(f)) for f in files]


def _stamp_arrays(stamps):
    """The :data:`STAMP_COLUMNS` of a table, from ``(size, mtime_ns)`` pairs."""
    pa = import_or_raise("pyarrow", "Parquet output")
    return {name: pa.array([stamp[k] for stamp in stamps], type=pa.int64())
            for k, name in enumerate(STAMP_COLUMNS)}


def _kept_stamps(path):
    """(the ``file`` column of a part, its rows' ``(size, mtime_ns)`` or None).

    None for a part written before the stamps were kept: its files' content
    is unknown.
    """
    pq = import_or_raise("pyarrow.parquet", "Parquet output")
    columns = pq.read_schema(path).names
    if not set(STAMP_COLUMNS) <= set(columns):
        return pq.read_table(path, columns=["file"])["file"].to_pylist(), None
    table = pq.read_table(path, columns=["file", *STAMP_COLUMNS]).to_pydict()
    return table["file"], list(zip(*(table[name] for name in STAMP_COLUMNS)))


def _feature_table(files, features, errors, stamps):
    pa = import_or_raise("pyarrow", "Parquet output")
    width = features.shape[1]
    values = pa.array(features.reshape(-1), type=pa.float32())
    mask = pa.array([bool(e) for e in errors], type=pa.bool_())
    column = pa.FixedSizeListArray.from_arrays(
        values, type=pa.list_(pa.float32(), width), mask=mask)
    return pa.table({
        "file": pa.array(_utf8_names(files), type=pa.string()),
        "error": pa.array(errors, type=pa.string()),
        "features": column,
        **_stamp_arrays(stamps),
    })


def _with_rows(table, new):
    """``table`` with the rows of ``new`` in place of those of the same file."""
    pa = import_or_raise("pyarrow", "Parquet output")
    names = table["file"].to_pylist()
    at = {name: i for i, name in enumerate(new["file"].to_pylist())}
    if set(names) <= set(at):  # every row new (a part without stamps)
        return new.take([at[name] for name in names])
    return pa.concat_tables([table, new]).take(
        [len(table) + at[name] if name in at else i
         for i, name in enumerate(names)])


def _read_errors(path):
    pq = import_or_raise("pyarrow.parquet", "Parquet output")
    table = pq.read_table(path, columns=["file", "error"])
    return [(f, e) for f, e in zip(table["file"].to_pylist(),
                                   table["error"].to_pylist()) if e]


def read_features(output):
    """Read the output folder of :func:`extract_features` as NumPy arrays.

    Parameters
    ----------
    output : str or os.PathLike
        The folder.

    Returns
    -------
    files : list of str
        The files, in the order given to :func:`extract_features`; the
        files that a later run added to the list come after the others, in
        its order.

    features : ndarray of shape (n_files, n_features), dtype float32
        Their features; NaN rows for unreadable files.

    errors : list of str
        Why each file could not be read; ``""`` when it was.
    """
    pq = import_or_raise("pyarrow.parquet", "Parquet output")
    output = os.fspath(output)
    parts = sorted(n for n in os.listdir(output) if _PART.match(n))
    files, rows, errors = [], [], []
    for name in parts:
        table = pq.read_table(os.path.join(output, name))
        column = table["features"].combine_chunks()
        width = column.type.list_size
        values = np.asarray(column.values.to_numpy(zero_copy_only=False),
                            dtype=np.float32)
        start = column.offset * width
        block = values[start : start + len(column) * width].reshape(-1, width)
        block = block.copy()
        block[np.asarray(column.is_null().to_numpy(zero_copy_only=False))] = np.nan
        files.extend(table["file"].to_pylist())
        errors.extend(table["error"].to_pylist())
        rows.append(block)
    features = np.concatenate(rows) if rows else np.empty((0, 0), np.float32)
    return files, features, errors


def _rows_table(rows, stamps):
    pa = import_or_raise("pyarrow", "Parquet output")
    return pa.table({
        "file": pa.array(_utf8_names(r["file"] for r in rows), type=pa.string()),
        "label": pa.array([r["label"] for r in rows], type=pa.string()),
        "confidence": pa.array([r["confidence"] for r in rows], type=pa.float64()),
        "ood_score": pa.array([r["ood_score"] for r in rows], type=pa.float64()),
        "unknown_reason": pa.array([r["unknown_reason"] for r in rows],
                                   type=pa.string()),
        "quality_issues": pa.array([None if r["quality"] is None
                                    else r["quality"]["issues"] for r in rows],
                                   type=pa.list_(pa.string())),
        "top_classes": pa.array([[c for c, _ in r["top"]] for r in rows],
                                type=pa.list_(pa.string())),
        "top_probas": pa.array([[p for _, p in r["top"]] for r in rows],
                               type=pa.list_(pa.float64())),
        "error": pa.array([r["error"] for r in rows], type=pa.string()),
        **{f"neighbour_{key}s": pa.array(
            [_utf8_names(n[key] for n in r["neighbours"]) if key == "file"
             else [n[key] for n in r["neighbours"]] for r in rows],
            type=pa.list_(pa.float64() if key == "similarity" else pa.string()))
           for key in ("file", "label", "similarity")},
        **_stamp_arrays(stamps),
    })


def _table_rows(table):
    data = table.to_pydict()
    return [
        {"file": f, "label": lab, "confidence": c, "ood_score": o,
         "unknown_reason": r, "quality": None if q is None else {
             "ok": not q, "issues": list(q)},
         "top": list(zip(tc, tp)), "error": e,
         "neighbours": [{"file": nf, "label": nl, "similarity": ns}
                        for nf, nl, ns in zip(*near)]}
        for f, lab, c, o, r, q, tc, tp, e, *near in zip(
            data["file"], data["label"], data["confidence"], data["ood_score"],
            data["unknown_reason"], data["quality_issues"],
            data["top_classes"], data["top_probas"], data["error"],
            *(data.get(f"neighbour_{key}s", [[]] * len(data["file"]))
              for key in ("file", "label", "similarity")))
    ]
