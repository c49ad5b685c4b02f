"""The quality stage: per-field statistics of one run's facts, overall and per stratum.

For each source and field of a run's facts (read at the Delta versions its snapshot stage
recorded), joined to the run's context set: contexts, facts, missing (no fact: a failed
fetch), nulls, null rate, approximate distinct count; for numeric and boolean fields min,
max, mean, standard deviation, quantiles and a histogram; for categorical fields the top
values. Each statistic is given overall (stratum ``*``) and per stratum, next to the
design-weighted population estimates (:mod:`timetravel.quality.estimates`) of the mean, the
quantiles and each top value's share: the sample's plain figures lean toward the strata the
allocation over-sampled, the weighted ones do not.

Per source, one Spark aggregation over the strata (with each stratum's percentiles, which the
weighted quantiles are read from), one over the whole sample (distinct counts and quantiles do
not add up) and one for the histograms; per categorical field, one for its top values. The
rows and the checks' verdicts are appended to the Delta tables ``quality/stats`` and
``quality/checks`` (one commit per attempt, tagged with the run id), and the runs index gets a
``quality`` stage pointing at both versions.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from timetravel.collect.selection import read_context_set
from timetravel.config import Config
from timetravel.errors import RunNotFoundError, describe_error
from timetravel.quality.checks import STAGE_STATUS, CheckResult, SourceFacts, evaluate, worst
from timetravel.quality.estimates import (
    StratumDistribution,
    StratumMoments,
    proportion_moments,
    stratified_mean,
    stratified_quantiles,
)
from timetravel.times import from_micros
from timetravel.warehouse.layout import QUALITY_CHECKS_TABLE, QUALITY_STATS_TABLE, facts_table
from timetravel.warehouse.runs import RunInfo, RunsIndex
from timetravel.warehouse.store import Txn

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from timetravel.warehouse.store import DeltaStore

__all__ = [
    "FieldStats",
    "QualityResult",
    "profile_run",
    "read_quality",
    "latest_before",
    "snapshotted",
    "OVERALL",
    "QUALITY_STAGE",
]

OVERALL = "*"  # the stratum of a whole-sample row
QUALITY_STAGE = "quality"
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
# Each stratum's percentiles: the weighted quantiles interpolate between them (QUANTILES are
# among them, so the per-stratum quantiles come from the same sketch).
_GRID = tuple(j / 100 for j in range(101))
TOP_K = 10
HISTOGRAM_BINS = 20
# Columns every facts table has that are bookkeeping, not a source's fields.
_BOOKKEEPING = {"snapshot_time", "run_id", "written_at", "snapshot_date"}
_MAX_CATEGORIES = 1000
_NUMERIC = {"tinyint", "smallint", "int", "bigint", "float", "double", "boolean"}


@dataclass(frozen=True)
class FieldStats:
    """One field of one source in one stratum (or overall) of one run."""

    source: str
    field: str
    stratum: str
    kind: str  # numeric | categorical | other
    contexts: int  # sampled contexts
    facts: int  # of those, with a fact from the source
    missing: int  # without one (failed fetch)
    nulls: int  # with a fact whose field is null
    null_rate: float  # (missing + nulls) / contexts
    distinct: int | None
    min: float | None
    max: float | None
    mean: float | None
    std: float | None
    quantiles: list[float] | None  # at QUANTILES
    # [{"value": text, "count": n, "share": of the known values, "weighted_share": the
    # population estimate, "weighted_se": its standard error}], overall only
    top_values: list[dict[str, Any]] | None
    population: float  # contexts in the population the rows stand for (sum of weights)
    weighted_mean: float | None  # the population estimate
    weighted_se: float | None
    weighted_quantiles: list[float] | None = None  # at QUANTILES, population estimates
    weighted_quantiles_se: list[float] | None = None  # Woodruff standard errors
    # HISTOGRAM_BINS equal bins from min to max, overall only: [{"low", "high", "count",
    # "weighted": the population estimate of the count}]
    histogram: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class QualityResult:
    run_id: str
    stats: list[FieldStats]
    version: int | None
    checks: list[CheckResult] = field(default_factory=list)
    status: str = "ok"  # the stage's: ok | warn | failed (the worst check)

    def overall(self, source: str, field: str) -> FieldStats:
        return next(
            s for s in self.stats if (s.source, s.field, s.stratum) == (source, field, OVERALL)
        )


def profile_run(store: DeltaStore, config: Config, run_id: str) -> QualityResult:
    """Compute, store and index the quality statistics of ``run_id``'s facts."""
    from pyspark.sql import functions as F

    runs = RunsIndex(store.config, spark=store.spark)
    run = runs.get(run_id)
    snapshot = run.stages.get("snapshot")
    if snapshot is None or not snapshotted(run):
        raise RunNotFoundError(f"run {run_id!r} has no completed snapshot to check")
    listed = runs.list()
    baselines = _baselines(runs, listed, run, config)  # a missing reference run fails first
    runs.record(run_id, run.run_time, QUALITY_STAGE, "running")
    entity = list(config.selection.entity)
    try:
        contexts = read_context_set(store, run_id).select(*entity, "stratum", "design_weight")
        stats: list[FieldStats] = []
        measured: dict[str, SourceFacts] = {}
        for source in config.snapshot.sources:
            table = facts_table(source.name)
            version = snapshot.table_versions.get(table)
            if version is None:
                continue
            facts = store.read(table, version=version).where(F.col("run_id") == run_id)
            fields = _profile_source(source.name, contexts, facts, entity)
            stats += fields
            allowed = {
                c.field: c.allowed_values
                for c in config.quality.checks
                if c.source == source.name and c.field and c.allowed_values is not None
            }
            measured[source.name] = _measure(source.name, facts, fields, entity, allowed)
        overall = {
            (s.source, s.field): (s.null_rate, s.min, s.max) for s in stats if s.stratum == OVERALL
        }
        checks = evaluate(
            config.quality, measured, overall, run.run_time, _previous_fields(listed, run)
        )
        checks += _drift_checks(store, config, run_id, snapshot.table_versions, baselines)
        versions = _write(store, run_id, stats, checks)
    except BaseException as exc:
        runs.record(
            run_id, run.run_time, QUALITY_STAGE, "failed", details={"error": describe_error(exc)}
        )
        raise
    verdict = worst(checks)
    counts = {
        status: sum(c.status == status for c in checks) for status in ("pass", "warn", "fail")
    }
    runs.record(
        run_id,
        run.run_time,
        QUALITY_STAGE,
        STAGE_STATUS[verdict],
        details={
            "checks": counts,
            "failed": [
                f"{c.source}.{c.field or '*'}: {c.check}" for c in checks if c.status == "fail"
            ],
            "fields": {name: m.fields for name, m in measured.items()},
        },
        table_versions=versions,
    )
    return QualityResult(
        run_id, stats, versions.get(QUALITY_STATS_TABLE), checks, STAGE_STATUS[verdict]
    )


