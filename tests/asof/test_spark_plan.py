"""Which plan ``auto`` chooses for the Spark join, from a sample of the keys; both plans'
rows are checked by the contract suite (tests/asof/test_asof.py runs each forced)."""

from __future__ import annotations

import pytest

from tests.utils.asof_engines import _collect
from timetravel.asof import spark_plan
from timetravel.asof.spark import point_in_time_join
from timetravel.asof.spark_plan import candidates_per_label, choose_plan
from timetravel.errors import AsOfError

pytestmark = pytest.mark.spark


@pytest.fixture
def always_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sample inputs of any size, all of their rows (exact counts)."""
    monkeypatch.setattr(spark_plan, "_STATS_MIN_BYTES", 0)
    monkeypatch.setattr(spark_plan, "_SAMPLE_BYTES", 1 << 60)


def labels(spark, keys: str, rows: int):  # type: ignore[no-untyped-def]
    """``rows`` label rows, key ``keys`` (a SQL expression of ``id``), at 2026-01-02."""
    return spark.range(rows).selectExpr(
        f"{keys} AS context_id", "timestamp'2026-01-02 00:00:00' AS label_time", "id AS y"
    )


def snapshots(spark, keys: str, rows: int):  # type: ignore[no-untyped-def]
    """``rows`` snapshots, key ``keys``, one a minute from 2026-01-01."""
    return spark.range(rows).selectExpr(
        f"{keys} AS context_id",
        "timestamp_seconds(1767225600 + 60 * id) AS snapshot_time",
        "id AS v",
    )


@pytest.mark.usefixtures("always_sample")
def test_few_snapshots_per_key_take_the_band_plan(spark) -> None:  # type: ignore[no-untyped-def]
    # 2,000 keyed labels (one per key) and 500 with a null key; two snapshots per key:
    # 2,000 x 2 candidate pairs over 2,500 labels = 1.6. The 500 null-key snapshots meet
    # nothing (counted against the null-key labels, they would add 250,000 pairs: 101.6).
    frame = labels(spark, "IF(id < 2000, id, NULL)", 2500)
    source = snapshots(spark, "IF(id < 4000, id % 2000, NULL)", 4500)
    choice = choose_plan(frame, {"s": source}, keys=["context_id"])
    assert choice.plan == "band"
    assert choice.candidates == {"s": 1.6} and choice.fraction == 1.0


@pytest.mark.usefixtures("always_sample")
def test_a_hot_key_takes_the_sweep(spark) -> None:  # type: ignore[no-untyped-def]
    # Key 0: 200 labels and 200 snapshots (40,000 pairs); 800 other keys, one of each (800).
    # 40,800 pairs over 1,000 labels = 40.8, past the band plan's 10; a cold second source
    # (one snapshot per key: 1,000 / 1,000) does not change that.
    frame = labels(spark, "IF(id < 200, 0, id)", 1000)
    hot = snapshots(spark, "IF(id < 200, 0, id)", 1000)
    cold = snapshots(spark, "id", 1000)
    choice = choose_plan(frame, {"hot": hot, "cold": cold}, keys=["context_id"])
    assert choice.plan == "sweep"
    assert choice.candidates == {"hot": 40.8, "cold": 1.0}


@pytest.mark.usefixtures("always_sample")
@pytest.mark.parametrize(("per_key", "plan"), [(10, "band"), (11, "sweep")])
def test_the_band_plan_takes_at_most_ten_candidates_per_label(  # type: ignore[no-untyped-def]
    spark, per_key: int, plan: str
) -> None:
    # 100 keys, one label each and ``per_key`` snapshots each: exactly ``per_key`` candidates.
    frame = labels(spark, "id", 100)
    source = snapshots(spark, "id % 100", 100 * per_key)
    choice = choose_plan(frame, {"s": source}, keys=["context_id"])
    assert choice.candidates == {"s": float(per_key)}
    assert choice.plan == plan


def test_a_sample_estimates_the_candidates(spark) -> None:  # type: ignore[no-untyped-def]
    # 20,000 keys with 10 labels and 10 snapshots each: exactly 10 candidates per label.
    # A 5% sample (fixed seed) lands within 10% of it.
    frame = labels(spark, "id % 20000", 200_000)
    source = snapshots(spark, "id % 20000", 200_000)
    estimate = candidates_per_label(frame, {"s": source}, keys=["context_id"], fraction=0.05)
    assert 9.0 <= estimate["s"] <= 11.0


def test_each_input_is_sampled_independently(spark) -> None:  # type: ignore[no-untyped-def]
    # Key ``id`` on both sides, row for row: exactly 1 candidate per label. Had both sides
    # drawn the same rows (one seed for inputs of the same shape), every sampled label would
    # find its snapshot sampled too, and the 5% sample would estimate 20.
    frame = labels(spark, "id", 200_000)
    source = snapshots(spark, "id", 200_000)
    estimate = candidates_per_label(frame, {"s": source}, keys=["context_id"], fraction=0.05)
    assert 0.8 <= estimate["s"] <= 1.2


@pytest.mark.usefixtures("always_sample")
def test_a_null_key_part_meets_nothing(spark) -> None:  # type: ignore[no-untyped-def]
    # Composite keys (0, part); ``part`` is null on both sides in all rows but one label and
    # one snapshot: 1 pair over 10 labels. Null parts matched as equal would add 81 pairs.
    frame = labels(spark, "0", 10).selectExpr("*", "IF(y = 0, 0, NULL) AS part")
    source = snapshots(spark, "0", 10).selectExpr("*", "IF(v = 0, 0, NULL) AS part")
    estimate = candidates_per_label(frame, {"s": source}, keys=["context_id", "part"], fraction=1.0)
    assert estimate == {"s": 0.1}


@pytest.mark.usefixtures("always_sample")
def test_composite_keys_are_counted_whole(spark) -> None:  # type: ignore[no-untyped-def]
    # Keys (id % 10, id % 7) over 70 rows: 70 distinct pairs, one label and one snapshot
    # each, so 1 candidate per label (10 if only the first column were the key).
    frame = labels(spark, "id % 10", 70).selectExpr("*", "y % 7 AS part")
    source = snapshots(spark, "id % 10", 70).selectExpr("*", "v % 7 AS part")
    estimate = candidates_per_label(
        frame,
        {"s": source},
        keys=["context_id", "part"],
        fraction=1.0,
    )
    assert estimate == {"s": 1.0}


def test_small_inputs_take_the_sweep_without_a_sample(spark) -> None:  # type: ignore[no-untyped-def]
    choice = choose_plan(
        labels(spark, "id", 10),
        {"s": snapshots(spark, "id", 10)},
        keys=["context_id"],
    )
    assert (choice.plan, choice.candidates, choice.fraction) == ("sweep", None, None)


@pytest.mark.usefixtures("always_sample")
def test_auto_runs_the_plan_it_chose_with_the_same_rows(spark) -> None:  # type: ignore[no-untyped-def]
    frame = labels(spark, "id % 300", 600)
    source = snapshots(spark, "id % 300", 900)
    rows, plans = {}, {}
    for plan in ("sweep", "band", "auto"):
        executed: list[str] = []
        rows[plan] = _collect(
            point_in_time_join(frame, {"s": source}, plan=plan),  # type: ignore[arg-type]
            plans=executed,
        )
        plans[plan] = executed[-1]
    assert rows["auto"] == rows["band"] == rows["sweep"]
    assert len(rows["auto"]) == 600 and all(r["s__v"] is not None for r in rows["auto"])
    # The band plan ranks candidates (row_number), the sweep carries forward (last): auto
    # (3 candidates per label) ranked.
    assert "row_number()" in plans["band"] and "row_number()" not in plans["sweep"]
    assert "last(" in plans["sweep"]
    assert "row_number()" in plans["auto"] and "last(" not in plans["auto"]


def test_an_unknown_plan_is_named(spark) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(AsOfError, match="plan must be one of auto, sweep, band; got 'fast'"):
        point_in_time_join(
            labels(spark, "id", 1),
            {"s": snapshots(spark, "id", 1)},
            plan="fast",  # type: ignore[arg-type]
        )
