"""Prometheus metrics of the API: request counts and latency by route template.

Each app has its own registry (so several apps in one process, as in tests, do not clash);
`/metrics` serves it together with the process-wide default registry, where services and
the process collector register theirs.
"""

from __future__ import annotations

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["ApiMetrics", "CONTENT_TYPE"]

CONTENT_TYPE = prometheus_client.CONTENT_TYPE_LATEST

# Latency buckets from 250 µs to 2.5 s: the API's targets are in milliseconds.
_BUCKETS = (0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


class ApiMetrics:
    """The API's own metrics. Label children are cached: looking one up in
    prometheus-client costs more than the observation itself."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "fogcore_http_requests",
            "HTTP requests by method, route template and status",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "fogcore_http_request_duration_seconds",
            "Time from request to the end of the response, by method and route template",
            ("method", "route"),
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "fogcore_http_rate_limited",
            "Requests refused with 429, by limit",
            ("limit",),
            registry=self.registry,
        )
        self.auth_failures = Counter(
            "fogcore_auth_failures", "Failed logins and rejected tokens", registry=self.registry
        )
        self._counts: dict[tuple[str, str, int], object] = {}
        self._latencies: dict[tuple[str, str], object] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one finished request."""
        key = (method, route, status)
        counter = self._counts.get(key)
        if counter is None:
            counter = self._counts[key] = self.requests.labels(method, route, str(status))
        counter.inc()
        lkey = (method, route)
        histogram = self._latencies.get(lkey)
        if histogram is None:
            histogram = self._latencies[lkey] = self.latency.labels(method, route)
        histogram.observe(seconds)

    def render(self) -> bytes:
        """The text exposition of this app's and the process-wide metrics."""
        return prometheus_client.generate_latest(self.registry) + prometheus_client.generate_latest(
            prometheus_client.REGISTRY
        )
