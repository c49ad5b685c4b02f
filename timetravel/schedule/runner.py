"""Carry out the schedule: run the due stages, record missed run times, one scheduler at a time.

``run_due`` is one reconcile pass (what ``timetravel schedule run --once`` and a system cron
call); ``run_forever`` repeats it at each run time. Both hold the warehouse's ``scheduler``
lease, so two schedulers on one warehouse never run a run time twice; a scheduler killed
mid-run leaves its stages recorded as started, and the next pass resumes them (the stages
are idempotent and resumable, so that is exactly once).
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from timetravel.collect.selection import default_run_id, select_contexts
from timetravel.collect.snapshot import snapshot_facts
from timetravel.config import Config
from timetravel.errors import TimeTravelError, describe_error
from timetravel.quality.profile import profile_run
from timetravel.schedule.plan import SCHEDULE_STAGE, Slot, next_time, plan_slots
from timetravel.warehouse.leases import Lease, LeaseHeldError
from timetravel.warehouse.runs import RunsIndex

if TYPE_CHECKING:
    from timetravel.warehouse.store import DeltaStore

__all__ = ["Outcome", "run_due", "run_forever", "run_scheduled_stage", "SCHEDULER_LEASE_TTL_S"]

SCHEDULER_LEASE_TTL_S = 300.0


@dataclass(frozen=True)
class Outcome:
    """What one pass did about one run time."""

    slot: Slot
    status: str  # ok | partial | failed | missed
    detail: str = ""


def run_due(
    store: DeltaStore,
    config: Config,
    *,
    now: datetime | None = None,
    say: Callable[[str], None] = print,
) -> list[Outcome]:
    """Run what is due at ``now`` (default: the clock) and record what was missed.

    Raises :class:`LeaseHeldError` if another scheduler is active on the warehouse.
    """
    holder = f"scheduler@{socket.gethostname()}:{os.getpid()}"
    with Lease(config, "scheduler", holder=holder, ttl_s=SCHEDULER_LEASE_TTL_S):
        # A pass judged at a given ``now`` (a replay, the demo's simulated clock) measures
        # start times and lags on that clock too.
        offset = (now - datetime.now(UTC)) if now is not None else timedelta(0)
        now = now or datetime.now(UTC)
        runs = RunsIndex(config, spark=store.spark)
        outcomes = []
        for slot in plan_slots(config.schedule, runs.list(), now):
            if slot.action == "missed":
                outcomes.append(_record_missed(runs, slot, say))
            elif slot.action == "run":
                outcomes.append(_run_slot(store, config, runs, slot, offset, say))
        if not outcomes:
            say("nothing due")
        return outcomes


def run_forever(
    store: DeltaStore,
    config: Config,
    *,
    stop: threading.Event,
    say: Callable[[str], None] = print,
) -> None:
    """Reconcile now, then at every run time, until ``stop`` is set."""
    while not stop.is_set():
        try:
            run_due(store, config, say=say)
        except LeaseHeldError as exc:
            say(f"not running: {exc}")
        wake = next_time(config.schedule, datetime.now(UTC))
        say(f"next run time {wake.isoformat()}")
        # Wake a little after the run time, so the pass sees it as due.
        stop.wait(max(1.0, (wake - datetime.now(UTC)).total_seconds() + 1.0))


def run_scheduled_stage(
    config: Config,
    run_time: datetime,
    stage: str,
    *,
    store: Callable[[], DeltaStore],
    now: datetime | None = None,
    say: Callable[[str], None] = print,
) -> Outcome:
    """One stage of one run time, as an orchestrator's task runs it (an Airflow DAG run per
    run time, a task per stage); the same decisions and runs index rows as :func:`run_due`.

    The orchestrator owns the schedule, so no scheduler lease is taken; the planner still
    decides whether the run time is run or recorded missed under ``schedule.catch_up``.
    ``store`` is called (starting Spark) only if the stage actually runs.
    """
    from croniter import croniter

    from timetravel.errors import ConfigError

    if stage not in config.schedule.stages:
        raise ConfigError(
            f"stage {stage!r} is not in schedule.stages {list(config.schedule.stages)}"
        )
    offset = (now - datetime.now(UTC)) if now is not None else timedelta(0)
    now = now or datetime.now(UTC)
    runs = RunsIndex(config)
    slots = {s.run_time: s for s in plan_slots(config.schedule, runs.list(), now)}
    slot = slots.get(run_time)
    if slot is None and run_time <= now and croniter.match(config.schedule.cron, run_time):
        # An orchestrator catching up from before the window start_at/lookback sets.
        say(f"{run_time.isoformat()}: before the schedule's window (start_at / lookback)")
        outside = Slot(run_time, default_run_id(run_time), "done", (), now - run_time, False, "")
        return Outcome(outside, "done", "before the schedule's window")
    if slot is None:
        ticks = [t.isoformat() for t in list(slots)[-3:]]
        raise ConfigError(
            f"{run_time.isoformat()} is not a run time the schedule owns at {now.isoformat()} "
            f"(cron {config.schedule.cron!r}; latest: {', '.join(ticks) or 'none'})"
        )
    if slot.action == "missed":
        return _record_missed(runs, slot, say)
    if stage not in slot.stages:
        say(f"{slot.run_id}: {stage} has nothing to do ({slot.reason})")
        return Outcome(slot, "done", slot.reason)
    rest = slot.stages[slot.stages.index(stage) + 1 :]
    only = replace(slot, stages=(stage,))
    return _run_slot(store(), config, runs, only, offset, say, final=not rest)


def _record_missed(runs: RunsIndex, slot: Slot, say: Callable[[str], None]) -> Outcome:
    """A missed run time stays visible: its ``schedule`` row says missed, and why."""
    runs.record(
        slot.run_id,
        slot.run_time,
        SCHEDULE_STAGE,
        "missed",
        details={"reason": slot.reason, "lag_s": slot.lag.total_seconds()},
    )
    say(f"{slot.run_id}: missed: {slot.reason}")
    return Outcome(slot, "missed", slot.reason)


def _run_slot(
    store: DeltaStore,
    config: Config,
    runs: RunsIndex,
    slot: Slot,
    offset: timedelta,
    say: Callable[[str], None],
    *,
    final: bool = True,
) -> Outcome:
    """Run ``slot``'s stages; ``final=False`` when later stages of the run time remain (an
    orchestrator's next task): an ok then leaves the schedule row ``running``."""
    started = datetime.now(UTC) + offset
    details = {
        "reason": slot.reason,
        "stages": list(slot.stages),
        "started_at": started.isoformat(),
        "lag_s": (started - slot.run_time).total_seconds(),
        "late": slot.late,
    }
    runs.record(slot.run_id, slot.run_time, SCHEDULE_STAGE, "running", details=details)
    say(f"{slot.run_id}: {', '.join(slot.stages)} ({slot.reason}, lag {details['lag_s']:.0f}s)")
    status, detail = "ok", ""
    try:
        for stage in slot.stages:
            if stage == "select":
                select_contexts(store, config.selection, slot.run_time, run_id=slot.run_id)
            elif stage == "snapshot":
                result = snapshot_facts(store, config, slot.run_id)
                if result.status != "ok":
                    status, detail = result.status, f"snapshot {result.status}"
                if result.status == "failed":
                    break
            elif stage == "quality":
                checked = profile_run(store, config, slot.run_id)
                if checked.status == "failed":
                    status, detail = "failed", "quality checks failed"
    except TimeTravelError as exc:
        # Recorded by the stage itself too; the pass goes on with the next run time.
        status, detail = "failed", describe_error(exc)
    details["finished_at"] = (datetime.now(UTC) + offset).isoformat()
    if detail:
        details["error"] = detail
    recorded = status if final or status != "ok" else "running"
    runs.record(slot.run_id, slot.run_time, SCHEDULE_STAGE, recorded, details=details)
    say(f"{slot.run_id}: {status}" + (f" ({detail})" if detail else ""))
    return Outcome(slot, status, detail)
