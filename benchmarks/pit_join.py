"""Point-in-time join benchmark: every engine on the same data, outputs verified equal first.

    .venv/bin/python benchmarks/pit_join.py [--size small|medium|large] [--repeats 3]
        [--skew zipf|uniform] [--per-entity 30]
        [--engines spark_floor,spark,embedded,duckdb_asof,spark_band[,feast]]
        (opt-in engines too: spark_sweep, spark_bandplan)

Sizes (labels x sources x snapshot rows per source): small 100k x 3 x 300k, x3 (3x small),
medium 1M x 3 x 3M (10x small: with small and x3, the scale curve), large 10M x 3 x 30M.
The data is generated once (fixed seeds) into benchmarks/data/ as Parquet, plus Delta copies
for the embedded path, and reused:

- key skew ``--skew zipf`` (default: Zipf-like, exponent 0.8, plus one hot key with 2% of
  rows) or ``uniform`` (every key equally likely, no hot key);
- ``--per-entity N`` snapshot rows per entity and source (default 30: 10 labels per entity);
- snapshot times on an hourly grid, label times on a minute grid: exact-time ties, and
  equal snapshot times of one key broken by ``written_at``;
- 5% nulls inside snapshot rows; 10% of label keys have no history.

Engines, in one process, same data:
- ``spark_floor``: not a join, the floor of any plan that sorts by key: the same (key, time)
  pairs of labels and snapshots shuffled by key and sorted, nothing else (no verification:
  it has no output to compare; ``spark_over_shuffle_floor`` is ours on Spark over it);
- ``spark``: ours, ``timetravel.asof.spark.point_in_time_join`` as users call it (``auto``:
  the plan chosen from a sample of the keys, the sample's job timed too), written to a noop
  sink; the report's ``spark_plan`` says which plan it chose and why;
- ``spark_sweep`` and ``spark_bandplan`` (opt-in): ours with that plan forced;
- ``embedded``: ours as training sets run it: the Delta tables at a pinned version streamed
  from delta-rs datasets into DuckDB under ``query.embedded_memory_mb`` (spilling past it);
- ``duckdb_asof``: a hand-written DuckDB ASOF query over in-memory Arrow, threads=2
  (the single-node floor);
- ``spark_band``: the textbook band join + row_number in Spark;
- ``feast`` (opt-in, ``--engines ...,feast``): Feast's ``get_historical_features`` with its
  Spark offline store, in Feast's own venv (``make feast-env``; run by
  ``benchmarks/feast_join.py`` as a subprocess in this run). Feast returns no snapshot-time
  column, so it is compared on every other column. Measured at the small size (RESULTS.md).

Each engine's output is converted to Arrow and compared with ours by row count and a sorted
per-row hash before any time is reported. The Spark engines are then timed in rounds, each
round running every one of them once (a cold round, then ``repeats``): the floor first, the
others in a rotated order, so each of them follows the floor in turn; each run after the last
one's writes are flushed; the single-node engines alone, right after their
verification. Reports the cold (first) run, the median of ``repeats``, peak RSS per engine
over its timed runs (our Python process and Spark's JVM, each reset before every run;
Feast's own processes likewise), and ratios.
Prints JSON; appends to benchmarks/results/pit_join.json.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from _memory import peak_mb, reset_peak, spark_jvm_pid
from _results import record

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / "data"
SIZES = {
    "small": (100_000, 300_000),
    "x3": (300_000, 900_000),
    "medium": (1_000_000, 3_000_000),
    "large": (10_000_000, 30_000_000),
}
SOURCES = ("a", "b", "c")
# Timed together in rounds (one JVM, one machine state); the single-node engines alone.
ON_SPARK = ("spark_floor", "spark", "spark_sweep", "spark_bandplan", "spark_band")
STALENESS = timedelta(days=7)
START = datetime(2026, 1, 1, tzinfo=UTC)


# ------------------------------------------------------------------------- data
def generate(
    labels_n: int, snaps_n: int, directory: Path, skew: str = "zipf", per_entity: int = 30
) -> None:
    """Write labels.parquet and <source>.parquet (and Delta copies) into ``directory``.

    ``per_entity``: snapshot rows per entity and source on average (the entity count is
    ``snaps_n / per_entity``; the default 30 gives 10 labels per entity).
    """
    from deltalake import write_deltalake

    directory.mkdir(parents=True, exist_ok=True)
    entities = max(snaps_n // per_entity, 1)
    rng = np.random.default_rng(20261127)
    start_us = int(START.timestamp() * 1_000_000)
    minute = 60_000_000
    horizon = 60 * 24 * 60  # 60 days of minutes

    # Zipf-like popularity over the entities (exponent 0.8: the top key holds a few
    # percent of rows), plus one hot key taking another 2% of all rows.
    popularity = np.cumsum(1.0 / np.arange(1, entities + 1) ** 0.8)
    popularity /= popularity[-1]

    def keys(n: int, with_missing: bool) -> np.ndarray:
        if skew == "uniform":
            out = rng.integers(0, entities, n)
        else:
            zipf = np.minimum(np.searchsorted(popularity, rng.random(n)), entities - 1)
            out = np.where(rng.random(n) < 0.02, 0, zipf)
        if with_missing:  # 10% keys never snapshotted
            out = np.where(rng.random(n) < 0.1, entities + rng.integers(0, entities, n), out)
        return out.astype(np.int64)

    label_times = start_us + rng.integers(0, horizon, labels_n) * minute
    labels = pa.table(
        {
            "context_id": keys(labels_n, True),
            "label_time": pa.array(label_times, pa.timestamp("us", "UTC")),
            "label": rng.integers(0, 2, labels_n).astype(np.int8),
        }
    )
    pq.write_table(labels, directory / "labels.parquet")
    for index, name in enumerate(SOURCES):
        n = snaps_n
        times = start_us + rng.integers(0, horizon // 60, n) * 60 * minute  # hourly grid: ties
        written = times + rng.integers(0, 3_600_000_000, n)
        f1 = rng.normal(index, 1, n)
        f2 = rng.integers(0, 1000, n).astype(np.int64)
        table = pa.table(
            {
                "context_id": keys(n, False),
                "snapshot_time": pa.array(times, pa.timestamp("us", "UTC")),
                "written_at": pa.array(written, pa.timestamp("us", "UTC")),
                "f1": pa.array(f1, mask=rng.random(n) < 0.05),  # nulls inside rows
                "f2": pa.array(f2, mask=rng.random(n) < 0.05),
            }
        )
        pq.write_table(table, directory / f"{name}.parquet")
        write_deltalake(str(directory / f"delta_{name}"), table, mode="overwrite")


# ------------------------------------------------------------------------- engines
def spark_inputs(spark: Any, directory: Path) -> tuple[Any, dict[str, Any]]:
    """The labels and every source as Spark DataFrames over the Parquet files."""
    labels = spark.read.parquet(str(directory / "labels.parquet"))
    return labels, {n: spark.read.parquet(str(directory / f"{n}.parquet")) for n in SOURCES}


def run_spark(spark: Any, directory: Path, plan: str = "auto") -> Callable[[bool], pa.Table | None]:
    from timetravel.asof.spark import point_in_time_join

    labels, sources = spark_inputs(spark, directory)

    def run(collect: bool) -> pa.Table | None:
        out = point_in_time_join(
            labels, sources, written_time="written_at", max_staleness=STALENESS, plan=plan
        )
        if collect:
            return _spark_arrow(out, directory / f"spark_{plan}_out")
        out.write.format("noop").mode("overwrite").save()
        return None

    return run


def spark_plan_choice(spark: Any, directory: Path) -> dict[str, Any]:
    """What ``auto`` chooses on this data, and from which estimates."""
    from timetravel.asof.spark_plan import choose_plan

    labels, sources = spark_inputs(spark, directory)
    choice = choose_plan(labels, sources, keys=["context_id"])
    candidates = choice.candidates or {}
    return {
        "plan": choice.plan,
        "candidates_per_label": {k: round(v, 1) for k, v in candidates.items()},
        "sampled_fraction": choice.fraction,
    }


def run_spark_band(spark: Any, directory: Path) -> Callable[[bool], pa.Table | None]:
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    plain_labels, sources = spark_inputs(spark, directory)
    bound = int(STALENESS.total_seconds())

    def run(collect: bool) -> pa.Table | None:
        # The row ids must be the same in every pass and in the join back, hence the cache; it
        # is built and dropped inside each run, which reads the labels as the other engines do.
        labels = plain_labels.withColumn("_id", F.monotonically_increasing_id()).cache()
        try:
            return band_join(labels, collect)
        finally:
            labels.unpersist()

    def band_join(labels: Any, collect: bool) -> pa.Table | None:
        out = labels
        for name, snaps in sources.items():
            s = snaps.select(*(F.col(c).alias(f"{name}__{c}") for c in snaps.columns))
            pairs = labels.select("_id", "context_id", "label_time").join(
                s,
                (F.col("context_id") == F.col(f"{name}__context_id"))
                & (F.col(f"{name}__snapshot_time") <= F.col("label_time"))
                & (
                    F.col(f"{name}__snapshot_time")
                    >= F.col("label_time") - F.expr(f"INTERVAL {bound} SECONDS")
                ),
            )
            window = Window.partitionBy("_id").orderBy(
                F.col(f"{name}__snapshot_time").desc(), F.col(f"{name}__written_at").desc()
            )
            best = (
                pairs.withColumn("_rn", F.row_number().over(window))
                .where("_rn = 1")
                .select("_id", f"{name}__f1", f"{name}__f2", f"{name}__snapshot_time")
            )
            out = out.join(best, "_id", "left")
        out = out.drop("_id")
        if collect:
            return _spark_arrow(out, directory / "spark_band_out")
        out.write.format("noop").mode("overwrite").save()
        return None

    return run


def run_spark_floor(spark: Any, directory: Path) -> Callable[[], None]:
    """The floor for any plan that sorts labels and snapshots by key: shuffle the same
    (key, time) pairs by key and sort them, nothing else (no payload, no as-of logic)."""
    from pyspark.sql import functions as F

    pairs = spark.read.parquet(str(directory / "labels.parquet")).select(
        "context_id", F.col("label_time").alias("t")
    )
    for name in SOURCES:
        snaps = spark.read.parquet(str(directory / f"{name}.parquet"))
        pairs = pairs.unionByName(snaps.select("context_id", F.col("snapshot_time").alias("t")))

    def run() -> None:
        floor = pairs.repartition("context_id").sortWithinPartitions("context_id", "t")
        floor.write.format("noop").mode("overwrite").save()

    return run


def run_embedded(directory: Path) -> Callable[[bool], pa.Table | None]:
    from deltalake import DeltaTable

    from timetravel.asof.duckdb import point_in_time_join_arrow
    from timetravel.config import QuerySettings

    memory = QuerySettings().embedded_memory_mb  # the default a training set runs with

    def run(collect: bool) -> pa.Table | None:
        labels = pq.read_table(directory / "labels.parquet")
        sources = {
            n: DeltaTable(str(directory / f"delta_{n}"), version=0).to_pyarrow_dataset()
            for n in SOURCES
        }
        out = point_in_time_join_arrow(
            labels,
            sources,
            written_time="written_at",
            max_staleness=STALENESS,
            threads=2,
            memory_limit_mb=memory,
        )
        return out if collect else None

    return run


def run_duckdb_asof(directory: Path) -> Callable[[bool], pa.Table | None]:
    import duckdb

    labels = pq.read_table(directory / "labels.parquet")
    sources = {n: pq.read_table(directory / f"{n}.parquet") for n in SOURCES}
    micros = int(STALENESS / timedelta(microseconds=1))

    def run(collect: bool) -> pa.Table | None:
        con = duckdb.connect()
        con.execute("SET threads = 2")
        con.execute("SET TimeZone = 'UTC'")
        con.register("labels", labels)
        selects, joins = ["l.context_id", "l.label_time", "l.label"], []
        for name, table in sources.items():
            con.register(f"raw_{name}", table)
            con.execute(f"""CREATE TEMP TABLE {name} AS SELECT * FROM raw_{name}
                WHERE context_id IS NOT NULL
                QUALIFY row_number() OVER (PARTITION BY context_id, snapshot_time
                                           ORDER BY written_at DESC) = 1""")
            ok = (
                f"({name}.snapshot_time IS NOT NULL AND "
                f"epoch_us(l.label_time) - epoch_us({name}.snapshot_time) <= {micros})"
            )
            selects += [
                f"CASE WHEN {ok} THEN {name}.{c} END AS {name}__{c}"
                for c in ("f1", "f2", "snapshot_time")
            ]
            joins.append(
                f"ASOF LEFT JOIN {name} ON l.context_id = {name}.context_id "
                f"AND l.label_time >= {name}.snapshot_time"
            )
        out = con.sql(
            f"SELECT {', '.join(selects)} FROM labels l {' '.join(joins)}"
        ).to_arrow_table()
        con.close()
        return out if collect else None

    return run


def run_feast(directory: Path, repeats: int) -> dict[str, Any]:
    """Feast in its own interpreter: returns its output (for verification) and its timings."""
    import subprocess

    python = ROOT / ".cache" / "feast-venv" / "bin" / "python"
    if not python.exists():
        raise SystemExit("Feast's environment is missing: run `make feast-env` first")
    out = directory / "feast_out.parquet"
    done = subprocess.run(
        [
            str(python),
            str(ROOT / "benchmarks" / "feast_join.py"),
            "--data",
            str(directory),
            "--out",
            str(out),
            "--repeats",
            str(repeats),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"feast_join.py failed:\n{done.stderr[-3000:]}")
    timings = json.loads(done.stdout.strip().splitlines()[-1])
    return {"result": pq.read_table(out), **timings}


# ------------------------------------------------------------------------- verification
def _spark_arrow(frame: Any, scratch: Path) -> pa.Table:
    """The frame as Arrow, through Parquet files: at the large size a collect would not fit
    the driver's heap."""
    from pyspark.sql import functions as F

    stamps = [c for c, t in frame.dtypes if t == "timestamp"]
    frame.select(
        *(F.unix_micros(c).alias(c) if c in stamps else F.col(c) for c in frame.columns)
    ).write.mode("overwrite").parquet(str(scratch))
    return pq.read_table(scratch)