def _measure(
    source: str,
    facts: DataFrame,
    fields: list[FieldStats],
    entity: list[str],
    allowed: dict[str, list[str]],
) -> SourceFacts:
    """Rows, the oldest snapshot time and values outside an allowed set, in one pass."""
    from pyspark.sql import functions as F

    outside = [
        F.sum(
            F.when(
                F.col(f"`{name}`").isNotNull() & ~F.col(f"`{name}`").cast("string").isin(values),
                1,
            ).otherwise(0)
        ).alias(f"o{i}")
        for i, (name, values) in enumerate(allowed.items())
    ]
    row = facts.agg(
        # As micros: a collected timestamp would come back naive, in this process's zone.
        F.count(F.lit(1)).alias("rows"),
        F.unix_micros(F.min("snapshot_time")).alias("oldest"),
        *outside,
    ).collect()[0]
    whole = next((f for f in fields if f.stratum == OVERALL), None)
    return SourceFacts(
        source,
        whole.contexts if whole else 0,
        whole.facts if whole else 0,
        int(row["rows"]),
        from_micros(row["oldest"]) if row["oldest"] is not None else None,
        _source_fields(facts, entity),
        {name: int(row[f"o{i}"] or 0) for i, name in enumerate(allowed)},
    )


def _baselines(
    runs: RunsIndex, listed: list[RunInfo], run: RunInfo, config: Config
) -> dict[str, RunInfo]:
    """The runs drift is measured against: the latest earlier snapshotted run ("previous")
    and ``quality.reference_run`` ("reference")."""
    baselines = {}
    previous = latest_before(listed, run, snapshotted)
    if previous is not None:
        baselines["previous"] = previous
    reference = config.quality.reference_run
    if reference is not None and any(c.max_drift for c in config.quality.checks):
        pinned = runs.get(reference)  # RunNotFoundError names it
        if not snapshotted(pinned):
            raise RunNotFoundError(
                f"quality.reference_run {reference!r} has no completed snapshot to compare with"
            )
        baselines["reference"] = pinned
    return baselines


