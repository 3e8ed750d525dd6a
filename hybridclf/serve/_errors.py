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


def error_response(status, message, headers=None):
    """The JSON error answer with ``status`` and ``message``.

    Parameters
    ----------
    status : int
        The HTTP status code.

    message : str
        What went wrong and what to do about it.

    headers : dict or None, default=None
        Extra response headers.

    Returns
    -------
    response : fastapi.responses.JSONResponse
        Also an ASGI app, for pure ASGI middleware. Its body carries the
        request's ``request_id`` when one is set.
    """
    body = {"success": False, "error_message": message}
    if REQUEST_ID.get() is not None:
        body["request_id"] = REQUEST_ID.get()
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


async def _unexpected(request, exc):  # pragma: no cover - a bug
    logger.exception("Unexpected error on %s", request.url.path)
    return error_response(500, f"Internal error ({type(exc).__name__}); see the "
                          "server log.")


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
