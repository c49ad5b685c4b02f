"""Population export: the Delta table matches the world, snapshots are read at-or-before."""

from __future__ import annotations

import numpy as np
import pytest

from timetravel.config import Config
from timetravel.demo.population import POPULATION_TABLE, read_population, write_population
from timetravel.demo.world import DEVICES, PLANS, World
from timetravel.warehouse.store import DeltaStore

pytestmark = pytest.mark.spark

T1, T2 = "2026-06-01T00:00:00Z", "2026-07-01T00:00:00Z"


@pytest.fixture(scope="module")
def world() -> World:
    return World(seed=7, members=1500)


@pytest.fixture
def store(spark, local_config: Config, world: World) -> DeltaStore:  # type: ignore[no-untyped-def]
    store = DeltaStore(spark, local_config)
    assert write_population(store, world, T1) == 1
    assert write_population(store, world, T2) == 2
    return store


def test_population_matches_the_world(store: DeltaStore, world: World) -> None:
    rows = {r["member_id"]: r for r in read_population(store, T1).collect()}
    prof = world.profiles(np.arange(world.members), T1)
    live = np.flatnonzero(prof["exists"] & ~prof["churned"])
    assert sorted(rows) == live.tolist()
    for member in live[:50].tolist():
        truth = world.state(member, T1)["member-profile"]
        row = rows[member]
        assert (
            row["country"],
            row["region"],
            row["plan"],
            row["primary_device"],
            row["tenure_days"],
        ) == (
            truth["country"],
            truth["region"],
            truth["plan"],
            truth["primary_device"],
            truth["tenure_days"],
        )
    assert {r["plan"] for r in rows.values()} <= set(PLANS)
    assert {r["primary_device"] for r in rows.values()} <= set(DEVICES)


def test_snapshots_are_read_at_or_before(store: DeltaStore) -> None:
    def as_of(instant: str) -> set[str]:
        frame = read_population(store, instant)
        return {
            r[0]
            for r in frame.selectExpr("date_format(population_as_of, \"yyyy-MM-dd'T'HH:mm:ss\")")
            .distinct()
            .collect()
        }

    assert as_of("2026-05-31T23:59:59Z") == set()  # before any snapshot
    assert as_of(T1) == {"2026-06-01T00:00:00"}  # exactly at T1: visible
    assert as_of("2026-06-30T23:59:59Z") == {"2026-06-01T00:00:00"}
    assert as_of("2027-01-01T00:00:00Z") == {"2026-07-01T00:00:00"}


def test_repeat_export_commits_nothing(store: DeltaStore, world: World) -> None:
    assert write_population(store, world, T1) is None
    assert store.latest_version(POPULATION_TABLE) == 2
    assert [c.user_metadata for c in store.history(POPULATION_TABLE)][:2] == [
        "population@2026-07-01T00:00:00+00:00",
        "population@2026-06-01T00:00:00+00:00",
    ]


def test_pinned_version_ignores_later_exports(store: DeltaStore) -> None:
    pinned = read_population(store, T2, version=1)
    assert pinned.count() == read_population(store, T1).count()
    assert pinned.count() != read_population(store, T2).count()
