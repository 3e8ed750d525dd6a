"""Micro-batching: concurrent prediction requests share one model call.

This module does not import FastAPI: it is a thread and a queue, tested on
its own (tests/test_microbatch.py).
"""

import threading
from collections import deque
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

    Parameters
    ----------
    fn : callable
        ``fn(items) -> results``, one result per item, in order.

    max_items : int, default=32
        Most items in one call of ``fn``; a request larger than this still
        runs, alone.

    name : str, default="serve-batcher"
        Name of the worker thread.
    """

    def __init__(self, fn, *, max_items=32, name="serve-batcher"):
        self._fn = fn
        self._max_items = int(max_items)
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
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            batch, n_items = [], 0
            while self._queue and (
                    not batch or n_items + len(self._queue[0][0]) <= self._max_items):
                request = self._queue.popleft()
                batch.append(request)
                n_items += len(request[0])
            return batch

    def _work(self):
        while batch := self._take():
            items = [item for request, _ in batch for item in request]
            try:
                results = self._fn(items)
            except BaseException as exc:  # noqa: BLE001 - handed to the callers
                for _, future in batch:
                    future.set_exception(exc)
                continue
            start = 0
            for request, future in batch:
                future.set_result(list(results[start : start + len(request)]))
                start += len(request)
