"""The snapshot job: ask every fact source about every context of a run, commit typed facts.

For run ``R`` (whose context set was selected):

1. take the writer lease (one snapshot writer per warehouse at a time);
2. list the (context, source) pairs that have no fact for ``R`` yet — a re-run fetches only
   what is missing;
3. fetch them on the executors (:mod:`timetravel.collect.fetch`), materialise the outcomes once
   (``localCheckpoint``: a live service is never asked twice for one attempt);
4. per source, append the facts to ``facts/<source>`` in one commit (typed columns parsed
   from the payload with the source's schema, ``snapshot_time`` = the service's ``as_of``
   or else the fetch time, partitioned by snapshot date, ``userMetadata`` = ``R``); append
   every failure to ``snapshot_errors``; each commit carries a Delta transaction id, so a
   commit that already happened is never repeated;
5. record per-source requested/fetched/failed/coverage and the run's status in the runs index.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from timetravel.collect.fetch import TaskLimits, fetch_pairs
from timetravel.collect.selection import read_context_set
from timetravel.config import Config, SnapshotSettings, SourceSettings
from timetravel.errors import ConfigError, describe_error
from timetravel.times import spark_instant
from timetravel.warehouse.layout import SNAPSHOT_ERRORS_TABLE, facts_table
from timetravel.warehouse.leases import Lease
from timetravel.warehouse.runs import RunsIndex
from timetravel.warehouse.store import DeltaStore, Txn

if TYPE_CHECKING:
    from pyspark.sql import DataFrame
    from pyspark.sql.types import StructType

__all__ = [
    "snapshot_facts",
    "resolve_sources",
    "SnapshotResult",
    "SourceSummary",
    "Progress",
]

_META = ("snapshot_time", "run_id", "written_at", "snapshot_date")
# Rows per facts file a commit writes (a few tens of MB of Parquet for typical payloads).
_ROWS_PER_FILE = 1_000_000


@dataclass(frozen=True)
class SourceSummary:
    """One source's accounting for the run (all attempts so far)."""

    source: str
    requested: int
    fetched: int
    failed: int
    coverage: float
    status: str
    fetched_now: int = 0
    failed_now: int = 0
    retried_now: int = 0
    # This attempt's answer times, p50/p95/p99 in ms (None: nothing was asked this time).
    latency_ms: dict[str, float] | None = None


@dataclass(frozen=True)
class SnapshotResult:
    run_id: str
    status: str
    attempt: int
    sources: list[SourceSummary]
    table_versions: dict[str, int]
    seconds: float


@dataclass
class Progress:
    """Live counters, updated as Spark tasks finish."""

    total: int
    done: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None


def resolve_sources(settings: SnapshotSettings) -> dict[str, SourceSettings]:
    """Sources with base URLs filled from the demo fleet file where conf left them out."""
    if not settings.sources:
        raise ConfigError("no sources configured: add snapshot.sources to the conf")
    fleet: dict[str, str] = {}
    if settings.fleet_file is not None:
        path = Path(settings.fleet_file)
        if not path.is_file():
            raise ConfigError(
                f"snapshot.fleet_file {path} does not exist; start the demo fleet "
                "with `timetravel demo up` or give each source a base_url"
            )
        fleet = json.loads(path.read_text())["urls"]
    resolved = {}
    for source in settings.sources:
        if source.base_url is None and source.plugin is None:
            if source.name not in fleet:
                raise ConfigError(
                    f"source {source.name!r} has no base_url and the fleet file "
                    f"does not list it (fleet services: {', '.join(fleet) or 'none'})"
                )
            source = source.model_copy(update={"base_url": fleet[source.name]})
        resolved[source.name] = source
    return resolved


