"""Snapshot fetch throughput against its bound: demo fleet with injected latency L.

    .venv/bin/python benchmarks/snapshot_throughput.py [--latency-ms 100] [--concurrency 16]
        [--batch-size 10] [--contexts 16000]

With every request taking L, C requests in flight and B contexts per request, no client can
fetch faster than C * B / L contexts per second. The benchmark runs the real snapshot job
(Spark tasks, async HTTP to a live service) and reports the fetch phase's measured rate
against that bound. Goal: >= 80%. Prints JSON, appends to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from _results import record

from timetravel.collect.selection import select_contexts
from timetravel.collect.snapshot import Progress, snapshot_facts
from timetravel.config import (
    Allocation,
    SelectionSettings,
    SnapshotSettings,
    SourceSettings,
    load_config,
    load_config_dict,
)
from timetravel.demo.faults import FaultSettings
from timetravel.demo.fleet import Fleet
from timetravel.demo.population import write_population
from timetravel.demo.world import World
from timetravel.runtime.spark import get_spark
from timetravel.warehouse.store import DeltaStore

ROOT = Path(__file__).resolve().parent.parent
RUN_TIME = "2026-06-01T06:00:00Z"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--contexts", type=int, default=16000)
    args = parser.parse_args()
    members = int(args.contexts * 1.3)
    world_args = {"seed": 1, "members": members}
    with tempfile.TemporaryDirectory() as tmp:
        base = load_config(ROOT / "conf" / "local.yaml").model_dump(by_alias=True)
        source = SourceSettings.model_validate(
            {
                "name": "member-profile",
                "schema": "plan string, tenure_days int",
                "batch_size": args.batch_size,
                "concurrency": args.concurrency,
                "retries": 0,
                "timeout_s": 30,
            }
        )
        config = load_config_dict(base | {"warehouse": {"root": f"{tmp}/wh"}}).model_copy(
            update={
                "selection": SelectionSettings(allocation=Allocation(sample_size=args.contexts)),
                "snapshot": SnapshotSettings(
                    fleet_file=f"{tmp}/fleet/fleet.json", sources=[source]
                ),
            }
        )
        spark = get_spark(config)
        spark.sparkContext.setLogLevel("ERROR")
        store = DeltaStore(spark, config)
        write_population(store, World(**world_args), RUN_TIME)  # type: ignore[arg-type]
        run = select_contexts(store, config.selection, RUN_TIME)
        faults = {"member-profile": FaultSettings(latency_ms=args.latency_ms)}
        with Fleet.up(
            f"{tmp}/fleet",
            world=world_args,
            services=("member-profile",),
            faults=faults,
            clock_at=RUN_TIME,
        ):
            last: list[Progress] = []
            started = time.perf_counter()
            result = snapshot_facts(store, config, run.run_id, on_progress=last.append)
            total_s = time.perf_counter() - started
        fetch_s = last[-1].finished - last[-1].started  # type: ignore[attr-defined]
    fetched = result.sources[0].fetched_now
    bound = args.concurrency * args.batch_size / (args.latency_ms / 1000)
    rate = fetched / fetch_s
    report = {
        "benchmark": "snapshot_throughput",
        "date": datetime.now(UTC).isoformat(),
        "latency_ms": args.latency_ms,
        "concurrency": args.concurrency,
        "batch_size": args.batch_size,
        "contexts": run.sample_size,
        "fetched": fetched,
        "fetch_phase_s": round(fetch_s, 2),
        "job_total_s": round(total_s, 2),
        "measured_contexts_per_s": round(rate, 1),
        "bound_contexts_per_s": round(bound, 1),
        "ratio_to_bound": round(rate / bound, 3),
        "cores": os.cpu_count(),
    }
    record("snapshot_throughput", report)


if __name__ == "__main__":
    main()
