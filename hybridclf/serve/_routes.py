"""The routes of the service, one ``APIRouter`` per concern.

- :data:`predict_router`: ``POST /predict``, ``/predict/file`` and
  ``/predict/batch`` (behind the API key);
- :data:`page_router`: ``GET /``, the upload page for people;
- :data:`probes_router`: ``GET /health``, ``/ready`` and ``/metrics``.

A route reads the service through a dependency (``request.app.state``) and
leaves the model work to :meth:`Service.predict`; a new concern gets a router
of its own, included in ``_app.ROUTERS``.
"""

import os
import time

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi.exceptions import HTTPException
from fastapi.responses import HTMLResponse, Response

from . import _schemas as schemas
from ._dependencies import (
    FORM_TYPE,
    JSON_TYPE,
    content_type,
    get_service,
    media_type,
    ready_service,
    require_api_key,
)
from ._metrics import memory_mb
from ._page import PAGE_HEADERS, page_html
from ._predict import Upload, decode_uploads
from ._schemas import ERRORS

__all__ = ["page_router", "predict_router", "probes_router"]

predict_router = APIRouter(dependencies=[Depends(require_api_key)])
page_router = APIRouter()
probes_router = APIRouter()

_UPLOADED = "the uploaded image"


def _is_image_upload(declared):
    """Whether a multipart part's declared type is an image (or unknown bytes)."""
    media = media_type(declared)
    return not media or media.startswith("image/") or (
        media == "application/octet-stream")


async def _predict_one(service, upload, threshold, with_proba, endpoint):
    """The answer for one image; 400 when it holds no readable image."""
    if upload.error is not None:
        raise HTTPException(400, upload.error)
    body, = await service.predict([upload], names=[_UPLOADED], threshold=threshold,
                                  with_proba=with_proba, endpoint=endpoint)
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
                              body.return_probabilities, "/predict")


@predict_router.post("/predict/file", response_model=schemas.PredictResponse,
                     responses=ERRORS,
                     dependencies=[Depends(content_type(FORM_TYPE))])
async def predict_file(request: Request,
                       file: UploadFile = File(..., description="An image file."),
                       confidence_threshold: float = Query(
                           0.5, ge=0.0, le=1.0, description="Below this top "
                           "probability the class is 'unknown'."),
                       return_probabilities: bool = Query(True),
                       service=Depends(ready_service)):
    """Classify one uploaded image file (multipart/form-data, field 'file')."""
    n_files = len((await request.form()).getlist("file"))
    if n_files > 1:
        raise HTTPException(
            400, f"The request holds {n_files} 'file' parts; /predict/file "
            "classifies one image. Send one, or use /predict/batch.")
    declared = (file.content_type or "").lower()
    if not _is_image_upload(declared):
        raise HTTPException(
            415, f"The uploaded file {file.filename!r} has the unsupported "
            f"type {declared!r}; send an image (image/jpeg, image/png, ...).")
    upload = Upload(data=await file.read())
    if not upload.data:
        upload = Upload(error=f"The uploaded file {file.filename!r} is empty. Send "
                        "an image file.")
    return await _predict_one(service, upload, confidence_threshold,
                              return_probabilities, "/predict/file")


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
        endpoint="/predict/batch")
    return {"success": all(r["success"] for r in results), "results": results,
            "processing_time_ms": (time.perf_counter() - start) * 1000.0,
            "model_version": service.model_version}


@page_router.get("/", response_class=HTMLResponse, include_in_schema=False)
def web_page():
    """The upload page; public, while its calls to /predict need the key."""
    return HTMLResponse(page_html(), headers=PAGE_HEADERS)


@probes_router.get("/health", response_model=schemas.HealthResponse)
def health(service=Depends(get_service)):
    """Liveness: the process answers; counters since start.

    With several workers (multiprocess metrics) the counts are summed over
    every worker; ``counts_scope`` says which.
    """
    from .. import __version__

    return {
        "status": "healthy" if service.pipe is not None else "starting",
        "model_loaded": service.pipe is not None,
        "version": __version__,
        "uptime_seconds": service.uptime(),
        "memory_usage_mb": memory_mb(),
        **service.counts(),
        "worker_pid": os.getpid(),
    }


@probes_router.get("/ready", responses={503: {"model": schemas.ErrorResponse}})
async def ready_probe(service=Depends(get_service)):
    """Readiness: 200 once the model is loaded and warmed up, else 503."""
    await ready_service(service)
    return {"ready": True, "model_version": service.model_version,
            "classes": [str(c) for c in service.info.get("classes", [])]}


@probes_router.get("/metrics", response_class=Response)
def prometheus_metrics(service=Depends(get_service)):
    """Prometheus text format: requests, latency, inference time, errors."""
    from prometheus_client import CONTENT_TYPE_LATEST

    return Response(service.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
