"""The quality stage over a hand-built run: counts, nulls, missing facts, spreads and the
design-weighted estimate, each computed by hand; stored in Delta and indexed."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tests.conftest import copy_warehouse, fresh_warehouse
from tests.utils.facts import PROFILE, RATINGS, write_facts
from timetravel.config import Config, SnapshotSettings, SourceSettings
from timetravel.errors import RunNotFoundError
from timetravel.quality.estimates import Z95
from timetravel.quality.profile import OVERALL, profile_run
from timetravel.warehouse.layout import CONTEXT_SETS_TABLE, QUALITY_STATS_TABLE
from timetravel.warehouse.runs import RunsIndex
from timetravel.warehouse.store import DeltaStore

pytestmark = pytest.mark.spark

RUN = "run-q"
AT = "2026-06-01T06:00:00Z"
# Stratum a: 100 contexts in the population, 4 sampled (weight 25);
# stratum b: 300 contexts, 3 sampled (weight 100); member 7's fetch failed (no fact).
CONTEXTS = [(1, "a", 25.0), (2, "a", 25.0), (3, "a", 25.0), (4, "a", 25.0)] + [
    (5, "b", 100.0),
    (6, "b", 100.0),
    (7, "b", 100.0),
]
THUMBS_UP = {1: 1, 2: 2, 3: 3, 4: 4, 5: 10, 6: 14}


def sources() -> list[SourceSettings]:
    return [
        SourceSettings(name=n, base_url="http://unused", get_path="/x/{member_id}", schema=s)
        for n, s in (("ratings", RATINGS), ("member-profile", PROFILE))
    ]


def select(store: DeltaStore, config: Config, run_id: str, at: str) -> None:
    """The context set of ``run_id`` (CONTEXTS), committed and indexed as its select stage."""
    from pyspark.sql import functions as F

    contexts = store.spark.createDataFrame(
        CONTEXTS, "member_id long, stratum string, design_weight double"
    ).select(
        "*",
        F.lit(run_id).alias("run_id"),
        F.to_timestamp(F.lit(at)).alias("run_time"),
        F.to_date(F.to_timestamp(F.lit(at))).alias("run_date"),
    )
    store.create(CONTEXT_SETS_TABLE, contexts.schema, partition_by=["run_date"])
    selected = store.append(CONTEXT_SETS_TABLE, contexts, user_metadata=run_id)
    RunsIndex(config).record(
        run_id, at, "select", "ok", table_versions={CONTEXT_SETS_TABLE: selected}
    )


def configure(config: Config) -> Config:
    return config.model_copy(update={"snapshot": SnapshotSettings(sources=sources())})


@pytest.fixture(scope="module")
def written(  # type: ignore[no-untyped-def]
    spark, test_config: Config, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """RUN selected and snapshotted (CONTEXTS, THUMBS_UP, plans), written once: the
    warehouse folder."""
    config = configure(fresh_warehouse(test_config, "local", tmp_path_factory.mktemp("run")))
    store = DeltaStore(spark, config)
    select(store, config, RUN, AT)
    runs = RunsIndex(config)
    ratings = write_facts(
        store,
        "ratings",
        RATINGS,
        [(m, "2026-06-01T06:10:00", up, 0 if m != 2 else None) for m, up in THUMBS_UP.items()],
        run_id=RUN,
        written_at="2026-06-01T07:00:00Z",
    )
    plans = ["basic", "basic", "premium", None, "basic", "standard"]
    profile = write_facts(
        store,
        "member-profile",
        PROFILE,
        [
            (m, "2026-06-01T06:10:00", p, None, "active")
            for m, p in zip(THUMBS_UP, plans, strict=True)
        ],
        run_id=RUN,
        written_at="2026-06-01T07:00:00Z",
    )
    versions = {"facts/ratings": ratings, "facts/member_profile": profile}
    runs.record(RUN, AT, "snapshot", "ok", table_versions=versions)
    return Path(config.warehouse.root)


@pytest.fixture
def run(spark, local_config: Config, written: Path) -> tuple[DeltaStore, Config]:  # type: ignore[no-untyped-def]
    """A copy of that warehouse as this test's own: profiling writes to it."""
    copy_warehouse(written, local_config)
    config = configure(local_config)
    return DeltaStore(spark, config), config


