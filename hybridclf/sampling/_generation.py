"""The generation of the new images, for :class:`ClassAwareAugmenter`.

``_ImageGeneration`` is the part of the over-sampler that makes the images:
it plans which source image each new image is made from (``_plan_sources``:
a class's images in turn, in a shuffled order), makes each one from its own
seed on ``n_jobs`` threads (``_generate_each``), draws and applies the
augmentation techniques until the image passes the quality check
(``_make_one``, ``_quality``), hands each image that passed to a ``write``
callable as soon as it is made and counts the redrawn and dropped ones
(``_collect``). ``_generate`` keeps them in memory instead.

The images are made source by source: each thread asks ``load`` for one
source image at a time and lets it go before the next, so a caller that
reads its sources from files (``hybridclf augment`` on photos of 48
megapixels) holds about one source per thread, not the whole dataset. The
images do not depend on that order: each has its own seed, drawn in the
order of the plan.

It is a mixin of :class:`ClassAwareAugmenter` alone: it reads the sampler's
parameters ``techniques``, ``quality_threshold``, ``max_attempts``,
``random_state`` and ``n_jobs`` and its ``_resolve_strategy``, and sets the
fitted attributes that the sampler documents (``sampling_strategy_``,
``n_generated_``, ``n_regenerated_``, ``n_dropped_``, ``rejections_``,
``similarity_`` and ``augmentation_params_``). Records go to the sampler's
logger, ``hybridclf.sampling._augmenter``.
"""

import logging
import threading
import warnings

import numpy as np
from sklearn.utils import check_random_state

from ..augment._geometry import apply_geometry
from ..augment._photometry import apply_photometry
from ..augment._policy import check_techniques, draw_params
from ..utils._parallel import run_chunked
from ._quality import _check_quality, _small_gray

__all__ = []

# the sampler's logger (the same object as ``_augmenter.logger``)
logger = logging.getLogger("hybridclf.sampling._augmenter")


class _ImageGeneration:
    """The generation of new images; a mixin of :class:`ClassAwareAugmenter`."""

    def _generate(self, images, y, progress=False):
        """The images of the resolved strategy and their sources, in memory."""
        made = {}

        def keep(k, source, image):
            made[k] = image

        kept, sources = self._generate_each(images.__getitem__, y, keep, progress)
        return [made.pop(k) for k in kept], sources

    def _generate_each(self, load, y, write, progress=False):
        """Generate the images of the resolved strategy; set the fitted counts.

        ``load(i)`` returns source image ``i``; ``write(k, i, image)`` takes
        the ``k``-th planned image, made from source ``i``, as soon as it
        passes the quality check. Returns the ``k`` of every image written
        and its source, in the order of the plan.
        """
        y = np.asarray(y)
        self.sampling_strategy_ = self._resolve_strategy(y)
        policy = check_techniques(self.techniques)
        random_state = check_random_state(self.random_state)
        sources = self._plan_sources(y, random_state)
        # one seed per planned image: the images do not depend on n_jobs
        seeds = np.random.SeedSequence(
            random_state.randint(0, 2**31 - 1, size=4).tolist()
        ).spawn(len(sources))
        # by source: a thread loads a source once for all of its images in
        # its chunk (a source split over two chunks is loaded twice)
        order = np.argsort(sources, kind="stable")
        results = [None] * len(sources)
        bar, lock = self._progress_bar(len(sources), progress)
        # Ctrl+C stops the threads at the next image, not at the end of
        # their chunks (minutes of a large class)
        stop = threading.Event()

        def work(chunk):
            current = image = gray = None
            for k in order[chunk].tolist():
                if stop.is_set():
                    return
                i = int(sources[k])
                if i != current:
                    image = gray = None  # let the last source go first
                    image = load(i)
                    gray, current = _small_gray(image), i
                made, *checks = self._make_one(
                    image, gray, policy, np.random.default_rng(seeds[k]))
                if made is not None:
                    write(k, i, made)
                results[k] = (made is not None, *checks)
                del made
                if bar is not None:
                    with lock:
                        bar.update()

        try:
            run_chunked(work, len(sources), self.n_jobs)
        except BaseException:
            stop.set()
            raise
        finally:
            if bar is not None:
                bar.close()
        return self._collect(results, sources, y)

    def _plan_sources(self, y, random_state):
        """The source index of each image to generate, class by class."""
        plan = []
        for label, n_new in self.sampling_strategy_.items():
            members = np.flatnonzero(y == label)
            if n_new <= 0 or len(members) == 0:
                continue
            order = random_state.permutation(members)
            plan.append(np.resize(order, n_new))
        return np.concatenate(plan) if plan else np.empty(0, dtype=np.intp)

    def _progress_bar(self, total, progress):
        if not progress or total == 0:
            return None, None
        from tqdm.auto import tqdm

        return tqdm(total=total, desc="augmenting", unit="image"), threading.Lock()

    def _make_one(self, image, source_gray, policy, rng):
        """(image or None, failed reasons, similarity, params) for one source."""
        failed = []
        for _ in range(self.max_attempts):
            params = draw_params(rng, policy)
            reference = apply_geometry(image, params)
            generated = apply_photometry(reference, params, rng)
            reason, similarity = _check_quality(
                source_gray, reference, generated, self.quality_threshold
            )
            if reason is None:
                return generated, failed, similarity, params
            failed.append(reason)
        return None, failed, None, None

    def _collect(self, results, sources, y):
        """The images that passed (``k``, source); set the fitted counts."""
        labels = np.unique(y).tolist()
        self.n_generated_ = dict.fromkeys(labels, 0)
        self.n_regenerated_ = dict.fromkeys(labels, 0)
        self.n_dropped_ = dict.fromkeys(labels, 0)
        self.rejections_ = dict.fromkeys(("blank", "saturated", "dissimilar"), 0)
        kept, kept_sources, similarity, params = [], [], [], []
        for k, (source, (passed, failed, sim, drawn)) in enumerate(zip(sources,
                                                                       results)):
            label = np.asarray(y[source]).item()
            for reason in failed:
                self.rejections_[reason] += 1
            if not passed:
                self.n_regenerated_[label] += len(failed) - 1
                self.n_dropped_[label] += 1
                continue
            self.n_regenerated_[label] += len(failed)
            self.n_generated_[label] += 1
            kept.append(k)
            kept_sources.append(source)
            similarity.append(sim)
            params.append(drawn)
        self.similarity_ = np.asarray(similarity, dtype=np.float64)
        self.augmentation_params_ = params
        n_dropped = sum(self.n_dropped_.values())
        if n_dropped:
            message = (
                f"ClassAwareAugmenter dropped {n_dropped} of {len(sources)} generated"
                f" images after {self.max_attempts} failed quality checks each "
                f"(per class: {self.n_dropped_}; reasons: {self.rejections_}). Lower"
                " 'quality_threshold' or narrow the 'techniques' ranges to keep "
                "them."
            )
            logger.warning(message)
            warnings.warn(message, UserWarning, stacklevel=2)
        logger.info(
            "Generated %d images (%s per class); %d redrawn after a failed quality "
            "check, %d dropped.", len(kept), self.n_generated_,
            sum(self.n_regenerated_.values()), n_dropped,
        )
        return kept, np.asarray(kept_sources, dtype=np.intp)
