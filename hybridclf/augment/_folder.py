"""Balance a class-per-folder dataset on disk with augmented copies.

:func:`augment_folder` is the work behind ``hybridclf augment``: it reads a
class-per-folder dataset, makes new images for the classes that need them with
a :class:`~hybridclf.ClassAwareAugmenter`, and writes the originals, the new
images and a ``manifest.csv`` to another folder.
"""

import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np
from sklearn.base import clone

from ..exceptions import ImageLoadError
from ..io import (
    DEFAULT_MIN_SIZE,
    class_name,
    log_skipped,
    read_image,
    scan_image_folder,
)
from ..utils._parallel import run_chunked
from ._folder_output import (
    MANIFEST_NAME,
    _encode,
    _generated_names,
    _is_jpeg,
    _read_lineage,
    _write_manifest,
)
from ._folder_result import AugmentFolderResult, _class_counts

__all__ = ["augment_folder"]

logger = logging.getLogger(__name__)


def _check_output_dir(input_dir, output_dir):
    inside = output_dir == input_dir or input_dir in output_dir.parents
    if inside:
        raise ValueError(
            f"The output folder {str(output_dir)!r} lies inside the input folder "
            f"{str(input_dir)!r}; its images would be read as part of the dataset "
            "next time. Choose a folder outside the input."
        )
    if output_dir.exists() and (not output_dir.is_dir() or any(output_dir.iterdir())):
        left = sorted(p.name for p in output_dir.glob(".partial-*"))
        if left and len(left) == len(list(output_dir.iterdir())):
            raise ValueError(
                f"The output folder {str(output_dir)!r} holds only {left[0]!r}, "
                "the remains of an interrupted run. Delete it, or choose a new "
                "folder."
            )
        raise ValueError(
            f"The output folder {str(output_dir)!r} already exists and is not an "
            "empty folder. Choose a new or empty folder, so that no file is "
            "overwritten or mixed with an older run."
        )


def _staging_dir(output_path):
    """A hidden folder in ``output_path`` whose files move up once all are written.

    A run stopped half-way (Ctrl+C, a full disk) removes it, and leaves no
    folder of copies without their ``manifest.csv``, which a training would
    take for a dataset whose copies are not grouped with their source. Inside
    the output folder, not beside it: that may be a mount point (a container's
    volume), and the moves stay on its file system.
    """
    output_path.mkdir(parents=True, exist_ok=True)
    staging = output_path / f".partial-{os.getpid()}"
    staging.mkdir()
    return staging


def _list_images(input_dir):
    """Paths and labels, and the (path, reason) of every file not taken."""
    return scan_image_folder(input_dir)


def _check_all(paths, n_jobs, progress):
    """Decode every file, keeping none; (readable flags, failures).

    A file is taken only when it decodes whole (a truncated JPEG fails at its
    end) and is as large as training reads (:data:`DEFAULT_MIN_SIZE` pixels
    a side: a 1x1 placeholder is left out, not copied and multiplied), and
    the classes' counts, hence the plan of new images, need to know which
    are before any is made. The images are read again, one source
    at a time, for the new images made from them.
    """
    readable = [False] * len(paths)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(paths), desc="reading", unit="image")

    def work(chunk):
        failures = []
        for i in range(chunk.start, chunk.stop):
            try:
                read_image(paths[i], min_size=DEFAULT_MIN_SIZE)
                readable[i] = True
            except ImageLoadError as exc:
                failures.append(exc.failures[0])
        if bar is not None:
            bar.update(chunk.stop - chunk.start)
        return failures

    try:
        failures = [f for part in run_chunked(work, len(paths), n_jobs) for f in part]
    finally:
        if bar is not None:
            bar.close()
    return readable, failures


def _check_classes_left(labels, y, skipped, root, augmenter):
    """Refuse a run left with one class because the others' files are unreadable.

    Bringing classes up to the largest needs two of them; without this
    check, a class whose every file is unreadable (a truncated copy) vanished
    before the augmenter, which then failed with imblearn's "The target 'y'
    needs to have more than 1 class", naming neither the class nor its files.
    With ``target_samples`` one class is fine: it is brought up to the count.
    """
    left = sorted(set(y.tolist()))
    if len(left) > 1 or augmenter.target_samples is not None:
        return
    emptied = sorted(set(labels) - set(left))
    if not emptied:
        raise ValueError(
            f"The dataset {str(root)!r} has one class, {left[0]!r}: augment "
            "brings classes up to the largest one, so it needs at least 2. Add a "
            "class folder, or set a count per class with target_samples "
            "(--target-samples N).")
    files = []
    for path, reason in skipped:
        try:
            parts = Path(path).relative_to(root).parts
        except ValueError:
            continue
        if len(parts) > 1 and class_name(parts[0]) in emptied:
            files.append(f"{Path(path).as_posix()} ({reason})")
    raise ValueError(
        f"No image of class {', '.join(map(repr, emptied))} under {str(root)!r} "
        f"could be read, so only {left[0]!r} is left, and augment brings classes "
        "up to the largest one: it needs at least 2. Unreadable: "
        f"{'; '.join(files)}. Replace these files with readable copies (or add "
        f"readable photos to {emptied[0]!r}), or, to augment {left[0]!r} alone, "
        "set a count per class with target_samples (--target-samples N).")


