"""Label sets in: read them, check them, give them one canonical shape, fingerprint them.

Canonical labels have the entity columns typed like the fact tables' keys and the label time
as a UTC timestamp (microseconds). Decision (DESIGN.md, :mod:`timetravel.times`): naive
timestamps and offset-less strings are UTC, never the host's local time. Other columns are
kept as they are and come out in the training set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from timetravel.errors import LabelError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["LabelFormat", "labels_format", "read_labels_arrow", "read_labels_spark",
           "canonical_arrow", "canonical_spark", "fingerprint_arrow", "fingerprint_spark"]

LabelFormat = Literal["parquet", "csv", "delta"]
_MOD = 2 ** 64


def labels_format(uri: str) -> LabelFormat:
    """The format a labels URI holds, from its name (or a ``_delta_log`` inside it)."""
    lowered = uri.rstrip("/").lower()
    if lowered.endswith(".csv"):
        return "csv"
    if lowered.endswith((".parquet", ".pq")):
        return "parquet"
    if "://" not in uri:
        path = Path(uri)
        if not path.exists():
            raise LabelError(f"labels not found: {uri!r}")
        if (path / "_delta_log").is_dir():
            return "delta"
        if path.is_dir() and any(path.glob("*.parquet")):
            return "parquet"
        raise LabelError(f"cannot tell the format of labels at {uri!r}: expected a .csv or "
                         ".parquet file, a Parquet directory, or a Delta table")
    return "delta"


def read_labels_arrow(uri: str, *, storage_options: Mapping[str, str] | None = None,
                      fmt: LabelFormat | None = None) -> "pa.Table":
    """Labels from a Parquet/CSV file or a Delta table, read without Spark."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    fmt = fmt or labels_format(uri)
    try:
        if fmt == "delta":
            from deltalake import DeltaTable

            from timetravel.embedded import rs_uri

            return DeltaTable(rs_uri(uri),
                              storage_options=dict(storage_options or {})).to_pyarrow_table()
        if fmt == "csv":
            # Keep text columns as text: the label time is parsed by canonical_arrow, as UTC.
            options = pcsv.ConvertOptions(timestamp_parsers=[])
            return pcsv.read_csv(uri, convert_options=options)
        return pq.read_table(uri)
    except (OSError, pa.ArrowException, ValueError) as exc:
        raise LabelError(f"cannot read {fmt} labels at {uri!r}: {exc}") from None


def read_labels_spark(spark: "SparkSession", uri: str, *,
                      fmt: LabelFormat | None = None) -> "DataFrame":
    """Labels as a Spark DataFrame (for label sets too big for one machine)."""
    from pyspark.errors import AnalysisException

    fmt = fmt or labels_format(uri)
    try:
        if fmt == "csv":
            # Inferred timestamps are parsed in the UTC session (naive = UTC); text left as
            # text is parsed by canonical_spark.
            return spark.read.option("header", True).option("inferSchema", True).csv(uri)
        return spark.read.format(fmt).load(uri)
    except AnalysisException as exc:
        raise LabelError(f"cannot read {fmt} labels at {uri!r}: "
                         f"{str(exc).strip().splitlines()[0]}") from None


def _require_columns(columns: Sequence[str], entity: Sequence[str], label_time: str) -> None:
    missing = [c for c in [*entity, label_time] if c not in columns]
    if missing:
        raise LabelError(f"labels lack column(s) {missing}; they have: {', '.join(columns)} "
                         f"(entity {list(entity)}, label time {label_time!r})")


def canonical_arrow(labels: "pa.Table | pd.DataFrame | Sequence[Mapping[str, Any]]",
                    entity: Sequence[str], label_time: str,
                    key_types: Mapping[str, "pa.DataType"]) -> "pa.Table":
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
        except (pa.ArrowException, TypeError, ValueError) as exc:
            raise LabelError(f"labels rows are not a table: {exc}") from None
    _require_columns(table.column_names, entity, label_time)
    if len(set(table.column_names)) != len(table.column_names):
        raise LabelError(f"labels have duplicate column names: {table.column_names}")
    for key in entity:
        wanted = key_types.get(key, pa.int64())
        column = table.column(key)
        if column.type == wanted:
            continue
        if not (pa.types.is_integer(column.type) or pa.types.is_null(column.type)):
            raise LabelError(f"label column {key!r} must hold integers like the fact tables' "
                             f"key ({wanted}); it is {column.type}")
        table = table.set_column(table.column_names.index(key), key, pc.cast(column, wanted))
    index = table.column_names.index(label_time)
    return table.set_column(index, label_time, _utc_times(table.column(label_time), label_time))


