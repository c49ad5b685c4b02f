"""spark-submit entry point: the quality stage of one run (statistics, estimates, checks).

    spark-submit $(timetravel jars --submit-args) jobs/run_quality.py --run-id ID [--conf ...]

Stores the statistics and checks in Delta (quality/stats, quality/checks) and indexes them.
Exits 1 when a check fails, 2 with one line on bad input (a run without a snapshot...).
"""

import argparse
import sys

from timetravel.config import load_config
from timetravel.errors import TimeTravelError
from timetravel.quality.profile import profile_run
from timetravel.reports import quality_table
from timetravel.runtime.spark import get_spark
from timetravel.warehouse.store import DeltaStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-id", required=True)
    parser.add_argument(
        "--conf", help="YAML profile (default: $TIMETRAVEL_CONF or conf/local.yaml)"
    )
    args = parser.parse_args()
    try:
        config = load_config(args.conf)
        result = profile_run(DeltaStore(get_spark(config), config), config, args.run_id)
    except TimeTravelError as exc:
        print(f"run_quality: error: {exc}", file=sys.stderr)
        sys.exit(2)
    print(quality_table(result))
    sys.exit(1 if result.status == "failed" else 0)


if __name__ == "__main__":
    main()
