"""Run encoders over Arrow: the one code path behind offline (Spark, DuckDB) and online use."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from timetravel.asof.contract import output_column
from timetravel.encoders.base import Encoder, FactBatch, OutputType, source_alias
from timetravel.errors import FeatureError
from timetravel.times import payload_as_of, to_utc

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "arrow_type",
    "spark_type",
    "encode_columns",
    "encode_batches",
    "online_batch",
    "encode_online",
]

_SPARK_TYPES: dict[str, str] = {
    "long": "bigint",
    "double": "double",
    "string": "string",
    "boolean": "boolean",
}


def arrow_type(output: OutputType) -> pa.DataType:
    import pyarrow as pa

    return {
        "long": pa.int64(),
        "double": pa.float64(),
        "string": pa.string(),
        "boolean": pa.bool_(),
    }[output]


def spark_type(output: OutputType) -> str:
    return _SPARK_TYPES[output]


def encode_columns(
    table: pa.Table, encoders: Sequence[Encoder], *, label_time: str = "label_time"
) -> dict[str, pa.Array]:
    """Every encoder's values for every row of a joined table (see :class:`FactBatch`)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    batch = FactBatch(table, label_time)
    out: dict[str, pa.Array] = {}
    for encoder in encoders:
        try:
            result = encoder.compute(batch)
        except (KeyError, pa.ArrowException) as exc:
            raise FeatureError(
                f"encoder {encoder.key} cannot be computed from these facts: {exc}"
            ) from exc
        kind = arrow_type(encoder.output)
        if isinstance(result, tuple):
            values, valid = result
            array = pa.array(values, type=kind, mask=~np.asarray(valid, dtype=bool))
        else:
            array = (
                pc.cast(result, kind)
                if not isinstance(result, np.ndarray)
                else pa.array(result, type=kind)
            )
        present = np.ones(batch.num_rows, dtype=bool)
        for source in encoder.reads:
            present &= batch.present(source)
        out[encoder.name] = pc.if_else(pa.array(present), array, pa.scalar(None, kind))
    return out


def encode_batches(
    batches: Iterator[pa.RecordBatch],
    encoders: Sequence[Encoder],
    *,
    keep: Sequence[str],
    label_time: str,
) -> Iterator[pa.RecordBatch]:
    """For Spark's ``mapInArrow``: each batch's ``keep`` columns, then one column per encoder."""
    import pyarrow as pa

    for record_batch in batches:
        table = pa.Table.from_batches([record_batch])
        values = encode_columns(table, encoders, label_time=label_time)
        arrays = [record_batch.column(name) for name in keep] + list(values.values())
        yield pa.RecordBatch.from_arrays(arrays, names=[*keep, *values])


def online_batch(
    facts: Mapping[str, Mapping[str, Any] | None],
    t: datetime | str,
    schemas: Mapping[str, pa.Schema],
    *,
    as_of_fields: Mapping[str, str | None] | None = None,
) -> FactBatch:
    """A one-row batch from live facts (``source -> payload`` as the service answered, or
    None when it knows nothing), typed with each source's fact-table schema.

    A payload's snapshot time is read from its source's ``as_of_field`` (``as_of_fields``,
    default ``"as_of"``), exactly as the snapshot job reads it; without one it is ``t``, the
    instant of asking (offline: the fetch time)."""
    import pyarrow as pa

    at = to_utc(t)
    columns: dict[str, pa.Array] = {"label_time": pa.array([at], pa.timestamp("us", tz="UTC"))}
    for source, schema in schemas.items():
        payload = facts.get(source)
        alias = source_alias(source)
        field = (as_of_fields or {}).get(source, "as_of")
        taken = payload_as_of(payload, field) or at
        columns[output_column(alias, "snapshot_time")] = pa.array(
            [taken if payload is not None else None], pa.timestamp("us", tz="UTC")
        )
        for fact_field in schema:
            value = (
                None if payload is None else _coerce(payload.get(fact_field.name), fact_field.type)
            )
            columns[output_column(alias, fact_field.name)] = pa.array([value], fact_field.type)
    return FactBatch(pa.table(columns))


def encode_online(
    encoders: Sequence[Encoder],
    facts: Mapping[str, Mapping[str, Any] | None],
    t: datetime | str,
    schemas: Mapping[str, pa.Schema],
    *,
    as_of_fields: Mapping[str, str | None] | None = None,
) -> dict[str, Any]:
    """Feature values for one context from live facts: the same code as offline."""
    batch = online_batch(facts, t, schemas, as_of_fields=as_of_fields)
    return {name: array[0].as_py() for name, array in encode_columns(batch.table, encoders).items()}


def _coerce(value: Any, kind: pa.DataType) -> Any:
    """A JSON value as Arrow wants it for ``kind`` (ISO strings to instants, recursively)."""
    import pyarrow as pa

    if value is None:
        return None
    if pa.types.is_timestamp(kind):
        return to_utc(value)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return [_coerce(item, kind.value_type) for item in value]
    if pa.types.is_struct(kind):
        return {
            kind.field(i).name: _coerce(value.get(kind.field(i).name), kind.field(i).type)
            for i in range(kind.num_fields)
        }
    return value
