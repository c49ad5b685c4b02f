"""spark-submit entry point: one stage of one scheduled run time (an orchestrator's task).

    spark-submit $(timetravel jars --submit-args) jobs/run_scheduled_stage.py \\
        --run-time 2026-06-01T06:00:00Z --stage select [--now ISO] [--conf conf/s3.yaml]

Decides as `timetravel schedule run` would (run it, or record it missed under
schedule.catch_up) and records the same runs index rows. Exits 0 when the stage ran ok, had
nothing to do, or the run time was recorded missed; 1 when the stage failed; 2 on bad input.
--now replays a decision at another instant (default: the clock).
"""

import argparse
import sys

from timetravel.config import load_config
from timetravel.errors import TimeTravelError
from timetravel.runtime.spark import get_spark
from timetravel.schedule.runner import run_scheduled_stage
from timetravel.times import to_utc
from timetravel.warehouse.store import DeltaStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-time", required=True, help="the logical run time (UTC)")
    parser.add_argument("--stage", required=True, help="select or snapshot")
    parser.add_argument("--now", help="decide as of this instant (default: the clock)")
    parser.add_argument(
        "--conf", help="YAML profile (default: $TIMETRAVEL_CONF or conf/local.yaml)"
    )
    args = parser.parse_args()
    try:
        config = load_config(args.conf)
        outcome = run_scheduled_stage(
            config,
            to_utc(args.run_time),
            args.stage,
            store=lambda: DeltaStore(get_spark(config), config),
            now=to_utc(args.now) if args.now else None,
        )
    except (TimeTravelError, ValueError) as exc:
        print(f"run_scheduled_stage: error: {exc}", file=sys.stderr)
        sys.exit(2)
    sys.exit(1 if outcome.status == "failed" else 0)


if __name__ == "__main__":
    main()