def snapshot_facts(
    store: DeltaStore,
    config: Config,
    run_id: str,
    *,
    on_progress: Callable[[Progress], None] | None = None,
) -> SnapshotResult:
    """Snapshot every source for run ``run_id`` (resumable, idempotent, one writer)."""
    started = time.monotonic()
    settings = config.snapshot
    sources = resolve_sources(settings)
    entity = list(config.selection.entity)
    runs = RunsIndex(store.config, spark=store.spark)
    run = runs.get(run_id)
    contexts = read_context_set(store, run_id).select(*entity)
    _check_schemas(sources, entity)
    with snapshot_lease(config, run_id, holder=run_id, ttl_s=settings.lease_ttl_s) as lease:
        runs.record(run_id, run.run_time, "snapshot", "running")
        try:
            requested = contexts.count()
            pending, resumed = _missing_pairs(store, contexts, sources, entity, run_id)
            pending = pending.cache()
            try:
                missing = (
                    {
                        r["source"]: r["n"]
                        for r in pending.groupBy("source")
                        .count()
                        .withColumnRenamed("count", "n")
                        .collect()
                    }
                    if resumed
                    else dict.fromkeys(sources, requested)
                )
                outcomes = _fetch(
                    store, pending, sum(missing.values()), sources, settings, entity, on_progress
                )
            finally:
                pending.unpersist()
            try:
                now = _tally(outcomes)
                latencies = _latencies(outcomes)
                lease.ensure_held()
                attempt, versions = _commit(store, outcomes, sources, entity, run_id, now)
            finally:
                outcomes.unpersist()
        except BaseException as exc:
            # Never leave the stage 'running': a monitor must see the failure and its reason.
            # The commits made so far carry transaction ids, so a re-run resumes cleanly.
            runs.record(
                run_id,
                run.run_time,
                "snapshot",
                "failed",
                details={"error": describe_error(exc)},
            )
            raise
        summaries = _summaries(sources, requested, missing, now, settings, latencies)
        status = _run_status(summaries)
        details = {"attempt": attempt, "sources": {s.source: s.__dict__ for s in summaries}}
        runs.record(
            run_id, run.run_time, "snapshot", status, details=details, table_versions=versions
        )
    return SnapshotResult(run_id, status, attempt, summaries, versions, time.monotonic() - started)


def snapshot_lease(config: Config, run_id: str, *, holder: str, ttl_s: float) -> Lease:
    """The lease a run's snapshot holds: two writers of one run never fetch and commit side
    by side, while other runs snapshot concurrently."""
    slug = re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)[:60]
    digest = hashlib.sha256(run_id.encode()).hexdigest()[:8]  # distinct ids, distinct leases
    return Lease(config, f"snapshot-{slug}-{digest}", holder=holder, ttl_s=ttl_s)


def _check_schemas(sources: dict[str, SourceSettings], entity: list[str]) -> None:
    from pyspark.sql.types import _parse_datatype_string

    for name, source in sources.items():
        try:
            schema = cast("StructType", _parse_datatype_string(source.schema_ddl))
        except Exception as exc:
            raise ConfigError(
                f"source {name!r}: invalid schema {source.schema_ddl!r}: {str(exc).splitlines()[0]}"
            ) from None
        clash = sorted(set(schema.fieldNames()) & (set(entity) | set(_META)))
        if clash:
            raise ConfigError(
                f"source {name!r}: schema fields {clash} collide with the context "
                f"key or snapshot columns ({', '.join([*entity, *_META])})"
            )


def _missing_pairs(
    store: DeltaStore,
    contexts: DataFrame,
    sources: dict[str, SourceSettings],
    entity: list[str],
    run_id: str,
) -> tuple[DataFrame, bool]:
    """The (context, source) pairs with no fact for this run yet; and whether any had one."""
    from pyspark.sql import functions as F

    pairs = None
    resumed = False
    for name in sources:
        wanted = contexts.withColumn("source", F.lit(name))
        table = facts_table(name)
        # Facts of a run are only ever written by commits tagged with its id: a table with
        # no such commit (every first attempt) needs no scan, which saves planning a Delta
        # read per source.
        if store.exists(table) and store.versions_tagged(table, run_id):
            have = store.read(table).where(F.col("run_id") == run_id).select(*entity)
            wanted = wanted.join(have, entity, "left_anti")
            resumed = True
        pairs = wanted if pairs is None else pairs.unionByName(wanted)
    assert pairs is not None
    return pairs, resumed


