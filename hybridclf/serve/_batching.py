"""Micro-batching: concurrent prediction requests share one model call.

This module does not import FastAPI: it is a thread and a queue, tested on
its own (tests/test_microbatch.py).
"""

import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future

__all__ = ["MicroBatcher"]


class MicroBatcher:
    """Run ``fn`` once on the items of requests that arrive together.

    Requests queue their items; one worker thread takes every queued request,
    up to ``max_items`` items, calls ``fn(items)`` once and hands each request
    its share of the results. A lone request waits for nothing: the worker
    starts on it at once, so requests are batched only when they overlap,
    that is when the model is busy. One thread calling the model also keeps
    concurrent requests from fighting over the cores.

    ``fn`` may answer in stages: a generator that yields ``{position:
    result}`` dicts as results are ready (a cascade's early answers, then the
    others). Each request is answered as soon as all its items are, so a
    photo answered early does not wait for the rest of its batch.

    Parameters
    ----------
    fn : callable
        ``fn(items) -> results``, one result per item, in order; or a
        generator of dicts mapping item positions to their results, which
        together cover every item.

    max_items : int, default=32
        Most items in one call of ``fn``; a request larger than this still
        runs, alone.

    name : str, default="serve-batcher"
        Name of the worker thread.

    on_idle : callable or None, default=None
        Called (without arguments, in the worker thread) once the worker has
        had nothing to do for ``idle_s`` seconds after a call of ``fn``, and
        under a load that never leaves it idle, after a call of ``fn`` once
        ``busy_s`` seconds have passed since the last time; the service gives
        the memory of the finished batches back to the system there.

    idle_s : float, default=0.25
        See ``on_idle``.

    busy_s : float or None, default=None
        See ``on_idle``; None waits for an idle moment.
    """

    def __init__(self, fn, *, max_items=32, name="serve-batcher", on_idle=None,
                 idle_s=0.25, busy_s=None):
        self._fn = fn
        self._max_items = int(max_items)
        self._on_idle = on_idle
        self._idle_s = float(idle_s)
        self._busy_s = busy_s
        self._worked = False  # a call of fn since the last on_idle
        self._last_idle = time.monotonic()
        self._cond = threading.Condition()
        self._queue = deque()
        self._closed = False
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def submit(self, items):
        """Queue ``items``; a future of their results (a list)."""
        future = Future()
        with self._cond:
            if self._closed:
                raise RuntimeError("The micro-batcher is closed; the service is "
                                   "shutting down.")
            self._queue.append((list(items), future))
            self._cond.notify()
        return future

    def __call__(self, items):
        """The results of ``fn`` for ``items``, computed with other requests'."""
        return self.submit(items).result()

    def close(self):
        """Finish the queued requests, then stop the worker thread."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join()

    def _take(self):
        """The next batch; None when idle after work; [] once closed and done."""
        with self._cond:
            while not self._queue and not self._closed:
                if not (self._worked and self._on_idle is not None):
                    self._cond.wait()
                elif not self._cond.wait(self._idle_s) and not self._queue:
                    self._worked = False
                    return None
            batch, n_items = [], 0
            while self._queue and (
                    not batch or n_items + len(self._queue[0][0]) <= self._max_items):
                request = self._queue.popleft()
                batch.append(request)
                n_items += len(request[0])
            return batch

    def _work(self):
        while (batch := self._take()) != []:
            if batch is not None:
                self._run(batch)
                busy = time.monotonic() - self._last_idle
                if (self._on_idle is None or self._busy_s is None
                        or busy < self._busy_s):
                    continue
            self._on_idle()  # idle, or busy for busy_s: after the answers
            self._last_idle = time.monotonic()

    def _run(self, batch):
        self._worked = True
        items = [item for request, _ in batch for item in request]
        try:
            _deliver(batch, self._fn(items))
        except BaseException as exc:  # noqa: BLE001 - handed to the callers
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)


def _deliver(batch, results):
    """Answer each request of ``batch`` as soon as all its items have results."""
    if not isinstance(results, Iterator):
        results = iter([dict(enumerate(results))])
    pending, start = [], 0
    for request, future in batch:
        pending.append((range(start, start + len(request)), future))
        start += len(request)
    done = {}
    for ready in results:
        done.update(ready)
        waiting = []
        for positions, future in pending:
            if all(i in done for i in positions):
                future.set_result([done[i] for i in positions])
            else:
                waiting.append((positions, future))
        pending = waiting
    for positions, future in pending:
        if all(i in done for i in positions):  # an empty request
            future.set_result([])
        else:
            future.set_exception(RuntimeError(
                f"The model call answered {len(done)} of {start} images; "
                "this is a bug in hybridclf, please report it."))
