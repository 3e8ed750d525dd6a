"""Threads: n_jobs worked out once per process, groups of work side by side."""

import threading
import time

import joblib
import pytest

import hybridclf.utils._parallel as parallel
from hybridclf.utils._parallel import effective_threads, in_worker, run_shared


@pytest.mark.parametrize("n_jobs", [1, 3, -1, -2, None])
def test_effective_threads_equal_joblibs(n_jobs):
    assert effective_threads(n_jobs) == joblib.effective_n_jobs(n_jobs)


def test_effective_threads_follow_the_joblib_config():
    with joblib.parallel_config(n_jobs=3):
        assert effective_threads(None) == 3
    with joblib.parallel_config(backend="sequential"):
        assert effective_threads(-1) == 1
    assert effective_threads(None) == 1


def test_the_cpu_count_is_read_once(monkeypatch):
    calls = []

    def counted(n_jobs):
        calls.append(n_jobs)
        return 7

    monkeypatch.setattr(parallel, "effective_n_jobs", counted)
    parallel._effective_threads.cache_clear()
    try:
        assert [effective_threads(-1) for _ in range(3)] == [7, 7, 7]
        assert effective_threads(2) == 7
        assert calls == [-1, 2]
    finally:
        parallel._effective_threads.cache_clear()


def _recorder(seen, value, wait_for=None):
    def record():
        seen.append((value, threading.current_thread().name, in_worker()))
        if wait_for is not None:
            assert wait_for.wait(10)
        return value

    return record


def test_this_thread_and_the_pool_share_the_functions():
    seen, started = [], threading.Event()

    def second():
        started.set()
        return _recorder(seen, 2)()

    # the first waits until a pool thread has taken the second
    funcs = [_recorder(seen, 1, wait_for=started), second, _recorder(seen, 3)]
    assert run_shared(funcs, 2) == [1, 2, 3]
    thread = {value: name for value, name, _ in seen}
    here = threading.current_thread().name
    assert thread[1] == here and thread[2] != here
    # what the functions start runs serially, here as in the pool
    assert all(worker for _, _, worker in seen)
    assert not in_worker()


def test_one_thread_runs_everything_here_in_order():
    seen = []
    assert run_shared([_recorder(seen, k) for k in range(4)], 1) == [0, 1, 2, 3]
    assert [value for value, _, _ in seen] == [0, 1, 2, 3]
    assert {name for _, name, _ in seen} == {threading.current_thread().name}


def test_a_failure_stops_the_others_and_is_raised():
    ran = []

    def fail():
        raise ValueError("boom")

    def slow():
        time.sleep(0.05)
        ran.append("slow")

    with pytest.raises(ValueError, match="boom"):
        run_shared([fail, slow, lambda: ran.append("late")], 2)
    assert "late" not in ran or "slow" in ran  # nothing left running after
    assert not in_worker()
