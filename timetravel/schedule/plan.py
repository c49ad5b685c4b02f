"""What the schedule owes: due run times from the cron expression against the runs index.

Pure (no Spark, no I/O): ``plan_slots(settings, runs, now)`` decides, for every logical run
time the schedule owns up to ``now``, whether it is done, to run now, or to be recorded as
missed under the catch-up policy. The runner carries the decisions out.

A run time that any stage has started is always resumed, whatever the policy: its commits
are already in, and the stages are idempotent and resumable, so finishing it is exactly
once. Only run times nothing has started can be missed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from timetravel.collect.selection import default_run_id
from timetravel.config import ScheduleSettings
from timetravel.errors import ConfigError
from timetravel.times import parse_duration, to_utc
from timetravel.warehouse.runs import RunInfo

__all__ = ["Slot", "plan_slots", "due_times", "next_time", "SCHEDULE_STAGE"]

# The runs index row the scheduler keeps per run time: started/lag, or 'missed'.
SCHEDULE_STAGE = "schedule"
# A schedule enumerating more run times than this is a mistake (a per-minute cron over years).
MAX_SLOTS = 10_000

Action = Literal["done", "run", "missed"]


@dataclass(frozen=True)
class Slot:
    """One logical run time and what the schedule does about it."""

    run_time: datetime
    run_id: str
    action: Action
    stages: tuple[str, ...]  # the stages still to run (empty unless action == "run")
    lag: timedelta  # now - run_time
    late: bool  # lag over max_lag
    reason: str


def due_times(settings: ScheduleSettings, now: datetime) -> list[datetime]:
    """Every run time of the cron expression in [start, now], oldest first."""
    from croniter import croniter

    now = to_utc(now)
    start = (
        to_utc(settings.start_at)
        if settings.start_at is not None
        else now - parse_duration(settings.lookback)
    )
    # croniter yields times strictly after its start: begin one microsecond before.
    times = croniter(settings.cron, start - timedelta(microseconds=1))
    due: list[datetime] = []
    while True:
        at = to_utc(times.get_next(datetime))
        if at > now:
            return due
        due.append(at)
        if len(due) > MAX_SLOTS:
            raise ConfigError(
                f"schedule {settings.cron!r} has more than {MAX_SLOTS} run times since "
                f"{start.isoformat()}: set schedule.start_at or a shorter schedule.lookback"
            )


def next_time(settings: ScheduleSettings, now: datetime) -> datetime:
    """The first run time strictly after ``now``."""
    from croniter import croniter

    return to_utc(croniter(settings.cron, to_utc(now)).get_next(datetime))


def plan_slots(settings: ScheduleSettings, runs: Sequence[RunInfo], now: datetime) -> list[Slot]:
    """Each due run time with its decision, oldest first."""
    now = to_utc(now)
    by_id = {r.run_id: r for r in runs}
    max_lag = parse_duration(settings.max_lag)
    times = due_times(settings, now)
    open_slots: list[tuple[datetime, str, tuple[str, ...], bool]] = []
    slots: dict[datetime, Slot] = {}
    for at in times:
        run_id = default_run_id(at)  # the id a hand-started select gives
        run = by_id.get(run_id)
        lag = now - at
        if run is not None and run.status(SCHEDULE_STAGE) == "missed":
            slots[at] = Slot(at, run_id, "done", (), lag, False, "recorded missed earlier")
            continue
        todo: tuple[str, ...] = tuple(
            s for s in settings.stages if run is None or run.status(s) != "ok"
        )
        if not todo:
            slots[at] = Slot(at, run_id, "done", (), lag, False, "every stage ok")
            continue
        started = run is not None and any(run.status(s) is not None for s in settings.stages)
        open_slots.append((at, run_id, todo, started))
    newest = open_slots[-1][0] if open_slots else None
    current = times[-1] if times else None
    for at, run_id, todo, started in open_slots:
        lag = now - at
        late = lag > max_lag
        if started:
            action: Action = "run"
            reason = f"resume: {', '.join(todo)} not ok yet"
        elif settings.catch_up == "all":
            action, reason = "run", "due (catch_up=all)"
        elif settings.catch_up == "latest":
            action, reason = (
                ("run", "most recent due time")
                if at == newest
                else ("missed", f"a later run time is due (catch_up=latest); {_ago(lag)} old")
            )
        elif at == current and not late:
            action, reason = "run", "current run time"
        else:
            action, reason = "missed", f"not the current run time, or over max_lag ({_ago(lag)})"
        slots[at] = Slot(at, run_id, action, todo if action == "run" else (), lag, late, reason)
    return [slots[at] for at in times]


def _ago(lag: timedelta) -> str:
    hours = lag.total_seconds() / 3600
    return f"{hours / 24:.1f} d" if hours >= 48 else f"{hours:.1f} h"
