"""The scheduler against the demo fleet: catch-up with `latest`, nothing run twice, one
scheduler per warehouse, a run a dead scheduler left half done resumed, and `schedule due`
answering from the runs index without Spark."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.collect.test_snapshot import source
from timetravel.cli import app
from timetravel.collect.selection import select_contexts
from timetravel.config import (
    Allocation,
    Config,
    ScheduleSettings,
    SelectionSettings,
    SnapshotSettings,
)
from timetravel.demo.fleet import Fleet
from timetravel.demo.population import write_population
from timetravel.demo.world import World
from timetravel.schedule.runner import run_due
from timetravel.warehouse.layout import CONTEXT_SETS_TABLE
from timetravel.warehouse.leases import Lease, LeaseHeldError
from timetravel.warehouse.runs import RunsIndex
from timetravel.warehouse.store import DeltaStore

pytestmark = pytest.mark.spark

ROOT = Path(__file__).resolve().parents[2]
WORLD = {"seed": 4, "members": 150}
DAY1, DAY2, DAY3, DAY4 = (datetime(2026, 6, d, 6, tzinfo=UTC) for d in (1, 2, 3, 4))


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with Fleet.up(tmp_path_factory.mktemp("fleet"), world=WORLD, services=("ratings",)) as up:
        yield up


def test_catch_up_resume_and_one_scheduler(spark, local_config: Config, fleet: Fleet) -> None:  # type: ignore[no-untyped-def]
    config = local_config.model_copy(
        update={
            "selection": SelectionSettings(allocation=Allocation(sample_size=20), seed=2),
            "snapshot": SnapshotSettings(
                fleet_file=str(fleet.state_dir / "fleet.json"), sources=[source("ratings")]
            ),
            "schedule": ScheduleSettings(cron="0 6 * * *", start_at=DAY1, catch_up="latest"),
        }
    )
    store = DeltaStore(spark, config)
    write_population(store, World(**WORLD), DAY1 - timedelta(hours=1))  # type: ignore[arg-type]
    index = RunsIndex(config)
    said: list[str] = []

    # Three run times due, none run: the newest runs now, the two older are recorded missed.
    now = DAY3 + timedelta(hours=2)
    fleet.clock.set(now.isoformat())
    outcomes = run_due(store, config, now=now, say=said.append)
    assert [(o.slot.run_id, o.status) for o in outcomes] == [
        ("run-20260601T060000Z", "missed"),
        ("run-20260602T060000Z", "missed"),
        ("run-20260603T060000Z", "ok"),
    ]
    day3 = index.get("run-20260603T060000Z")
    assert (day3.status("select"), day3.status("snapshot"), day3.status("schedule")) == (
        "ok",
        "ok",
        "ok",
    )
    assert 2 * 3600 <= day3.stages["schedule"].details["lag_s"] < 2 * 3600 + 600
    assert index.get("run-20260601T060000Z").status("schedule") == "missed"
    assert index.get("run-20260601T060000Z").status("select") is None  # nothing fetched

    # Run again: nothing is due, nothing is run twice.
    said.clear()
    assert run_due(store, config, now=now, say=said.append) == [] and said == ["nothing due"]

    # A second scheduler on the warehouse is refused while one is active.
    with Lease(config, "scheduler", holder="scheduler@elsewhere", ttl_s=60):
        with pytest.raises(LeaseHeldError, match="scheduler@elsewhere"):
            run_due(store, config, now=now + timedelta(days=1))

    # A scheduler that died after day 4's select: the next pass resumes only the snapshot.
    select_contexts(store, config.selection, DAY4)
    index.record("run-20260604T060000Z", DAY4, "schedule", "running")
    selected = index.get("run-20260604T060000Z").stages["select"].table_versions
    later = DAY4 + timedelta(hours=1)
    fleet.clock.set(later.isoformat())
    outcomes = run_due(store, config, now=later, say=said.append)
    assert [(o.slot.run_id, o.slot.stages, o.status) for o in outcomes] == [
        ("run-20260604T060000Z", ("snapshot",), "ok")
    ]
    day4 = index.get("run-20260604T060000Z")
    assert day4.stages["select"].table_versions == selected  # not selected again
    contexts = store.read(CONTEXT_SETS_TABLE).where("run_id = 'run-20260604T060000Z'").count()
    assert contexts == 20

    # `schedule due` reads the runs index without Spark: a subprocess with no Java on PATH.
    conf = Path(config.warehouse.root).parent / "conf.yaml"
    conf.write_text(yaml.safe_dump(config.model_dump(mode="json", by_alias=True)))
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PATH": str(Path(sys.executable).parent),
        "JAVA_HOME": "/nonexistent",
    }
    done = subprocess.run(
        [sys.executable, "-m", "timetravel.cli", "--conf", str(conf), "schedule", "due", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    due = {s["run_id"]: s for s in json.loads(done.stdout)}
    assert due["run-20260601T060000Z"]["action"] == "done"  # recorded missed earlier
    assert due["run-20260604T060000Z"]["action"] == "done"

    # `status` judges the same index, also without Java: healthy just after day 4's run,
    # stale (exit 1) once day 5's run time is more than max_lag (6 h) old with no run.
    def status(at: str) -> subprocess.CompletedProcess[str]:
        command = ["--conf", str(conf), "status", "--at", at, "--json"]
        return subprocess.run(
            [sys.executable, "-m", "timetravel.cli", *command],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )

    fresh = status("2026-06-04T08:00:00Z")
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr[-2000:]
    assert json.loads(fresh.stdout)["missed"] == ["run-20260601T060000Z", "run-20260602T060000Z"]
    stale = status("2026-06-05T13:00:00Z")
    assert stale.returncode == 1
    assert json.loads(stale.stdout)["problems"] == [
        "7.0 h behind the schedule (max_lag 6h): run time 2026-06-05T06:00:00+00:00 has not "
        "completed"
    ]
    bad = status("0001-01-01T00:00:00Z")
    assert bad.returncode == 2 and "outside" in bad.stderr and "Traceback" not in bad.stderr

    # The other read-only commands answer without Java too, in human and JSON form.
    def cli(*command: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "timetravel.cli", "--conf", str(conf), *command],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert done.returncode == 0, (command, done.stderr[-2000:])
        return done.stdout

    listed = json.loads(cli("runs", "--json"))
    assert [r["run_id"] for r in listed][:2] == ["run-20260604T060000Z", "run-20260603T060000Z"]
    assert listed[0]["stages"]["snapshot"]["status"] == "ok"
    assert "run-20260602T060000Z" in cli("runs") and "schedule=missed" in cli("runs")
    assert "ratings_count" in {f["name"] for f in json.loads(cli("features", "--json"))}
    assert "cron: 0 6 * * *" in cli("config")


def test_a_killed_scheduler_resumes_its_run_exactly_once(  # type: ignore[no-untyped-def]
    spark, local_config: Config, fleet: Fleet, tmp_path: Path
) -> None:
    import signal
    import time

    from croniter import croniter

    from timetravel.demo.faults import FaultSettings
    from timetravel.warehouse.layout import facts_table

    # Daily, at a time ten minutes ago: three run times due, the next one tomorrow, so the
    # real clock cannot bring a new one in during the test.
    tick = datetime.now(UTC) - timedelta(minutes=10)
    cron = f"{tick.minute} {tick.hour} * * *"
    newest = croniter(cron, datetime.now(UTC)).get_prev(datetime).astimezone(UTC)
    start = newest - timedelta(days=2)
    config = local_config.model_copy(
        update={
            "selection": SelectionSettings(allocation=Allocation(sample_size=40), seed=5),
            "snapshot": SnapshotSettings(
                fleet_file=str(fleet.state_dir / "fleet.json"), sources=[source("ratings")]
            ),
            "schedule": ScheduleSettings(cron=cron, start_at=start, catch_up="latest"),
        }
    )
    store = DeltaStore(spark, config)
    write_population(store, World(**WORLD), start - timedelta(hours=1))  # type: ignore[arg-type]
    conf = tmp_path / "conf.yaml"
    conf.write_text(yaml.safe_dump(config.model_dump(mode="json", by_alias=True)))
    schedule_run = ["--conf", str(conf), "schedule", "run", "--once"]
    index = RunsIndex(config)
    run_id = f"run-{newest:%Y%m%dT%H%M%SZ}"

    fleet.clock.reset()
    fleet.set_faults("ratings", FaultSettings(latency_ms=1500))  # a snapshot that takes a while
    try:
        first = subprocess.Popen(
            [sys.executable, "-m", "timetravel.cli", *schedule_run],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its Spark JVM too is killed with its process group
        )
        deadline = time.monotonic() + 240
        while True:
            run = next((r for r in index.list() if r.run_id == run_id), None)
            if run is not None and run.status("snapshot") == "running":
                break
            assert first.poll() is None, first.communicate()[0][-3000:]
            assert time.monotonic() < deadline, "the scheduler never started the snapshot"
            time.sleep(0.3)
        selected = run.stages["select"].table_versions
        # A second scheduler started alongside is refused: the first holds the lease.
        with pytest.raises(LeaseHeldError, match="scheduler"):
            run_due(store, config)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=60)
    finally:
        fleet.set_faults("ratings", FaultSettings())

    assert index.get(run_id).status("snapshot") == "running"  # killed mid-snapshot
    # The scheduler started again, here in this process's Spark session (a second JVM start
    # would add nothing: what it resumes from is all in the warehouse and the dead lease).
    again = CliRunner().invoke(app, schedule_run)
    assert again.exit_code == 0, again.output[-3000:]
    assert f"{run_id}: snapshot (resume: snapshot not ok yet" in again.output

    runs = {r.run_id: r for r in index.list()}
    older = [f"run-{newest - timedelta(days=d):%Y%m%dT%H%M%SZ}" for d in (2, 1)]
    assert [runs[r].status("schedule") for r in older] == ["missed", "missed"]
    done = runs[run_id]
    assert [done.status(s) for s in ("select", "snapshot", "schedule")] == ["ok", "ok", "ok"]
    assert done.stages["select"].table_versions == selected  # not selected again
    for table in (CONTEXT_SETS_TABLE, facts_table("ratings")):
        rows = store.read(table).where(f"run_id = '{run_id}'")
        assert (rows.count(), rows.select("member_id").distinct().count()) == (40, 40), table
    assert {r.run_id for r in index.list()} == {*older, run_id}  # one run per due time
