"""The snapshot job against the real demo fleet over HTTP, on local disk and on S3."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from pyspark.sql import functions as F

from tests.conftest import copy_warehouse, fresh_warehouse
from timetravel.collect.selection import select_contexts
from timetravel.collect.snapshot import snapshot_facts, snapshot_lease
from timetravel.config import (
    Allocation,
    Config,
    SelectionSettings,
    SnapshotSettings,
    SourceSettings,
)
from timetravel.demo.faults import FaultSettings
from timetravel.demo.fleet import Fleet
from timetravel.demo.population import write_population
from timetravel.demo.world import World
from timetravel.errors import ConfigError
from timetravel.times import to_utc
from timetravel.warehouse.layout import SNAPSHOT_ERRORS_TABLE, facts_table
from timetravel.warehouse.leases import LeaseHeldError
from timetravel.warehouse.runs import RunsIndex
from timetravel.warehouse.store import DeltaStore

pytestmark = pytest.mark.spark

ROOT = Path(__file__).resolve().parents[2]
T1 = "2026-06-01T06:00:00Z"
WORLD = {"seed": 7, "members": 400}
SCHEMAS = {
    "ratings": "thumbs_up int, thumbs_down int, "
    "ratings array<struct<title_id:int, thumbs_up:boolean, rated_at:timestamp>>",
    "viewing-history": "total_plays int, total_minutes bigint, "
    "plays array<struct<title_id:int, started_at:timestamp>>",
    "member-profile": "plan string, primary_device string, tenure_days int, status string",
}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with Fleet.up(tmp_path_factory.mktemp("fleet"), world=WORLD, clock_at=T1) as running:
        yield running


@pytest.fixture(autouse=True)
def calm_fleet(fleet: Fleet) -> Iterator[None]:
    yield
    fleet.clock.set(T1)
    for service in fleet.urls:
        fleet.set_faults(service, FaultSettings())


def source(name: str, **overrides: object) -> SourceSettings:
    base = {
        "name": name,
        "schema": SCHEMAS[name],
        "timeout_s": 1.0,
        "retries": 4,
        "backoff_base_s": 0.05,
        "backoff_max_s": 0.3,
        "batch_size": 20,
        "concurrency": 4,
        "min_coverage": 0.95,
    }
    return SourceSettings.model_validate(base | overrides)


def configure(config: Config, fleet: Fleet, *sources: SourceSettings, **snapshot: object) -> Config:
    selection = SelectionSettings(allocation=Allocation(sample_size=60), seed=5)
    snap = SnapshotSettings(
        fleet_file=str(fleet.state_dir / "fleet.json"),
        sources=list(sources) or [source("ratings"), source("member-profile")],
        **snapshot,
    )
    return config.model_copy(update={"selection": selection, "snapshot": snap})


def select_run(store: DeltaStore, config: Config, at: str = T1) -> str:
    write_population(store, World(**WORLD), at)
    return select_contexts(store, config.selection, at).run_id


@pytest.fixture(scope="module")
def selected_at_t1(  # type: ignore[no-untyped-def]
    spark, test_config: Config, fleet: Fleet, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A local warehouse with the population at T1 and its run selected, written once."""
    empty = fresh_warehouse(test_config, "local", tmp_path_factory.mktemp("selected"))
    config = configure(empty, fleet)
    select_run(DeltaStore(spark, config), config)
    return Path(config.warehouse.root)


@pytest.fixture
def selected_run(local_config: Config, selected_at_t1: Path) -> str:
    """A copy of that warehouse as this test's local warehouse: the id of the run to snapshot.

    Every test here starts from the same selected run; copying the folder instead of writing
    the population and selecting again saves each test the Spark work that the selection tests
    already check.
    """
    copy_warehouse(selected_at_t1, local_config)
    return RunsIndex(local_config).list()[0].run_id