def _readable_sources(input_dir, augmenter, progress):
    """The images of ``input_dir`` that augment can use; (paths, labels, y, skipped).

    ``labels`` are those of every image listed, ``paths`` and ``y`` those of
    the readable ones; ``skipped`` holds the others with their reasons (also
    logged). Raises when none is readable or too few classes are left.
    """
    paths, labels, skipped = _list_images(input_dir)
    flags, failures = _check_all(paths, augmenter.n_jobs, progress)
    skipped += failures
    log_skipped(skipped, what="Not used:")  # reported in the result's 'skipped'
    readable = [i for i, ok in enumerate(flags) if ok]
    if not readable:
        raise ValueError(
            f"None of the {len(paths)} images under {str(input_dir)!r} could be "
            "read; nothing to augment."
        )
    paths = [paths[i] for i in readable]
    y = np.asarray([labels[i] for i in readable])
    _check_classes_left(labels, y, skipped, Path(input_dir), augmenter)
    return paths, labels, y, skipped


def _copy_originals(staging, paths, rel_paths, n_jobs):
    """Copy each source unchanged to its relative path under ``staging``."""
    for rel in {Path(r).parent for r in rel_paths}:
        (staging / rel).mkdir(parents=True, exist_ok=True)

    def copy_chunk(chunk):
        for i in range(chunk.start, chunk.stop):
            shutil.copy2(paths[i], staging / rel_paths[i])

    run_chunked(copy_chunk, len(paths), n_jobs)


def _write_generated(staging, paths, rel_paths, jpeg_sources, augmenter, y,
                     progress):
    """Make the new images and write each under ``staging`` beside its source.

    One source photo at a time per thread, each copy written as made: never
    the whole dataset in memory. Returns the numbers of the copies written,
    the source of each, their names (relative to ``staging``) and the
    seconds that making and writing them took.
    """
    def write_one(k, source, image):
        # its name depends on the copies of its source kept before it,
        # known at the end: a temporary name until then
        data = _encode(image, jpeg_sources[source])
        (staging / f".generated-{k}").write_bytes(data)

    started = time.perf_counter()
    written, sources = augmenter.fit_generate_each(
        lambda i: read_image(paths[i]), y, write_one, progress=progress)
    seconds = time.perf_counter() - started
    new_names = _generated_names(sources.tolist(), rel_paths, jpeg_sources)
    for k, name in zip(written.tolist(), new_names):
        (staging / f".generated-{k}").rename(staging / name)
    return written, sources, new_names, seconds


def _move_up(staging, output_path):
    """Move every file of ``staging`` into ``output_path``, the manifest last.

    A folder of copies is then never without its manifest.
    """
    for child in sorted(staging.iterdir(), key=lambda c: c.name == MANIFEST_NAME):
        child.rename(output_path / child.name)
    staging.rmdir()


