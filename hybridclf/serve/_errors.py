"""One JSON shape for every error: ``{"success": false, "error_message": ...,
"request_id": ...}``.

:func:`error_response` builds it (the middleware answers with it before any
route runs); :func:`install_error_handlers` makes FastAPI answer HTTP errors,
request-schema errors and bugs the same way. ``request_id`` is the request's
``X-Request-ID`` (see ``RequestIdMiddleware``), so that an error a user
reports can be found in the server's log.
"""

import contextvars
import logging

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

__all__ = ["REQUEST_ID", "error_response", "install_error_handlers"]

logger = logging.getLogger(__name__)

#: The ID of the request being answered (set by ``RequestIdMiddleware`` for
#: its task; None outside a request).
REQUEST_ID = contextvars.ContextVar("hybridclf_request_id", default=None)
#: The key of the request's ID in its ASGI scope: the handler of a bug runs
#: outside every middleware (Starlette's ``ServerErrorMiddleware``), after
#: ``REQUEST_ID`` is reset, and reads it there.
SCOPE_KEY = "hybridclf.request_id"


def error_response(status, message, headers=None, request_id=None):
    """The JSON error answer with ``status`` and ``message``.

    Parameters
    ----------
    status : int
        The HTTP status code.

    message : str
        What went wrong and what to do about it.

    headers : dict or None, default=None
        Extra response headers.

    request_id : str or None, default=None
        The request's ID; None takes that of the request being answered
        (``REQUEST_ID``), if any.

    Returns
    -------
    response : fastapi.responses.JSONResponse
        Also an ASGI app, for pure ASGI middleware. Its body carries the
        request's ``request_id`` when one is set.
    """
    body = {"success": False, "error_message": message}
    request_id = REQUEST_ID.get() if request_id is None else request_id
    if request_id is not None:
        body["request_id"] = request_id
    return JSONResponse(body, status_code=status, headers=headers)


async def _http_error(request, exc):
    return error_response(exc.status_code, str(exc.detail),
                          getattr(exc, "headers", None))


async def _validation_error(request, exc):
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{loc or 'body'}: {err.get('msg', 'invalid')}")
    return error_response(422, "Invalid request: " + "; ".join(parts)
                          + ". See /docs for the request schema.")


async def _unexpected(request, exc):
    # the path is the client's text, decoded: %0A is a newline, which would
    # begin a log line of the client's choosing; repr shows it as \n
    request_id = request.scope.get(SCOPE_KEY)
    logger.exception("Unexpected error on %r [request %s]", request.url.path,
                     request_id, extra={"request_id": request_id})
    return error_response(
        500, f"Internal error ({type(exc).__name__}); see the server log.",
        None if request_id is None else {"X-Request-ID": request_id}, request_id)


def install_error_handlers(app):
    """Answer every error of ``app`` with :func:`error_response`.

    Parameters
    ----------
    app : fastapi.FastAPI
        The application.
    """
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
