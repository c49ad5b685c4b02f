"""Point-lookup latency of the query API over HTTP on loopback.

    .venv/bin/python benchmarks/api_latency.py [--contexts 100000] [--runs 30] [--requests 2000]

Writes facts for ``--contexts`` contexts x ``--runs`` daily runs (ratings and member-profile,
one Delta commit per run, key-clustered like the snapshot job writes them) with Spark, starts
``timetravel serve`` as a separate process, and times a bounded loop of sequential
``GET /v1/contexts/{key}/features?as_of=...`` requests with random keys and instants (a fresh
connection pool, keep-alive), then the same requests from ``--concurrency`` clients at once
(threads, one connection each): lookups must not serialise. Also times the same lookup as a
one-label Spark job, the path a lookup would take without the embedded engine. Goals: p99 <=
100 ms sequential, p99 <= 250 ms at 20 concurrent clients. Prints JSON, appends to
benchmarks/results/api_latency.json. The warehouse is cached under .cache/bench-api.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import yaml
from _results import record

from timetravel.config import load_config, load_config_dict
from timetravel.demo.fleet import free_port
from timetravel.warehouse.layout import facts_table

ROOT = Path(__file__).resolve().parent.parent
FIRST = datetime(2026, 3, 1, 6, tzinfo=UTC)
FEATURES = "ratings_count,thumbs_up_share,tenure_days,plan"


def write_warehouse(config, contexts: int, runs: int) -> None:  # type: ignore[no-untyped-def]
    from pyspark.sql import functions as F

    from timetravel.runtime.spark import get_spark
    from timetravel.times import spark_instant
    from timetravel.warehouse.store import DeltaStore

    store = DeltaStore(get_spark(config), config)
    store.spark.sparkContext.setLogLevel("ERROR")
    for run in range(runs):
        at = FIRST + timedelta(days=run)
        ids = store.spark.range(contexts).withColumnRenamed("id", "member_id")
        base = ids.select(
            "member_id",
            spark_instant(at).alias("snapshot_time"),
            F.lit(f"run-{run:02d}").alias("run_id"),
            spark_instant(at + timedelta(minutes=30)).alias("written_at"),
            F.to_date(spark_instant(at)).alias("snapshot_date"),
        )
        salt = F.lit(run)
        ratings = base.select(
            "*",
            (F.abs(F.xxhash64("member_id", salt)) % 40).cast("int").alias("thumbs_up"),
            (F.abs(F.xxhash64(salt, "member_id")) % 20).cast("int").alias("thumbs_down"),
        )
        profile = base.select(
            "*",
            F.element_at(
                F.array(F.lit("basic"), F.lit("standard"), F.lit("premium")),
                (F.col("member_id") % 3 + 1).cast("int"),
            ).alias("plan"),
            F.timestamp_seconds(
                F.lit(int(FIRST.timestamp()) - 86400 * 400) + F.col("member_id") % 1000 * 3600
            ).alias("member_since"),
            F.lit("active").alias("status"),
        )
        for source, frame in (("ratings", ratings), ("member-profile", profile)):
            table = facts_table(source)
            clustered = frame.repartitionByRange("member_id").sortWithinPartitions("member_id")
            store.create(table, clustered.schema, partition_by=["snapshot_date"])
            store.append(table, clustered, user_metadata=f"run-{run:02d}")
        print(f"  run {run + 1}/{runs} written", file=sys.stderr)


def run_concurrently(url: str, one, clients: int, requests: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """``requests`` lookups spread over ``clients`` threads started together; latency
    percentiles and throughput."""
    samples: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)

    def client_loop(index: int) -> None:
        pick = random.Random(1000 + index)
        with httpx.Client(base_url=url, timeout=60) as http:
            start.wait()
            mine = [one(http, pick) for _ in range(requests // clients)]
        with lock:
            samples.extend(mine)

    threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    return {
        "clients": clients,
        **percentiles(samples),
        "requests_per_s": round(len(samples) / wall, 1),
    }


def wait_until_up(client: httpx.Client, timeout_s: float = 60) -> None:
    """Poll ``/healthz`` until the server answers (it was just started)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            client.get("/healthz")
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def timed_lookup(http: httpx.Client, key: int, at: datetime, features: str) -> float:
    """Seconds one point lookup took, client side (a non-2xx answer raises)."""
    started = time.perf_counter()
    response = http.get(
        f"/v1/contexts/{key}/features", params={"as_of": at.isoformat(), "features": features}
    )
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    return elapsed


