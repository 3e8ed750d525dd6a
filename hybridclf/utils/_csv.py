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

Every CSV that hybridclf reads is one a person may have edited (a
``--groups`` CSV, the ``manifest.csv`` of a data folder that ``hybridclf
augment`` wrote, a ``duplicate_groups.csv`` merged by hand), and each is read
by :func:`read_csv_rows`, as ``"utf-8-sig"``, which takes a file with or
without the mark alike: a file saved from a spreadsheet has one, a file
written by a script often has none. pandas' ``read_csv`` skips the mark too;
in Python's :mod:`csv`, open the file with ``encoding="utf-8-sig"`` (with
``"utf-8"`` the first column's name would start with ``"\\ufeff"``).

A file name that is not valid UTF-8 (an old Latin-1 name on Linux) keeps its
bytes both ways (``errors="surrogateescape"``, as :func:`os.listdir` gives
it) in the CSV files that name files for hybridclf to read back (an edited
``duplicate_groups.csv``, a ``manifest.csv``): they must name the file on disk.
A CSV saved in a legacy code page (Excel's plain "CSV" on a Thai or
Western Windows: cp874, cp1252) would read so too, its names undecodable and
matching no file: :func:`read_csv_rows` refuses it with
:func:`not_utf8_error`, which names the file, its first line that is not
UTF-8 and how to save it as UTF-8, unless its bytes that are not UTF-8 are
those of a file name on disk.

The CSV of ``hybridclf predict``, which it never reads back, is for people
and other programs: every cell goes through :func:`utf8_text`, which writes
the bytes that are not UTF-8 as ``\\xNN`` (``latin\\xe9.jpg``), as the
Parquet files of ``extract`` and the service's JSON do, so that the file is
valid UTF-8 for a spreadsheet or pandas; ``ls $'latin\\xe9.jpg'`` in a shell
finds the file.

