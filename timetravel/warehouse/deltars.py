"""The embedded engine's side of storage: Delta tables read without Spark (delta-rs).

The same tables the Spark jobs write are opened with ``deltalake`` at a pinned version
(a manifest's versions, or a run's), with only the needed columns, and pruned by partition
before anything is read. ``s3a://`` warehouses are read through delta-rs's S3 client with the
profile's endpoint, region and path style; credentials come from the AWS environment as
everywhere else.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from timetravel.asof.contract import Staleness, staleness_for
from timetravel.asof.duckdb import point_in_time_join_arrow
from timetravel.config import Config
from timetravel.errors import StoreError, TableNotFoundError, TimeTravelRangeError
from timetravel.times import arrow_micros, to_utc
from timetravel.warehouse.s3 import delta_rs_options, rs_uri

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as ds
    from deltalake import DeltaTable

__all__ = [
    "table_uri",
    "open_table",
    "read_table",
    "open_dataset",
    "TableInfo",
    "table_info",
    "join_facts",
    "KeyLookup",
    "FileCache",
]


def table_uri(config: Config, name: str) -> str:
    """The table's URI as delta-rs spells it (``s3://`` for ``s3a://``)."""
    return rs_uri(f"{config.warehouse.root}/{name}")


def open_table(config: Config, name: str, version: int | None = None) -> DeltaTable:
    """The delta-rs handle of a warehouse table at ``version`` (latest if None)."""
    from deltalake import DeltaTable
    from deltalake.exceptions import DeltaError
    from deltalake.exceptions import TableNotFoundError as DeltaRsNotFound

    uri = table_uri(config, name)
    try:
        return DeltaTable(uri, version=version, storage_options=delta_rs_options(config))
    except DeltaRsNotFound:
        raise TableNotFoundError(f"no Delta table {name!r} at {uri}") from None
    except DeltaError as exc:
        if version is not None:
            raise TimeTravelRangeError(f"table {name!r} has no version {version}: {exc}") from None
        raise


def history_entries(
    config: Config, name: str, limit: int | None = None, *, since: int | None = None
) -> list[dict[str, Any]]:
    """Commit infos of ``name``, newest first, each with its right ``version``.

    delta-rs numbers the commits it lists down from the version the handle loaded, but
    lists the log as it is when asked: a commit landing in between shifts every number
    by one. So the numbering is trusted only if the table's version did not move across
    the read; otherwise it is read again.
    """
    for _ in range(_HISTORY_ATTEMPTS):
        table = open_table(config, name)
        loaded = int(table.version())
        if since is not None:
            limit = max(0, loaded - since + 1)
            if limit == 0:
                return []
        entries = table.history(limit)
        if int(open_table(config, name).version()) == loaded:
            return entries[:limit] if limit is not None else entries
    raise StoreError(
        f"the log of {name!r} kept moving while its history was read "
        f"({_HISTORY_ATTEMPTS} attempts); try again"
    )


_HISTORY_ATTEMPTS = 20


@dataclass(frozen=True)
class TableInfo:
    """What the planner needs to know about a table version without reading its data."""

    name: str
    version: int
    schema: pa.Schema
    rows: int