def percentiles(samples: list[float]) -> dict[str, float]:
    values = np.array(samples) * 1000
    return {f"p{p}_ms": round(float(np.percentile(values, p)), 2) for p in (50, 95, 99)} | {
        "max_ms": round(float(values.max()), 2),
        "mean_ms": round(float(values.mean()), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contexts", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--spark-lookups", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()
    workdir = ROOT / ".cache" / "bench-api" / f"{args.contexts}x{args.runs}"
    base = load_config(ROOT / "conf" / "local.yaml").model_dump(by_alias=True, mode="json")
    base["warehouse"] = {"root": str(workdir / "wh")}
    base["spark"]["jars_dir"] = str(ROOT / ".cache" / "jars")
    base["api"] = {"state_dir": str(workdir / "api")}
    base["snapshot"]["sources"] = [
        s for s in base["snapshot"]["sources"] if s["name"] in ("ratings", "member-profile")
    ]
    config = load_config_dict(base)
    if (
        not (workdir / "wh" / "facts" / "member_profile" / "_delta_log").is_dir()
        or not (workdir / "complete").exists()
    ):
        print(f"writing {args.contexts} contexts x {args.runs} runs ...", file=sys.stderr)
        write_warehouse(config, args.contexts, args.runs)
        (workdir / "complete").write_text("ok")
    conf_file = workdir / "conf.yaml"
    conf_file.write_text(yaml.safe_dump(base))

    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "timetravel.cli",
            "--conf",
            str(conf_file),
            "serve",
            "--insecure-local",
            "--port",
            str(port),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    rng = random.Random(7)
    span = args.runs * 86400 + 3 * 86400
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            wait_until_up(client)

            def one(http: httpx.Client = client, pick: random.Random = rng) -> float:
                key = pick.randrange(args.contexts)
                at = FIRST + timedelta(seconds=pick.randrange(span)) - timedelta(days=1)
                return timed_lookup(http, key, at, FEATURES)

            cold = one()
            for _ in range(50):
                one()  # warm the per-table caches (Delta logs, file statistics)
            samples = [one() for _ in range(args.requests)]
            concurrent = run_concurrently(url, one, args.concurrency, args.requests)
    finally:
        server.terminate()
        server.wait(timeout=30)

    from timetravel import TimeTravel

    tt = TimeTravel(config)
    tt.spark.sparkContext.setLogLevel("ERROR")
    spark_samples = []
    for index in range(args.spark_lookups + 1):
        labels = [
            {
                "member_id": rng.randrange(args.contexts),
                "label_time": FIRST + timedelta(days=10, hours=index),
            }
        ]
        started = time.perf_counter()
        tt.training_set(labels, features=FEATURES.split(","), engine="spark").to_arrow()
        if index:  # the first one pays for the JVM and plan warm-up
            spark_samples.append(time.perf_counter() - started)
    http = percentiles(samples)
    report = {
        "benchmark": "api_latency",
        "date": datetime.now(UTC).isoformat(),
        "machine": {"cores": os.cpu_count()},
        "contexts": args.contexts,
        "runs": args.runs,
        "fact_rows_per_source": args.contexts * args.runs,
        "requests": args.requests,
        "features": FEATURES,
        "cold_first_request_ms": round(cold * 1000, 1),
        "http_lookup": http,
        "concurrent_http_lookup": concurrent,
        "spark_job_lookup": percentiles(spark_samples),
        "target_p99_ms": 100,
        "p99_within_target": http["p99_ms"] <= 100,
        "target_concurrent_p99_ms": 250,
        "concurrent_p99_within_target": concurrent["p99_ms"] <= 250,
        "spark_over_embedded_p50": round(
            float(np.median(spark_samples)) / (http["p50_ms"] / 1000), 1
        ),
        "command": " ".join(["benchmarks/api_latency.py", *sys.argv[1:]]),
    }
    record("api_latency", report)


if __name__ == "__main__":
    main()
