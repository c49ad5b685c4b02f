"""Run health: is the schedule keeping up? Pure over the runs index, the schedule and a clock.

Shared by ``timetravel status`` (which exits non-zero when unhealthy, so any monitor can page),
``GET /v1/status`` and the ``/metrics`` gauges.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from timetravel.config import ScheduleSettings
from timetravel.schedule.plan import SCHEDULE_STAGE, plan_slots
from timetravel.times import parse_duration, to_utc
from timetravel.warehouse.runs import RunInfo

__all__ = ["Health", "StageHealth", "assess"]


@dataclass(frozen=True)
class StageHealth:
    """One stage: its last successful run, and the status of its latest attempt."""

    stage: str
    last_ok_run_id: str | None
    last_ok_run_time: datetime | None
    latest_run_id: str | None
    latest_status: str | None


@dataclass(frozen=True)
class Health:
    """The schedule's state at ``now``; ``problems`` empty means healthy."""

    now: datetime
    cron: str
    max_lag: timedelta
    newest_due: datetime | None  # the newest run time at or before now
    lag: timedelta  # how far behind: now - newest due time, unless that run is complete
    stages: list[StageHealth]
    missed: list[str]  # run ids recorded missed, oldest first
    coverage: dict[str, list[float]]  # per source, the last N snapshots' coverage, newest first
    runs_by_status: dict[str, int]  # per stage/status over the whole index ("snapshot/ok": 12)
    problems: list[str] = field(default_factory=list)
    # per source, the newest snapshot's answer times in ms ({"p50": .., "p95": .., "p99": ..})
    fetch_latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of ``timetravel status --json`` and ``GET /v1/status``."""
        return {
            "healthy": self.healthy,
            "problems": self.problems,
            "now": self.now.isoformat(),
            "cron": self.cron,
            "max_lag_s": self.max_lag.total_seconds(),
            "newest_due": self.newest_due.isoformat() if self.newest_due else None,
            "lag_s": self.lag.total_seconds(),
            "stages": [
                {
                    "stage": s.stage,
                    "last_ok_run_id": s.last_ok_run_id,
                    "last_ok_run_time": s.last_ok_run_time.isoformat()
                    if s.last_ok_run_time
                    else None,
                    "latest_run_id": s.latest_run_id,
                    "latest_status": s.latest_status,
                }
                for s in self.stages
            ],
            "missed": self.missed,
            "coverage": self.coverage,
            "fetch_latency_ms": self.fetch_latency_ms,
            "runs_by_status": self.runs_by_status,
        }


def assess(
    settings: ScheduleSettings, runs: Sequence[RunInfo], now: datetime, *, last_runs: int = 7
) -> Health:
    """How the schedule stands at ``now`` over ``runs`` (any order)."""
    now = to_utc(now)
    max_lag = parse_duration(settings.max_lag)
    ordered = sorted(runs, key=lambda r: r.run_time, reverse=True)  # newest first
    slots = plan_slots(settings, ordered, now)
    newest = slots[-1] if slots else None
    newest_run = next((r for r in ordered if newest and r.run_id == newest.run_id), None)
    complete = newest_run is not None and all(newest_run.status(s) == "ok" for s in settings.stages)
    # Behind by the newest run time's age until that run is complete (a missed one never is).
    lag = newest.lag if newest is not None and not complete else timedelta(0)

    stages = []
    problems = []
    for stage in settings.stages:
        ok = next((r for r in ordered if r.status(stage) == "ok"), None)
        latest = next((r for r in ordered if r.status(stage) is not None), None)
        stages.append(
            StageHealth(
                stage,
                ok.run_id if ok else None,
                ok.run_time if ok else None,
                latest.run_id if latest else None,
                latest.status(stage) if latest else None,
            )
        )
        if latest is not None and latest.status(stage) == "failed":
            problems.append(f"the latest {stage} ({latest.run_id}) failed")
    if lag > max_lag:
        problems.append(
            f"{lag.total_seconds() / 3600:.1f} h behind the schedule (max_lag {settings.max_lag}): "
            f"run time {newest.run_time.isoformat() if newest else '?'} has not completed"
        )

    coverage: dict[str, list[float]] = {}
    latency: dict[str, dict[str, float]] = {}
    snapshots = [r for r in ordered if r.status("snapshot") is not None][:last_runs]
    for run in snapshots:
        for source, summary in (run.stages["snapshot"].details.get("sources") or {}).items():
            coverage.setdefault(source, []).append(float(summary.get("coverage", 0.0)))
            if summary.get("latency_ms"):  # newest first: the first seen is the newest
                latency.setdefault(source, summary["latency_ms"])
    by_status: dict[str, int] = {}
    for run in ordered:
        for name, record in run.stages.items():
            key = f"{name}/{record.status}"
            by_status[key] = by_status.get(key, 0) + 1
    missed = sorted(r.run_id for r in ordered if r.status(SCHEDULE_STAGE) == "missed")
    return Health(
        now,
        settings.cron,
        max_lag,
        newest.run_time if newest else None,
        lag,
        stages,
        missed,
        coverage,
        dict(sorted(by_status.items())),
        problems,
        latency,
    )