def table_info(config: Config, name: str, version: int | None = None) -> TableInfo:
    """Version, Arrow schema and row count (from the Delta log's file statistics)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    table = open_table(config, name, version)
    actions = pa.table(table.get_add_actions(flatten=True))
    rows = pc.sum(actions.column("num_records")).as_py() if actions.num_rows else 0
    return TableInfo(name, table.version(), pa.schema(table.schema().to_arrow()), int(rows or 0))


def read_table(
    config: Config,
    name: str,
    *,
    version: int | None = None,
    columns: Sequence[str] | None = None,
    partitions: Sequence[tuple[str, str, Any]] | None = None,
) -> pa.Table:
    """The table at ``version`` (latest if None), only ``columns``, only matching partitions.

    ``partitions`` are delta-rs filters, e.g. ``[("snapshot_date", "<=", "2026-06-01")]``.
    """
    dataset = open_dataset(config, name, version=version, partitions=partitions)
    return dataset.to_table(columns=list(columns) if columns else None)


def open_dataset(
    config: Config,
    name: str,
    *,
    version: int | None = None,
    partitions: Sequence[tuple[str, str, Any]] | None = None,
    columns: Sequence[str] | None = None,
    drop: Sequence[str] = (),
) -> ds.Dataset:
    """The table at ``version`` as a pyarrow dataset of the partitions matching
    ``partitions`` (delta-rs filters), nothing read yet: ``columns`` (all if None) but
    ``drop``."""
    import pyarrow as pa

    table = open_table(config, name, version)
    dataset = table.to_pyarrow_dataset(
        file_pruning_predicate=list(partitions) if partitions else None
    )
    if columns is None and not drop:
        return dataset
    keep = [c for c in (columns or dataset.schema.names) if c not in drop]
    return dataset.replace_schema(pa.schema([dataset.schema.field(c) for c in keep]))


def sql_text(value: str) -> str:
    """A SQL string literal (quotes doubled), for values in delta-rs predicates and queries."""
    return "'" + value.replace("'", "''") + "'"


def query_table(
    config: Config,
    name: str,
    *,
    version: int | None = None,
    columns: Sequence[str] | None = None,
    where: str | None = None,
) -> pa.Table:
    """Rows of a table through delta-rs's own query engine (DataFusion).

    Unlike a pyarrow dataset over a delta-rs table, which can abort a short-lived process at
    exit (std::terminate in its I/O threads), this is safe in every CLI command.
    """
    return query_open_table(open_table(config, name, version), columns=columns, where=where)


def query_open_table(
    table: DeltaTable, *, columns: Sequence[str] | None = None, where: str | None = None
) -> pa.Table:
    """:func:`query_table` on a handle already open (at the version it loaded)."""
    import pyarrow as pa
    from deltalake import QueryBuilder

    selected = ", ".join('"' + c.replace('"', '""') + '"' for c in columns) if columns else "*"
    sql = f"SELECT {selected} FROM t" + (f" WHERE {where}" if where else "")
    return pa.table(QueryBuilder().register("t", table).execute(sql).read_all())


def join_facts(
    config: Config,
    labels: pa.Table,
    sources: Mapping[str, tuple[str, int]],
    *,
    entity: str | Sequence[str],
    label_time: str = "label_time",
    written_time: str | None = "written_at",
    max_staleness: Staleness = None,
    drop: Sequence[str] = ("run_id", "snapshot_date"),
    columns: Mapping[str, Sequence[str]] | None = None,
) -> pa.Table:
    """Point-in-time join of ``labels`` with fact tables read at pinned versions.

    ``sources`` maps a source name to (table name, Delta version). Partitions of
    ``snapshot_date`` that cannot hold a usable snapshot (after the last label, or older
    than the staleness bound allows) are never read; ``columns`` (per source) limits the
    columns read. The facts are streamed into DuckDB, within ``query.embedded_memory_mb``
    (spilling to ``query.spill_directory``): they never have to fit in memory.
    """
    import pyarrow.compute as pc

    times = labels.column(label_time)
    latest = pc.max(times).as_py()
    earliest = pc.min(times).as_py()
    facts = {}
    for name, (table, version) in sources.items():
        bound = staleness_for(max_staleness, name)
        filters: list[tuple[str, str, Any]] = []
        if latest is not None:
            filters.append(("snapshot_date", "<=", _day(latest)))
            if bound is not None and earliest is not None:
                filters.append(("snapshot_date", ">=", _day(to_utc(earliest) - bound)))
        facts[name] = open_dataset(
            config,
            table,
            version=version,
            partitions=filters,
            columns=(columns or {}).get(name),
            drop=drop,
        )
    return point_in_time_join_arrow(
        labels,
        facts,
        entity=entity,
        label_time=label_time,
        written_time=written_time,
        max_staleness=max_staleness,
        memory_limit_mb=config.query.embedded_memory_mb,
        spill_directory=config.query.spill_directory,
    )


def _day(value: datetime | date) -> str:
    return to_utc(value).date().isoformat()


class KeyLookup:
    """One key's candidate snapshot rows from one table version, reading as few files as the
    Delta log's statistics allow (for point lookups).

    Files whose key range (min/max statistics) excludes the key, or whose snapshot times lie
    after the instant or before the staleness floor, are never opened. The rest are read
    newest first, and reading stops once no unread file can hold a snapshot at or after the
    best one found (equal times are still read: the later-written row wins ties). Within a
    file, Parquet row-group statistics skip what cannot match. Facts written clustered by key
    (as the snapshot job does) make this one or two small reads per source.
    """

    def __init__(
        self, config: Config, name: str, version: int, *, cache: FileCache | None = None
    ) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        from timetravel.warehouse.files import filesystem

        self.cache = cache
        table = open_table(config, name, version)
        actions = pa.table(table.get_add_actions(flatten=True))
        self.partitions = list(table.metadata().partition_columns)
        schema = pa.schema(table.schema().to_arrow())
        self.schema = pa.schema([f for f in schema if f.name not in self.partitions])
        self.fs, root = filesystem(config, table_uri(config, name))
        self.paths = [f"{root}/{p}" for p in actions.column("path").to_pylist()]
        self._actions = actions
        self._floor = np.iinfo(np.int64).min
        self._ceiling = np.iinfo(np.int64).max
        self.max_time = self._micros(actions, "max.snapshot_time", self._ceiling, pc)
        self.min_time = self._micros(actions, "min.snapshot_time", self._floor, pc)

    @staticmethod
    def _micros(actions: pa.Table, column: str, missing: int, pc: Any) -> np.ndarray:
        if column not in actions.column_names:
            return np.full(actions.num_rows, missing, dtype=np.int64)
        values = arrow_micros(actions.column(column))
        return pc.fill_null(values, missing).to_numpy(zero_copy_only=False)

    def _key_mask(self, keys: Mapping[str, Any]) -> np.ndarray:
        mask = np.ones(len(self.paths), dtype=bool)
        for column, value in keys.items():
            for bound, keep in (
                (f"min.{column}", np.less_equal),
                (f"max.{column}", np.greater_equal),
            ):
                if bound in self._actions.column_names:
                    stats = self._actions.column(bound).to_numpy(zero_copy_only=False)
                    known = (
                        ~np.isnan(stats.astype(np.float64))
                        if stats.dtype.kind == "f"
                        else np.array([s is not None for s in stats])
                        if stats.dtype == object
                        else np.ones(len(stats), dtype=bool)
                    )
                    safe = np.where(known, stats, value)
                    mask &= keep(safe, value)
        return mask

    def rows(
        self,
        keys: Mapping[str, Any],
        at_micros: int,
        floor_micros: int | None,
        columns: Sequence[str],
    ) -> pa.Table:
        import pyarrow.compute as pc
        import pyarrow.dataset as ds

        mask = self._key_mask(keys) & (self.min_time <= at_micros)
        if floor_micros is not None:
            mask &= self.max_time >= floor_micros
        candidates = np.flatnonzero(mask)
        order = candidates[
            np.argsort(-np.minimum(self.max_time[candidates], at_micros), kind="stable")
        ]
        at_scalar = at_micros_scalar(at_micros)
        condition = ds.field("snapshot_time") <= at_scalar
        for column, value in keys.items():
            condition &= ds.field(column) == value
        found, best = [], None
        for index in order:
            if best is not None and self.max_time[index] < best:
                break  # nothing unread can hold a snapshot at or after the best one
            if self.cache is not None:
                part = self.cache.rows(self.fs, self.paths[index], self.schema, keys)
                part = part.filter(pc.less_equal(part.column("snapshot_time"), at_scalar)).select(
                    list(columns)
                )
            else:
                part = ds.dataset(
                    self.paths[index], schema=self.schema, filesystem=self.fs, format="parquet"
                ).to_table(columns=list(columns), filter=condition)
            if part.num_rows:
                found.append(part)
                newest = _max_micros(part)
                best = newest if best is None else max(best, newest)
        if not found:
            return self.schema.empty_table().select(list(columns))
        import pyarrow as pa

        return pa.concat_tables(found)


class FileCache:
    """Decoded fact files for point lookups, by path, up to a byte budget (least recently used
    go first). Delta data files never change once written, so a cached file is never stale.

    Each file is kept sorted by its key (the snapshot job writes it so; other files are sorted
    once on load), so one key's rows are found by binary search instead of decoding the file
    again for every lookup.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._files: OrderedDict[str, tuple[pa.Table, np.ndarray | None]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def rows(self, fs: Any, path: str, schema: pa.Schema, keys: Mapping[str, Any]) -> pa.Table:
        """The rows of the file at ``path`` whose key columns equal ``keys``."""
        with self._lock:
            entry = self._files.get(path)
            if entry is not None:
                self._files.move_to_end(path)
        if entry is None:
            entry = self._load(fs, path, schema, list(keys))
        table, sorted_key = entry
        if sorted_key is not None:
            [value] = keys.values()
            start = int(np.searchsorted(sorted_key, value, side="left"))
            stop = int(np.searchsorted(sorted_key, value, side="right"))
            return table.slice(start, stop - start)
        import pyarrow.compute as pc

        mask = None
        for column, value in keys.items():
            equal = pc.equal(table.column(column), value)
            mask = equal if mask is None else pc.and_(mask, equal)
        return table.filter(mask)

    def _load(
        self, fs: Any, path: str, schema: pa.Schema, key_columns: list[str]
    ) -> tuple[pa.Table, np.ndarray | None]:
        import pyarrow.dataset as ds

        table = ds.dataset(path, schema=schema, filesystem=fs, format="parquet").to_table()
        sorted_key = None
        if len(key_columns) == 1 and table.column(key_columns[0]).null_count == 0:
            values = table.column(key_columns[0]).to_numpy()
            if len(values) > 1 and not bool(np.all(values[:-1] <= values[1:])):
                order = np.argsort(values, kind="stable")
                table, values = table.take(order), values[order]
            sorted_key = values
        entry = (table, sorted_key)
        size = table.nbytes
        if size > self.max_bytes:
            return entry  # larger than the whole budget: not kept
        with self._lock:
            if path not in self._files:
                self._files[path] = entry
                self._bytes += size
            while self._bytes > self.max_bytes:
                _, (old, _) = self._files.popitem(last=False)
                self._bytes -= old.nbytes
        return entry


def at_micros_scalar(micros: int):
    import pyarrow as pa

    return pa.scalar(micros, pa.int64()).cast(pa.timestamp("us", tz="UTC"))


def _max_micros(table: pa.Table) -> int:
    import pyarrow.compute as pc

    value = pc.max(arrow_micros(table.column("snapshot_time"))).as_py()
    return int(value) if value is not None else np.iinfo(np.int64).min
