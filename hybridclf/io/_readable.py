"""Running a step on the files that can be read: the others left out, named.

:func:`call_on_readable` is the one place where a command that works on a
whole dataset at once (``hybridclf train``, ``hybridclf evaluate``) leaves
out the files that the image loader cannot decode, instead of stopping: it
calls the step, and when the step raises an
:class:`~hybridclf.exceptions.ImageLoadError` naming some of its files, calls
it again without them and returns them with their reasons.
"""

import os
import warnings

from ..exceptions import ImageLoadError, SkippedFilesWarning

__all__ = ["call_on_readable"]


def call_on_readable(func, paths, *columns):
    """Call ``func(paths, *columns)``, leaving out the files it cannot read.

    The loader decodes a whole batch before it says which files failed
    (:class:`~hybridclf.exceptions.ImageLoadError` lists every one), so a
    run that stops on a bad file is run again once without the files it
    named: a step that loads every file early (the training's shared
    features, the evaluation's first pass) costs little more than that
    first load twice. A file that is not an image at all, or empty, never
    gets here: the folder walks skip it with its reason
    (:func:`~hybridclf.io.scan_image_folder`).

    Parameters
    ----------
    func : callable
        The step: ``func(paths, *columns)``, which loads the images of
        ``paths`` and may raise :class:`~hybridclf.exceptions.ImageLoadError`.

    paths : sequence of str or os.PathLike
        The image files, as ``func`` takes them.

    *columns : sequence
        Values per file (labels, groups, names), in the order of ``paths``;
        each is passed on without the entries of the files left out.

    Returns
    -------
    result : object
        What ``func`` returned, on the files it could read.

    kept : list of int
        The positions in ``paths`` of the files it was called on in the end.

    failures : list of (str, str)
        Each file left out, as the loader names it, with the reason.

    Raises
    ------
    ImageLoadError
        When no file can be read (it names every file), or when the error
        names none of ``paths`` (it is not about them, so it is raised as
        it is).

    Warns
    -----
    SkippedFilesWarning
        When ``func`` fails for another reason after files were left out:
        the warning names them, as the reason may be theirs (a class whose
        every photo was left out has no image left).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from PIL import Image
    >>> from hybridclf.io import ImageLoader
    >>> from hybridclf.io._readable import call_on_readable
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> Image.new("RGB", (8, 8)).save(folder / "good.png")
    >>> _ = (folder / "cut.png").write_bytes((folder / "good.png").read_bytes()[:40])
    >>> def shapes(paths, labels):
    ...     return ImageLoader(size=4, min_size=1).transform(paths).shape, labels
    >>> result, kept, failures = call_on_readable(
    ...     shapes, [str(folder / "cut.png"), str(folder / "good.png")], ["a", "b"])
    >>> result, kept, len(failures)
    (((1, 4, 4, 3), ['b']), [1], 1)
    """
    kept = list(range(len(paths)))
    failures = []
    while True:
        current = [paths[i] for i in kept]
        try:
            result = _call(func, current, [[column[i] for i in kept]
                                           for column in columns], failures)
        except ImageLoadError as exc:
            bad = dict(exc.failures)
            # the loader names a file by its path as given; an in-memory
            # image by its position in the batch it was loading, which need
            # not be this list: never taken for one of these
            names = [os.fspath(item) if isinstance(item, str | os.PathLike)
                     else None for item in current]
            left = [i for i, name in zip(kept, names) if name not in bad]
            if len(left) == len(kept):  # not one of these files: not ours
                raise
            failures += [(name, bad[name]) for name in names if name in bad]
            kept = left
            if not kept:
                raise ImageLoadError(failures, hint=exc.hint) from exc
            continue
        return result, kept, failures


def _call(func, paths, columns, failures):
    """``func(paths, *columns)``; if it fails otherwise, name ``failures`` first."""
    finished = False
    try:
        result = func(paths, *columns)
        finished = True
    except ImageLoadError:
        finished = True  # call_on_readable's to handle
        raise
    finally:
        if not finished and failures:
            shown = "\n".join(f"  {name}: {reason}" for name, reason in failures[:20])
            more = (f"\n  ... and {len(failures) - 20} more"
                    if len(failures) > 20 else "")
            warnings.warn(
                f"{len(failures)} file(s) could not be decoded and were left out "
                f"before this step failed:\n{shown}{more}",
                SkippedFilesWarning, stacklevel=4)
    return result