@pytest.fixture
def selected_here(  # type: ignore[no-untyped-def]
    request: pytest.FixtureRequest, spark, warehouse_config: Config, fleet: Fleet
) -> tuple[Config, str]:
    """This test's warehouse (local or S3) with the run at T1 selected: its config and run id.

    The local warehouse starts as a copy of the one selected once (``selected_run``); the S3
    one is written and selected here.
    """
    config = configure(warehouse_config, fleet)
    if config.warehouse.is_s3:
        return config, select_run(DeltaStore(spark, config), config)
    return config, request.getfixturevalue("selected_run")


def facts(store: DeltaStore, name: str, run_id: str):  # type: ignore[no-untyped-def]
    return store.read(facts_table(name)).where(F.col("run_id") == run_id)


def member_ids(store: DeltaStore, name: str, run_id: str) -> list[int]:
    """The member ids of ``run_id``'s facts from ``name``, one per row (one Spark action)."""
    return [r[0] for r in facts(store, name, run_id).select("member_id").collect()]


def test_every_context_gets_a_typed_fact_equal_to_the_truth(
    spark, selected_here: tuple[Config, str]
) -> None:  # type: ignore[no-untyped-def]
    config, run_id = selected_here
    store = DeltaStore(spark, config)
    result = snapshot_facts(store, config, run_id)
    assert result.status == "ok"
    assert [(s.source, s.requested, s.fetched, s.failed, s.coverage) for s in result.sources] == [
        ("ratings", 60, 60, 0, 1.0),
        ("member-profile", 60, 60, 0, 1.0),
    ]
    for summary in result.sources:  # how long each service took, recorded for monitoring
        latency = summary.latency_ms
        assert latency is not None and 0 < latency["p50"] <= latency["p95"] <= latency["p99"]
    recorded = RunsIndex(config).get(run_id).stages["snapshot"].details["sources"]
    assert recorded["ratings"]["latency_ms"] == result.sources[0].latency_ms
    world = World(**WORLD)
    rows = facts(store, "ratings", run_id).collect()
    assert len(rows) == 60 and len({r["member_id"] for r in rows}) == 60
    for row in rows[:15]:
        truth = world.answer("ratings", [row["member_id"]], T1)[0]
        assert (row["thumbs_up"], row["thumbs_down"]) == (truth["thumbs_up"], truth["thumbs_down"])
        assert [r["title_id"] for r in row["ratings"]] == [r["title_id"] for r in truth["ratings"]]
        assert row["snapshot_time"] is not None and str(row["snapshot_date"]) == "2026-06-01"
    schema = dict(store.read(facts_table("ratings")).dtypes)
    assert schema["thumbs_up"] == "int" and schema["ratings"].startswith(
        "array<struct<title_id:int"
    )
    assert store.history(facts_table("ratings"), limit=1)[0].user_metadata == run_id
    recorded = RunsIndex(store.config).get(run_id).stages["snapshot"]
    assert recorded.status == "ok"
    assert recorded.details["sources"]["ratings"]["coverage"] == 1.0
    assert recorded.table_versions[facts_table("ratings")] == 1


def test_snapshot_time_is_the_services_as_of(
    spark, local_config: Config, selected_run: str, fleet: Fleet
) -> None:  # type: ignore[no-untyped-def]
    config = configure(local_config, fleet)
    store = DeltaStore(spark, config)
    run_id = selected_run
    fleet.clock.set("2026-06-01T06:30:00Z")  # the service's clock, not the run's logical time
    snapshot_facts(store, config, run_id)
    times = {
        r[0]
        for r in facts(store, "member-profile", run_id)
        .select(F.unix_micros("snapshot_time"))
        .distinct()
        .collect()
    }
    assert times == {int(to_utc("2026-06-01T06:30:00Z").timestamp()) * 1_000_000}


