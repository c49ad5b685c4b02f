"""Server time of the console's pages over a year of daily runs.

    .venv/bin/python benchmarks/console_pages.py [--runs 365] [--repeat 20]

Writes a runs index of N daily runs (select, snapshot of four sources, quality; each a
commit, as the schedule would have made them) into a temporary warehouse, then times each
page in-process (the app's handler, no network): the runs page, one run, the features, and
as the peer the API's JSON list of the same runs (`GET /v1/runs?limit=1000`), which reads
the same index. The first request of each page is reported apart (the process reads the
whole index once), and so is the runs page right after each of 5 new commits (only the
partitions a commit changed are read again). Goal: the runs page under
500 ms at 365 runs. Prints JSON, appends to benchmarks/results/console_pages.json.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _results import record

from timetravel.config import load_config

ROOT = Path(__file__).resolve().parents[1]
GOAL_MS = 500.0
SOURCES = ("viewing-history", "my-list", "ratings", "member-profile")
READER = "reader-token-0123456789"


def fill_runs_index(config, runs: int) -> None:  # type: ignore[no-untyped-def]
    from timetravel.warehouse.runs import RunsIndex

    index = RunsIndex(config)
    start = datetime(2025, 6, 1, 6, tzinfo=UTC)
    for day in range(runs):
        run_id = f"run-{day:04d}"
        at = start + timedelta(days=day)
        strata = [
            {"stratum": s, "population": 25_000, "target": 2_500, "sample": 2_500, "capped": False}
            for s in ("light", "medium", "heavy", "new")
        ]
        index.record(
            run_id,
            at,
            "select",
            "ok",
            details={"population": 100_000, "sample": 10_000, "strata": strata},
            table_versions={"context_sets": day},
        )
        sources = {
            s: {
                "source": s,
                "requested": 10_000,
                "fetched": 9_990,
                "failed": 10,
                "coverage": 0.999,
                "status": "ok",
            }
            for s in SOURCES
        }
        index.record(
            run_id,
            at,
            "snapshot",
            "ok" if day % 50 else "partial",
            details={"attempt": 1, "sources": sources},
            table_versions={f"facts/{s.replace('-', '_')}": day for s in SOURCES},
        )
        index.record(run_id, at, "quality", "ok" if day % 30 else "warn", details={})
        if day % 50 == 0:
            print(f"  {day + 1}/{runs} runs written", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=365)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    from fastapi.testclient import TestClient

    from timetravel.api import create_app
    from timetravel.api.auth import TokenTable

    root = Path(tempfile.mkdtemp(prefix="console-bench-"))
    config = load_config(ROOT / "conf" / "local.yaml")
    config = config.model_copy(
        update={
            "warehouse": config.warehouse.model_copy(update={"root": str(root / "wh")}),
            "api": config.api.model_copy(update={"state_dir": str(root / "state")}),
        }
    )
    started = time.perf_counter()
    fill_runs_index(config, args.runs)
    filled_s = time.perf_counter() - started

    app = create_app(config, tokens=TokenTable(((READER.encode(), "reader"),)))
    pages = {
        "runs page": "/ui/runs",
        "runs page, filtered": "/ui/runs?status=warn&since=2025-09-01",
        "one run": f"/ui/runs/run-{args.runs - 1:04d}",
        "features": "/ui/features",
        "GET /v1/runs?limit=1000 (peer)": "/v1/runs?limit=1000",
    }
    timings: dict[str, list[float]] = {name: [] for name in pages}
    first: dict[str, float] = {}
    with TestClient(app, base_url="https://localhost") as client:
        signed = client.post("/ui/sign-in", data={"token": READER}, follow_redirects=False)
        assert signed.status_code == 303, signed.text
        headers = {"Authorization": f"Bearer {READER}"}
        for name, path in pages.items():
            begun = time.perf_counter()
            client.get(path, headers=headers)  # cold: imports, the first read of the index
            first[name] = round((time.perf_counter() - begun) * 1000, 1)
            for _ in range(args.repeat):
                begun = time.perf_counter()
                response = client.get(path, headers=headers)
                timings[name].append((time.perf_counter() - begun) * 1000)
                assert response.status_code == 200, (path, response.status_code)
        assert f"run-{args.runs - 1:04d}" in client.get("/ui/runs").text
        # The next day's run lands (a new version of the index): the page after it.
        from timetravel.warehouse.runs import RunsIndex

        after_commit = []
        for day in range(args.runs, args.runs + 5):
            at = datetime(2025, 6, 1, 6, tzinfo=UTC) + timedelta(days=day)
            RunsIndex(config).record(f"run-{day:04d}", at, "select", "running")
            begun = time.perf_counter()
            page = client.get("/ui/runs")
            after_commit.append((time.perf_counter() - begun) * 1000)
            assert f"run-{day:04d}" in page.text
    medians = {k: round(statistics.median(v), 1) for k, v in timings.items()}
    p95 = {k: round(sorted(v)[int(0.95 * (len(v) - 1))], 1) for k, v in timings.items()}
    peer = medians["GET /v1/runs?limit=1000 (peer)"]
    record(
        "console_pages",
        {
            "benchmark": "console_pages",
            "date": datetime.now(UTC).isoformat(),
            "runs": args.runs,
            "repeat": args.repeat,
            "index_written_s": round(filled_s, 1),
            "first_request_ms": first,
            "runs_page_after_a_new_commit_ms": [round(v, 1) for v in after_commit],
            "median_ms": medians,
            "p95_ms": p95,
            "ratio_to_api_list": {k: round(v / peer, 2) for k, v in medians.items()},
            "goal_ms_runs_page": GOAL_MS,
            "within_goal": p95["runs page"] <= GOAL_MS and max(after_commit) <= GOAL_MS,
        },
    )


if __name__ == "__main__":
    main()
