"""The routes of the service, one ``APIRouter`` per concern.

- :data:`predict_router`: ``POST /predict``, ``/predict/file`` and
  ``/predict/batch`` (behind the API key);
- :data:`feedback_router`: ``POST /feedback`` and ``/feedback/file``,
  corrections (behind the API key; 404 without ``--feedback-dir``);
- :data:`admin_router`: ``POST /admin/reload``, a new model without downtime
  (behind the API key; without one, loopback clients only);
- :data:`page_router`: ``GET /``, the upload page for people;
- :data:`probes_router`: ``GET /health``, ``/ready`` and ``/metrics``.

A route reads the service through a dependency (``request.app.state``) and
leaves the model work to :meth:`Service.predict`; a new concern gets a router
of its own, included in ``_app.ROUTERS``.
"""

import errno
import functools
import os
import time
from typing import Annotated

import anyio
from fastapi import APIRouter, Body, Depends, File, Form, Query, Request, UploadFile
from fastapi.exceptions import HTTPException
from fastapi.responses import HTMLResponse, Response

from ..exceptions import ModelLoadError
from ..feedback import check_label
from . import _schemas as schemas
from ._dependencies import (
    FORM_TYPE,
    JSON_TYPE,
    admin_access,
    content_type,
    feedback_service,
    get_service,
    media_type,
    ready_service,
    require_admin_key,
    require_api_key,
)
from ._metrics import cpu_percent, memory_mb
from ._page import PAGE_HEADERS, page_html
from ._schemas import ERRORS
from ._uploads import Upload, decode_uploads

__all__ = ["admin_router", "feedback_router", "page_router", "predict_router",
           "probes_router"]

predict_router = APIRouter(dependencies=[Depends(require_api_key)])
feedback_router = APIRouter(dependencies=[Depends(require_api_key)])
admin_router = APIRouter(dependencies=[Depends(require_admin_key),
                                       Depends(admin_access)])
page_router = APIRouter()
probes_router = APIRouter()

_UPLOADED = "the uploaded image"


def _is_image_upload(declared):
    """Whether a multipart part's declared type is an image (or unknown bytes)."""
    media = media_type(declared)
    return not media or media.startswith("image/") or (
        media == "application/octet-stream")


async def _predict_one(service, upload, threshold, with_proba, endpoint,
                       neighbours):
    """The answer for one image; 400 when it holds no readable image.

    An upload that holds its error (bad base64, an empty file) goes through
    ``service.predict`` too, which logs every answer as a batch item's.
    """
    body, = await service.predict([upload], names=[_UPLOADED], threshold=threshold,
                                  with_proba=with_proba, endpoint=endpoint,
                                  neighbours=neighbours)
    if not body["success"]:
        raise HTTPException(400, body["error_message"])
    return body


@predict_router.post("/predict", response_model=schemas.PredictResponse,
                     responses=ERRORS,
                     dependencies=[Depends(content_type(JSON_TYPE))])
async def predict(body: schemas.PredictRequest, service=Depends(ready_service)):
    """Classify one base64-encoded image."""
    upload, = await decode_uploads([body.image_data], ["image_data"])
    return await _predict_one(service, upload, body.confidence_threshold,
                              body.return_probabilities, "/predict",
                              body.neighbours)


async def _file_upload(request, file, route):
    """The :class:`Upload` of a multipart request's one ``file`` part.

    415 for a part that is not an image, 400 for two ``file`` parts; an
    empty file is an upload holding its error.
    """
    n_files = len((await request.form()).getlist("file"))
    if n_files > 1:
        raise HTTPException(
            400, f"The request holds {n_files} 'file' parts; {route} takes one "
            "image. Send one per request (or several to /predict/batch).")
    declared = (file.content_type or "").lower()
    if not _is_image_upload(declared):
        raise HTTPException(
            415, f"The uploaded file {file.filename!r} has the unsupported "
            f"type {declared!r}; send an image (image/jpeg, image/png, ...).")
    upload = Upload(data=await file.read())
    if not upload.data:
        upload = Upload(error=f"The uploaded file {file.filename!r} is empty. Send "
                        "an image file.")
    return upload


@predict_router.post("/predict/file", response_model=schemas.PredictResponse,
                     responses=ERRORS,
                     dependencies=[Depends(content_type(FORM_TYPE))])