def _fetch(
    store: DeltaStore,
    pending: DataFrame,
    total: int,
    sources: dict[str, SourceSettings],
    settings: SnapshotSettings,
    entity: list[str],
    on_progress: Callable[[Progress], None] | None,
) -> DataFrame:
    """Fetch the ``total`` pending pairs on the executors; outcomes materialised once."""
    from pyspark import AccumulatorParam
    from pyspark.sql.types import (
        BooleanType,
        DoubleType,
        IntegerType,
        LongType,
        StringType,
        StructField,
        StructType,
    )

    spark = store.spark
    tasks = max(1, min(settings.tasks or spark.sparkContext.defaultParallelism, max(total, 1)))
    limits = {
        name: TaskLimits(
            max(1, s.concurrency // tasks),
            s.rate_limit_per_s / tasks if s.rate_limit_per_s else None,
        )
        for name, s in sources.items()
    }

    class CounterParam(AccumulatorParam):
        def zero(self, value: Counter[str]) -> Counter[str]:
            return Counter()

        def addInPlace(self, a: Counter[str], b: Counter[str]) -> Counter[str]:
            a.update(b)
            return a

    counts = spark.sparkContext.accumulator(Counter(), CounterParam())
    key_fields = [pending.schema[c] for c in entity]
    schema = StructType(
        [
            StructField("source", StringType()),
            *key_fields,
            StructField("ok", BooleanType()),
            StructField("payload", StringType()),
            StructField("as_of_micros", LongType()),
            StructField("fetched_micros", LongType()),
            StructField("attempts", IntegerType()),
            StructField("last_status", IntegerType()),
            StructField("error_class", StringType()),
            StructField("error_message", StringType()),
            StructField("latency_ms", DoubleType()),
        ]
    )
    width = len(entity)

    def fetch_partition(index: int, rows: Any) -> Any:
        pairs = [(r[width], tuple(r[:width])) for r in rows]
        outcomes = fetch_pairs(sources, limits, entity, pairs, seed=index)
        tally: Counter[str] = Counter()
        for o in outcomes:
            tally[f"{'ok' if o.ok else 'failed'}:{o.source}"] += 1
            yield (
                o.source,
                *o.key,
                o.ok,
                o.payload,
                o.as_of_micros,
                o.fetched_micros,
                o.attempts,
                o.last_status,
                o.error_class,
                o.error_message,
                o.latency_ms,
            )
        counts.add(tally)

    ordered = pending.select(*entity, "source").repartition(tasks)
    rdd = ordered.rdd.mapPartitionsWithIndex(fetch_partition)
    progress = Progress(total)
    stop = threading.Event()

    def report() -> None:
        while not stop.wait(2.0):
            _update(progress, counts.value)
            if on_progress is not None:
                on_progress(progress)

    reporter = threading.Thread(target=report, daemon=True)
    reporter.start()
    try:
        # Materialise the outcomes exactly once: a live service must not be asked twice.
        outcomes = spark.createDataFrame(rdd, schema).localCheckpoint(eager=True)
    finally:
        stop.set()
        reporter.join()
    progress.finished = time.monotonic()
    _update(progress, counts.value)
    if on_progress is not None:
        on_progress(progress)
    return outcomes


def _update(progress: Progress, counts: Counter[str]) -> None:
    for key, value in counts.items():
        outcome, source = key.split(":", 1)
        (progress.done if outcome == "ok" else progress.failed)[source] = value


def _tally(outcomes: DataFrame) -> dict[tuple[str, bool], tuple[int, int]]:
    """(source, ok) -> (pairs, pairs that needed more than one attempt)."""
    from pyspark.sql import functions as F

    rows = outcomes.groupBy("source", "ok").agg(
        F.count(F.lit(1)).alias("n"), F.sum((F.col("attempts") > 1).cast("int")).alias("r")
    )
    return {(r["source"], r["ok"]): (int(r["n"]), int(r["r"] or 0)) for r in rows.collect()}


def _commit(
    store: DeltaStore,
    outcomes: DataFrame,
    sources: dict[str, SourceSettings],
    entity: list[str],
    run_id: str,
    now: dict[tuple[str, bool], tuple[int, int]],
) -> tuple[int, dict[str, int]]:
    from pyspark.sql import functions as F

    written_at = spark_instant(datetime.now(UTC))
    versions: dict[str, int] = {}
    attempt = 1
    for name, source in sources.items():
        table = facts_table(name)
        facts = (
            outcomes.where(F.col("ok") & (F.col("source") == name))
            .withColumn("p", F.from_json("payload", source.schema_ddl))
            .withColumn(
                "snapshot_time", F.timestamp_micros(F.coalesce("as_of_micros", "fetched_micros"))
            )
            .select(
                *entity,
                "snapshot_time",
                F.lit(run_id).alias("run_id"),
                written_at.alias("written_at"),
                F.to_date("snapshot_time").alias("snapshot_date"),
                "p.*",
            )
        )
        # Key-clustered files: a point lookup's key falls in one file's min/max per commit.
        # Up to _ROWS_PER_FILE rows that is one sorted file, and no sampling job for ranges.
        files = -(-now.get((name, True), (0, 0))[0] // _ROWS_PER_FILE)
        facts = (
            facts.repartitionByRange(files, *entity) if files > 1 else facts.repartition(1)
        ).sortWithinPartitions(*entity)
        store.create(
            table,
            facts.schema,
            partition_by=["snapshot_date"],
            comment=f"facts from source {name!r}, one row per (context, run)",
        )
        # The txn version counts this run's earlier commits: an attempt that died before
        # committing reuses its number, one that committed gets a new one.
        txn_version = len(store.versions_tagged(table, run_id))
        attempt = max(attempt, txn_version + 1)
        version = None
        if now.get((name, True), (0, 0))[0]:
            version = store.append(
                table,
                facts,
                user_metadata=run_id,
                merge_schema=True,
                txn=Txn(f"snapshot:{run_id}:{name}", txn_version),
            )
        versions[table] = version if version is not None else store.latest_version(table)
    errors = outcomes.where(~F.col("ok")).select(
        F.lit(run_id).alias("run_id"),
        F.lit(attempt).alias("attempt"),
        "source",
        *entity,
        "attempts",
        "last_status",
        "error_class",
        "error_message",
        F.timestamp_micros("fetched_micros").alias("failed_at"),
    )
    store.create(
        SNAPSHOT_ERRORS_TABLE, errors.schema, comment="every failed (context, source) fetch"
    )
    version = None
    if any(n for (_, ok), (n, _) in now.items() if not ok):
        version = store.append(
            SNAPSHOT_ERRORS_TABLE,
            errors,
            user_metadata=run_id,
            txn=Txn(
                f"snapshot-errors:{run_id}",
                len(store.versions_tagged(SNAPSHOT_ERRORS_TABLE, run_id)),
            ),
        )
    versions[SNAPSHOT_ERRORS_TABLE] = (
        version if version is not None else store.latest_version(SNAPSHOT_ERRORS_TABLE)
    )
    return attempt, versions


def _latencies(outcomes: DataFrame) -> dict[str, dict[str, float]]:
    """Per source, p50/p95/p99 of how long it took to answer (ms), over this attempt."""
    from pyspark.sql import functions as F

    quantiles = {"p50": 0.5, "p95": 0.95, "p99": 0.99}
    rows = outcomes.groupBy("source").agg(
        F.percentile_approx("latency_ms", list(quantiles.values())).alias("q")
    )
    return {
        r["source"]: {name: round(float(v), 2) for name, v in zip(quantiles, r["q"], strict=True)}
        for r in rows.collect()
        if r["q"] is not None
    }


def _summaries(
    sources: dict[str, SourceSettings],
    requested: int,
    missing: dict[str, int],
    now: dict[tuple[str, bool], tuple[int, int]],
    settings: SnapshotSettings,
    latencies: dict[str, dict[str, float]],
) -> list[SourceSummary]:
    summaries = []
    for name, source in sources.items():
        ok_now, retried_ok = now.get((name, True), (0, 0))
        failed_now, retried_failed = now.get((name, False), (0, 0))
        fetched = requested - missing.get(name, 0) + ok_now
        coverage = fetched / requested if requested else 1.0
        status = (
            "ok"
            if coverage >= source.min_coverage
            else "failed"
            if coverage < settings.fail_below
            else "partial"
        )
        summaries.append(
            SourceSummary(
                name,
                requested,
                fetched,
                requested - fetched,
                coverage,
                status,
                ok_now,
                failed_now,
                retried_ok + retried_failed,
                latencies.get(name),
            )
        )
    return summaries


def _run_status(summaries: list[SourceSummary]) -> str:
    statuses = {s.status for s in summaries}
    return "failed" if "failed" in statuses else "partial" if "partial" in statuses else "ok"
