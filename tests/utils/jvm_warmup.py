"""Run under spark-submit once per test machine: load the classes the tests' JVMs load.

The JVM that runs this dumps every class it loaded into a class-data archive at exit
(``tests.utils.jvm.ensure_class_archive``); short-lived test JVMs map that archive instead
of parsing and verifying the same classes again. Whatever this touches starts faster:
Delta commits, reads of old versions and merges, windows, joins, Parquet, CSV and Arrow.
"""

import sys
import tempfile
from datetime import timedelta
from pathlib import Path

from pyspark.sql import functions as F

from timetravel.asof.spark import point_in_time_join
from timetravel.config import load_config
from timetravel.runtime.spark import get_spark

spark = get_spark(load_config(sys.argv[1]))
spark.sparkContext.setLogLevel("ERROR")
root = Path(tempfile.mkdtemp(prefix="jvm-warmup-"))
table = str(root / "facts")
for version in range(3):
    frame = spark.range(50).select(
        F.col("id").alias("context_id"),
        F.timestamp_seconds(F.col("id") * 60 + version).alias("snapshot_time"),
        (F.col("id") * version).alias("value"),
    )
    frame.write.format("delta").mode("append").save(table)
old = spark.read.format("delta").option("versionAsOf", 0).load(table)
facts = spark.read.format("delta").load(table)
spark.sql(
    f"MERGE INTO delta.`{table}` t USING delta.`{table}` s ON t.context_id = s.context_id "
    "AND t.snapshot_time = s.snapshot_time WHEN MATCHED THEN UPDATE SET *"
)
labels = old.select(
    "context_id", (F.col("snapshot_time") + F.expr("INTERVAL 1 MINUTE")).alias("label_time")
)
joined = point_in_time_join(labels, {"facts": facts}, max_staleness=timedelta(days=1))
joined.write.parquet(str(root / "joined"))
spark.read.parquet(str(root / "joined")).write.csv(str(root / "csv"), header=True)
spark.read.csv(str(root / "csv"), header=True).join(old, "context_id").toArrow()
print("warm-up rows:", facts.groupBy("value").count().count())
spark.stop()
