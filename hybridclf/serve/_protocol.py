"""uvicorn's HTTP protocol with a deadline for a new connection's request headers.

uvicorn times a connection only once a request was answered (its keep-alive
timeout): a client that connects and sends its request line and headers one
byte a second held its socket for as long as it liked, and ``--limit-
concurrency`` counts such sockets, so 20 of them had every other client
answered 503. :func:`protocol_with_header_deadline` gives uvicorn a protocol
that closes a connection whose first request's headers are not in within the
server's read timeout (the body then has that long again, see
``ReadTimeoutMiddleware``). It is the protocol uvicorn would pick itself
(httptools when installed, else h11), and it is picklable: the workers of
``serve --workers N`` receive it. This module is imported only by ``serve``.
"""

import functools

from uvicorn.protocols.http.auto import AutoHTTPProtocol

__all__ = ["protocol_with_header_deadline"]


class HeaderDeadlineProtocol(AutoHTTPProtocol):
    """uvicorn's protocol; a connection without request headers in time is closed.

    Parameters
    ----------
    *args, **kwargs
        uvicorn's protocol's.

    header_timeout : float
        Seconds from the connection to its first request's headers.
    """

    def __init__(self, *args, header_timeout, **kwargs):
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout

    def connection_made(self, transport):
        super().connection_made(transport)
        self.loop.call_later(self.header_timeout, self._close_without_request)

    def _close_without_request(self):
        # uvicorn makes a request's cycle once its headers are parsed
        if getattr(self, "cycle", None) is None and not self.transport.is_closing():
            self.transport.close()


def protocol_with_header_deadline(seconds):
    """The ``http`` protocol factory to give ``uvicorn.run``.

    Parameters
    ----------
    seconds : float
        Seconds a new connection has to send its request line and headers.

    Returns
    -------
    protocol : functools.partial
        :class:`HeaderDeadlineProtocol` with ``header_timeout=seconds``.
    """
    return functools.partial(HeaderDeadlineProtocol, header_timeout=float(seconds))