def test_hand_computed_statistics_and_estimates(run: tuple[DeltaStore, Config]) -> None:
    store, config = run
    result = profile_run(store, config, RUN)
    up = result.overall("ratings", "thumbs_up")
    assert (up.contexts, up.facts, up.missing, up.nulls) == (7, 6, 1, 0)
    assert up.null_rate == pytest.approx(1 / 7)
    assert (up.min, up.max, up.distinct) == (1.0, 14.0, 6)
    values = list(THUMBS_UP.values())
    mean = sum(values) / 6
    assert up.mean == pytest.approx(mean)  # the plain sample mean: 34 / 6
    assert up.std == pytest.approx(math.sqrt(sum((v - mean) ** 2 for v in values) / 5))
    # Weighted: W_a = 100/400, W_b = 300/400 (member 7's weight counts toward N_b although
    # its value is missing). mean = 0.25 * 2.5 + 0.75 * 12 = 9.625.
    assert up.population == 400.0
    assert up.weighted_mean == pytest.approx(9.625)
    variance = 0.0625 * (1 - 4 / 100) * (5 / 3) / 4 + 0.5625 * (1 - 2 / 300) * 8 / 2
    assert up.weighted_se == pytest.approx(math.sqrt(variance))
    assert up.quantiles is not None and up.quantiles[2] in (3.0, 4.0)  # the median, approx
    # Weighted quantiles from each stratum's percentiles (Spark's percentile_approx gives
    # a: 1 up to 25%, 2, 3, 4 from 75%; b: 10 up to 50%, 14 above): F jumps from 0.25 to
    # 0.625 at 10, so the population median is 10 where the sample's is 3 or 4.
    assert up.weighted_quantiles == pytest.approx([1.0, 4.0, 10.0, 14.0, 14.0])
    # At the median F_a = 1 and F_b = 0.5: var F = 0.75^2 (1 - 2/300) 0.25 / 1, wide enough
    # that Woodruff's interval spans the whole range 1..14.
    assert up.weighted_quantiles_se is not None
    assert up.weighted_quantiles_se[2] == pytest.approx(13 / (2 * Z95))
    # Histogram: 20 bins of 0.65 from 1 to 14; 14 lands in the last bin, not past it.
    histogram = up.histogram or []
    assert len(histogram) == 20 and (histogram[0]["low"], histogram[-1]["high"]) == (1.0, 14.0)
    filled = {b: (h["count"], h["weighted"]) for b, h in enumerate(histogram) if h["count"]}
    assert filled == {0: (1, 25.0), 1: (1, 25.0), 3: (1, 25.0), 4: (1, 25.0)} | {
        13: (1, 100.0),
        19: (1, 100.0),
    }
    per = {s.stratum: s for s in result.stats if (s.source, s.field) == ("ratings", "thumbs_up")}
    assert set(per) == {"a", "b", OVERALL}
    assert (per["a"].mean, per["b"].mean, per["b"].missing) == (2.5, 12.0, 1)
    assert per["b"].weighted_se == pytest.approx(math.sqrt((1 - 2 / 300) * 8 / 2))

    down = result.overall("ratings", "thumbs_down")
    assert (down.nulls, down.missing) == (1, 1) and down.null_rate == pytest.approx(2 / 7)
    plan = result.overall("member-profile", "plan")
    assert plan.kind == "categorical" and plan.nulls == 1 and plan.mean is None
    assert [(v["value"], v["count"]) for v in plan.top_values or []] == [
        ("basic", 3),
        ("premium", 1),
        ("standard", 1),
    ]
    # basic: 2 of a's 3 known plans, 1 of b's 2; weighted 0.25 * 2/3 + 0.75 * 1/2.
    basic = (plan.top_values or [])[0]
    assert basic["share"] == pytest.approx(3 / 5)
    assert basic["weighted_share"] == pytest.approx(0.25 * 2 / 3 + 0.75 * 0.5)
    spread_a, spread_b = (2 / 3) * (1 / 3) * 3 / 2, 0.5 * 0.5 * 2
    variance = 0.0625 * (1 - 3 / 100) * spread_a / 3 + 0.5625 * (1 - 2 / 300) * spread_b / 2
    assert basic["weighted_se"] == pytest.approx(math.sqrt(variance))
    since = result.overall("member-profile", "member_since")
    assert since.kind == "other" and since.nulls == 6

    # Stored in Delta, one row per source x field x stratum, and indexed; read back whole.
    from timetravel.quality.profile import read_quality

    stored_back = read_quality(config, RUN)
    assert stored_back.overall("ratings", "thumbs_up") == up
    assert stored_back.overall("member-profile", "plan") == plan
    stored = store.read(QUALITY_STATS_TABLE).where(f"run_id = '{RUN}'")
    assert stored.count() == len(result.stats) == (2 + 3) * 3
    quality = RunsIndex(config).get(RUN).stages["quality"]
    assert quality.status == "ok"
    assert quality.table_versions[QUALITY_STATS_TABLE] == result.version
    # Without declared checks, the built-in ones still run: one fact per context, per source.
    assert [(c.check, c.status) for c in result.checks] == [("one_fact_per_context", "pass")] * 2
    assert result.status == quality.status == "ok"


