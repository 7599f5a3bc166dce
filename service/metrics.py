"""Prometheus metrics of the service (one registry per app, so tests can build many apps)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from bisonsync.ingest import event_type_label
from bisonsync.keys import key_fallback_counts

#: every outcome a verdict can carry; anything else is counted as `failed`
OUTCOMES = frozenset({"applied", "duplicate", "ignored", "rejected", "invalid", "unavailable", "failed"})

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass
class ServiceMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.deliveries = Counter(
            "bisonsync_webhook_deliveries",
            "Webhook deliveries by event type (catalogue types, else unknown) and outcome (rejected = wrong or "
            "missing token, answered 401 before parsing; unavailable = store down, answered 503)",
            ("event_type", "outcome"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "bisonsync_webhook_latency_seconds",
            "Time from request body read to response, by outcome",
            ("outcome",),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

        self.registry.register(_KeyFallbacks())

    def observe(self, event_type: str, outcome: str, seconds: float) -> None:
        """Count one delivery. Labels are bounded whatever the caller passes: the type only if it is in the
        catalogue (else `unknown`), the outcome only from `OUTCOMES`, so a body cannot grow /metrics."""
        outcome = outcome if outcome in OUTCOMES else "failed"
        self.deliveries.labels(event_type=event_type_label(event_type), outcome=outcome).inc()
        self.latency.labels(outcome=outcome).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _KeyFallbacks(Collector):
    """Workspace keys Email Bison refused mid-poll (counted by the library, bisonsync.keys)."""

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "bisonsync_bison_key_fallbacks",
            "Workspace API keys refused by Email Bison; the workspace fell back to the super-admin key",
            labels=["instance"],
        )
        for instance, count in sorted(key_fallback_counts().items()):
            family.add_metric([instance], count)
        yield family
