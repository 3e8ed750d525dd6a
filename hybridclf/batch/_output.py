"""Where a batch run writes, and how ``hybridclf predict`` writes its CSV whole.

Before a run: the files found in the input folders lose the run's own
output (a CSV written into a folder of photos, its ``.partial`` and
``.parts``; the Parquet partitions of ``extract``: ``_without_own_output``),
and a CSV output that is a folder, named as another format, an input image
or a file of the model directory, or a read-only earlier CSV, is refused
(``_check_csv_output``).

During it: :class:`_CsvOutput` sends the rows of a CSV *file* to
``<output>.partial``, renamed to ``output`` once every row is in, so an
interrupted run never leaves a short CSV that reads as whole, nor destroys
the last one; the finished partitions wait in ``<output>.parts``
until then; a second run on the same output is refused while one runs
(:meth:`_CsvOutput.claimed`). A stream, ``/dev/stdout``, ``/dev/null`` or a
named pipe is written as it is (``_is_device``), and a symbolic link is
written through (``_written_through``). A file has the byte-order
mark of every CSV file hybridclf writes (:mod:`hybridclf.utils._csv`, for
spreadsheets); the others are plain UTF-8, for the programs they feed.
"""

import codecs
import logging
import os
import shutil
from contextlib import contextmanager, nullcontext

from ..io import no_images_error
from ..prediction._files import _FIX, _LOOKED_FOR
from ..utils._csv import open_csv
from ._columns import CSV_COLUMNS

__all__ = []

logger = logging.getLogger(__name__)


def _without_own_output(files, inputs, paths=(), folders=()):
    """The files less this command's own output found in an input folder.

    ``predict photos/ --output photos/predictions.csv`` run again found the
    last CSV (or its ``.partial`` and ``.parts``) among the photos, and
    ``extract photos/ --output-dir photos/features`` its own partitions. A
    file given by name stays (:func:`_check_csv_output` refuses it).

    Inputs that hold nothing but that output raise the
    :class:`~hybridclf.exceptions.NoImagesError` of inputs that hold no
    file (:func:`~hybridclf.prediction.iter_image_files`), not a run over
    0 files that reads as done.
    """
    own = {os.path.realpath(path) for path in paths}
    inside = tuple(os.path.join(os.path.realpath(f), "") for f in folders)
    given = {os.path.realpath(item) for item in inputs}
    kept = [f for f in files if (real := os.path.realpath(f)) in given
            or not (real in own or real.startswith(inside))]
    if files and not kept:
        logger.warning("Left out %d file(s) of this command's own output found "
                       "in the inputs (such as %r): they are never read as "
                       "images", len(files), files[0])
        raise no_images_error(inputs, _LOOKED_FOR, _FIX)
    return kept


def _check_csv_output(output, model_dir, files):
    """Refuse a CSV path that is a folder, one named as another format
    (:func:`_check_suffix`), an input image, a file of the model,
    an existing file that is no CSV of ``predict`` (:func:`_first_line`) or
    one made read-only (:func:`_write_protected`).

    A folder (``--output results/``, or one that exists) is refused before
    anything runs: ``open`` failed on it with a bare "Is a directory", and
    a new ``results/`` was made only for the CSV, written in full as
    ``results/.partial``, to fail in the end on its rename.
    """
    name = os.fspath(output)
    if os.path.isdir(name) or name.endswith((os.sep, "/")):
        raise ValueError(
            f"The output {name!r} is a folder: --output names the CSV file to "
            "write. Give a file name, such as "
            f"{os.path.join(name, 'predictions.csv')!r}."
        )
    if _is_device(output):  # written as it is: nothing there to destroy
        return
    real = os.path.realpath(output)
    if any(os.path.realpath(f) == real for f in files):
        what = "one of the images to predict"
    elif (os.path.exists(real)
          and os.path.dirname(real) == os.path.realpath(model_dir)):
        what = f"a file of the model directory {os.fspath(model_dir)!r}"
    elif (first := _first_line(real)) is not None:
        what = (f"a file that is not a CSV of hybridclf predict (its first line "
                f"is {first!r}, not {','.join(CSV_COLUMNS[:2])},...)")
    elif _write_protected(real):
        raise PermissionError(
            f"The output {name!r} is read-only, so it is kept: a run replaces "
            "its output once complete. To replace it, make it writable "
            f"(chmod u+w {name!r}); to keep it, give the output (--output) "
            "another path."
        )
    else:
        _check_suffix(name)
        return
    raise ValueError(
        f"The output {os.fspath(output)!r} is {what}: writing the CSV there "
        "would destroy it. Give the output (--output) a path of its own, such "
        "as predictions.csv."
    )


