"""Exceptions and warnings raised by hybridclf.

Every class subclasses :class:`HybridClfError` and the matching builtin, so that
``except ValueError`` keeps working for code that does not know hybridclf.
"""

__all__ = [
    "ClusterError",
    "DeviceWarning",
    "GroupsAcrossClassesWarning",
    "HybridClfError",
    "ImageLoadError",
    "MissingDependencyError",
    "ModelLoadError",
    "ModelTypeError",
    "NoImagesError",
    "PickleLoadWarning",
    "SkippedFilesWarning",
]


class HybridClfError(Exception):
    """Base class of every error raised on purpose by hybridclf."""


class ImageLoadError(HybridClfError, ValueError):
    """One or more images could not be read.

    The message names every failing file and the reason. The failures are also
    available programmatically.

    Parameters
    ----------
    failures : list of (str, str)
        ``(source, reason)`` pairs, one per image that could not be read. The
        source is the file path, or ``"<array 3>"`` / ``"<bytes 3>"`` for the
        fourth in-memory input.

    hint : str, default=""
        What the user can do about it, appended to the message.

    Attributes
    ----------
    failures : list of (str, str)
        As given.
    """

    def __init__(self, failures, hint=""):
        self.failures = list(failures)
        self.hint = hint
        super().__init__(self._format())

    def _format(self):
        if len(self.failures) == 1:
            source, reason = self.failures[0]
            msg = f"Cannot load image {source!r}: {reason}."
        else:
            shown = "\n".join(f"  {s}: {r}" for s, r in self.failures[:20])
            more = len(self.failures) - 20
            if more > 0:
                shown += f"\n  ... and {more} more"
            msg = f"Cannot load {len(self.failures)} images:\n{shown}"
        if self.hint:
            msg += f"\n{self.hint}"
        return msg

    def __reduce__(self):
        return type(self), (self.failures, self.hint)


class NoImagesError(HybridClfError, ValueError):
    """The files and folders given to a command hold no image to work on.

    An empty folder, a folder named like an image file, a mistyped path:
    the message names each path and what it holds, what was looked for and
    the fix (:func:`hybridclf.io.no_images_error`).
    """


class SkippedFilesWarning(UserWarning):
    """Some files of a dataset folder were not taken, each for a stated reason."""


class GroupsAcrossClassesWarning(UserWarning):
    """A group of near-identical photos is filed under more than one class.

    ``hybridclf train`` (:func:`hybridclf.training.train_folder`) trains on
    such a group under each of its labels, as one object may rightly be
    filed under two names, and names its files and classes in this warning
    (and in ``model.json``'s ``groups_across_classes`` and the model card).
    A dataset that holds such a group on purpose may silence it by class
    (``warnings.filterwarnings("ignore",
    category=GroupsAcrossClassesWarning)``, or ``python -W
    ignore::hybridclf.exceptions.GroupsAcrossClassesWarning``) and keep
    every other warning.
    """


class PickleLoadWarning(UserWarning):
    """A model is unpickled: code from its file runs (``allow_pickle=True``)."""


class DeviceWarning(UserWarning):
    """The asked device is not available; the work runs on another (the CPU)."""


class MissingDependencyError(HybridClfError, ImportError):
    """An optional dependency is not installed; the message names the extra.

    An ``ImportError``, so ``except ImportError`` keeps working; a
    :class:`HybridClfError`, so the command line reports it as one
    ``error:`` line (what to install), not as a traceback.
    """


class ModelLoadError(HybridClfError, ValueError):
    """A model directory cannot be loaded: missing, modified, untrusted or too new."""


class ModelTypeError(HybridClfError, TypeError):
    """A model file holds something else than a fitted Pipeline."""


class ClusterError(HybridClfError, ConnectionError):
    """A Dask scheduler given as ``--scheduler`` cannot be reached, or its
    workers died running a partition more often than Dask retries it."""
