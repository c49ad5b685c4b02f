"""Airflow DAG: the profile's schedule as DAG runs, each stage a spark-submit task.

One DAG run per logical run time of ``schedule.cron`` (a cron trigger timetable, so the
logical date *is* the run time), one task per stage in ``schedule.stages`` (select, then
snapshot), each running ``jobs/run_scheduled_stage.py`` with ``spark-submit`` in the project's
own venv. That job makes the same decisions as ``timetravel schedule run`` (run the time, or
record it missed under ``schedule.catch_up``) and writes the same runs index rows, so the
built-in scheduler and Airflow can take turns on one warehouse.

``catch_up`` maps onto Airflow's ``catchup``: ``latest`` and ``all`` create a DAG run for every
missed tick (the job records the older ones missed under ``latest``, runs them under
``all``); ``none`` creates only the current one.

Airflow pins its own dependencies, so it lives in its own venv (``make airflow-env``); this
file imports nothing from timetravel. Point it at the project with environment variables:

- ``TIMETRAVEL_HOME``: the project folder (default: the folder above this file's);
- ``TIMETRAVEL_CONF``: the profile (default: ``$TIMETRAVEL_HOME/conf/local.yaml``); its
  ``schedule`` section is read here with plain YAML, so keep it free of ``${VAR}``s;
- ``TIMETRAVEL_BIN``: the venv's bin folder (default: ``$TIMETRAVEL_HOME/.venv/bin``);
- ``TIMETRAVEL_SUBMIT_ARGS``: more spark-submit arguments, e.g. ``--master spark://h:7077``.

A DAG run's conf may carry ``{"now": "<ISO instant>"}`` to replay a decision at another
instant (what the test does); normally the decision is made at the task's real time.
"""

from __future__ import annotations

import os
import re
import shlex
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, chain
from airflow.timetables.trigger import CronTriggerTimetable

HOME = Path(os.environ.get("TIMETRAVEL_HOME", Path(__file__).resolve().parents[1]))
CONF = Path(os.environ.get("TIMETRAVEL_CONF", HOME / "conf" / "local.yaml"))
BIN = Path(os.environ.get("TIMETRAVEL_BIN", HOME / ".venv" / "bin"))
SUBMIT_ARGS = os.environ.get("TIMETRAVEL_SUBMIT_ARGS", "")

_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def _schedule() -> dict:
    profile = yaml.safe_load(CONF.read_text()) or {}
    schedule = profile.get("schedule") or {}
    return {
        "cron": schedule.get("cron", "0 6 * * *"),
        "stages": schedule.get("stages", ["select", "snapshot"]),
        "catch_up": schedule.get("catch_up", "latest"),
        "start_at": schedule.get("start_at"),
        "lookback": schedule.get("lookback", "7d"),
    }


def _start_date(schedule: dict) -> datetime:
    """``start_at``, or the start of the day ``lookback`` ago (as the built-in scheduler)."""
    start_at = schedule["start_at"]
    if start_at:
        at = start_at if isinstance(start_at, datetime) else datetime.fromisoformat(start_at)
        return at.astimezone(UTC)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([dhms])\s*", str(schedule["lookback"]))
    back = timedelta(**{_UNITS[match.group(2)]: float(match.group(1))}) if match else timedelta(7)
    return (datetime.now(UTC) - back).replace(hour=0, minute=0, second=0, microsecond=0)


SCHEDULE = _schedule()

with DAG(
    dag_id="timetravel",
    description="select and snapshot at each run time of the timetravel schedule",
    schedule=CronTriggerTimetable(SCHEDULE["cron"], timezone="UTC"),
    start_date=_start_date(SCHEDULE),
    catchup=SCHEDULE["catch_up"] != "none",
    max_active_runs=1,  # run times in order: a run's panel comes from the one before
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5)},
    tags=["timetravel"],
) as dag:
    submit = " ".join(
        [
            shlex.quote(str(BIN / "spark-submit")),
            SUBMIT_ARGS,
            f"$({shlex.quote(str(BIN / 'timetravel'))} --conf {shlex.quote(str(CONF))} "
            "jars --submit-args)",
            shlex.quote(str(HOME / "jobs" / "run_scheduled_stage.py")),
            f"--conf {shlex.quote(str(CONF))}",
            '--run-time "$TIMETRAVEL_RUN_TIME"',
            '${TIMETRAVEL_NOW:+--now "$TIMETRAVEL_NOW"}',
        ]
    )
    # Values reach the command as environment variables, never spliced into its text.
    env = {
        "TIMETRAVEL_RUN_TIME": "{{ logical_date.isoformat() }}",
        "TIMETRAVEL_NOW": "{{ dag_run.conf.get('now', '') if dag_run.conf else '' }}",
    }
    chain(
        *(
            BashOperator(
                task_id=stage,
                bash_command=f"{submit} --stage {stage}",
                env=env,
                append_env=True,
                cwd=str(HOME),
            )
            for stage in SCHEDULE["stages"]
        )
    )