def _drift_checks(
    store: DeltaStore,
    config: Config,
    run_id: str,
    versions: dict[str, int],
    baselines: dict[str, RunInfo],
) -> list[CheckResult]:
    """Each ``max_drift`` check against each baseline run, measured with Spark."""
    from pyspark.sql import functions as F

    from timetravel.quality.checks import judge

    results = []
    for check in config.quality.checks:
        if check.max_drift is None or check.field is None:
            continue
        table = facts_table(check.source)
        if table not in versions:
            continue
        current = store.read(table, version=versions[table]).where(F.col("run_id") == run_id)
        for which, baseline_run in sorted(baselines.items()):
            pinned = baseline_run.stages["snapshot"].table_versions.get(table)
            if pinned is None:
                continue
            baseline = store.read(table, version=pinned).where(
                F.col("run_id") == baseline_run.run_id
            )
            value = _drift(current, baseline, check.field)
            if value is None:
                continue
            judged = judge(check.source, check.field, f"drift_{which}", value, check.max_drift)
            results.append(
                replace(judged, expected=f"{judged.expected} (vs {baseline_run.run_id})")
            )
    return results


def _drift(current: DataFrame, baseline: DataFrame, name: str) -> float | None:
    from pyspark.sql import functions as F

    from timetravel.quality.drift import js_distance, psi

    column = F.col(f"`{name}`")
    kind = current.schema[name].dataType.simpleString()
    if _is_numeric(kind):
        value = column.cast("double")
        deciles = baseline.agg(
            F.percentile_approx(value, [i / 10 for i in range(1, 10)]).alias("q")
        ).collect()[0]["q"]
        if not deciles:
            return None
        edges = sorted(set(float(e) for e in deciles))
        bin_of = sum((F.when(value >= e, 1).otherwise(0) for e in edges), F.lit(0))

        def counts(frame: DataFrame) -> list[float]:
            found = {
                r["b"]: r["n"]
                for r in frame.where(column.isNotNull())
                .groupBy(bin_of.alias("b"))
                .agg(F.count(F.lit(1)).alias("n"))
                .collect()
            }
            return [float(found.get(i, 0)) for i in range(len(edges) + 1)]

        before, now = counts(baseline), counts(current)
        if not sum(before) or not sum(now):
            return None  # nothing to compare: the null rate check speaks for an empty field
        return psi(before, now)
    if kind in ("string", "boolean"):

        def frequencies(frame: DataFrame) -> dict[str, float]:
            known = frame.where(column.isNotNull())
            rows = (
                known.groupBy(column.cast("string").alias("v"))
                .agg(F.count(F.lit(1)).alias("n"))
                .orderBy(F.desc("n"), F.asc("v"))
                .limit(_MAX_CATEGORIES)  # a high-cardinality field: the rest in one bucket
                .collect()
            )
            found = {r["v"]: float(r["n"]) for r in rows}
            rest = known.count() - sum(found.values()) if len(rows) == _MAX_CATEGORIES else 0
            return found | ({"\x00other": float(rest)} if rest else {})

        before_freq, now_freq = frequencies(baseline), frequencies(current)
        if not before_freq or not now_freq:
            return None
        return js_distance(before_freq, now_freq)
    return None


def _previous_fields(listed: list[RunInfo], run: RunInfo) -> dict[str, dict[str, str]] | None:
    """The fields per source the latest earlier run's quality stage saw, if any."""
    latest = latest_before(
        listed,
        run,
        lambda r: (
            r.status(QUALITY_STAGE) in ("ok", "warn", "failed")
            and bool(r.stages[QUALITY_STAGE].details.get("fields"))
        ),
    )
    if latest is None:
        return None
    fields: dict[str, dict[str, str]] = latest.stages[QUALITY_STAGE].details["fields"]
    return fields


