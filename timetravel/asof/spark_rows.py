"""What both Spark plans of the as-of join share (:mod:`.spark_sweep`, :mod:`.spark_band`):
key columns ``_k0..``, label rows carried as one ``_row`` struct, one source's pass
(:class:`SourcePass`: its known rows, tie-break and finished row), and the sweep's partition
count.
The sweep carries a snapshot as one ``_s`` struct; the band plan packs only the chosen one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from timetravel.asof.contract import output_column, tie_break_columns

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame
    from pyspark.sql.types import DataType

# Estimated input bytes per partition of the passes (file bytes: compressed, so real rows are
# several times this); medium benchmark inputs (~190 MB) still get the session's 8.
_BYTES_PER_PARTITION = 16 * 1024 * 1024


@dataclass(frozen=True)
class SourcePass:
    """One source as a pass of either plan reads it: its rows, its output name, the columns
    that play each part and its resolved staleness bound."""

    frame: DataFrame
    source: str
    keys: Sequence[str]
    features: Sequence[str]
    snapshot_time: str
    written_time: str | None
    staleness: timedelta | None

    def known_rows(self) -> DataFrame:
        """The rows that can ever be chosen: key and snapshot time all present."""
        return self.frame.where(
            " AND ".join(f"`{k}` IS NOT NULL" for k in self.keys)
            + f" AND `{self.snapshot_time}` IS NOT NULL"
        )

    def tie_break(self) -> Column | None:
        """What orders one key's snapshots at the same time, greatest wins (contract's
        :func:`tie_break_columns`): the written time as a long (sorts faster than a one-field
        struct), else a struct of the primitive features; None when nothing can."""
        from pyspark.sql import functions as F

        ties = tie_break_columns(types(self.frame), self.features, self.written_time)
        if self.written_time is not None and ties == [self.written_time]:
            return micros(self.written_time)
        if ties:
            return F.struct(*(F.col(c) for c in ties))
        return None

    def finished_row(self, carried: DataFrame, chosen: Column, usable: Column) -> Column:
        """The new ``_row``: the carried fields, then this source's output columns from the
        ``chosen`` snapshot (its features and ``_snapshot_time``) where ``usable``, else
        nulls."""
        from pyspark.sql import functions as F

        fields = [F.col("_row").getField(c).alias(c) for c in row_fields(carried)]
        fields += [
            F.when(usable, chosen[c]).alias(output_column(self.source, c)) for c in self.features
        ]
        fields.append(
            F.when(usable, chosen["_snapshot_time"]).alias(
                output_column(self.source, self.snapshot_time)
            )
        )
        return F.struct(*fields).alias("_row")


def key_names(count: int) -> list[str]:
    """The key columns' internal names, ``_k0..``."""
    return [f"_k{i}" for i in range(count)]


def keyed(keys: Sequence[str]) -> list[Column]:
    """The key columns, renamed ``_k0..`` (so labels and sources line up whatever they call
    them)."""
    from pyspark.sql import functions as F

    return [F.col(k).alias(name) for k, name in zip(keys, key_names(len(keys)), strict=True)]


def label_row(labels: DataFrame) -> Column:
    """Every label column in one struct, ``_row``: it carries the finished outputs too."""
    from pyspark.sql import functions as F

    return F.struct(*(F.col(c).alias(c) for c in labels.columns)).alias("_row")


def snapshot_struct(features: Sequence[str], snapshot_time: str) -> Column:
    """What a chosen snapshot gives: its features and its time, in one struct."""
    from pyspark.sql import functions as F

    return F.struct(
        *(F.col(c) for c in features), F.col(snapshot_time).alias("_snapshot_time")
    ).alias("_s")


def unpacked(carried: DataFrame) -> DataFrame:
    """The finished rows: ``_row``'s fields as columns."""
    from pyspark.sql import functions as F

    row = F.col("_row")
    return carried.select(*(row.getField(c).alias(c) for c in row_fields(carried)))


def estimated_bytes(inputs: Sequence[DataFrame]) -> int | None:
    """The optimizer's size estimate of ``inputs`` together (file sizes for file and Delta
    scans; no job runs); None when Spark cannot say."""
    try:
        return sum(
            int(frame._jdf.queryExecution().optimizedPlan().stats().sizeInBytes())
            for frame in inputs
        )
    except Exception:  # an internal API: never let an estimate fail a join
        return None


def partitions(inputs: Sequence[DataFrame]) -> int:
    """How many partitions the passes run in: one per ``_BYTES_PER_PARTITION`` of the inputs'
    estimated size, at least 1, at most the session's ``spark.sql.shuffle.partitions``.

    The count is fixed up front (adaptive execution cannot shrink it without breaking the
    co-partitioning), so a small training set would otherwise run, encode and write
    ``shuffle.partitions`` near-empty partitions. Inputs of unknown size take the maximum.
    """
    session = inputs[0].sparkSession
    most = int(session.conf.get("spark.sql.shuffle.partitions") or 200)
    size = estimated_bytes(inputs)
    if size is None:
        return most
    return max(1, min(most, -(-size // _BYTES_PER_PARTITION)))


def by_key(frame: DataFrame, keys: int, partitions: int) -> DataFrame:
    """``frame`` hash-partitioned by its key columns ``_k0..`` into exactly ``partitions``.

    A fixed count (adaptive execution does not coalesce these) keeps every pass's inputs
    co-partitioned, so joining or unioning them needs no further shuffle of the label rows.
    """
    return frame.repartition(partitions, *key_names(keys))


def types(frame: DataFrame) -> dict[str, str]:
    """``column -> Spark type name``."""
    return dict(frame.dtypes)


def type_of(frame: DataFrame, column: str) -> DataType:
    """The type of ``column`` (for typed nulls on the other side of a union)."""
    return frame.schema[column].dataType


def micros(column: str) -> Column:
    """A timestamp column as epoch microseconds (a long)."""
    from pyspark.sql import functions as F

    return F.unix_micros(F.col(column).cast("timestamp"))


def row_fields(frame: DataFrame) -> list[str]:
    """The field names of ``frame``'s ``_row`` struct, in order."""
    return frame.select("_row.*").columns
