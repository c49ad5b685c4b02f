"""The band plan of the Spark as-of join: for keys with few snapshots, a join then a pick.

Per source, the label rows are left-joined to that source's snapshots of the same key taken at
or before the label time (and within the source's staleness bound), and a window over each
label row (its key and a row id, so duplicate label rows stay apart) keeps the greatest
(snapshot time, tie-break): the same row the sweep plan carries forward. A label row with no
such snapshot, a null key or a null time keeps one row of nulls (left join).

Work grows with the candidate pairs, the sum over keys of label rows times snapshot rows: few
when every key has a few snapshots, quadratic on a hot key. So :mod:`.spark_plan` chooses it
from statistics, and the sweep plan (linear) takes everything else. Both sides are hash-
partitioned by the key into the same partitions, so the label rows are shuffled once for all
sources, and the window (partitioned by key and row id) and the next source's join reuse
that partitioning and the join's sort by key: a pass shuffles only the source's snapshots.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from timetravel.asof.contract import staleness_micros
from timetravel.asof.spark_rows import (
    SourcePass,
    key_names,
    keyed,
    label_row,
    micros,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["label_rows", "one_source"]


def label_rows(labels: DataFrame, keys: Sequence[str], label_time: str) -> DataFrame:
    """The label rows as the passes carry them: keys, a row id (unique per label row, even
    for equal rows), the label time in microseconds and ``_row``."""
    from pyspark.sql import functions as F

    return labels.select(
        *keyed(keys),
        F.monotonically_increasing_id().alias("_id"),
        micros(label_time).alias("_t"),
        label_row(labels),
    )


def one_source(carried: DataFrame, step: SourcePass) -> DataFrame:
    """One pass: each label row of ``carried`` (partitioned by key into ``step.partitions``) gains
    this source's output columns."""
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
    snapshots = (
        step.known_rows()
        .select(
            *(F.col(k).alias(j) for k, j in zip(keys, joined_cols, strict=True)),
            micros(snapshot_time).alias("_st"),
            *([tie.alias("_w")] if tie is not None else []),
            *(F.col(c).alias(v) for c, v in zip(features, values, strict=True)),
            F.col(snapshot_time).alias("_fst"),
        )
        .repartition(step.partitions, *joined_cols)
    )
    visible = F.col("_st") <= F.col("_t")
    if step.staleness is not None:
        bound = staleness_micros(step.staleness)
        visible = visible & (F.col("_t") - F.col("_st") <= F.lit(bound))
    for k, j in zip(key_cols, joined_cols, strict=True):
        visible = visible & (F.col(k) == F.col(j))
    pairs = carried.join(snapshots, visible, "left")
    # Latest snapshot first; among equal times the greatest tie-break (a null one last, as the
    # sweep plan's last() leaves it behind).
    latest_first = Window.partitionBy(*key_cols, "_id").orderBy(
        F.col("_st").desc_nulls_last(),
        *([F.col("_w").desc_nulls_last()] if tie is not None else []),
    )
    best = pairs.withColumn("_rank", F.row_number().over(latest_first)).where("_rank = 1")
    chosen = F.struct(
        *(F.col(v).alias(c) for c, v in zip(features, values, strict=True)),
        F.col("_fst").alias("_snapshot_time"),
    )
    # A label row the left join found no snapshot for has a null _st.
    row = step.finished_row(best, chosen, F.col("_st").isNotNull())
    return best.select(*key_cols, "_id", "_t", row)
