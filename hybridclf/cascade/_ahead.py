"""The CNN's first layers run ahead, beside the cheap stage: :func:`start_ahead`.

A photo that the cheap stage passes on ran the CNN after HOG, LBP and colour,
where the full model runs them side by side on two cores: one photo's cheap
stage keeps only about one core busy (its parts do not scale further), and
the CNN that followed it made a hard photo slower in the cascade than in the
full model. For one or two photos, :func:`start_ahead` starts the first
layers of the CNN (:meth:`~hybridclf.features.CNNFeatures.split_transform`)
on a thread of their own, at the lowest priority, as the cheap stage starts
on the caller's thread alone (a second thread gained it little, and would
take the other core): they take only the core the cheap stage leaves idle.
A photo passed on finds them done and runs only the other layers, on every
core; when every photo is answered early they are stopped after the node they
are in (ONNX Runtime's ``terminate`` flag) and their output is dropped. They
run on a thread of ONNX Runtime's (``run_async``), not a Python one: they need
not wait for the interpreter's lock, which the cheap stage holds most of the
time. On a busy machine, where they get no core of their own, they are
stopped too and the photo runs the CNN from the start, as without them.

The features equal the blocks' own (:func:`~hybridclf.prediction.transform_blocks`
on the same images): the answers are those of the cascade without it.
"""

import time
from concurrent import futures

from ..features._cnn_onnx import stoppable_options
from ..pipeline import get_block_extractor
from ..prediction import scale_block_features
from ..utils._parallel import effective_threads, in_worker

__all__ = ["start_ahead"]

#: Start the CNN ahead at all (a switch for benchmarks).
_START_AHEAD = True
#: First layers not done when the cheap stage is are watched this long
#: (seconds); if they ran at least this share of it on a CPU (they have a
#: core), they get as long again as the cheap stage took, times _GRACE, to
#: end; the others start over at once, on every thread.
_PROBE_S = 0.0005
_FREE_CORE = 0.5
_GRACE = 0.5


class _Ahead:
    """The first layers of the full stage's blocks, running beside the caller."""

    def __init__(self, blocks, steps):
        self._blocks, self._steps = blocks, steps
        self._options = stoppable_options()
        self._start = time.perf_counter()
        self._futures = [start(self._options) for start, _, _ in steps]

    def _outputs(self, timeout):
        """The first layers' outputs, waiting ``timeout`` seconds at most; or None."""
        try:
            return [future.result(timeout=timeout) for future in self._futures]
        except futures.TimeoutError:  # the builtin one from Python 3.11
            return None

    def _cpu_seconds(self):
        seconds = [split.first_cpu_seconds() for _, _, split in self._steps]
        return None if None in seconds else sum(seconds)

    def result(self, rows):
        """Each block's features of the photos ``rows``; None if it must start over.

        The other layers run now, on every thread. The first layers are cut
        to take about as long as the cheap stage on a core of their own, but
        run at the lowest priority: on a busy machine they may be far from
        done when the cheap stage is. Not done then, they are watched for
        half a millisecond: if they run (or where that cannot be told) they
        get as long again as the cheap stage took; if they do not, or are
        still not done, they are stopped, and None says so: the caller runs
        the blocks from the start, on every thread.
        """
        elapsed = time.perf_counter() - self._start
        outputs = self._outputs(0)
        if outputs is None:
            before = self._cpu_seconds()
            outputs = self._outputs(_PROBE_S)
            if outputs is None and (before is None or self._cpu_seconds() - before
                                    >= _FREE_CORE * _PROBE_S):
                outputs = self._outputs(_GRACE * elapsed)
        if outputs is None or any(output is None for output in outputs):
            self.stop()
            return None
        return [scale_block_features(block, rest(output[rows]))
                for block, (_, rest, _), output in zip(
                    self._blocks, self._steps, outputs)]

    def stop(self):
        """Stop the first layers: their output is not wanted (idempotent)."""
        self._options.terminate = True


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
    steps = [e.split_transform(images) if hasattr(e, "split_transform") else None
             for e in extractors]
    if any(step is None for step in steps):
        return None
    return _Ahead(blocks, steps)
