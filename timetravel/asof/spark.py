"""Point-in-time ("as of") join on Spark: every label row, with each source's latest snapshot
at or before the label's time.

Contract (DESIGN.md, kept by every engine):

- per source, the row with the greatest ``snapshot_time <= label_time`` (a snapshot taken
  exactly at the label time is visible); among equal snapshot times the greatest
  ``written_time`` wins (without a written-time column, the greatest values of the
  primitive feature columns, compared in column order, win: deterministic on every engine);
- ``label_time - max_staleness <= snapshot_time`` (inclusive), else that source's columns
  are all null; no snapshot at all also gives nulls;
- values come from ONE snapshot row (a null inside the chosen row stays null);
- every label row appears exactly once (duplicates too), with all its columns; a null key
  or null label time gives nulls, not an error.

Algorithm: not a band join. One pass per source: the label rows and that source's snapshots are
unioned into one frame, partitioned by the entity key and sorted by one long, ``2 * time`` for a
snapshot and ``2 * time + 1`` for a label (so a snapshot sorts before a label at the same
instant: at-or-before), then by the tie-break; a running ``last(snapshot, ignorenulls)`` carries
the latest snapshot forward to each label row, which keeps it and goes on to the next source's
pass. Every input is hash-partitioned by the key into the same number of partitions (one per
16 MiB of estimated input, at most the session's ``spark.sql.shuffle.partitions``), so the
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

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from timetravel.asof.contract import (
    Staleness,
    check_inputs,
    feature_columns,
    key_list,
    output_column,
    resolve_staleness,
    tie_break_columns,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame
    from pyspark.sql.types import DataType

__all__ = ["point_in_time_join"]

_KIND_SNAPSHOT, _KIND_LABEL = 0, 1
# The presort's long: 19 bits of key hash (positive), then 44 bits of order. Year 1 to 9999
# in order units spans under 2**60, so order >> 16 spans under 2**44: 65,536 order units
# (about 33 ms) per step, so only rows of one key within 33 ms are left for the exact sort.
_BUCKET_BITS, _ORDER_BITS, _ORDER_SHIFT = 19, 44, 16
# The first order long, 0001-01-01T00:00:00Z's (``_order``: 2 * micros + kind), coarsened.
_PRESORT_START = (-62_135_596_800 * 1_000_000 * 2 + _KIND_SNAPSHOT) >> _ORDER_SHIFT
# Estimated input bytes per partition of the passes (file bytes: compressed, so real rows are
# several times this); medium benchmark inputs (~190 MB) still get the session's 8.
_BYTES_PER_PARTITION = 16 * 1024 * 1024


def point_in_time_join(
    labels: DataFrame,
    sources: Mapping[str, DataFrame],
    *,
    entity: str | Sequence[str] = "context_id",
    label_time: str = "label_time",
    snapshot_time: str = "snapshot_time",
    written_time: str | None = None,
    max_staleness: Staleness = None,
) -> DataFrame:
    """Join each label row with every source's latest snapshot at or before its time.

    Output: the label columns, then per source ``N`` and feature column ``c`` a column
    ``N__c``, and ``N__<snapshot_time>`` naming the snapshot used.

    Example:
        >>> point_in_time_join(labels, {"ratings": ratings}, entity="member_id",
        ...                    max_staleness=timedelta(days=7))          # doctest: +SKIP
    """
    from pyspark.sql import functions as F

    keys = key_list(entity)
    check_inputs(
        _types(labels),
        {name: _types(frame) for name, frame in sources.items()},
        keys=keys,
        label_time=label_time,
        snapshot_time=snapshot_time,
        written_time=written_time,
        max_staleness=max_staleness,
    )
    staleness = resolve_staleness(max_staleness, list(sources))
    label_cols = labels.columns
    features = {
        name: feature_columns(
            frame.columns, entity=keys, snapshot_time=snapshot_time, written_time=written_time
        )
        for name, frame in sources.items()
    }

    partitions = _partitions([labels, *sources.values()])
    # Label rows carry everything that goes out (their own columns, then each finished
    # source's outputs) in one struct, so a pass adds one null column to snapshot rows, not many.
    carried = _by_key(
        labels.select(
            *(F.col(k).alias(f"_k{i}") for i, k in enumerate(keys)),
            _bucket(keys).alias("_b"),
            _order(label_time, _KIND_LABEL).alias("_o"),
            F.struct(*(F.col(c).alias(c) for c in label_cols)).alias("_row"),
        ),
        len(keys),
        partitions,
    )
    for name, frame in sources.items():
        carried = _one_source(
            carried,
            frame,
            keys=keys,
            features=features[name],
            snapshot_time=snapshot_time,
            written_time=written_time,
            staleness=staleness.get(name),
            source=name,
            partitions=partitions,
        )
    row = F.col("_row")
    return carried.select(*(row.getField(c).alias(c) for c in _row_fields(carried)))


def _one_source(
    carried: DataFrame,
    frame: DataFrame,
    *,
    keys: list[str],
    features: list[str],
    snapshot_time: str,
    written_time: str | None,
    staleness: timedelta | None,
    source: str,
    partitions: int,
) -> DataFrame:
    """One pass: each label row of ``carried`` (partitioned by key into ``partitions``) gains
    this source's output columns."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    snap = F.struct(*(F.col(c) for c in features), F.col(snapshot_time).alias("_snapshot_time"))
    ties = tie_break_columns(_types(frame), features, written_time)
    tie: Column | None
    if written_time is not None and ties == [written_time]:
        tie = _micros(written_time)  # a long sorts faster than a one-field struct
    elif ties:
        tie = F.struct(*(F.col(c) for c in ties))
    else:
        tie = None
    rows = frame.where(
        " AND ".join(f"`{k}` IS NOT NULL" for k in keys) + f" AND `{snapshot_time}` IS NOT NULL"
    )
    snapshots = _by_key(
        rows.select(
            *(F.col(k).alias(f"_k{i}") for i, k in enumerate(keys)),
            _bucket(keys).alias("_b"),
            _order(snapshot_time, _KIND_SNAPSHOT).alias("_o"),
            *([tie.alias("_w")] if tie is not None else []),
            F.lit(None).cast(_type(carried, "_row")).alias("_row"),
            snap.alias("_s"),
        ),
        len(keys),
        partitions,
    )
    label_rows = carried.select(
        *(f"_k{i}" for i in range(len(keys))),
        "_b",
        "_o",
        *([F.lit(None).cast(_type(snapshots, "_w")).alias("_w")] if tie is not None else []),
        "_row",
        F.lit(None).cast(_type(snapshots, "_s")).alias("_s"),
    )
    # Among equal snapshot times the later-written row sorts last, so last() picks it; a
    # label row's null tie sorts first, which is harmless: its order long is odd. The bucket
    # (a function of the key: the same groups) leads, so the presorted input is nearly in order.
    window = (
        Window.partitionBy("_b", *(f"_k{i}" for i in range(len(keys))))
        .orderBy(
            F.col("_o").asc_nulls_first(),
            *([F.col("_w").asc_nulls_first()] if tie is not None else []),
        )
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    passed = (
        label_rows.unionByName(snapshots)
        .sortWithinPartitions(_presort())
        .select(
            *(f"_k{i}" for i in range(len(keys))),
            "_b",
            "_o",
            "_row",
            F.last("_s", ignorenulls=True).over(window).alias("_s"),
        )
        .where(F.col("_row").isNotNull())
    )
    chosen = F.col("_s")
    usable = _usable(chosen, staleness)
    fields = [F.col("_row").getField(c).alias(c) for c in _row_fields(carried)]
    fields += [F.when(usable, chosen[c]).alias(output_column(source, c)) for c in features]
    fields.append(
        F.when(usable, chosen["_snapshot_time"]).alias(output_column(source, snapshot_time))
    )
    return passed.select(
        *(f"_k{i}" for i in range(len(keys))), "_b", "_o", F.struct(*fields).alias("_row")
    )


def _partitions(inputs: Sequence[DataFrame]) -> int:
    """How many partitions the passes run in: one per ``_BYTES_PER_PARTITION`` of the inputs'
    estimated size, at least 1, at most the session's ``spark.sql.shuffle.partitions``.

    The count is fixed up front (adaptive execution cannot shrink it without breaking the
    co-partitioning), so a small training set would otherwise run, encode and write
    ``shuffle.partitions`` near-empty partitions. Inputs of unknown size take the maximum.
    """
    session = inputs[0].sparkSession
    most = int(session.conf.get("spark.sql.shuffle.partitions") or 200)
    try:
        # The optimizer's size estimate (file sizes for file and Delta scans); no job runs.
        size = sum(
            int(frame._jdf.queryExecution().optimizedPlan().stats().sizeInBytes())
            for frame in inputs
        )
    except Exception:  # an internal API: never let an estimate fail a join
        return most
    return max(1, min(most, -(-size // _BYTES_PER_PARTITION)))


def _by_key(frame: DataFrame, keys: int, partitions: int) -> DataFrame:
    """``frame`` hash-partitioned by its key columns ``_k0..`` into exactly ``partitions``.

    A fixed count (adaptive execution does not coalesce these) keeps every pass's inputs
    co-partitioned, so their union needs no shuffle before the window.
    """
    return frame.repartition(partitions, *(f"_k{i}" for i in range(keys)))


def _bucket(keys: list[str]) -> Column:
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


def _types(frame: DataFrame) -> dict[str, str]:
    return dict(frame.dtypes)


def _micros(column: str) -> Column:
    from pyspark.sql import functions as F

    return F.unix_micros(F.col(column).cast("timestamp"))


def _order(column: str, kind: int) -> Column:
    """``2 * micros + kind``: one sort key for (time, snapshot before label). Year 1 to 9999
    in micros times two stays far inside a long."""
    from pyspark.sql import functions as F

    return _micros(column) * F.lit(2) + F.lit(kind)


def _row_fields(frame: DataFrame) -> list[str]:
    """The field names of ``frame``'s ``_row`` struct, in order."""
    return frame.select("_row.*").columns


def _type(frame: DataFrame, column: str) -> DataType:
    """The type of ``column`` (for typed nulls on the other side of a union)."""
    return frame.schema[column].dataType


def _usable(chosen: Column, staleness: timedelta | None) -> Column:
    from pyspark.sql import functions as F

    present = chosen.isNotNull() & F.col("_o").isNotNull()
    if staleness is None:
        return present
    bound = int(staleness / timedelta(microseconds=1))
    label_micros = F.shiftright(F.col("_o"), 1)
    snapshot_micros = F.unix_micros(chosen["_snapshot_time"].cast("timestamp"))
    return present & (label_micros - snapshot_micros <= F.lit(bound))
