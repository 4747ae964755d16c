"""Prometheus metrics: the catalog, this process's counters, several workers' sum, the text.

A bottom-layer package (standard library, prometheus-client, orjson): the audit log counts
its events here, the HTTP middleware its requests, ``GET /metrics`` renders them.
"""

from bastion.metrics.catalog import (
    LATENCY_BUCKETS,
    METHODS,
    METRICS,
    SCRAPES_REFUSED,
    UNMATCHED,
    MetricSpec,
)
from bastion.metrics.exposition import CONTENT_TYPE, Gauges, render
from bastion.metrics.shared import folder_of, gathered, prepare, publish_from_this_process
from bastion.metrics.tally import RULES, TALLY, Snapshot, Tally, count_audit_event, merged

__all__ = [
    "CONTENT_TYPE",
    "LATENCY_BUCKETS",
    "METHODS",
    "METRICS",
    "RULES",
    "SCRAPES_REFUSED",
    "TALLY",
    "UNMATCHED",
    "Gauges",
    "MetricSpec",
    "Snapshot",
    "Tally",
    "count_audit_event",
    "folder_of",
    "gathered",
    "merged",
    "prepare",
    "publish_from_this_process",
    "render",
]
