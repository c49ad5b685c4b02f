"""One stage of one run time, as an orchestrator's task asks for it: bad input named, and
nothing started (no Spark) when there is nothing to run."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from timetravel.config import Config, ScheduleSettings
from timetravel.errors import ConfigError
from timetravel.schedule.runner import run_scheduled_stage
from timetravel.warehouse.runs import RunsIndex

DAY1 = datetime(2026, 6, 1, 6, tzinfo=UTC)
NOW = datetime(2026, 6, 3, 8, tzinfo=UTC)


def no_spark():  # type: ignore[no-untyped-def]
    raise AssertionError("Spark was started for a stage with nothing to run")


@pytest.fixture
def config(local_config: Config) -> Config:
    schedule = ScheduleSettings(cron="0 6 * * *", start_at=DAY1, catch_up="latest")
    return local_config.model_copy(update={"schedule": schedule})


def test_an_older_run_time_is_recorded_missed_without_spark(config: Config) -> None:
    said: list[str] = []
    outcome = run_scheduled_stage(config, DAY1, "select", store=no_spark, now=NOW, say=said.append)
    assert outcome.status == "missed" and "catch_up=latest" in outcome.detail
    assert RunsIndex(config).get("run-20260601T060000Z").status("schedule") == "missed"
    # The run's next task finds it recorded missed: nothing to do.
    again = run_scheduled_stage(config, DAY1, "snapshot", store=no_spark, now=NOW)
    assert again.status == "done"


def test_a_tick_before_the_window_is_nothing_to_do(config: Config) -> None:
    early = datetime(2026, 5, 20, 6, tzinfo=UTC)
    outcome = run_scheduled_stage(config, early, "select", store=no_spark, now=NOW)
    assert (outcome.status, outcome.slot.run_id) == ("done", "run-20260520T060000Z")


@pytest.mark.parametrize(
    ("run_time", "stage", "message"),
    [
        (datetime(2026, 6, 2, 7, tzinfo=UTC), "select", "not a run time the schedule owns"),
        (datetime(2026, 6, 4, 6, tzinfo=UTC), "select", "not a run time the schedule owns"),
        (DAY1, "quality", "stage 'quality' is not in schedule.stages"),
    ],
)
def test_bad_requests_are_named(
    config: Config, run_time: datetime, stage: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        run_scheduled_stage(config, run_time, stage, store=no_spark, now=NOW)
