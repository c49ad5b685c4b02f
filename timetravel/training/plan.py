"""Building a training set on either engine: plan, join, encode, assemble.

A :class:`Plan` fixes everything that decides the output (encoders and versions, fact tables
and Delta versions, staleness bounds, key and time columns). :func:`build_spark` and
:func:`build_arrow` carry it out on Spark and on the embedded engine: the same as-of
contract, then the same encoder code over Arrow batches, so both give identical rows.

Output columns: the label columns, one column per feature, then per source
``<alias>__snapshot_time`` and ``<alias>__run_id`` (which snapshot each value came from;
null when none was usable).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from timetravel.asof.contract import output_column
from timetravel.asof.duckdb import point_in_time_join_arrow, point_in_time_one_row
from timetravel.asof.spark import point_in_time_join
from timetravel.config import Config
from timetravel.encoders import (
    Encoder,
    arrow_type,
    encode_batches,
    encode_columns,
    source_alias,
    spark_type,
)
from timetravel.errors import LabelError
from timetravel.training.manifest import SourcePin
from timetravel.warehouse.deltars import join_facts

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame

    from timetravel.warehouse.store import DeltaStore

__all__ = ["Plan", "build_spark", "build_arrow", "provenance_columns", "output_schema"]

WRITTEN_TIME = "written_at"
SNAPSHOT_TIME = "snapshot_time"
RUN_ID = "run_id"


@dataclass(frozen=True)
class Plan:
    """Everything that decides a training set's rows, besides the labels."""

    encoders: tuple[Encoder, ...]
    sources: dict[str, SourcePin]  # conf source name -> pinned fact table
    entity: tuple[str, ...]
    label_time: str
    staleness: dict[str, timedelta | None]  # conf source name -> bound

    def fields(self, source: str) -> list[str]:
        """The fact columns one source must supply: keys, times, run id, fields read."""
        wanted = [*self.entity, SNAPSHOT_TIME, WRITTEN_TIME, RUN_ID]
        for encoder in self.encoders:
            for name in encoder.reads.get(source, ()):
                if name not in wanted:
                    wanted.append(name)
        return wanted

    def check_labels(self, columns: Sequence[str]) -> None:
        """Label columns must not collide with the columns the training set adds."""
        added = {e.name for e in self.encoders} | set(provenance_columns(self))
        clash = sorted(added & set(columns))
        if clash:
            raise LabelError(f"label column(s) {clash} collide with output columns; rename them")
        reserved = [c for c in columns if c.startswith("__tt_")]
        if reserved:
            raise LabelError(f"label column(s) {reserved} use the reserved prefix '__tt_'")

    def alias_staleness(self) -> dict[str, timedelta]:
        return {source_alias(s): bound for s, bound in self.staleness.items() if bound is not None}

    def join_options(self) -> dict[str, Any]:
        """The as-of join's options for this plan (the same for every engine)."""
        return {
            "entity": list(self.entity),
            "label_time": self.label_time,
            "written_time": WRITTEN_TIME,
            "max_staleness": self.alias_staleness(),
        }


def provenance_columns(plan: Plan) -> list[str]:
    return [
        output_column(source_alias(s), c) for s in plan.sources for c in (SNAPSHOT_TIME, RUN_ID)
    ]


def output_schema(plan: Plan, labels: pa.Schema) -> pa.Schema:
    """The training set's Arrow schema (the same on both engines)."""
    import pyarrow as pa

    fields = [pa.field(f.name, f.type) for f in labels]
    fields += [pa.field(e.name, arrow_type(e.output)) for e in plan.encoders]
    for column in provenance_columns(plan):
        kind = pa.timestamp("us", tz="UTC") if column.endswith(SNAPSHOT_TIME) else pa.string()
        fields.append(pa.field(column, kind))
    return pa.schema(fields)


def build_spark(store: DeltaStore, labels: DataFrame, plan: Plan) -> DataFrame:
    """The training set as a (lazy) Spark DataFrame: one shuffle, encoders in mapInArrow."""
    from pyspark.sql.types import StructField, StructType, _parse_datatype_string

    plan.check_labels(labels.columns)
    sources = {
        source_alias(s): store.read(pin.table, version=pin.version).select(*plan.fields(s))
        for s, pin in plan.sources.items()
    }
    joined = point_in_time_join(
        labels,
        sources,
        **plan.join_options(),
        plan=store.config.query.spark_join_plan,
    )
    keep = [*labels.columns, *provenance_columns(plan)]
    kept = joined.select(*(f"`{c}`" for c in keep)).schema
    schema = StructType(
        [
            *kept.fields,
            *(
                StructField(e.name, _parse_datatype_string(spark_type(e.output)))
                for e in plan.encoders
            ),
        ]
    )
    encoded = joined.mapInArrow(
        partial(
            encode_batches, encoders=list(plan.encoders), keep=keep, label_time=plan.label_time
        ),
        schema,
    )
    order = [*labels.columns, *(e.name for e in plan.encoders), *provenance_columns(plan)]
    return encoded.select(*(f"`{c}`" for c in order))


FactReader = Callable[[str, int, Sequence[str], str], "pa.Table"]


def build_arrow(
    config: Config, labels: pa.Table, plan: Plan, *, reader: FactReader | None = None
) -> pa.Table:
    """The training set on the embedded engine (delta-rs reads, DuckDB ASOF, Arrow encoders).

    ``reader(table, version, columns, source)`` replaces the default partition-pruned reads
    (point lookups pass one that also filters on the key).
    """
    import pyarrow as pa

    plan.check_labels(labels.column_names)
    if reader is None:
        aliases = {source_alias(s): (pin.table, pin.version) for s, pin in plan.sources.items()}
        columns = {source_alias(s): plan.fields(s) for s in plan.sources}
        joined = join_facts(
            config,
            labels,
            aliases,
            **plan.join_options(),
            drop=(),
            columns=columns,
        )
    else:
        facts = {
            source_alias(s): reader(pin.table, pin.version, plan.fields(s), s)
            for s, pin in plan.sources.items()
        }
        join = point_in_time_one_row if labels.num_rows == 1 else point_in_time_join_arrow
        joined = join(
            labels,
            facts,
            **plan.join_options(),
        )
    values = encode_columns(joined, list(plan.encoders), label_time=plan.label_time)
    schema = output_schema(plan, labels.schema)
    arrays = [labels.column(c) for c in labels.column_names]
    arrays += [values[e.name] for e in plan.encoders]
    arrays += [joined.column(c) for c in provenance_columns(plan)]
    return pa.table(arrays, names=schema.names).cast(schema)
