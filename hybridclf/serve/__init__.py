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
400 (invalid base64, undecodable image, image over the pixel limit, two
``file`` parts), 401 (missing or wrong ``X-API-Key`` when a key is
configured), 408 (body not received within the read timeout), 413 (body over
the limit), 415 (unsupported content type) or 422 (request schema). Requests
carry image bytes only: no request can make the server read a path on its
disk. The limits are listed in ``docs/service.md`` ("Limits and security").

This is the only package of hybridclf that imports FastAPI; install the
``serve`` extra (``pip install hybridclf[serve]``). Its layout follows
FastAPI's "bigger applications": ``_app`` (create_app, lifespan), ``_routes``
(one router per concern), ``_dependencies``, ``_schemas``, ``_middleware``,
``_errors``, ``_service`` (the model and counters), ``_predict`` (from
request images to answers), ``_batching`` (micro-batching), ``_metrics``
(Prometheus), ``_page`` (the upload page), ``_settings`` and ``_run``
(:func:`serve`, :func:`try_service`).
"""

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
