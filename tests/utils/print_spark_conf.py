"""Run under spark-submit by tests: print the settings the session ended up with, as JSON."""

import json
import sys

from timetravel.config import load_config
from timetravel.runtime.spark import get_spark, launched_by_spark_submit

spark = get_spark(load_config(sys.argv[1]))
spark.sparkContext.setLogLevel("ERROR")
keys = [
    "spark.master",
    "spark.sql.shuffle.partitions",
    "spark.sql.session.timeZone",
    "spark.sql.extensions",
]
result = {k: spark.conf.get(k) for k in keys}
result["submitted"] = launched_by_spark_submit()
result["delta_rows"] = spark.range(3).count()
print("RESULT " + json.dumps(result))
spark.stop()