def test_faults_every_pair_accounted_retries_observed(
    spark,
    local_config: Config,  # type: ignore[no-untyped-def]
    selected_run: str,
    fleet: Fleet,
) -> None:
    # Batches of 2: 30 requests per source, so each fault is all but certain to fire
    # (no 20%-error among 30 requests: 0.8**30 ~ 0.1%).
    config = configure(
        local_config,
        fleet,
        source("ratings", retries=2, batch_size=2),
        source("member-profile", batch_size=2),
        source("viewing-history", retries=1, batch_size=2),
    )
    store = DeltaStore(spark, config)
    run_id = selected_run
    fleet.set_faults("ratings", FaultSettings(error_rate=0.2, malformed_rate=0.05))
    fleet.set_faults(
        "member-profile", FaultSettings(rate_limit_per_s=20, rate_limit_burst=2, retry_after_s=0)
    )
    fleet.set_faults("viewing-history", FaultSettings(hang_rate=0.2, hang_seconds=3))
    result = snapshot_facts(store, config, run_id)
    errors = store.read(SNAPSHOT_ERRORS_TABLE).where(F.col("run_id") == run_id).collect()
    for summary in result.sources:
        fetched_ids = member_ids(store, summary.source, run_id)
        failed_ids = [r["member_id"] for r in errors if r["source"] == summary.source]
        assert len(fetched_ids) == summary.fetched
        assert len(failed_ids) == summary.failed
        assert summary.fetched + summary.failed == 60
        fetched, failed = set(fetched_ids), set(failed_ids)
        assert not fetched & failed and len(fetched | failed) == 60
        assert summary.coverage == pytest.approx(summary.fetched / 60)
        assert summary.retried_now > 0, summary
    for row in errors:
        assert row["error_class"] in {
            "HTTP500",
            "HTTP503",
            "MalformedResponse",
            "Timeout",
            "HTTP429",
        }
        assert row["attempts"] == {"ratings": 3, "viewing-history": 2}.get(row["source"], 5)
    assert fleet.fault_counts("member-profile")["rate_limited"] > 0
    assert fleet.fault_counts("viewing-history")["hangs"] > 0


def test_a_source_down_fails_the_run_and_a_rerun_fetches_only_whats_missing(
    spark, local_config: Config, selected_run: str, fleet: Fleet
) -> None:  # type: ignore[no-untyped-def]
    config = configure(local_config, fleet, source("ratings", retries=1), source("member-profile"))
    store = DeltaStore(spark, config)
    run_id = selected_run
    fleet.set_faults("ratings", FaultSettings(error_rate=1.0, error_statuses=(503,)))
    first = snapshot_facts(store, config, run_id)
    assert first.status == "failed"
    ratings = {s.source: s for s in first.sources}["ratings"]
    assert (ratings.fetched, ratings.failed, ratings.status) == (0, 60, "failed")
    errors = store.read(SNAPSHOT_ERRORS_TABLE).where(F.col("run_id") == run_id).collect()
    assert {(e["last_status"], e["error_class"], e["attempts"]) for e in errors} == {
        (503, "HTTP503", 2)
    }

    fleet.set_faults("ratings", FaultSettings())
    second = snapshot_facts(store, config, run_id)
    assert second.status == "ok" and second.attempt == 2
    by_source = {s.source: s for s in second.sources}
    assert by_source["ratings"].fetched_now == 60 and by_source["member-profile"].fetched_now == 0
    for name in ("ratings", "member-profile"):
        ids = member_ids(store, name, run_id)
        assert len(ids) == 60 == len(set(ids)), name
    assert RunsIndex(store.config).get(run_id).status("snapshot") == "ok"


