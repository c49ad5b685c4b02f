"""Export the demo world's population, as of an instant, to a Delta table.

The population is the input of stratified sampling: one row per member who has joined and
not churned at ``as_of``, with the attributes strata are built from. Each export appends
one snapshot tagged with ``population_as_of``; readers take the latest snapshot at or
before their run time (``read_population``), so older runs stay reproducible.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

from timetravel.demo.world import DEVICES, PLANS, REGIONS, World
from timetravel.times import to_utc
from timetravel.warehouse.store import DeltaStore, Txn, latest_snapshot

__all__ = ["POPULATION_TABLE", "population_frame", "write_population", "read_population"]

POPULATION_TABLE = "population"
_SCHEMA = (
    "member_id long, country string, region string, primary_device string, plan string, "
    "member_since timestamp, tenure_days int, plays_per_day double, "
    "viewing_hours_per_week double, population_as_of timestamp"
)
# Expected minutes per play of the world's log-normal(ln 40, 0.6) durations, clipped.
_MEAN_PLAY_MINUTES = 47.5


def population_frame(spark, world: World, as_of: datetime | str):
    """The population at ``as_of`` as a Spark DataFrame (built with numpy + Arrow)."""
    import pandas as pd

    at = to_utc(as_of)
    prof = world.profiles(np.arange(world.members), at)
    live = prof["exists"] & ~prof["churned"]
    countries = np.array(list(REGIONS))
    country = countries[prof["country"][live]]
    frame = pd.DataFrame(
        {
            "member_id": prof["member_id"][live],
            "country": country,
            "region": np.array([REGIONS[c] for c in countries])[prof["country"][live]],
            "primary_device": np.array(DEVICES)[prof["device"][live]],
            "plan": np.array(PLANS)[prof["plan"][live]],
            "member_since": pd.to_datetime(prof["member_since"][live], unit="s", utc=True),
            "tenure_days": prof["tenure_days"][live].astype(np.int32),
            "plays_per_day": prof["intensity"][live],
            "viewing_hours_per_week": prof["intensity"][live] * 7 * _MEAN_PLAY_MINUTES / 60,
            "population_as_of": pd.Timestamp(at),
        }
    )
    return spark.createDataFrame(frame, _SCHEMA)


def write_population(store: DeltaStore, world: World, as_of: datetime | str) -> int | None:
    """Append the population snapshot at ``as_of``; a repeat of the same instant commits nothing."""
    at = to_utc(as_of)
    frame = population_frame(store.spark, world, at)
    store.create(POPULATION_TABLE, frame.schema, comment="demo population snapshots")
    tag = f"population@{at.isoformat()}"
    return store.append(POPULATION_TABLE, frame, user_metadata=tag, txn=Txn(tag, 0))


def read_population(store: DeltaStore, as_of: datetime | str, *, version: int | None = None):
    """The latest population snapshot taken at or before ``as_of`` (empty if none)."""
    return latest_snapshot(store.read(POPULATION_TABLE, version=version), "population_as_of", as_of)
