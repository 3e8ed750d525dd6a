"""An HTTP prediction service for a model directory (FastAPI + uvicorn).

:func:`create_app` builds the application; the model is loaded and warmed up
in its lifespan, never at import. Endpoints:

- ``POST /predict``: JSON with a base64 image; ``POST /predict/file``: a
  multipart upload; ``POST /predict/batch``: several base64 images;
- ``GET /health`` (liveness and counters), ``GET /ready`` (readiness),
  ``GET /metrics`` (Prometheus text format);
- ``GET /``: a page for people that uploads photos to ``POST /predict`` and
  shows the answers (public; its API calls carry the key the user enters).

Every error is JSON ``{"success": false, "error_message": ...}`` with status
400 (invalid base64, undecodable image), 401 (missing or wrong ``X-API-Key``
when a key is configured), 413 (body over the limit), 415 (unsupported content
type) or 422 (request schema). Requests carry image bytes only: no request
can make the server read a path on its disk.

This is the only module of hybridclf that imports FastAPI; install the
``serve`` extra (``pip install hybridclf[serve]``).
"""

import asyncio
import base64
import binascii
import logging
import os
import secrets
import threading
import time
from contextlib import asynccontextmanager

import numpy as np
from fastapi import Depends, FastAPI, File, Query, Request, UploadFile
from fastapi.exceptions import HTTPException, RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from .exceptions import ImageLoadError

__all__ = [
    "BatchPredictRequest",
    "BatchPredictResponse",
    "HealthResponse",
    "PredictRequest",
    "PredictResponse",
    "create_app",
    "serve",
]

logger = logging.getLogger(__name__)

_JSON_TYPES = ("application/json",)
_FILE_TYPES = ("image/", "application/octet-stream")


# --------------------------------------------------------------------------
# schemas
# --------------------------------------------------------------------------
class PredictRequest(BaseModel):
    """One image to classify, base64-encoded."""

    model_config = ConfigDict(extra="forbid")

    image_data: str = Field(
        ..., min_length=1,
        description="The encoded image file (JPEG, PNG, ...) in base64; a "
        "'data:image/...;base64,' prefix is accepted.",
    )
    confidence_threshold: float = Field(
        0.5, ge=0.0, le=1.0,
        description="Below this top probability the class is 'unknown'.",
    )
    return_probabilities: bool = Field(
        True, description="Include the probability of every class.")


class BatchPredictRequest(BaseModel):
    """Several images to classify in one call, each base64-encoded."""

    model_config = ConfigDict(extra="forbid")

    images: list[str] = Field(..., min_length=1,
                              description="Base64-encoded image files.")
    confidence_threshold: float = Field(0.5, ge=0.0, le=1.0)
    return_probabilities: bool = True


class PhotoQuality(BaseModel):
    """The quality of the photo; it never changes the class by itself."""

    ok: bool = Field(..., description="No quality issue was found.")
    issues: list[str] = Field(
        default_factory=list,
        description="Among 'blurry', 'too_dark', 'too_bright' (over-exposed), "
        "'too_small' and 'low_information'.")
    message: str = Field("", description="The issues in a sentence for people, "
                         "or empty.")


class PredictResponse(BaseModel):
    """The prediction for one image (or why there is none)."""

    success: bool
    predicted_class: str | None = None
    confidence: float | None = None
    unknown_reason: str | None = Field(
        None, description="Why predicted_class is 'unknown': 'unlike any "
        "training photo' (novelty) or 'low confidence' (top probability under "
        "confidence_threshold); null otherwise.")
    quality: PhotoQuality | None = None
    probabilities: dict[str, float] | None = None
    processing_time_ms: float
    model_version: str
    error_message: str | None = None


class BatchPredictResponse(BaseModel):
    """The predictions of a batch, in the order of the request."""

    success: bool
    results: list[PredictResponse]
    processing_time_ms: float
    model_version: str


class HealthResponse(BaseModel):
    """Liveness and counters of the service."""

    status: str
    model_loaded: bool
    version: str
    uptime_seconds: float
    memory_usage_mb: float
    predictions_count: int
    average_response_time_ms: float


