"""The as-of contract on the embedded engine: DuckDB in-process over Arrow tables.

Same semantics as :func:`timetravel.asof.spark.point_in_time_join` (see that module), same output
columns. DuckDB's ``ASOF JOIN`` takes the greatest right-hand value ``<=`` the left-hand one
on a single inequality, so that value orders by the snapshot time, then the contract's
tie-break columns (greatest written time, or else the greatest primitive feature values,
nulls lowest); see :func:`_orders`. Ties are thus broken inside the join, with no pass to
reduce a source to one row per (key, snapshot time). Labels keep their order and duplicates
via a row number; a null key matches nothing and a null label time makes no snapshot usable,
so both give nulls.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from timetravel.asof.contract import (
    Staleness,
    check_inputs,
    feature_columns,
    key_list,
    output_column,
    resolve_staleness,
    staleness_micros,
    tie_break_columns,
)
from timetravel.errors import AsOfError
from timetravel.times import arrow_micros

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as ds

__all__ = ["point_in_time_join_arrow", "point_in_time_one_row"]

_ROW = "__tt_row"
_LABEL_TIME = "__tt_label_time"


def point_in_time_join_arrow(
    labels: pa.Table,
    sources: Mapping[str, pa.Table | ds.Dataset],
    *,
    entity: str | Sequence[str] = "context_id",
    label_time: str = "label_time",
    snapshot_time: str = "snapshot_time",
    written_time: str | None = None,
    max_staleness: Staleness = None,
    threads: int | None = None,
    memory_limit_mb: int | None = None,
    spill_directory: str | None = None,
) -> pa.Table:
    """:func:`timetravel.asof.spark.point_in_time_join` for Arrow tables, on DuckDB.

    A source may be a ``pyarrow.dataset.Dataset`` (e.g. a delta-rs table's): it is then
    streamed, only the columns the join uses, with little read-ahead. With
    ``memory_limit_mb`` DuckDB keeps its working set under that bound and spills its sorts
    to ``spill_directory`` (a temporary directory if None, removed after), so the inputs
    never have to fit in memory; only the labels and the output do. Running out of it is an
    :class:`AsOfError`.
    """
    import tempfile

    import duckdb
    import pyarrow as pa

    keys = key_list(entity)
    _check(labels, sources, keys, label_time, snapshot_time, written_time, max_staleness)
    staleness = resolve_staleness(max_staleness, list(sources))
    with tempfile.TemporaryDirectory(prefix="timetravel-duckdb-", dir=spill_directory) as spill:
        con = duckdb.connect(config={"temp_directory": spill})
        try:
            con.execute("SET TimeZone = 'UTC'")
            if threads:
                con.execute(f"SET threads = {int(threads)}")
            if memory_limit_mb:
                con.execute(f"SET memory_limit = '{int(memory_limit_mb)}MB'")
                # Order comes from the label row number; keeping insertion order would
                # hold back rows in memory.
                con.execute("SET preserve_insertion_order = false")
            # DuckDB sees only what the joins need (row number, keys, time, the ASOF order
            # values), one source per query: the label columns and the other sources'
            # features are put back beside each result in Arrow, by row number, so they are
            # neither carried through every join nor sorted and spilled (benchmarks/RESULTS.md).
            slim = pa.table(
                {
                    _ROW: pa.array(range(labels.num_rows), pa.int64()),
                    **{k: labels.column(k) for k in keys},
                    _LABEL_TIME: labels.column(label_time),
                }
            )
            con.register("labels_in", slim)
            columns, names = list(labels.columns), list(labels.column_names)
            for name, table in sources.items():
                features = feature_columns(
                    table.schema.names,
                    entity=keys,
                    snapshot_time=snapshot_time,
                    written_time=written_time,
                )
                types = _types(table)
                ties = tie_break_columns(types, features, written_time)
                used = [*keys, snapshot_time, *features, *(t for t in ties if t not in features)]
                con.register("source_in", _scannable(table, used))
                orders = _orders(snapshot_time, ties, types)
                sql = _source_sql(name, keys, snapshot_time, features, orders, staleness.get(name))
                try:
                    joined = con.sql(sql).to_arrow_table()
                except duckdb.OutOfMemoryException:
                    raise AsOfError(
                        f"the embedded join needs more than its memory limit "
                        f"({memory_limit_mb} MB) even spilling to disk: raise "
                        "query.embedded_memory_mb or use the Spark engine"
                    ) from None
                con.unregister("source_in")
                columns += joined.columns
                names += joined.column_names
        finally:
            con.close()
    return pa.Table.from_arrays(columns, names=names)


def _source_sql(
    name: str,
    keys: list[str],
    snapshot_time: str,
    features: list[str],
    orders: tuple[str, str],
    bound: timedelta | None,
) -> str:
    """One source's ASOF join of ``labels_in`` and ``source_in``: its output columns, in
    label row order. ``orders`` are the snapshot's and the label's order values."""
    snapshot_order, label_order = orders
    not_null = " AND ".join(f"{_q(k)} IS NOT NULL" for k in [*keys, snapshot_time])
    kept = [*keys, snapshot_time, *features]  # the tie values live on in the order
    usable = f"s.{_q(snapshot_time)} IS NOT NULL AND l.__tt_t IS NOT NULL"
    if bound is not None:
        micros = staleness_micros(bound)
        usable += f" AND epoch_us(l.__tt_t) - epoch_us(s.{_q(snapshot_time)}) <= {micros}"
    selects = [
        f"CASE WHEN {usable} THEN s.{_q(column)} END AS {_q(output_column(name, column))}"
        for column in [*features, snapshot_time]
    ]
    on = " AND ".join(f"l.{_q(k)} = s.{_q(k)}" for k in keys)
    label_side = (
        f"SELECT {_ROW}, {', '.join(map(_q, keys))}, {_LABEL_TIME} AS __tt_t FROM labels_in"
    )
    return (
        f"SELECT {', '.join(selects)} FROM "
        f"(SELECT *, {label_order} AS __tt_o FROM ({label_side})) l "
        f"ASOF LEFT JOIN (SELECT {', '.join(map(_q, kept))}, {snapshot_order} AS __tt_o "
        f"FROM source_in WHERE {not_null}) s ON {on} AND l.__tt_o >= s.__tt_o "
        f"ORDER BY l.{_ROW}"
    )


def _scannable(table: pa.Table | ds.Dataset, columns: Sequence[str]) -> Any:
    """What DuckDB scans for a source: a table as is; a dataset as a scanner of ``columns``
    with one batch and one file of read-ahead (pyarrow's defaults, 16 batches of 4 files,
    held gigabytes at 30M rows: benchmarks/RESULTS.md)."""
    import pyarrow as pa

    if isinstance(table, pa.Table):
        return table
    return table.scanner(
        columns=list(columns), batch_size=65_536, batch_readahead=1, fragment_readahead=1
    )


# 2**65: room below a HUGEINT order's time for the tie: 0 when null, else 2**64 + its
# micros (a signed 64-bit value, so that lies in [2**63, 2**65) and above null).
_TIE_BITS = 36893488147419103232


def _orders(snapshot_time: str, ties: Sequence[str], types: Mapping[str, str]) -> tuple[str, str]:
    """The ASOF inequality's two sides for one source: a value ordering a snapshot by time,
    then by the contract's tie-break columns (nulls lowest), and the label's value, which is
    above every snapshot at or before its time and below every later one.

    The time is ``2 * micros`` for a snapshot and ``2 * micros + 1`` for a label, so the time
    alone decides between a label and a snapshot; among snapshots at one instant the tie
    values decide, and ASOF takes the greatest: no per-(key, time) dedupe is needed.

    With no tie-break column that is a BIGINT; with one timestamp (the usual written time)
    a HUGEINT, the time in the high bits, then a not-null bit, then the tie's micros: a
    fraction of the bytes of a struct to sort and spill. Other ties make it a struct.
    ``epoch_us`` reads a TIMESTAMPTZ's instant, and a naive TIMESTAMP as UTC (the contract's
    rule), with no cast through the session time zone (that cast cost 1.5 s per 30M rows).
    """
    snapshot_t = f"epoch_us({_q(snapshot_time)}) * 2"
    label_t = "epoch_us(__tt_t) * 2 + 1"
    if not ties:
        return snapshot_t, label_t
    if len(ties) == 1 and types[ties[0]] == "timestamp":
        tie = _q(ties[0])
        low = (
            f"CASE WHEN {tie} IS NULL THEN 0::HUGEINT ELSE {_TIE_BITS // 2}::HUGEINT "
            f"+ epoch_us({tie})::HUGEINT END"
        )
        return (
            f"(({snapshot_t})::HUGEINT * {_TIE_BITS}::HUGEINT + {low})",
            f"(({label_t})::HUGEINT * {_TIE_BITS}::HUGEINT)",
        )
    snapshot = [f"'t': {snapshot_t}"]
    label = [f"'t': {label_t}"]
    for i, column in enumerate(ties):
        snapshot += [f"'n{i}': {_q(column)} IS NOT NULL", f"'v{i}': {_q(column)}"]
        label += [f"'n{i}': NULL", f"'v{i}': NULL"]
    return "{" + ", ".join(snapshot) + "}", "{" + ", ".join(label) + "}"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


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
        pa.date64(): "date",
    }
    if pa.types.is_timestamp(arrow_type):
        return "timestamp"
    return names.get(arrow_type, str(arrow_type))


def _types(table: pa.Table | ds.Dataset) -> dict[str, str]:
    return {f.name: _type_name(f.type) for f in table.schema}


def _check(
    labels: pa.Table,
    sources: Mapping[str, pa.Table | ds.Dataset],
    keys: list[str],
    label_time: str,
    snapshot_time: str,
    written_time: str | None,
    max_staleness: Staleness,
) -> None:
    check_inputs(
        _types(labels),
        {name: _types(table) for name, table in sources.items()},
        keys=keys,
        label_time=label_time,
        snapshot_time=snapshot_time,
        written_time=written_time,
        max_staleness=max_staleness,
    )


def point_in_time_one_row(
    labels: pa.Table,
    sources: Mapping[str, pa.Table],
    *,
    entity: str | Sequence[str] = "context_id",
    label_time: str = "label_time",
    snapshot_time: str = "snapshot_time",
    written_time: str | None = None,
    max_staleness: Staleness = None,
) -> pa.Table:
    """:func:`point_in_time_join_arrow` for exactly one label row over that key's few
    snapshot rows (point lookups): plain Arrow filters and one sort, because starting a
    DuckDB session would cost more than the whole rule."""
    import pyarrow as pa
    import pyarrow.compute as pc

    keys = key_list(entity)
    _check(labels, sources, keys, label_time, snapshot_time, written_time, max_staleness)
    if labels.num_rows != 1:
        raise AsOfError(
            f"point_in_time_one_row takes one label row; got {labels.num_rows} "
            "(use point_in_time_join_arrow)"
        )
    staleness = resolve_staleness(max_staleness, list(sources))
    t = arrow_micros(labels.column(label_time))[0].as_py()
    key = {k: labels.column(k)[0].as_py() for k in keys}
    columns: dict[str, pa.Array | pa.ChunkedArray] = {
        c: labels.column(c) for c in labels.column_names
    }
    for name, table in sources.items():
        features = feature_columns(
            table.column_names, entity=keys, snapshot_time=snapshot_time, written_time=written_time
        )
        rows = table
        if t is None or any(v is None for v in key.values()):
            rows = rows.slice(0, 0)
        else:
            for column, value in key.items():
                rows = rows.filter(pc.equal(rows.column(column), value))
            times = arrow_micros(rows.column(snapshot_time))
            keep = pc.less_equal(times, t)
            bound = staleness[name]
            if bound is not None:
                floor = t - staleness_micros(bound)
                keep = pc.and_(keep, pc.greater_equal(times, floor))
            rows = rows.filter(pc.fill_null(keep, False))
        if rows.num_rows > 1:
            ties = tie_break_columns(_types(table), features, written_time)
            # Nulls lose, as in the DuckDB join's DESC NULLS LAST.
            rows = rows.sort_by([(c, "descending", "at_end") for c in [snapshot_time, *ties]])
        for column in [*features, snapshot_time]:
            kind = table.schema.field(column).type
            columns[output_column(name, column)] = (
                rows.column(column).slice(0, 1) if rows.num_rows else pa.nulls(1, kind)
            )
    return pa.table(columns)
