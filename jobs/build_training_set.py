"""spark-submit entry point: build a point-in-time training set from a label set.

    spark-submit $(timetravel jars --submit-args) jobs/build_training_set.py \\
        --labels s3a://bucket/labels.parquet --out s3a://bucket/training/ts1 \\
        [--features plays_7d,plan] [--max-staleness 14d] [--engine spark] [--conf ...]

Writes OUT/data (Delta or Parquet), OUT/labels and OUT/manifest.json; prints a summary.
Exits 2 with one line on bad input (unknown features, missing label columns...).
"""

import argparse
import sys

from timetravel import TimeTravel
from timetravel.config import load_config
from timetravel.errors import TimeTravelError
from timetravel.reports import training_set_summary
from timetravel.training.job import build_training_set, parse_staleness


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--labels", required=True, help="Parquet/CSV file or folder, or Delta table"
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--features", help="comma-separated names (default: all available)")
    parser.add_argument(
        "--max-staleness",
        action="append",
        default=[],
        help="14d for every source, or SOURCE=DURATION (repeatable)",
    )
    parser.add_argument("--engine", default="spark", choices=["auto", "spark", "duckdb"])
    parser.add_argument("--format", default="delta", choices=["delta", "parquet"])
    parser.add_argument("--label-time", default="label_time")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument(
        "--conf", help="YAML profile (default: $TIMETRAVEL_CONF or conf/local.yaml)"
    )
    args = parser.parse_args()
    try:
        config = load_config(args.conf)
        tt = TimeTravel(config)  # starts Spark only if the engine needs it
        features = [f.strip() for f in args.features.split(",")] if args.features else None
        manifest = build_training_set(
            tt,
            args.labels,
            args.out,
            features=features,
            max_staleness=parse_staleness(args.max_staleness),
            engine=args.engine,
            fmt=args.format,
            label_time=args.label_time,
            overwrite=args.overwrite,
        )
    except TimeTravelError as exc:
        print(f"build_training_set: error: {exc}", file=sys.stderr)
        sys.exit(2)
    print(training_set_summary(manifest))


if __name__ == "__main__":
    main()
