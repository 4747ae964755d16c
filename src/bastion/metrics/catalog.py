"""Every metric ``GET /metrics`` exports: name, type, help text and labels.

Registered data: the exposition reads it, docs/observability.md lists it (a test checks
that every metric is documented), and no label takes a value from a request as such.
Routes are templates (``/collections/{name}/points/query``), never raw paths: a
collection name is tenant data and unbounded. Methods outside the standard few become
``other``. Every other label comes from code: audit actions and outcomes (registered),
throttle scopes, search kinds, assurance levels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["counter", "histogram", "gauge"]


@dataclass(frozen=True)
class MetricSpec:
    name: str  # as exposed; a counter's ends in ``_total``
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    source: Literal["process", "scrape"] = "process"  # counted by workers / read at scrape

    @property
    def family(self) -> str:
        """The name prometheus-client's metric families take (a counter's without _total)."""
        return self.name.removesuffix("_total") if self.kind == "counter" else self.name


# Upper bounds (seconds) of the request latency buckets; +Inf is implied.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"  # the route label of a request no route matched (404, redirects)

HTTP_REQUESTS = MetricSpec(
    "bastion_http_requests_total",
    "counter",
    "HTTP requests answered, by method, route template and status.",
    ("method", "route", "status"),
)
HTTP_DURATION = MetricSpec(
    "bastion_http_request_duration_seconds",
    "histogram",
    "Time from the request's arrival in the app until its response was sent, by method "
    "and route template.",
    ("method", "route"),
)
AUDIT_EVENTS = MetricSpec(
    "bastion_audit_events_total",
    "counter",
    "Audit events appended by the server, by action and outcome.",
    ("action", "outcome"),
)
LOGINS = MetricSpec(
    "bastion_logins_total",
    "counter",
    "Sign-ins that ended: success (tokens issued), enrollment_required (a user without a "
    "factor got a restricted token), failure (wrong password or code, expired transaction "
    "…), denied (risk or policy), throttled (refused by a rate limit, unchecked).",
    ("outcome",),
)
STEP_UP_CHALLENGES = MetricSpec(
    "bastion_step_up_challenges_total",
    "counter",
    "Requests answered with an RFC 9470 step-up challenge, by the assurance level asked for.",
    ("required_acr",),
)
STEP_UPS = MetricSpec(
    "bastion_step_ups_total", "counter", "Step-ups that ended, by outcome.", ("outcome",)
)
THROTTLED = MetricSpec(
    "bastion_throttled_attempts_total",
    "counter",
    "Sign-in attempts refused by a rate limit, by the limit that refused them (account, address).",
    ("scope",),
)
SEARCHES = MetricSpec(
    "bastion_searches_total", "counter", "Searches and queries run, by kind.", ("kind",)
)
POINTS_UPSERTED = MetricSpec(
    "bastion_points_upserted_total", "counter", "Points written by upserts."
)
POINTS_DELETED = MetricSpec("bastion_points_deleted_total", "counter", "Points deleted.")
SCRAPES_REFUSED = MetricSpec(
    "bastion_metrics_scrapes_refused_total",
    "counter",
    "Requests for /metrics refused: not_loopback, missing_token, wrong_token.",
    ("reason",),
)

# Read when scraped, from the database and the collections in memory.
INFO = MetricSpec(
    "bastion_info", "gauge", "Always 1; the version as a label.", ("version",), "scrape"
)
WORKERS = MetricSpec(
    "bastion_metrics_workers",
    "gauge",
    "Worker processes whose counters this scrape adds up.",
    source="scrape",
)
AUDIT_CHAIN_LENGTH = MetricSpec(
    "bastion_audit_chain_length",
    "gauge",
    "Events in the audit hash chain (the seq of its head; 0 when empty).",
    source="scrape",
)
AUDIT_CHECKPOINTED = MetricSpec(
    "bastion_audit_checkpointed_seq",
    "gauge",
    "Seq of the newest signed audit checkpoint (0 when none): chain length minus this is "
    "how many events no checkpoint covers yet.",
    source="scrape",
)
AUDIT_CHECKPOINT_AGE = MetricSpec(
    "bastion_audit_checkpoint_age_seconds",
    "gauge",
    "Seconds since the newest signed audit checkpoint; absent while there is none.",
    source="scrape",
)
COLLECTIONS = MetricSpec(
    "bastion_collections", "gauge", "Collections, all tenants together.", source="scrape"
)
POINTS = MetricSpec(
    "bastion_points", "gauge", "Points in all collections together.", source="scrape"
)
LARGEST_COLLECTION = MetricSpec(
    "bastion_collection_points_max",
    "gauge",
    "Points in the largest collection (its name is not exported).",
    source="scrape",
)

METRICS: tuple[MetricSpec, ...] = (
    HTTP_REQUESTS,
    HTTP_DURATION,
    AUDIT_EVENTS,
    LOGINS,
    STEP_UP_CHALLENGES,
    STEP_UPS,
    THROTTLED,
    SEARCHES,
    POINTS_UPSERTED,
    POINTS_DELETED,
    SCRAPES_REFUSED,
    INFO,
    WORKERS,
    AUDIT_CHAIN_LENGTH,
    AUDIT_CHECKPOINTED,
    AUDIT_CHECKPOINT_AGE,
    COLLECTIONS,
    POINTS,
    LARGEST_COLLECTION,
)
COUNTERS = {spec.name: spec for spec in METRICS if spec.kind == "counter"}
