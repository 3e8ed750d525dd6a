"""The CNN's first layers run ahead, beside the cheap stage: :func:`start_ahead`.

A photo that the cheap stage passes on ran the CNN after HOG, LBP and colour,
where the full model runs them side by side on two cores: one photo's cheap
stage keeps only about one core busy (its parts do not scale further), and
the CNN that followed it made a hard photo slower in the cascade than in the
full model. For one or two photos, :func:`start_ahead` starts the first
layers of the CNN (:meth:`~hybridclf.features.CNNFeatures.split_transform`)
on a thread of their own, at the lowest priority
(:func:`~hybridclf.utils._parallel.start_idle`), as the cheap stage starts:
they take only a core that the cheap stage leaves idle. A photo passed on
finds them done and runs only the other layers, on every core; when every
photo is answered early they are stopped after the node they are in
(:class:`~hybridclf.features._cnn_onnx.StoppableRuns`) and their output is
dropped. On a busy machine, where they get no core of their own, they are
stopped too and the photo runs the CNN from the start, as without them.

The features equal the blocks' own (:func:`~hybridclf.prediction.transform_blocks`
on the same images): the answers are those of the cascade without it.
"""

import threading
import time
from concurrent import futures

from ..features._cnn_onnx import StoppableRuns
from ..pipeline import get_block_extractor
from ..prediction import scale_block_features
from ..utils._parallel import effective_threads, in_worker, start_idle

__all__ = ["start_ahead"]

#: Start the CNN ahead at all (a switch for benchmarks).
_START_AHEAD = True
#: First layers not done when the cheap stage is get this share of the time
#: the cheap stage took to end, if they had a core to themselves so far (at
#: least this share of the time on a CPU); otherwise they start over at once,
#: on every thread.
_GRACE = 0.25
_FREE_CORE = 0.5


class _Ahead:
    """The first layers of the full stage's blocks, running beside the caller."""

    def __init__(self, blocks, steps):
        self._blocks, self._steps = blocks, steps
        self._runs = StoppableRuns()
        self._cpu = None  # the thread's CPU clock and its reading at the start
        self._start = time.perf_counter()
        self._future = start_idle(self._run)

    def _run(self):
        if hasattr(time, "pthread_getcpuclockid"):  # not on Windows or macOS
            clock = time.pthread_getcpuclockid(threading.get_ident())
            self._cpu = (clock, time.clock_gettime(clock))
        with self._runs:
            return [first() for first, _ in self._steps]

    def _on_free_core(self, elapsed):
        """Whether the first layers had a core to themselves so far."""
        if not hasattr(time, "pthread_getcpuclockid"):
            return True
        cpu = self._cpu
        return (cpu is not None and elapsed > 0
                and time.clock_gettime(cpu[0]) - cpu[1] >= _FREE_CORE * elapsed)

    def result(self, rows):
        """Each block's features of the photos ``rows``; None if it must start over.

        The other layers run now, on every thread. The first layers are cut
        to take less time than the cheap stage on a core of their own, but
        run at the lowest priority: on a busy machine they may be far from
        done when the cheap stage is. Not done then, they get a quarter of
        the cheap stage's time more if they had a core to themselves so far;
        otherwise, or still not done, they are stopped, and None says so:
        the caller runs the blocks from the start, on every thread.
        """
        elapsed = time.perf_counter() - self._start
        try:
            outputs = self._future.result(
                timeout=_GRACE * elapsed if self._on_free_core(elapsed) else 0)
        except futures.TimeoutError:  # the builtin one from Python 3.11
            outputs = None
        if outputs is None or any(output is None for output in outputs):
            self.stop()
            return None
        return [scale_block_features(block, rest(output[rows]))
                for block, (_, rest), output in zip(self._blocks, self._steps, outputs)]

    def stop(self):
        """Stop the first layers: their output is not wanted (idempotent)."""
        self._runs.stop()


def start_ahead(blocks, images):
    """Start the first layers of ``blocks`` on ``images`` beside the caller.

    Parameters
    ----------
    blocks : list of transformer
        The fitted blocks of the full stage only (the CNN).

    images : ndarray of shape (n_images, height, width, 3)
        Loaded images.

    Returns
    -------
    ahead : object or None
        With ``result(rows)`` (each block's features of those photos, as
        :func:`~hybridclf.prediction.transform_blocks` gives them) and
        ``stop()``; None when nothing is started: more than two images (a
        batch keeps the cores busy by itself), blocks that may use one
        thread only (their ``n_jobs``), a thread that already runs work side
        by side, or a block whose extractor cannot be cut in two
        (``split_transform``).
    """
    extractors = [get_block_extractor(b) for b in blocks]
    if (not _START_AHEAD or not blocks or len(images) > 2 or in_worker()
            or max(effective_threads(getattr(e, "n_jobs", None))
                   for e in extractors) < 2):
        return None
    steps = [getattr(e, "split_transform", _none)(images) for e in extractors]
    if any(step is None for step in steps):
        return None
    return _Ahead(blocks, steps)


def _none(images):
    return None
