"""``make demo``: the whole pipeline as far as it exists, narrated.

1. start the demo fleet with its clock frozen at T1, show a few members' answers;
2. advance the clock two weeks to T2, show the answers again and what changed;
3. export the population at T1 and T2 to Delta (replaying T1 commits nothing), print the
   table's history and read the T1 population back as of its Delta version;
4. for three run times a week apart: move the fleet's clock there, select a stratified
   context set (with the panel) and snapshot every source into Delta; print per-source
   coverage, the last run's per-stratum and per-source tables, and the runs index;
5. label members a few hours after each run ("plays a comedy in the next 7 days"), build the
   training set as of the label times and compare it with the naive latest-snapshot join.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from timetravel.collect.selection import SelectionResult, select_contexts
from timetravel.collect.snapshot import SnapshotResult, snapshot_facts
from timetravel.config import (
    Config,
    QualityCheck,
    QualitySettings,
    ScheduleSettings,
    Threshold,
)
from timetravel.demo.faults import DataFault, FaultSettings
from timetravel.demo.fleet import Fleet
from timetravel.demo.leakage import compare_with_naive, genre_labels
from timetravel.demo.population import POPULATION_TABLE, read_population, write_population
from timetravel.demo.showcase import describe_change, summarize
from timetravel.demo.world import SERVICES, World
from timetravel.quality.profile import profile_run, read_quality
from timetravel.quality.report import render_report
from timetravel.reports import (
    quality_table,
    runs_table,
    selection_table,
    snapshot_table,
    status_text,
    training_set_summary,
)
from timetravel.schedule.health import assess
from timetravel.schedule.runner import run_due
from timetravel.times import to_utc
from timetravel.warehouse.runs import RunsIndex
from timetravel.warehouse.store import DeltaStore

__all__ = ["run_demo", "DEMO_T1"]

DEMO_T1 = "2026-06-01T00:00:00Z"
DEMO_MEMBERS = (1, 2, 3)


def run_demo(
    config: Config, store_factory: Callable[[], DeltaStore], *, say: Callable[[str], None] = print
) -> None:
    """Run the narrated demo; ``store_factory`` builds the Delta store (starts Spark) lazily."""
    t1 = to_utc(DEMO_T1)
    t2 = t1 + timedelta(days=14)
    state_dir = Path(config.demo.state_dir)
    say(f"== demo fleet: {config.demo.members} members, seed {config.demo.seed}")
    with Fleet.up(state_dir, world=config.demo.world_args(), clock_at=t1.isoformat()) as fleet:
        for service, url in fleet.urls.items():
            say(f"  {service:<16} {url}")
        before = _ask(fleet, DEMO_MEMBERS)
        _show(f"answers at T1 = {t1.isoformat()} (services' clock)", before, say)
        fleet.clock.set(t2)
        after = _ask(fleet, DEMO_MEMBERS)
        _show(f"answers at T2 = {t2.isoformat()}", after, say)
        say("\n-- what changed between T1 and T2")
        for member in DEMO_MEMBERS:
            for service in SERVICES:
                say(
                    f"  member {member} {service:<16} "
                    f"{describe_change(service, before[member][service], after[member][service])}"
                )

        store = store_factory()
        _population(store, config, t1, t2, say)

        say("\n== scheduled runs: select a stratified context set, then snapshot every source")
        snapshot_config = config.model_copy(
            update={
                "snapshot": config.snapshot.model_copy(
                    update={"fleet_file": str(fleet.state_dir / "fleet.json")}
                )
            }
        )
        results = []
        for offset in (0, 7, 14):
            run_time = t1 + timedelta(days=offset, hours=6)
            fleet.clock.set(run_time)  # the services answer "now" = the run's time
            selected = select_contexts(store, config.selection, run_time)
            snap = snapshot_facts(store, snapshot_config, selected.run_id)
            results.append((selected, snap))
            coverage = ", ".join(f"{s.source} {s.coverage:.0%}" for s in snap.sources)
            say(
                f"  {selected.run_id}: {selected.sample_size} of {selected.population_size} "
                f"contexts in {len(selected.strata)} strata"
                + (f" (panel from {selected.previous_run_id})" if selected.previous_run_id else "")
                + f"; snapshot {snap.status}: {coverage}"
            )
        scheduled = _schedule(store, snapshot_config, fleet, results[-1][0].run_time, say)
        _faulty_run(store, snapshot_config, fleet, scheduled, say)
    say("fleet stopped")
    last_selection, last_snapshot = results[-1]
    say("\n" + selection_table(last_selection))
    say("\n" + snapshot_table(last_snapshot))
    say("\n-- runs index")
    for line in runs_table(RunsIndex(store.config).list(limit=5)).splitlines():
        say("  " + line)
    _training_set(config, store, results, say)


def _schedule(
    store: DeltaStore, config: Config, fleet: Fleet, last_run: datetime, say: Callable[[str], None]
) -> datetime:
    """The schedule takes over after the hand-started runs; the clock jumps two run times."""
    schedule = ScheduleSettings(
        cron="0 6 * * *",
        start_at=last_run + timedelta(days=1),
        catch_up="latest",
        stages=["select", "snapshot", "quality"],
    )
    scheduled = config.model_copy(update={"schedule": schedule})
    now = last_run + timedelta(days=2, hours=1)
    say(
        f"\n== the schedule takes over ({schedule.cron!r} UTC, catch_up={schedule.catch_up}); "
        f"the clock jumps to {now.isoformat()}, two run times later"
    )
    fleet.clock.set(now)
    outcomes = run_due(store, scheduled, now=now, say=lambda line: say("  " + line))
    ran = [o.slot.run_id for o in outcomes if o.status in ("ok", "partial")]
    if ran:
        say(f"\n-- timetravel quality --run-id {ran[-1]} (the schedule's quality stage)")
        for line in quality_table(read_quality(config, ran[-1])).splitlines():
            say("  " + line)
    say("\n-- timetravel status")
    for line in status_text(assess(schedule, RunsIndex(config).list(), now)).splitlines():
        say("  " + line)
    return now


def _faulty_run(
    store: DeltaStore, config: Config, fleet: Fleet, after: datetime, say: Callable[[str], None]
) -> None:
    """One run while two services answer wrong data; the quality stage catches both."""
    checks = QualitySettings(
        checks=[
            QualityCheck(
                source="ratings", field="thumbs_up", max_drift=Threshold(warn=0.1, fail=0.25)
            ),
            QualityCheck(source="member-profile", field="plan", max_null_rate=Threshold(fail=0.05)),
        ]
    )
    checked = config.model_copy(update={"quality": checks})
    run_time = after.replace(hour=6, minute=0) + timedelta(days=1)
    say(
        f"\n== a faulty run at {run_time.isoformat()}: ratings answers thumbs_up x100 (a unit "
        "change), member-profile answers no plan for half the members"
    )
    faults = {
        "ratings": [DataFault(field="thumbs_up", scale=100)],
        "member-profile": [DataFault(field="plan", null_share=0.5)],
    }
    fleet.clock.set(run_time)
    try:
        for service, data in faults.items():
            fleet.set_faults(service, FaultSettings(data=data))
        selected = select_contexts(store, config.selection, run_time)
        snapshot_facts(store, config, selected.run_id)
    finally:
        for service in faults:
            fleet.set_faults(service, FaultSettings())
    result = profile_run(store, checked, selected.run_id)
    say(f"  quality {result.status}; the checks that did not pass:")
    for check in result.checks:
        if check.status != "pass":
            value = "" if check.value is None else f"{check.value:.3g}"
            where = f"{check.source}.{check.field}" if check.field else check.source
            status = check.status.upper()
            say(f"    {status:<5} {where:<24} {check.check:<16} {value:>8}  {check.expected}")
    out = Path(config.demo.state_dir).parent / "quality-report.html"
    out.write_text(render_report(config, selected.run_id), encoding="utf-8")
    say(f"  report: {out.resolve()}  (timetravel report --run-id {selected.run_id})")


def _training_set(
    config: Config,
    store: DeltaStore,
    results: list[tuple[SelectionResult, SnapshotResult]],
    say: Callable[[str], None],
) -> None:
    """Labels a day after each run but the last; as-of training set vs the naive join."""
    from timetravel.facade import TimeTravel

    say("\n== training set: 'plays a comedy in the next 7 days', as of past label times")
    world = World(**config.demo.world_args())
    members = {}
    for selected, _ in results[:-1]:
        ids = store.read("context_sets").where(f"run_id = '{selected.run_id}'")
        members[selected.run_time] = sorted(
            r["member_id"] for r in ids.select("member_id").collect()
        )
    labels = genre_labels(world, members)
    tt = TimeTravel(config, spark=store.spark)
    report = compare_with_naive(tt, labels)
    say(training_set_summary(report.as_of.manifest))
    say("\n-- leakage: the same labels joined with the latest snapshot when the label was known")
    for line in report.lines():
        say(line)
    say("\n== next: the web console and the query API over this warehouse")
    say("  .venv/bin/timetravel serve --insecure-local")
    say("  console: http://127.0.0.1:8000/ui      API: http://127.0.0.1:8000/docs")


def _population(
    store: DeltaStore, config: Config, t1: datetime, t2: datetime, say: Callable[[str], None]
) -> None:
    say("\n== population export to Delta (input of stratified sampling)")
    world = World(**config.demo.world_args())
    for instant in (t1, t2):
        version = write_population(store, world, instant)
        say(
            f"  population as of {instant.date()} -> "
            f"{'nothing new (already exported)' if version is None else f'version {version}'}"
        )
    replay = write_population(store, world, t1)
    say(f"  replaying the T1 export -> {'nothing committed' if replay is None else replay}")
    say(f"\n-- history of {store.path(POPULATION_TABLE)} (newest first)")
    for commit in store.history(POPULATION_TABLE, limit=5):
        say(
            f"  v{commit.version:<3} {commit.timestamp.isoformat():<32} {commit.operation:<13} "
            f"{commit.user_metadata or ''}"
        )
    t1_version = next(
        c.version
        for c in store.history(POPULATION_TABLE)
        if c.user_metadata == f"population@{t1.isoformat()}"
    )
    pinned = read_population(store, t2, version=t1_version)
    latest = read_population(store, t2)
    say(
        f"\n-- as-of reads: population for a run at T2, from Delta version {t1_version} "
        f"(pinned) vs latest"
    )
    say(
        f"  pinned v{t1_version}: {pinned.count()} members (snapshot of T1); "
        f"latest: {latest.count()} members (snapshot of T2)"
    )


def _ask(fleet: Fleet, members: tuple[int, ...]) -> dict[int, dict[str, dict[str, Any] | None]]:
    with httpx.Client(timeout=10) as client:
        answers: dict[int, dict[str, dict[str, Any] | None]] = {m: {} for m in members}
        for service, url in fleet.urls.items():
            body = client.post(f"{url}/v1/members/batch", json={"member_ids": list(members)})
            body.raise_for_status()
            for result in body.json()["results"]:
                answers[result["member_id"]][service] = result
        for member in members:
            for service in SERVICES:
                answers[member].setdefault(service, None)
        return answers


def _show(
    title: str, answers: dict[int, dict[str, dict[str, Any] | None]], say: Callable[[str], None]
) -> None:
    say(f"\n-- {title}")
    for member, by_service in answers.items():
        for service in SERVICES:
            say(f"  member {member} {service:<16} {summarize(service, by_service[service])}")
