"""Stratified sampling: strata from conf, exact allocation, SRS without replacement per stratum.

Design, per stratum ``h`` with population ``N_h`` and allocated size ``n_h``:

- Units are ordered by a keyed hash of ``(seed, salt, entity key)`` and the first ``n_h``
  are taken: a simple random sample without replacement of exactly ``n_h`` (not Bernoulli's
  approximate count). The salt is the run time, so a new run time draws a fresh sample and
  the same (seed, run time, population) draws the same one.
- Inclusion probability ``n_h / N_h``; design weight ``N_h / n_h``; the weights of a stratum
  sum to ``N_h``.
- **Panel**: with the previous run's sample ``P_h`` (those still in stratum ``h``), keep
  ``r_h = round(f * |P_h|)`` of them by SRS and draw ``n_h - r_h`` fresh units by SRS from the
  other ``N_h - |P_h|``. Conditional on the previous sample the inclusion probabilities are
  ``r_h / |P_h|`` and ``(n_h - r_h) / (N_h - |P_h|)``: still exact, and the weights still sum
  to ``N_h``. Where that would give some units probability zero, the stratum falls back to
  plain SRS (and says so).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from timetravel.config import Allocation, Stratum
from timetravel.errors import SelectionError

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

__all__ = [
    "StratumPlan",
    "allocate",
    "stratum_column",
    "resolve_cuts",
    "draw_sample",
    "mark_previous",
    "count_strata",
    "StrataCounts",
    "NULL_LABEL",
    "KEY_SEPARATOR",
]

NULL_LABEL = "<null>"
KEY_SEPARATOR = "|"


@dataclass(frozen=True)
class StratumPlan:
    """The allocation of one stratum."""

    key: str
    population: int
    target: int
    sample: int
    capped: bool = False  # target > population: all units taken

    @property
    def probability(self) -> float:
        return self.sample / self.population if self.population else 0.0


@dataclass(frozen=True)
class Allocated:
    """Allocation of every stratum, and what the user should hear about it."""

    plans: dict[str, StratumPlan]
    warnings: list[str] = field(default_factory=list)


def allocate(sizes: Mapping[str, int], allocation: Allocation) -> Allocated:
    """Exact per-stratum sample sizes for ``sizes`` (stratum key -> population count)."""
    warnings: list[str] = []
    keys = sorted(k for k, n in sizes.items() if n > 0)
    if not keys:
        raise SelectionError("the population is empty: nothing to sample")
    total = sum(sizes[k] for k in keys)
    if allocation.method == "proportional":
        assert allocation.sample_size is not None
        targets = _largest_remainder({k: allocation.sample_size * sizes[k] / total for k in keys})
    elif allocation.method == "equal":
        assert allocation.sample_size is not None
        targets = _largest_remainder({k: allocation.sample_size / len(keys) for k in keys})
    else:
        named = set(allocation.targets) | set(allocation.fractions)
        for key in sorted(named - set(keys)):
            warnings.append(
                f"stratum {key!r} named in the allocation is empty in this "
                "population: nothing to sample there"
            )
        targets = {}
        for k in keys:
            if k in allocation.targets:
                targets[k] = allocation.targets[k]
            elif k in allocation.fractions:
                targets[k] = math.floor(allocation.fractions[k] * sizes[k] + 0.5)
            else:
                targets[k] = 0
    plans: dict[str, StratumPlan] = {}
    for k in keys:
        wanted = max(targets[k], allocation.min_per_stratum)
        capped = wanted > sizes[k]
        if capped:
            warnings.append(
                f"stratum {k!r}: target {wanted} exceeds its population "
                f"{sizes[k]}; taking all {sizes[k]}"
            )
        plans[k] = StratumPlan(k, sizes[k], wanted, min(wanted, sizes[k]), capped)
    return Allocated(plans, warnings)


def _largest_remainder(quotas: Mapping[str, float]) -> dict[str, int]:
    """Integers summing to round(sum(quotas)), each the floor or ceiling of its quota."""
    floors = {k: math.floor(q) for k, q in quotas.items()}
    left = round(sum(quotas.values())) - sum(floors.values())
    # Deterministic: biggest remainder first, ties by key.
    for k in sorted(quotas, key=lambda k: (-(quotas[k] - floors[k]), k))[:left]:
        floors[k] += 1
    return floors


def resolve_cuts(population: DataFrame, strata: Sequence[Stratum]) -> dict[str, list[float]]:
    """The cut points of every bucketed stratum (quantiles computed exactly on ``population``)."""
    cuts: dict[str, list[float]] = {}
    for stratum in strata:
        if stratum.buckets is None:
            continue
        if stratum.buckets.thresholds is not None:
            cuts[stratum.label] = list(stratum.buckets.thresholds)
        else:
            assert stratum.buckets.quantiles is not None
            cuts[stratum.label] = population.approxQuantile(
                stratum.column, list(stratum.buckets.quantiles), 0.0
            )
    return cuts


def stratum_column(strata: Sequence[Stratum], cuts: Mapping[str, list[float]]) -> Column:
    """The stratum key, e.g. 'NA|tv|high'. A value below the first cut is the first bucket;
    a value equal to a cut belongs to the bucket above it. Nulls are labelled '<null>'."""
    from pyspark.sql import functions as F

    if not strata:
        return F.lit("all")
    parts = []
    for stratum in strata:
        value = F.col(stratum.column)
        if stratum.buckets is not None:
            labels = stratum.buckets.labels
            expr = F.when(value.isNull(), F.lit(NULL_LABEL))
            for cut, label in zip(cuts[stratum.label], labels[:-1], strict=True):
                expr = expr.when(value < F.lit(cut), F.lit(label))
            part = expr.otherwise(F.lit(labels[-1]))
        else:
            part = F.coalesce(value.cast("string"), F.lit(NULL_LABEL))
        parts.append(part)
    return F.concat_ws(KEY_SEPARATOR, *parts)


def check_columns(population: DataFrame, strata: Sequence[Stratum], entity: Sequence[str]) -> None:
    """Fail with the known columns if a stratum or entity column is missing."""
    known = population.columns
    for name, kind in [*((s.column, "strata") for s in strata), *((e, "entity") for e in entity)]:
        if name not in known:
            raise SelectionError(
                f"unknown {kind} column {name!r}; population columns: {', '.join(known)}"
            )


def random_key(seed: int, salt: str, entity: Sequence[str]) -> Column:
    """A keyed pseudo-random 64-bit value per unit: ordering by it is a uniform permutation."""
    from pyspark.sql import functions as F

    return F.xxhash64(F.lit(seed), F.lit(salt), *(F.col(c) for c in entity))


@dataclass(frozen=True)
class StrataCounts:
    """Per stratum: how many units the population holds, and how many of them the previous
    run's sample held (only strata with some; empty without a previous sample)."""

    sizes: dict[str, int]
    in_previous: dict[str, int]