def read_quality(config: Config, run_id: str) -> QualityResult:
    """The statistics the run's quality stage stored (its latest attempt), read by delta-rs."""
    from timetravel.warehouse.deltars import query_table, sql_text

    record = RunsIndex(config).get(run_id).stages.get(QUALITY_STAGE)
    if record is None or record.status not in ("ok", "warn", "failed"):
        raise RunNotFoundError(f"run {run_id!r} has no completed quality stage")
    if QUALITY_STATS_TABLE not in record.table_versions:
        raise RunNotFoundError(f"run {run_id!r}: its quality stage failed before writing")
    version = record.table_versions[QUALITY_STATS_TABLE]
    mine = query_table(
        config, QUALITY_STATS_TABLE, version=version, where=f"run_id = {sql_text(run_id)}"
    ).to_pylist()
    latest = max(r["computed_at"] for r in mine)
    stats = [_stored_field_stats(r) for r in mine if r["computed_at"] == latest]
    checks = []
    if QUALITY_CHECKS_TABLE in record.table_versions:
        stored = query_table(
            config,
            QUALITY_CHECKS_TABLE,
            version=record.table_versions[QUALITY_CHECKS_TABLE],
            where=f"run_id = {sql_text(run_id)}",
        ).to_pylist()
        keys = list(CheckResult.__dataclass_fields__)
        checks = [
            CheckResult(**{k: r[k] for k in keys}) for r in stored if r["computed_at"] == latest
        ]
    return QualityResult(run_id, stats, version, checks, record.status)


# The fields of each top value, as written and as read back (value text, count long, the
# rest doubles).
_TOP_VALUE_KEYS = ("value", "count", "share", "weighted_share", "weighted_se")


def _stored_field_stats(row: dict[str, Any]) -> FieldStats:
    """A stored row as FieldStats; a row written before a statistic existed leaves it None."""
    found = {n: row[n] for n in FieldStats.__dataclass_fields__ if n in row}
    if found.get("top_values"):
        found["top_values"] = [{k: v.get(k) for k in _TOP_VALUE_KEYS} for v in found["top_values"]]
    return FieldStats(**found)


def _profile_source(
    source: str, contexts: DataFrame, facts: DataFrame, entity: list[str]
) -> list[FieldStats]:
    from pyspark.sql import functions as F

    fields = list(_source_fields(facts, entity).items())
    marked = facts.select(*entity, *(f for f, _ in fields), F.lit(True).alias("_fact"))
    joined = contexts.join(marked, entity, "left")
    aggs = [
        F.count(F.lit(1)).alias("_n"),
        F.sum("design_weight").alias("_N"),
        F.count("_fact").alias("_facts"),
    ]
    # Distinct counts and quantiles do not add up across strata: also over all rows at once.
    whole_aggs = []
    for i, (name, kind) in enumerate(fields):
        column = F.col(f"`{name}`")
        aggs.append(F.count(column).alias(f"k{i}"))
        if _is_numeric(kind):
            value = column.cast("double")
            aggs += [
                F.min(value).alias(f"lo{i}"),
                F.max(value).alias(f"hi{i}"),
                F.avg(value).alias(f"m{i}"),
                F.var_samp(value).alias(f"v{i}"),
                F.approx_count_distinct(column).alias(f"d{i}"),
                F.percentile_approx(value, list(_GRID)).alias(f"g{i}"),
            ]
            whole_aggs += [
                F.approx_count_distinct(column).alias(f"d{i}"),
                F.percentile_approx(value, list(QUANTILES)).alias(f"q{i}"),
            ]
        elif kind == "string":
            aggs.append(F.approx_count_distinct(column).alias(f"d{i}"))
            whole_aggs.append(F.approx_count_distinct(column).alias(f"d{i}"))
    joined = joined.cache()
    try:
        strata = {r["stratum"]: r for r in joined.groupBy("stratum").agg(*aggs).collect()}
        whole = joined.agg(*whole_aggs).collect()[0] if whole_aggs else None
        numeric = [(i, name) for i, (name, kind) in enumerate(fields) if _is_numeric(kind)]
        histograms = _histograms(joined, numeric, strata)
        out: list[FieldStats] = []
        for i, (name, kind) in enumerate(fields):
            category = (
                "numeric" if _is_numeric(kind) else "categorical" if kind == "string" else "other"
            )
            per_stratum = [
                _stratum_stats(source, name, category, key, row, i)
                for key, row in sorted(strata.items())
            ]
            out += per_stratum
            top = _top_values(joined, name, strata, i) if category == "categorical" else None
            overall = _overall(source, name, category, per_stratum, strata, whole, i, top)
            out.append(replace(overall, histogram=histograms.get(i)))
    finally:
        joined.unpersist()
    return out


