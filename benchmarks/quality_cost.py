"""What the quality stage costs next to the snapshot it checks.

    .venv/bin/python benchmarks/quality_cost.py [--contexts 100000]

One run of the demo profile's four sources (viewing-history, my-list, ratings,
member-profile) against the demo fleet, no injected latency (the fastest snapshot, so the
hardest ratio for quality): select, snapshot (timed), then the quality stage with a check
of each kind declared (timed). Goal: quality <= 30% of the snapshot's time. Prints JSON,
appends to benchmarks/results/quality_cost.json.
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
from timetravel.collect.snapshot import snapshot_facts
from timetravel.config import (
    Allocation,
    QualityCheck,
    QualitySettings,
    SelectionSettings,
    Threshold,
    load_config,
    load_config_dict,
)
from timetravel.demo.fleet import Fleet
from timetravel.demo.population import write_population
from timetravel.demo.world import World
from timetravel.quality.profile import profile_run
from timetravel.runtime.spark import get_spark
from timetravel.warehouse.store import DeltaStore

ROOT = Path(__file__).resolve().parent.parent
RUN_TIME = "2026-06-01T06:00:00Z"
CHECKS = [
    QualityCheck(source="ratings", min_coverage=Threshold(warn=0.99, fail=0.9)),
    QualityCheck(source="ratings", field="thumbs_up", max_null_rate=Threshold(fail=0.1)),
    QualityCheck(source="ratings", field="thumbs_up", min_value=0, max_value=100000),
    QualityCheck(
        source="member-profile", field="plan", allowed_values=["basic", "standard", "premium"]
    ),
    QualityCheck(source="viewing-history", max_staleness=Threshold(warn=3600)),
    QualityCheck(source="viewing-history", field="total_plays", max_drift=Threshold(warn=0.1)),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contexts", type=int, default=100_000)
    args = parser.parse_args()
    world = {"seed": 3, "members": int(args.contexts * 1.25)}
    with tempfile.TemporaryDirectory() as tmp:
        base = load_config(ROOT / "conf" / "local.yaml").model_dump(by_alias=True)
        profile = base | {"warehouse": {"root": f"{tmp}/wh"}}
        profile["snapshot"] = {**base["snapshot"], "fleet_file": f"{tmp}/fleet/fleet.json"}
        config = load_config_dict(profile).model_copy(
            update={
                "selection": SelectionSettings(allocation=Allocation(sample_size=args.contexts)),
                "quality": QualitySettings(checks=CHECKS),
            }
        )
        store = DeltaStore(get_spark(config), config)
        write_population(store, World(**world), RUN_TIME)  # type: ignore[arg-type]
        run = select_contexts(store, config.selection, RUN_TIME)
        names = tuple(s.name for s in config.snapshot.sources)
        with Fleet.up(f"{tmp}/fleet", world=world, services=names, clock_at=RUN_TIME):
            started = time.perf_counter()
            snapshot = snapshot_facts(store, config, run.run_id)
            snapshot_s = time.perf_counter() - started
        started = time.perf_counter()
        quality = profile_run(store, config, run.run_id)
        quality_s = time.perf_counter() - started
    record(
        "quality_cost",
        {
            "benchmark": "quality_cost",
            "date": datetime.now(UTC).isoformat(),
            "cores": os.cpu_count(),
            "contexts": run.sample_size,
            "sources": len(names),
            "fact_rows": sum(s.fetched for s in snapshot.sources),
            "fields": len({(s.source, s.field) for s in quality.stats}),
            "checks": len(quality.checks),
            "snapshot_s": round(snapshot_s, 1),
            "quality_s": round(quality_s, 1),
            "quality_over_snapshot": round(quality_s / snapshot_s, 3),
            "target": 0.3,
            "within_target": quality_s / snapshot_s <= 0.3,
        },
    )


if __name__ == "__main__":
    main()
