"""The runs index: one Delta table recording every snapshot run, stage by stage.

One row per (run id, stage) — ``select``, ``snapshot``... — upserted with MERGE, so a stage
re-run updates its row instead of adding one. A row holds the logical run time, status,
created/updated instants, stage details (JSON: per-stratum counts, per-source coverage,
warnings) and the Delta version of each table the stage wrote.

The index is read and written through delta-rs, not Spark: it is a few rows per run, asked
for by every stage, the API, the CLI and the scheduler, and a Spark MERGE costs a second of
JVM work each time. Writers on different runs race on one table; a lost race is retried
(:mod:`timetravel.warehouse.conflicts`), and the table is partitioned by run id so the MERGE
of one run only reads and rewrites that run's files.
"""

from __future__ import annotations

import builtins
import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from timetravel.errors import RunNotFoundError, StoreError, TableNotFoundError
from timetravel.times import arrow_micros, from_micros, to_micros
from timetravel.warehouse.conflicts import retry_conflicts
from timetravel.warehouse.deltars import open_table, query_open_table, sql_text, table_uri
from timetravel.warehouse.layout import RUNS_TABLE
from timetravel.warehouse.s3 import delta_rs_options
from timetravel.warehouse.store import time_travel_properties

if TYPE_CHECKING:
    import pyarrow as pa
    from deltalake import DeltaTable
    from pyspark.sql import SparkSession

    from timetravel.config import Config

__all__ = ["RunsIndex", "StageRecord", "RunInfo"]

_INSTANTS = ("run_time", "created_at", "updated_at")
_UPDATED_ON_RERUN = ("run_time", "status", "updated_at", "details", "table_versions")


@dataclass(frozen=True)
class StageRecord:
    """One stage of one run."""

    run_id: str
    stage: str
    run_time: datetime
    status: str
    created_at: datetime
    updated_at: datetime
    details: dict[str, Any]
    table_versions: dict[str, int]


@dataclass(frozen=True)
class RunInfo:
    """A run and its stages."""

    run_id: str
    run_time: datetime
    stages: dict[str, StageRecord] = field(default_factory=dict)

    def status(self, stage: str) -> str | None:
        record = self.stages.get(stage)
        return record.status if record else None

    def coverage(self) -> dict[str, float]:
        """Per source, the share of contexts its snapshot stage fetched (none yet: empty)."""
        snapshot = self.stages.get("snapshot")
        sources = (snapshot.details.get("sources") or {}) if snapshot else {}
        return {name: float(s.get("coverage", 0.0)) for name, s in sorted(sources.items())}


class RunsIndex:
    """Read and write the runs index of a warehouse (delta-rs; no Spark job).

    ``spark`` is used at most once: to upgrade an index written by timetravel 0.1, whose
    in-commit-timestamp table feature delta-rs cannot write.
    """

    def __init__(self, config: Config, *, spark: SparkSession | None = None) -> None:
        self.config = config
        self.spark = spark

    def record(
        self,
        run_id: str,
        run_time: datetime | str,
        stage: str,
        status: str,
        *,
        details: dict[str, Any] | None = None,
        table_versions: dict[str, int] | None = None,
    ) -> int:
        """Insert or update the (run_id, stage) row; ``created_at`` is kept on update.

        Returns the index's Delta version this commit produced.
        """
        row = _row(run_id, run_time, stage, status, details, table_versions)

        def commit() -> int:
            table = self._writable()
            (
                table.merge(
                    row,
                    # The literal lets delta-rs read, rewrite and check conflicts in this
                    # run's partition only: writers of other runs do not collide with it.
                    f"t.run_id = {sql_text(run_id)} AND t.run_id = s.run_id AND t.stage = s.stage",
                    source_alias="s",
                    target_alias="t",
                )
                .when_matched_update({c: f"s.{c}" for c in _UPDATED_ON_RERUN})
                .when_not_matched_insert_all()
                .execute()
            )
            return int(table.version())

        return retry_conflicts(commit, what=f"runs index: {stage} of {run_id}")

    def find(self, run_id: str) -> RunInfo | None:
        """The run ``run_id``, or None."""
        runs = self._load(run_id)
        return runs[0] if runs else None

    def get(self, run_id: str) -> RunInfo:
        """The run ``run_id``; raises :class:`RunNotFoundError` naming recent runs if absent."""
        run = self.find(run_id)
        if run is None:
            recent = ", ".join(r.run_id for r in self.list(limit=5)) or "none yet"
            raise RunNotFoundError(f"no run {run_id!r} in the runs index (recent: {recent})")
        return run

    def list(self, *, limit: int | None = None) -> builtins.list[RunInfo]:
        """Runs, newest logical run time first."""
        runs = self._load(None)
        return runs[:limit] if limit else runs

    def _load(self, run_id: str | None) -> builtins.list[RunInfo]:
        # Through delta-rs's own query engine (safe in the short-lived CLI processes that
        # read the index most).
        try:
            table = open_table(self.config, RUNS_TABLE)
        except TableNotFoundError:
            return []
        if run_id is not None:  # one partition: cheap to read every time
            return _assemble(_rows(table, f"run_id = {sql_text(run_id)}"))
        return _assemble(_all_rows(table))

    def _writable(self) -> DeltaTable:
        from deltalake import DeltaTable

        try:
            table = open_table(self.config, RUNS_TABLE)
        except TableNotFoundError:
            # Two first writers may both get here: the loser's commit 0 fails as a conflict
            # and its retry finds the table.
            return DeltaTable.create(
                table_uri(self.config, RUNS_TABLE),
                _schema(),
                mode="ignore",
                partition_by=["run_id"],
                description="timetravel runs index",
                configuration=time_travel_properties(self.config, in_commit_timestamps=False),
                storage_options=delta_rs_options(self.config),
            )
        if "inCommitTimestamp" in (table.protocol().writer_features or []):
            self._upgrade_from_spark_index()
            table = open_table(self.config, RUNS_TABLE)
        return table

    def _upgrade_from_spark_index(self) -> None:
        location = f"{self.config.warehouse.root}/{RUNS_TABLE}"
        if self.spark is None:
            raise StoreError(
                f"the runs index at {location} was written by timetravel 0.1 (Delta table "
                "feature inCommitTimestamp, which delta-rs cannot write); run any Spark stage "
                "once (e.g. `timetravel select`) to upgrade it in place"
            )
        # The index is never read by timestamp, so the feature can go; its rows stay.
        table = f"delta.`{location}`"
        self.spark.sql(
            f"ALTER TABLE {table} SET TBLPROPERTIES ('delta.enableInCommitTimestamps' = 'false')"
        )
        self.spark.sql(f"ALTER TABLE {table} DROP FEATURE inCommitTimestamp")


