"""FastAPI dependencies of the routes: the service, its key and content types.

They are ``async`` because they only read the request (a plain ``def`` would
cost a hop to the thread pool on every call). Everything comes from the app
(``request.app.state``), so one process can hold several apps.
"""

from fastapi import Depends, Request
from fastapi.exceptions import HTTPException

from ._middleware import ADMIN_KEY_HEADER, API_KEY_HEADER, api_key_problem

__all__ = ["JSON_TYPE", "FORM_TYPE", "admin_access", "content_type",
           "feedback_service", "get_service", "ready_service", "require_admin_key",
           "require_api_key"]

JSON_TYPE = "application/json"
FORM_TYPE = "multipart/form-data"
#: Headers a reverse proxy adds: /admin without a key refuses such requests.
PROXY_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")


def media_type(value):
    """The media type of a Content-Type header, without parameters, lower case."""
    return value.split(";", 1)[0].strip().lower()


async def get_service(request: Request):
    """The app's :class:`~hybridclf.serve._service.Service`."""
    return request.app.state.service


async def ready_service(service=Depends(get_service)):
    """The service once its model is loaded; 503 before."""
    if service.pipe is None:
        raise HTTPException(503, "The model is not loaded yet.")
    return service


def _check_key(request, key, header):
    """401 unless the request's ``header`` holds ``key`` (when one is set)."""
    if key is None:
        return
    given = request.headers.get(header[0])
    # Starlette decodes header bytes as Latin-1: back to the bytes sent, which
    # the middleware compares with the key's UTF-8 (a key like "clé")
    problem = api_key_problem(None if given is None else given.encode("latin-1"),
                              key.encode(), header)
    if problem is not None:
        raise HTTPException(401, problem)


async def require_api_key(request: Request, service=Depends(get_service)):
    """401 unless the request carries the app's key (when one is set)."""
    _check_key(request, service.settings.api_key, API_KEY_HEADER)


async def require_admin_key(request: Request, service=Depends(get_service)):
    """401 unless an ``/admin`` request carries the key that opens it.

    The admin key in ``X-Admin-Key`` when the server has one (the API key
    then opens nothing here); else the API key, when set, as for every
    write (and :func:`admin_access` then limits ``/admin`` to this machine).
    """
    settings = service.settings
    if settings.admin_key is not None:
        _check_key(request, settings.admin_key, ADMIN_KEY_HEADER)
    else:
        _check_key(request, settings.api_key, API_KEY_HEADER)


async def feedback_service(service=Depends(get_service)):
    """The service when it stores corrections; 404 without ``--feedback-dir``."""
    if service.feedback is None:
        raise HTTPException(
            404, "Feedback is not enabled on this server: it stores corrections "
            "only when started with --feedback-dir DIR (create_app(feedback_dir=)).")
    return service


async def admin_access(request: Request, service=Depends(get_service)):
    """Who may reload the model: the admin key's holders, else this machine.

    With an admin key the key decides (:func:`require_admin_key` runs
    first). Without one, ``/admin`` answers only clients on a loopback
    address (403 otherwise), with the API key when the server has one: a
    model directory is a path on the server's disk, and the API key is
    handed to every prediction client, so it must not open a reload (and
    the answers' "does not exist" to probe the disk) from anywhere. A
    request that carries a proxy's headers is refused too: behind a reverse
    proxy on the same machine every client is loopback.
    """
    if service.settings.admin_key is not None:
        return
    forwarded = [name for name in PROXY_HEADERS if name in request.headers]
    if forwarded:
        raise HTTPException(
            403, f"/admin refuses a request forwarded by a proxy (it carries "
            f"{', '.join(forwarded)}) when the server has no admin key: behind a "
            "reverse proxy every client looks like this machine. Start the "
            "server with --admin-key-env, or send SIGHUP to the server process.")
    host = request.client.host if request.client else ""
    if not (host.startswith("127.") or host in ("::1", "localhost")):
        raise HTTPException(
            403, f"/admin answers only this machine ({host or 'an unknown client'} "
            "is not a loopback address) when the server has no admin key. Start "
            "it with --admin-key-env to reload from elsewhere (the API key of "
            "--api-key-env opens predictions and feedback only), or send SIGHUP "
            "to the server process.")


def content_type(accepted):
    """A dependency that answers 415 unless the body is of type ``accepted``."""
    async def check(request: Request):
        value = request.headers.get("content-type", "")
        if media_type(value) != accepted:
            raise HTTPException(
                415, f"Unsupported Content-Type {value or '(none)'!r} for "
                f"{request.url.path}; send {accepted}.")
    return check
