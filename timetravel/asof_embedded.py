"""The as-of contract on the embedded engine: DuckDB in-process over Arrow tables.

Same semantics as :func:`timetravel.asof.point_in_time_join` (see that module), same output
columns. DuckDB's ``ASOF JOIN`` picks the greatest ``snapshot_time <= label_time`` but does
not break ties by a second column, so each source is first reduced to one row per
(key, snapshot time): the one Spark's ordering puts last (greatest written time, or else the
greatest primitive feature values, nulls lowest). Labels keep their order and duplicates via a
row number; null keys and null label times match nothing and so give nulls.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from timetravel.asof import Staleness, validate_staleness
from timetravel.errors import AsOfError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["point_in_time_join_arrow"]

_ROW = "__tt_row"


def point_in_time_join_arrow(
    labels: pa.Table,
    sources: Mapping[str, pa.Table],
    *,
    entity: str | Sequence[str] = "context_id",
    label_time: str = "label_time",
    snapshot_time: str = "snapshot_time",
    written_time: str | None = None,
    max_staleness: Staleness = None,
    threads: int | None = None,
) -> pa.Table:
    """:func:`timetravel.asof.point_in_time_join` for Arrow tables, on DuckDB."""
    import duckdb
    import pyarrow as pa

    keys = [entity] if isinstance(entity, str) else list(entity)
    _validate(labels, sources, keys, label_time, snapshot_time, written_time, max_staleness)
    staleness = (
        {n: max_staleness for n in sources}
        if max_staleness is None or isinstance(max_staleness, timedelta)
        else {n: max_staleness.get(n) for n in sources}
    )
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        con.register(
            "labels_in", labels.append_column(_ROW, pa.array(range(labels.num_rows), pa.int64()))
        )
        selects = [f"l.{_q(c)}" for c in labels.column_names]
        joins = []
        for index, (name, table) in enumerate(sources.items()):
            alias = f"s{index}"
            con.register(f"{alias}_in", table)
            features = [
                c
                for c in table.column_names
                if c not in {*keys, snapshot_time, *([written_time] if written_time else [])}
            ]
            ties = _tie_columns(table, features, written_time)
            order = ", ".join(f"{_q(c)} DESC NULLS LAST" for c in ties) or "1"
            not_null = " AND ".join(f"{_q(k)} IS NOT NULL" for k in [*keys, snapshot_time])
            con.execute(f"""
                CREATE TEMP TABLE {alias} AS
                SELECT * EXCLUDE (__tt_rank) FROM (
                    SELECT *, CAST({_q(snapshot_time)} AS TIMESTAMP) AS __tt_s,
                           row_number() OVER (PARTITION BY {", ".join(map(_q, keys))},
                                              {_q(snapshot_time)} ORDER BY {order}) AS __tt_rank
                    FROM {alias}_in WHERE {not_null})
                WHERE __tt_rank = 1""")
            on = " AND ".join(f"l.{_q(k)} = {alias}.{_q(k)}" for k in keys)
            joins.append(f"ASOF LEFT JOIN {alias} ON {on} AND l.__tt_t >= {alias}.__tt_s")
            usable = f"({alias}.__tt_s IS NOT NULL AND l.__tt_t IS NOT NULL"
            bound = staleness.get(name)
            if bound is not None:
                micros = int(bound / timedelta(microseconds=1))
                usable += f" AND epoch_us(l.__tt_t) - epoch_us({alias}.__tt_s) <= {micros}"
            usable += ")"
            for column in [*features, snapshot_time]:
                selects.append(
                    f"CASE WHEN {usable} THEN {alias}.{_q(column)} END AS {_q(f'{name}__{column}')}"
                )
        sql = (
            f"SELECT {', '.join(selects)} FROM "
            f"(SELECT *, CAST({_q(label_time)} AS TIMESTAMP) AS __tt_t FROM labels_in) l "
            f"{' '.join(joins)} ORDER BY l.{_ROW}"
        )
        return con.sql(sql).to_arrow_table()
    finally:
        con.close()


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _tie_columns(table: pa.Table, features: list[str], written_time: str | None) -> list[str]:
    import pyarrow as pa

    if written_time:
        return [written_time]
    primitive = (
        pa.types.is_integer,
        pa.types.is_floating,
        pa.types.is_string,
        pa.types.is_large_string,
        pa.types.is_boolean,
        pa.types.is_date,
        pa.types.is_timestamp,
        pa.types.is_decimal,
    )
    return [c for c in features if any(check(table.schema.field(c).type) for check in primitive)]


def _type_name(arrow_type: pa.DataType) -> str:
    """Spark's name for an Arrow type, so both engines word errors alike."""
    import pyarrow as pa

    names = {
        pa.int8(): "tinyint",
        pa.int16(): "smallint",
        pa.int32(): "int",
        pa.int64(): "bigint",
        pa.float32(): "float",
        pa.float64(): "double",
        pa.string(): "string",
        pa.large_string(): "string",
        pa.bool_(): "boolean",
        pa.date32(): "date",
    }
    if pa.types.is_timestamp(arrow_type):
        return "timestamp"
    return names.get(arrow_type, str(arrow_type))


def _validate(
    labels: pa.Table,
    sources: Mapping[str, pa.Table],
    keys: list[str],
    label_time: str,
    snapshot_time: str,
    written_time: str | None,
    max_staleness: Staleness,
) -> None:
    if not sources:
        raise AsOfError("no sources given: pass a mapping of source name -> table")

    def require(table: pa.Table, columns: list[str], what: str) -> None:
        missing = [c for c in columns if c not in table.column_names]
        if missing:
            raise AsOfError(
                f"{what} lacks column(s) {missing}; it has: {', '.join(table.column_names)}"
            )

    def timestamp(table: pa.Table, column: str, what: str) -> None:
        kind = _type_name(table.schema.field(column).type)
        if kind != "timestamp":
            raise AsOfError(
                f"{what}: column {column!r} must be a timestamp; it is {kind} "
                "(convert with to_timestamp; naive values are taken as UTC)"
            )

    require(labels, [*keys, label_time], "labels")
    timestamp(labels, label_time, "labels")
    for name, table in sources.items():
        if "__" in name or not name:
            raise AsOfError(f"source name {name!r} must be non-empty and must not contain '__'")
        require(
            table,
            [*keys, snapshot_time, *([written_time] if written_time else [])],
            f"source {name!r}",
        )
        timestamp(table, snapshot_time, f"source {name!r}")
        for key in keys:
            left = _type_name(labels.schema.field(key).type)
            right = _type_name(table.schema.field(key).type)
            if left != right:
                raise AsOfError(
                    f"key column {key!r} is {left} in the labels but {right} in "
                    f"source {name!r}; cast one side so they match"
                )
    validate_staleness(max_staleness, list(sources))
