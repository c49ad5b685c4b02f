"""The two engines a training set can be built on, behind one small interface, so that the
facade chooses an engine once and never branches on its name again.

- :class:`SparkEngine`: labels as a Spark DataFrame, the Spark join, stats on the executors;
  for label sets too big for one machine, and on a cluster.
- :class:`EmbeddedEngine`: labels as Arrow, delta-rs reads and the DuckDB join in-process.

Both produce the same rows and the same label fingerprint (tested), so a manifest built on
one rebuilds bit for bit on the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from timetravel.training.dataset import TrainingSet
from timetravel.training.label_location import LabelLocation
from timetravel.training.labels import (
    canonical_arrow,
    canonical_spark,
    fingerprint_arrow,
    fingerprint_spark,
    read_labels_arrow,
    read_labels_spark,
)
from timetravel.training.plan import Plan, build_arrow, build_spark

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

    from timetravel.config import Config
    from timetravel.training.manifest import Manifest
    from timetravel.warehouse.store import DeltaStore

__all__ = ["Built", "TrainingEngine", "SparkEngine", "EmbeddedEngine", "is_spark_frame"]

_SPARK_TYPES = {"int64": "bigint", "int32": "int", "int16": "smallint", "int8": "tinyint"}


@dataclass(frozen=True)
class Built:
    """A training set's rows before its manifest: the result, the canonical labels, their
    fingerprint and columns, the row count and each feature's null count."""

    result: Any
    labels: Any
    fingerprint: str
    label_columns: list[str]
    rows: int
    nulls: dict[str, int]


class TrainingEngine(Protocol):
    name: str

    def read_labels(self, location: LabelLocation) -> Any:
        """Labels at a resolved location, in this engine's own type."""

    def build(self, labels: Any, plan: Plan, key_types: Mapping[str, pa.DataType]) -> Built:
        """Canonical labels joined as of their times, with the plan's encoders applied."""

    def training_set(self, manifest: Manifest, built: Built) -> TrainingSet:
        """The result, with its manifest."""


def is_spark_frame(value: Any) -> bool:
    module = type(value).__module__
    return module.startswith("pyspark.") and hasattr(value, "toArrow")


def _spark_key_types(key_types: Mapping[str, pa.DataType]) -> dict[str, str]:
    return {k: _SPARK_TYPES.get(str(t), "bigint") for k, t in key_types.items()}


class SparkEngine:
    name = "spark"

    def __init__(self, config: Config, spark: SparkSession, store: DeltaStore) -> None:
        self.config, self.spark, self.store = config, spark, store

    def read_labels(self, location: LabelLocation) -> Any:
        return read_labels_spark(self.spark, location)

    def build(self, labels: Any, plan: Plan, key_types: Mapping[str, pa.DataType]) -> Built:
        if is_spark_frame(labels):
            frame = canonical_spark(
                labels, plan.entity, plan.label_time, _spark_key_types(key_types)
            )
        else:
            table = canonical_arrow(labels, plan.entity, plan.label_time, key_types)
            frame = self.spark.createDataFrame(table)
        result = build_spark(self.store, frame, plan).persist()
        rows, nulls = _spark_stats(result, plan)
        return Built(result, frame, fingerprint_spark(frame), frame.columns, rows, nulls)

    def training_set(self, manifest: Manifest, built: Built) -> TrainingSet:
        return TrainingSet(
            self.config, manifest, frame=built.result, labels_frame=built.labels, spark=self.spark
        )


class EmbeddedEngine:
    name = "duckdb"

    def __init__(self, config: Config, spark: SparkSession | None) -> None:
        self.config, self.spark = config, spark  # Spark only if already started

    def read_labels(self, location: LabelLocation) -> Any:
        return read_labels_arrow(self.config, location)

    def build(self, labels: Any, plan: Plan, key_types: Mapping[str, pa.DataType]) -> Built:
        if is_spark_frame(labels):
            labels = canonical_spark(
                labels, plan.entity, plan.label_time, _spark_key_types(key_types)
            ).toArrow()
        table = canonical_arrow(labels, plan.entity, plan.label_time, key_types)
        result = build_arrow(self.config, table, plan)
        nulls = {e.name: result.column(e.name).null_count for e in plan.encoders}
        return Built(
            result, table, fingerprint_arrow(table), table.column_names, result.num_rows, nulls
        )

    def training_set(self, manifest: Manifest, built: Built) -> TrainingSet:
        return TrainingSet(
            self.config, manifest, table=built.result, labels_table=built.labels, spark=self.spark
        )


def _spark_stats(result: DataFrame, plan: Plan) -> tuple[int, dict[str, int]]:
    from pyspark.sql import functions as F

    row = result.agg(
        F.count(F.lit(1)).alias("__rows"),
        *(F.count(F.col(f"`{e.name}`")).alias(e.name) for e in plan.encoders),
    ).first()
    assert row is not None
    rows = int(row["__rows"])
    return rows, {e.name: rows - int(row[e.name]) for e in plan.encoders}