#: The suffixes of other formats that programs (pandas, pyarrow, Excel) go
#: by, each with its name: an output so named is refused (:func:`_check_suffix`).
OTHER_FORMATS = {".parquet": "a Parquet file", ".pq": "a Parquet file",
                 ".feather": "a Feather file", ".arrow": "an Arrow file",
                 ".json": "a JSON file", ".jsonl": "a JSON Lines file",
                 ".ndjson": "a JSON Lines file", ".xlsx": "an Excel workbook",
                 ".xls": "an Excel workbook", ".ods": "an OpenDocument sheet",
                 ".tsv": "a tab-separated file"}
#: The suffixes of compressed files, which pandas decompresses by suffix.
COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".zip")


def _check_suffix(name):
    """Refuse a CSV output named as another format or a compressed file.

    ``--output predictions.parquet`` (or ``.xlsx``, ``.csv.gz``) wrote CSV
    text under that name, without a word: pandas, pyarrow or Excel, which go
    by the suffix, then failed on the file. predict writes CSV only; any
    other suffix (``.csv``, ``.txt``, none) is taken as it is.
    """
    stem, suffix = os.path.splitext(name)
    suffix = suffix.lower()
    if suffix in COMPRESSED:
        raise ValueError(
            f"The output {name!r} is named as a compressed file ({suffix}), but "
            "predict writes plain CSV text: give it a name such as "
            f"{stem if stem.lower().endswith('.csv') else stem + '.csv'!r}, or "
            "compress its standard output (e.g. hybridclf predict ... --output - "
            "| gzip > predictions.csv.gz).")
    if suffix in OTHER_FORMATS:
        raise ValueError(
            f"The output {name!r} is named as {OTHER_FORMATS[suffix]} "
            f"({suffix}), but predict writes CSV (which Excel, LibreOffice and "
            "pandas open): programs that go by the suffix would fail on it. "
            f"Give it a name such as {stem + '.csv'!r}.")


def _write_protected(path):
    """Whether an existing regular file is one its owner made read-only.

    The CSV is renamed over the output, which needs only the folder to be
    writable: an earlier CSV made read-only (``chmod a-w``) to keep it was
    replaced all the same, after the whole run. Write permission for this
    user (:func:`os.access`) decides, and no write bit at all (``chmod
    444``) too, which root's access ignores.
    """
    if not os.path.isfile(path):
        return False
    return (not os.access(path, os.W_OK)
            or not os.stat(path).st_mode & 0o222)


def _first_line(path):
    """The first line of an existing file that is no CSV of ``predict``; else None.

    None for a missing or empty file, a device or pipe, and a CSV whose
    header starts as :data:`CSV_COLUMNS` does (an earlier run's, replaced as
    any output is). Any other file (the ``--groups`` CSV, a spreadsheet, a
    photo) was replaced without a word by a mistyped ``--output``.
    """
    try:
        with open(path, "rb") as fh:
            if not os.path.isfile(path):
                return None
            first = (fh.read(200).removeprefix(codecs.BOM_UTF8).splitlines()
                     or [b""])[0]
    except OSError:  # missing, or unreadable: the rename is what tells
        return None
    if not first:
        return None
    if first.startswith(",".join(CSV_COLUMNS[:2]).encode() + b","):
        return None
    return first.decode("utf-8", "backslashreplace")[:60]


def _holds_no_row(path):
    """Whether ``path`` is a file with no CSV row: empty, or the header alone."""
    if not os.path.isfile(path):  # never opened: a named pipe would block
        return False
    try:
        with open(path, "rb") as fh:
            head = fh.read(1 << 16)
    except OSError:
        return False
    return len(head) < 1 << 16 and head.count(b"\n") <= 1


def _is_device(output):
    """Whether the path ``output`` is written as it is: a device, a named pipe
    or an open file of the process (``/dev/stdout``, ``/dev/fd/3``).

    So is any path under ``/dev/`` or ``/proc/``: ``/dev/stdout`` with
    standard output redirected to a file (``--output /dev/stdout >
    preds.csv``) leads to that regular file, so the CSV was written as
    ``/dev/stdout.partial`` and renamed over ``/dev/stdout`` itself, which
    root may do: the symbolic link became a file holding the CSV, and
    ``preds.csv`` got the summary alone.
    """
    name = os.path.abspath(os.fspath(output))
    return (name.startswith(("/dev/", "/proc/"))
            or (os.path.exists(name) and not os.path.isfile(name)))


