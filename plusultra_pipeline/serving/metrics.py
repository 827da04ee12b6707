"""Prometheus collectors of one server (`prometheus_client`, text format at ``/metrics``).

Each app gets its own `CollectorRegistry`, so several servers in one process (tests) do not
collide on metric names. Forward time is measured by forward hooks on the served module -- the
model alone, without the database read, features and risk -- and kept per thread, since requests
run concurrently on a thread pool.
"""

from __future__ import annotations

import threading
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

disable_created_metrics()  # the *_created series double the output and no dashboard reads them

# request latency buckets: 5 ms .. 30 s (a 500-symbol day, history read included, takes ~3.6 s here)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
FORWARD_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class ServerMetrics:
    """Request counts/latencies per endpoint and status, model forward time, loaded model facts."""

    def __init__(self, holder_ref=None):
        self.registry = CollectorRegistry()
        self.requests = Counter("plusultra_requests_total", "HTTP requests by endpoint, method and status",
                                ["endpoint", "method", "status"], registry=self.registry)
        self.latency = Histogram("plusultra_request_duration_seconds", "HTTP request latency by endpoint",
                                 ["endpoint", "method"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.forward = Histogram("plusultra_model_forward_seconds", "Time of one forward pass of the served "
                                 "model (a batch of windows)", buckets=FORWARD_BUCKETS, registry=self.registry)
        self.predict = Histogram("plusultra_predict_seconds", "Agent time per /predict: read, features, "
                                 "forward, risk", buckets=LATENCY_BUCKETS, registry=self.registry)
        self.predicted_rows = Counter("plusultra_predicted_rows_total", "Prediction rows returned",
                                      registry=self.registry)
        self.reloads = Counter("plusultra_reloads_total", "Reloads by outcome", ["outcome"], registry=self.registry)
        self.age = Gauge("plusultra_checkpoint_age_seconds", "Seconds since the served checkpoint was written",
                         registry=self.registry)
        self.info = Gauge("plusultra_model_info", "The served model (value 1)",
                          ["cutoff", "checkpoint_id", "lineage_id"], registry=self.registry)
        self._local = threading.local()
        self._holder = holder_ref
        self.age.set_function(self._age)

    def bind(self, holder) -> None:
        """Read the checkpoint age from ``holder.current`` at every scrape."""
        self._holder = holder

    def _age(self) -> float:
        model = self._holder.current if self._holder is not None else None
        age = model.age_seconds() if model is not None else None
        return float("nan") if age is None else age

    def on_load(self, model) -> None:
        """Instrument a newly loaded model's forward pass and publish its identity."""
        module = model.agent.module
        module.register_forward_pre_hook(self._start)
        module.register_forward_hook(self._stop)
        self.info.clear()
        self.info.labels(str(model.cutoff), model.checkpoint_id, model.lineage_id).set(1)

    def _start(self, module, args):
        self._local.t0 = time.perf_counter()

    def _stop(self, module, args, output):
        t0 = getattr(self._local, "t0", None)
        if t0 is not None:
            self.forward.observe(time.perf_counter() - t0)
            self._local.t0 = None

    def observe(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint, method, str(status)).inc()
        self.latency.labels(endpoint, method).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
