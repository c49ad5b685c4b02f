"""The Airflow DAG, executed for real in Airflow's own venv, writes the runs index rows the
built-in scheduler writes for the same run times and the same instant."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from tests.collect.test_snapshot import source
from timetravel.config import (
    Allocation,
    Config,
    ScheduleSettings,
    SelectionSettings,
    SnapshotSettings,
)
from timetravel.demo.fleet import Fleet
from timetravel.demo.population import write_population
from timetravel.demo.world import World
from timetravel.schedule.runner import run_due
from timetravel.warehouse.runs import RunsIndex
from timetravel.warehouse.store import DeltaStore

pytestmark = [pytest.mark.spark, pytest.mark.airflow]

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW_BIN = ROOT / ".cache" / "airflow-venv" / "bin"
WORLD = {"seed": 6, "members": 120}
DAY1, DAY2 = (datetime(2026, 6, d, 6, tzinfo=UTC) for d in (1, 2))
NOW = DAY2 + timedelta(hours=2)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with Fleet.up(tmp_path_factory.mktemp("fleet"), world=WORLD, services=("ratings",)) as up:
        up.clock.set(NOW.isoformat())
        yield up


def profile(base: Config, fleet: Fleet, root: Path) -> Config:
    return base.model_copy(
        update={
            "warehouse": base.warehouse.model_copy(update={"root": str(root)}),
            "selection": SelectionSettings(allocation=Allocation(sample_size=15), seed=3),
            "snapshot": SnapshotSettings(
                fleet_file=str(fleet.state_dir / "fleet.json"), sources=[source("ratings")]
            ),
            "schedule": ScheduleSettings(cron="0 6 * * *", start_at=DAY1, catch_up="latest"),
        }
    )


def rows(config: Config) -> set[tuple[str, str, str]]:
    return {
        (run.run_id, stage, info.status)
        for run in RunsIndex(config).list()
        for stage, info in run.stages.items()
    }


def test_airflow_dag_matches_the_built_in_scheduler(  # type: ignore[no-untyped-def]
    spark, local_config: Config, fleet: Fleet, tmp_path: Path
) -> None:
    assert (AIRFLOW_BIN / "airflow").exists(), "Airflow's venv is missing: make airflow-env"
    built_in = profile(local_config, fleet, tmp_path / "built-in")
    by_airflow = profile(local_config, fleet, tmp_path / "airflow")
    for config in (built_in, by_airflow):
        write_population(DeltaStore(spark, config), World(**WORLD), DAY1 - timedelta(hours=1))  # type: ignore[arg-type]

    run_due(DeltaStore(spark, built_in), built_in, now=NOW, say=lambda _: None)
    expected = rows(built_in)
    assert expected == {
        ("run-20260601T060000Z", "schedule", "missed"),
        ("run-20260602T060000Z", "select", "ok"),
        ("run-20260602T060000Z", "snapshot", "ok"),
        ("run-20260602T060000Z", "schedule", "ok"),
    }

    conf = tmp_path / "airflow.yaml"
    conf.write_text(yaml.safe_dump(by_airflow.model_dump(mode="json")))
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow-home"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "TIMETRAVEL_HOME": str(ROOT),
        "TIMETRAVEL_CONF": str(conf),
        "TIMETRAVEL_BIN": str(Path(sys.executable).parent),
        "TIMETRAVEL_SUBMIT_ARGS": "--master local[1]",
        "PYSPARK_PYTHON": sys.executable,
    }
    airflow = str(AIRFLOW_BIN / "airflow")
    migrated = subprocess.run(
        [airflow, "db", "migrate"], env=env, capture_output=True, text=True, timeout=300
    )
    assert migrated.returncode == 0, migrated.stderr[-2000:]
    done = subprocess.run(
        [
            str(AIRFLOW_BIN / "python"),
            str(ROOT / "tests" / "utils" / "airflow_driver.py"),
            str(ROOT / "dags" / "timetravel_dag.py"),
            NOW.isoformat(),
            DAY1.isoformat(),
            DAY2.isoformat(),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
    )
    results = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and results, (done.stdout + done.stderr)[-4000:]
    dag_runs = json.loads(results[0][len("RESULT ") :])
    assert [(r["state"], r["tasks"]) for r in dag_runs] == [
        ("success", {"select": "success", "snapshot": "success"}),
        ("success", {"select": "success", "snapshot": "success"}),
    ], (done.stdout + done.stderr)[-4000:]
    assert rows(by_airflow) == expected