def row_hashes(table: pa.Table) -> np.ndarray:
    """A sorted per-row hash, independent of engine, column order and row order."""
    import pandas as pd

    columns = sorted(table.column_names)
    frame = {}
    for name in columns:
        column = table.column(name)
        if pa.types.is_timestamp(column.type):
            column = column.cast(pa.timestamp("us", "UTC")).cast(pa.int64())
        elif pa.types.is_integer(column.type):
            column = column.cast(pa.int64())
        frame[name] = column.to_pandas()
    hashes = pd.util.hash_pandas_object(pd.DataFrame(frame), index=False).to_numpy()
    return np.sort(hashes)


def _timed_rounds(runs: dict[str, Callable[[], Any]], repeats: int, jvm: int) -> dict[str, Any]:
    """Wall times and peak memory of every engine over a cold round and ``repeats`` more.

    Each round runs every engine once, so the machine's noise (2 shared cores) falls on all
    engines alike: the floor (``spark_floor``) first, then the others rotated by one place a
    round, so that each of them in turn runs right after the floor's shuffle. That run was
    measured slower, by up to 3 s at medium without the flush below and by ~0.5 s with it in
    some runs (benchmarks/RESULTS.md); an order that is only rotated, and reversed every
    other round, left ours right after the floor in every even round. Before each run,
    untimed, the page cache is flushed."""
    names = list(runs)
    first = [name for name in names if name == "spark_floor"]
    others = [name for name in names if name != "spark_floor"]
    times: dict[str, list[float]] = {name: [] for name in names}
    peaks: dict[str, dict[str, int | None]] = {name: {} for name in names}
    for index in range(repeats + 1):
        shift = index % len(others) if others else 0
        for name in first + others[shift:] + others[:shift]:
            _settle()
            reset_peak()
            reset_peak(jvm)
            started = time.perf_counter()
            runs[name]()
            times[name].append(time.perf_counter() - started)
            for process, peak in (("python", peak_mb()), ("spark_jvm", peak_mb(jvm))):
                before = peaks[name].get(process)
                peaks[name][process] = peak if before is None or peak is None else max(before, peak)
        print(
            f"round {index}: " + ", ".join(f"{n} {times[n][-1]:.2f} s" for n in names), flush=True
        )
    return {
        name: {
            "cold_s": round(times[name][0], 3),
            "median_s": round(statistics.median(times[name][1:]), 3) if repeats else None,
            "runs": [round(t, 3) for t in times[name]],
            "peak_rss_mb": peaks[name],
        }
        for name in names
    }


