"""Concurrent runs on one warehouse: selects and snapshots of different runs side by side.

Each round (one in CI) starts four selects (new run times) and two snapshots (of runs selected
before it) at once, on local disk and on the S3 test server. The shared tables (runs index,
context sets, facts) take the concurrent writers: every stage succeeds, each run's rows are
there exactly once, the runs index has one row per run and stage, and each stage reports the
Delta version its own commit made. (Lost commit races are retried where they happen; the
runs index's MERGEs are scoped to their run's partition so different runs do not race.)
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from itertools import pairwise

import pyarrow.compute as pc
import pytest
from pyspark.sql import functions as F

from tests.collect.test_snapshot import source
from timetravel.collect.selection import select_contexts
from timetravel.collect.snapshot import snapshot_facts
from timetravel.config import Allocation, Config, Panel, SelectionSettings, SnapshotSettings
from timetravel.demo.fleet import Fleet
from timetravel.demo.population import write_population
from timetravel.demo.world import World
from timetravel.times import to_utc
from timetravel.warehouse.deltars import read_table
from timetravel.warehouse.layout import CONTEXT_SETS_TABLE, RUNS_TABLE, facts_table
from timetravel.warehouse.runs import RunsIndex
from timetravel.warehouse.store import DeltaStore

pytestmark = pytest.mark.spark

T0 = to_utc("2026-06-01T00:00:00Z")
WORLD = {"seed": 5, "members": 200}
# One round per warehouse in CI: every shared table takes concurrent writers in it (4 context
# set appends, 2 facts appends, 6 runs index writers), and a second round of the same took
# each case from 20 to 33 s alone. TT_CONCURRENCY_ROUNDS=5 repeats it longer (run by hand).
ROUNDS = int(os.environ.get("TT_CONCURRENCY_ROUNDS", "1"))
SAMPLE = 20


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    services = ("ratings",)
    with Fleet.up(tmp_path_factory.mktemp("fleet"), world=WORLD, services=services) as running:
        running.clock.set(T0.isoformat())
        yield running


def run_at_once(tasks: list[Callable[[], object]]) -> list[BaseException]:
    start = threading.Barrier(len(tasks))
    errors: list[BaseException] = []

    def run(task: Callable[[], object]) -> None:
        start.wait()
        try:
            task()
        except BaseException as exc:  # noqa: BLE001 - reported by the caller's assertion
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(t,)) for t in tasks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_selects_and_snapshots_side_by_side(
    spark,  # type: ignore[no-untyped-def]
    warehouse_config: Config,
    fleet: Fleet,
) -> None:
    config = warehouse_config.model_copy(
        update={
            "selection": SelectionSettings(
                allocation=Allocation(sample_size=SAMPLE), seed=5, panel=Panel(fraction=0.5)
            ),
            "snapshot": SnapshotSettings(
                fleet_file=str(fleet.state_dir / "fleet.json"), sources=[source("ratings")]
            ),
        }
    )
    store = DeltaStore(spark, config)
    write_population(store, World(**WORLD), T0)  # type: ignore[arg-type]
    times = iter(T0 + timedelta(hours=h) for h in range(1, 100))
    to_snapshot = [select_contexts(store, config.selection, next(times)).run_id for _ in range(2)]
    selected = list(to_snapshot)
    snapshotted: list[str] = []
    for _ in range(ROUNDS):
        new = [next(times) for _ in range(4)]
        tasks: list[Callable[[], object]] = [
            lambda at=at: selected.append(select_contexts(store, config.selection, at).run_id)
            for at in new
        ]
        tasks += [lambda r=run_id: snapshot_facts(store, config, r) for run_id in to_snapshot]
        errors = run_at_once(tasks)
        assert errors == [], [f"{type(e).__name__}: {e}" for e in errors]
        snapshotted += to_snapshot
        to_snapshot = selected[-4:-2]

    index = RunsIndex(config)
    runs = {r.run_id: r for r in index.list()}
    assert sorted(runs) == sorted(selected) and len(selected) == 2 + 4 * ROUNDS
    raw = read_table(config, RUNS_TABLE, columns=["run_id", "stage"])
    pairs = [f"{r['run_id']}/{r['stage']}" for r in raw.to_pylist()]
    assert len(pairs) == len(set(pairs)) == len(selected) + len(snapshotted)  # one row each

    members = store.read(CONTEXT_SETS_TABLE).groupBy("run_id")
    counts = {
        r["run_id"]: (r["n"], r["distinct"])
        for r in members.agg(
            F.count(F.lit(1)).alias("n"), F.countDistinct("member_id").alias("distinct")
        ).collect()
    }
    facts = store.read(facts_table("ratings")).groupBy("run_id")
    fact_counts = {
        r["run_id"]: (r["n"], r["distinct"])
        for r in facts.agg(
            F.count(F.lit(1)).alias("n"), F.countDistinct("member_id").alias("distinct")
        ).collect()
    }
    tagged = {
        table: {c.version: c.user_metadata for c in store.history(table)}
        for table in (CONTEXT_SETS_TABLE, facts_table("ratings"))
    }
    for run_id in selected:
        run = runs[run_id]
        assert run.status("select") == "ok", run_id
        assert counts[run_id] == (SAMPLE, SAMPLE), run_id  # exactly once
        version = run.stages["select"].table_versions[CONTEXT_SETS_TABLE]
        assert tagged[CONTEXT_SETS_TABLE][version] == run_id  # its own commit
        previous = run.stages["select"].details["previous_run_id"]
        if previous is not None:  # the panel came from an earlier, completed run
            assert runs[previous].run_time < run.run_time
    for run_id in snapshotted:
        run = runs[run_id]
        assert run.status("snapshot") == "ok", run_id
        assert fact_counts[run_id] == (SAMPLE, SAMPLE), run_id
        version = run.stages["snapshot"].table_versions[facts_table("ratings")]
        assert tagged[facts_table("ratings")][version] == run_id
    assert set(fact_counts) == set(snapshotted)
    statuses = pc.unique(read_table(config, RUNS_TABLE, columns=["status"])["status"])
    assert statuses.to_pylist() == ["ok"]
    # The stages did run side by side: some of their [started, finished] spans overlap.
    spans = sorted(
        (record.created_at, record.updated_at, f"{run.run_id}/{stage}")
        for run in runs.values()
        for stage, record in run.stages.items()
    )
    overlapping = sum(1 for a, b in pairwise(spans) if b[0] < a[1])
    assert overlapping >= ROUNDS, spans
