"""Pure ASGI middleware: request IDs, access lines, metrics, Host names,
cross-site writes, API key, requests at once, body limit, timeout.

They run before FastAPI parses anything, so that a request without the key,
with a body over the limit or a body that never arrives costs the server
nothing. :func:`add_middleware` puts them on an app in the right order (the
last added runs first): the request ID, the access line, metrics, then the
Host name, then cross-site writes, then the key, then the requests at once,
then the read timeout, then the body limit, then the bytes of bodies in
flight.
"""

import asyncio
import logging
import re
import secrets
import time
import urllib.parse
import uuid

from fastapi.exceptions import HTTPException

from ..utils._public_host import is_loopback
from ._errors import REQUEST_ID, SCOPE_KEY, error_response

__all__ = ["ACCESS_LOGGER", "ADMIN_KEY_HEADER", "API_KEY_HEADER",
           "add_middleware", "api_key_problem"]

#: The paths that need the API key (when one is set): every write.
KEYED_PREFIXES = ("/predict", "/feedback", "/admin")
#: The paths that need the admin key instead, when one is set.
ADMIN_PREFIXES = ("/admin",)
#: The header of each key: (header, what the messages call the key).
API_KEY_HEADER = ("X-API-Key", "API key")
ADMIN_KEY_HEADER = ("X-Admin-Key", "admin key")


def api_key_problem(given, api_key, header=API_KEY_HEADER):
    """Why a request's key header value is refused, or None when it is right.

    Parameters
    ----------
    given : bytes or None
        The header's value, None when absent.

    api_key : bytes
        The server's key.

    header : tuple of (str, str), default=API_KEY_HEADER
        The header's name and what the message calls the key:
        ``API_KEY_HEADER`` or ``ADMIN_KEY_HEADER``.

    Returns
    -------
    problem : str or None
        The error message for a 401 answer.
    """
    name, what = header
    if given is None:
        return f"Missing {what}: send it in the {name} header."
    if not secrets.compare_digest(given, api_key):
        return f"Wrong {what} in the {name} header."
    return None


def _as_int(value):
    """The int of a header value, or None when it is not one."""
    try:
        return int(value)
    except ValueError:
        return None


class _Abort(HTTPException):
    """Raised from a wrapped ``receive`` to stop reading a request body.

    An ``HTTPException``, so that FastAPI's body parsing lets it through (any
    other exception there becomes "There was an error parsing the body") and
    the app's handler answers it with its status and message.
    """


async def _guarded(app, scope, receive, send, wrapped_receive):
    """Run ``app`` with ``wrapped_receive``; answer its :class:`_Abort` as JSON.

    The abort becomes an error answer unless the app already started its own
    answer (then the connection is dropped, as for any broken response).
    """
    started = False

    async def send_wrapper(message):
        nonlocal started
        started = started or message["type"] == "http.response.start"
        await send(message)

    try:
        await app(scope, wrapped_receive, send_wrapper)
    except _Abort as exc:
        if started:
            raise
        await error_response(exc.status_code, exc.detail, exc.headers)(
            scope, receive, send)


#: A client's X-Request-ID is kept when it is a short token of these; any
#: other value (too long, spaces, newlines that would forge log lines) is
#: replaced by one the server makes.
_SAFE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")
#: The loggers whose lines name the request they were logged for.
REQUEST_LOGGERS = ("hybridclf.serve._errors", "hybridclf.serve._service")


class RequestIdFilter(logging.Filter):
    """Add `` [request <id>]`` to a line logged while a request is answered.

    On the loggers of ``REQUEST_LOGGERS``: a reload done or refused, a
    bug's traceback. The ID is that of the request's
    ``X-Request-ID`` header (:class:`RequestIdMiddleware`), and also set
    as the record's ``request_id`` attribute for a formatter that wants it.
    """

    def filter(self, record):
        request_id = REQUEST_ID.get()
        if request_id is not None and getattr(record, "request_id", None) is None:
            record.request_id = request_id
            # the ID is a safe token (no '%'), so the line's args still apply
            record.msg = f"{record.msg} [request {request_id}]"
        return True


def log_request_ids():
    """Put one :class:`RequestIdFilter` on each logger of ``REQUEST_LOGGERS``."""
    for name in REQUEST_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RequestIdFilter) for f in logger.filters):
            logger.addFilter(RequestIdFilter())


