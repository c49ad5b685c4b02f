"""Label sets in: read them, check them, give them one canonical shape, fingerprint them.

Canonical labels have the entity columns typed like the fact tables' keys and the label time
as a UTC timestamp (microseconds). Decision (DESIGN.md, :mod:`timetravel.times`): naive
timestamps and offset-less strings are UTC, never the host's local time. Other columns are
kept as they are and come out in the training set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from timetravel.errors import LabelError
from timetravel.times import MAX_INSTANT, MIN_INSTANT, arrow_micros, check_instant, spark_instant
from timetravel.training.label_location import LabelLocation

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

    from timetravel.config import Config

__all__ = [
    "read_labels_arrow",
    "read_labels_spark",
    "canonical_arrow",
    "canonical_spark",
    "fingerprint_arrow",
    "fingerprint_spark",
]

_MOD = 2**64
_RANGE = f"{MIN_INSTANT:%Y-%m-%d} and {MAX_INSTANT:%Y-%m-%d} UTC"


def read_labels_arrow(config: Config, location: LabelLocation) -> pa.Table:
    """Labels from a Parquet/CSV file or a Delta table at a resolved location (local or S3,
    with the profile's endpoint and credentials), read without Spark."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.dataset as ds

    from timetravel.warehouse.files import filesystem

    try:
        if location.fmt == "delta":
            from deltalake import DeltaTable

            from timetravel.warehouse.s3 import delta_rs_options, rs_uri

            return DeltaTable(
                rs_uri(location.uri), storage_options=delta_rs_options(config)
            ).to_pyarrow_table()
        fs, path = filesystem(config, location.uri)
        if location.fmt == "csv":
            # Keep text columns as text: the label time is parsed by canonical_arrow, as UTC.
            options = pcsv.ConvertOptions(timestamp_parsers=[])
            with fs.open_input_stream(path) as stream:
                return pcsv.read_csv(stream, convert_options=options)
        return ds.dataset(path, filesystem=fs, format="parquet").to_table()
    except (OSError, pa.ArrowException, ValueError) as exc:
        # The reader's own message may quote the file's lines: name the problem only.
        raise LabelError(
            f"cannot read {location.fmt} labels at {location.uri!r}: the file is "
            f"not valid {location.fmt} or cannot be opened "
            f"({type(exc).__name__})"
        ) from None


def read_labels_spark(spark: SparkSession, location: LabelLocation) -> DataFrame:
    """Labels as a Spark DataFrame (for label sets too big for one machine)."""
    from pyspark.errors import AnalysisException

    try:
        if location.fmt == "csv":
            # Inferred timestamps are parsed in the UTC session (naive = UTC); text left as
            # text is parsed by canonical_spark.
            return spark.read.option("header", True).option("inferSchema", True).csv(location.uri)
        return spark.read.format(location.fmt).load(location.uri)
    except AnalysisException as exc:
        condition = exc.getCondition() or "AnalysisException"
        raise LabelError(
            f"cannot read {location.fmt} labels at {location.uri!r} ({condition})"
        ) from None


def _require_columns(columns: Sequence[str], entity: Sequence[str], label_time: str) -> None:
    missing = [c for c in [*entity, label_time] if c not in columns]
    if missing:
        # Column names are the file's content (its header): counted, never echoed.
        raise LabelError(
            f"labels lack column(s) {missing}; they have {len(columns)} other "
            f"column(s) (entity {list(entity)}, label time {label_time!r})"
        )


def canonical_arrow(
    labels: pa.Table | pd.DataFrame | Sequence[Mapping[str, Any]],
    entity: Sequence[str],
    label_time: str,
    key_types: Mapping[str, pa.DataType],
) -> pa.Table:
    """Labels as an Arrow table with typed keys and a UTC label time (naive = UTC)."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(labels, pd.DataFrame):
        table = pa.Table.from_pandas(labels, preserve_index=False)
    elif isinstance(labels, pa.Table):
        table = labels
    else:
        try:
            table = pa.Table.from_pylist(list(labels))
        except OverflowError:
            raise LabelError(
                f"labels hold an integer outside the signed 64-bit range [{-(2**63)}, {2**63 - 1}]"
            ) from None
        except (pa.ArrowException, TypeError, ValueError) as exc:
            raise LabelError(
                f"labels rows are not a table of consistent values ({type(exc).__name__})"
            ) from None
    _require_columns(table.column_names, entity, label_time)
    if len(set(table.column_names)) != len(table.column_names):
        raise LabelError("labels have duplicate column names")
    for key in entity:
        wanted = key_types.get(key, pa.int64())
        column = table.column(key)
        if column.type == wanted:
            continue
        if not (pa.types.is_integer(column.type) or pa.types.is_null(column.type)):
            raise LabelError(
                f"label column {key!r} must hold integers like the fact tables' "
                f"key ({wanted}); it is {column.type}"
            )
        try:
            cast = pc.cast(column, wanted)
        except pa.ArrowInvalid:
            raise LabelError(
                f"label column {key!r} holds integers outside the range of the "
                f"fact tables' key ({wanted})"
            ) from None
        table = table.set_column(table.column_names.index(key), key, cast)
    index = table.column_names.index(label_time)
    times = _utc_times(table.column(label_time), label_time)
    _check_range(times, label_time)
    return table.set_column(index, label_time, times)


def _check_range(times: pa.Array | pa.ChunkedArray, name: str) -> None:
    """Every label time inside the one valid range (:data:`timetravel.times.MIN_INSTANT`...)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    low, high = pa.scalar(MIN_INSTANT, times.type), pa.scalar(MAX_INSTANT, times.type)
    outside = pc.or_(pc.less(times, low), pc.greater_equal(times, high))
    if pc.any(outside).as_py():
        row = pc.index(outside, True).as_py()
        raise LabelError(f"label column {name!r}, row {row}: an instant outside {_RANGE}")


def _utc_times(column: pa.ChunkedArray, name: str) -> pa.Array:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    target = pa.timestamp("us", tz="UTC")
    kind = column.type
    if pa.types.is_timestamp(kind):
        # A naive Arrow timestamp holds UTC wall-clock values: tagging it UTC keeps the instant.
        return pc.cast(column, pa.timestamp(kind.unit, tz="UTC")).cast(target)
    if pa.types.is_null(kind):
        return pa.nulls(len(column), target)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        text = column.to_pandas()
        try:
            parsed = pd.to_datetime(text, utc=True, format="ISO8601")
            return pa.array(parsed.dt.as_unit("us"), target)
        except (ValueError, TypeError, OverflowError, pa.ArrowException):
            row = _first_unusable(text)
            raise LabelError(
                f"label column {name!r}, row {row}: not an ISO-8601 instant "
                f"between {_RANGE} (e.g. 2026-06-01T12:00:00Z; without an offset "
                "it is taken as UTC)"
            ) from None
    raise LabelError(f"label column {name!r} must be a timestamp or ISO-8601 text; it is {kind}")


def _first_unusable(text: pd.Series) -> int:
    """The 0-based row of the first value that is no instant in range (never the value:
    it may come from a file the caller may not see)."""
    for row, value in enumerate(text):
        if value is None:
            continue
        try:
            check_instant(value)
        except ValueError:
            return row
    return 0


def canonical_spark(
    labels: DataFrame, entity: Sequence[str], label_time: str, key_types: Mapping[str, str]
) -> DataFrame:
    """:func:`canonical_arrow` for a Spark DataFrame (the session is UTC: naive = UTC)."""
    from pyspark.sql import functions as F

    _require_columns(labels.columns, entity, label_time)
    types = dict(labels.dtypes)
    out = labels
    for key in entity:
        wanted = key_types.get(key, "bigint")
        if types[key] == wanted:
            continue
        if types[key] not in ("tinyint", "smallint", "int", "bigint", "void"):
            raise LabelError(
                f"label column {key!r} must hold integers like the fact tables' "
                f"key ({wanted}); it is {types[key]}"
            )
        out = out.withColumn(key, F.col(key).cast(wanted))
    kind = types[label_time]
    if kind == "string":
        # try_: under ANSI mode (Spark 4's default) to_timestamp raises, quoting the value.
        parsed = F.try_to_timestamp(F.col(label_time))
        bad = out.where(F.col(label_time).isNotNull() & parsed.isNull()).count()
        if bad:
            raise LabelError(
                f"label column {label_time!r}: {bad} row(s) are not ISO-8601 "
                "instants (e.g. 2026-06-01T12:00:00Z; without an offset it is UTC)"
            )
        out = out.withColumn(label_time, parsed)
    elif kind in ("timestamp_ntz", "date", "void"):
        out = out.withColumn(label_time, F.col(label_time).cast("timestamp"))
    elif kind != "timestamp":
        raise LabelError(
            f"label column {label_time!r} must be a timestamp or ISO-8601 text; it is {kind}"
        )
    column = F.col(label_time)
    outside = out.where(
        (column < spark_instant(MIN_INSTANT)) | (column >= spark_instant(MAX_INSTANT))
    ).count()
    if outside:
        raise LabelError(
            f"label column {label_time!r}: {outside} row(s) hold an instant outside {_RANGE}"
        )
    return out


def _row_hashes(batch: pa.RecordBatch | pa.Table) -> np.ndarray:
    """One uint64 per row. Every column becomes (filled values, validity) of a fixed dtype,
    so a batch's hashes do not depend on whether it happens to hold a null."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    columns: dict[str, np.ndarray] = {}
    for name in sorted(batch.schema.names):
        column = batch.column(name)
        valid = pc.is_valid(column).to_numpy(zero_copy_only=False)
        if pa.types.is_timestamp(column.type):
            column = arrow_micros(column)
        if pa.types.is_integer(column.type) or pa.types.is_boolean(column.type):
            values = pc.fill_null(pc.cast(column, pa.int64()), 0).to_numpy(zero_copy_only=False)
        elif pa.types.is_floating(column.type):
            values = pc.fill_null(pc.cast(column, pa.float64()), 0.0).to_numpy(zero_copy_only=False)
        else:
            text = (
                column
                if pa.types.is_string(column.type)
                else pa.array(
                    [None if v is None else str(v) for v in column.to_pylist()], pa.string()
                )
            )
            values = np.asarray(pc.fill_null(text, "").to_numpy(zero_copy_only=False), dtype=object)
        columns[f"{name}:v"] = values
        columns[f"{name}:n"] = np.asarray(valid, dtype=bool)
    if not columns:
        return np.zeros(0, dtype=np.uint64)
    return pd.util.hash_pandas_object(pd.DataFrame(columns), index=False).to_numpy(np.uint64)


def _combine(rows: int, total: int, columns: Sequence[str]) -> str:
    import hashlib

    text = f"{rows}:{total}:{','.join(sorted(columns))}"
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:32]


def fingerprint_arrow(labels: pa.Table) -> str:
    """An order-independent fingerprint of a label set (same value on every engine)."""
    hashes = _row_hashes(labels)
    return _combine(labels.num_rows, int(hashes.sum(dtype=np.uint64)), labels.column_names)


def fingerprint_spark(labels: DataFrame) -> str:
    """:func:`fingerprint_arrow` computed on the executors (only one number per partition
    reaches the driver)."""
    import pyarrow as pa

    def partials(batches):
        rows, total = 0, 0
        for batch in batches:
            rows += batch.num_rows
            total = (total + int(_row_hashes(batch).sum(dtype=np.uint64))) % _MOD
        yield pa.RecordBatch.from_pydict({"rows": [rows], "total": [str(total)]})

    parts = labels.mapInArrow(partials, "rows long, total string").collect()
    rows = sum(int(r["rows"]) for r in parts)
    total = sum(int(r["total"]) for r in parts) % _MOD
    return _combine(rows, total, labels.columns)
