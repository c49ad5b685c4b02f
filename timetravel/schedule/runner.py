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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from timetravel.collect.selection import select_contexts
from timetravel.collect.snapshot import snapshot_facts
from timetravel.config import Config
from timetravel.errors import TimeTravelError, describe_error
from timetravel.schedule.plan import SCHEDULE_STAGE, Slot, next_time, plan_slots
from timetravel.warehouse.leases import Lease, LeaseHeldError
from timetravel.warehouse.runs import RunsIndex

if TYPE_CHECKING:
    from timetravel.warehouse.store import DeltaStore

__all__ = ["Outcome", "run_due", "run_forever", "SCHEDULER_LEASE_TTL_S"]

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
                runs.record(
                    slot.run_id,
                    slot.run_time,
                    SCHEDULE_STAGE,
                    "missed",
                    details={"reason": slot.reason, "lag_s": slot.lag.total_seconds()},
                )
                say(f"{slot.run_id}: missed: {slot.reason}")
                outcomes.append(Outcome(slot, "missed", slot.reason))
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


def _run_slot(
    store: DeltaStore,
    config: Config,
    runs: RunsIndex,
    slot: Slot,
    offset: timedelta,
    say: Callable[[str], None],
) -> Outcome:
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
    except TimeTravelError as exc:
        # Recorded by the stage itself too; the pass goes on with the next run time.
        status, detail = "failed", describe_error(exc)
    details["finished_at"] = (datetime.now(UTC) + offset).isoformat()
    if detail:
        details["error"] = detail
    runs.record(slot.run_id, slot.run_time, SCHEDULE_STAGE, status, details=details)
    say(f"{slot.run_id}: {status}" + (f" ({detail})" if detail else ""))
    return Outcome(slot, status, detail)
