"""End to end against the demo world: fleet over simulated days -> select -> snapshot ->
training set, every feature checked against the encoders applied to the world's true state at
the chosen snapshot time; and the online path (live HTTP answers) equal to the offline one."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from timetravel import TimeTravel
from timetravel.collect.selection import select_contexts
from timetravel.collect.snapshot import snapshot_facts
from timetravel.config import Allocation, Config, Panel, SelectionSettings, load_config
from timetravel.demo.fleet import Fleet
from timetravel.demo.population import write_population
from timetravel.demo.world import World
from timetravel.times import to_utc
from timetravel.warehouse.store import DeltaStore

pytestmark = [pytest.mark.spark, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parent.parent
WORLD = {"seed": 11, "members": 300}
RUN_TIMES = [to_utc("2026-03-01T06:00:00Z") + timedelta(days=4 * i) for i in range(3)]


@pytest.fixture(scope="module")
def pipeline(
    spark, test_config: Config, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TimeTravel, Fleet, list[str]]]:  # type: ignore[no-untyped-def]
    """Three scheduled runs of select + snapshot of all four demo sources."""
    local = load_config(ROOT / "conf" / "local.yaml")
    root = tmp_path_factory.mktemp("truth")
    with Fleet.up(root / "fleet", world=WORLD, clock_at=RUN_TIMES[0].isoformat()) as fleet:
        config = test_config.model_copy(
            update={
                "warehouse": test_config.warehouse.model_copy(update={"root": str(root / "wh")}),
                "selection": SelectionSettings(
                    allocation=Allocation(sample_size=80), seed=9, panel=Panel(fraction=0.5)
                ),
                "snapshot": local.snapshot.model_copy(
                    update={"fleet_file": str(fleet.state_dir / "fleet.json")}
                ),
            }
        )
        store = DeltaStore(spark, config)
        world = World(**WORLD)  # type: ignore[arg-type]
        runs = []
        for at in RUN_TIMES:
            fleet.clock.set(at)
            write_population(store, world, at)
            run_id = select_contexts(store, config.selection, at).run_id
            assert snapshot_facts(store, config, run_id).status == "ok"
            runs.append(run_id)
        yield TimeTravel(config, spark=spark), fleet, runs


def random_labels(count: int, seed: int) -> list[dict[str, object]]:
    rng = random.Random(seed)
    start, span = RUN_TIMES[0] - timedelta(days=1), (RUN_TIMES[-1] - RUN_TIMES[0]).days + 6
    labels = []
    for _ in range(count):
        at = start + timedelta(seconds=rng.randrange(span * 86400))
        labels.append({"member_id": rng.randrange(WORLD["members"]), "label_time": at})
    # Exactly at a run time: that run's snapshot is visible.
    labels += [{"member_id": m, "label_time": RUN_TIMES[1]} for m in range(0, 300, 7)]
    return labels


@pytest.mark.parametrize("engine", ["spark", "duckdb"])
def test_every_feature_equals_the_encoders_on_the_true_state(pipeline, engine: str) -> None:  # type: ignore[no-untyped-def]
    tt, _, runs = pipeline
    world = World(**WORLD)  # type: ignore[arg-type]
    result = tt.training_set(
        random_labels(250, seed=1), engine=engine, max_staleness=timedelta(days=6)
    )
    names = [f.name for f in result.manifest.features]
    assert len(names) == 25 and result.manifest.rows == 250 + 43
    covered = 0
    for row in result.to_arrow().to_pylist():
        t = row["label_time"]
        truth: dict[str, object] = {}
        taken = {}
        for source in ("viewing-history", "my-list", "ratings", "member-profile"):
            alias = source.replace("-", "_")
            snapshot = row[f"{alias}__snapshot_time"]
            if snapshot is None:
                truth[source] = None
                continue
            assert snapshot <= t and t - snapshot <= timedelta(days=6)
            assert row[f"{alias}__run_id"] in runs
            truth[source] = world.answer(source, [row["member_id"]], snapshot)[0]
            taken[source] = snapshot
        expected = tt.online_features(truth, t, features=names)
        assert {n: row[n] for n in names} == expected, (row["member_id"], t)
        covered += truth["viewing-history"] is not None
    assert covered > 40  # enough labels actually hit a snapshot to make this meaningful


def test_online_values_from_live_services_equal_the_training_set(pipeline) -> None:  # type: ignore[no-untyped-def]
    tt, fleet, runs = pipeline
    at = RUN_TIMES[-1]
    fleet.clock.set(at)  # the services answer as they did for the last run
    members = sorted(
        {
            r["member_id"]
            for r in tt.store.read("context_sets")
            .where(f"run_id = '{runs[-1]}'")
            .select("member_id")
            .collect()
        }
    )
    members = random.Random(3).sample(members, 25)
    offline = {
        r["member_id"]: r
        for r in tt.training_set(
            [{"member_id": m, "label_time": at} for m in members], engine="duckdb"
        )
        .to_arrow()
        .to_pylist()
    }
    names = [f["name"] for f in tt.features()]
    with httpx.Client(timeout=10) as client:
        live = {
            s: {
                r["member_id"]: r
                for r in client.post(
                    f"{url}/v1/members/batch", json={"member_ids": members}
                ).json()["results"]
            }
            for s, url in fleet.urls.items()
        }
    for member in members:
        online = tt.online_features({s: live[s].get(member) for s in live}, at)
        assert online == {n: offline[member][n] for n in names}, member
