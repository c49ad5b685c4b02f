"""The jobs under spark-submit on a real standalone cluster (master + worker on loopback):
the context set is selected and its facts fetched by executors, not the driver."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.utils.jvm import quick_jvm_options
from tests.utils.standalone import StandaloneCluster, spark_home
from timetravel.config import (
    Allocation,
    Config,
    SelectionSettings,
    SnapshotSettings,
    SourceSettings,
)
from timetravel.demo.fleet import Fleet
from timetravel.demo.population import write_population
from timetravel.demo.world import World
from timetravel.runtime.jars import spark_submit_args
from timetravel.runtime.spark import spark_settings
from timetravel.warehouse.runs import RunsIndex
from timetravel.warehouse.store import DeltaStore

pytestmark = [pytest.mark.spark, pytest.mark.cluster]

ROOT = Path(__file__).resolve().parent.parent
T1 = "2026-06-01T06:00:00Z"
WORLD = {"seed": 3, "members": 300}
# The command line replaces the profile's executor options, so they are passed on with ours.
EXECUTOR_JAVA_OPTIONS = spark_settings(Config(), with_jars=False)["spark.executor.extraJavaOptions"]


def submit(cluster: StandaloneCluster, conf: Path, job: str, *args: str) -> str:
    cmd = [
        str(spark_home() / "bin" / "spark-submit"),
        "--master",
        cluster.master_url,
        "--conf",
        f"spark.pyspark.python={sys.executable}",
        "--conf",
        "spark.executor.memory=1g",
        "--conf",
        f"spark.executor.extraJavaOptions={EXECUTOR_JAVA_OPTIONS} {quick_jvm_options()}",
        "--conf",
        "spark.driver.host=127.0.0.1",
        *spark_submit_args(Config().spark.jars_dir),
        str(ROOT / "jobs" / job),
        "--conf",
        str(conf),
        *args,
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SPARK_LOCAL_IP": "127.0.0.1"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done.stdout


def test_select_and_snapshot_jobs_on_a_standalone_cluster(
    spark,
    local_config: Config,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    with Fleet.up(tmp_path / "fleet", world=WORLD, services=("ratings",), clock_at=T1) as fleet:
        config = local_config.model_copy(
            update={
                "selection": SelectionSettings(allocation=Allocation(sample_size=50), seed=1),
                "snapshot": SnapshotSettings(
                    fleet_file=str(fleet.state_dir / "fleet.json"),
                    sources=[
                        SourceSettings.model_validate(
                            {"name": "ratings", "schema": "thumbs_up int", "batch_size": 10}
                        )
                    ],
                ),
            }
        )
        store = DeltaStore(spark, config)
        write_population(store, World(**WORLD), T1)
        conf = tmp_path / "conf.yaml"
        conf.write_text(yaml.safe_dump(config.model_dump(by_alias=True)))
        (tmp_path / "cluster").mkdir()
        with StandaloneCluster(tmp_path / "cluster") as cluster:
            selected = submit(cluster, conf, "select_contexts.py", "--run-time", T1)
            snapped = submit(cluster, conf, "snapshot_facts.py", "--run-id", "run-20260601T060000Z")
        assert "50 of" in selected
        assert "snapshot ok" in snapped
        worker_logs = list((tmp_path / "cluster" / "work").rglob("stderr"))
        assert worker_logs, "no executor ran on the worker"
    run = RunsIndex(store.config).get("run-20260601T060000Z")
    assert run.status("select") == "ok" and run.status("snapshot") == "ok"
    assert run.stages["snapshot"].details["sources"]["ratings"]["fetched"] == 50
