"""spark-submit entry point: export the demo population as of an instant to Delta.

    spark-submit $(timetravel jars --submit-args) jobs/export_population.py \
        --as-of 2026-06-01T00:00:00Z [--conf conf/local.yaml]
"""

import argparse

from timetravel.config import load_config
from timetravel.demo.population import write_population
from timetravel.demo.world import World
from timetravel.runtime.spark import get_spark
from timetravel.warehouse.store import DeltaStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--as-of", required=True, help="instant (UTC), e.g. 2026-06-01T00:00:00Z")
    parser.add_argument(
        "--conf", help="YAML profile (default: $TIMETRAVEL_CONF or conf/local.yaml)"
    )
    args = parser.parse_args()
    config = load_config(args.conf)
    store = DeltaStore(get_spark(config), config)
    version = write_population(store, World(**config.demo.world_args()), args.as_of)
    print(f"population as of {args.as_of}: version {version}")


if __name__ == "__main__":
    main()
