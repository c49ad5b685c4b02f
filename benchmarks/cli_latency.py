"""Cold wall time of the read-only CLI commands on the demo warehouse (after `make demo`).

    .venv/bin/python benchmarks/cli_latency.py [--conf conf/local.yaml] [--repeat 5]

Each command runs ``--repeat`` times as a fresh process (cold: a new interpreter, no cache but
the OS's), with Java removed from PATH so that any command that would start a JVM fails
instead of being timed. The peer in the same run is ``timetravel --help`` (interpreter and
CLI start-up alone). Goal: every read-only command answers in at most 2 s (median). Prints
JSON, appends to benchmarks/results/cli_latency.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import record  # noqa: E402 - benchmarks are scripts, not a package

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = {
    "--help (peer)": ["--help"],
    "config": ["config"],
    "runs": ["runs"],
    "runs --json": ["runs", "--json"],
    "features": ["features"],
    "status": ["status"],
    "schedule due": ["schedule", "due"],
    # The demo's faulty run: its stored quality (exit 1: a check failed) and its report.
    "quality --stored --json": ["quality", "--run-id", "{quality_run}", "--stored", "--json"],
    "report": ["report", "--run-id", "{quality_run}", "--out", "{tmp}/report.html"],
}
GOAL_S = 2.0


def _latest_quality_run(conf: str) -> str:
    from timetravel.config import load_config
    from timetravel.warehouse.runs import RunsIndex

    runs = [r for r in RunsIndex(load_config(conf)).list() if r.status("quality")]
    if not runs:
        raise SystemExit("no run with a quality stage: run `make demo` first")
    return max(runs, key=lambda r: r.run_time).run_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conf", default=str(ROOT / "conf" / "local.yaml"))
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    # No Java reachable: a command that tried to start Spark would fail, not be timed.
    env = {**os.environ, "PATH": str(Path(sys.executable).parent), "JAVA_HOME": "/nonexistent"}
    medians = {}
    tmp = tempfile.mkdtemp()
    quality_run = _latest_quality_run(args.conf)
    for name, template in COMMANDS.items():
        command = [part.format(quality_run=quality_run, tmp=tmp) for part in template]
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "timetravel.cli", "--conf", args.conf, *command],
                capture_output=True,
                text=True,
                env=env,
                cwd=ROOT,
            )
            times.append(time.perf_counter() - started)
            # status exits 1 when the schedule is behind: an answer all the same.
            if done.returncode not in (0, 1) or "Traceback" in done.stderr:
                raise SystemExit(f"{name} failed: {done.stderr[-1000:]}")
        medians[name] = round(statistics.median(times), 3)
    peer = medians["--help (peer)"]
    record(
        "cli_latency",
        {
            "conf": args.conf,
            "repeat": args.repeat,
            "median_s": medians,
            "ratio_to_help": {k: round(v / peer, 2) for k, v in medians.items()},
            "goal_s": GOAL_S,
            "all_within_goal": all(v <= GOAL_S for v in medians.values()),
        },
    )


if __name__ == "__main__":
    main()
