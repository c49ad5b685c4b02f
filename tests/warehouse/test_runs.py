"""The runs index through delta-rs: upserts, concurrent writers on local disk and on the S3
test server, the version each commit reports, and the upgrade of a 0.1 (Spark-written) index."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

import pytest

from timetravel.config import Config
from timetravel.errors import RunNotFoundError, StoreError
from timetravel.warehouse.deltars import open_table
from timetravel.warehouse.layout import RUNS_TABLE
from timetravel.warehouse.runs import RunsIndex

T1 = datetime(2026, 6, 1, 6, tzinfo=UTC)
T2 = datetime(2026, 6, 2, 6, tzinfo=UTC)


def test_upsert_keeps_created_at_and_replaces_the_rest(local_config: Config) -> None:
    index = RunsIndex(local_config)
    index.record("r1", T1, "select", "running")
    first = index.get("r1").stages["select"]
    index.record("r1", T1, "select", "ok", details={"n": 3}, table_versions={"context_sets": 4})
    again = index.get("r1").stages["select"]
    assert again.status == "ok" and again.details == {"n": 3}
    assert again.table_versions == {"context_sets": 4}
    assert again.created_at == first.created_at and again.updated_at >= first.updated_at
    assert [r.run_id for r in index.list()] == ["r1"]  # updated, not added


def test_list_and_a_missing_run_named(local_config: Config) -> None:
    index = RunsIndex(local_config)
    assert index.list() == [] and index.find("r1") is None
    index.record("r1", T1, "select", "ok")
    index.record("r2", T2, "select", "failed")
    assert [r.run_id for r in index.list()] == ["r2", "r1"]
    with pytest.raises(RunNotFoundError, match=r"no run 'r9'.*recent: r2, r1"):
        index.get("r9")


def test_run_ids_are_values_not_sql(local_config: Config) -> None:
    index = RunsIndex(local_config)
    odd = "r'1\" OR 1=1 --"
    index.record(odd, T1, "select", "ok")
    index.record("r2", T1, "select", "ok")
    assert index.get(odd).run_id == odd
    assert {r.run_id for r in index.list()} == {odd, "r2"}


def test_each_record_reports_its_own_commit(local_config: Config) -> None:
    index = RunsIndex(local_config)
    versions = [index.record(f"r{i}", T1, "select", "ok") for i in range(3)]
    assert versions == sorted(versions) and len(set(versions)) == 3
    history = open_table(local_config, RUNS_TABLE).history()
    merges = {h["version"] for h in history if h["operation"] == "MERGE"}
    assert set(versions) <= merges


def race(config: Config, writes: list[tuple[str, str]]) -> dict[str, int]:
    """Each (run id, stage) recorded by its own thread, all at once; the versions reported."""
    start = threading.Barrier(len(writes))
    versions: dict[str, int] = {}
    errors: list[BaseException] = []

    def write(run_id: str, stage: str) -> None:
        index = RunsIndex(config)
        start.wait()
        try:
            versions[f"{run_id}/{stage}"] = index.record(run_id, T1, stage, "ok")
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=w) for w in writes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return versions


def test_writers_of_different_runs_never_collide(
    warehouse_config: Config, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="timetravel.warehouse.conflicts")
    RunsIndex(warehouse_config).record("r-first", T1, "select", "ok")  # the table exists
    writes = [(f"r{i}", stage) for i in range(6) for stage in ("select",)]
    for _ in range(2):  # inserts, then updates of the same rows
        versions = race(warehouse_config, writes)
        assert len(set(versions.values())) == len(writes)  # each got its own commit
    # The MERGE is scoped to its run's partition: no lost race to retry.
    assert [r.getMessage() for r in caplog.records] == []
    runs = RunsIndex(warehouse_config).list()
    assert sorted(r.run_id for r in runs) == sorted([*(w[0] for w in writes), "r-first"])


def test_writers_of_one_run_collide_and_all_land(
    warehouse_config: Config, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="timetravel.warehouse.conflicts")
    stages = ["select", "snapshot", "schedule", "quality", "a", "b"]
    versions = race(warehouse_config, [("r1", stage) for stage in stages])
    assert len(set(versions.values())) == len(stages)
    assert set(RunsIndex(warehouse_config).get("r1").stages) == set(stages)
    assert any("concurrent commit, retry" in r.getMessage() for r in caplog.records)


@pytest.mark.spark
def test_an_index_written_by_spark_is_upgraded_once_and_keeps_its_rows(
    spark, local_config: Config
) -> None:  # type: ignore[no-untyped-def]
    from timetravel.warehouse.store import DeltaStore, time_travel_properties

    location = f"{local_config.warehouse.root}/{RUNS_TABLE}"
    properties = ", ".join(
        f"'{k}' = '{v}'" for k, v in time_travel_properties(local_config).items()
    )
    spark.sql(
        f"CREATE TABLE delta.`{location}` (run_id string, stage string, run_time timestamp, "
        "status string, created_at timestamp, updated_at timestamp, details string, "
        f"table_versions map<string, bigint>) USING delta TBLPROPERTIES ({properties})"
    )
    spark.sql(
        f"INSERT INTO delta.`{location}` VALUES ('old', 'select', "
        "timestamp'2026-05-01 06:00:00', 'ok', timestamp'2026-05-01 06:00:00', "
        "timestamp'2026-05-01 06:00:00', '{}', map('context_sets', 1L))"
    )
    with pytest.raises(StoreError, match=r"written by timetravel 0\.1.*run any Spark stage"):
        RunsIndex(local_config).record("new", T1, "select", "ok")
    RunsIndex(local_config, spark=DeltaStore(spark, local_config).spark).record(
        "new", T1, "select", "ok"
    )
    index = RunsIndex(local_config)
    assert [r.run_id for r in index.list()] == ["new", "old"]
    assert index.get("old").stages["select"].table_versions == {"context_sets": 1}
    index.record("newer", T2, "select", "ok")  # no Spark needed any more
    assert len(index.list()) == 3


def test_listing_rereads_only_what_changed_and_is_never_stale(
    local_config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    import timetravel.warehouse.runs as runs_module

    index = RunsIndex(local_config)
    index.record("r1", T1, "select", "ok", details={"n": 1})
    index.record("r2", T2, "select", "ok", details={"n": 1})
    reads: list[str | None] = []
    real = runs_module._rows
    monkeypatch.setattr(
        runs_module, "_rows", lambda table, where: reads.append(where) or real(table, where)
    )
    first = index.list()
    index.list()[0].stages["select"].details["n"] = 99  # a caller changing its copy
    assert reads == [None]  # read once; the second listing came from what was read
    assert index.list()[0].stages["select"].details == first[0].stages["select"].details
    assert first[0].stages["select"].details == {"n": 1}
    index.record("r1", T1, "select", "failed", details={"n": 2})  # a new version
    listed = {r.run_id: r.stages["select"] for r in index.list()}
    assert reads == [None, "run_id IN ('r1')"]  # only the partition that changed
    assert (listed["r1"].status, listed["r1"].details) == ("failed", {"n": 2})
    assert (listed["r2"].status, listed["r2"].details) == ("ok", {"n": 1})
    index.record("r3", T2, "snapshot", "ok")
    assert [r.run_id for r in index.list()] == ["r3", "r2", "r1"]
    assert reads[-1] == "run_id IN ('r3')"