def augment_folder(input_dir, output_dir, augmenter=None, *, progress=False):
    """Write a class-balanced copy of a class-per-folder dataset.

    Every readable image of ``input_dir/<class>/...`` is copied unchanged to
    the same place under ``output_dir``; the classes that ``augmenter``
    targets get new images, made from their own images, written beside their
    source as ``<source name>_augNNN.jpg`` (``.png`` when the source is not a
    JPEG). Files that cannot be read, or that training would refuse as too
    small (under :data:`~hybridclf.io.DEFAULT_MIN_SIZE` pixels on a side),
    are listed in the result, logged and not copied; they do not stop the
    run. Every file is decoded once to check it;
    then each of the ``n_jobs`` threads reads one source at a time, writes its
    new images as they are made and lets it go
    (:meth:`~hybridclf.ClassAwareAugmenter.fit_generate_each`): the memory
    does not grow with the number of images.

    ``output_dir/manifest.csv`` has one row per output image, with columns:

    - ``file``: path relative to ``output_dir`` (``/``-separated);
    - ``label``: the class;
    - ``kind``: ``original`` or ``generated``;
    - ``source``: the original the image was made from (itself for an
      original), relative to ``output_dir`` and, as the layout is kept, to
      ``input_dir``. When ``input_dir`` is itself a folder this function
      wrote, its ``manifest.csv`` is followed: its copies stay
      ``generated``, and they and their new copies keep the original photo as
      source. Use it as the group of
      :class:`~sklearn.model_selection.GroupKFold` so that an original and its
      copies always fall in the same fold;
    - ``similarity``: the SSIM of the quality check (generated images only);
    - ``techniques``: the techniques and values applied.

    Parameters
    ----------
    input_dir : str or os.PathLike
        The dataset: one sub-folder of images per class.

    output_dir : str or os.PathLike
        Where to write; it must not exist yet, or be empty, and must lie
        outside ``input_dir``.

    augmenter : ClassAwareAugmenter or None, default=None
        The settings: target counts, techniques, quality threshold, seed and
        threads (its ``n_jobs`` also reads and writes the files). It is cloned,
        not changed. ``None`` uses ``ClassAwareAugmenter()``, which brings
        every class up to the largest one.

    progress : bool, default=False
        Show tqdm progress bars for reading and generating.

    Returns
    -------
    result : AugmentFolderResult
        Per-class counts before and after, the files skipped with reasons,
        the manifest path and timings.

    Raises
    ------
    FileNotFoundError
        When ``input_dir`` is not a folder.

    ValueError
        When ``output_dir`` is not empty or lies inside ``input_dir``, when no
        image can be read, when fewer than 2 classes have a readable image
        and ``augmenter`` sets no ``target_samples`` (the message names the
        classes whose files could not be read, and those files), or for an
        invalid setting of ``augmenter``.

    See Also
    --------
    ClassAwareAugmenter : The same augmentation inside a pipeline, during
        ``fit`` only, which needs no copy on disk and no grouped folds.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> from PIL import Image
    >>> from hybridclf import ClassAwareAugmenter
    >>> from hybridclf.augment import augment_folder
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> rng = np.random.default_rng(0)
    >>> for cls, n in (("cat", 3), ("dog", 1)):
    ...     (root / "in" / cls).mkdir(parents=True)
    ...     for i in range(n):
    ...         pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    ...         Image.fromarray(pixels).save(root / "in" / cls / f"{i}.png")
    >>> result = augment_folder(root / "in", root / "out",
    ...                         ClassAwareAugmenter(random_state=0))
    >>> [(c.label, c.before, c.after) for c in result.classes]
    [('cat', 3, 3), ('dog', 1, 3)]
    """
    started = time.perf_counter()
    input_path = Path(input_dir).resolve()
    output_path = Path(output_dir).resolve()
    # imported here: hybridclf.sampling imports this package's transforms
    from ..sampling import ClassAwareAugmenter

    if augmenter is None:
        augmenter = ClassAwareAugmenter()
    if not isinstance(augmenter, ClassAwareAugmenter):
        raise TypeError(
            "The 'augmenter' argument of augment_folder must be a "
            f"ClassAwareAugmenter or None. Got {augmenter!r} instead."
        )
    augmenter = clone(augmenter)
    augmenter._validate_params()
    _check_output_dir(input_path, output_path)
    # before the work: a manifest in a legacy code page is refused
    lineage = _read_lineage(input_dir)
    paths, labels, y, skipped = _readable_sources(input_dir, augmenter, progress)

    rel_paths = [Path(os.path.relpath(p, input_dir)).as_posix() for p in paths]
    jpeg_sources = [_is_jpeg(p) for p in paths]
    staging = _staging_dir(output_path)
    try:
        _copy_originals(staging, paths, rel_paths, augmenter.n_jobs)
        written, sources, new_names, generate_seconds = _write_generated(
            staging, paths, rel_paths, jpeg_sources, augmenter, y, progress)
        _write_manifest(staging / MANIFEST_NAME, rel_paths, y, sources, new_names,
                        augmenter, lineage)
        _move_up(staging, output_path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    manifest = output_path / MANIFEST_NAME

    result = AugmentFolderResult(
        output_dir=str(output_path), manifest=str(manifest),
        skipped=skipped, n_generated=len(written),
        generate_seconds=generate_seconds, augmenter=augmenter,
    )
    result.classes = _class_counts(labels, y, skipped, Path(input_dir), augmenter)
    result.seconds = time.perf_counter() - started
    logger.info(
        "Wrote %d originals and %d generated images to %s in %.1f s.",
        len(paths), len(written), output_path, result.seconds,
    )
    return result