def _stratum_stats(source: str, name: str, kind: str, key: str, row: Any, i: int) -> FieldStats:
    n, known, facts = int(row["_n"]), int(row[f"k{i}"]), int(row["_facts"])
    population = float(row["_N"] or 0.0)
    numeric = kind == "numeric"
    mean = _num(row[f"m{i}"]) if numeric else None
    variance = _num(row[f"v{i}"]) if numeric else None
    se = None
    if numeric and known > 0 and population > 0:
        fpc = max(0.0, 1.0 - known / population)
        se = math.sqrt(fpc * (variance or 0.0) / known)
    grid = _grid(row, i) if numeric else None
    weighted = _weighted_quantiles([(str(key), population, known, grid)])
    return FieldStats(
        source,
        name,
        str(key),
        kind,
        n,
        facts,
        n - facts,
        facts - known,
        (n - known) / n if n else 0.0,
        int(row[f"d{i}"]) if kind != "other" and row[f"d{i}"] is not None else None,
        _num(row[f"lo{i}"]) if numeric else None,
        _num(row[f"hi{i}"]) if numeric else None,
        mean,
        math.sqrt(variance) if variance is not None else None,
        [grid[round(q * 100)] for q in QUANTILES] if grid else None,
        None,
        population,
        mean,
        se,
        *weighted,
    )


def _overall(
    source: str,
    name: str,
    kind: str,
    per_stratum: list[FieldStats],
    rows: dict[str, Any],
    whole: Any,
    i: int,
    top: list[dict[str, Any]] | None,
) -> FieldStats:
    """The whole sample: counts summed, the plain mean and spread pooled from the strata's,
    and the stratified population estimate."""
    parts = [(s, int(rows[s.stratum][f"k{i}"])) for s in per_stratum]
    n = sum(s.contexts for s in per_stratum)
    facts = sum(s.facts for s in per_stratum)
    known = sum(k for _, k in parts)
    population = sum(s.population for s in per_stratum)
    mean = std = low = high = None
    estimate = None
    quantiles = None
    weighted: tuple[list[float] | None, list[float] | None] = (None, None)
    if kind == "numeric" and known:
        mean = sum(s.mean * k for s, k in parts if s.mean is not None) / known
        # Pooled variance: the spread within strata plus the spread of the strata's means.
        squares = sum(
            (k - 1) * (s.std or 0.0) ** 2 + k * (s.mean - mean) ** 2
            for s, k in parts
            if s.mean is not None
        )
        std = math.sqrt(squares / (known - 1)) if known > 1 else None
        low = min(s.min for s in per_stratum if s.min is not None)
        high = max(s.max for s in per_stratum if s.max is not None)
        quantiles = [float(q) for q in whole[f"q{i}"]] if whole and whole[f"q{i}"] else None
        estimate = stratified_mean(
            StratumMoments(s.stratum, s.population, k, s.mean, s.std**2 if s.std else None)
            for s, k in parts
        )
        weighted = _weighted_quantiles(
            [(s.stratum, s.population, k, _grid(rows[s.stratum], i)) for s, k in parts]
        )
    distinct = whole[f"d{i}"] if kind != "other" and whole is not None else None
    return FieldStats(
        source,
        name,
        OVERALL,
        kind,
        n,
        facts,
        n - facts,
        facts - known,
        (n - known) / n if n else 0.0,
        int(distinct) if distinct is not None else None,
        low,
        high,
        mean,
        std,
        quantiles,
        top,
        population,
        estimate.mean if estimate else None,
        estimate.se if estimate else None,
        *weighted,
    )


def _grid(row: Any, i: int) -> list[float] | None:
    """A stratum's percentiles of field ``i`` (None when it has no value)."""
    found = row[f"g{i}"]
    return [float(v) for v in found] if found else None


