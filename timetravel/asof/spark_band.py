"""The band plan of the Spark as-of join: for keys with few snapshots, a join then a pick.

Per source, the label rows' (key, label time) pairs are joined to that source's snapshots of
the same key taken at or before the label time (and within the source's staleness bound), and
a window over each (key, label time) keeps the greatest (snapshot time, tie-break): the same
row the sweep plan carries forward. The as-of choice depends on nothing else, so duplicate
label rows share it and no row id is needed. The chosen rows are then left-joined back to the
label rows on (key, label time): a label row with no such snapshot, a null key or a null time
matches nothing and keeps nulls, and each label row matches at most one chosen row.

Nothing is partitioned by hand, so Spark picks each join: when the label rows' (key, time)
pairs are small enough to broadcast (``spark.sql.autoBroadcastJoinThreshold``, or adaptive
execution at run time), the snapshots are joined where they are read, and only the candidate
pairs are shuffled, not the snapshots. At 1 snapshot per key on the benchmark's medium data
that took the plan from 5.3 s to 3.3 s (``benchmarks/RESULTS.md``); larger label sets get a
shuffled sort-merge join, about as fast as the co-partitioned plan it replaced.

Work grows with the candidate pairs, the sum over keys of label rows times snapshot rows: few
when every key has a few snapshots, quadratic on a hot key. So :mod:`.spark_plan` chooses it
from statistics, and the sweep plan (linear) takes everything else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from timetravel.asof.contract import staleness_micros
from timetravel.asof.spark_rows import SourcePass, key_names, keyed, label_row, micros

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["join"]


def join(
    labels: DataFrame, passes: Sequence[SourcePass], *, keys: Sequence[str], label_time: str
) -> DataFrame:
    """Every label row as ``_row`` (its columns, then each source's output columns), beside
    its keys ``_k0..`` and label time in microseconds ``_t``."""
    from pyspark.sql import functions as F

    key_cols = key_names(len(keys))
    carried = labels.select(*keyed(keys), micros(label_time).alias("_t"), label_row(labels))
    # Only rows that can match: a null key or time never equals anything.
    asked = carried.select(*key_cols, "_t").where(
        " AND ".join(f"`{c}` IS NOT NULL" for c in [*key_cols, "_t"])
    )
    for step in passes:
        chosen = latest_snapshots(asked, step)
        joined = carried.join(chosen, [*key_cols, "_t"], "left")
        carried = joined.select(
            *key_cols, "_t", step.finished_row(joined, F.col("_c"), F.col("_c").isNotNull())
        )
    return carried


def latest_snapshots(asked: DataFrame, step: SourcePass) -> DataFrame:
    """Per (key, label time) of ``asked`` that has a visible snapshot of ``step``'s source: the
    keys, ``_t`` and the chosen snapshot ``_c`` (its features and ``_snapshot_time``)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    keys, features, snapshot_time = step.keys, step.features, step.snapshot_time
    key_cols = key_names(len(keys))
    # The snapshot side's keys are named _j0.. so the join condition can name both sides.
    joined_cols = [f"_j{i}" for i in range(len(keys))]
    tie = step.tie_break()
    # The snapshot's values travel as plain columns _f0.. and _fst (named by position, so no
    # feature name can collide), packed only for the chosen row: a struct built for every
    # snapshot row cost 0.7 of 9.4 s at medium, 1 snapshot per key (benchmarks/RESULTS.md).
    values = [f"_f{i}" for i in range(len(features))]
    snapshots = step.known_rows().select(
        *(F.col(k).alias(j) for k, j in zip(keys, joined_cols, strict=True)),
        micros(snapshot_time).alias("_st"),
        *([tie.alias("_w")] if tie is not None else []),
        *(F.col(c).alias(v) for c, v in zip(features, values, strict=True)),
        F.col(snapshot_time).alias("_fst"),
    )
    visible = F.col("_st") <= F.col("_t")
    if step.staleness is not None:
        bound = staleness_micros(step.staleness)
        visible = visible & (F.col("_t") - F.col("_st") <= F.lit(bound))
    for k, j in zip(key_cols, joined_cols, strict=True):
        visible = visible & (F.col(k) == F.col(j))
    pairs = asked.join(snapshots, visible, "inner")
    # Latest snapshot first; among equal times the greatest tie-break (a null one last, as the
    # sweep plan's last() leaves it behind). Duplicate label rows give equal pairs: any one.
    latest_first = Window.partitionBy(*key_cols, "_t").orderBy(
        F.col("_st").desc(),
        *([F.col("_w").desc_nulls_last()] if tie is not None else []),
    )
    best = pairs.withColumn("_rank", F.row_number().over(latest_first)).where("_rank = 1")
    chosen = F.struct(
        *(F.col(v).alias(c) for c, v in zip(features, values, strict=True)),
        F.col("_fst").alias("_snapshot_time"),
    )
    return best.select(*key_cols, "_t", chosen.alias("_c"))
