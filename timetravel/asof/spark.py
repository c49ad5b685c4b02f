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

Algorithm: not a band join. Labels and every source's snapshots are unioned into one frame,
partitioned by the entity key and sorted by time (snapshot before label at equal times, then
by written time); a running ``last(struct, ignorenulls)`` per source carries the latest
snapshot forward to each label row. One shuffle for all sources, no driver collect, linear
in rows per key. A hot key's rows land in one task, which streams them in sorted order and
spills to disk rather than failing.
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

__all__ = ["point_in_time_join"]

_KIND_SNAPSHOT, _KIND_LABEL = 0, 1


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
    from pyspark.sql import Window
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

    label_struct = F.struct(*(F.col(c) for c in label_cols))
    parts = [
        labels.select(
            *(F.col(k).alias(f"_k{i}") for i, k in enumerate(keys)),
            _micros(label_time).alias("_t"),
            F.lit(_KIND_LABEL).alias("_kind"),
            label_struct.alias("_label"),
            *(F.lit(None).alias(f"_w{i}") for i in range(len(sources))),
            *(F.lit(None).alias(f"_s{i}") for i in range(len(sources))),
        )
    ]
    for index, (name, frame) in enumerate(sources.items()):
        snap = F.struct(
            *(F.col(c) for c in features[name]), F.col(snapshot_time).alias("_snapshot_time")
        )
        ties = tie_break_columns(_types(frame), features[name], written_time)
        order = (
            F.struct(*(_micros(written_time) if c == written_time else F.col(c) for c in ties))
            if ties
            else F.lit(0)
        )
        # _w{i}/_s{i} are null on other sources' rows: each source's ties order only
        # among themselves.
        orders = [
            F.lit(None).alias(f"_w{i}") if i != index else order.alias(f"_w{i}")
            for i in range(len(sources))
        ]
        columns = [
            F.lit(None).alias(f"_s{i}") if i != index else snap.alias(f"_s{i}")
            for i in range(len(sources))
        ]
        rows = frame.where(
            " AND ".join(f"`{k}` IS NOT NULL" for k in keys) + f" AND `{snapshot_time}` IS NOT NULL"
        )
        parts.append(
            rows.select(
                *(F.col(k).alias(f"_k{i}") for i, k in enumerate(keys)),
                _micros(snapshot_time).alias("_t"),
                F.lit(_KIND_SNAPSHOT).alias("_kind"),
                F.lit(None).cast(label_struct_type(labels)).alias("_label"),
                *orders,
                *columns,
            )
        )
    union = parts[0]
    for part in parts[1:]:
        union = union.unionByName(part, allowMissingColumns=False)

    # Snapshots sort before a label at the same instant (at-or-before), and among equal
    # snapshot times the later-written row comes last, so last() picks it.
    window = (
        Window.partitionBy(*(f"_k{i}" for i in range(len(keys))))
        .orderBy(
            F.col("_t").asc_nulls_first(),
            "_kind",
            *(F.col(f"_w{i}").asc_nulls_first() for i in range(len(sources))),
        )
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    carried = union.select(
        "_t",
        "_kind",
        "_label",
        *(
            F.last(f"_s{i}", ignorenulls=True).over(window).alias(f"_s{i}")
            for i in range(len(sources))
        ),
    )
    at_labels = carried.where(F.col("_kind") == _KIND_LABEL)

    out: list[Column] = [F.col(f"_label.{c}").alias(c) for c in label_cols]
    for index, name in enumerate(sources):
        chosen = F.col(f"_s{index}")
        usable = _usable(chosen, staleness.get(name))
        for column in features[name]:
            out.append(F.when(usable, chosen[column]).alias(output_column(name, column)))
        out.append(
            F.when(usable, chosen["_snapshot_time"]).alias(output_column(name, snapshot_time))
        )
    return at_labels.select(*out)


def _types(frame: DataFrame) -> dict[str, str]:
    return dict(frame.dtypes)


def _micros(column: str) -> Column:
    from pyspark.sql import functions as F

    return F.unix_micros(F.col(column).cast("timestamp"))


def label_struct_type(labels: DataFrame) -> str:
    """The DDL type of the struct of all label columns (for typed nulls in the union)."""
    fields = ", ".join(f"`{f.name}`: {f.dataType.simpleString()}" for f in labels.schema.fields)
    return f"struct<{fields}>"


def _usable(chosen: Column, staleness: timedelta | None) -> Column:
    from pyspark.sql import functions as F

    present = chosen.isNotNull() & F.col("_t").isNotNull()
    if staleness is None:
        return present
    bound = int(staleness / timedelta(microseconds=1))
    snapshot_micros = F.unix_micros(chosen["_snapshot_time"].cast("timestamp"))
    return present & (F.col("_t") - snapshot_micros <= F.lit(bound))