def _weighted_quantiles(
    strata: list[tuple[str, float, int, list[float] | None]],
) -> tuple[list[float] | None, list[float] | None]:
    """Population estimates at QUANTILES and their standard errors, from (stratum, N_h, m_h,
    percentiles) of each stratum."""
    estimates = stratified_quantiles(
        (
            StratumDistribution(key, population, known, grid or [])
            for key, population, known, grid in strata
        ),
        QUANTILES,
    )
    if estimates is None:
        return None, None
    return [e.mean for e in estimates], [e.se for e in estimates]


def _histograms(
    joined: DataFrame, numeric: list[tuple[int, str]], strata: dict[str, Any]
) -> dict[int, list[dict[str, Any]]]:
    """Per numeric field (by index), HISTOGRAM_BINS equal bins between its overall min and
    max, with sample counts and design-weighted counts, in one pass over all fields."""
    from pyspark.sql import functions as F

    ranges = {}
    for i, _ in numeric:
        lows = [r[f"lo{i}"] for r in strata.values() if r[f"lo{i}"] is not None]
        highs = [r[f"hi{i}"] for r in strata.values() if r[f"hi{i}"] is not None]
        if lows:
            ranges[i] = (float(min(lows)), float(max(highs)))
    if not ranges:
        return {}
    aggs = []
    for i, name in numeric:
        if i not in ranges:
            continue
        low, high = ranges[i]
        value = F.col(f"`{name}`").cast("double")
        width = (high - low) / HISTOGRAM_BINS or 1.0  # a constant field: all in the first bin
        # The maximum belongs to the last bin, not to one past it.
        bin_of = F.least(F.floor((value - low) / width), F.lit(HISTOGRAM_BINS - 1))
        for b in range(HISTOGRAM_BINS):
            hit = value.isNotNull() & (bin_of == b)
            aggs += [
                F.sum(F.when(hit, 1).otherwise(0)).alias(f"h{i}_{b}"),
                F.sum(F.when(hit, F.col("design_weight")).otherwise(0.0)).alias(f"w{i}_{b}"),
            ]
    row = joined.agg(*aggs).collect()[0]
    out = {}
    for i, (low, high) in ranges.items():
        width = (high - low) / HISTOGRAM_BINS
        out[i] = [
            {
                "low": low + b * width,
                "high": high if b == HISTOGRAM_BINS - 1 else low + (b + 1) * width,
                "count": int(row[f"h{i}_{b}"]),
                "weighted": float(row[f"w{i}_{b}"]),
            }
            for b in range(HISTOGRAM_BINS)
        ]
    return out


def _top_values(
    joined: DataFrame, name: str, strata: dict[str, Any], i: int
) -> list[dict[str, Any]]:
    """The TOP_K most frequent values, each with its sample share and the design-weighted
    estimate of its population share (from its count in each stratum)."""
    from pyspark.sql import functions as F

    column = F.col(f"`{name}`")
    known = joined.where(column.isNotNull())
    rows = (
        known.groupBy(column.alias("value"))
        .count()
        .orderBy(F.desc("count"), F.asc("value"))
        .limit(TOP_K)
        .collect()
    )
    top = [r["value"] for r in rows]
    per_stratum = {
        (r["stratum"], r["value"]): int(r["count"])
        for r in known.where(column.isin(top))
        .groupBy("stratum", column.alias("value"))
        .count()
        .collect()
    }
    total = sum(int(r[f"k{i}"]) for r in strata.values())
    out = []
    for r in rows:
        estimate = stratified_mean(
            proportion_moments(
                key,
                float(row["_N"] or 0.0),
                per_stratum.get((key, r["value"]), 0),
                int(row[f"k{i}"]),
            )
            for key, row in strata.items()
        )
        out.append(
            {
                "value": str(r["value"]),
                "count": int(r["count"]),
                "share": int(r["count"]) / total,
                "weighted_share": estimate.mean if estimate else None,
                "weighted_se": estimate.se if estimate else None,
            }
        )
    return out


