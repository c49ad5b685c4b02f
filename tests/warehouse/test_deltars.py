"""Spark writes, delta-rs reads: pinned versions, pruning, and identical joins on both engines."""

from __future__ import annotations

from datetime import timedelta

import pyarrow as pa
import pytest
from pyspark.sql import functions as F

from tests.utils.asof_engines import PitRunner, _collect, _collect_arrow
from timetravel.asof.spark import point_in_time_join
from timetravel.config import Config
from timetravel.errors import TableNotFoundError
from timetravel.warehouse.deltars import join_facts, read_table
from timetravel.warehouse.store import DeltaStore, Txn

pytestmark = pytest.mark.spark

FACTS = "member_id long, snapshot_time timestamp, written_at timestamp, plan string, hours double"


def facts_rows(day: str, written: str, offset: int) -> list[tuple]:  # type: ignore[type-arg]
    return [
        (
            m,
            f"{day} 06:00:00",
            f"{written}",
            ["basic", "premium"][(m + offset) % 2],
            float(m * offset),
        )
        for m in range(20)
    ]


@pytest.fixture(scope="module")
def facts(spark, module_warehouse: Config) -> DeltaStore:  # type: ignore[no-untyped-def]
    """facts/plans: v1 = run on 06-01, v2 = run on 06-08 (plus a same-time re-write of 2
    members on 06-08 with a later written_at: a tie on snapshot_time). Written once per
    warehouse; the tests here only read it."""
    store = DeltaStore(spark, module_warehouse)
    runner = PitRunner("spark", spark)
    first = runner.frame(facts_rows("2026-06-01", "2026-06-01 07:00:00", 1), FACTS)
    second = runner.frame(
        facts_rows("2026-06-08", "2026-06-08 07:00:00", 2)
        + [
            (1, "2026-06-08 06:00:00", "2026-06-08 09:00:00", "rewritten", -1.0),
            (2, "2026-06-08 06:00:00", "2026-06-08 05:00:00", "stale write", -2.0),
        ],
        FACTS,
    )
    for frame, run in ((first, "r1"), (second, "r2")):
        frame = frame.withColumn("snapshot_date", F.to_date("snapshot_time")).withColumn(
            "run_id", F.lit(run)
        )
        store.create("facts/plans", frame.schema, partition_by=["snapshot_date"])
        store.append("facts/plans", frame, user_metadata=run, txn=Txn(run, 0))
    return store


def rows(table: pa.Table) -> list[tuple]:  # type: ignore[type-arg]
    return sorted((r["member_id"], r["plan"], r["run_id"]) for r in table.to_pylist())


def test_delta_rs_reads_sparks_tables_at_pinned_versions(facts: DeltaStore) -> None:
    config = facts.config
    for version in (1, 2):
        spark_rows = sorted(
            (r["member_id"], r["plan"], r["run_id"])
            for r in facts.read("facts/plans", version=version).collect()
        )
        assert rows(read_table(config, "facts/plans", version=version)) == spark_rows
    assert read_table(config, "facts/plans", version=1).num_rows == 20
    assert read_table(config, "facts/plans").num_rows == 42


def test_column_and_partition_pruning(facts: DeltaStore) -> None:
    table = read_table(
        facts.config,
        "facts/plans",
        columns=["member_id", "plan"],
        partitions=[("snapshot_date", "<=", "2026-06-05")],
    )
    assert table.column_names == ["member_id", "plan"] and table.num_rows == 20


def test_missing_table_is_named(facts: DeltaStore) -> None:
    with pytest.raises(TableNotFoundError, match="no Delta table 'facts/none'"):
        read_table(facts.config, "facts/none")


def test_both_engines_give_identical_training_rows_for_pinned_versions(
    spark, facts: DeltaStore
) -> None:  # type: ignore[no-untyped-def]
    runner = PitRunner("spark", spark)
    labels = runner.frame(
        [
            (m, f"2026-06-{d:02d} 12:00:00", f"y{m}-{d}")
            for m in (0, 1, 2, 3, 25)
            for d in (1, 5, 8, 20)
        ],
        "member_id long, label_time timestamp, y string",
    )
    staleness = {"plans": timedelta(days=10)}
    for version in (1, 2):
        spark_facts = facts.read("facts/plans", version=version).drop("run_id", "snapshot_date")
        on_spark = _collect(
            point_in_time_join(
                labels,
                {"plans": spark_facts},
                entity="member_id",
                written_time="written_at",
                max_staleness=staleness,
            )
        )
        from tests.utils.asof_engines import _arrow

        embedded = join_facts(
            facts.config,
            _arrow(labels),
            {"plans": ("facts/plans", version)},
            entity="member_id",
            max_staleness=staleness,
        )
        assert _collect_arrow(embedded) == on_spark
    by_label = {r["y"]: r for r in on_spark}
    assert by_label["y1-8"]["plans__plan"] == "rewritten"  # the later write wins the tie
    assert by_label["y2-8"]["plans__plan"] == "basic"  # a stale write loses the tie
    assert by_label["y0-20"]["plans__plan"] is None  # 12 days after 06-08: 10 d max
    assert by_label["y0-8"]["plans__plan"] == "basic"
    assert by_label["y25-5"]["plans__plan"] is None  # no history
