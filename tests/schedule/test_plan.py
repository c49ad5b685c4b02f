"""The schedule's decisions, hand-computed (no Spark, no I/O): due times, catch-up policies,
resuming started runs, missed runs staying missed, and bad schedules named."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from timetravel.config import Config, ScheduleSettings
from timetravel.errors import ConfigError
from timetravel.schedule.plan import due_times, next_time, plan_slots
from timetravel.warehouse.runs import RunInfo, StageRecord

DAY1, DAY2, DAY3 = (datetime(2026, 6, d, 6, tzinfo=UTC) for d in (1, 2, 3))
NOW = datetime(2026, 6, 3, 7, 30, tzinfo=UTC)  # 1.5 h after the day-3 run time


def daily(**changes: object) -> ScheduleSettings:
    base = {"cron": "0 6 * * *", "start_at": DAY1, "max_lag": "6h"}
    return ScheduleSettings.model_validate(base | changes)


def run(at: datetime, **stages: str) -> RunInfo:
    info = RunInfo(f"run-{at:%Y%m%dT%H%M%SZ}", at)
    for stage, status in stages.items():
        info.stages[stage] = StageRecord(info.run_id, stage, at, status, at, at, {}, {})
    return info


def decided(slots: list) -> list[tuple[str, str, tuple[str, ...]]]:  # type: ignore[type-arg]
    return [(f"{s.run_time:%d}", s.action, s.stages) for s in slots]


def test_due_times_are_inclusive_of_start_and_now() -> None:
    assert due_times(daily(), NOW) == [DAY1, DAY2, DAY3]
    assert due_times(daily(), DAY3) == [DAY1, DAY2, DAY3]  # exactly at a run time: due
    assert due_times(daily(), DAY3 - timedelta(microseconds=1)) == [DAY1, DAY2]
    assert due_times(daily(start_at=DAY3 + timedelta(seconds=1)), NOW) == []
    assert next_time(daily(), DAY3) == DAY3 + timedelta(days=1)
    # Without start_at: the lookback window.
    assert due_times(daily(start_at=None, lookback="36h"), NOW) == [DAY2, DAY3]


def test_latest_runs_the_newest_and_misses_the_rest() -> None:
    slots = plan_slots(daily(), [], NOW)
    assert decided(slots) == [
        ("01", "missed", ()),
        ("02", "missed", ()),
        ("03", "run", ("select", "snapshot")),
    ]
    assert [s.run_id for s in slots][-1] == "run-20260603T060000Z"
    assert slots[-1].lag == timedelta(hours=1, minutes=30) and not slots[-1].late
    assert slots[0].late and "catch_up=latest" in slots[0].reason


def test_all_runs_every_missed_time_with_its_lag() -> None:
    slots = plan_slots(daily(catch_up="all"), [], NOW)
    assert [s.action for s in slots] == ["run", "run", "run"]
    assert [s.lag for s in slots] == [
        timedelta(days=2, hours=1, minutes=30),
        timedelta(days=1, hours=1, minutes=30),
        timedelta(hours=1, minutes=30),
    ]


def test_none_runs_only_the_current_time_within_max_lag() -> None:
    assert [s.action for s in plan_slots(daily(catch_up="none"), [], NOW)] == [
        "missed",
        "missed",
        "run",
    ]
    late = NOW + timedelta(hours=5)  # 6.5 h after the day-3 run time: over max_lag
    assert [s.action for s in plan_slots(daily(catch_up="none"), [], late)] == ["missed"] * 3


def test_done_runs_are_left_and_started_ones_resumed_whatever_the_policy() -> None:
    runs = [
        run(DAY1, select="ok", snapshot="ok"),
        run(DAY2, select="ok", snapshot="running"),  # a scheduler died mid-run
    ]
    for policy in ("latest", "none"):
        assert decided(plan_slots(daily(catch_up=policy), runs, NOW)) == [
            ("01", "done", ()),
            ("02", "run", ("snapshot",)),  # resumed: only what is not ok yet
            ("03", "run", ("select", "snapshot")),
        ]


def test_a_missed_time_stays_missed_and_a_failed_one_is_retried() -> None:
    runs = [run(DAY1, schedule="missed"), run(DAY2, select="failed")]
    assert decided(plan_slots(daily(), runs, NOW)) == [
        ("01", "done", ()),
        ("02", "run", ("select", "snapshot")),
        ("03", "run", ("select", "snapshot")),
    ]


def test_stages_subset_counts_only_those_stages() -> None:
    runs = [run(DAY3, select="ok")]
    assert decided(plan_slots(daily(stages=["select"], start_at=DAY3), runs, NOW)) == [
        ("03", "done", ())
    ]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"cron": "61 6 * * *"}, "not a 5-field cron expression"),
        ({"cron": "0 6 * * * *"}, "not a 5-field cron expression"),
        ({"cron": "@reboot"}, "not a 5-field cron expression"),
        ({"stages": []}, "at least 1"),
        ({"stages": ["snapshot", "select"]}, "flow order"),
        ({"stages": ["select", "select"]}, "unique"),
        ({"stages": ["report"]}, "select"),
        ({"catch_up": "some"}, "latest"),
        ({"max_lag": "soon"}, "not a duration"),
        ({"start_at": "2026-06-01T06:00:00"}, "UTC offset"),
    ],
)
def test_bad_schedules_are_named(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Config.model_validate({"schedule": {"cron": "0 6 * * *"} | changes})


def test_a_schedule_with_too_many_run_times_is_refused() -> None:
    every_minute = daily(cron="* * * * *", start_at=datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(ConfigError, match=r"more than 10000 run times .*schedule.start_at"):
        plan_slots(every_minute, [], NOW)
