"""MicroBatcher: requests that wait while the model is busy share one call."""

import threading

import pytest

pytest.importorskip("fastapi")  # hybridclf.serve needs it

from hybridclf.serve._batching import MicroBatcher  # noqa: E402


class _Gated:
    """fn that records its calls and holds the first one until released."""

    def __init__(self):
        self.calls = []
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self, items):
        self.calls.append(list(items))
        self.started.set()
        self.release.wait(5)
        if "boom" in items:
            raise ValueError("bad item")
        return [item * 10 for item in items]


def test_a_lone_request_runs_at_once_and_gets_its_results():
    fn = _Gated()
    fn.release.set()
    batcher = MicroBatcher(fn)
    assert batcher([1, 2, 3]) == [10, 20, 30]
    assert fn.calls == [[1, 2, 3]]
    batcher.close()


def test_requests_waiting_on_a_busy_model_share_the_next_call():
    fn = _Gated()
    batcher = MicroBatcher(fn, max_items=4)
    first = batcher.submit([1])
    assert fn.started.wait(5)  # the model is busy with the first request
    waiting = [batcher.submit([2, 3]), batcher.submit([4]), batcher.submit([5, 6])]
    fn.release.set()
    assert first.result(5) == [10]
    assert [f.result(5) for f in waiting] == [[20, 30], [40], [50, 60]]
    # at most 4 items per call: [2, 3] and [4] together, [5, 6] after
    assert fn.calls == [[1], [2, 3, 4], [5, 6]]
    batcher.close()


def test_a_request_larger_than_max_items_still_runs_alone():
    fn = _Gated()
    fn.release.set()
    batcher = MicroBatcher(fn, max_items=2)
    assert batcher([1, 2, 3]) == [10, 20, 30]
    batcher.close()


def test_an_error_reaches_every_request_of_its_call_and_the_worker_goes_on():
    fn = _Gated()
    batcher = MicroBatcher(fn)
    first = batcher.submit([1])
    assert fn.started.wait(5)
    failing = [batcher.submit(["boom"]), batcher.submit([2])]
    fn.release.set()
    assert first.result(5) == [10]
    for future in failing:
        with pytest.raises(ValueError, match="bad item"):
            future.result(5)
    assert batcher([3]) == [30]
    batcher.close()


def test_close_finishes_queued_requests_then_refuses_new_ones():
    fn = _Gated()
    batcher = MicroBatcher(fn)
    first = batcher.submit([1])
    assert fn.started.wait(5)
    queued = batcher.submit([2])
    closer = threading.Thread(target=batcher.close)
    closer.start()
    fn.release.set()
    closer.join(5)
    assert not closer.is_alive()
    assert first.result(0) == [10] and queued.result(0) == [20]
    with pytest.raises(RuntimeError, match="shutting down"):
        batcher.submit([3])


def test_a_request_answered_in_an_early_stage_does_not_wait_for_the_rest():
    late = threading.Event()

    def staged(items):  # odd items are easy: answered first, the rest later
        yield {i: item * 10 for i, item in enumerate(items) if item % 2}
        late.wait(5)
        yield {i: item * 10 for i, item in enumerate(items) if not item % 2}

    fn = _Gated()
    batcher = MicroBatcher(lambda items: fn(items) if items == [0] else staged(items))
    blocker = batcher.submit([0])  # holds the worker: the next two queue up
    assert fn.started.wait(5)
    easy, hard = batcher.submit([1, 3]), batcher.submit([2, 5])
    fn.release.set()
    assert blocker.result(5) == [0]
    assert easy.result(5) == [10, 30]  # while the hard one's call still runs
    assert not hard.done()
    late.set()
    assert hard.result(5) == [20, 50]
    batcher.close()


def test_a_staged_call_that_misses_an_item_fails_that_request_only():
    batcher = MicroBatcher(lambda items: iter([{0: "a"}]))
    with pytest.raises(RuntimeError, match="answered 1 of 2"):
        batcher([1, 2])
    batcher.close()


def test_on_idle_runs_once_the_worker_has_rested_after_work():
    idle = threading.Event()
    calls = []
    batcher = MicroBatcher(lambda items: items,
                           on_idle=lambda: (calls.append(1), idle.set()),
                           idle_s=0.05)
    assert not idle.wait(0.2)  # no work yet, nothing to give back
    assert batcher([1]) == [1]
    assert idle.wait(5)
    assert batcher([2]) == [2]
    batcher.close()
    assert 1 <= len(calls) <= 2


def test_under_sustained_load_on_idle_still_runs_every_busy_s():
    calls = []
    batcher = MicroBatcher(lambda items: items, on_idle=lambda: calls.append(1),
                           idle_s=60.0, busy_s=0.0)  # never idle long enough
    assert batcher([1]) == [1]
    assert batcher([2]) == [2]
    batcher.close()
    assert len(calls) >= 1  # after a batch, without waiting for an idle minute