class RequestIdMiddleware:
    """Give every request an ID: its ``X-Request-ID``, echoed in the answer.

    A client's ``X-Request-ID`` is kept when it is a short safe token (up to
    64 letters, digits, ``.``, ``_``, ``:``, ``-``), else the server makes
    one (32 hex digits). The ID is sent back in the answer's
    ``X-Request-ID`` header, in the ``request_id`` of every JSON error, in
    the lines the service logs for the request and in its prediction-log
    lines, so that an error a user reports can be found in the logs.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers", ())).get(b"x-request-id")
        request_id = (given.decode("ascii") if given is not None
                      and _SAFE_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex)
        header = (b"x-request-id", request_id.encode("ascii"))

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                headers = [item for item in message.get("headers", ())
                           if item[0].lower() != b"x-request-id"]
                message = {**message, "headers": [*headers, header]}
            await send(message)

        scope[SCOPE_KEY] = request_id  # for the handler of a bug (_errors)
        token = REQUEST_ID.set(request_id)
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            REQUEST_ID.reset(token)


#: The logger of the access lines, one per request (:class:`AccessLogMiddleware`).
ACCESS_LOGGER = "hybridclf.serve.access"
_access_logger = logging.getLogger(ACCESS_LOGGER)


class AccessLogMiddleware:
    """Log one line per request, once answered, that ends with its request ID.

    uvicorn's own access line (``127.0.0.1:35156 - "GET /health HTTP/1.1"
    200 OK``) cannot carry the ``X-Request-ID`` of the request, so that the
    request a user reported could not be found among them. This line says
    the same and more: ``127.0.0.1:35156 - "GET /health HTTP/1.1" 200 1.2 ms
    [request abc123]``, at INFO on the ``hybridclf.serve.access`` logger
    (``serve`` prints it where uvicorn printed its own, which it turns off),
    as its answer starts (the time is the time to that).
    The path is percent-encoded as uvicorn writes it, so that a client cannot
    begin a log line of its choosing. A request whose app raised is logged
    with 500, the status of its answer; one answered nothing (the client
    went away) with ``-``.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not _access_logger.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        status, logged = "-", False
        start = time.perf_counter()

        def log(code):
            nonlocal logged
            if not logged:
                logged = True
                _log_access(scope, code, time.perf_counter() - start)

        async def send_wrapper(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                log(status)  # before the client has any of its answer
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            log(500 if status == "-" else status)
            raise
        finally:
            log(status)


def _log_access(scope, status, seconds):
    """The access line of a request (see :class:`AccessLogMiddleware`)."""
    client = scope.get("client")
    client = "-" if not client else f"{client[0]}:{client[1]}"
    target = urllib.parse.quote(scope.get("path", ""))
    if scope.get("query_string"):
        target += "?" + urllib.parse.quote(scope["query_string"], safe="=&;%+")
    request_id = scope.get(SCOPE_KEY)
    _access_logger.info(
        '%s - "%s %s HTTP/%s" %s %.1f ms [request %s]', client,
        scope.get("method", ""), target, scope.get("http_version", "1.1"),
        status, seconds * 1000, request_id, extra={"request_id": request_id})


class MetricsMiddleware:
    """Count every HTTP request by endpoint, method and status; time it."""

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


#: The names of this machine, always accepted in a Host header.
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def host_name(value):
    """The name in a Host header: lower case, no port, no brackets, no final dot.

    Parameters
    ----------
    value : str
        The header's value, such as ``"Localhost:8000"`` or ``"[::1]:8000"``.

    Returns
    -------
    name : str
        ``"localhost"``, ``"::1"``.
    """
    text = value.strip().lower()
    if text.startswith("["):  # [IPv6]:port
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:  # name:port (more colons: a bare IPv6 address)
        text = text.split(":", 1)[0]
    return text.rstrip(".")


def _allowed(name, allowed_hosts):
    """Whether the Host name ``name`` is one of ``allowed_hosts`` (or loopback)."""
    if is_loopback(name) or "*" in allowed_hosts:
        return True
    return any(name == host or (host.startswith("*.") and name.endswith(host[1:]))
               for host in allowed_hosts)


class HostMiddleware:
    """400 for a request whose Host header names a host this server is not.

    DNS rebinding: a page on ``evil.example`` whose name the attacker then
    points at 127.0.0.1 is, for the visitor's browser, the same origin as
    the service on that machine, so it could read answers and write
    corrections (and reload the model of a server without a key), as the
    visitor. The browser still sends ``Host: evil.example``: that is what is
    checked. Without ``allowed_hosts``, a request that arrived on a loopback
    address must name this machine (``localhost``, ``127.0.0.1``, ``[::1]``,
    any port); one that arrived on another address is not checked, since the
    server cannot know its public names. With ``allowed_hosts`` every
    request must name one of them or this machine (``*.example.com`` takes
    the sub-domains; ``*`` takes any name). A request without a Host header
    (HTTP/1.0; browsers always send one) passes.
    """

    def __init__(self, app, allowed_hosts=None):
        self.app = app
        self.allowed_hosts = (None if allowed_hosts is None
                              else tuple(h.lower() for h in allowed_hosts))

    def _refused(self, scope):
        """The Host value to refuse, or None."""
        value = dict(scope.get("headers", ())).get(b"host")
        if value is None:
            return None
        value = value.decode("latin-1")
        name = host_name(value)
        if self.allowed_hosts is None:
            server = scope.get("server") or ("",)
            if not is_loopback(str(server[0])) or is_loopback(name):
                return None
        elif _allowed(name, self.allowed_hosts):
            return None
        return value

    async def __call__(self, scope, receive, send):
        value = self._refused(scope) if scope["type"] == "http" else None
        if value is None:
            await self.app(scope, receive, send)
            return
        name = host_name(value)
        await error_response(400, (
            f"The Host header {value!r} does not name this server, so the request "
            "was refused: a page of another site can point its own name at this "
            "machine (DNS rebinding) and use the service through the visitor's "
            "browser. Open the service as http://localhost:<port>/ or "
            "http://127.0.0.1:<port>/; if "
            f"{name!r} is a name of this server (behind a proxy, say), start it "
            f"with --allowed-hosts {name} (create_app(allowed_hosts=[{name!r}]))."
        ))(scope, receive, send)


def _source_problem(headers, allowed_hosts):
    """The ``Origin`` or ``Referer`` of another site, for a request without
    ``Sec-Fetch-Site``; None when it is this server or absent.

    A browser that predates ``Sec-Fetch-Site`` (Safari before 16.4) still
    sends ``Origin`` with a POST (or at least a ``Referer``): a page of
    another site has a host name other than the one the request was sent
    to (its ``Host``). ``Origin: null`` (a sandboxed frame, a local file)
    is never the service's own page.
    """
    source = headers.get(b"origin")
    name = "Origin"
    if source is None:
        source, name = headers.get(b"referer"), "Referer"
    if source is None:
        return None
    text = source.decode("latin-1").strip()
    host = headers.get(b"host")
    if text == "null" and name == "Origin":
        return f"{name}: null"
    try:
        hostname = urllib.parse.urlsplit(text).hostname or ""
    except ValueError:
        hostname = ""
    own = host_name(host.decode("latin-1")) if host is not None else hostname
    listed = tuple(h for h in allowed_hosts or () if h != "*")
    if hostname == own or (hostname and listed and _allowed(hostname, listed)
                           and not is_loopback(hostname)):
        return None
    return f"{name}: {text}"


class CrossSiteMiddleware:
    """403 for writes that a page of another site makes a browser send.

    A page anywhere on the web may have a visitor's browser POST a multipart
    form to ``/feedback/file`` of a service on that visitor's machine or
    network (no preflight asks first): without a key, its photos landed in
    the training data under its labels. Browsers say where such a request
    comes from (``Sec-Fetch-Site: cross-site``); the upload page's calls are
    ``same-origin``, and clients that are not browsers send no such header.
    A browser without ``Sec-Fetch-Site`` (Safari before 16.4) is judged by
    its ``Origin`` (else ``Referer``): a host name other than the request's
    ``Host`` (or one of ``allowed_hosts``) is another site. curl and
    scripts send neither, and pass.
    """

    def __init__(self, app, prefixes=KEYED_PREFIXES, allowed_hosts=None):
        self.app = app
        self.prefixes = tuple(prefixes)
        self.allowed_hosts = allowed_hosts

    def _problem(self, scope):
        """What shows the request came from another site, or None."""
        if scope["type"] != "http" or not scope.get("path", "").startswith(
                self.prefixes):
            return None
        headers = dict(scope.get("headers", ()))
        site = headers.get(b"sec-fetch-site")
        if site is not None:
            return "Sec-Fetch-Site: cross-site" if site == b"cross-site" else None
        return _source_problem(headers, self.allowed_hosts)

    async def __call__(self, scope, receive, send):
        problem = self._problem(scope)
        if problem is not None:
            await error_response(403, (
                "Refused a request that a page of another site had this browser "
                f"send ({problem}). Use the service's own page "
                "(GET /), or a client that is not a browser."))(scope, receive, send)
            return
        await self.app(scope, receive, send)


class ApiKeyMiddleware:
    """401 for keyed requests without the key, before the body is read.

    One instance per key: the API key on ``KEYED_PREFIXES`` (in its
    ``X-API-Key`` header), and, when the server has an admin key, the API
    key on ``/predict`` and ``/feedback`` and the admin key on
    ``ADMIN_PREFIXES`` (in ``X-Admin-Key``).
    """

    def __init__(self, app, api_key, prefixes=KEYED_PREFIXES,
                 header=API_KEY_HEADER):
        self.app = app
        self.api_key = api_key.encode()
        self.prefixes = tuple(prefixes)
        self.header = header
        self.header_bytes = header[0].lower().encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope.get("path", "").startswith(
                self.prefixes):
            given = dict(scope.get("headers", ())).get(self.header_bytes)
            problem = api_key_problem(given, self.api_key, self.header)
            if problem is not None:
                await error_response(401, problem)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class BodyLimitMiddleware:
    """413 for bodies over ``max_bytes``.

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

    def _declared_problem(self, scope):
        """(status, message) for a bad or too large Content-Length, or None."""
        for name, value in scope.get("headers", ()):
            if name != b"content-length":
                continue
            size = _as_int(value)
            if size is None:
                return 400, "The Content-Length header is not an integer."
            if size > self.max_bytes:
                return 413, self._message(size)
        return None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = self._declared_problem(scope)
        if problem is not None:
            await error_response(*problem)(scope, receive, send)
            return
        received = 0

        async def counting_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _Abort(413, self._message())
            return message

        await _guarded(self.app, scope, receive, send, counting_receive)


class InFlightMiddleware:
    """503 with ``Retry-After`` once the request bodies in flight pass ``max_bytes``.

    Every request body is held in memory from its first byte to its answer
    (JSON parsed, base64 decoded, the image read, its turn at the model), and
    nothing else bounds how many arrive at once: 150 clients each posting a
    body of 9.5 MB (under the 10 MB limit) took the server from 200 MB to
    1.9 GB, and a one-photo request waited 15 s behind them. This middleware
    counts the bytes of the bodies being received or answered. A request
    whose declared ``Content-Length`` would take the count over ``max_bytes``
    is answered 503 at once, before its body is read, with ``Retry-After``;
    a body without one (chunked) is counted as it arrives and refused as
    soon as it would. A request is always let in when no other body is in
    flight, so that the limit never refuses every request. Requests without
    a body (the probes, the page) are never counted, and never refused.

    The declared size is counted from the headers on: a client that declares
    a large body and sends it slowly holds its share until
    ``ReadTimeoutMiddleware`` cuts it off.
    """

    def __init__(self, app, max_bytes, retry_after_s=1):
        self.app = app
        self.max_bytes = int(max_bytes)
        self.retry_after_s = int(retry_after_s)
        self.in_flight = 0  # read and written on the event loop only

    def _busy(self, size):
        mb = 1024 * 1024
        return _Abort(503, (
            f"The server is busy: {self.in_flight / mb:.1f} MB of request bodies "
            f"are being received or answered, and this request's {size / mb:.1f} "
            f"MB would pass its limit of {self.max_bytes / mb:g} MB "
            "(--max-inflight-mb). Nothing was predicted or stored; send it "
            f"again after the Retry-After delay ({self.retry_after_s} s)."),
            headers={"Retry-After": str(self.retry_after_s)})

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = 0
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                declared = max(0, _as_int(value) or 0)
        if declared and self.in_flight and self.in_flight + declared > self.max_bytes:
            busy = self._busy(declared)
            await error_response(busy.status_code, busy.detail, busy.headers)(
                scope, receive, send)
            return
        held = declared
        self.in_flight += held

        async def counting_receive():
            nonlocal held
            message = await receive()
            if message["type"] == "http.request" and not declared:
                size = len(message.get("body", b""))
                if self.in_flight > held and (
                        self.in_flight + size > self.max_bytes):
                    raise self._busy(held + size)
                held += size
                self.in_flight += size
            return message

        try:
            await _guarded(self.app, scope, receive, send, counting_receive)
        finally:
            self.in_flight -= held


#: The paths that a busy server still answers: probes and scrapers, which
#: must see the truth under load (cheap: no body, no model call).
PROBE_PATHS = ("/health", "/ready", "/metrics")


class ConcurrencyMiddleware:
    """503 with ``Retry-After`` once ``limit`` requests are being answered.

    ``--limit-concurrency`` was uvicorn's: past it, uvicorn answered
    ``Service Unavailable`` in plain text, without the request ID or a
    ``Retry-After``, unlike every other error of the service, and it counted
    every open connection (idle keep-alive ones too) and refused the probes.
    This counts the requests being answered at once (from their headers to
    their answer, a slow body included) in this worker, and answers one more
    with the service's JSON error, its request ID and ``Retry-After``. It
    runs after the key check, so that requests without the key never take a
    place. ``PROBE_PATHS`` are never counted, and never refused.
    """

    def __init__(self, app, limit, retry_after_s=1, exempt=PROBE_PATHS):
        self.app = app
        self.limit = int(limit)
        self.retry_after_s = int(retry_after_s)
        self.exempt = frozenset(exempt)
        self.active = 0  # read and written on the event loop only

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("path") in self.exempt:
            await self.app(scope, receive, send)
            return
        if self.active >= self.limit:
            await error_response(503, (
                f"The server is busy: it is answering {self.active} requests at "
                f"once, its limit (--limit-concurrency {self.limit}). Nothing was "
                "predicted or stored; send it again after the Retry-After delay "
                f"({self.retry_after_s} s)."),
                {"Retry-After": str(self.retry_after_s)})(scope, receive, send)
            return
        self.active += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.active -= 1


class ReadTimeoutMiddleware:
    """408 when a request body is not in ``seconds`` after its headers.

    The clock starts when the headers are in (uvicorn parses those itself, see
    "Limits and security" in docs/service.md); a client that sends its body
    slowly, or never, holds a connection for ``seconds`` at most.
    """

    def __init__(self, app, seconds):
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline = time.monotonic() + self.seconds

        async def timed_receive():
            try:
                return await asyncio.wait_for(
                    receive(), max(0.0, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                raise _Abort(
                    408, f"The request body did not arrive within {self.seconds:g} "
                    "s (the server's read timeout, --read-timeout).") from None

        await _guarded(self.app, scope, receive, send, timed_receive)


def add_middleware(app, settings, metrics, endpoints):
    """Put the service's middleware on ``app``, after its routes are included.

    Parameters
    ----------
    app : fastapi.FastAPI
        The application, with every route.

    settings : ServiceSettings
        The body limits, read timeout, requests at once, API and admin keys
        and allowed host names.

    metrics : Metrics
        Where the request counts and latencies go.

    endpoints : list of str
        The paths counted by name; every other path is counted as "other".
    """
    app.add_middleware(InFlightMiddleware, max_bytes=settings.max_inflight_bytes)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(ReadTimeoutMiddleware, seconds=float(settings.read_timeout))
    if settings.limit_concurrency is not None:
        app.add_middleware(ConcurrencyMiddleware, limit=settings.limit_concurrency)
    keyed = KEYED_PREFIXES
    if settings.admin_key is not None:
        keyed = tuple(p for p in KEYED_PREFIXES if p not in ADMIN_PREFIXES)
        app.add_middleware(ApiKeyMiddleware, api_key=settings.admin_key,
                           prefixes=ADMIN_PREFIXES, header=ADMIN_KEY_HEADER)
    if settings.api_key is not None:
        app.add_middleware(ApiKeyMiddleware, api_key=settings.api_key,
                           prefixes=keyed)
    app.add_middleware(CrossSiteMiddleware, allowed_hosts=settings.allowed_hosts)
    app.add_middleware(HostMiddleware, allowed_hosts=settings.allowed_hosts)
    app.add_middleware(MetricsMiddleware, metrics=metrics, endpoints=endpoints)
    app.add_middleware(AccessLogMiddleware)
    app.add_middleware(RequestIdMiddleware)
    log_request_ids()
