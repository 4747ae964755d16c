"""Data-plane usage per principal, kind and hour, and the baselines learned from it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from statistics import median

from sqlalchemy import Connection, and_, case, select

from bastion.risk.policy import RiskPolicy
from bastion.risk.schema import risk_usage
from bastion.risk.store.sql import upsert
from bastion.risk.volume import HourlyUsage

__all__ = ["load_baselines", "save_usage"]


def save_usage(conn: Connection, usage: HourlyUsage) -> None:
    """Add finished minutes (``VolumeMeter.drain``) to the hourly rows."""
    u = risk_usage.c
    for (principal_id, kind, hour), (total, peak) in usage.items():
        values = {
            "principal_id": principal_id,
            "kind": kind,
            "hour": hour,
            "total": total,
            "peak_minute": peak,
        }
        upsert(
            conn,
            risk_usage,
            values,
            ["principal_id", "kind", "hour"],
            lambda excluded: {
                "total": u.total + excluded.total,
                "peak_minute": case(
                    (excluded.peak_minute > u.peak_minute, excluded.peak_minute),
                    else_=u.peak_minute,
                ),
            },
        )


def load_baselines(
    conn: Connection,
    *,
    principal_ids: Iterable[str],
    now: datetime,
    policy: RiskPolicy,
) -> dict[tuple[str, str], float]:
    """Median busiest minute of the active hours in the last ``baseline_days``, per
    (principal, kind) with at least ``baseline_min_hours`` active hours."""
    ids = sorted(set(principal_ids))
    peaks: dict[tuple[str, str], list[int]] = {}
    since = now - timedelta(days=policy.baseline_days)
    u = risk_usage.c
    for start in range(0, len(ids), 500):
        rows = conn.execute(
            select(u.principal_id, u.kind, u.peak_minute).where(
                and_(u.principal_id.in_(ids[start : start + 500]), u.hour >= since)
            )
        )
        for row in rows:
            peaks.setdefault((row.principal_id, row.kind), []).append(row.peak_minute)
    return {
        key: float(median(values))
        for key, values in peaks.items()
        if len(values) >= policy.baseline_min_hours
    }
