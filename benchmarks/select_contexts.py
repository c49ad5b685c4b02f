"""Time the context selection job on a large demo population (default 1,000,000 members).

    .venv/bin/python benchmarks/select_contexts.py [--members 1000000]

Exports the population once (not timed as selection), then times select_contexts for one run
(cold) and a second run time (warm JVM), with the default strata of conf/local.yaml.
Prints JSON and appends it to benchmarks/results/select_contexts.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from _results import record

from timetravel.collect.selection import select_contexts
from timetravel.config import load_config, load_config_dict
from timetravel.demo.population import write_population
from timetravel.demo.world import World
from timetravel.runtime.spark import get_spark
from timetravel.warehouse.store import DeltaStore

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    args = parser.parse_args()
    local = load_config(ROOT / "conf" / "local.yaml")
    with tempfile.TemporaryDirectory() as warehouse:
        config = load_config_dict(local.model_dump() | {"warehouse": {"root": warehouse}})
        spark = get_spark(config)
        spark.sparkContext.setLogLevel("ERROR")
        store = DeltaStore(spark, config)
        world = World(**(config.demo.world_args() | {"members": args.members}))  # type: ignore[arg-type]
        started = time.perf_counter()
        write_population(store, world, "2026-06-01T00:00:00Z")
        export_s = time.perf_counter() - started
        timings = []
        for run_time in ("2026-06-01T06:00:00Z", "2026-06-02T06:00:00Z"):
            started = time.perf_counter()
            result = select_contexts(store, config.selection, run_time)
            timings.append(time.perf_counter() - started)
        report = {
            "benchmark": "select_contexts",
            "date": datetime.now(UTC).isoformat(),
            "members": args.members,
            "population": result.population_size,
            "sample": result.sample_size,
            "strata": len(result.strata),
            "population_export_s": round(export_s, 2),
            "select_cold_s": round(timings[0], 2),
            "select_warm_with_panel_s": round(timings[1], 2),
            "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
        }
    record("select_contexts", report)


if __name__ == "__main__":
    main()
