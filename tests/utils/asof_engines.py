"""Run the as-of join on each engine from plain Python rows, and read results back as
sorted dicts with timestamps as 'YYYY-MM-DD HH:MM:SS[.ffffff]' UTC strings."""

from __future__ import annotations

from typing import Any

# "one_row" is the lookup path (timetravel.asof.duckdb.point_in_time_one_row), run here once
# per label row so that every case of the suite, brute-force ones included, checks it too.
# "duckdb_streamed" is the embedded join as training sets run it: sources streamed from
# pyarrow datasets under a DuckDB memory limit.
# "spark" and "spark_band" are the Spark join's two plans (timetravel.asof.spark_plan), each
# forced, so every case checks both whatever ``auto`` would choose on its data.
ENGINES = ["spark", "spark_band", "duckdb", "duckdb_streamed", "one_row"]
SPARK_PLANS = {"spark": "sweep", "spark_band": "band"}
# conf/test.yaml has Spark interpret expressions (fast on tiny data); the contract checks the
# Spark join on the path production runs: Spark's defaults, generated code.
GENERATED_CODE = {
    "spark.sql.codegen.factoryMode": "FALLBACK",
    "spark.sql.codegen.wholeStage": "true",
}
# The band plan's joins as large label sets get them: shuffled, never broadcast. The suite's
# tiny inputs would be broadcast; tests/asof/test_spark_band.py checks that path by hand.
NO_BROADCAST = {
    "spark.sql.autoBroadcastJoinThreshold": "-1",
    "spark.sql.adaptive.autoBroadcastJoinThreshold": "-1",
}
SPARK_SETTINGS = {"spark": GENERATED_CODE, "spark_band": {**GENERATED_CODE, **NO_BROADCAST}}


def sort_key(row: dict[str, Any]) -> list[tuple[bool, str]]:
    # Label column 'y' first (the tests' expectations read in that order), then everything.
    return [(True, str(row.get("y")))] + [(v is not None, str(v)) for v in row.values()]


class PitRunner:
    def __init__(self, engine: str, spark: Any) -> None:
        self.engine = engine
        self.spark = spark
        # The executed plan of each Spark join this runner collected, newest last.
        self.spark_plans: list[str] = []

    def frame(self, rows: list[tuple[Any, ...]], schema: str):  # type: ignore[no-untyped-def]
        """A Spark DataFrame; timestamp columns are given as UTC strings (TZ-proof)."""
        from pyspark.sql import functions as F
        from pyspark.sql.types import _parse_datatype_string

        struct = _parse_datatype_string(schema)

        def spark_text(kind: str) -> str:
            return "string" if kind == "timestamp" else kind

        as_text = ", ".join(
            f"`{f.name}` {spark_text(f.dataType.simpleString())}" for f in struct.fields
        )
        frame = self.spark.createDataFrame(rows, as_text)
        return frame.select(
            *(
                F.to_timestamp(f.name).alias(f.name)
                if f.dataType.simpleString() == "timestamp"
                else F.col(f.name)
                for f in struct.fields
            )
        )

    def run(
        self,
        labels: list[tuple[Any, ...]],
        labels_schema: str,
        sources: dict[str, tuple[list[tuple[Any, ...]], str]],
        **options: Any,
    ) -> list[dict[str, Any]]:
        from timetravel.asof.spark import point_in_time_join

        options.setdefault("entity", "context_id")
        label_frame = self.frame(labels, labels_schema)
        source_frames = {n: self.frame(rows, schema) for n, (rows, schema) in sources.items()}
        if self.engine in SPARK_PLANS:
            from timetravel.runtime.spark import session_settings

            options.setdefault("plan", SPARK_PLANS[self.engine])
            with session_settings(self.spark, SPARK_SETTINGS[self.engine]):
                joined = point_in_time_join(label_frame, source_frames, **options)
                return _collect(joined, plans=self.spark_plans)
        if self.engine == "duckdb":
            from timetravel.asof.duckdb import point_in_time_join_arrow

            out = point_in_time_join_arrow(
                _arrow(label_frame), {n: _arrow(f) for n, f in source_frames.items()}, **options
            )
            return _collect_arrow(out)
        if self.engine == "duckdb_streamed":
            import pyarrow.dataset as ds

            from timetravel.asof.duckdb import point_in_time_join_arrow

            out = point_in_time_join_arrow(
                _arrow(label_frame),
                {n: ds.dataset(_arrow(f)) for n, f in source_frames.items()},
                memory_limit_mb=64,
                **options,
            )
            return _collect_arrow(out)
        if self.engine == "one_row":
            import pyarrow as pa

            from timetravel.asof.duckdb import point_in_time_one_row
            from timetravel.errors import AsOfError

            table = _arrow(label_frame)
            sources_arrow = {n: _arrow(f) for n, f in source_frames.items()}
            if table.num_rows == 0:
                # No row to look up: bad input must still be named, valid input gives none.
                try:
                    point_in_time_one_row(table, sources_arrow, **options)
                except AsOfError as exc:
                    if "takes one label row" not in str(exc):
                        raise
                return []
            parts = [
                point_in_time_one_row(table.slice(i, 1), sources_arrow, **options)
                for i in range(table.num_rows)
            ]
            return _collect_arrow(pa.concat_tables(parts))
        raise AssertionError(f"unknown engine {self.engine}")


def instant_text(micros: int | None) -> str | None:
    """Epoch micros -> '2026-01-01 04:00:00' (with '.ffffff' only when non-zero)."""
    from timetravel.times import from_micros

    if micros is None:
        return None
    value = from_micros(micros)
    text = f"{value.year:04d}-{value:%m-%d %H:%M:%S}"  # %Y gives "1", not "0001", for year 1
    return f"{text}.{value.microsecond:06d}" if value.microsecond else text


def _collect(frame, plans: list[str] | None = None) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """``frame``'s rows, sorted; with ``plans``, the executed plan is appended to it."""
    from pyspark.sql import functions as F

    stamps = {c for c, t in frame.dtypes if t == "timestamp"}
    micros = [F.unix_micros(c).alias(c) if c in stamps else F.col(c) for c in frame.columns]
    readable = frame.select(*micros)
    rows = [
        {k: instant_text(v) if k in stamps else v for k, v in r.asDict().items()}
        for r in readable.collect()
    ]
    if plans is not None:
        plans.append(str(readable._jdf.queryExecution().executedPlan().toString()))
    return sorted(rows, key=sort_key)


def _arrow(frame):  # type: ignore[no-untyped-def]
    """A Spark DataFrame as an Arrow table, timestamps as UTC microseconds (TZ-proof)."""
    import pyarrow as pa
    from pyspark.sql import functions as F

    stamps = [c for c, t in frame.dtypes if t == "timestamp"]
    table = frame.select(
        *(F.unix_micros(c).alias(c) if c in stamps else F.col(c) for c in frame.columns)
    ).toArrow()
    for name in stamps:
        index = table.column_names.index(name)
        table = table.set_column(index, name, table.column(name).cast(pa.timestamp("us", "UTC")))
    return table


def _collect_arrow(table) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    import pyarrow as pa

    stamps = {f.name for f in table.schema if pa.types.is_timestamp(f.type)}
    for name in stamps:
        index = table.column_names.index(name)
        micros = table.column(name).cast(pa.timestamp("us", "UTC")).cast(pa.int64())
        table = table.set_column(index, name, micros)
    rows = [
        {k: instant_text(v) if k in stamps else v for k, v in row.items()}
        for row in table.to_pylist()
    ]
    return sorted(rows, key=sort_key)