def _settle() -> None:
    """Leave no I/O of the last run to the next: its shuffle files' dirty pages written.

    Not a JVM garbage collection: one before every run made every run slower (the floor at
    small 1.2 -> 2.1 s, the JVM regrowing its heap), which flattened the ratios."""
    time.sleep(0.5)
    os.sync()


# ------------------------------------------------------------------------- driver
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=list(SIZES), default="medium")
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="timed runs after the cold one (0: the cold run only)",
    )
    parser.add_argument(
        "--feast-repeats",
        type=int,
        default=None,
        help="timed Feast runs after its cold one (default: --repeats)",
    )
    parser.add_argument("--skew", choices=("zipf", "uniform"), default="zipf")
    parser.add_argument(
        "--per-entity",
        type=int,
        default=30,
        help="snapshot rows per entity and source (e.g. 1, 10, 100)",
    )
    parser.add_argument(
        "--engines",
        default="spark_floor,spark,embedded,duckdb_asof,spark_band",
        help="add ',feast' to include Feast (needs `make feast-env`); "
        "spark_sweep, spark_bandplan: ours with that plan forced",
    )
    args = parser.parse_args()
    labels_n, snaps_n = SIZES[args.size]
    variant = "".join(
        [
            f"-{args.skew}" if args.skew != "zipf" else "",
            f"-{args.per_entity}-per-entity" if args.per_entity != 30 else "",
        ]
    )
    directory = DATA / f"{args.size}{variant}"
    if not (directory / "labels.parquet").exists():
        print(f"generating {args.size}{variant} data into {directory} ...", flush=True)
        started = time.perf_counter()
        generate(labels_n, snaps_n, directory, args.skew, args.per_entity)
        print(f"generated in {time.perf_counter() - started:.0f} s", flush=True)

    from timetravel.config import load_config
    from timetravel.runtime.spark import get_spark

    config = load_config(ROOT / "conf" / "local.yaml")
    spark = get_spark(config)
    spark.sparkContext.setLogLevel("ERROR")
    jvm = spark_jvm_pid(spark)
    engines = {
        "spark": lambda: run_spark(spark, directory),
        "spark_sweep": lambda: run_spark(spark, directory, "sweep"),
        "spark_bandplan": lambda: run_spark(spark, directory, "band"),
        "embedded": lambda: run_embedded(directory),
        "duckdb_asof": lambda: run_duckdb_asof(directory),
        "spark_band": lambda: run_spark_band(spark, directory),
    }
    chosen = args.engines.split(",")
    reference = None
    reference_table: pa.Table | None = None
    runs: dict[str, Callable[[], Any]] = {}  # the engines to time, once verified
    report: dict[str, Any] = {
        "benchmark": "pit_join",
        "size": args.size,
        "skew": args.skew,
        "snapshots_per_entity": args.per_entity,
        "labels": labels_n,
        "sources": len(SOURCES),
        "snapshot_rows_per_source": snaps_n,
        "date": datetime.now(UTC).isoformat(),
        "cores": os.cpu_count(),
        "engines": {},
    }
    if "spark" in chosen:
        report["spark_plan"] = spark_plan_choice(spark, directory)
        print(f"spark_plan: {report['spark_plan']}", flush=True)
    for name in chosen:
        if name == "spark_floor":
            report["engines"][name] = {"floor": True}
            runs[name] = run_spark_floor(spark, directory)
            continue
        if name == "feast":
            print("feast: running in its own venv ...", flush=True)
            feast = run_feast(
                directory, args.repeats if args.feast_repeats is None else args.feast_repeats
            )
            comparable = feast["result"].column_names
            assert reference_table is not None, "run our spark engine first (the reference)"
            equal = bool(
                np.array_equal(
                    row_hashes(feast["result"]), row_hashes(reference_table.select(comparable))
                )
            )
            report["engines"]["feast"] = {
                "verified_equal": equal,
                "rows": feast["result"].num_rows,
                "compared_columns": comparable,
                "cold_s": feast["cold_s"] if equal else None,
                "median_s": feast["median_s"] if equal else None,
                "runs": feast["runs_s"],
                "peak_rss_mb": feast["peak_rss_mb"],
                "versions": {"feast": feast["feast"], "pyspark": feast["pyspark"]},
            }
            print(f"feast: {report['engines']['feast']}", flush=True)
            continue
        print(f"{name}: verifying ...", flush=True)
        run = engines[name]()
        result = run(True)  # verification run (not timed)
        assert result is not None
        hashes = row_hashes(result)
        if reference is None:
            reference = hashes
            # Kept only for Feast's comparison: at the large size it is gigabytes.
            reference_table = result if "feast" in chosen else None
        del result
        equal = hashes.shape == reference.shape and bool(np.array_equal(hashes, reference))
        if not equal:
            report["engines"][name] = {"verified_equal": False, "rows": int(hashes.shape[0])}
            print(f"{name}: OUTPUT DIFFERS from the first verified - no time", flush=True)
            continue
        report["engines"][name] = {"verified_equal": True, "rows": int(hashes.shape[0])}
        if name in ON_SPARK:
            runs[name] = functools.partial(run, False)
            continue
        # A single-node engine is timed at once and let go: one holds its inputs in memory.
        report["engines"][name].update(
            _timed_rounds({name: functools.partial(run, False)}, args.repeats, jvm)[name]
        )
        del run
        print(f"{name}: {report['engines'][name]}", flush=True)
    # The Spark engines, once all are verified, in rounds (see _timed_rounds). Peak memory
    # covers the timed runs only: verification holds the output and its hashes.
    if runs:
        print(f"timing {', '.join(runs)}: a cold round and {args.repeats} more ...", flush=True)
        for name, timing in _timed_rounds(runs, args.repeats, jvm).items():
            report["engines"][name].update(timing)
            print(f"{name}: {report['engines'][name]}", flush=True)
    # Ratios of medians (with --repeats 0: of cold runs).
    which = "median_s" if args.repeats else "cold_s"
    timed = {k: v[which] for k, v in report["engines"].items() if v.get("verified_equal")}
    floor_s = report["engines"].get("spark_floor", {}).get(which)
    for ours in ("spark", "spark_sweep", "spark_bandplan"):
        if ours in timed and floor_s:
            report[f"{ours}_over_shuffle_floor"] = round(timed[ours] / floor_s, 3)
        if ours in timed and "spark_band" in timed:
            report[f"{ours}_over_band_join"] = round(timed[ours] / timed["spark_band"], 3)
    feast = report["engines"].get("feast", {})
    if "spark" in timed and feast.get("verified_equal"):
        if feast["median_s"] is not None and args.repeats:
            report["spark_over_feast"] = round(timed["spark"] / feast["median_s"], 3)
        else:  # a side without repeats: cold against cold
            report["spark_over_feast_cold"] = round(
                report["engines"]["spark"]["cold_s"] / feast["cold_s"], 3
            )
    if "embedded" in timed and "duckdb_asof" in timed:
        report["embedded_over_duckdb_asof"] = round(timed["embedded"] / timed["duckdb_asof"], 3)
    report["note"] = (
        "peak_rss_mb: peak resident memory of our Python process and of Spark's "
        "JVM during each engine's timed runs (both reset after its verification "
        "run; the idle JVM's resident memory counts for the embedded engines); Feast: its own "
        "Python process and JVM"
    )
    record("pit_join", report)


if __name__ == "__main__":
    main()