def _utc_times(column: "pa.ChunkedArray", name: str) -> "pa.Array":
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
        except (ValueError, TypeError):
            bad = _first_unparsable(text)
            raise LabelError(f"label column {name!r} holds {bad!r}, not an ISO-8601 instant "
                             "(e.g. 2026-06-01T12:00:00Z; without an offset it is taken as UTC)"
                             ) from None
        return pa.array(parsed.dt.as_unit("us"), target)
    raise LabelError(f"label column {name!r} must be a timestamp or ISO-8601 text; it is {kind}")


def _first_unparsable(text: "pd.Series") -> str:
    from timetravel.times import to_utc

    for value in text:
        if value is None:
            continue
        try:
            to_utc(value)
        except ValueError:
            return str(value)
    return str(text.iloc[0])


def canonical_spark(labels: "DataFrame", entity: Sequence[str], label_time: str,
                    key_types: Mapping[str, str]) -> "DataFrame":
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
            raise LabelError(f"label column {key!r} must hold integers like the fact tables' "
                             f"key ({wanted}); it is {types[key]}")
        out = out.withColumn(key, F.col(key).cast(wanted))
    kind = types[label_time]
    if kind == "string":
        parsed = F.to_timestamp(F.col(label_time))
        bad = out.where(F.col(label_time).isNotNull() & parsed.isNull()).select(label_time).first()
        if bad is not None:
            raise LabelError(f"label column {label_time!r} holds {bad[0]!r}, not an ISO-8601 "
                             "instant (e.g. 2026-06-01T12:00:00Z; without an offset it is UTC)")
        out = out.withColumn(label_time, parsed)
    elif kind in ("timestamp_ntz", "date", "void"):
        out = out.withColumn(label_time, F.col(label_time).cast("timestamp"))
    elif kind != "timestamp":
        raise LabelError(f"label column {label_time!r} must be a timestamp or ISO-8601 text; "
                         f"it is {kind}")
    return out


def _row_hashes(batch: "pa.RecordBatch | pa.Table") -> np.ndarray:
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
            column = pc.cast(pc.cast(column, pa.timestamp("us", tz="UTC")), pa.int64())
        if pa.types.is_integer(column.type) or pa.types.is_boolean(column.type):
            values = pc.fill_null(pc.cast(column, pa.int64()), 0).to_numpy(zero_copy_only=False)
        elif pa.types.is_floating(column.type):
            values = pc.fill_null(pc.cast(column, pa.float64()), 0.0).to_numpy(
                zero_copy_only=False)
        else:
            text = column if pa.types.is_string(column.type) else \
                pa.array([None if v is None else str(v) for v in column.to_pylist()], pa.string())
            values = np.asarray(pc.fill_null(text, "").to_numpy(zero_copy_only=False),
                                dtype=object)
        columns[f"{name}:v"] = values
        columns[f"{name}:n"] = np.asarray(valid, dtype=bool)
    if not columns:
        return np.zeros(0, dtype=np.uint64)
    return pd.util.hash_pandas_object(pd.DataFrame(columns), index=False).to_numpy(np.uint64)


def _combine(rows: int, total: int, columns: Sequence[str]) -> str:
    import hashlib

    text = f"{rows}:{total}:{','.join(sorted(columns))}"
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:32]


def fingerprint_arrow(labels: "pa.Table") -> str:
    """An order-independent fingerprint of a label set (same value on every engine)."""
    hashes = _row_hashes(labels)
    return _combine(labels.num_rows, int(hashes.sum(dtype=np.uint64)), labels.column_names)


def fingerprint_spark(labels: "DataFrame") -> str:
    """:func:`fingerprint_arrow` computed on the executors (only one number per partition
    reaches the driver)."""
    import pyarrow as pa

    def partials(batches):  # type: ignore[no-untyped-def]
        rows, total = 0, 0
        for batch in batches:
            rows += batch.num_rows
            total = (total + int(_row_hashes(batch).sum(dtype=np.uint64))) % _MOD
        yield pa.RecordBatch.from_pydict({"rows": [rows], "total": [str(total)]})

    parts = labels.mapInArrow(partials, "rows long, total string").collect()
    rows = sum(int(r["rows"]) for r in parts)
    total = sum(int(r["total"]) for r in parts) % _MOD
    return _combine(rows, total, labels.columns)
