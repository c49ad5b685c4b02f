"""The SparkSession factory: UTC, Delta, cached jars, S3A endpoint settings.

Two ways to run:

- **Plain Python** (``timetravel ...``, tests, notebooks): timetravel starts the JVM itself
  with ``spark.master`` from the config and the cached Delta/S3A jars on ``spark.jars``.
- **spark-submit**: the JVM already exists with the master, ``--conf`` and ``--jars`` given
  on the command line. Those always win: every setting here is applied only if missing.
  Pass our jars with ``spark-submit $(timetravel jars --submit-args) jobs/....py``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

from timetravel.config import Config
from timetravel.errors import SetupError
from timetravel.runtime.jars import fetch_jars
from timetravel.warehouse.s3 import spark_settings as s3_spark_settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["get_spark", "spark_settings", "launched_by_spark_submit", "session_settings"]


def launched_by_spark_submit() -> bool:
    """True when this Python process was started by spark-submit (the JVM came first)."""
    # PythonRunner exports the gateway port to the Python driver it launches.
    return "PYSPARK_GATEWAY_PORT" in os.environ


@contextmanager
def session_settings(spark: SparkSession, settings: dict[str, str]) -> Iterator[None]:
    """Runtime SQL ``settings`` on ``spark`` for the queries run in this block; each key's
    earlier value (or its absence) is restored after."""
    previous = {key: spark.conf.get(key, None) for key in settings}
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, old in previous.items():
            if old is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, old)


def spark_settings(config: Config, *, with_jars: bool = True) -> dict[str, str]:
    """Every Spark setting timetravel needs for ``config``, as plain key/values."""
    settings = {
        "spark.master": config.spark.master,
        "spark.app.name": config.spark.app_name,
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.shuffle.partitions": str(config.spark.shuffle_partitions),
        "spark.ui.enabled": str(config.spark.ui_enabled).lower(),
        "spark.driver.memory": config.spark.driver_memory,
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        # On, PySpark records the Python call site of every Column function for error
        # messages: a stack walk and three JVM calls each. The as-of join builds ~400 of them:
        # 0.25 s of the driver's time per join at medium (0.6 s to 0.35 s for the sweep plan).
        # Errors still name the failing expression; `spark.conf` can turn it back on.
        "spark.python.sql.dataFrameDebugging.enabled": "false",
        # Delta rebuilds table state with this many tasks (default 50: slow on small tables).
        "spark.databricks.delta.snapshotPartitions": str(config.spark.shuffle_partitions),
        # Delta 4 copies a table's file list into each commit's checksum while the table has
        # at most 50 files; where the previous checksum has none (a new table's first commit,
        # for one), the commit first rebuilds the table's state in a Spark job to get it. Our
        # tables take many small commits and are read with filters, which do not use that
        # list: off, the snapshot tests' JVM spent 6% less CPU (78 -> 73.5 s, two runs each),
        # the training and truth tests' the same (71 s).
        "spark.databricks.delta.allFilesInCrc.enabled": "false",
        # JVM default zone UTC too, so nothing on the JVM side depends on the host's TZ.
        "spark.driver.extraJavaOptions": "-Duser.timezone=UTC" + _log_options(config),
        "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
    }
    if config.spark.master.startswith("local"):
        # Python workers must run the driver's interpreter (the venv), not whatever
        # `python3` is first on PATH.
        settings["spark.pyspark.python"] = sys.executable
        # Loopback only: a laptop's hostname may not resolve, and nothing should listen wider.
        settings["spark.driver.host"] = "127.0.0.1"
        settings["spark.driver.bindAddress"] = "127.0.0.1"
    if with_jars:
        settings["spark.jars"] = ",".join(str(p) for p in fetch_jars(config.spark.jars_dir))
    if config.s3 is not None:
        settings.update(s3_spark_settings(config.s3))
    settings.update(config.spark.conf)
    return settings


def _log_options(config: Config) -> str:
    """JVM options that send Spark's log lines to ``spark.log_file`` instead of the terminal."""
    if config.spark.log_file is None:
        return ""
    log_file = Path(config.spark.log_file).resolve()
    log_file.parent.mkdir(parents=True, exist_ok=True)
    profile = Path(__file__).with_name("log4j2-file.properties")
    # Quoted: Spark's launcher splits these options like a shell would.
    return f' -Dlog4j2.configurationFile="{profile.as_uri()}" -Dtimetravel.spark.log="{log_file}"'


def get_spark(config: Config | None = None) -> SparkSession:
    """Return the SparkSession for ``config`` (the active one if it already exists).

    Example:
        >>> spark = get_spark(load_config())          # doctest: +SKIP
        >>> spark.conf.get("spark.sql.session.timeZone")  # doctest: +SKIP
        'UTC'
    """
    from pyspark import SparkConf, SparkContext
    from pyspark.sql import SparkSession

    config = config or Config()
    submitted = launched_by_spark_submit()
    if submitted:
        # Connect to spark-submit's JVM first: only then does SparkConf() load the command
        # line's --master/--conf (JVM system properties) instead of starting empty.
        SparkContext._ensure_initialized()
    elif config.spark.master.startswith("local"):
        # SparkContext starts Python workers with $PYSPARK_PYTHON (default: `python3` on
        # PATH, not this venv); the spark.pyspark.python setting is only read by spark-submit.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    # setIfMissing only fills gaps, so whatever the command line said wins.
    conf = SparkConf()
    for key, value in spark_settings(config, with_jars=not submitted).items():
        if submitted and key == "spark.master":
            continue
        conf.setIfMissing(key, value)
    starts_jvm = not submitted and SparkContext._gateway is None
    log_file = config.spark.log_file
    with _stderr_to(log_file) if starts_jvm and log_file is not None else nullcontext():
        spark = SparkSession.builder.config(conf=conf).getOrCreate()
    _check_delta_on_classpath(spark)
    return spark


@contextmanager
def _stderr_to(log_file: str) -> Iterator[None]:
    """Point file descriptor 2 at ``log_file`` while the JVM is launched.

    The JVM inherits it, so what it prints itself before any logger exists (such as
    "WARNING: Using incubator modules") lands in the log file with Spark's own lines,
    not between the command's output. This process gets its terminal back at once.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(Path(log_file).resolve(), "ab") as log:
            os.dup2(log.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _check_delta_on_classpath(spark: SparkSession) -> None:
    from py4j.java_gateway import JavaClass

    jvm = spark.sparkContext._jvm
    assert jvm is not None
    if not isinstance(jvm.io.delta.tables.DeltaTable, JavaClass):
        raise SetupError(
            "the Delta Lake jars are not on the driver's classpath; under "
            "spark-submit pass them with: spark-submit $(timetravel jars "
            "--submit-args) ..."
        )