class ErrorResponse(BaseModel):
    """The body of every error."""

    success: bool = False
    error_message: str


_ERRORS = {code: {"model": ErrorResponse} for code in (400, 401, 413, 415, 422)}


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def _memory_mb():
    """Resident memory of this process in MB."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:  # pragma: no cover - not Linux
        pass
    import resource  # pragma: no cover

    usage = resource.getrusage(resource.RUSAGE_SELF)  # pragma: no cover
    return usage.ru_maxrss / 1024.0  # pragma: no cover


def _error(status, message):
    return JSONResponse({"success": False, "error_message": message},
                        status_code=status)


def _decode_base64(text, what="image_data"):
    """The bytes of a base64 string; HTTP 400 naming the field when invalid."""
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    try:
        data = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise HTTPException(
            400, f"The '{what}' field is not valid base64 ({exc}). Send the image "
            "file's bytes encoded with standard base64.") from exc
    if not data:
        raise HTTPException(400, f"The '{what}' field decodes to no bytes. Send a "
                            "non-empty image file.")
    return data


class _State:
    """What the app knows at run time: the model and the counters."""

    def __init__(self):
        self.pipe = None
        self.info = {}
        self.model_version = "unloaded"
        self.ood_thresholds = None
        self.novelty = None
        self.batcher = None
        self.started = time.monotonic()
        self.lock = threading.Lock()
        self.predictions = 0
        self.total_ms = 0.0
        self.requests_timed = 0

    def record(self, n_images, elapsed_ms):
        with self.lock:
            self.predictions += n_images
            self.total_ms += elapsed_ms
            self.requests_timed += 1


class _Metrics:
    """Prometheus collectors in a registry of their own (one per app)."""

    def __init__(self):
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter(
            "hybridclf_requests_total", "HTTP requests by endpoint and status.",
            ["endpoint", "method", "status"], registry=self.registry)
        self.latency = Histogram(
            "hybridclf_request_latency_seconds", "HTTP request latency.",
            ["endpoint"], registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.inference = Histogram(
            "hybridclf_inference_seconds", "Model inference time per call.",
            ["endpoint"], registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                     2.5))
        self.errors = Counter(
            "hybridclf_errors_total", "Requests answered with an error status.",
            ["endpoint", "status"], registry=self.registry)
        self.batch_size = Histogram(
            "hybridclf_batch_images", "Images per model call (micro-batching "
            "joins the requests that wait while the model is busy).",
            registry=self.registry, buckets=(1, 2, 4, 8, 16, 32, 64))
        self.images = Counter(
            "hybridclf_images_predicted_total", "Images predicted.",
            registry=self.registry)


class _MetricsMiddleware:
    """Pure ASGI middleware: count every HTTP request and time it."""

    def __init__(self, app, metrics, endpoints):
        self.app = app
        self.metrics = metrics
        self.endpoints = frozenset(endpoints)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        endpoint = path if path in self.endpoints else "other"
        status = {"code": 500}
        start = time.perf_counter()

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            code = str(status["code"])
            self.metrics.requests.labels(endpoint, scope.get("method", ""),
                                         code).inc()
            self.metrics.latency.labels(endpoint).observe(
                time.perf_counter() - start)
            if status["code"] >= 400:
                self.metrics.errors.labels(endpoint, code).inc()


class _ApiKeyMiddleware:
    """Pure ASGI middleware: 401 for prediction requests without the key.

    Checked before the body is read, so that a client without the key cannot
    make the server parse anything.
    """

    def __init__(self, app, api_key, prefix="/predict"):
        self.app = app
        self.api_key = api_key.encode()
        self.prefix = prefix

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope.get("path", "").startswith(
                self.prefix):
            given = dict(scope.get("headers", ())).get(b"x-api-key")
            if given is None:
                await _error(401, "Missing API key: send it in the X-API-Key "
                             "header.")(scope, receive, send)
                return
            if not secrets.compare_digest(given, self.api_key):
                await _error(401, "Wrong API key in the X-API-Key header.")(
                    scope, receive, send)
                return
        await self.app(scope, receive, send)


class _BodyLimitMiddleware:
    """Pure ASGI middleware: answer 413 to bodies over ``max_bytes``.

    A declared ``Content-Length`` over the limit is refused before the body is
    read; a streamed (chunked) body is counted as it arrives and refused as
    soon as it passes the limit.
    """

    def __init__(self, app, max_bytes):
        self.app = app
        self.max_bytes = max_bytes

    def _message(self, size=None):
        got = "" if size is None else f" (got {size} bytes)"
        return (f"The request body is over the server's limit of {self.max_bytes} "
                f"bytes{got}. Send a smaller image, or start the server with a "
                "larger --max-body-mb.")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    size = int(value)
                except ValueError:
                    await _error(400, "The Content-Length header is not an "
                                 "integer.")(scope, receive, send)
                    return
                if size > self.max_bytes:
                    await _error(413, self._message(size))(scope, receive, send)
                    return
        received = 0
        started = False

        async def receive_wrapper():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, self._message())
            return message

        async def send_wrapper(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive_wrapper, send_wrapper)
        except HTTPException as exc:
            if exc.status_code != 413 or started:
                raise
            await _error(413, exc.detail)(scope, receive, send)


# --------------------------------------------------------------------------
# the app
# --------------------------------------------------------------------------
def create_app(model_dir, *, api_key=None, max_body_mb=10.0, max_batch=32,
               use_ood=True, allow_pickle=False, threads=None):
    """Build the FastAPI application that serves a model directory.

    Nothing is loaded here: the model is loaded and warmed up with one
    prediction when the app starts (its lifespan), and ``GET /ready`` answers
    503 until then.

    Predictions are micro-batched: one thread runs the model, and requests
    that arrive while it is busy are predicted together in its next call (at
    most ``max_batch`` images). A lone request is never held back; under
    concurrent load the images share one pass through the feature blocks
    instead of fighting over the cores.

    Parameters
    ----------
    model_dir : str or os.PathLike
        A folder written by :func:`~hybridclf.save_model` or ``hybridclf
        train``.

    api_key : str or None, default=None
        When set, every prediction request must carry it in the ``X-API-Key``
        header (401 otherwise). ``/health``, ``/ready``, ``/metrics`` and the
        docs stay open for probes and scrapers.

    max_body_mb : float, default=10.0
        Largest accepted request body in megabytes (413 above it).

    max_batch : int, default=32
        Most images in one ``POST /predict/batch`` call (422 above it).

    use_ood : bool, default=True
        Also answer "unknown" for images unlike any training photo: the
        model's novelty check (``open_set`` in ``model.json`` and its
        embedding index), or the per-block out-of-distribution thresholds of
        a model trained before it.

    allow_pickle : bool, default=False
        Load a pickled model (runs code from the file); see
        :func:`~hybridclf.load_model`.

    threads : int or None, default=None
        Threads each prediction may use: every ``n_jobs`` of the model (the
        loader, the feature blocks) is set to it, whatever it was in
        training. With two or more, the feature blocks of a single image run
        side by side, which cuts its latency. None uses every core.

    Returns
    -------
    app : fastapi.FastAPI
        The application; run it with uvicorn, or :func:`serve`.

    Raises
    ------
    ValueError
        When ``max_body_mb`` or ``max_batch`` is not positive.
    """
    from . import __version__
    from ._microbatch import MicroBatcher
    from .persistence import load_model, read_model_info
    from .prediction import (
        LOW_CONFIDENCE,
        UNKNOWN,
        open_set_options,
        predict_open_set,
        predict_with_reasons,
    )
    from .quality import quality_message

    if not max_body_mb > 0:
        raise ValueError("The 'max_body_mb' parameter of create_app must be a "
                         f"number > 0. Got {max_body_mb!r} instead.")
    if int(max_batch) < 1:
        raise ValueError("The 'max_batch' parameter of create_app must be an int "
                         f">= 1. Got {max_batch!r} instead.")
    model_dir = os.fspath(model_dir)
    state = _State()
    metrics = _Metrics()

    @asynccontextmanager
    async def lifespan(app):
        import anyio

        def load():
            pipe = load_model(model_dir, allow_pickle=allow_pickle)
            _set_threads(pipe, threads)
            info = read_model_info(model_dir)
            warm = np.full((32, 32, 3), 127, dtype=np.uint8)
            predict_open_set(pipe, [warm])
            return pipe, info

        start = time.perf_counter()
        pipe, info = await anyio.to_thread.run_sync(load)
        state.info = info
        state.model_version = (f"{info.get('hybridclf_version', '?')}+"
                               f"{str(info.get('sha256', ''))[:12]}")
        options = open_set_options(model_dir, info)
        state.ood_thresholds = options["ood_thresholds"] if use_ood else None
        state.novelty = options["novelty"] if use_ood else None
        state.pipe = pipe
        # concurrent requests share one model call, run in one thread
        state.batcher = MicroBatcher(classify, max_items=max_batch)
        state.started = time.monotonic()
        logger.info("Loaded and warmed up the model %s in %.2f s", model_dir,
                    time.perf_counter() - start)
        yield
        await anyio.to_thread.run_sync(state.batcher.close)
        state.pipe = None

    app = FastAPI(
        title="hybridclf prediction service",
        version=__version__,
        description="Classify images with a hybridclf model directory.",
        lifespan=lifespan,
    )
    app.state.hybridclf = state
    app.state.metrics = metrics

    # ---- errors: one JSON shape for all
    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request, exc):
        return JSONResponse({"success": False, "error_message": str(exc.detail)},
                            status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request, exc):
        parts = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            parts.append(f"{loc or 'body'}: {err.get('msg', 'invalid')}")
        return JSONResponse(
            {"success": False,
             "error_message": "Invalid request: " + "; ".join(parts)
             + ". See /docs for the request schema."},
            status_code=422)

    @app.exception_handler(Exception)
    async def _unexpected(request, exc):  # pragma: no cover - a bug
        logger.exception("Unexpected error on %s", request.url.path)
        return _error(500, f"Internal error ({type(exc).__name__}); see the "
                      "server log.")

    # ---- dependencies: ``async`` because they only read the request (a plain
    # ``def`` would cost a hop to the thread pool on every call)
    async def check_api_key(request: Request):
        if api_key is None:
            return
        given = request.headers.get("x-api-key")
        if given is None:
            raise HTTPException(401, "Missing API key: send it in the X-API-Key "
                                "header.")
        if not secrets.compare_digest(given.encode(), api_key.encode()):
            raise HTTPException(401, "Wrong API key in the X-API-Key header.")

    def content_type(*accepted):
        async def check(request: Request):
            value = request.headers.get("content-type", "")
            if not any(value.lower().startswith(a) for a in accepted):
                raise HTTPException(
                    415, f"Unsupported Content-Type {value or '(none)'!r} for "
                    f"{request.url.path}; send {' or '.join(accepted)}.")
        return check

    async def ready():
        if state.pipe is None:
            raise HTTPException(503, "The model is not loaded yet.")
        return state.pipe

    # ---- prediction
    def classify(items):
        """((label, reason), proba, quality, error, seconds) per image bytes.

        In one model call.

        Runs in the micro-batcher's thread on the images of every request
        waiting; "unknown" from the probability threshold is left to each
        request, the out-of-distribution check is done here.
        """
        pipe = state.pipe
        metrics.batch_size.observe(len(items))
        start = time.perf_counter()
        errors = {}
        options = {"ood_thresholds": state.ood_thresholds,
                   "novelty": state.novelty, "quality": True}
        try:
            result = predict_with_reasons(pipe, items, **options)
        except ImageLoadError:
            # some image is unreadable: find which (decoding only), then
            # predict the others together
            loader = pipe.steps[0][1]
            for i, item in enumerate(items):
                try:
                    loader.transform([item])
                except ImageLoadError as exc:
                    errors[i] = exc.failures[0][1] if exc.failures else str(exc)
            good = [item for i, item in enumerate(items) if i not in errors]
            result = {"labels": [], "proba": [], "reasons": [], "quality": []}
            if good:
                result = predict_with_reasons(pipe, good, **options)
        predicted = iter(zip(zip(result["labels"], result["reasons"]),
                             result["proba"], result["quality"]))
        outcomes = [(None, None, None, errors[i]) if i in errors
                    else (*next(predicted), None) for i in range(len(items))]
        seconds = time.perf_counter() - start
        return [(*outcome, seconds) for outcome in outcomes]

    async def predict_bytes(items, threshold, with_proba, endpoint):
        """PredictResponse dicts for a list of bytes (or error messages).

        The model runs in the micro-batcher's thread; the event loop only
        waits for it, so other requests are read meanwhile.
        """
        start = time.perf_counter()
        results = [None] * len(items)
        todo = [i for i, item in enumerate(items) if isinstance(item, bytes)]
        for i, item in enumerate(items):
            if not isinstance(item, bytes):
                results[i] = {"success": False, "error_message": str(item)}
        outcomes = []
        if todo:
            outcomes = await asyncio.wrap_future(
                state.batcher.submit([items[i] for i in todo]))
        if outcomes:
            metrics.inference.labels(endpoint).observe(outcomes[0][4])
        classes = [str(c) for c in state.pipe.steps[-1][1].classes_]
        n_predicted = 0
        for i, (answer, p, quality, error, _) in zip(todo, outcomes):
            if error is not None:
                results[i] = {"success": False, "error_message":
                              f"Cannot decode image {i}: {error}."}
                continue
            n_predicted += 1
            label, reason = answer
            if not reason and p.max() < threshold:
                label, reason = UNKNOWN, LOW_CONFIDENCE
            results[i] = {
                "success": True,
                "predicted_class": str(label),
                "unknown_reason": reason or None,
                "quality": {**quality, "message": quality_message(
                    quality["issues"])},
                "confidence": float(p.max()),
                "probabilities": ({c: float(v) for c, v in zip(classes, p)}
                                  if with_proba else None),
            }
        metrics.images.inc(n_predicted)
        elapsed = (time.perf_counter() - start) * 1000.0
        state.record(n_predicted, elapsed)
        for r in results:
            r.setdefault("processing_time_ms", elapsed)
            r["model_version"] = state.model_version
        return results

    async def single(data, threshold, with_proba, endpoint):
        result = (await predict_bytes([data], threshold, with_proba, endpoint))[0]
        if not result["success"]:
            raise HTTPException(400, result["error_message"].replace(
                "image 0", "the uploaded image"))
        return result

    auth = [Depends(check_api_key)]

    @app.post("/predict", response_model=PredictResponse, responses=_ERRORS,
              dependencies=[*auth, Depends(content_type(*_JSON_TYPES))])
    async def predict(body: PredictRequest, pipe=Depends(ready)):
        """Classify one base64-encoded image."""
        data = _decode_base64(body.image_data)
        return await single(data, body.confidence_threshold,
                            body.return_probabilities, "/predict")

    @app.post("/predict/file", response_model=PredictResponse, responses=_ERRORS,
              dependencies=[*auth, Depends(content_type("multipart/form-data"))])
    async def predict_file(file: UploadFile = File(..., description="An image file."),
                           confidence_threshold: float = Query(
                               0.5, ge=0.0, le=1.0, description="Below this top "
                               "probability the class is 'unknown'."),
                           return_probabilities: bool = Query(True),
                           pipe=Depends(ready)):
        """Classify one uploaded image file (multipart/form-data, field 'file')."""
        declared = (file.content_type or "").lower()
        if declared and not declared.startswith(_FILE_TYPES):
            raise HTTPException(
                415, f"The uploaded file {file.filename!r} has the unsupported "
                f"type {declared!r}; send an image (image/jpeg, image/png, ...).")
        data = await file.read()
        if not data:
            raise HTTPException(400, f"The uploaded file {file.filename!r} is "
                                "empty. Send an image file.")
        return await single(data, confidence_threshold, return_probabilities,
                            "/predict/file")

    @app.post("/predict/batch", response_model=BatchPredictResponse,
              responses=_ERRORS,
              dependencies=[*auth, Depends(content_type(*_JSON_TYPES))])
    async def predict_batch(body: BatchPredictRequest, pipe=Depends(ready)):
        """Classify several base64-encoded images; each result says if it failed."""
        if len(body.images) > max_batch:
            raise HTTPException(
                422, f"Invalid request: images has {len(body.images)} items; this "
                f"server accepts at most {max_batch} per call. Split the batch.")
        start = time.perf_counter()
        items = []
        for i, text in enumerate(body.images):
            try:
                items.append(_decode_base64(text, what=f"images[{i}]"))
            except HTTPException as exc:
                items.append(exc.detail)
        results = await predict_bytes(items, body.confidence_threshold,
                                      body.return_probabilities, "/predict/batch")
        return {"success": all(r["success"] for r in results), "results": results,
                "processing_time_ms": (time.perf_counter() - start) * 1000.0,
                "model_version": state.model_version}

    # ---- the page for people
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def web_page():
        """The upload page; public, while its calls to /predict need the key."""
        from ._webpage import PAGE_HEADERS, page_html

        return HTMLResponse(page_html(), headers=PAGE_HEADERS)

    # ---- probes and metrics
    @app.get("/health", response_model=HealthResponse)
    def health():
        """Liveness: the process answers; counters since start."""
        with state.lock:
            count, total, timed = (state.predictions, state.total_ms,
                                   state.requests_timed)
        return {
            "status": "healthy" if state.pipe is not None else "starting",
            "model_loaded": state.pipe is not None,
            "version": __version__,
            "uptime_seconds": time.monotonic() - state.started,
            "memory_usage_mb": _memory_mb(),
            "predictions_count": count,
            "average_response_time_ms": total / timed if timed else 0.0,
        }

    @app.get("/ready", responses={503: {"model": ErrorResponse}})
    async def ready_probe():
        """Readiness: 200 once the model is loaded and warmed up, else 503."""
        await ready()
        return {"ready": True, "model_version": state.model_version,
                "classes": [str(c) for c in state.info.get("classes", [])]}

    @app.get("/metrics", response_class=Response)
    def prometheus_metrics():
        """Prometheus text format: requests, latency, inference time, errors."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(metrics.registry),
                        media_type=CONTENT_TYPE_LATEST)

    endpoints = [r.path for r in app.routes if hasattr(r, "path")]
    app.add_middleware(_BodyLimitMiddleware,
                       max_bytes=int(max_body_mb * 1024 * 1024))
    if api_key is not None:
        app.add_middleware(_ApiKeyMiddleware, api_key=api_key)
    app.add_middleware(_MetricsMiddleware, metrics=metrics, endpoints=endpoints)
    return app


