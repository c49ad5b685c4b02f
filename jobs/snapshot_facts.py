"""spark-submit entry point: snapshot every fact source for one run's context set.

    spark-submit $(timetravel jars --submit-args) jobs/snapshot_facts.py --run-id ID [--conf ...]

Exits 1 when the run's status is 'failed' (a source below snapshot.fail_below coverage).
"""

import argparse
import sys

from timetravel.collect.snapshot import snapshot_facts
from timetravel.config import load_config
from timetravel.reports import progress_line, snapshot_table
from timetravel.runtime.spark import get_spark
from timetravel.warehouse.store import DeltaStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-id", required=True)
    parser.add_argument(
        "--conf", help="YAML profile (default: $TIMETRAVEL_CONF or conf/local.yaml)"
    )
    args = parser.parse_args()
    config = load_config(args.conf)
    store = DeltaStore(get_spark(config), config)
    result = snapshot_facts(
        store, config, args.run_id, on_progress=lambda p: print(progress_line(p), file=sys.stderr)
    )
    print(snapshot_table(result))
    sys.exit(1 if result.status == "failed" else 0)


if __name__ == "__main__":
    main()
