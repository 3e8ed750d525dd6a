"""What a running service holds: its settings, the model, metrics and counters.

One :class:`Service` per app (``request.app.state.service``). The lifespan
calls :meth:`Service.load` and :meth:`Service.close` in a worker thread; the
routes call :meth:`Service.predict`, which hands the images to the
micro-batcher's thread and only waits for it, so the event loop never runs
model code. :meth:`Service.reload` swaps in another model without a pause:
each request keeps the model it started with (see :class:`ServedModel`).
This module does not import FastAPI.
"""

import asyncio
import logging
import os
import signal
import threading
import time
from itertools import groupby

import anyio
import numpy as np

from .. import prediction
from ..exceptions import ModelLoadError
from ..feedback import FeedbackStore, PredictionLog
from ..utils._memory import limit_arenas, release_memory
from ..utils._parallel import effective_threads
from ._answers import prediction_body
from ._batching import MicroBatcher
from ._errors import REQUEST_ID
from ._metrics import Metrics, all_worker_totals, multiprocess
from ._model import load_served_model
from ._predict import classify_stages, read_images
from ._settings import SETTINGS_ENV, point_workers_at

__all__ = ["Service", "check_writable"]

logger = logging.getLogger(__name__)


def check_writable(path, option, *, folder=True):
    """Make ``path`` (a folder, or a file's folder); fail clearly if unwritable.

    Parameters
    ----------
    path : str
        The folder, or the file.

    option : str
        The option that named it, for the message (``--feedback-dir``).

    folder : bool, default=True
        Whether ``path`` is the folder itself.

    Raises
    ------
    ValueError
        When the folder cannot be made or written, or the file (``folder=False``)
        cannot be opened for appending: a folder of that name, a read-only file.
    """
    target = path if folder else os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(target, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"Cannot make the folder {target!r} of {option} ({exc}). "
                         "Name a folder this user can write.") from exc
    if not os.access(target, os.W_OK | os.X_OK):
        raise ValueError(f"The folder {target!r} of {option} is not writable by "
                         "this user. Name a folder this user can write.")
    if not folder:  # the file itself: a folder or a read-only file fails here
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644))
        except OSError as exc:
            raise ValueError(f"Cannot append to {path!r} of {option} ({exc}). Name "
                             "a file this user can write.") from exc


