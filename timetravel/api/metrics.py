"""Prometheus metrics of one API process (prometheus-client).

Each app owns its registry (tests build several apps in one process). Run health (runs by
status, lag, coverage, fetch latency per source) is read at scrape time from the runs index
(delta-rs, milliseconds); lookup latency is a histogram the lookup route observes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from timetravel.schedule.health import Health

__all__ = ["ApiMetrics"]


class _HealthCollector(Collector):
    def __init__(self, health: Callable[[datetime], Health]) -> None:
        self.health = health

    def collect(self) -> Iterator[GaugeMetricFamily]:
        health = self.health(datetime.now(UTC))
        runs = GaugeMetricFamily(
            "timetravel_run_stages", "Run stages in the runs index", labels=["stage", "status"]
        )
        for key, count in health.runs_by_status.items():
            stage, status = key.split("/", 1)
            runs.add_metric([stage, status], count)
        yield runs
        yield GaugeMetricFamily(
            "timetravel_schedule_lag_seconds",
            "How far the schedule is behind its newest run time",
            value=health.lag.total_seconds(),
        )
        yield GaugeMetricFamily(
            "timetravel_schedule_healthy", "1 if the schedule is healthy", value=health.healthy
        )
        yield GaugeMetricFamily(
            "timetravel_schedule_missed_runs", "Run times recorded missed", value=len(health.missed)
        )
        coverage = GaugeMetricFamily(
            "timetravel_source_coverage",
            "Coverage of the latest snapshot that asked the source",
            labels=["source"],
        )
        for source, values in sorted(health.coverage.items()):
            coverage.add_metric([source], values[0])
        yield coverage
        latency = GaugeMetricFamily(
            "timetravel_fetch_latency_seconds",
            "How long each source took to answer in its newest snapshot, by quantile",
            labels=["source", "quantile"],
        )
        for source, quantiles in sorted(health.fetch_latency_ms.items()):
            for name, millis in sorted(quantiles.items()):
                quantile = str(int(name.removeprefix("p")) / 100)  # p50 -> 0.5
                latency.add_metric([source, quantile], millis / 1000)
        yield latency


class ApiMetrics:
    """The app's registry: run health at scrape time, and lookup latency."""

    def __init__(self, health: Callable[[datetime], Health]) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_HealthCollector(health))
        self.lookup_seconds = Histogram(
            "timetravel_lookup_seconds",
            "Point lookups (GET /v1/contexts/{key}/features), server time",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
