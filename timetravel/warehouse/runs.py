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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from timetravel.errors import RunNotFoundError, StoreError, TableNotFoundError
from timetravel.times import from_micros, to_micros
from timetravel.warehouse.conflicts import retry_conflicts
from timetravel.warehouse.deltars import open_table, query_table, sql_text, table_uri
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
        import pyarrow as pa
        import pyarrow.compute as pc

        # Through delta-rs's own query engine (safe in the short-lived CLI processes that
        # read the index most).
        where = f"run_id = {sql_text(run_id)}" if run_id is not None else None
        try:
            rows = query_table(self.config, RUNS_TABLE, where=where)
        except TableNotFoundError:
            return []
        for name in _INSTANTS:
            micros = pc.cast(pc.cast(rows.column(name), pa.timestamp("us", tz="UTC")), pa.int64())
            rows = rows.set_column(rows.column_names.index(name), name, micros)
        return _assemble(rows.to_pylist())

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


def _assemble(rows: list[dict[str, Any]]) -> list[RunInfo]:
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
