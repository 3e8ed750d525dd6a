"""Threads: n_jobs worked out once per process, groups of work side by side."""

import threading
import time

import joblib
import pytest

import hybridclf.utils._parallel as parallel
from hybridclf.utils._parallel import effective_threads, in_worker, run_groups


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


def _recorder(seen, value):
    def record():
        seen.append((value, threading.current_thread().name, in_worker()))
        return value

    return record


def test_the_first_group_runs_here_the_others_in_the_pool():
    seen = []
    groups = [[_recorder(seen, 1), _recorder(seen, 2)], [_recorder(seen, 3)],
              [_recorder(seen, 4), _recorder(seen, 5)]]
    assert run_groups(groups) == [[1, 2], [3], [4, 5]]
    thread = {value: name for value, name, _ in seen}
    here = threading.current_thread().name
    assert thread[1] == thread[2] == here
    assert here not in (thread[3], thread[4], thread[5])
    # what the groups start runs serially, here as in the pool
    assert all(worker for _, _, worker in seen)
    assert not in_worker()


def test_a_failing_first_group_waits_for_the_others():
    finished = threading.Event()

    def slow():
        time.sleep(0.05)
        finished.set()

    def fail():
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        run_groups([[fail], [slow]])
    assert finished.is_set()
    assert not in_worker()
