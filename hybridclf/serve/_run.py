"""Running the service: :func:`serve` (uvicorn, workers) and :func:`try_service`.

With one worker the app is built here and handed to uvicorn. With several,
uvicorn starts each worker process from an import string, so the settings
cannot be handed over as an object: they are written to a settings file
(mode 0600, in a temporary folder removed at exit) and the worker's factory,
:func:`app_from_settings_file`, reads it back. Only the file's path travels
in the environment (``HYBRIDCLF_SERVE_SETTINGS``), next to
``PROMETHEUS_MULTIPROC_DIR``, which prometheus-client's multiprocess mode
itself reads. The settings stay one typed object (:class:`ServiceSettings`),
written and read in one place, instead of one variable per setting.
"""

import copy
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import tempfile
import threading
import time
import urllib.request
from base64 import b64encode
from contextlib import contextmanager

from ..io import DEFAULT_MAX_PIXELS
from ..utils._public_host import warn_public_host
from ._app import app_from_settings, create_app
from ._metrics import MULTIPROC_ENV
from ._middleware import ACCESS_LOGGER
from ._model import load_served_model
from ._service import check_writable
from ._settings import SETTINGS_ENV, ServiceSettings

__all__ = ["SETTINGS_ENV", "app_from_settings_file", "serve", "try_service"]

logger = logging.getLogger(__name__)

# Seconds a new worker has to load and warm up its model in a rolling restart
# (SIGHUP) before uvicorn gives up and keeps the old one; uvicorn's 5 s
# aborted the restart of a model that took 8 s to start on a loaded machine.
_WORKER_START_S = 120


def app_from_settings_file():
    """The app of a uvicorn worker, from the settings file that serve wrote.

    Returns
    -------
    app : fastapi.FastAPI
        :func:`~hybridclf.serve.create_app`'s app for the settings in the
        file named by ``$HYBRIDCLF_SERVE_SETTINGS``.
    """
    return app_from_settings(ServiceSettings.read(os.environ[SETTINGS_ENV]))


def _check_model_dir(settings):
    """Fail now, with a clear message, if the model directory cannot be served.

    Before uvicorn starts: a model its lifespan refuses stops the server
    with a traceback (exit status 3). The checks are the ones a reload runs,
    in the one function that runs them (:func:`load_served_model`): the
    manifest and the model file, the open set and the embedding index, the
    classes and the warm-up prediction. Returns the checked model: one
    worker serves it as it is (loading it again took as long, and as much
    memory at its peak); several workers load their own, in their processes.
    """
    return load_served_model(settings.model_dir, settings)


def _key_in(env, parameter, what):
    """The key in ``$env`` (None when ``env`` is None); an error when unset."""
    if env is None:
        return None
    if not os.environ.get(env):
        option = "--" + parameter.replace("_", "-")
        raise ValueError(
            f"The environment variable {env!r} named by {parameter!r} is not set "
            f"or empty. Export the {what} in it before starting the server, or "
            f"leave {option} out to serve without one.")
    return os.environ[env]


def _admin_key(admin_key_env, api_key):
    """The key in ``$admin_key_env``; an error when it is the API key."""
    admin_key = _key_in(admin_key_env, "admin_key_env", "admin key")
    if admin_key is not None and api_key is not None and secrets.compare_digest(
            admin_key.encode(), api_key.encode()):
        raise ValueError(
            f"The admin key in {admin_key_env!r} ('admin_key_env') is the API "
            "key: every prediction client could reload the model from any "
            "path on the server. Give the admin key its own value.")
    return admin_key