def _written_through(output):
    """The file a CSV output replaces: ``output``, or where its link leads.

    An ``output`` that is a symbolic link (``latest.csv`` to the CSV of the
    last run) is written through, as a shell's ``>`` or ``cp`` writes: the
    CSV was renamed over the link itself, which became a file of its own
    while the file it led to kept the old CSV. The file it leads to (the
    end of a chain of links; a missing one is made) is replaced, by a
    rename in its own folder (``<target>.partial``), so it is still
    replaced whole; the link stays as it was.
    """
    name = os.fspath(output)
    return os.path.realpath(name) if os.path.islink(name) else name


class _CsvOutput:
    """The CSV of one run: a file written as ``<output>.partial``, or a stream.

    Parameters
    ----------
    output : str, os.PathLike or file object
        As in :func:`~hybridclf.batch.predict_to_csv`.

    Attributes
    ----------
    is_path : bool
        Whether ``output`` names a file (or a device) rather than a stream.

    path : str or None
        The file the CSV replaces: ``output``, or the file it leads to when
        it is a symbolic link (:func:`_written_through`); None for a stream,
        a device or a named pipe (:func:`_is_device`).

    partial, parts : str or None
        ``<path>.partial`` and ``<output>.parts`` for a regular file (or
        one not there yet); None for a stream, a device or a named pipe.
    """

    def __init__(self, output):
        self.output = output
        self.is_path = isinstance(output, str | os.PathLike)
        self.path = (_written_through(output)
                     if self.is_path and not _is_device(output) else None)
        self.partial = f"{self.path}.partial" if self.path else None
        self.parts = f"{os.fspath(output)}.parts" if self.partial else None

    @contextmanager
    def claimed(self):
        """Hold ``<output>.partial`` locked for this run (a context manager).

        Two runs on one output each wrote ``<output>.partial``, emptying the
        other's, and each took the other's unfinished partitions in
        ``<output>.parts`` for a stopped run's: the first to finish removed
        them, and the other failed on its next one. The second run is now
        refused while the first holds the lock (:func:`fcntl.flock`, which
        the system releases when a run ends, even when killed). A
        ``.partial`` made for the lock and left without a row (empty, or the
        header alone: a run refused before its first row) is removed. Where
        :mod:`fcntl` is missing (Windows) nothing is locked.

        Raises
        ------
        BlockingIOError
            When another run holds the lock, naming the output.
        """
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            fcntl = None
        if self.partial is None or fcntl is None:
            yield self
            return
        made = not os.path.exists(self.partial)
        with open(self.partial, "ab") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise BlockingIOError(
                    f"Another run is writing the output {os.fspath(self.output)!r} "
                    f"(it holds {self.partial!r}): wait for it to finish, or give "
                    "this run another output (--output)."
                ) from exc
            try:
                yield self
            finally:
                if made and _holds_no_row(self.partial):
                    os.remove(self.partial)

    def open(self):
        """The text file the rows go to, for :mod:`csv` (a context manager).

        A write to ``<output>.partial`` that fails (a full disk, a quota) is
        an :class:`OSError` that names the file, its folder and what to do
        (:class:`_NamedWrites`), not a bare "[Errno 28] No space left on
        device".
        """
        if self.partial:
            return _NamedWrites(open_csv(self.partial, "w"), self.partial,
                                os.fspath(self.output))
        if self.is_path:  # a device or a pipe: no mark for the program reading
            return open(self.output, "w", newline="", encoding="utf-8",
                        errors="surrogateescape")
        return nullcontext(self.output)

    def finish(self):
        """Rename ``<output>.partial`` to the output; remove ``<output>.parts``."""
        if self.partial:
            os.replace(self.partial, self.path)
        if self.parts and os.path.isdir(self.parts):
            shutil.rmtree(self.parts)


class _NamedWrites:
    """A text file whose failed writes name it: ``<output>.partial`` of a run.

    ``predict --output`` on a full disk predicted every file, then failed
    with a bare "error: [Errno 28] No space left on device", naming neither
    the file nor the disk. The error keeps its ``errno``; the message names
    the file, its folder, and says that the output is as it was and how to
    go on.
    """

    def __init__(self, fh, path, output):
        self._fh, self._path, self._output = fh, path, output

    def _failed(self, exc):
        folder = os.path.dirname(os.path.abspath(self._path))
        return OSError(exc.errno, (
            f"Could not write the CSV {self._path!r} ({exc.strerror or exc}); "
            f"the output {self._output!r} is left as it was. Free space in "
            f"{folder!r} (or give the output, --output, another folder) and "
            "run the same command again."))

    def write(self, text):
        try:
            return self._fh.write(text)
        except OSError as exc:
            raise self._failed(exc) from exc

    def flush(self):
        try:
            self._fh.flush()
        except OSError as exc:
            raise self._failed(exc) from exc

    def close(self):
        try:
            self._fh.close()
        except OSError as exc:
            raise self._failed(exc) from exc

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
