"""Prometheus metrics of the service, and what ``GET /health`` counts.

One :class:`Metrics` per app, in a registry of its own. With several uvicorn
workers prometheus-client runs in multiprocess mode (``serve`` sets
``PROMETHEUS_MULTIPROC_DIR``): ``/metrics`` and ``/health`` then sum every
worker's figures. A new metric is one more collector in :class:`Metrics`.
"""

import os

__all__ = ["MULTIPROC_ENV", "Metrics", "all_worker_totals", "memory_mb",
           "multiprocess"]

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

    def exposition(self):
        """The Prometheus text of every worker (multiprocess) or this one."""
        from prometheus_client import CollectorRegistry, generate_latest

        if not multiprocess():
            return generate_latest(self.registry)
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry)
