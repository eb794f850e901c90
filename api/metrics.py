"""Prometheus metrics of the API: request counts and latency by route template.

Each app has its own registry (so several apps in one process, as in tests, do not clash);
`/metrics` serves it together with the process-wide default registry, where services and
the process collector register theirs.

The per-request figures are kept in plain dicts and lists and turned into metric families
when scraped: the API counts requests only on its event loop's thread, so the locks that
prometheus-client takes on every `inc` and `observe` (and its Python loop over the bucket
bounds) buy nothing there, and they cost more than the rest of the bookkeeping.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator

import prometheus_client
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

__all__ = ["ApiMetrics", "HeadStats", "RequestStats", "CONTENT_TYPE", "HEAD_REFUSAL_REASONS"]

CONTENT_TYPE = prometheus_client.CONTENT_TYPE_LATEST

# Latency buckets from 250 µs to 2.5 s: the API's targets are in milliseconds.
_BUCKETS = (0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
_BOUNDS = [prometheus_client.utils.floatToGoString(b) for b in _BUCKETS] + ["+Inf"]


class RequestStats:
    """Finished requests: counts by (method, route template, status) and a latency
    histogram by (method, route template). Call `observe` from one thread only (the event
    loop's); a scrape reads a consistent enough snapshot from the same thread."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str, int], int] = {}
        # Per key: one count per bucket (not cumulative), the +Inf bucket, then the sum.
        self.histograms: dict[tuple[str, str], list] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one finished request."""
        key = (method, route, status)
        counts = self.counts
        counts[key] = counts.get(key, 0) + 1
        histogram = self.histograms.get((method, route))
        if histogram is None:
            histogram = self.histograms[(method, route)] = [0] * (len(_BUCKETS) + 1) + [0.0]
        histogram[bisect_left(_BUCKETS, seconds)] += 1  # le is inclusive
        histogram[-1] += seconds

    def collect(self) -> Iterator[Metric]:
        """The two metric families (the registry's collector interface)."""
        requests = CounterMetricFamily(
            "fogcore_http_requests",
            "HTTP requests by method, route template and status",
            labels=("method", "route", "status"),
        )
        for (method, route, status), count in list(self.counts.items()):
            requests.add_metric((method, route, str(status)), count)
        yield requests
        latency = HistogramMetricFamily(
            "fogcore_http_request_duration_seconds",
            "Time from request to the end of the response, by method and route template",
            labels=("method", "route"),
        )
        for (method, route), histogram in list(self.histograms.items()):
            cumulative, buckets = 0, []
            for bound, count in zip(_BOUNDS, histogram, strict=False):
                cumulative += count
                buckets.append((bound, cumulative))
            latency.add_metric((method, route), buckets, histogram[-1])
        yield latency


#: Why the HTTP protocol refused a request head (the `reason` label).
HEAD_REFUSAL_REASONS = ("header_fields", "header_bytes", "head_timeout", "incomplete_heads")


class HeadStats:
    """Request heads refused before they reached the app, by reason, and the connections
    whose head is arriving now. Updated by the HTTP protocol on the event loop's thread."""

    def __init__(self) -> None:
        self.refused: dict[str, int] = dict.fromkeys(HEAD_REFUSAL_REASONS, 0)
        self.incomplete = 0

    def collect(self) -> Iterator[Metric]:
        """The two metric families (the registry's collector interface)."""
        refused = CounterMetricFamily(
            "fogcore_http_heads_refused",
            "Request heads refused before reaching the app, by reason",
            labels=("reason",),
        )
        for reason, count in list(self.refused.items()):
            refused.add_metric((reason,), count)
        yield refused
        yield GaugeMetricFamily(
            "fogcore_http_incomplete_heads",
            "Connections whose request head is still arriving",
            value=self.incomplete,
        )


class ApiMetrics:
    """The API's own metrics: `observe` per request (`RequestStats`), and the counters of
    rarer events (rate-limit refusals, authentication failures, refused request heads)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.stats = RequestStats()
        self.registry.register(self.stats)
        self.heads = HeadStats()
        self.registry.register(self.heads)
        self.rate_limited = Counter(
            "fogcore_http_rate_limited",
            "Requests refused with 429, by limit",
            ("limit",),
            registry=self.registry,
        )
        self.auth_failures = Counter(
            "fogcore_auth_failures", "Failed logins and rejected tokens", registry=self.registry
        )
        self.observe = self.stats.observe

    def render(self) -> bytes:
        """The text exposition of this app's and the process-wide metrics."""
        return prometheus_client.generate_latest(self.registry) + prometheus_client.generate_latest(
            prometheus_client.REGISTRY
        )