def test_cli_exits_non_zero_on_a_failed_run(
    spark,
    local_config: Config,
    selected_run: str,
    fleet: Fleet,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    from typer.testing import CliRunner

    from timetravel.cli import app

    config = configure(local_config, fleet, source("ratings", retries=0))
    run_id = selected_run
    fleet.set_faults("ratings", FaultSettings(error_rate=1.0))
    conf = tmp_path / "conf.yaml"
    conf.write_text(yaml.safe_dump(config.model_dump(by_alias=True)))
    result = CliRunner().invoke(app, ["--conf", str(conf), "snapshot", "--run-id", run_id])
    assert result.exit_code == 1, result.output
    assert "snapshot failed" in result.output and "ratings" in result.output


def test_killed_mid_run_then_rerun_gives_exactly_one_row_per_pair(
    spark, local_config: Config, selected_run: str, fleet: Fleet, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    config = configure(
        local_config,
        fleet,
        source("ratings"),
        source("member-profile"),
        source("viewing-history"),
        lease_ttl_s=600,
    )
    store = DeltaStore(spark, config)
    run_id = selected_run
    conf = tmp_path / "conf.yaml"
    conf.write_text(yaml.safe_dump(config.model_dump(by_alias=True)))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "timetravel.cli",
            "--conf",
            str(conf),
            "snapshot",
            "--run-id",
            run_id,
        ],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    first_commit = (
        Path(store.path(facts_table("ratings"))) / "_delta_log" / "00000000000000000001.json"
    )
    deadline = time.monotonic() + 240
    while not first_commit.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # after the first source committed, before the rest
    proc.wait()
    committed_before_kill = {
        name
        for name in ("ratings", "member-profile", "viewing-history")
        if store.exists(facts_table(name)) and facts(store, name, run_id).count()
    }
    assert "ratings" in committed_before_kill
    # No wait for the dead writer's 600 s lease: it ran on this host and its process is gone,
    # so the re-run takes the lease over at once (as a restarted scheduler does).
    result = snapshot_facts(store, config, run_id)
    assert result.status == "ok"
    for name in ("ratings", "member-profile", "viewing-history"):
        ids = member_ids(store, name, run_id)
        assert len(ids) == 60 == len(set(ids)), name
    assert {s.source: s.fetched_now for s in result.sources}["ratings"] == 0


def test_a_second_writer_is_refused_while_the_lease_is_held(
    spark, selected_here: tuple[Config, str]
) -> None:  # type: ignore[no-untyped-def]
    config, run_id = selected_here
    store = DeltaStore(spark, config)
    with snapshot_lease(config, run_id, holder="run-elsewhere", ttl_s=60):
        with pytest.raises(
            LeaseHeldError,
            match=r"another snapshot-run-20260601T060000Z-[0-9a-f]{8} writer holds the lease .*"
            r"holder 'run-elsewhere'",
        ):
            snapshot_facts(store, config, run_id)
    assert snapshot_facts(store, config, run_id).status == "ok"


def test_a_stage_that_raises_is_recorded_failed_and_a_rerun_completes(
    spark,
    local_config: Config,
    selected_run: str,
    fleet: Fleet,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import timetravel.collect.snapshot as snapshot_module

    config = configure(local_config, fleet)
    store = DeltaStore(spark, config)
    run_id = selected_run

    def broken_commit(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full\nsecond line")

    with monkeypatch.context() as patched:
        patched.setattr(snapshot_module, "_commit", broken_commit)
        with pytest.raises(RuntimeError, match="disk full"):
            snapshot_facts(store, config, run_id)
    stage = RunsIndex(store.config).get(run_id).stages["snapshot"]
    assert stage.status == "failed"  # not 'running' forever
    assert stage.details == {"error": "RuntimeError: disk full"}
    assert snapshot_facts(store, config, run_id).status == "ok"
    assert RunsIndex(store.config).get(run_id).stages["snapshot"].status == "ok"
    assert facts(store, "ratings", run_id).count() == 60


def test_schema_evolution_keeps_old_versions_readable(
    spark,
    local_config: Config,  # type: ignore[no-untyped-def]
    selected_run: str,
    fleet: Fleet,
) -> None:
    narrow = configure(local_config, fleet, source("ratings", schema="thumbs_up int"))
    store = DeltaStore(spark, narrow)
    first = selected_run
    snapshot_facts(store, narrow, first)
    v_first = (
        RunsIndex(store.config).get(first).stages["snapshot"].table_versions[facts_table("ratings")]
    )
    wide = configure(
        local_config, fleet, source("ratings", schema="thumbs_up int, thumbs_down int")
    )
    fleet.clock.set("2026-06-02T06:00:00Z")
    second = select_run(store, wide, "2026-06-02T06:00:00Z")
    snapshot_facts(store, wide, second)
    old = store.read(facts_table("ratings"), version=v_first)
    assert "thumbs_down" not in old.columns and old.count() == 60
    latest = store.read(facts_table("ratings"))
    assert latest.where(F.col("run_id") == first).where("thumbs_down is null").count() == 60
    assert latest.where(F.col("run_id") == second).where("thumbs_down is not null").count() == 60


def test_time_travel_to_each_runs_version(  # type: ignore[no-untyped-def]
    spark, local_config: Config, selected_run: str, fleet: Fleet
) -> None:
    config = configure(local_config, fleet)
    store = DeltaStore(spark, config)
    world = World(**WORLD)
    runs = []
    for at in (T1, "2026-06-15T06:00:00Z"):
        fleet.clock.set(at)
        run_id = selected_run if at == T1 else select_run(store, config, at)
        snapshot_facts(store, config, run_id)
        runs.append((run_id, at))
    index = RunsIndex(store.config)
    for run_id, at in runs:
        version = index.get(run_id).stages["snapshot"].table_versions[facts_table("ratings")]
        as_of = store.read(facts_table("ratings"), version=version)
        rows = as_of.where(F.col("run_id") == run_id).collect()
        assert len(rows) == 60
        for row in rows[:10]:
            truth = world.answer("ratings", [row["member_id"]], at)[0]
            assert row["thumbs_up"] == truth["thumbs_up"]
    first_version = index.get(runs[0][0]).stages["snapshot"].table_versions[facts_table("ratings")]
    assert {
        r[0]
        for r in store.read(facts_table("ratings"), version=first_version)
        .select("run_id")
        .distinct()
        .collect()
    } == {runs[0][0]}


def test_plugin_sources_and_config_errors(
    spark, local_config: Config, selected_run: str, fleet: Fleet
) -> None:  # type: ignore[no-untyped-def]
    plugin = SourceSettings.model_validate(
        {
            "name": "echo",
            "plugin": "tests.utils.plugins:EchoSource",
            "schema": "doubled bigint",
            "batch_path": None,
        }
    )
    config = configure(local_config, fleet, plugin)
    store = DeltaStore(spark, config)
    run_id = selected_run
    assert snapshot_facts(store, config, run_id).status == "ok"
    rows = facts(store, "echo", run_id).collect()
    assert len(rows) == 60 and all(r["doubled"] == 2 * r["member_id"] for r in rows)

    clash = configure(local_config, fleet, source("ratings", schema="member_id long"))
    with pytest.raises(ConfigError, match=r"schema fields \['member_id'\] collide"):
        snapshot_facts(store, clash, run_id)
    bad = configure(local_config, fleet, source("ratings", schema="thumbs_up integr"))
    with pytest.raises(ConfigError, match="source 'ratings': invalid schema"):
        snapshot_facts(store, bad, run_id)
    unknown = configure(
        local_config, fleet, SourceSettings.model_validate({"name": "likes", "schema": "n int"})
    )
    with pytest.raises(
        ConfigError,
        match=r"source 'likes' has no base_url and the fleet file "
        r"does not list it",
    ):
        snapshot_facts(store, unknown, run_id)


def test_invalid_source_config_is_a_clear_error() -> None:
    from timetravel.config import load_config_dict

    with pytest.raises(ConfigError, match=r"snapshot\.sources\.0\.timeout_s"):
        load_config_dict(
            {"snapshot": {"sources": [{"name": "a", "schema": "x int", "timeout_s": -1}]}}
        )
    with pytest.raises(ConfigError, match=r"snapshot\.sources\.0\.retrys: unknown key"):
        load_config_dict({"snapshot": {"sources": [{"name": "a", "schema": "x int", "retrys": 1}]}})
    with pytest.raises(ConfigError, match="plugin must be 'module:Class'"):
        load_config_dict(
            {"snapshot": {"sources": [{"name": "a", "schema": "x int", "plugin": "nocolon"}]}}
        )
