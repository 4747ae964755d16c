"""Counters and gauges to the Prometheus text format, through prometheus-client."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from bastion.metrics.catalog import (
    AUDIT_CHAIN_LENGTH,
    AUDIT_CHECKPOINT_AGE,
    AUDIT_CHECKPOINTED,
    COLLECTIONS,
    COUNTERS,
    HTTP_DURATION,
    HTTP_REQUESTS,
    INFO,
    LARGEST_COLLECTION,
    LATENCY_BUCKETS,
    POINTS,
    WORKERS,
    MetricSpec,
)
from bastion.metrics.tally import Snapshot

CONTENT_TYPE = CONTENT_TYPE_LATEST
_BOUNDS = [repr(float(bound)) for bound in LATENCY_BUCKETS] + ["+Inf"]  # 0.0005, 1.0 …


@dataclass(frozen=True)
class Gauges:
    """What a scrape reads from the database and the collections in memory."""

    version: str
    workers: int
    audit_chain_length: int
    audit_checkpointed_seq: int
    audit_checkpoint_age: float | None  # seconds; None: no checkpoint yet
    collections: int
    points: int
    largest_collection: int


def render(snapshot: Snapshot, gauges: Gauges) -> bytes:
    """The text a Prometheus scrape gets (``CONTENT_TYPE``)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families([*_http(snapshot), *_counters(snapshot), *_gauges(gauges)]))
    return generate_latest(registry)


class _Families:
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


def _http(snapshot: Snapshot) -> Iterator[Metric]:
    requests = CounterMetricFamily(
        HTTP_REQUESTS.family, HTTP_REQUESTS.help, labels=HTTP_REQUESTS.labels
    )
    by_route: dict[tuple[str, str], list[float]] = {}
    for method, route, status, tally in sorted(snapshot.get("requests", [])):
        requests.add_metric([method, route, str(status)], tally[0])
        total = by_route.setdefault((method, route), [0.0] * len(tally))
        for i, value in enumerate(tally):
            total[i] += value
    durations = HistogramMetricFamily(
        HTTP_DURATION.family, HTTP_DURATION.help, labels=HTTP_DURATION.labels
    )
    for (method, route), tally in by_route.items():
        cumulative, buckets = 0.0, []
        for bound, count in zip(_BOUNDS, tally[2:], strict=True):
            cumulative += count
            buckets.append((bound, cumulative))
        durations.add_metric([method, route], buckets, sum_value=tally[1])
    yield requests
    yield durations


def _counters(snapshot: Snapshot) -> Iterator[Metric]:
    families = {
        spec.name: CounterMetricFamily(spec.family, spec.help, labels=spec.labels)
        for spec in COUNTERS.values()
        if spec is not HTTP_REQUESTS
    }
    for name, labels, value in sorted(snapshot.get("counters", [])):
        family = families.get(name)
        if family is not None:  # a name this version does not know: not exported
            family.add_metric(labels, value)
    for name, family in families.items():
        if not family.samples and not COUNTERS[name].labels:
            family.add_metric([], 0)  # an unlabelled counter reads 0 before its first event
        yield family


def _gauge(spec: MetricSpec, value: float) -> Metric:
    return GaugeMetricFamily(spec.name, spec.help, value=value)


def _gauges(gauges: Gauges) -> Iterator[Metric]:
    info = GaugeMetricFamily(INFO.name, INFO.help, labels=INFO.labels)
    info.add_metric([gauges.version], 1)
    yield info
    yield _gauge(WORKERS, gauges.workers)
    yield _gauge(AUDIT_CHAIN_LENGTH, gauges.audit_chain_length)
    yield _gauge(AUDIT_CHECKPOINTED, gauges.audit_checkpointed_seq)
    if gauges.audit_checkpoint_age is not None:
        yield _gauge(AUDIT_CHECKPOINT_AGE, gauges.audit_checkpoint_age)
    yield _gauge(COLLECTIONS, gauges.collections)
    yield _gauge(POINTS, gauges.points)
    yield _gauge(LARGEST_COLLECTION, gauges.largest_collection)
