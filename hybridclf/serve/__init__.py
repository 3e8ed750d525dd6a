"""An HTTP prediction service for a model directory (FastAPI + uvicorn).

:func:`create_app` builds the application; the model is loaded and warmed up
in its lifespan, never at import. Endpoints:

- ``POST /predict``: JSON with a base64 image; ``POST /predict/file``: a
  multipart upload; ``POST /predict/batch``: several base64 images;
- ``POST /feedback`` and ``/feedback/file``: a correction (the photo and its
  right class), stored when the app has a ``feedback_dir``;
- ``POST /admin/reload``: load another model (or the same path again), check
  it and swap it in without downtime (SIGHUP does the same under
  :func:`serve`);
- ``GET /health`` (liveness, counters, the model version, classes and
  open-set settings), ``GET /ready``
  (readiness), ``GET /metrics`` (Prometheus text format);
- ``GET /``: a page for people that uploads photos to ``POST /predict`` and
  shows the answers (public; its API calls carry the key the user enters).

Every error is JSON ``{"success": false, "error_message": ...}`` with status
400 (invalid base64, undecodable image, image over the pixel limit, two
``file`` parts), 401 (missing or wrong ``X-API-Key`` when a key is
configured), 403 (a write that a page of another site had a browser send;
``/admin`` from another machine without a key), 404
(``/feedback`` without a feedback folder), 408 (body not received within
the read timeout), 413 (body over the limit), 415 (unsupported content
type), 422 (request schema, unsafe feedback label, refused model) or 503
(the model not loaded yet; the bodies in flight or the requests at once
past their limit, with ``Retry-After``).
Requests carry image bytes only: the one path a request may name is the
model directory of ``/admin/reload``, behind the key. The limits are listed
in ``docs/service.md`` ("Limits and security").

This is the only package of hybridclf that imports FastAPI; install the
``serve`` extra (``pip install hybridclf[serve]``). Its layout follows
FastAPI's "bigger applications": ``_app`` (create_app, lifespan), ``_routes``
(one router per concern), ``_dependencies``, ``_schemas``, ``_middleware``,
``_errors``, ``_service`` (the model, reloads, counters), ``_model`` (a
checked model: what a reload swaps in), ``_uploads`` (a request's base64
images to bytes), ``_predict`` (one model call for the images of a batch),
``_answers`` (the JSON of a prediction), ``_batching`` (micro-batching),
``_metrics`` (Prometheus), ``_page`` (the upload page), ``_settings`` and
``_run`` (:func:`serve`, :func:`try_service`).
"""

from ..utils._memory import without_unused_imports

# a process that serves a model imports neither pandas nor pytest (about 70
# MB), which scikit-learn and imbalanced-learn would import when installed
with without_unused_imports():
    from ._app import create_app
    from ._run import serve, try_service
    from ._schemas import (
        BatchPredictRequest,
        BatchPredictResponse,
        ErrorResponse,
        HealthResponse,
        PredictRequest,
        PredictResponse,
    )
    from ._settings import ServiceSettings

__all__ = [
    "BatchPredictRequest",
    "BatchPredictResponse",
    "ErrorResponse",
    "HealthResponse",
    "PredictRequest",
    "PredictResponse",
    "ServiceSettings",
    "create_app",
    "serve",
    "try_service",
]
