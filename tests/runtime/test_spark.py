"""The session factory: our settings in plain Python, the command line's under spark-submit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.utils.standalone import spark_home
from timetravel.config import Config, load_config_dict
from timetravel.runtime.jars import spark_submit_args
from timetravel.runtime.spark import session_settings, spark_settings

ROOT = Path(__file__).resolve().parents[2]


def test_settings_without_s3() -> None:
    settings = spark_settings(Config(), with_jars=False)
    assert settings["spark.sql.session.timeZone"] == "UTC"
    assert settings["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    assert not any(k.startswith("spark.hadoop.fs.s3a.") for k in settings)


def test_s3a_settings_include_checksum_compatibility() -> None:
    config = load_config_dict(
        {
            "warehouse": {"root": "s3a://b/p"},
            "s3": {"endpoint": "http://127.0.0.1:9000", "region": "eu-west-1"},
        }
    )
    settings = spark_settings(config, with_jars=False)
    prefix = "spark.hadoop.fs.s3a."
    assert settings[prefix + "endpoint"] == "http://127.0.0.1:9000"
    assert settings[prefix + "path.style.access"] == "true"
    assert settings[prefix + "endpoint.region"] == "eu-west-1"
    assert settings[prefix + "connection.ssl.enabled"] == "false"
    assert settings[prefix + "checksum.generation"] == "false"
    assert settings[prefix + "request.md5.header"] == "true"
    assert settings[prefix + "create.checksum.algorithm"] == ""


def test_user_spark_conf_wins() -> None:
    config = load_config_dict({"spark": {"conf": {"spark.sql.shuffle.partitions": "64"}}})
    assert spark_settings(config, with_jars=False)["spark.sql.shuffle.partitions"] == "64"


@pytest.mark.spark
def test_session_is_utc_with_delta(spark) -> None:  # type: ignore[no-untyped-def]
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    assert spark.conf.get("spark.sql.shuffle.partitions") == "2"
    assert spark.sparkContext.master == "local[2]"


@pytest.mark.spark
def test_column_call_sites_are_not_recorded_and_errors_still_name_the_column(spark) -> None:  # type: ignore[no-untyped-def]
    from pyspark.errors import AnalysisException
    from pyspark.errors.utils import is_debugging_enabled
    from pyspark.sql import functions as F

    assert spark.conf.get("spark.python.sql.dataFrameDebugging.enabled") == "false"
    assert not is_debugging_enabled()
    with pytest.raises(AnalysisException, match="no_such_column"):
        spark.range(1).select(F.col("no_such_column") + 1)


def test_column_call_sites_can_be_turned_back_on() -> None:
    key = "spark.python.sql.dataFrameDebugging.enabled"
    config = load_config_dict({"spark": {"conf": {key: "true"}}})
    assert spark_settings(config, with_jars=False)[key] == "true"


@pytest.mark.spark
def test_session_settings_are_restored_even_after_an_error(spark) -> None:  # type: ignore[no-untyped-def]
    absent, present = "spark.sql.timetravel.test.absent", "spark.sql.shuffle.partitions"
    before = spark.conf.get(present)
    with pytest.raises(RuntimeError), session_settings(spark, {absent: "x", present: "7"}):
        assert (spark.conf.get(absent), spark.conf.get(present)) == ("x", "7")
        raise RuntimeError("the block failed")
    assert spark.conf.get(absent, None) is None
    assert spark.conf.get(present) == before


def test_spark_submit_command_line_wins(test_config: Config, tmp_path: Path) -> None:
    """Under spark-submit, --master and --conf beat the profile; our defaults fill the rest."""
    submit = spark_home() / "bin" / "spark-submit"
    cmd = [
        str(submit),
        "--master",
        "local[1]",
        "--conf",
        "spark.sql.shuffle.partitions=3",
        *spark_submit_args(test_config.spark.jars_dir),
        str(ROOT / "tests" / "utils" / "print_spark_conf.py"),
        str(ROOT / "conf" / "local.yaml"),
    ]
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    result = json.loads(lines[0][len("RESULT ") :])
    assert result == {
        "spark.master": "local[1]",  # command line, not the profile's local[*]
        "spark.sql.shuffle.partitions": "3",  # command line, not the profile's 8
        "spark.sql.session.timeZone": "UTC",  # ours, filled in
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "submitted": True,
        "delta_rows": 3,
    }
