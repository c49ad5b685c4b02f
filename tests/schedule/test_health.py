"""Run health, hand-computed (no Spark): lag behind the schedule, failed stages, missed runs,
coverage over the last runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.schedule.test_plan import DAY1, DAY2, DAY3, NOW, daily, run
from timetravel.schedule.health import assess


def with_coverage(info, **coverage: float):  # type: ignore[no-untyped-def]
    record = info.stages["snapshot"]
    sources = {name: {"coverage": value} for name, value in coverage.items()}
    info.stages["snapshot"] = type(record)(
        record.run_id, "snapshot", record.run_time, record.status, record.created_at,
        record.updated_at, {"sources": sources}, {},
    )  # fmt: skip
    return info


def test_healthy_when_the_newest_run_time_is_complete() -> None:
    runs = [
        with_coverage(run(DAY2, select="ok", snapshot="ok"), ratings=0.9),
        with_coverage(run(DAY3, select="ok", snapshot="ok"), ratings=1.0),
        run(DAY1, schedule="missed"),
    ]
    health = assess(daily(), runs, NOW)
    assert health.healthy and health.lag == timedelta(0)
    assert health.newest_due == DAY3
    assert [(s.stage, s.last_ok_run_id) for s in health.stages] == [
        ("select", "run-20260603T060000Z"),
        ("snapshot", "run-20260603T060000Z"),
    ]
    assert health.missed == ["run-20260601T060000Z"]
    assert health.coverage == {"ratings": [1.0, 0.9]}  # newest first
    assert health.runs_by_status == {"schedule/missed": 1, "select/ok": 2, "snapshot/ok": 2}


def test_behind_by_the_newest_run_time_until_it_completes() -> None:
    runs = [run(DAY2, select="ok", snapshot="ok"), run(DAY3, select="ok", snapshot="running")]
    within = assess(daily(), runs, NOW)  # 1.5 h after DAY3, max_lag 6 h
    assert within.lag == timedelta(hours=1, minutes=30) and within.healthy
    stale = assess(daily(), runs, DAY3 + timedelta(hours=7))
    assert stale.lag == timedelta(hours=7)
    assert stale.problems == [
        "7.0 h behind the schedule (max_lag 6h): run time 2026-06-03T06:00:00+00:00 has not "
        "completed"
    ]


def test_a_failed_latest_stage_is_a_problem_even_on_time() -> None:
    runs = [run(DAY2, select="ok", snapshot="ok"), run(DAY3, select="ok", snapshot="failed")]
    health = assess(daily(), runs, NOW)
    assert health.problems == ["the latest snapshot (run-20260603T060000Z) failed"]
    assert health.stages[1].last_ok_run_id == "run-20260602T060000Z"


def test_nothing_run_yet_is_behind() -> None:
    health = assess(daily(), [], datetime(2026, 6, 1, 13, tzinfo=UTC))
    assert health.lag == timedelta(hours=7) and not health.healthy
    assert health.as_dict()["stages"][0] == {
        "stage": "select",
        "last_ok_run_id": None,
        "last_ok_run_time": None,
        "latest_run_id": None,
        "latest_status": None,
    }