def mark_previous(
    population: DataFrame, previous: DataFrame | None, entity: Sequence[str]
) -> DataFrame:
    """``population`` with a boolean ``_prev``: the unit is in ``previous`` (the previous
    run's entity keys); False everywhere without one."""
    from pyspark.sql import functions as F

    if previous is None:
        return population.withColumn("_prev", F.lit(False))
    marked = population.join(
        previous.select(*entity).distinct().withColumn("_prev", F.lit(True)),
        list(entity),
        "left",
    )
    return marked.withColumn("_prev", F.coalesce(F.col("_prev"), F.lit(False)))


def count_strata(marked: DataFrame) -> StrataCounts:
    """The sizes and previous-sample counts of every stratum of ``marked`` (a ``stratum`` and
    a ``_prev`` column), in one query: each Spark action costs about a second of planning and
    scheduling, more than counting a cached population does."""
    from pyspark.sql import functions as F

    rows = (
        marked.groupBy("stratum")
        .agg(
            F.count(F.lit(1)).alias("n"),
            F.sum(F.col("_prev").cast("long")).alias("in_previous"),
        )
        .collect()
    )
    return StrataCounts(
        sizes={r["stratum"]: int(r["n"]) for r in rows},
        in_previous={r["stratum"]: int(r["in_previous"]) for r in rows if r["in_previous"]},
    )


def draw_sample(
    population: DataFrame,
    plans: Mapping[str, StratumPlan],
    *,
    entity: Sequence[str],
    seed: int,
    salt: str,
    in_previous: Mapping[str, int] | None = None,
    panel_fraction: float | None = None,
) -> tuple[DataFrame, list[str]]:
    """Sample ``population`` (with a ``stratum`` column) per ``plans``.

    For the panel, ``population`` carries :func:`mark_previous`'s ``_prev`` column and
    ``in_previous`` its per-stratum counts (:func:`count_strata`). Returns the sample (entity
    columns, stratum, inclusion_probability, design_weight, panel) and warnings.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    spark = population.sparkSession
    warnings: list[str] = []
    prev_counts: Mapping[str, int] = {}  # stays empty without a panel: plain SRS
    if in_previous is None or panel_fraction is None:
        marked = population.withColumn("_prev", F.lit(False))
    elif "_prev" in population.columns:
        marked, prev_counts = population, in_previous
    else:
        raise SelectionError("a panel sample needs the population marked by mark_previous")

    rows = []
    for key, plan in plans.items():
        in_prev = prev_counts.get(key, 0)
        fresh_pool = plan.population - in_prev
        keep = min(math.floor((panel_fraction or 0) * in_prev + 0.5), plan.sample)
        fresh = min(plan.sample - keep, fresh_pool)
        keep = min(plan.sample - fresh, in_prev)
        if in_prev and (keep == 0 or (fresh == 0 and fresh_pool)):
            warnings.append(
                f"stratum {key!r}: panel not applied (it would give "
                f"{'previous' if keep == 0 else 'new'} units zero inclusion "
                "probability); plain SRS instead"
            )
            in_prev = 0
        if not in_prev:
            rows.append((key, False, plan.sample, plan.population))
            rows.append((key, True, 0, 0))
        else:
            rows.append((key, True, keep, in_prev))
            rows.append((key, False, fresh, fresh_pool))
    plan_df = spark.createDataFrame(
        rows, "stratum string, _group_prev boolean, _take long, _pool long"
    )
    merged_prev = {k for k, prev, take, pool in rows if prev and pool > 0}
    # Strata where the panel did not apply are one group: previous units count as fresh.
    in_panel_stratum = F.col("stratum").isin(sorted(merged_prev)) if merged_prev else F.lit(False)
    grouped = marked.withColumn("_group_prev", F.col("_prev") & in_panel_stratum)
    ranked = grouped.withColumn(
        "_rand",
        F.when(F.col("_group_prev"), random_key(seed, "panel|" + salt, entity)).otherwise(
            random_key(seed, salt, entity)
        ),
    )
    window = Window.partitionBy("stratum", "_group_prev").orderBy("_rand", *entity)
    sample = (
        ranked.join(F.broadcast(plan_df), ["stratum", "_group_prev"])
        .withColumn("_rank", F.row_number().over(window))
        .where(F.col("_rank") <= F.col("_take"))
        .withColumn("inclusion_probability", F.col("_take") / F.col("_pool"))
        .withColumn("design_weight", F.col("_pool") / F.col("_take"))
        .select(
            *entity,
            "stratum",
            "inclusion_probability",
            "design_weight",
            F.col("_prev").alias("panel"),
        )
    )
    return sample, warnings
