"""uvicorn's HTTP protocol with a deadline for every request's headers.

uvicorn times a connection only while it is idle between requests (its
keep-alive timeout, which stops as soon as a byte arrives): a client that
sends its request line and headers one byte a second held its socket for as
long as it liked, on a new connection or after a first fast request on a
keep-alive one, and uvicorn's ``limit_concurrency`` counts such sockets, so
20 of them had every other client answered 503. :func:`protocol_with_header_deadline`
gives uvicorn a protocol that closes a connection whose next request's
headers are not in within the server's read timeout, counted from the
connection for the first request and from the previous answer for the
others (the body then has that long again, see ``ReadTimeoutMiddleware``).
It is the protocol uvicorn would pick itself (httptools when installed, else
h11), and it is picklable: the workers of ``serve --workers N`` receive it.
This module is imported only by ``serve``.
"""

import functools

from uvicorn.protocols.http.auto import AutoHTTPProtocol

__all__ = ["protocol_with_header_deadline"]


class HeaderDeadlineProtocol(AutoHTTPProtocol):
    """uvicorn's protocol; a connection without request headers in time is closed.

    The deadline starts when the connection is made and again when each
    answer is complete; it is met when uvicorn has parsed the next request's
    headers (it makes a new request cycle then). A request being answered,
    however long it takes, is never cut.

    Parameters
    ----------
    *args, **kwargs
        uvicorn's protocol's.

    header_timeout : float
        Seconds from the connection, or from the previous answer, to the next
        request's headers.
    """

    def __init__(self, *args, header_timeout, **kwargs):
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout
        self._header_timer = None

    def connection_made(self, transport):
        super().connection_made(transport)
        self._start_header_deadline()

    def on_response_complete(self):
        super().on_response_complete()
        self._start_header_deadline()

    def _start_header_deadline(self):
        if self._header_timer is not None:
            self._header_timer.cancel()
        # the cycle now: uvicorn makes a new one once the next headers are in
        self._header_timer = self.loop.call_later(
            self.header_timeout, self._close_without_headers,
            getattr(self, "cycle", None))

    def _close_without_headers(self, cycle):
        self._header_timer = None
        waiting = getattr(self, "cycle", None) is cycle and (
            cycle is None or cycle.response_complete)
        if waiting and not self.transport.is_closing():
            self.transport.close()


def protocol_with_header_deadline(seconds):
    """The ``http`` protocol factory to give ``uvicorn.run``.

    Parameters
    ----------
    seconds : float
        Seconds a connection has to send each request line and headers (see
        :class:`HeaderDeadlineProtocol`).

    Returns
    -------
    protocol : functools.partial
        :class:`HeaderDeadlineProtocol` with ``header_timeout=seconds``.
    """
    return functools.partial(HeaderDeadlineProtocol, header_timeout=float(seconds))