def serve(model_dir, *, host="127.0.0.1", port=8000, workers=1, max_body_mb=10.0,
          api_key_env=None, threads=None, log_level="info",
          max_pixels=DEFAULT_MAX_PIXELS, read_timeout=30.0, allow_pickle=False,
          limit_concurrency=None, feedback_dir=None, log_predictions=None,
          allowed_hosts=None, max_inflight_mb=None, feedback_max_mb=1024.0,
          admin_key_env=None, on_checked=None):
    """Run the prediction service with uvicorn until interrupted.

    The model directory is loaded and checked before uvicorn starts, as a
    reload checks it (its manifest, classes, embedding index and a warm-up
    prediction): a model that fails is a :class:`ModelLoadError`, nothing
    started. With
    several workers, each worker process builds its app from a settings file
    that only this user can read (the API key itself is not in it: the
    workers read it from ``api_key_env``), and the metrics of every worker
    are summed: prometheus-client runs in multiprocess mode, in a temporary
    folder (``PROMETHEUS_MULTIPROC_DIR``, or the one you set). Both are
    removed at exit.

    Parameters
    ----------
    model_dir : str or os.PathLike
        The model directory to serve.

    host : str, default="127.0.0.1"
        Address to bind; "0.0.0.0" to accept other machines (a warning is
        logged then for each of ``api_key_env`` and ``admin_key_env`` not
        set).

    port : int, default=8000
        TCP port.

    workers : int, default=1
        Worker processes; each loads its own copy of the model.

    max_body_mb : float, default=10.0
        Largest accepted request body in megabytes.

    max_inflight_mb : float or None, default=None
        Most megabytes of request bodies in flight at once in each worker
        (see :func:`create_app`); None allows ``8 * max_body_mb``.

    api_key_env : str or None, default=None
        Name of the environment variable that holds the API key. The key
        itself never appears on a command line.

    admin_key_env : str or None, default=None
        Name of the environment variable that holds the admin key, which
        ``/admin/*`` (``POST /admin/reload``) then needs in ``X-Admin-Key``
        from any address; the API key opens nothing there. None answers
        ``/admin/*`` only from this machine (see :func:`create_app`).

    threads : int or None, default=None
        Threads per prediction in each worker (see :func:`create_app`); None
        shares the cores among the workers.

    log_level : str, default="info"
        uvicorn's log level, and that of the service's access lines: one
        per request, on standard output, ending with its ``X-Request-ID``
        (uvicorn's own access log, which cannot name it, is off).

    max_pixels : int, default=64_000_000
        Most pixels an uploaded image may declare (see :func:`create_app`).

    read_timeout : float, default=30.0
        Seconds to receive a request body (see :func:`create_app`), and
        each request line and headers of a connection (closed after).

    allow_pickle : bool, default=False
        Serve a pickled model (runs code from the file; see
        :func:`~hybridclf.load_model`).

    limit_concurrency : int or None, default=None
        Most requests answered at once in each worker before 503 with
        ``Retry-After`` (see :func:`create_app`); None for no limit.

    feedback_dir : str or os.PathLike or None, default=None
        Enable ``POST /feedback``: corrections are stored in this folder
        (see :func:`create_app`).

    feedback_max_mb : float or None, default=1024.0
        The most megabytes of photos the feedback folder may hold (see
        :func:`create_app`); None for no limit.

    log_predictions : str or os.PathLike or None, default=None
        Append one JSON line per answer to this file (see
        :func:`create_app`); with several workers, they all append to it.

    allowed_hosts : list of str or None, default=None
        The names clients may call the server by (see :func:`create_app`);
        None accepts only this machine's names on a loopback address. List
        the server's names when ``host`` is not a loopback address.

    on_checked : callable or None, default=None
        Called with no arguments once every check has passed, just before
        uvicorn starts (the command line prints its "Serving" line there).

    Notes
    -----
    SIGHUP reloads the model without downtime. With one worker, the model
    directory is loaded, checked and swapped in (see ``POST /admin/reload``);
    a model that fails its checks is refused, logged, and the old one keeps
    serving. With several, uvicorn replaces the workers one at a time, each
    new one loading ``model_dir`` before the old one stops (a new worker has
    120 s to start; one that fails keeps the old ones serving).
    ``POST /admin/reload`` to one worker does the same for every worker, on
    the model directory it names.

    Raises
    ------
    ValueError
        When ``api_key_env`` or ``admin_key_env`` names a variable that is
        not set or is empty, the admin key is the API key,
        ``workers`` is below 1, or ``feedback_dir`` or the folder of
        ``log_predictions`` cannot be written.
    ModelLoadError
        When the model directory is incomplete or was modified, its classes
        do not match ``model.json``, its embedding index cannot be read, or
        its warm-up prediction fails (the message says which).
    OSError
        When uvicorn cannot start the server: the port is taken (by an
        earlier ``hybridclf serve``, say) or ``host`` is not an address of
        this machine. uvicorn logs why; it would exit the process with
        status 3.
    """
    if int(workers) < 1:
        raise ValueError("The 'workers' parameter of serve must be an int >= 1. "
                         f"Got {workers!r} instead.")
    workers = int(workers)
    if threads is None:
        threads = max(1, (os.cpu_count() or 1) // workers)
    api_key = _key_in(api_key_env, "api_key_env", "API key")
    settings = ServiceSettings(
        os.path.abspath(os.fspath(model_dir)), api_key=api_key,
        admin_key=_admin_key(admin_key_env, api_key),
        max_body_mb=max_body_mb, threads=int(threads), max_pixels=int(max_pixels),
        read_timeout=float(read_timeout), allow_pickle=bool(allow_pickle),
        feedback_dir=_abspath(feedback_dir), log_predictions=_abspath(log_predictions),
        allowed_hosts=allowed_hosts, max_inflight_mb=max_inflight_mb,
        feedback_max_mb=feedback_max_mb, limit_concurrency=limit_concurrency)
    warn_public_host(logger, host, api_key_env=api_key_env,
                     admin_key_env=admin_key_env)
    if feedback_dir is not None:
        check_writable(settings.feedback_dir, "--feedback-dir")
    if log_predictions is not None:
        check_writable(settings.log_predictions, "--log-predictions", folder=False)
    checked = _check_model_dir(settings)
    if on_checked is not None:
        on_checked()
    logger.info("Serving %s on http://%s:%d with %d worker(s)", model_dir, host,
                port, workers)
    from ._protocol import protocol_with_header_deadline

    options = dict(host=host, port=int(port), log_level=log_level,
                   timeout_keep_alive=5,
                   http=protocol_with_header_deadline(settings.read_timeout),
                   access_log=False, log_config=_log_config(log_level))
    if workers == 1:
        app = app_from_settings(settings, model=checked)
        del checked  # the service's now: released with it on a reload
        with _reload_on_sighup(app.state.service):
            _run_uvicorn(app, **options)
        return
    del checked  # each worker process loads its own
    with _worker_files(settings, api_key_env, admin_key_env):
        _run_uvicorn(f"{__name__}:app_from_settings_file", factory=True,
                     workers=workers, timeout_worker_healthcheck=_WORKER_START_S,
                     **options)


def _log_config(log_level):
    """uvicorn's logging configuration, with the service's access lines.

    uvicorn's access line cannot name the request's ``X-Request-ID``; the
    service logs its own (see ``AccessLogMiddleware``), which this prints
    where uvicorn printed its own, in its format (``INFO:     127.0.0.1:35156
    - "GET /health HTTP/1.1" 200 1.2 ms [request abc123]``, on standard
    output), at ``log_level``. ``serve`` turns uvicorn's off
    (``access_log=False``), so that each request has one access line.
    """
    from uvicorn.config import LOG_LEVELS, LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["service_access"] = {
        "()": "uvicorn.logging.DefaultFormatter", "fmt": "%(levelprefix)s %(message)s"}
    config["handlers"]["service_access"] = {
        "formatter": "service_access", "class": "logging.StreamHandler",
        "stream": "ext://sys.stdout"}
    level = (LOG_LEVELS[log_level.lower()] if isinstance(log_level, str)
             else int(log_level))
    config["loggers"][ACCESS_LOGGER] = {
        "handlers": ["service_access"], "level": level, "propagate": False}
    return config


def _run_uvicorn(app, **options):
    """``uvicorn.run``, with a server that could not start as an ``OSError``.

    uvicorn logs why it could not start (the port is taken, the address is
    not this machine's) and calls ``sys.exit(3)``: a library caller would
    see its process end, and ``hybridclf serve`` would exit with 3 where
    every command exits with 1 for a reported error.
    """
    import uvicorn

    try:
        uvicorn.run(app, **options)
    except SystemExit as exc:
        if not exc.code:
            raise
        host, port = options.get("host"), options.get("port")
        raise OSError(
            f"The server could not start on {host}:{port}; uvicorn's message "
            "above says why. Most often another process (an earlier `hybridclf "
            "serve`, say) holds the port: stop it, or pass another port "
            "(--port)."
        ) from exc


def _abspath(path):
    return None if path is None else os.path.abspath(os.fspath(path))


@contextmanager
def _reload_on_sighup(service):
    """While serving, SIGHUP reloads the model in a thread (one worker)."""
    if not hasattr(signal, "SIGHUP"):  # pragma: no cover - Windows
        yield
        return
    previous = signal.signal(signal.SIGHUP,
                             lambda *_: service.reload_in_background())
    try:
        yield
    finally:
        signal.signal(signal.SIGHUP, previous)


@contextmanager
def _worker_files(settings, api_key_env, admin_key_env=None):
    """The settings file and the metrics folder of several workers, removed after.

    A metrics folder set by the user in ``PROMETHEUS_MULTIPROC_DIR`` is used
    and kept.
    """
    folder = tempfile.mkdtemp(prefix="hybridclf-serve-")
    path = os.path.join(folder, "settings.json")
    settings.write(path, api_key_env=api_key_env, admin_key_env=admin_key_env)
    added = {SETTINGS_ENV: path}
    if not os.environ.get(MULTIPROC_ENV):
        added[MULTIPROC_ENV] = os.path.join(folder, "metrics")
        os.mkdir(added[MULTIPROC_ENV])
    os.environ.update(added)
    try:
        yield
    finally:
        for name in added:
            del os.environ[name]
        shutil.rmtree(folder, ignore_errors=True)


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
            body = json.dumps({"image_data": b64encode(fh.read()).decode("ascii")})
        url = f"http://127.0.0.1:{port}/predict"
        request = urllib.request.Request(
            url, data=body.encode(), headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return url, json.loads(answer.read())
    finally:
        server.should_exit = True
        thread.join(timeout=timeout)
