"""The Dask cluster: a ``--scheduler`` value and the client it opens.

:func:`parse_scheduler` checks ``local:N`` or a scheduler address;
:func:`dask_client` opens a client on a new ``LocalCluster`` or on a running
scheduler (checked first by ``_check_scheduler``: a mistyped address fails
at once rather than after a long wait, or never), and closes what it opened.
"""

import asyncio
import logging
import os
import re
import signal
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from ..exceptions import ClusterError
from ..utils._optional import import_or_raise

__all__ = ["dask_client", "parse_scheduler"]

logger = logging.getLogger(__name__)

_SCHEMES = ("tcp", "tls", "ws", "wss", "ucx", "inproc")
# tcp:// and tls:// addresses need their port: host:port or [ipv6]:port
_HOST_PORT = re.compile(r"(?:tcp|tls)://(\[[^\]\s]+\]|[^:/\s\[\]]+):(\d{1,5})")
_TRIM_KEY = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"


def parse_scheduler(address):
    """Check a ``--scheduler`` value: ``local:N`` or a scheduler address.

    Parameters
    ----------
    address : str
        ``"local:N"`` starts a ``LocalCluster`` of N worker processes on
        this machine (``"local"`` alone: one per core); a URL such as
        ``"tcp://10.0.0.5:8786"`` joins the running scheduler there.

    Returns
    -------
    kind : {"local", "remote"}
        What to do.

    value : int or str
        The number of local workers, or the address.

    Raises
    ------
    ValueError
        When the value is neither.

    Examples
    --------
    >>> from hybridclf.distributed import parse_scheduler
    >>> parse_scheduler("local:2")
    ('local', 2)
    >>> parse_scheduler("tcp://10.0.0.5:8786")
    ('remote', 'tcp://10.0.0.5:8786')
    """
    text = str(address).strip()
    match = re.fullmatch(r"local(?::(\d+))?", text)
    if match:
        n = int(match.group(1)) if match.group(1) else (os.cpu_count() or 1)
        if n >= 1:
            return "local", n
    elif re.fullmatch(r"[a-z]+://\S+", text) and text.split(":")[0] in _SCHEMES and (
            text.split(":")[0] not in ("tcp", "tls") or _HOST_PORT.fullmatch(text)):
        return "remote", text
    raise ValueError(
        "The '--scheduler' option must be 'local:N' (N >= 1 worker processes on "
        "this machine) or the address of a running Dask scheduler such as "
        f"'tcp://10.0.0.5:8786' (schemes: {', '.join(_SCHEMES)}; tcp and tls "
        "with the scheduler's port, 8786 by default). Got "
        f"{address!r} instead. Start a scheduler with 'dask scheduler' and "
        "workers with 'dask worker tcp://HOST:8786'."
    )


def _check_scheduler(address, timeout):
    """Raise :class:`ClusterError` at once for an address no scheduler answers.

    Dask's client retries a connection until its timeout (30 s) whatever
    went wrong, and waits for the scheduler's handshake without one: a
    mistyped host or port cost half a minute, and the address of another
    service (the dashboard's port, 8787, for the scheduler's, 8786) never
    ended, or failed on an exabyte allocation. So, for ``tcp://`` (and
    ``tls://`` up to the handshake): a host name that does not resolve and a
    refused connection fail at once, a connection not answered fails after
    ``timeout``, and a service that does not answer as a Dask scheduler
    within ``min(timeout, 10)`` seconds fails then.
    """
    match = _HOST_PORT.fullmatch(address)
    if match is None:  # other schemes: as Dask does
        return
    host, port = match.group(1).strip("[]"), int(match.group(2))

    def fail(why):
        return ClusterError(
            f"Cannot reach the Dask scheduler {address!r} given as '--scheduler': "
            f"{why}. Check the address ('dask scheduler' prints it; its port is "
            "8786 by default), that the scheduler runs and that its port is "
            "open from this machine, or use 'local:N'.")

    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise fail(f"the host name {host!r} is not known ({exc})") from exc
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except ConnectionRefusedError as exc:
        raise fail(f"nothing listens on port {port} of {host!r} "
                   "(connection refused)") from exc
    except OSError as exc:  # TimeoutError included: a firewall, no route
        raise fail(f"no connection to port {port} of {host!r} within "
                   f"{timeout:g} s ({exc or type(exc).__name__})") from exc
    if address.startswith("tls://"):
        return  # the handshake needs the security settings: the client's job
    wait = min(timeout, 10)
    try:
        with ThreadPoolExecutor(1) as pool:  # a loop of its own (notebooks)
            pool.submit(asyncio.run, _handshake(address, wait)).result()
    except Exception as exc:  # garbage read as a frame length, a timeout...
        said = f"{type(exc).__name__}: {str(exc)[:120]}" if str(exc) else (
            f"no handshake, {type(exc).__name__}")
        raise fail(f"port {port} of {host!r} answers, but not as a Dask "
                   f"scheduler within {wait:g} s ({said}): the dashboard's "
                   "port (8787 by default) or another service") from exc


