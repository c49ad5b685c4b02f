"""The context selection job: population as of the run time -> the run's context set.

Reads the latest population snapshot at or before the run time, builds the strata, allocates
exact per-stratum sizes, draws the sample (with the optional panel) and appends it to the
``context_sets`` Delta table (partitioned by run date) in one idempotent commit, then records
the run's ``select`` stage in the runs index. Re-running a run id changes nothing.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from timetravel.collect.sampling import (
    allocate,
    check_columns,
    count_strata,
    draw_sample,
    mark_previous,
    resolve_cuts,
    stratum_column,
)
from timetravel.config import SelectionSettings
from timetravel.errors import SelectionError, describe_error
from timetravel.times import spark_instant, to_utc
from timetravel.warehouse.layout import CONTEXT_SETS_TABLE
from timetravel.warehouse.runs import RunInfo, RunsIndex
from timetravel.warehouse.store import DeltaStore, Txn, latest_snapshot

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = [
    "select_contexts",
    "read_context_set",
    "default_run_id",
    "SelectionResult",
    "StratumSummary",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StratumSummary:
    """One row of the per-stratum table: population, target, sample, weight."""

    stratum: str
    population: int
    target: int
    sample: int
    capped: bool

    @property
    def weight(self) -> float:
        return self.population / self.sample if self.sample else 0.0


@dataclass(frozen=True)
class SelectionResult:
    """What a select run did (or had already done, when ``reused``)."""

    run_id: str
    run_time: datetime
    version: int
    population_size: int
    sample_size: int
    strata: list[StratumSummary]
    warnings: list[str] = field(default_factory=list)
    previous_run_id: str | None = None
    reused: bool = False


def default_run_id(run_time: datetime | str) -> str:
    """'run-20260601T000000Z' for a run at 2026-06-01T00:00:00Z."""
    return f"run-{to_utc(run_time):%Y%m%dT%H%M%SZ}"


def select_contexts(
    store: DeltaStore,
    settings: SelectionSettings,
    run_time: datetime | str,
    *,
    run_id: str | None = None,
) -> SelectionResult:
    """Select the context set of one run (idempotent per run id)."""
    at = to_utc(run_time)
    run_id = run_id or default_run_id(at)
    runs = RunsIndex(store.config, spark=store.spark)
    done = _already_selected(runs, run_id)
    if done is not None:
        return done

    # Recorded first, so a later run selecting side by side waits for this one's sample
    # (its panel) instead of taking an older one.
    runs.record(run_id, at, "select", "running")
    try:
        result, versions = _select(store, runs, settings, at, run_id)
    except BaseException as exc:
        runs.record(run_id, at, "select", "failed", details={"error": describe_error(exc)})
        raise
    runs.record(run_id, at, "select", "ok", details=_details(result), table_versions=versions)
    return result


def read_context_set(store: DeltaStore, run_id: str) -> DataFrame:
    """The context set of ``run_id``, read at the Delta version its select stage recorded."""
    from pyspark.sql import functions as F

    run = RunsIndex(store.config, spark=store.spark).get(run_id)
    record = run.stages.get("select")
    if record is None or record.status != "ok":
        raise SelectionError(f"run {run_id!r} has no successful select stage")
    version = record.table_versions[CONTEXT_SETS_TABLE]
    return store.read(CONTEXT_SETS_TABLE, version=version).where(F.col("run_id") == run_id)


def _select(
    store: DeltaStore, runs: RunsIndex, settings: SelectionSettings, at: datetime, run_id: str
) -> tuple[SelectionResult, dict[str, int]]:
    from pyspark.sql import functions as F

    population, population_version = _population(store, settings, at)
    check_columns(population, settings.strata, settings.entity)
    cuts = resolve_cuts(population, settings.strata)
    previous_run, previous = _previous_sample(store, runs, settings, at, run_id)
    population = mark_previous(
        population.withColumn("stratum", stratum_column(settings.strata, cuts)),
        previous,
        settings.entity,
    ).cache()
    try:
        counts = count_strata(population)
        sizes = counts.sizes
        if not sizes:
            raise SelectionError(
                f"the population is empty as of {at.isoformat()}: table "
                f"{settings.population_table!r} has no rows"
                + (
                    f" with {settings.snapshot_column} at or before the run time"
                    if settings.snapshot_column
                    else ""
                )
            )
        allocated = allocate(sizes, settings.allocation)
        sample, panel_warnings = draw_sample(
            population,
            allocated.plans,
            entity=settings.entity,
            seed=settings.seed,
            salt=at.isoformat(),
            in_previous=counts.in_previous if previous is not None else None,
            panel_fraction=settings.panel.fraction if settings.panel else None,
        )
        rows = (
            sample.withColumn("run_id", F.lit(run_id))
            .withColumn("run_time", spark_instant(at))
            .withColumn("run_date", F.to_date(spark_instant(at)))
            .withColumn(
                "tags",
                F.create_map(*[F.lit(x) for kv in sorted(settings.tags.items()) for x in kv])
                if settings.tags
                else F.create_map().cast("map<string,string>"),
            )
        )
        store.create(
            CONTEXT_SETS_TABLE,
            rows.schema,
            partition_by=["run_date"],
            comment="context sets: one sample of contexts per run",
        )
        version = store.append(
            CONTEXT_SETS_TABLE, rows, user_metadata=run_id, txn=Txn(f"select:{run_id}", 0)
        )
        if version is None:  # committed by an earlier attempt that died before the index write
            version = store.version_written_by(CONTEXT_SETS_TABLE, run_id)
            assert version is not None
    finally:
        population.unpersist()

    warnings = allocated.warnings + panel_warnings
    for warning in warnings:
        log.warning("%s: %s", run_id, warning)
    strata = [
        StratumSummary(p.key, p.population, p.target, p.sample, p.capped)
        for p in allocated.plans.values()
    ]
    result = SelectionResult(
        run_id,
        at,
        version,
        sum(sizes.values()),
        sum(s.sample for s in strata),
        strata,
        warnings,
        previous_run.run_id if previous_run else None,
    )
    versions = {CONTEXT_SETS_TABLE: version}
    if population_version is not None:
        versions[settings.population_table] = population_version
    return result, versions


def _already_selected(runs: RunsIndex, run_id: str) -> SelectionResult | None:
    existing = runs.find(run_id)
    if existing is None or existing.status("select") != "ok":
        return None
    record = existing.stages["select"]
    d = record.details
    return SelectionResult(
        run_id,
        record.run_time,
        record.table_versions[CONTEXT_SETS_TABLE],
        d["population"],
        d["sample"],
        [StratumSummary(**s) for s in d["strata"]],
        d["warnings"],
        d.get("previous_run_id"),
        reused=True,
    )


def _population(
    store: DeltaStore, settings: SelectionSettings, at: datetime
) -> tuple[DataFrame, int | None]:
    version = store.latest_version(settings.population_table)
    table = store.read(settings.population_table, version=version)
    column = settings.snapshot_column
    if column is None:
        return table, version
    if column not in table.columns:
        raise SelectionError(
            f"population table {settings.population_table!r} has no snapshot "
            f"column {column!r}; columns: {', '.join(table.columns)} "
            "(set selection.snapshot_column, or null for a plain table)"
        )
    return latest_snapshot(table, column, at), version


def _previous_sample(
    store: DeltaStore, runs: RunsIndex, settings: SelectionSettings, at: datetime, run_id: str
) -> tuple[Any, DataFrame | None]:
    if settings.panel is None:
        return None, None
    previous = _previous_selected(runs, at, run_id, settings.panel.wait_for_previous_s)
    if previous is None:
        return None, None
    return previous, read_context_set(store, previous.run_id)


def _previous_selected(runs: RunsIndex, at: datetime, run_id: str, wait_s: float) -> RunInfo | None:
    """The latest run before ``at`` whose select completed — the panel the schedule gives.

    If the latest earlier run is still selecting (started side by side with this one), wait
    for it; a failed one is passed over. A run whose select has not started yet when this
    one asks is not known, and so not waited for.
    """
    deadline = time.monotonic() + wait_s
    while True:
        earlier = [
            r
            for r in runs.list()
            if r.run_time < at and r.run_id != run_id and r.status("select") in ("ok", "running")
        ]
        newest = earlier[0] if earlier else None  # list() is newest first
        if newest is None or newest.status("select") == "ok":
            return newest
        if time.monotonic() >= deadline:
            raise SelectionError(
                f"run {newest.run_id} ({newest.run_time.isoformat()}) is still selecting after "
                f"{wait_s:.0f}s, and its sample is this run's panel; wait for it to finish, or "
                "re-run it if its job died (selection.panel.wait_for_previous_s sets the wait)"
            )
        time.sleep(0.5)


def _details(result: SelectionResult) -> dict[str, Any]:
    return {
        "population": result.population_size,
        "sample": result.sample_size,
        "warnings": result.warnings,
        "previous_run_id": result.previous_run_id,
        "strata": [
            {
                "stratum": s.stratum,
                "population": s.population,
                "target": s.target,
                "sample": s.sample,
                "capped": s.capped,
            }
            for s in result.strata
        ],
    }
