"""spark-submit entry point: select the stratified context set of one run.

    spark-submit $(timetravel jars --submit-args) jobs/select_contexts.py \
        --run-time 2026-06-01T00:00:00Z [--run-id ID] [--conf conf/s3.yaml]
"""

import argparse

from timetravel.collect.selection import select_contexts
from timetravel.config import load_config
from timetravel.reports import selection_table
from timetravel.runtime.spark import get_spark
from timetravel.warehouse.store import DeltaStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-time", required=True, help="logical run time (UTC)")
    parser.add_argument("--run-id", help="default: run-<run time>")
    parser.add_argument(
        "--conf", help="YAML profile (default: $TIMETRAVEL_CONF or conf/local.yaml)"
    )
    args = parser.parse_args()
    config = load_config(args.conf)
    store = DeltaStore(get_spark(config), config)
    print(
        selection_table(select_contexts(store, config.selection, args.run_time, run_id=args.run_id))
    )


if __name__ == "__main__":
    main()