def _schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [
            ("run_id", pa.string()),
            ("stage", pa.string()),
            ("run_time", pa.timestamp("us", tz="UTC")),
            ("status", pa.string()),
            ("created_at", pa.timestamp("us", tz="UTC")),
            ("updated_at", pa.timestamp("us", tz="UTC")),
            ("details", pa.string()),
            ("table_versions", pa.map_(pa.string(), pa.int64())),
        ]
    )


def _row(
    run_id: str,
    run_time: datetime | str,
    stage: str,
    status: str,
    details: dict[str, Any] | None,
    table_versions: dict[str, int] | None,
) -> pa.Table:
    import pyarrow as pa

    now = to_micros(datetime.now(UTC))
    values = {
        "run_id": [run_id],
        "stage": [stage],
        "run_time": [to_micros(run_time)],
        "status": [status],
        "created_at": [now],
        "updated_at": [now],
        "details": [json.dumps(details or {}, sort_keys=True, default=str)],
        "table_versions": [list((table_versions or {}).items())],
    }
    schema = _schema()
    return pa.table(
        {
            name: pa.array(column, pa.int64()).cast(schema.field(name).type)
            if name in _INSTANTS
            else pa.array(column, schema.field(name).type)
            for name, column in values.items()
        },
        schema=schema,
    )


@dataclass
class _Cached:
    """The index as last read in this process: its version, files and rows by run."""

    version: int
    files: dict[str, str]  # data file -> the run whose partition holds it
    runs: dict[str, list[dict[str, Any]]]


# By table URI. A year of daily runs is a thousand small files, about a second to read;
# long-lived readers (the API, the console) ask again and again, and each new commit
# changes one run's partition. So a newer version re-reads only the partitions whose files
# changed; nothing stale is served (the version is checked on every call).
_CACHE: dict[str, _Cached] = {}
_CACHE_LOCK = threading.Lock()
_MAX_CHANGED_RUNS = 200  # more changed partitions than this: one full read instead


def _all_rows(table: DeltaTable) -> list[dict[str, Any]]:
    import pyarrow as pa

    version = table.version()
    with _CACHE_LOCK:
        cached = _CACHE.get(table.table_uri)
    if cached is None or cached.version != version:
        actions = pa.table(table.get_add_actions(flatten=True))
        partitioned = "partition.run_id" in actions.column_names  # an old index may not be
        files = dict(
            zip(
                actions.column("path").to_pylist(),
                actions.column("partition.run_id").to_pylist()
                if partitioned
                else [""] * actions.num_rows,
                strict=True,
            )
        )
        runs: dict[str, list[dict[str, Any]]] = {}
        changed: set[str] | None = None
        if cached is not None and cached.version < version and partitioned:
            changed = {files[f] for f in files.keys() - cached.files.keys()}
            changed |= {cached.files[f] for f in cached.files.keys() - files.keys()}
            if len(changed) <= _MAX_CHANGED_RUNS:
                runs = {r: rows for r, rows in cached.runs.items() if r not in changed}
            else:
                changed = None
        if changed is None:
            fresh = _rows(table, None)
        elif changed:
            fresh = _rows(table, f"run_id IN ({', '.join(sql_text(r) for r in sorted(changed))})")
        else:
            fresh = []
        for row in fresh:
            runs.setdefault(row["run_id"], []).append(row)
        cached = _Cached(version, files, runs)
        with _CACHE_LOCK:
            current = _CACHE.get(table.table_uri)
            if current is None or current.version < version:
                _CACHE[table.table_uri] = cached
    return [row for rows in cached.runs.values() for row in rows]


def _rows(table: DeltaTable, where: str | None) -> list[dict[str, Any]]:
    """The index's rows (instants as epoch microseconds) through delta-rs's query engine."""
    rows = query_open_table(table, where=where)
    for name in _INSTANTS:
        rows = rows.set_column(rows.column_names.index(name), name, arrow_micros(rows.column(name)))
    return rows.to_pylist()


def _assemble(rows: list[dict[str, Any]]) -> list[RunInfo]:
    """RunInfo objects built afresh (details parsed anew): callers may change theirs."""
    runs: dict[str, RunInfo] = {}
    for r in rows:
        record = StageRecord(
            r["run_id"],
            r["stage"],
            from_micros(r["run_time"]),
            r["status"],
            from_micros(r["created_at"]),
            from_micros(r["updated_at"]),
            json.loads(r["details"]),
            dict(r["table_versions"] or {}),
        )
        run = runs.setdefault(r["run_id"], RunInfo(r["run_id"], record.run_time))
        run.stages[r["stage"]] = record
    return sorted(runs.values(), key=lambda run: (run.run_time, run.run_id), reverse=True)