A cell that a spreadsheet would run as a formula is written as text: a class
folder named ``@SUM(1)`` or a photo named ``=HYPERLINK("evil.example","x").jpg``
(``+cmd|' -C calc'!A0`` runs a program through DDE in an old Excel) would
otherwise be executed by Excel or LibreOffice when the file is opened
(OWASP's "CSV injection"). As OWASP advises, such a cell (one that starts
with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return, and is not a plain
number such as ``-0.25``) gets a single quote in front: the spreadsheet shows
it as text. :func:`csv_writer` does that to every cell, and
:func:`csv_reader` and :func:`csv_dict_reader` remove the quote again, so that
hybridclf reads back the names it wrote (a ``duplicate_groups.csv`` edited
by hand, a ``manifest.csv``), and a spreadsheet that saved the cell without
its quote reads the same. So the quote stays unambiguous, a cell that itself
starts with a quote followed by one of those characters or a quote (a file
named ``'-draft.jpg``) gets one more; every other cell, one that starts with a
quote included, is written and read as it is. Other programs reading these
files see the quote: strip it with the same rule, e.g. in pandas
``df[col].str.replace(r"^'(?=[-=+@\\t\\r'])", "", regex=True)``.
"""

import codecs
import csv
import os
import re

__all__ = ["CSV_ENCODING", "FORMULA_STARTS", "csv_bytes", "csv_dict_reader",
           "csv_reader", "csv_writer", "has_undecodable", "not_utf8_error",
           "open_csv", "protect_cell", "read_csv_rows", "unprotect_cell",
           "utf8_text"]

#: The encoding of every CSV file hybridclf writes and reads.
CSV_ENCODING = "utf-8-sig"

#: The first characters that make a spreadsheet read a cell as a formula.
FORMULA_STARTS = frozenset("=+-@\t\r")
# a cell that a spreadsheet reads as a number, not a formula: left as it is
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _quoted(text):
    """Whether ``text`` is a cell :func:`protect_cell` gave a quote."""
    return (len(text) > 1 and text[0] == "'"
            and (text[1] in FORMULA_STARTS or text[1] == "'"))


def protect_cell(value):
    """``value`` as a CSV cell that no spreadsheet runs as a formula.

    A string that starts with one of :data:`FORMULA_STARTS` (and is not a
    number), or one that :func:`unprotect_cell` would change, gets a single
    quote in front; anything else is returned as it is.

    Examples
    --------
    >>> protect_cell('=HYPERLINK("evil.example","x").jpg')
    '\\'=HYPERLINK("evil.example","x").jpg'
    >>> protect_cell("@SUM(1)/a.jpg"), protect_cell("-0.25"), protect_cell("a.jpg")
    ("'@SUM(1)/a.jpg", '-0.25', 'a.jpg')
    >>> unprotect_cell(protect_cell("'-draft.jpg"))
    "'-draft.jpg"
    """
    if isinstance(value, str) and value and (
            (value[0] in FORMULA_STARTS and not _NUMBER.fullmatch(value))
            or _quoted(value)):
        return "'" + value
    return value


def unprotect_cell(text):
    """The text of a CSV cell that :func:`protect_cell` wrote: its quote removed.

    Examples
    --------
    >>> unprotect_cell("'@SUM(1)/a.jpg"), unprotect_cell("'quoted'.jpg")
    ('@SUM(1)/a.jpg', "'quoted'.jpg")
    """
    return text[1:] if isinstance(text, str) and _quoted(text) else text


class _ProtectedWriter:
    """A :func:`csv.writer` whose cells go through :func:`protect_cell`."""

    def __init__(self, writer):
        self._writer = writer

    def writerow(self, row):
        return self._writer.writerow([protect_cell(value) for value in row])

    def writerows(self, rows):
        for row in rows:
            self.writerow(row)


def csv_writer(fh, **kwargs):
    """A :func:`csv.writer` on ``fh`` that writes no cell a spreadsheet runs.

    Parameters
    ----------
    fh : text file object
        As from :func:`open_csv` (``"w"``), or any stream.

    **kwargs
        Passed to :func:`csv.writer` (e.g. ``lineterminator``).

    Returns
    -------
    writer : object
        With ``writerow`` and ``writerows``, each cell through
        :func:`protect_cell`.

    Examples
    --------
    >>> import io
    >>> out = io.StringIO()
    >>> _ = csv_writer(out, lineterminator="\\n").writerow(["@SUM(1)/a.jpg", 0])
    >>> out.getvalue()
    "'@SUM(1)/a.jpg,0\\n"
    """
    return _ProtectedWriter(csv.writer(fh, **kwargs))


def csv_reader(fh, **kwargs):
    """The rows of a CSV, each a list of cells through :func:`unprotect_cell`.

    Examples
    --------
    >>> list(csv_reader(["'@SUM(1)/a.jpg,0"]))
    [['@SUM(1)/a.jpg', '0']]
    """
    for row in csv.reader(fh, **kwargs):
        yield [unprotect_cell(cell) for cell in row]


def csv_dict_reader(fh, **kwargs):
    """The rows of a CSV as :class:`csv.DictReader` dicts, cells unprotected.

    Examples
    --------
    >>> list(csv_dict_reader(["file,group", "'=a.jpg,1"]))
    [{'file': '=a.jpg', 'group': '1'}]
    """
    for row in csv.DictReader(fh, **kwargs):
        yield {key: unprotect_cell(value) for key, value in row.items()}


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


def has_undecodable(text):
    """Whether ``text`` holds bytes that were not UTF-8 (as surrogate escapes).

    Examples
    --------
    >>> has_undecodable(b"caf\\xe9.jpg".decode("utf-8", "surrogateescape"))
    True
    >>> has_undecodable("café.jpg")
    False
    """
    return any("\udc80" <= char <= "\udcff" for char in text)


def utf8_text(text):
    """``text`` as valid UTF-8 text: bytes that were not UTF-8 written ``\\xNN``.

    The one rule of every output that must be UTF-8 (the CSV of ``hybridclf
    predict``, Parquet, JSON) for a file name that is not (an old Latin-1
    name on Linux, which :func:`os.listdir` gives with surrogate escapes).
    Text without such bytes is returned as it is, so the rule applies once
    however often it is applied.

    Examples
    --------
    >>> utf8_text(b"caf\\xe9.jpg".decode("utf-8", "surrogateescape"))
    'caf\\\\xe9.jpg'
    >>> utf8_text("พระ.jpg")
    'พระ.jpg'
    """
    if not has_undecodable(text):
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8",
                                                          "backslashreplace")


def not_utf8_error(path, what):
    """The error for a CSV file that is not UTF-8, naming its first bad line.

    Parameters
    ----------
    path : str or os.PathLike
        The CSV file.

    what : str
        What went wrong because of it, for the message (e.g. "none of its
        undecodable file names matches an image").

    Returns
    -------
    error : ValueError
        To raise; the message names the file, the first line that is not
        valid UTF-8 (shown with the bad bytes replaced) and the fix.
    """
    line_no, shown = 0, ""
    with open(path, "rb") as fh:
        for line_no, line in enumerate(fh, 1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                shown = line.decode("utf-8", "replace").rstrip("\r\n")
                break
    return ValueError(
        f"The CSV file {os.fspath(path)!r} is not UTF-8 (line {line_no}: "
        f"{shown!r}), so {what}. hybridclf reads CSV files as UTF-8; this one "
        "was probably saved in a legacy code page (Excel's plain 'CSV' format "
        "on Windows: cp1252, cp874 for Thai). Save it again as UTF-8: in Excel, "
        "File > Save As with the type 'CSV UTF-8'; in LibreOffice Calc, File > "
        "Save As 'Text CSV' with 'Edit filter settings' ticked, then the "
        "character set 'Unicode (UTF-8)'; or convert it, e.g. with iconv -f "
        "CP1252 -t UTF-8 (CP874 for Thai). Then run again.")


def _default_locations(path):
    """Where a name in the CSV ``path`` may point: as given, or beside it."""
    folder = os.path.dirname(os.path.abspath(path))

    def locate(name):
        return [name] if os.path.isabs(name) else [os.path.join(folder, name)]

    return locate


def read_csv_rows(path, *, name_columns=("file", "source"), locate=None,
                  only_with=(), what="its names would be misread and match no "
                  "file"):
    """Read a CSV file that a person may have edited, refusing a legacy code page.

    The one reader of hybridclf's CSV input (the ``--groups`` CSV, an
    ``augment`` ``manifest.csv``, a ``duplicate_groups.csv`` edited by
    hand): UTF-8 with or without a byte-order mark. A file with bytes that
    are not UTF-8 is refused (:func:`not_utf8_error`) unless one of its
    values in ``name_columns`` that holds them names a file that exists:
    then they are the bytes of file names on disk (an old Latin-1 name on
    Linux, written back as :func:`os.listdir` gave it), kept as surrogate
    escapes, and the file is read. A cell that :func:`protect_cell` gave a
    quote is read without it (:func:`unprotect_cell`).

    Parameters
    ----------
    path : str or os.PathLike
        The CSV file, with a header row.

    name_columns : tuple of str, default=("file", "source")
        The columns that hold file names.

    locate : callable or None, default=None
        ``locate(name)`` gives the paths a file name of the CSV may stand for;
        None: the name itself if absolute, else relative to the CSV's folder.

    only_with : tuple of str, default=()
        Columns the file must have to be read: a file whose header lacks one
        is not the kind asked for (a ``manifest.csv`` of another program),
        and gives its header and no rows, unchecked.

    what : str, default="its names would be misread and match no file"
        What the code page breaks, for the message.

    Returns
    -------
    columns : list of str
        The header row ([] for an empty file).

    rows : list of dict
        One per row, by column name, as :class:`csv.DictReader` gives them.

    Raises
    ------
    ValueError
        For a file that is not UTF-8 and not made of the bytes of file names
        on disk; the message names the file, its first line that is not
        UTF-8 and how to save it as UTF-8 in Excel or LibreOffice.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "groups.csv")
    >>> with open(path, "wb") as fh:
    ...     _ = fh.write("file,group\\nพระ.jpg,1\\n".encode("cp874"))
    >>> read_csv_rows(path)
    Traceback (most recent call last):
    ...
    ValueError: The CSV file '...groups.csv' is not UTF-8 (line 2: ...
    >>> with open(path, "wb") as fh:
    ...     _ = fh.write("file,group\\nพระ.jpg,1\\n".encode("utf-8-sig"))
    >>> read_csv_rows(path)
    (['file', 'group'], [{'file': 'พระ.jpg', 'group': '1'}])
    """
    with open_csv(path) as fh:
        reader = csv.DictReader(fh)
        columns = list(reader.fieldnames or [])
        if not set(only_with) <= set(columns):
            return columns, []
        rows = [{key: unprotect_cell(value) for key, value in row.items()}
                for row in reader]
    # a short or long row gives None or a list (restkey) for its cells
    cells = columns + [cell for row in rows for value in row.values()
                       for cell in (value if isinstance(value, list) else [value])
                       if isinstance(cell, str)]
    if not any(has_undecodable(cell) for cell in cells):
        return columns, rows
    locate = locate or _default_locations(path)
    names = {row[c] for row in rows for c in name_columns
             if isinstance(row.get(c), str) and has_undecodable(row[c])}
    if not any(os.path.lexists(p) for name in names for p in locate(name)):
        raise not_utf8_error(path, what)
    return columns, rows
