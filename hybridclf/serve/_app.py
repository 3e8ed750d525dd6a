"""The application: :func:`create_app` and its lifespan.

The app is assembled from the other modules: settings (``_settings``), the
service that holds the model (``_service``), the routers (``_routes``), the
error handlers (``_errors``) and the middleware (``_middleware``). Nothing is
loaded when the app is built: the lifespan loads and warms the model up in a
worker thread, and ``GET /ready`` answers 503 until then.
"""

from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI

from ..io import DEFAULT_MAX_PIXELS
from ._errors import install_error_handlers
from ._middleware import add_middleware
from ._routes import (
    admin_router,
    feedback_router,
    page_router,
    predict_router,
    probes_router,
)
from ._service import Service
from ._settings import ServiceSettings

__all__ = ["ROUTERS", "app_from_settings", "create_app"]

#: The routers of every app, in the order of the OpenAPI schema.
ROUTERS = (predict_router, feedback_router, admin_router, page_router,
           probes_router)


@asynccontextmanager
async def lifespan(app):
    """Load the model before serving; finish the queued predictions after."""
    service = app.state.service
    await anyio.to_thread.run_sync(service.load)
    yield
    await anyio.to_thread.run_sync(service.close)


def create_app(model_dir, *, api_key=None, max_body_mb=10.0, max_batch=32,
               use_ood=True, allow_pickle=False, threads=None,
               max_pixels=DEFAULT_MAX_PIXELS, read_timeout=30.0, feedback_dir=None,
               log_predictions=None, allowed_hosts=None, max_inflight_mb=None,
               feedback_max_mb=1024.0, admin_key=None, limit_concurrency=None):
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
        When set, every write (``/predict*``, ``/feedback*``, and
        ``/admin/*`` unless ``admin_key`` is set) must carry it in the
        ``X-API-Key`` header (401 otherwise). ``/health``, ``/ready``,
        ``/metrics`` and the docs stay open for probes and scrapers.

    admin_key : str or None, default=None
        When set, ``/admin/*`` (``POST /admin/reload``, which loads a model
        from a path on the server) needs it in the ``X-Admin-Key`` header
        (401 otherwise), from any address; ``api_key`` opens nothing there.
        Without it, ``/admin/*`` answers only loopback clients (with
        ``api_key`` when set), and no request that a proxy forwarded
        (``Forwarded``, ``X-Forwarded-For``, ``X-Real-IP``): the API key is
        handed to every prediction client, and must not let them load models
        or probe the server's disk. Behind a proxy, set an admin key.

    max_body_mb : float, default=10.0
        Largest accepted request body in megabytes (413 above it).

    max_inflight_mb : float or None, default=None
        Most megabytes of request bodies received or being answered at once;
        a request that would pass it is answered 503 with ``Retry-After``,
        before its body is read (see "Limits and security" in
        docs/service.md). Every body is held in memory until its answer, so
        this bounds the memory that concurrent uploads take. None allows 8
        bodies at the limit, ``8 * max_body_mb``.

    limit_concurrency : int or None, default=None
        Most requests answered at once (from their headers to their answer);
        one more is answered 503 with ``Retry-After`` and the JSON error.
        ``/health``, ``/ready`` and ``/metrics`` are never counted or
        refused, and requests refused for their key are never counted. None
        for no limit.

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

    max_pixels : int, default=64_000_000
        Most pixels (width x height) an uploaded image may declare in its
        header; the model's loaders are set to it. A larger image is refused
        with 400 before it is decoded (a decompression bomb costs nothing).

    read_timeout : float, default=30.0
        Seconds a client has to send its request body once the headers are
        in; 408 after that.

    feedback_dir : str or os.PathLike or None, default=None
        Where ``POST /feedback`` stores corrected photos, as a class-per-folder
        dataset (see :class:`~hybridclf.feedback.FeedbackStore`); made when
        missing. None answers ``/feedback`` with 404.

    feedback_max_mb : float or None, default=1024.0
        The most megabytes of photos the feedback folder may hold: a new
        correction past it is answered 507 and nothing is stored, so that a
        client cannot fill the server's disk. None for no limit.

    log_predictions : str or os.PathLike or None, default=None
        A file that gets one JSON line per answer (see
        :class:`~hybridclf.feedback.PredictionLog`; never the image).

    allowed_hosts : list of str or None, default=None
        The names clients may call the server by, in the ``Host`` header (a
        request naming another host is answered 400): a page of another
        site can point its own name at this machine (DNS rebinding) and use
        the service through its visitor's browser. ``localhost``,
        ``127.0.0.1`` and ``[::1]`` (any port) are always accepted;
        ``"*.example.com"`` accepts the sub-domains, ``"*"`` any name. None
        checks only the requests that arrive on a loopback address, which
        must name this machine: list the server's names when it is reached
        otherwise (a public name, or a proxy that passes the client's Host).

    Returns
    -------
    app : fastapi.FastAPI
        The application; run it with uvicorn, or :func:`~hybridclf.serve.serve`.

    Raises
    ------
    ValueError
        When ``max_body_mb``, ``max_inflight_mb``, ``feedback_max_mb``,
        ``max_batch``, ``max_pixels``, ``read_timeout`` or
        ``limit_concurrency`` is not positive, or ``allowed_hosts`` holds
        something else than host names.
    """
    return app_from_settings(ServiceSettings(
        model_dir, api_key=api_key, max_body_mb=max_body_mb, max_batch=max_batch,
        use_ood=use_ood, allow_pickle=allow_pickle, threads=threads,
        max_pixels=max_pixels, read_timeout=read_timeout, feedback_dir=feedback_dir,
        log_predictions=log_predictions, allowed_hosts=allowed_hosts,
        max_inflight_mb=max_inflight_mb, feedback_max_mb=feedback_max_mb,
        admin_key=admin_key, limit_concurrency=limit_concurrency))


def app_from_settings(settings, *, model=None):
    """The application of :func:`create_app` for checked settings.

    Parameters
    ----------
    settings : ServiceSettings
        What to serve, and how.

    model : ServedModel or None, default=None
        The model of ``settings.model_dir``, loaded and checked already by
        :func:`~hybridclf.serve._model.load_served_model` (``serve``'s check
        before uvicorn starts): the lifespan serves it instead of loading it
        again. None loads it in the lifespan.

    Returns
    -------
    app : fastapi.FastAPI
        The application, its model not loaded yet (or ``model``, not started).
    """
    from .. import __version__

    app = FastAPI(
        title="hybridclf prediction service",
        version=__version__,
        description="Classify images with a hybridclf model directory.",
        lifespan=lifespan,
    )
    service = Service(settings, model=model)
    app.state.settings, app.state.service = settings, service
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    endpoints = [route.path for route in app.routes if hasattr(route, "path")]
    endpoints += [route.path for router in ROUTERS for route in router.routes]
    add_middleware(app, settings, service.metrics, endpoints)
    return app
