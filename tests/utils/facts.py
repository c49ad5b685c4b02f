"""Builders for fact tables shaped like the snapshot job's (one commit per call)."""

from __future__ import annotations

from typing import Any

from timetravel.times import spark_instant
from timetravel.warehouse.layout import facts_table

RATINGS = "thumbs_up int, thumbs_down int"
PROFILE = "plan string, member_since timestamp, status string"


def write_facts(
    store: Any,
    source: str,
    fields: str,
    rows: list[tuple[Any, ...]],
    *,
    run_id: str,
    written_at: str,
) -> int:
    """Append ``rows`` = (member_id, snapshot_time ISO, *field values) to facts/<source>.

    Timestamp fields are given as ISO text. Returns the new Delta version.
    """
    from pyspark.sql import functions as F

    names = [f.strip().split(" ")[0] for f in fields.split(",")]
    types = [f.strip().split(" ", 1)[1] for f in fields.split(",")]
    text_schema = ", ".join(
        f"{n} {'string' if t == 'timestamp' else t}" for n, t in zip(names, types, strict=True)
    )
    raw = store.spark.createDataFrame(rows, f"member_id long, snapshot_time string, {text_schema}")
    frame = raw.select(
        "member_id",
        F.to_timestamp("snapshot_time").alias("snapshot_time"),
        F.lit(run_id).alias("run_id"),
        spark_instant(written_at).alias("written_at"),
        F.to_date(F.to_timestamp("snapshot_time")).alias("snapshot_date"),
        *(
            F.to_timestamp(n).alias(n) if t == "timestamp" else F.col(n)
            for n, t in zip(names, types, strict=True)
        ),
    )
    table = facts_table(source)
    store.create(table, frame.schema, partition_by=["snapshot_date"])
    version = store.append(table, frame, user_metadata=run_id)
    assert version is not None
    return version
