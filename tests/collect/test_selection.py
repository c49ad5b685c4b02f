"""The select job on real Spark + Delta: exact sizes, weights, determinism, panel, errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pyspark.sql import functions as F
from scipy import stats

from tests.conftest import copy_warehouse, fresh_warehouse
from tests.utils.builders import population
from timetravel.collect.sampling import (
    StratumPlan,
    count_strata,
    draw_sample,
    mark_previous,
)
from timetravel.collect.selection import read_context_set, select_contexts
from timetravel.config import Allocation, Config, Panel, SelectionSettings, Stratum
from timetravel.errors import SelectionError
from timetravel.warehouse.layout import CONTEXT_SETS_TABLE
from timetravel.warehouse.runs import RunsIndex
from timetravel.warehouse.store import DeltaStore

pytestmark = pytest.mark.spark

T1, T2 = "2026-06-01T00:00:00Z", "2026-06-02T00:00:00Z"
STRATA = {("NA", "tv"): 600, ("NA", "web"): 300, ("EU", "tv"): 90, ("EU", "web"): 10}


def settings(**overrides) -> SelectionSettings:  # type: ignore[no-untyped-def]
    base = {
        "snapshot_column": None,
        "strata": [Stratum(column="region"), Stratum(column="primary_device")],
        "allocation": Allocation(sample_size=100, min_per_stratum=2),
        "seed": 1,
    }
    return SelectionSettings(**(base | overrides))


@pytest.fixture
def store(spark, local_config: Config) -> DeltaStore:  # type: ignore[no-untyped-def]
    return DeltaStore(spark, local_config)


@pytest.fixture(scope="module")
def written_population(  # type: ignore[no-untyped-def]
    spark, test_config: Config, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, int]]:
    """A warehouse holding only the STRATA population, written once: its root and sizes."""
    config = fresh_warehouse(test_config, "local", tmp_path_factory.mktemp("population"))
    sizes = population(DeltaStore(spark, config), STRATA)
    return Path(config.warehouse.root), sizes


@pytest.fixture
def sizes(store: DeltaStore, written_population: tuple[Path, dict[str, int]]) -> dict[str, int]:
    """The STRATA population in this test's warehouse, copied instead of written again: the
    stratum sizes."""
    root, sizes = written_population
    copy_warehouse(root, store.config)
    return sizes


def per_stratum(frame) -> dict[str, tuple[int, float]]:  # type: ignore[no-untyped-def]
    return {
        r["stratum"]: (r["n"], r["w"])
        for r in frame.groupBy("stratum")
        .agg(F.count(F.lit(1)).alias("n"), F.sum("design_weight").alias("w"))
        .collect()
    }


def keys(frame) -> set[int]:  # type: ignore[no-untyped-def]
    return {r["member_id"] for r in frame.select("member_id").collect()}


def test_exact_sizes_and_weights_sum_to_stratum_sizes(
    store: DeltaStore, sizes: dict[str, int]
) -> None:
    result = select_contexts(store, settings(), T1)
    frame = read_context_set(store, result.run_id)
    # proportional 100 over 600/300/90/10: 60, 30, 9, 1 -> min 2 lifts EU|web to 2
    expected = {"NA|tv": 60, "NA|web": 30, "EU|tv": 9, "EU|web": 2}
    observed = per_stratum(frame)
    assert {k: n for k, (n, _) in observed.items()} == expected
    for stratum, (_, weight_sum) in observed.items():
        assert weight_sum == pytest.approx(sizes[stratum], rel=1e-12)
    row = frame.where("stratum = 'EU|web'").first()
    assert row["inclusion_probability"] == pytest.approx(2 / 10)
    assert row["design_weight"] == pytest.approx(5.0)
    assert frame.select("member_id").distinct().count() == frame.count()
    assert result.population_size == 1000 and result.sample_size == 101


def test_context_set_columns(store: DeltaStore, sizes: dict[str, int]) -> None:
    tagged = settings(tags={"purpose": "test"})
    result = select_contexts(store, tagged, T1, run_id="tagged")
    row = read_context_set(store, "tagged").first()
    assert row["run_id"] == "tagged" and row["tags"] == {"purpose": "test"}
    assert str(row["run_date"]) == "2026-06-01" and not row["panel"]
    assert (
        "run_date"
        in store.spark.sql(f"DESCRIBE DETAIL delta.`{store.path(CONTEXT_SETS_TABLE)}`").first()[
            "partitionColumns"
        ]
    )
    assert result.version == 1


def test_same_seed_and_time_same_sample_new_time_fresh_sample(
    store: DeltaStore, sizes: dict[str, int]
) -> None:
    a = keys(read_context_set(store, select_contexts(store, settings(), T1, run_id="a").run_id))
    b = keys(read_context_set(store, select_contexts(store, settings(), T1, run_id="b").run_id))
    c = keys(read_context_set(store, select_contexts(store, settings(), T2, run_id="c").run_id))
    d = keys(
        read_context_set(store, select_contexts(store, settings(seed=2), T1, run_id="d").run_id)
    )
    assert a == b
    assert a != c and len(a & c) < 40  # expected overlap ~10 of 101
    assert a != d


def test_within_stratum_selection_is_uniform(spark) -> None:  # type: ignore[no-untyped-def]
    """300 replicate strata of the same 100 units, 10 drawn per replicate: every unit should
    be drawn ~30 times. Chi-square goodness of fit, fixed seed."""
    units, replicates, take = 100, 300, 10
    frame = spark.range(units * replicates).select(
        (F.col("id") % units).alias("unit"),
        (F.col("id") / units).cast("long").alias("rep"),
        (F.col("id") / units).cast("long").cast("string").alias("stratum"),
    )
    plans = {str(r): StratumPlan(str(r), units, take, take) for r in range(replicates)}
    sample, _ = draw_sample(frame, plans, entity=["unit", "rep"], seed=123, salt="t")
    counts = [
        r["n"] for r in sample.groupBy("unit").count().withColumnRenamed("count", "n").collect()
    ]
    assert len(counts) == units and sum(counts) == take * replicates
    chi2, p_value = stats.chisquare(counts)
    assert p_value > 0.001, (chi2, p_value)


def test_strata_counts_and_previous_marks_in_one_query(spark) -> None:  # type: ignore[no-untyped-def]
    """Hand-counted: strata a (3 units, 2 of them in the previous sample, one listed twice
    there) and b (1 unit, not in it); a previous key outside the population counts nowhere."""
    frame = spark.createDataFrame(
        [(1, "a"), (2, "a"), (3, "a"), (4, "b")], "member_id long, stratum string"
    )
    previous = spark.createDataFrame([(1,), (2,), (2,), (9,)], "member_id long")
    marked = mark_previous(frame, previous, ["member_id"])
    assert sorted((r["member_id"], r["_prev"]) for r in marked.collect()) == [
        (1, True),
        (2, True),
        (3, False),
        (4, False),
    ]
    counts = count_strata(marked)
    assert counts.sizes == {"a": 3, "b": 1}
    assert counts.in_previous == {"a": 2}
    assert count_strata(mark_previous(frame, None, ["member_id"])).in_previous == {}
    plans = {"a": StratumPlan("a", 3, 2, 2), "b": StratumPlan("b", 1, 1, 1)}
    with pytest.raises(SelectionError, match="mark_previous"):
        draw_sample(
            frame,
            plans,
            entity=["member_id"],
            seed=1,
            salt="t",
            in_previous=counts.in_previous,
            panel_fraction=0.5,
        )


def test_panel_keeps_the_fraction_with_correct_probabilities(
    store: DeltaStore, sizes: dict[str, int]
) -> None:
    panel = settings(panel=Panel(fraction=0.5))
    first = select_contexts(store, panel, T1)
    second = select_contexts(store, panel, T2)
    assert second.previous_run_id == first.run_id
    before = read_context_set(store, first.run_id)
    after = read_context_set(store, second.run_id)
    prev_by_stratum = {k: n for k, (n, _) in per_stratum(before).items()}
    for stratum, n_h in {"NA|tv": 60, "NA|web": 30, "EU|tv": 9}.items():
        rows = after.where(F.col("stratum") == stratum).collect()
        kept = [r for r in rows if r["panel"]]
        fresh = [r for r in rows if not r["panel"]]
        previous, population_size = prev_by_stratum[stratum], sizes[stratum]
        retained = int(0.5 * previous + 0.5)  # round half up
        assert len(kept) == retained and len(rows) == n_h
        assert all(r["inclusion_probability"] == pytest.approx(retained / previous) for r in kept)
        fresh_probability = (n_h - retained) / (population_size - previous)
        assert all(r["inclusion_probability"] == pytest.approx(fresh_probability) for r in fresh)
        assert sum(r["design_weight"] for r in rows) == pytest.approx(population_size)
        assert {r["member_id"] for r in kept} <= keys(before)
    # EU|web: 2 of 10 before; keeping round(0.5 * 2) = 1 works: both groups non-empty
    assert per_stratum(after)["EU|web"][1] == pytest.approx(10)


def test_rerun_same_run_id_writes_nothing(store: DeltaStore, sizes: dict[str, int]) -> None:
    first = select_contexts(store, settings(), T1)
    again = select_contexts(store, settings(), T1)
    assert again.reused and again.version == first.version
    assert store.latest_version(CONTEXT_SETS_TABLE) == first.version
    assert store.read(CONTEXT_SETS_TABLE).count() == first.sample_size


def test_rerun_after_a_crash_before_the_index_write(
    store: DeltaStore, sizes: dict[str, int]
) -> None:
    first = select_contexts(store, settings(), T1)
    # Simulate a job that committed the context set, then died before recording the run.
    shutil.rmtree(Path(store.path("runs")))
    again = select_contexts(store, settings(), T1)
    assert not again.reused and again.version == first.version
    assert store.read(CONTEXT_SETS_TABLE).count() == first.sample_size
    assert RunsIndex(store.config).get(first.run_id).status("select") == "ok"


def test_target_larger_than_stratum_is_taken_whole_warned_and_recorded(
    store: DeltaStore, sizes: dict[str, int]
) -> None:
    explicit = settings(
        allocation=Allocation(method="explicit", targets={"EU|web": 25}, min_per_stratum=1)
    )
    result = select_contexts(store, explicit, T1)
    assert per_stratum(read_context_set(store, result.run_id))["EU|web"][0] == 10
    message = "stratum 'EU|web': target 25 exceeds its population 10; taking all 10"
    assert message in result.warnings
    recorded = RunsIndex(store.config).get(result.run_id).stages["select"].details
    assert message in recorded["warnings"]
    assert {
        "stratum": "EU|web",
        "population": 10,
        "target": 25,
        "sample": 10,
        "capped": True,
    } in recorded["strata"]


def test_unknown_strata_column(store: DeltaStore, sizes: dict[str, int]) -> None:
    bad = settings(strata=[Stratum(column="regoin")])
    with pytest.raises(
        SelectionError,
        match=r"unknown strata column 'regoin'; population "
        r"columns: member_id, region, primary_device",
    ):
        select_contexts(store, bad, T1)


def test_empty_population(store: DeltaStore) -> None:
    population(store, {})
    with pytest.raises(SelectionError, match="the population is empty as of 2026-06-01"):
        select_contexts(store, settings(), T1)


def test_no_snapshot_at_or_before_the_run_time(store: DeltaStore, sizes: dict[str, int]) -> None:
    snapshots = settings(snapshot_column="snap")
    frame = store.read("population").withColumn(
        "snap", F.timestamp_micros(F.lit(1_780_000_000_000_000))
    )  # 2026-05-28T20:26:40Z
    store.create("population2", frame.schema)
    store.append("population2", frame)
    early = snapshots.model_copy(update={"population_table": "population2"})
    with pytest.raises(SelectionError, match="no rows with snap at or before the run time"):
        select_contexts(store, early, "2026-05-01T00:00:00Z")
    assert select_contexts(store, early, T1).population_size == 1000


def test_quantile_buckets(store: DeltaStore, sizes: dict[str, int]) -> None:
    from timetravel.config import Buckets

    bucketed = settings(
        strata=[
            Stratum(
                column="viewing_hours",
                name="hours",
                buckets=Buckets(quantiles=[0.5], labels=["lo", "hi"]),
            )
        ]
    )
    result = select_contexts(store, bucketed, T1)
    assert {s.stratum: s.population for s in result.strata} == {"lo": 400, "hi": 600}


def test_runs_index_lists_and_names_missing_runs(store: DeltaStore, sizes: dict[str, int]) -> None:
    select_contexts(store, settings(), T1)
    select_contexts(store, settings(), T2)
    index = RunsIndex(store.config)
    assert [r.run_id for r in index.list()] == ["run-20260602T000000Z", "run-20260601T000000Z"]
    run = index.get("run-20260601T000000Z")
    assert run.stages["select"].table_versions[CONTEXT_SETS_TABLE] == 1
    assert run.stages["select"].created_at <= run.stages["select"].updated_at
    with pytest.raises(Exception, match=r"no run 'nope' in the runs index \(recent: run-2026"):
        index.get("nope")