class Service:
    """The model behind an app, and what the app counts and records.

    Parameters
    ----------
    settings : ServiceSettings
        The service's settings.

    model : ServedModel or None, default=None
        The model of ``settings.model_dir``, loaded and checked already
        (:func:`~hybridclf.serve._model.load_served_model`): the first
        :meth:`load` serves it instead of loading it again.

    Attributes
    ----------
    metrics : Metrics
        The Prometheus collectors of the app.

    model : ServedModel or None
        The model that new requests get; None until :meth:`load` is done (and
        after :meth:`close`). Replaced whole by :meth:`reload`.

    feedback : FeedbackStore or None
        Where ``POST /feedback`` stores corrections (``feedback_dir``).

    prediction_log : PredictionLog or None
        Where every answer is logged (``log_predictions``).
    """

    def __init__(self, settings, *, model=None):
        limit_arenas()  # before the service's threads allocate: fewer arenas
        self.settings = settings
        self.metrics = Metrics()
        self.model = None
        self._checked = model  # see load
        max_mb = settings.feedback_max_mb
        self.feedback = (FeedbackStore(settings.feedback_dir,
                                       max_pixels=settings.max_pixels,
                                       max_bytes=None if max_mb is None
                                       else int(max_mb * 1024 * 1024))
                         if settings.feedback_dir else None)
        self.prediction_log = (PredictionLog(settings.log_predictions)
                               if settings.log_predictions else None)
        self._batcher = None
        self._decoders = None  # see decoders
        self._reloads = None  # see reloads
        self._lock = threading.Lock()
        self._reload_lock = threading.Lock()  # one load at a time
        self._counts = {"images": 0, "total_ms": 0.0, "calls": 0}
        self.started = time.monotonic()

    # the model's parts, for the routes and for code written before reloads
    pipe = property(lambda self: None if self.model is None else self.model.pipe)
    info = property(lambda self: {} if self.model is None else self.model.info)
    classes = property(lambda self: [] if self.model is None else self.model.classes)
    model_version = property(
        lambda self: "unloaded" if self.model is None else self.model.version)

    def load(self):
        """Load, check and warm up the model; start the batcher (blocking).

        The model given to the service when it was made, checked already, is
        served the first time instead (once: a service started again after
        :meth:`close` loads the model directory afresh).
        """
        settings, start = self.settings, time.perf_counter()
        if settings.feedback_dir:
            check_writable(settings.feedback_dir, "feedback_dir")
        if settings.log_predictions:
            check_writable(settings.log_predictions, "log_predictions", folder=False)
        with self._reload_lock:
            model, self._checked = self._checked, None
            done = "Serving the model checked at start-up,"
            if model is None:
                model = load_served_model(settings.model_dir, settings)
                done = "Loaded and warmed up the model"
            # concurrent requests share one model call, run in one thread
            # freed memory goes back once idle, or every 2 s under load
            self._batcher = MicroBatcher(self._classify, max_items=settings.max_batch,
                                         on_idle=release_memory, busy_s=2.0)
            self._swap(model)
        self.started = time.monotonic()
        logger.info("%s %s (%s), in %.2f s", done, model.directory, model.version,
                    time.perf_counter() - start)

    def reload(self, model_dir=None):
        """Load another model (or the same path again) and swap it in (blocking).

        The new model is loaded, checked and warmed up beside the one that
        serves; only then is it swapped in, with one assignment. Requests
        that started before keep the old model to their answer; ``/ready``
        stays true throughout. A model that fails a check is refused and the
        old one keeps serving. Reloads run one at a time.

        Parameters
        ----------
        model_dir : str or os.PathLike or None, default=None
            The model directory; None reloads the served model's path.

        Returns
        -------
        previous, model : ServedModel
            The model replaced, and the one now serving.

        Raises
        ------
        ModelLoadError
            When the model fails a check (the message says which); nothing
            changed then.
        RuntimeError
            When no model is loaded yet (the service is starting or stopped).
        """
        with self._reload_lock:
            previous = self.model
            if previous is None:
                raise RuntimeError("The service has no model loaded yet; it is "
                                   "starting or stopping. Retry once /ready is 200.")
            target = previous.directory if model_dir is None else model_dir
            start = time.perf_counter()
            try:
                model = load_served_model(target, self.settings)
            except ModelLoadError as exc:
                self.metrics.reloads.labels("refused").inc()
                # %r: the path may come from a request, newlines and all
                logger.error("Refused to reload %r; still serving %s: %s",
                             os.fspath(target), previous.version, exc)
                raise
            self._swap(model, previous)
            self.metrics.reloads.labels("done").inc()
            self._restart_other_workers(model)
        logger.info("Reloaded: now serving %r (%s) after %s, in %.2f s",
                    model.directory, model.version, previous.version,
                    time.perf_counter() - start)
        return previous, model

    @property
    def several_workers(self):
        """Whether ``serve`` runs this app in several worker processes."""
        return bool(os.environ.get(SETTINGS_ENV))

    def _restart_other_workers(self, model):
        """With several workers, have uvicorn replace each by one serving ``model``.

        A reload reaches the one worker that got the request: the others
        would go on serving the old model. The workers' settings file is
        pointed at the new directory and the supervisor gets SIGHUP, which
        replaces every worker, one at a time, by one that loads it.
        """
        if point_workers_at(model.directory) is None:
            return
        logger.warning("Reloaded %s in worker %d; restarting the other workers on "
                       "it (SIGHUP to the supervisor, pid %d)", model.version,
                       os.getpid(), os.getppid())
        os.kill(os.getppid(), signal.SIGHUP)

    def reload_in_background(self):
        """:meth:`reload` the same path in a thread; the outcome is logged (SIGHUP)."""
        def run():
            try:
                self.reload()
            except (ModelLoadError, RuntimeError) as exc:
                logger.error("SIGHUP reload refused: %s", exc)

        threading.Thread(target=run, name="serve-reload", daemon=True).start()

    def _swap(self, model, previous=None):
        self.model = model  # one assignment: atomic for every other thread
        self.metrics.set_model(model.version, previous and previous.version)

    def close(self):
        """Finish the queued predictions and let the model go (blocking)."""
        if self._batcher is not None:
            self._batcher.close()
        self.model = None
        self.metrics.close()

    def known_classes(self):
        """The served model's classes; none before it is loaded."""
        model = self.model
        return () if model is None else tuple(model.classes)

    def uptime(self):
        """Seconds since the model was loaded (since the app was built before)."""
        return time.monotonic() - self.started

    def _classify(self, items):
        """The model call of the micro-batcher's thread, answers as they are ready.

        ``items`` are ``(model, read, neighbours, threshold)`` tuples: each
        request names the model it started with, so the requests queued
        before a reload are answered by the old model, those after by the
        new one (one model call each, in the rare batch that holds both),
        its image as :meth:`_read` decoded it, how many nearest training
        photos it wants, and its confidence threshold (a cascade passes on
        to its full model the photos its cheap stage is less sure of).
        Yields ``{position: ItemResult}`` dicts: a cascade's early answers go
        out before the CNN runs on the other photos (see
        :func:`classify_stages`).
        """
        self.metrics.batch_size.observe(len(items))
        start = 0
        for model, group in groupby(items, key=lambda item: item[0]):
            group = list(group)
            decoded = [one for _, one, _, _ in group]
            images = [one[0] for one in decoded if one[0] is not None]
            read = (np.stack(images) if images else np.empty((0,)),
                    [one[1] for one in decoded],
                    [one[2] for one in decoded if one[0] is not None])
            for ready in classify_stages(model.pipe, None, read=read,
                                         ood_thresholds=model.ood_thresholds,
                                         novelty=model.novelty, index=model.index,
                                         neighbours=[k for _, _, k, _ in group],
                                         thresholds=[t for _, _, _, t in group]):
                yield {start + i: result for i, result in ready.items()}
            start += len(group)

    async def predict(self, uploads, *, names, threshold, with_proba, endpoint,
                      neighbours=0):
        """The ``PredictResponse`` bodies of a request's images.

        The whole request is answered by the model that serves when it
        starts, even when a reload swaps in another one meanwhile.

        Parameters
        ----------
        uploads : list of Upload
            The request's images (or why there is none).

        names : list of str
            How each image is named in its error message.

        threshold : float or None
            Below this top probability the class is "unknown"; None takes
            the model's learned one (``ServedModel.confidence_threshold``).

        with_proba : bool
            Include the probability of every class.

        endpoint : str
            The route, for the inference-time metric and the prediction log.

        neighbours : int, default=0
            How many nearest training photos to answer with each image.

        Returns
        -------
        bodies : list of dict
            One per upload, in order.
        """
        start, model = time.perf_counter(), self.model
        if threshold is None:
            threshold = model.confidence_threshold
        todo = [i for i, upload in enumerate(uploads) if upload.error is None]
        bodies = [{"success": False, "error_message": upload.error}
                  for upload in uploads]
        results = []
        if todo:
            read = await self._read(model, [uploads[i].data for i in todo])
            results = await asyncio.wrap_future(
                self._batcher.submit([(model, one, neighbours, threshold)
                                      for one in read]))
            self.metrics.inference.labels(endpoint).observe(results[0].seconds)
        for i, result in zip(todo, results):
            bodies[i] = prediction_body(result, name=names[i], classes=model.classes,
                                        threshold=threshold, with_proba=with_proba)
            if bodies[i]["success"]:
                self.metrics.observe_answer(
                    bodies[i]["predicted_class"], bodies[i]["confidence"],
                    out_of_distribution=result.label == prediction.UNKNOWN)
        n_predicted = sum(result.error is None for result in results)
        elapsed = (time.perf_counter() - start) * 1000.0
        self._record(n_predicted, elapsed)
        for body in bodies:
            body.update(processing_time_ms=elapsed, model_version=model.version)
        if self.prediction_log is not None:
            await anyio.to_thread.run_sync(self._log, bodies, endpoint,
                                           REQUEST_ID.get())
        return bodies

    @property
    def decoders(self):
        """The limiter of the worker threads that decode images (anyio).

        ``settings.threads`` of them at once, for predictions and
        corrections together: a decode of a large image takes hundreds of
        MB, and 8 corrections of 64 megapixels at once took 5.9 GB before
        they shared it. Made on first use, in the event loop.
        """
        if self._decoders is None:
            self._decoders = anyio.CapacityLimiter(
                effective_threads(self.settings.threads))
        return self._decoders

    @property
    def reloads(self):
        """The limiter of the worker threads that run :meth:`reload` (anyio): one.

        Reloads run one at a time anyway; the others wait here, in the event
        loop, instead of each holding one of the worker threads that plain
        ``def`` routes run in (40 at most): 60 reloads queued at once held
        ``/health`` for 4 s (a liveness probe fails on that), and with a model
        that takes seconds to load, for minutes. Made on first use, in the
        event loop.
        """
        if self._reloads is None:
            self._reloads = anyio.CapacityLimiter(1)
        return self._reloads

    async def _read(self, model, datas):
        """Decode a request's images in worker threads, each image on its own.

        Not in the micro-batcher's thread, which would hold every other
        request's model call while it decodes: a batch of 16 PNGs of 64
        megapixels (5 MB of base64) held a one-photo request for 10 s. At
        most ``settings.threads`` images are decoded at once over all
        requests, as the batcher's loader did, which bounds the memory that
        decoding takes; a request queues at most that many images at a time,
        so another request waits for about one image's decode, not for a
        whole batch.

        Returns
        -------
        read : list of tuple
            ``(image resized for the model or None, why it could not be read
            or None, its quality or None)`` for each of ``datas``.
        """
        n_threads = self.decoders.total_tokens
        read = [None] * len(datas)

        async def lane(first):  # the images first, first + n_threads, ...
            for i in range(first, len(datas), n_threads):
                images, reasons, qualities = await anyio.to_thread.run_sync(
                    read_images, model.pipe, [datas[i]], limiter=self.decoders)
                read[i] = ((images[0], None, qualities[0]) if len(images)
                           else (None, reasons[0], None))

        # a request queues at most n_threads images at a time for the limiter
        # (first come, first served): another request's image is next in line
        # once one of them is done, not after the whole batch
        async with anyio.create_task_group() as group:
            for first in range(min(n_threads, len(datas))):
                group.start_soon(lane, first)
        return read

    def _log(self, bodies, endpoint, request_id=None):
        """One prediction-log line per answer (never the image), with the
        request's ID when it has one."""
        for body in bodies:
            extra = ({"unknown_reason": body.get("unknown_reason")}
                     if body["success"]
                     else {"error_message": body["error_message"]})
            if request_id is not None:
                extra["request_id"] = request_id
            self.prediction_log.write(
                body.get("predicted_class"), body.get("confidence"),
                quality=body.get("quality"), model_version=body["model_version"],
                endpoint=endpoint, **extra)

    def add_feedback(self, data, label, *, predicted_class=None,
                     model_version=None):
        """Store a correction (blocking: decodes the image, writes two files).

        Run it in a thread of :attr:`decoders`.

        Returns
        -------
        entry : dict
            :meth:`FeedbackStore.add`'s logged line.
        """
        entry = self.feedback.add(data, label, predicted_class=predicted_class,
                                  model_version=model_version,
                                  known=self.known_classes())
        self.metrics.feedback.labels("new" if entry["new"] else "known").inc()
        return entry

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