def _write(
    store: DeltaStore, run_id: str, stats: list[FieldStats], checks: list[CheckResult]
) -> dict[str, int]:
    """Append both tables (statistics, then checks), one commit each tagged with the run."""
    from pyspark.sql import types as T

    now = datetime.now(UTC)
    versions: dict[str, int] = {}
    kinds = {"value": T.StringType(), "count": T.LongType()}
    top_value_types = {k: kinds.get(k, T.DoubleType()) for k in _TOP_VALUE_KEYS}
    stats_schema = T.StructType(
        [
            T.StructField("run_id", T.StringType()),
            T.StructField("computed_at", T.TimestampType()),
            T.StructField("source", T.StringType()),
            T.StructField("field", T.StringType()),
            T.StructField("stratum", T.StringType()),
            T.StructField("kind", T.StringType()),
            T.StructField("contexts", T.LongType()),
            T.StructField("facts", T.LongType()),
            T.StructField("missing", T.LongType()),
            T.StructField("nulls", T.LongType()),
            T.StructField("null_rate", T.DoubleType()),
            T.StructField("distinct", T.LongType()),
            T.StructField("min", T.DoubleType()),
            T.StructField("max", T.DoubleType()),
            T.StructField("mean", T.DoubleType()),
            T.StructField("std", T.DoubleType()),
            T.StructField("quantiles", T.ArrayType(T.DoubleType())),
            T.StructField(
                "top_values",
                T.ArrayType(
                    T.StructType([T.StructField(k, t) for k, t in top_value_types.items()])
                ),
            ),
            T.StructField("population", T.DoubleType()),
            T.StructField("weighted_mean", T.DoubleType()),
            T.StructField("weighted_se", T.DoubleType()),
            T.StructField("weighted_quantiles", T.ArrayType(T.DoubleType())),
            T.StructField("weighted_quantiles_se", T.ArrayType(T.DoubleType())),
            T.StructField(
                "histogram",
                T.ArrayType(
                    T.StructType(
                        [
                            T.StructField(n, T.LongType() if n == "count" else T.DoubleType())
                            for n in ("low", "high", "count", "weighted")
                        ]
                    )
                ),
            ),
        ]
    )
    checks_schema = T.StructType(
        [
            T.StructField("run_id", T.StringType()),
            T.StructField("computed_at", T.TimestampType()),
            T.StructField("source", T.StringType()),
            T.StructField("field", T.StringType()),
            T.StructField("check", T.StringType()),
            T.StructField("status", T.StringType()),
            T.StructField("value", T.DoubleType()),
            T.StructField("expected", T.StringType()),
        ]
    )
    for table, schema, items, what in (
        (QUALITY_STATS_TABLE, stats_schema, stats, "per-field statistics of each run's facts"),
        (QUALITY_CHECKS_TABLE, checks_schema, checks, "every quality check of each run"),
    ):
        if not items:
            continue
        rows = [{"run_id": run_id, "computed_at": now, **asdict(item)} for item in items]
        for row in rows:
            if row.get("value") is not None:
                row["value"] = float(row["value"])
        frame = store.spark.createDataFrame(rows, schema)
        store.create(table, schema, comment=what)
        attempt = len(store.versions_tagged(table, run_id))
        # A re-run appends a newer set; readers take the run's latest computed_at.
        # merge_schema: a table written before a statistic was added takes the new column.
        version = store.append(
            table,
            frame,
            user_metadata=run_id,
            txn=Txn(f"quality:{run_id}:{table}", attempt),
            merge_schema=True,
        )
        if version is not None:
            versions[table] = version
    return versions


def _is_numeric(kind: str) -> bool:
    """Spark's simple type string names a type the statistics treat as a number."""
    return kind in _NUMERIC or kind.startswith("decimal")


def _source_fields(facts: DataFrame, entity: list[str]) -> dict[str, str]:
    """A source's fields in its facts (name -> Spark type), without keys and bookkeeping."""
    return {
        f.name: f.dataType.simpleString()
        for f in facts.schema.fields
        if f.name not in _BOOKKEEPING and f.name not in entity
    }


def latest_before(
    runs: list[RunInfo], run: RunInfo, keep: Callable[[RunInfo], bool]
) -> RunInfo | None:
    """The latest run before ``run`` that ``keep`` accepts, or None."""
    earlier = [r for r in runs if r.run_time < run.run_time and keep(r)]
    return max(earlier, key=lambda r: r.run_time) if earlier else None


def snapshotted(run: RunInfo) -> bool:
    """The run's snapshot completed (ok, or partial): its facts can be compared with."""
    return run.status("snapshot") in ("ok", "partial")


def _num(value: Any) -> float | None:
    return None if value is None else float(value)
