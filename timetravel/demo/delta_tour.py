"""A short tour of the storage contract: versions, history, time travel, idempotent writes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

from timetravel.store import DeltaStore, Txn

__all__ = ["run_delta_tour"]

TOUR_TABLE = "demo/ratings_tour"


def run_delta_tour(store: DeltaStore, *, say: Callable[[str], None] = print) -> None:
    """Create a table, append twice (once replayed), print its history and an as-of read."""
    from pyspark.sql import Row

    spark = store.spark
    now = datetime.now(timezone.utc).replace(microsecond=0)
    run_a, run_b = f"tour-{now:%Y%m%dT%H%M%S}-a", f"tour-{now:%Y%m%dT%H%M%S}-b"
    first = spark.createDataFrame([Row(context_id=1, title="Dark", thumbs_up=True, run_id=run_a),
                                   Row(context_id=2, title="Ozark", thumbs_up=False, run_id=run_a)])
    second = spark.createDataFrame([Row(context_id=1, title="Narcos", thumbs_up=True, run_id=run_b)])

    store.create(TOUR_TABLE, first.schema, comment="timetravel demo: storage tour")
    v1 = store.append(TOUR_TABLE, first, user_metadata=run_a, txn=Txn(run_a, 0))
    replay = store.append(TOUR_TABLE, first, user_metadata=run_a, txn=Txn(run_a, 0))
    v2 = store.append(TOUR_TABLE, second, user_metadata=run_b, txn=Txn(run_b, 0))
    say(f"table {store.path(TOUR_TABLE)}")
    say(f"appended run {run_a} -> version {v1}; replayed it -> "
        f"{'nothing committed' if replay is None else f'version {replay} (BUG)'}; "
        f"appended run {run_b} -> version {v2}")

    say("\nhistory (newest first, last 5):")
    say(f"  {'version':>7}  {'commit time (UTC)':<26}  {'operation':<13}  userMetadata")
    for commit in store.history(TOUR_TABLE, limit=5):
        say(f"  {commit.version:>7}  {commit.timestamp.isoformat():<26}  {commit.operation:<13}  "
            f"{commit.user_metadata or ''}")

    assert v1 is not None
    as_of = store.read(TOUR_TABLE, version=v1).where(f"run_id = '{run_a}'")
    latest = store.read(TOUR_TABLE).where(f"run_id in ('{run_a}', '{run_b}')")
    say(f"\nas of version {v1}: {as_of.count()} rows of this tour; latest: {latest.count()} rows")
    for row in as_of.orderBy("context_id").collect():
        say(f"  context {row.context_id}: {row.title} thumbs_up={row.thumbs_up}")
