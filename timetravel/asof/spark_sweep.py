"""The sweep plan of the Spark as-of join: one sorted pass per source, linear in rows per key.

One pass per source: the label rows and that source's snapshots are unioned into one frame,
partitioned by the entity key and sorted by one long, ``2 * time`` for a snapshot and
``2 * time + 1`` for a label (so a snapshot sorts before a label at the same instant:
at-or-before), then by the tie-break; a running ``last(snapshot, ignorenulls)`` carries the
latest snapshot forward to each label row, which keeps it and goes on to the next source's
pass. Every input is hash-partitioned by the key into the same number of partitions, so the
label rows are shuffled once, not once per pass: a union of co-partitioned frames stays
partitioned. No driver collect, linear in rows per key. A hot key's rows land in one task,
which streams them in sorted order and spills to disk rather than failing.

Each pass sorts twice, and the first sort is what makes the second cheap. The window needs its
rows sorted by (key, order, tie), and a sort on several columns compares whole rows whenever
the first column ties: always, inside one key's rows. Those comparisons read rows scattered in
memory, and were a third of the executors' time. So the union is first radix-sorted on one long,
``bucket << 44 | order >> 16`` (``bucket``: 19 bits of the key's hash, the window's first
partition column), which orders rows by key bucket and then by time to 33 ms. The window's
exact sort then finds its input almost in order and only merges and touches up (keys sharing a
bucket, rows of one key within 33 ms), comparing neighbouring rows. The first sort only decides
how much work the second does, never which rows come out.

Measured (``benchmarks/RESULTS.md``, medium): a pass per source keeps the shuffled rows narrow,
one order long saves a sort key, co-partitioning saves re-shuffling the label rows, and the
presort takes the join from 1.6-1.8x to 1.1-1.4x a bare shuffle and sort of the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from timetravel.asof.contract import staleness_micros
from timetravel.asof.spark_rows import (
    SourcePass,
    by_key,
    key_names,
    keyed,
    label_row,
    micros,
    snapshot_struct,
    type_of,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

__all__ = ["join", "label_rows", "one_source"]

_KIND_SNAPSHOT, _KIND_LABEL = 0, 1
# The presort's long: 19 bits of key hash (positive), then 44 bits of order. Year 1 to 9999
# in order units spans under 2**60, so order >> 16 spans under 2**44: 65,536 order units
# (about 33 ms) per step, so only rows of one key within 33 ms are left for the exact sort.
_BUCKET_BITS, _ORDER_BITS, _ORDER_SHIFT = 19, 44, 16
# The first order long, 0001-01-01T00:00:00Z's (``_order``: 2 * micros + kind), coarsened.
_PRESORT_START = (-62_135_596_800 * 1_000_000 * 2 + _KIND_SNAPSHOT) >> _ORDER_SHIFT


def join(
    labels: DataFrame,
    passes: Sequence[SourcePass],
    *,
    keys: Sequence[str],
    label_time: str,
    partitions: int,
) -> DataFrame:
    """Every label row as ``_row`` (its columns, then each source's output columns): the label
    rows hash-partitioned by key once, then one pass per source."""
    carried = by_key(label_rows(labels, keys, label_time), len(keys), partitions)
    for step in passes:
        carried = one_source(carried, step, partitions)
    return carried


def label_rows(labels: DataFrame, keys: Sequence[str], label_time: str) -> DataFrame:
    """The label rows as the passes carry them: keys, bucket, order long and ``_row``."""
    return labels.select(
        *keyed(keys),
        _bucket(keys).alias("_b"),
        _order(label_time, _KIND_LABEL).alias("_o"),
        label_row(labels),
    )


def one_source(carried: DataFrame, step: SourcePass, partitions: int) -> DataFrame:
    """One pass: each label row of ``carried`` (partitioned by key into ``partitions``) gains
    this source's output columns."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    keys, features, snapshot_time = step.keys, step.features, step.snapshot_time

    key_cols = key_names(len(keys))
    tie = step.tie_break()
    snapshots = by_key(
        step.known_rows().select(
            *keyed(keys),
            _bucket(keys).alias("_b"),
            _order(snapshot_time, _KIND_SNAPSHOT).alias("_o"),
            *([tie.alias("_w")] if tie is not None else []),
            F.lit(None).cast(type_of(carried, "_row")).alias("_row"),
            snapshot_struct(features, snapshot_time),
        ),
        len(keys),
        partitions,
    )
    label_side = carried.select(
        *key_cols,
        "_b",
        "_o",
        *([F.lit(None).cast(type_of(snapshots, "_w")).alias("_w")] if tie is not None else []),
        "_row",
        F.lit(None).cast(type_of(snapshots, "_s")).alias("_s"),
    )
    # Among equal snapshot times the later-written row sorts last, so last() picks it; a
    # label row's null tie sorts first, which is harmless: its order long is odd. The bucket
    # (a function of the key: the same groups) leads, so the presorted input is nearly in order.
    window = (
        Window.partitionBy("_b", *key_cols)
        .orderBy(
            F.col("_o").asc_nulls_first(),
            *([F.col("_w").asc_nulls_first()] if tie is not None else []),
        )
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    passed = (
        label_side.unionByName(snapshots)
        .sortWithinPartitions(_presort())
        .select(
            *key_cols,
            "_b",
            "_o",
            "_row",
            F.last("_s", ignorenulls=True).over(window).alias("_s"),
        )
        .where(F.col("_row").isNotNull())
    )
    row = step.finished_row(passed, F.col("_s"), _usable(F.col("_s"), step.staleness))
    return passed.select(*key_cols, "_b", "_o", row)


def _bucket(keys: Sequence[str]) -> Column:
    """The key's bucket: ``_BUCKET_BITS`` low bits of its hash (null keys hash too)."""
    from pyspark.sql import functions as F

    return F.xxhash64(*(F.col(k) for k in keys)).bitwiseAND(F.lit((1 << _BUCKET_BITS) - 1))


def _presort() -> Column:
    """One long that orders rows by bucket, then by order to ``2**_ORDER_SHIFT`` units: what
    Spark radix-sorts before the window's exact sort. Shift, subtract and mask cannot
    overflow (ANSI mode would raise); a null order gives a null long, which sorts first."""
    from pyspark.sql import functions as F

    coarse = (F.shiftright(F.col("_o"), _ORDER_SHIFT) - F.lit(_PRESORT_START)).bitwiseAND(
        F.lit((1 << _ORDER_BITS) - 1)
    )
    return F.shiftleft(F.col("_b"), _ORDER_BITS).bitwiseOR(coarse)


def _order(column: str, kind: int) -> Column:
    """``2 * micros + kind``: one sort key for (time, snapshot before label). Year 1 to 9999
    in micros times two stays far inside a long."""
    from pyspark.sql import functions as F

    return micros(column) * F.lit(2) + F.lit(kind)


def _usable(chosen: Column, staleness: timedelta | None) -> Column:
    from pyspark.sql import functions as F

    present = chosen.isNotNull() & F.col("_o").isNotNull()
    if staleness is None:
        return present
    bound = staleness_micros(staleness)
    label_micros = F.shiftright(F.col("_o"), 1)
    snapshot_micros = F.unix_micros(chosen["_snapshot_time"].cast("timestamp"))
    return present & (label_micros - snapshot_micros <= F.lit(bound))