# --------------------------------------------------------------------------
# running it
# --------------------------------------------------------------------------
_ENV = {"model_dir": "HYBRIDCLF_SERVE_MODEL_DIR",
        "max_body_mb": "HYBRIDCLF_SERVE_MAX_BODY_MB",
        "api_key_env": "HYBRIDCLF_SERVE_API_KEY_ENV",
        "threads": "HYBRIDCLF_SERVE_THREADS"}


def _set_threads(pipe, threads):
    """Set the ``n_jobs`` of every step of a fitted pipeline to ``threads``.

    A ``FeatureUnion``'s own ``n_jobs`` is left as it is: it would start
    worker processes (and copy the model to them) on every call; its blocks
    run side by side in threads anyway (see
    :func:`~hybridclf.prediction.transform_features`).
    """
    from sklearn.pipeline import FeatureUnion

    n_jobs = -1 if threads is None else int(threads)
    params = pipe.get_params()
    names = [k for k, v in params.items()
             if k.endswith("n_jobs") and (v is None or isinstance(v, int))
             and not isinstance(params.get(k.rpartition("__")[0]), FeatureUnion)]
    pipe.set_params(**{name: n_jobs for name in names})


def app_from_environment():
    """Build the app from ``HYBRIDCLF_SERVE_*`` variables (for uvicorn workers).

    Returns
    -------
    app : fastapi.FastAPI
        :func:`create_app` of ``$HYBRIDCLF_SERVE_MODEL_DIR``, with the API key
        read from the variable named by ``$HYBRIDCLF_SERVE_API_KEY_ENV``.
    """
    key_env = os.environ.get(_ENV["api_key_env"]) or None
    return create_app(
        os.environ[_ENV["model_dir"]],
        api_key=os.environ.get(key_env) if key_env else None,
        max_body_mb=float(os.environ.get(_ENV["max_body_mb"], "10")),
        threads=int(os.environ.get(_ENV["threads"]) or 0) or None,
    )