async def _handshake(address, wait):
    """Connect to ``address`` and exchange Dask's handshake, within ``wait`` s."""
    from distributed.comm import connect

    comm = await asyncio.wait_for(connect(address, timeout=wait), wait)
    await comm.close()


@contextmanager
def _workers_ignore_ctrl_c():
    """Start processes that ignore SIGINT: Ctrl+C reaches every process of the
    terminal, and each worker printed its traceback; this one stops them."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handler = signal.signal(signal.SIGINT, signal.SIG_IGN)  # inherited on spawn
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, handler)


@contextmanager
def dask_client(scheduler, *, timeout=30):
    """A ``dask.distributed.Client`` for a ``--scheduler`` value; closed on exit.

    Parameters
    ----------
    scheduler : str
        ``"local:N"`` starts a ``LocalCluster`` of N single-threaded worker
        processes on 127.0.0.1 (OpenCV on one thread, glibc's default
        ``malloc`` trimming), closed on exit; an address such as
        ``"tcp://host:8786"`` connects to a running scheduler (its workers
        are left running). See :func:`parse_scheduler`.

    timeout : float, default=30
        Seconds to wait for the scheduler.

    Yields
    ------
    client : distributed.Client
        The client.

    Raises
    ------
    ClusterError
        When the scheduler cannot be reached: at once for a host name that
        does not resolve or a port where nothing listens, within
        ``min(timeout, 10)`` seconds for a port that answers but not as a
        Dask scheduler (such as the dashboard's), after ``timeout`` when
        the connection is not answered.
    """
    kind, value = parse_scheduler(scheduler)
    distributed = import_or_raise("distributed", "hybridclf on a Dask cluster")
    if kind == "remote":
        _check_scheduler(value, timeout)
    cluster = None
    try:
        if kind == "local":
            dask = import_or_raise("dask", "hybridclf on a Dask cluster")
            # Dask's default MALLOC_TRIM_THRESHOLD_ turns off glibc's dynamic
            # mmap threshold: every large image buffer is then mapped and
            # faulted in again, which made the feature steps about twice as
            # slow. One OpenCV thread per worker, as one task runs at a time.
            with dask.config.set({_TRIM_KEY: None}), _workers_ignore_ctrl_c():
                cluster = distributed.LocalCluster(
                    n_workers=value, threads_per_worker=1, processes=True,
                    host="127.0.0.1", dashboard_address=":0",
                    silence_logs=logging.ERROR,
                    env={"OPENCV_FOR_THREADS_NUM": "1"},
                )
            client = distributed.Client(cluster, timeout=timeout)
        else:
            client = distributed.Client(value, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        if cluster is not None:
            cluster.close()
        raise ClusterError(
            f"Cannot reach the Dask scheduler {scheduler!r} given as "
            f"'--scheduler' ({exc}). Check that 'dask scheduler' runs there and "
            "that its port is open from this machine, or use 'local:N'."
        ) from exc
    n_workers = len(client.scheduler_info()["workers"])
    logger.info("Dask client on %s with %d workers", client.scheduler.address,
                n_workers)
    if n_workers == 0:
        # the tasks wait for workers: without a word, the command seemed to
        # hang (an adaptive cluster starts them when tasks come, so no error)
        logger.warning(
            "The Dask scheduler %s has no workers: the work waits until some "
            "join it (start them with 'dask worker %s'; an adaptive cluster "
            "starts them itself).", scheduler, client.scheduler.address)
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
