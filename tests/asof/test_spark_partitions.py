"""How many partitions the Spark join's passes run in: sized from the inputs' estimates."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from timetravel.asof.spark import point_in_time_join
from timetravel.asof.spark_rows import partitions as _partitions

pytestmark = pytest.mark.spark

MIB = 1024 * 1024


@pytest.fixture
def eight_shuffle_partitions(spark) -> Iterator[None]:  # type: ignore[no-untyped-def]
    before = spark.conf.get("spark.sql.shuffle.partitions")
    spark.conf.set("spark.sql.shuffle.partitions", "8")
    try:
        yield
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", before)


def ids(spark, rows: int):  # type: ignore[no-untyped-def]
    """A frame whose size Spark estimates exactly: 8 bytes per row of ``range``."""
    return spark.range(rows)


@pytest.mark.usefixtures("eight_shuffle_partitions")
def test_one_partition_per_16_mib_of_estimated_input_capped(spark) -> None:  # type: ignore[no-untyped-def]
    assert _partitions([ids(spark, 10), ids(spark, 10)]) == 1
    # 2 + 1 MiB of ids: 3 MiB, still one partition; 48 MiB: three.
    assert _partitions([ids(spark, 2 * MIB // 8), ids(spark, MIB // 8)]) == 1
    assert _partitions([ids(spark, 32 * MIB // 8), ids(spark, 16 * MIB // 8)]) == 3
    # Far past 8 x 16 MiB: the session's shuffle partitions, not more.
    assert _partitions([ids(spark, 10), ids(spark, 10**10)]) == 8


@pytest.mark.usefixtures("eight_shuffle_partitions")
def test_a_small_join_runs_and_writes_one_partition(spark) -> None:  # type: ignore[no-untyped-def]
    from pyspark.sql import functions as F

    labels = ids(spark, 5).select(
        F.col("id").alias("context_id"), F.timestamp_micros(F.col("id") * 10).alias("label_time")
    )
    snaps = ids(spark, 20).select(
        (F.col("id") % 5).alias("context_id"),
        F.timestamp_micros(F.col("id")).alias("snapshot_time"),
        F.col("id").alias("v"),
    )
    joined = point_in_time_join(labels, {"s": snaps})
    assert joined.rdd.getNumPartitions() == 1
    # Key k's label is at 10k us; its snapshots are ids k, k+5, k+10, k+15 (at those us):
    # the latest at or before 10k us.
    got = {r["context_id"]: r["s__v"] for r in joined.collect()}
    assert got == {0: 0, 1: 6, 2: 17, 3: 18, 4: 19}


def test_label_rows_are_shuffled_once_not_once_per_source(spark) -> None:  # type: ignore[no-untyped-def]
    from pyspark.sql import functions as F

    labels = ids(spark, 5).select(
        F.col("id").alias("context_id"), F.timestamp_micros(F.col("id")).alias("label_time")
    )
    sources = {
        name: ids(spark, rows).select(
            (F.col("id") % 5).alias("context_id"),
            F.timestamp_micros(F.col("id")).alias("snapshot_time"),
            F.col("id").alias("v"),
        )
        for name, rows in (("a", 20), ("b", 21), ("c", 22))
    }
    plan = point_in_time_join(labels, sources)._jdf.queryExecution().executedPlan().toString()
    # One exchange per input (labels + 3 sources); the passes' unions are co-partitioned.
    exchanges = [line for line in plan.splitlines() if "Exchange " in line]
    assert len(exchanges) == 4, plan