def test_a_run_without_a_snapshot_is_named(run: tuple[DeltaStore, Config]) -> None:
    store, config = run
    RunsIndex(config).record("run-bare", AT, "select", "ok")
    with pytest.raises(RunNotFoundError, match="'run-bare' has no completed snapshot"):
        profile_run(store, config, "run-bare")


def test_checks_are_judged_stored_and_take_the_stage_status(
    run: tuple[DeltaStore, Config],
) -> None:
    from timetravel.config import QualityCheck, QualitySettings, Threshold
    from timetravel.quality.profile import read_quality
    from timetravel.warehouse.layout import QUALITY_CHECKS_TABLE

    store, config = run
    checks = [
        QualityCheck(source="ratings", min_coverage=Threshold(warn=0.9, fail=0.5)),  # 6/7
        QualityCheck(
            source="ratings", field="thumbs_down", max_null_rate=Threshold(warn=0.1, fail=0.5)
        ),  # 2/7: warn
        QualityCheck(source="ratings", field="thumbs_up", min_value=0, max_value=20),  # pass
        QualityCheck(
            source="member-profile", field="plan", allowed_values=["basic", "standard"]
        ),  # one premium: fail
        QualityCheck(source="ratings", max_staleness=Threshold(warn=3600)),  # 10 min: pass
    ]
    checked = config.model_copy(update={"quality": QualitySettings(checks=checks)})
    result = profile_run(store, checked, RUN)
    found = {(c.source, c.field, c.check): (c.status, c.value) for c in result.checks}
    assert found == {
        ("ratings", "", "one_fact_per_context"): ("pass", 0),
        ("member-profile", "", "one_fact_per_context"): ("pass", 0),
        ("ratings", "", "coverage"): ("warn", pytest.approx(6 / 7)),
        ("ratings", "thumbs_down", "null_rate"): ("warn", pytest.approx(2 / 7)),
        ("ratings", "thumbs_up", "min_value"): ("pass", 1.0),
        ("ratings", "thumbs_up", "max_value"): ("pass", 14.0),
        ("member-profile", "plan", "allowed_values"): ("fail", 1),
        ("ratings", "", "staleness_s"): ("pass", 600.0),
    }
    assert result.status == "failed"
    stage = RunsIndex(config).get(RUN).stages["quality"]
    assert stage.status == "failed"
    assert stage.details["failed"] == ["member-profile.plan: allowed_values"]
    assert set(stage.table_versions) == {QUALITY_STATS_TABLE, QUALITY_CHECKS_TABLE}
    stored = read_quality(config, RUN)  # what the API and the report read back
    assert stored.status == "failed" and len(stored.checks) == len(result.checks)
    assert {(c.check, c.status) for c in stored.checks} == {
        (c.check, c.status) for c in result.checks
    }
    assert len(stored.stats) == len(result.stats)


def test_the_api_returns_a_runs_quality(run: tuple[DeltaStore, Config]) -> None:
    from fastapi.testclient import TestClient

    from tests.api.conftest import READER, TOKENS, auth
    from timetravel import TimeTravel
    from timetravel.api.app import create_app

    store, config = run
    result = profile_run(store, config, RUN)
    app = create_app(config, tokens=TOKENS, tt=TimeTravel(config, spark=store.spark))
    with TestClient(app) as client:
        answer = client.get(f"/v1/runs/{RUN}/quality", headers=auth(READER))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["status"] == "ok" and body["stats_version"] == result.version
        assert {c["check"] for c in body["checks"]} == {"one_fact_per_context"}
        up = next(s for s in body["stats"] if s["field"] == "thumbs_up")
        assert up["stratum"] == "*" and up["weighted_mean"] == pytest.approx(9.625)
        assert len(body["stats"]) == 5  # the whole sample only, unless strata=true
        every = client.get(f"/v1/runs/{RUN}/quality", headers=auth(), params={"strata": True})
        assert len(every.json()["stats"]) == 15
        missing = client.get("/v1/runs/run-nope/quality", headers=auth())
        assert missing.status_code == 404 and "run-nope" in missing.json()["detail"]
        for odd in ("run'; DROP TABLE runs; --", "r" * 5000, "%00", "ü"):
            answer = client.get(f"/v1/runs/{odd}/quality", headers=auth())
            assert answer.status_code in (404, 422), (odd[:20], answer.status_code)
        assert (
            client.get(
                f"/v1/runs/{RUN}/quality", headers=auth(), params={"strata": "maybe"}
            ).status_code
            == 422
        )
        assert client.get(f"/v1/runs/{RUN}/quality").status_code == 401