def serve(model_dir, *, host="127.0.0.1", port=8000, workers=1, max_body_mb=10.0,
          api_key_env=None, threads=None, log_level="info"):
    """Run the prediction service with uvicorn until interrupted.

    Parameters
    ----------
    model_dir : str or os.PathLike
        The model directory to serve.

    host : str, default="127.0.0.1"
        Address to bind; "0.0.0.0" to accept other machines.

    port : int, default=8000
        TCP port.

    workers : int, default=1
        Worker processes; each loads its own copy of the model.

    max_body_mb : float, default=10.0
        Largest accepted request body in megabytes.

    api_key_env : str or None, default=None
        Name of the environment variable that holds the API key. The key
        itself never appears on a command line.

    threads : int or None, default=None
        Threads per prediction in each worker (see :func:`create_app`); None
        shares the cores among the workers.

    log_level : str, default="info"
        uvicorn's log level.

    Raises
    ------
    ValueError
        When ``api_key_env`` names a variable that is not set or is empty, or
        ``workers`` is below 1.
    """
    import uvicorn

    from .persistence import read_model_info

    read_model_info(model_dir)  # fail now, with a clear message, if it is wrong
    if int(workers) < 1:
        raise ValueError("The 'workers' parameter of serve must be an int >= 1. "
                         f"Got {workers!r} instead.")
    if api_key_env is not None and not os.environ.get(api_key_env):
        raise ValueError(
            f"The environment variable {api_key_env!r} named by 'api_key_env' is "
            "not set or empty. Export the API key in it before starting the "
            "server, or leave --api-key-env out to serve without a key.")
    os.environ[_ENV["model_dir"]] = os.path.abspath(os.fspath(model_dir))
    os.environ[_ENV["max_body_mb"]] = str(max_body_mb)
    os.environ[_ENV["api_key_env"]] = api_key_env or ""
    if threads is None:
        threads = max(1, (os.cpu_count() or 1) // int(workers))
    os.environ[_ENV["threads"]] = str(int(threads))
    logger.info("Serving %s on http://%s:%d with %d worker(s)", model_dir, host,
                port, workers)
    uvicorn.run("hybridclf.serve:app_from_environment", factory=True, host=host,
                port=int(port), workers=int(workers), log_level=log_level)


def try_service(model_dir, image_path, *, timeout=60.0):
    """Start the service on a free loopback port, send one image, stop it.

    A smoke test of a model directory as a service, as ``hybridclf quickstart``
    runs it: the real app under a real uvicorn server on ``127.0.0.1``, one
    ``POST /predict`` request over HTTP, then a clean shutdown.

    Parameters
    ----------
    model_dir : str or os.PathLike
        The model directory to serve.

    image_path : str or os.PathLike
        An image file to send, base64-encoded as a client would.

    timeout : float, default=60.0
        Seconds to wait for the server to start and to answer.

    Returns
    -------
    url : str
        The ``/predict`` URL that answered.

    response : dict
        The JSON answer of ``POST /predict``.

    Raises
    ------
    RuntimeError
        When the server does not start or answer within ``timeout``.
    """
    import base64
    import json
    import socket
    import threading
    import time
    import urllib.request

    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(model_dir), host="127.0.0.1", port=port,
                            log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(
                    f"The service for {os.fspath(model_dir)!r} did not start on "
                    f"127.0.0.1:{port} within {timeout:.0f} s.")
            time.sleep(0.02)
        with open(image_path, "rb") as fh:
            body = json.dumps(
                {"image_data": base64.b64encode(fh.read()).decode("ascii")}
            ).encode()
        url = f"http://127.0.0.1:{port}/predict"
        request = urllib.request.Request(
            url, data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return url, json.loads(answer.read())
    finally:
        server.should_exit = True
        thread.join(timeout=timeout)
