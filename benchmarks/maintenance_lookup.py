"""Point lookups over a year of daily runs, before and after ``timetravel maintain``.

    .venv/bin/python benchmarks/maintenance_lookup.py [--contexts 10000] [--runs 365]
        [--files-per-run 3] [--requests 1000]

Writes ``--runs`` daily runs of two sources (ratings, member-profile) with Spark, one Delta
commit per run and source, like the snapshot job. Each run lands as ``--files-per-run``
files that each span the whole key range, as a snapshot's first attempt and its retries
do: a lookup cannot skip them by min/max. Then, in one run of this script:

1. ``timetravel serve`` over the warehouse; ``--requests`` sequential lookups with random
   keys and instants over the year (after 50 warm-up requests); server stopped;
2. ``timetravel maintain`` (compaction clustered by key, checkpoints), timed;
3. the same server and the same requests again.

Reports p50/p95/p99 of both passes, their ratio, files per source before and after, and
what maintenance cost. Target: p99 <= 100 ms before and after. Prints JSON, appends to
benchmarks/results/maintenance_lookup.json. The written warehouse is cached under
.cache/bench-maintenance (copied before maintenance, so every run starts unmaintained).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import yaml
from _results import record
from api_latency import percentiles, timed_lookup, wait_until_up

from timetravel.config import load_config, load_config_dict
from timetravel.demo.fleet import free_port
from timetravel.warehouse.layout import facts_table

ROOT = Path(__file__).resolve().parent.parent
FIRST = datetime(2025, 6, 1, 6, tzinfo=UTC)
FEATURES = "ratings_count,thumbs_up_share,tenure_days,plan"
SOURCES = ("ratings", "member-profile")


def write_year(config, contexts: int, runs: int, files_per_run: int) -> None:  # type: ignore[no-untyped-def]
    from pyspark.sql import functions as F

    from timetravel.runtime.spark import get_spark
    from timetravel.times import spark_instant
    from timetravel.warehouse.store import DeltaStore

    store = DeltaStore(get_spark(config), config)
    started = time.monotonic()
    for run in range(runs):
        at = FIRST + timedelta(days=run)
        base = (
            store.spark.range(contexts)
            .withColumnRenamed("id", "member_id")
            .select(
                "member_id",
                spark_instant(at).alias("snapshot_time"),
                F.lit(f"run-{run:03d}").alias("run_id"),
                spark_instant(at + timedelta(minutes=30)).alias("written_at"),
                F.to_date(spark_instant(at)).alias("snapshot_date"),
            )
        )
        salt = F.lit(run)
        frames = {
            "ratings": base.select(
                "*",
                (F.abs(F.xxhash64("member_id", salt)) % 40).cast("int").alias("thumbs_up"),
                (F.abs(F.xxhash64(salt, "member_id")) % 20).cast("int").alias("thumbs_down"),
            ),
            "member-profile": base.select(
                "*",
                F.element_at(
                    F.array(F.lit("basic"), F.lit("standard"), F.lit("premium")),
                    (F.col("member_id") % 3 + 1).cast("int"),
                ).alias("plan"),
                F.timestamp_seconds(
                    F.lit(int(FIRST.timestamp()) - 86400 * 400) + F.col("member_id") % 1000 * 3600
                ).alias("member_since"),
                F.lit("active").alias("status"),
            ),
        }
        for source, frame in frames.items():
            table = facts_table(source)
            # Hash-partitioned, sorted within: every file spans the key range, like the
            # files of a snapshot's attempts.
            fragmented = frame.repartition(files_per_run, "member_id").sortWithinPartitions(
                "member_id"
            )
            store.create(table, fragmented.schema, partition_by=["snapshot_date"])
            store.append(table, fragmented, user_metadata=f"run-{run:03d}")
        if (run + 1) % 10 == 0:
            rate = (run + 1) / (time.monotonic() - started)
            print(f"  {run + 1}/{runs} runs written ({rate:.1f}/s)", file=sys.stderr)


def files_per_source(config) -> dict[str, int]:  # type: ignore[no-untyped-def]
    from timetravel.warehouse.deltars import open_table

    return {s: len(open_table(config, facts_table(s)).file_uris()) for s in SOURCES}


def lookups(conf_file: Path, contexts: int, runs: int, requests: int) -> dict[str, float]:
    """Sequential lookups against a fresh ``timetravel serve``; latency percentiles."""
    port = free_port()
    command = [sys.executable, "-m", "timetravel.cli", "--conf", str(conf_file), "serve"]
    server = subprocess.Popen(
        [*command, "--insecure-local", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    rng = random.Random(7)  # the same requests in both passes
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            wait_until_up(client)

            def one() -> float:
                key = rng.randrange(contexts)
                at = FIRST + timedelta(seconds=rng.randrange(runs * 86400))
                return timed_lookup(client, key, at, FEATURES)

            cold = one()
            for _ in range(50):
                one()
            return {
                "cold_ms": round(cold * 1000, 1),
                **percentiles([one() for _ in range(requests)]),
            }
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contexts", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=365)
    parser.add_argument("--files-per-run", type=int, default=3)
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    cache = (
        ROOT / ".cache" / "bench-maintenance" / f"{args.contexts}x{args.runs}x{args.files_per_run}"
    )
    base = load_config(ROOT / "conf" / "local.yaml").model_dump(by_alias=True, mode="json")
    base["spark"]["jars_dir"] = str(ROOT / ".cache" / "jars")
    base["snapshot"]["sources"] = [s for s in base["snapshot"]["sources"] if s["name"] in SOURCES]

    def config_at(root: Path):  # type: ignore[no-untyped-def]
        profile = {**base, "warehouse": {"root": str(root / "wh")}}
        profile["api"] = {"state_dir": str(root / "api")}
        return profile, load_config_dict(profile)

    _, pristine_config = config_at(cache)
    if not (cache / "complete").exists():
        shutil.rmtree(cache, ignore_errors=True)
        print(f"writing {args.runs} daily runs x {args.contexts} contexts ...", file=sys.stderr)
        write_year(pristine_config, args.contexts, args.runs, args.files_per_run)
        (cache / "complete").write_text("ok")
    work = cache.parent / (cache.name + "-work")
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(cache, work)
    profile, config = config_at(work)
    conf_file = work / "conf.yaml"
    conf_file.write_text(yaml.safe_dump(profile))

    files_before = files_per_source(config)
    print("lookups before maintenance ...", file=sys.stderr)
    before = lookups(conf_file, args.contexts, args.runs, args.requests)
    print("timetravel maintain ...", file=sys.stderr)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "timetravel.cli", "--conf", str(conf_file), "maintain"],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    maintain_s = time.perf_counter() - started
    files_after = files_per_source(config)
    print("lookups after maintenance ...", file=sys.stderr)
    after = lookups(conf_file, args.contexts, args.runs, args.requests)
    record(
        "maintenance_lookup",
        {
            "benchmark": "maintenance_lookup",
            "date": datetime.now(UTC).isoformat(),
            "machine": {"cores": os.cpu_count()},
            "contexts": args.contexts,
            "runs": args.runs,
            "files_per_run": args.files_per_run,
            "fact_rows_per_source": args.contexts * args.runs,
            "requests": args.requests,
            "files_before": files_before,
            "files_after": files_after,
            "maintain_s": round(maintain_s, 1),
            "before": before,
            "after": after,
            "p99_after_over_before": round(after["p99_ms"] / before["p99_ms"], 2),
            "target_p99_ms": 100,
            "within_target": before["p99_ms"] <= 100 and after["p99_ms"] <= 100,
            "command": " ".join(["benchmarks/maintenance_lookup.py", *sys.argv[1:]]),
        },
    )


if __name__ == "__main__":
    main()