def add_run(
    store: DeltaStore, config: Config, run_id: str, at: str, up: dict[int, int], plans: list[str]
) -> None:
    """Another run over the same contexts, with the given field values."""
    select(store, config, run_id, at)
    runs = RunsIndex(config)
    snapshot_time = at.replace("06:00:00Z", "06:10:00")
    ratings = write_facts(
        store,
        "ratings",
        RATINGS,
        [(m, snapshot_time, v, 0) for m, v in up.items()],
        run_id=run_id,
        written_at=at,
    )
    profile = write_facts(
        store,
        "member-profile",
        PROFILE,
        [(m, snapshot_time, p, None, "active") for m, p in zip(up, plans, strict=True)],
        run_id=run_id,
        written_at=at,
    )
    versions = {"facts/ratings": ratings, "facts/member_profile": profile}
    runs.record(run_id, at, "snapshot", "ok", table_versions=versions)


def test_drift_against_the_previous_and_the_reference_run(
    run: tuple[DeltaStore, Config],
) -> None:
    from timetravel.config import QualityCheck, QualitySettings, Threshold
    from timetravel.quality.drift import js_distance

    store, config = run
    drift = Threshold(warn=0.1, fail=0.25)
    checks = [
        QualityCheck(source="ratings", field="thumbs_up", max_drift=drift),
        QualityCheck(source="member-profile", field="plan", max_drift=drift),
    ]
    # The same values a day later: no drift. Then a unit change (x100) and a plan shift.
    same = config.model_copy(update={"quality": QualitySettings(checks=checks)})
    plans = ["basic", "basic", "premium", "basic", "basic", "standard"]
    add_run(store, same, "run-same", "2026-06-02T06:00:00Z", THUMBS_UP, plans)
    calm = profile_run(store, same, "run-same")
    drifted = {(c.field, c.check): (c.status, c.value) for c in calm.checks if "drift" in c.check}
    assert drifted == {
        ("thumbs_up", "drift_previous"): ("pass", 0.0),
        # One null became 'basic': a small move, under the warn line.
        ("plan", "drift_previous"): (
            "pass",
            pytest.approx(
                js_distance(
                    {"basic": 3, "premium": 1, "standard": 1},
                    {"basic": 4, "premium": 1, "standard": 1},
                )
            ),
        ),
    }
    scaled = {m: v * 100 for m, v in THUMBS_UP.items()}
    pinned = same.model_copy(update={"quality": QualitySettings(checks=checks, reference_run=RUN)})
    add_run(store, pinned, "run-scaled", "2026-06-03T06:00:00Z", scaled, ["premium"] * 6)
    shifted = profile_run(store, pinned, "run-scaled")
    found = {(c.field, c.check): c for c in shifted.checks if "drift" in c.check}
    assert {k: c.status for k, c in found.items()} == {
        ("thumbs_up", "drift_previous"): "fail",
        ("thumbs_up", "drift_reference"): "fail",
        ("plan", "drift_previous"): "fail",
        ("plan", "drift_reference"): "fail",
    }
    assert "(vs run-same)" in found[("thumbs_up", "drift_previous")].expected
    assert "(vs run-q)" in found[("thumbs_up", "drift_reference")].expected
    assert shifted.status == "failed"

    missing = same.model_copy(
        update={"quality": QualitySettings(checks=checks, reference_run="run-gone")}
    )
    before = RunsIndex(config).get("run-scaled").stages["quality"].updated_at
    with pytest.raises(RunNotFoundError, match="run-gone"):
        profile_run(store, missing, "run-scaled")
    assert RunsIndex(config).get("run-scaled").stages["quality"].updated_at == before
