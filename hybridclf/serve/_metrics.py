"""Prometheus metrics of the service, and what ``GET /health`` counts.

One :class:`Metrics` per app, in a registry of its own. With several uvicorn
workers prometheus-client runs in multiprocess mode (``serve`` sets
``PROMETHEUS_MULTIPROC_DIR``): ``/metrics`` and ``/health`` then sum every
worker's figures. A new metric is one more collector in :class:`Metrics`.

The answers are counted by class (``hybridclf_predictions_total``), by why
they are unknown (``hybridclf_unknown_total``) and by confidence
(``hybridclf_prediction_confidence``), so that a shift in what people send
shows on a dashboard before anyone reports wrong answers.
"""

import os
import threading
import time

from ..prediction import UNKNOWN

__all__ = ["MULTIPROC_ENV", "Metrics", "all_worker_totals", "cpu_percent",
           "memory_mb", "multiprocess"]

#: The variable that turns prometheus-client's multiprocess mode on.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def memory_mb():
    """Resident memory of this process in MB."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:  # pragma: no cover - not Linux
        pass
    import resource  # pragma: no cover

    usage = resource.getrusage(resource.RUSAGE_SELF)  # pragma: no cover
    return usage.ru_maxrss / 1024.0  # pragma: no cover


class _CpuMeter:
    """CPU use of this process between two readings, as ``top`` shows it."""

    #: Readings closer than this repeat the last figure (too short to measure).
    MIN_INTERVAL = 0.05

    def __init__(self):
        self._lock = threading.Lock()
        self._wall, self._cpu = time.monotonic(), time.process_time()
        self._last = 0.0

    def read(self):
        with self._lock:
            wall, cpu = time.monotonic(), time.process_time()
            if wall - self._wall >= self.MIN_INTERVAL:
                self._last = 100.0 * (cpu - self._cpu) / (wall - self._wall)
                self._wall, self._cpu = wall, cpu
            return self._last


_CPU = _CpuMeter()


def cpu_percent():
    """CPU use of this process since the previous call, in percent of one core.

    The CPU time of every thread of the process (:func:`time.process_time`)
    over the wall time since the previous call (since the module was imported,
    for the first), so 250 means two and a half cores busy, as ``top`` counts.
    Calls less than 50 ms apart answer the previous figure. It is the process's
    own use, not the machine's: with ``--workers N`` each worker answers its
    own.
    """
    return _CPU.read()


def multiprocess():
    """Whether prometheus-client sums the metrics of several worker processes."""
    return bool(os.environ.get(MULTIPROC_ENV))


def all_worker_totals():
    """Sample name -> value summed over every worker (multiprocess mode)."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    totals = {}
    for metric in registry.collect():
        for sample in metric.samples:
            totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return totals


class Metrics:
    """Prometheus collectors in a registry of their own (one per app)."""

    def __init__(self):
        from prometheus_client import CollectorRegistry, Counter, Histogram, Summary

        self.registry = CollectorRegistry()
        self.requests = Counter(
            "hybridclf_requests_total", "HTTP requests by endpoint and status.",
            ["endpoint", "method", "status"], registry=self.registry)
        self.latency = Histogram(
            "hybridclf_request_latency_seconds", "HTTP request latency.",
            ["endpoint"], registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.inference = Histogram(
            "hybridclf_inference_seconds", "Model inference time per call.",
            ["endpoint"], registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                     2.5))
        self.errors = Counter(
            "hybridclf_errors_total", "Requests answered with an error status.",
            ["endpoint", "status"], registry=self.registry)
        self.batch_size = Histogram(
            "hybridclf_batch_images", "Images per model call (micro-batching "
            "joins the requests that wait while the model is busy).",
            registry=self.registry, buckets=(1, 2, 4, 8, 16, 32, 64))
        self.images = Counter(
            "hybridclf_images_predicted_total", "Images predicted.",
            registry=self.registry)
        self.calls = Summary(
            "hybridclf_prediction_call_seconds", "Time of each prediction "
            "request's model work (what /health averages).",
            registry=self.registry)
        self._add_loop_metrics()

    def _add_loop_metrics(self):
        """What people send and what the model answers; corrections, reloads."""
        from prometheus_client import Counter, Gauge, Histogram

        self.predicted = Counter(
            "hybridclf_predictions_total", "Answers by predicted class "
            "('unknown' included).", ["predicted_class"], registry=self.registry)
        self.unknown = Counter(
            "hybridclf_unknown_total", "'unknown' answers, by reason: "
            "below_threshold (the request's confidence_threshold) or "
            "out_of_distribution (the model's open-set check).", ["reason"],
            registry=self.registry)
        self.confidence = Histogram(
            "hybridclf_prediction_confidence", "Top probability of each answer.",
            registry=self.registry,
            buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0))
        self.feedback = Counter(
            "hybridclf_feedback_total", "Corrections received (POST /feedback): "
            "'new' photos stored, 'known' ones already there.", ["stored"],
            registry=self.registry)
        self.reloads = Counter(
            "hybridclf_model_reloads_total", "Model reloads, 'done' or 'refused' "
            "(a model that failed its checks; the old one kept serving).",
            ["result"], registry=self.registry)
        # 1 for the version that serves; max over the live workers
        self.model_info = Gauge(
            "hybridclf_model_info", "The model version served (value 1).",
            ["model_version"], registry=self.registry, multiprocess_mode="livemax")

    def observe_answer(self, predicted_class, confidence, *,
                       out_of_distribution=False):
        """Count one answer: its class, its confidence, why it is unknown.

        Parameters
        ----------
        predicted_class : str
            The class answered, or "unknown".

        confidence : float
            Its top probability.

        out_of_distribution : bool, default=False
            Whether the model's open-set check made it "unknown" (else an
            "unknown" answer is below the request's threshold).
        """
        self.predicted.labels(predicted_class).inc()
        self.confidence.observe(confidence)
        if predicted_class == UNKNOWN:
            self.unknown.labels("out_of_distribution" if out_of_distribution
                                else "below_threshold").inc()

    def set_model(self, version, previous=None):
        """Say which model version serves (and that ``previous`` no longer does)."""
        if previous is not None and previous != version:
            self.model_info.labels(previous).set(0)
        self.model_info.labels(version).set(1)

    def close(self):
        """Drop this worker's live gauges as it stops (multiprocess mode).

        A worker replaced by a rolling restart (SIGHUP to ``serve --workers
        N``) would else still report the version it served.
        """
        if multiprocess():
            from prometheus_client.multiprocess import mark_process_dead

            mark_process_dead(os.getpid())

    def exposition(self):
        """The Prometheus text of every worker (multiprocess) or this one."""
        from prometheus_client import CollectorRegistry, generate_latest

        if not multiprocess():
            return generate_latest(self.registry)
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry)