async def predict_file(request: Request,
                       file: UploadFile = File(..., description="An image file."),
                       confidence_threshold: float | None = Query(
                           None, ge=0.0, le=1.0,
                           description=schemas.THRESHOLD_HELP),
                       return_probabilities: bool = Query(True),
                       neighbours: Annotated[schemas.NeighboursQuery, Query(
                           description=schemas.NEIGHBOURS_HELP)] = 0,
                       service=Depends(ready_service)):
    """Classify one uploaded image file (multipart/form-data, field 'file')."""
    upload = await _file_upload(request, file, "/predict/file")
    return await _predict_one(service, upload, confidence_threshold,
                              return_probabilities, "/predict/file", neighbours)


@predict_router.post("/predict/batch", response_model=schemas.BatchPredictResponse,
                     responses=ERRORS,
                     dependencies=[Depends(content_type(JSON_TYPE))])
async def predict_batch(body: schemas.BatchPredictRequest,
                        service=Depends(ready_service)):
    """Classify several base64-encoded images; each result says if it failed."""
    max_batch = service.settings.max_batch
    if len(body.images) > max_batch:
        raise HTTPException(
            422, f"Invalid request: images has {len(body.images)} items; this "
            f"server accepts at most {max_batch} per call. Split the batch.")
    start = time.perf_counter()
    uploads = await decode_uploads(
        body.images, [f"images[{i}]" for i in range(len(body.images))])
    results = await service.predict(
        uploads, names=[f"image {i}" for i in range(len(uploads))],
        threshold=body.confidence_threshold, with_proba=body.return_probabilities,
        endpoint="/predict/batch", neighbours=body.neighbours)
    return {"success": all(r["success"] for r in results), "results": results,
            "processing_time_ms": (time.perf_counter() - start) * 1000.0,
            # the model that answered, even if a reload swapped another in since
            "model_version": results[0]["model_version"]}


def _storage_problem(exc, folder):
    """The status and message of a feedback folder that cannot be written.

    507 (Insufficient Storage) for a full disk or quota, 503 otherwise; the
    store has written nothing (:meth:`FeedbackStore.add` undoes a half write).
    """
    reason = exc.strerror or type(exc).__name__
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return 507, (
            f"The feedback folder {folder!r} is full ({reason}): nothing was "
            "stored. Free space on its disk (or raise the quota), or restart "
            "the server with another --feedback-dir, then send the correction "
            "again. Predictions are not affected.")
    return 503, (
        f"The feedback folder {folder!r} cannot be written ({reason}): nothing "
        "was stored. Make it writable by the server's user, or restart the "
        "server with another --feedback-dir, then send the correction again. "
        "Predictions are not affected.")


async def _store_feedback(service, upload, label, predicted_class, model_version):
    """Store one correction: 422 for an unsafe label, 400 for a bad image."""
    try:
        label = check_label(label, known=service.known_classes())  # stored: NFC
    except ValueError as exc:
        raise HTTPException(422, f"Invalid request: label: {exc}") from None
    if upload.error is not None:
        raise HTTPException(400, upload.error)
    try:
        entry = await anyio.to_thread.run_sync(functools.partial(
            service.add_feedback, upload.data, label,
            predicted_class=predicted_class, model_version=model_version),
            limiter=service.decoders)  # decoding takes memory: a few at once
    except ValueError as exc:  # not an image that training can read
        raise HTTPException(400, str(exc)) from None
    except OSError as exc:  # the folder: full, read-only, gone
        raise HTTPException(*_storage_problem(exc, service.feedback.directory)
                            ) from None
    return {"success": True, **{k: entry[k] for k in ("label", "file", "sha256",
                                                      "new", "class_photos",
                                                      "also_under")}}


@feedback_router.post("/feedback", response_model=schemas.FeedbackResponse,
                      responses={**ERRORS, 404: {"model": schemas.ErrorResponse}},
                      dependencies=[Depends(content_type(JSON_TYPE))])
async def feedback(body: schemas.FeedbackRequest,
                   service=Depends(feedback_service)):
    """Store a photo the model got wrong under its right class (base64 JSON).

    The photo goes to ``<feedback dir>/<label>/<sha256>.<ext>`` (the same
    photo twice is stored once) and a line to ``feedback.jsonl``. 404 when the
    server was started without ``--feedback-dir``.
    """
    upload, = await decode_uploads([body.image_data], ["image_data"])
    return await _store_feedback(service, upload, body.label, body.predicted_class,
                                 body.model_version)


