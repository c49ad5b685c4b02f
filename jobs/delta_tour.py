"""spark-submit entry point: the storage tour (create, append, replay, history, as-of read).

    spark-submit $(timetravel jars --submit-args) jobs/delta_tour.py [--conf conf/local.yaml]
"""

import argparse

from timetravel.config import load_config
from timetravel.demo.delta_tour import run_delta_tour
from timetravel.spark import get_spark
from timetravel.store import DeltaStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conf", help="YAML profile (default: $TIMETRAVEL_CONF or conf/local.yaml)")
    args = parser.parse_args()
    config = load_config(args.conf)
    run_delta_tour(DeltaStore(get_spark(config), config))


if __name__ == "__main__":
    main()
