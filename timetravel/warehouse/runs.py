"""The runs index: one Delta table recording every snapshot run, stage by stage.

One row per (run id, stage) — ``select``, ``snapshot``... — upserted with MERGE, so a stage
re-run updates its row instead of adding one. A row holds the logical run time, status,
created/updated instants, stage details (JSON: per-stratum counts, per-source coverage,
warnings) and the Delta version of each table the stage wrote.
"""

from __future__ import annotations

import builtins
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from timetravel.errors import RunNotFoundError
from timetravel.warehouse.layout import RUNS_TABLE
from timetravel.warehouse.store import DeltaStore
from timetravel.times import from_micros, to_micros, to_utc

if TYPE_CHECKING:
    from pyspark.sql.types import StructType

    from timetravel.config import Config

__all__ = ["RunsIndex", "StageRecord", "RunInfo", "read_runs"]

_SCHEMA = (
    "run_id string, stage string, run_time timestamp, status string, "
    "created_at timestamp, updated_at timestamp, details string, "
    "table_versions map<string, bigint>"
)


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
    """Read and write the runs index of a warehouse."""

    def __init__(self, store: DeltaStore) -> None:
        self.store = store

    def _schema(self) -> StructType:
        from pyspark.sql.types import _parse_datatype_string

        return cast("StructType", _parse_datatype_string(_SCHEMA))

    def record(
        self,
        run_id: str,
        run_time: datetime | str,
        stage: str,
        status: str,
        *,
        details: dict[str, Any] | None = None,
        table_versions: dict[str, int] | None = None,
    ) -> None:
        """Insert or update the (run_id, stage) row; ``created_at`` is kept on update."""
        from delta.tables import DeltaTable
        from pyspark.sql import functions as F

        spark = self.store.spark
        self.store.create(RUNS_TABLE, self._schema(), comment="timetravel runs index")
        now = to_micros(datetime.now(UTC))
        row = spark.createDataFrame(
            [
                (
                    run_id,
                    stage,
                    to_micros(run_time),
                    status,
                    now,
                    now,
                    json.dumps(details or {}, sort_keys=True, default=str),
                    table_versions or {},
                )
            ],
            "run_id string, stage string, run_time long, status string, created_at long, "
            "updated_at long, details string, table_versions map<string, bigint>",
        )
        instants = ("run_time", "created_at", "updated_at")
        row = row.select(
            *(F.timestamp_micros(c).alias(c) if c in instants else F.col(c) for c in row.columns)
        )
        table = DeltaTable.forPath(spark, self.store.path(RUNS_TABLE))
        (
            table.alias("t")
            .merge(row.alias("s"), "t.run_id = s.run_id AND t.stage = s.stage")
            .whenMatchedUpdate(
                set={
                    c: f"s.{c}"
                    for c in ("run_time", "status", "updated_at", "details", "table_versions")
                }
            )
            .whenNotMatchedInsertAll()
            .execute()
        )

    def find(self, run_id: str) -> RunInfo | None:
        """The run ``run_id``, or None."""
        runs = self._load(f"run_id = '{_quote(run_id)}'")
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

    def previous(
        self, run_time: datetime | str, *, stage: str = "select", exclude: str | None = None
    ) -> RunInfo | None:
        """The latest run strictly before ``run_time`` whose ``stage`` succeeded."""
        at = to_utc(run_time)
        for run in self.list():
            if run.run_time < at and run.status(stage) == "ok" and run.run_id != exclude:
                return run
        return None

    def _load(self, where: str | None) -> builtins.list[RunInfo]:
        from pyspark.sql import functions as F

        if not self.store.exists(RUNS_TABLE):
            return []
        frame = self.store.read(RUNS_TABLE)
        if where:
            frame = frame.where(where)
        rows = frame.select(
            "run_id",
            "stage",
            "status",
            "details",
            "table_versions",
            *(F.unix_micros(c).alias(c) for c in ("run_time", "created_at", "updated_at")),
        ).collect()
        return _assemble([r.asDict() for r in rows])


def read_runs(config: Config) -> list[RunInfo]:
    """The runs index read without Spark (delta-rs), newest first: for the API and notebooks."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from timetravel.warehouse.deltars import read_table
    from timetravel.errors import TableNotFoundError

    try:
        table = read_table(config, RUNS_TABLE)
    except TableNotFoundError:
        return []
    for name in ("run_time", "created_at", "updated_at"):
        micros = pc.cast(pc.cast(table.column(name), pa.timestamp("us", tz="UTC")), pa.int64())
        table = table.set_column(table.column_names.index(name), name, micros)
    rows = table.to_pylist()
    for row in rows:
        versions = row["table_versions"]
        row["table_versions"] = dict(versions) if versions else {}
    return _assemble(rows)


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


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")
