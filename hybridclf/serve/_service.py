"""What a running service holds: its settings, the model, metrics and counters.

One :class:`Service` per app (``request.app.state.service``). The lifespan
calls :meth:`Service.load` and :meth:`Service.close` in a worker thread; the
routes call :meth:`Service.predict`, which hands the images to the
micro-batcher's thread and only waits for it, so the event loop never runs
model code. This module does not import FastAPI.
"""

import asyncio
import logging
import threading
import time

import numpy as np

from .. import prediction
from ..persistence import load_model, read_model_info
from ..pipeline import set_max_pixels, set_n_jobs
from ._batching import MicroBatcher
from ._metrics import Metrics, all_worker_totals, multiprocess
from ._predict import class_names, classify, prediction_body

__all__ = ["Service"]

logger = logging.getLogger(__name__)


class Service:
    """The model behind an app, and what the app counts.

    Parameters
    ----------
    settings : ServiceSettings
        The service's settings.

    Attributes
    ----------
    metrics : Metrics
        The Prometheus collectors of the app.

    pipe : Pipeline or None
        The model, None until :meth:`load` is done (and after :meth:`close`).

    info : dict
        The model's ``model.json``.

    model_version : str
        ``<hybridclf version>+<first 12 hex digits of the model's SHA-256>``.

    classes : list of str
        The model's classes, in its probability columns.
    """

    def __init__(self, settings):
        self.settings = settings
        self.metrics = Metrics()
        self.pipe = None
        self.info = {}
        self.model_version = "unloaded"
        self.classes = []
        self._ood_thresholds = None
        self._novelty = None
        self._batcher = None
        self._lock = threading.Lock()
        self._counts = {"images": 0, "total_ms": 0.0, "calls": 0}
        self.started = time.monotonic()

    def load(self):
        """Load the model, set its threads and pixel limit, warm it up (blocking)."""
        settings, start = self.settings, time.perf_counter()
        pipe = load_model(settings.model_dir, allow_pickle=settings.allow_pickle)
        set_n_jobs(pipe, settings.threads)
        set_max_pixels(pipe, settings.max_pixels)
        info = read_model_info(settings.model_dir)
        prediction.predict_open_set(pipe, [np.full((32, 32, 3), 127, np.uint8)])
        self.info, self.classes = info, class_names(pipe)
        self.model_version = (f"{info.get('hybridclf_version', '?')}+"
                              f"{str(info.get('sha256', ''))[:12]}")
        if settings.use_ood:
            options = prediction.read_open_set(info, settings.model_dir)
            self._ood_thresholds = options["ood_thresholds"]
            self._novelty = options["novelty"]
        # concurrent requests share one model call, run in one thread
        self._batcher = MicroBatcher(self._classify, max_items=settings.max_batch)
        self.pipe = pipe
        self.started = time.monotonic()
        logger.info("Loaded and warmed up the model %s in %.2f s",
                    settings.model_dir, time.perf_counter() - start)

    def close(self):
        """Finish the queued predictions and let the model go (blocking)."""
        if self._batcher is not None:
            self._batcher.close()
        self.pipe = None

    def uptime(self):
        """Seconds since the model was loaded (since the app was built before)."""
        return time.monotonic() - self.started

    def _classify(self, items):
        """The model call of the micro-batcher's thread."""
        self.metrics.batch_size.observe(len(items))
        return classify(self.pipe, items, ood_thresholds=self._ood_thresholds,
                        novelty=self._novelty)

    async def predict(self, uploads, *, names, threshold, with_proba, endpoint):
        """The ``PredictResponse`` bodies of a request's images.

        Parameters
        ----------
        uploads : list of Upload
            The request's images (or why there is none).

        names : list of str
            How each image is named in its error message.

        threshold : float
            Below this top probability the class is "unknown".

        with_proba : bool
            Include the probability of every class.

        endpoint : str
            The route, for the inference-time metric.

        Returns
        -------
        bodies : list of dict
            One per upload, in order.
        """
        start = time.perf_counter()
        todo = [i for i, upload in enumerate(uploads) if upload.error is None]
        bodies = [{"success": False, "error_message": upload.error}
                  for upload in uploads]
        results = []
        if todo:
            results = await asyncio.wrap_future(
                self._batcher.submit([uploads[i].data for i in todo]))
            self.metrics.inference.labels(endpoint).observe(results[0].seconds)
        for i, result in zip(todo, results):
            bodies[i] = prediction_body(result, name=names[i], classes=self.classes,
                                        threshold=threshold, with_proba=with_proba)
        n_predicted = sum(result.error is None for result in results)
        elapsed = (time.perf_counter() - start) * 1000.0
        self._record(n_predicted, elapsed)
        for body in bodies:
            body.update(processing_time_ms=elapsed, model_version=self.model_version)
        return bodies

    def _record(self, n_images, elapsed_ms):
        self.metrics.images.inc(n_images)
        self.metrics.calls.observe(elapsed_ms / 1000.0)
        with self._lock:
            self._counts["images"] += n_images
            self._counts["total_ms"] += elapsed_ms
            self._counts["calls"] += 1

    def counts(self):
        """Images predicted, mean time per request, and over which processes.

        Returns
        -------
        counts : dict
            ``predictions_count``, ``average_response_time_ms`` and
            ``counts_scope``: "process" for this worker's own counts, "all
            workers" when several workers' metrics are summed.
        """
        with self._lock:
            count, total, calls = (self._counts["images"], self._counts["total_ms"],
                                   self._counts["calls"])
        scope = "process"
        if multiprocess():
            totals = all_worker_totals()
            count = int(totals.get("hybridclf_images_predicted_total", 0))
            total = 1000.0 * totals.get("hybridclf_prediction_call_seconds_sum", 0)
            calls = totals.get("hybridclf_prediction_call_seconds_count", 0)
            scope = "all workers"
        return {"predictions_count": count,
                "average_response_time_ms": total / calls if calls else 0.0,
                "counts_scope": scope}