@feedback_router.post("/feedback/file", response_model=schemas.FeedbackResponse,
                      responses={**ERRORS, 404: {"model": schemas.ErrorResponse}},
                      dependencies=[Depends(content_type(FORM_TYPE))])
async def feedback_file(request: Request,
                        file: UploadFile = File(..., description="An image file."),
                        label: str = Form(..., description=schemas.CORRECTION),
                        predicted_class: str | None = Form(None, max_length=200),
                        model_version: str | None = Form(None, max_length=200),
                        service=Depends(feedback_service)):
    """The same as ``POST /feedback``, the photo as a multipart upload."""
    upload = await _file_upload(request, file, "/feedback/file")
    return await _store_feedback(service, upload, label, predicted_class,
                                 model_version)


@admin_router.post("/admin/reload", response_model=schemas.ReloadResponse,
                   responses={code: {"model": schemas.ErrorResponse}
                              for code in (401, 403, 422, 503)})
async def reload_model(body: schemas.ReloadRequest | None = Body(None),
                       service=Depends(ready_service)):
    """Load a model directory, check it, and swap it in without downtime.

    The body is optional: ``{"model_dir": "..."}`` names another directory,
    none (or ``{}``) loads the served model's path again. Requests in flight
    finish on the old model; ``/ready`` stays 200. A model that fails its
    checks (manifest, hash, classes, warm-up) is refused with 422 and the
    reason, and the old one keeps serving. With several workers, the worker
    that answers swaps the model in, and the others are replaced one at a
    time by workers that load it (``restarting_workers``).
    """
    start = time.perf_counter()
    try:
        previous, model = await anyio.to_thread.run_sync(
            service.reload, body.model_dir if body is not None else None,
            limiter=service.reloads)  # queued reloads hold no worker thread
    except ModelLoadError as exc:
        raise HTTPException(
            422, f"The model was refused; {service.model_version} still serves. "
            f"{exc}") from None
    except RuntimeError as exc:
        raise HTTPException(503, str(exc)) from None
    return {"success": True, "model_version": model.version,
            "previous_model_version": previous.version, "classes": model.classes,
            "model_loaded_at": model.loaded_at,
            "reload_seconds": time.perf_counter() - start,
            "restarting_workers": service.several_workers}


@page_router.get("/", response_class=HTMLResponse, include_in_schema=False)
def web_page():
    """The upload page; public, while its calls to /predict need the key."""
    return HTMLResponse(page_html(), headers=PAGE_HEADERS)


@probes_router.get("/health", response_model=schemas.HealthResponse)
def health(service=Depends(get_service)):
    """Liveness: the process answers; counters since start; the model served.

    With several workers (multiprocess metrics) the counts are summed over
    every worker; ``counts_scope`` says which. The model's classes, its
    learned threshold and whether its "unlike any training photo" check is
    on let a client show or check what it may be answered without sending a
    photo (null while the model loads).
    """
    from .. import __version__

    model = service.model
    return {
        "status": "healthy" if model is not None else "starting",
        "model_loaded": model is not None,
        "version": __version__,
        "uptime_seconds": service.uptime(),
        "memory_usage_mb": memory_mb(),
        "cpu_usage_percent": cpu_percent(),
        **service.counts(),
        "worker_pid": os.getpid(),
        "model_version": "unloaded" if model is None else model.version,
        "model_loaded_at": None if model is None else model.loaded_at,
        "feedback_enabled": service.feedback is not None,
        "confidence_threshold": None if model is None else model.confidence_threshold,
        "classes": None if model is None else list(model.classes),
        "n_classes": None if model is None else len(model.classes),
        "ood_enabled": None if model is None else bool(
            model.novelty or model.ood_thresholds),
    }


@probes_router.get("/ready", responses={503: {"model": schemas.ErrorResponse}})
async def ready_probe(service=Depends(get_service)):
    """Readiness: 200 once the model is loaded and warmed up, else 503."""
    await ready_service(service)
    model = service.model  # one model for both fields, even during a reload
    return {"ready": True, "model_version": model.version,
            "classes": list(model.classes)}


@probes_router.get("/metrics", response_class=Response)
def prometheus_metrics(service=Depends(get_service)):
    """Prometheus text format: requests, latency, inference time, errors."""
    from prometheus_client import CONTENT_TYPE_LATEST

    return Response(service.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
