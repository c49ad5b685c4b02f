"""Feast's Spark offline store on the pit_join benchmark data (runs in Feast's own venv).

    .cache/feast-venv/bin/python benchmarks/feast_join.py --data benchmarks/data/medium \
        --out OUT.parquet [--repeats 3]

Feast pins its own stack (pyspark 4.3, ...), so it lives in an isolated environment
(`make feast-env`); pit_join.py runs this script as a subprocess in the same benchmark run.
A real feature repo is applied: one Entity, three FeatureViews over SparkSources on the same
Parquet files (timestamp_field = snapshot_time, created_timestamp_column = written_at,
ttl = 7 days = our max_staleness), then ``get_historical_features`` with the labels as a
Spark entity DataFrame. Writes the first result to ``--out`` (for verification by
pit_join.py), then times ``repeats`` + 1 runs into a noop sink (``--repeats 0``: the cold run
only). Prints one JSON line, with the peak resident memory of this process and of its JVM.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from _memory import peak_mb, reset_peak, spark_jvm_pid

SOURCES = ("a", "b", "c")
STALENESS = timedelta(days=7)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    data = Path(args.data).resolve()

    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[*]")
        .appName("feast-bench")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", "4g")
        .config("spark.sql.shuffle.partitions", "8")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    jvm = spark_jvm_pid(spark)
    reset_peak()
    reset_peak(jvm)

    from feast import Entity, FeatureStore, FeatureView, Field, ValueType
    from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource
    from feast.types import Float64, Int64

    with tempfile.TemporaryDirectory() as repo:
        (Path(repo) / "feature_store.yaml").write_text(f"""
project: ttbench
registry: {repo}/registry.db
provider: local
offline_store:
  type: spark
  spark_conf:
    spark.master: "local[*]"
    spark.sql.session.timeZone: "UTC"
    spark.sql.shuffle.partitions: "8"
online_store:
  type: sqlite
  path: {repo}/online.db
entity_key_serialization_version: 3
""")
        store = FeatureStore(repo_path=repo)
        context = Entity(name="context", join_keys=["context_id"], value_type=ValueType.INT64)
        views = [
            FeatureView(
                name=name,
                entities=[context],
                ttl=STALENESS,
                online=False,
                schema=[Field(name="f1", dtype=Float64), Field(name="f2", dtype=Int64)],
                source=SparkSource(
                    name=f"{name}_source",
                    path=str(data / f"{name}.parquet"),
                    file_format="parquet",
                    timestamp_field="snapshot_time",
                    created_timestamp_column="written_at",
                ),
            )
            for name in SOURCES
        ]
        store.apply([context, *views])
        labels = spark.read.parquet(str(data / "labels.parquet"))
        features = [f"{name}:{f}" for name in SOURCES for f in ("f1", "f2")]
        columns = [
            "context_id",
            "label_time",
            "label",
            *(f"{name}__{f}" for name in SOURCES for f in ("f1", "f2")),
        ]

        def result():  # type: ignore[no-untyped-def]
            job = store.get_historical_features(
                entity_df=labels, features=features, full_feature_names=True
            )
            return job.to_spark_df().select(*columns)

        result().write.mode("overwrite").parquet(args.out)
        times = []
        for _ in range(args.repeats + 1):
            started = time.perf_counter()
            result().write.format("noop").mode("overwrite").save()
            times.append(time.perf_counter() - started)
    import feast
    import pyspark

    print(
        json.dumps(
            {
                "cold_s": round(times[0], 3),
                "median_s": round(statistics.median(times[1:]), 3) if times[1:] else None,
                "runs_s": [round(t, 3) for t in times],
                "peak_rss_mb": {"python": peak_mb(), "spark_jvm": peak_mb(jvm)},
                "feast": feast.__version__,
                "pyspark": pyspark.__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
