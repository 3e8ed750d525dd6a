"""How hybridclf writes and reads its CSV files: UTF-8 with a byte-order mark.

The CSV files hybridclf writes are meant for people as much as for programs:
``hybridclf predict --output``, ``duplicate_groups.csv`` and
``label_issues.csv`` of ``hybridclf inspect``, the ``label_issues.csv`` of a
model directory and the ``manifest.csv`` of ``hybridclf augment``. Their
names (class folders, file names) are often not English. A spreadsheet
program opened on a CSV without a byte-order mark (Excel on Windows, by
double-click) decodes it in the computer's legacy code page, so a Thai class
name shows as mojibake. With the three bytes ``EF BB BF`` first, it reads the
file as UTF-8. So every CSV *file* is written as ``"utf-8-sig"``, as Excel's
own "CSV UTF-8" format and R's ``readr::write_excel_csv`` do; a CSV written to a
stream (``hybridclf predict`` without ``--output``, standard output piped to
another program) has no mark.

Every CSV that hybridclf reads (a ``--groups`` CSV, the ``manifest.csv`` of a
data folder, a ``duplicate_groups.csv`` edited by hand) is read as
``"utf-8-sig"``, which takes a file with or without the mark alike: a file
saved from a spreadsheet has one, a file written by a script often has none.
pandas' ``read_csv`` skips the mark too; in Python's :mod:`csv`, open the
file with ``encoding="utf-8-sig"`` (with ``"utf-8"`` the first column's name
would start with ``"\\ufeff"``).

A file name that is not valid UTF-8 (an old Latin-1 name on Linux) keeps its
bytes both ways (``errors="surrogateescape"``, as :func:`os.listdir` gives
it).
"""

import codecs

__all__ = ["CSV_ENCODING", "csv_bytes", "open_csv"]

#: The encoding of every CSV file hybridclf writes and reads.
CSV_ENCODING = "utf-8-sig"


def open_csv(path, mode="r"):
    """Open a CSV file for :mod:`csv`, in :data:`CSV_ENCODING`.

    Parameters
    ----------
    path : str or os.PathLike
        The CSV file.

    mode : {"r", "w"}, default="r"
        Read (with or without a byte-order mark) or write (with one).

    Returns
    -------
    file : text file object
        Opened with ``newline=""``, as :mod:`csv` needs.

    Examples
    --------
    >>> import csv, os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "t.csv")
    >>> with open_csv(path, "w") as fh:
    ...     _ = csv.writer(fh).writerow(["file", "label"])
    >>> open(path, "rb").read()[:3] == codecs.BOM_UTF8
    True
    >>> with open_csv(path) as fh:
    ...     next(csv.reader(fh))
    ['file', 'label']
    """
    if mode not in ("r", "w"):
        raise ValueError(f"The 'mode' parameter of open_csv must be 'r' or 'w'. "
                         f"Got {mode!r} instead.")
    return open(path, mode, newline="", encoding=CSV_ENCODING,
                errors="surrogateescape")


def csv_bytes(text):
    """The bytes of a CSV file whose text is ``text``, as :func:`open_csv` writes.

    For a file written whole from a string (the ``label_issues.csv`` of a
    model directory, see :func:`hybridclf.save_model`).

    Examples
    --------
    >>> csv_bytes("file,group\\n")
    b'\\xef\\xbb\\xbffile,group\\n'
    """
    return codecs.BOM_UTF8 + text.encode("utf-8", "surrogateescape")
