"""Maintenance keeps time travel valid: compaction and checkpoints leave every version
readable, and a VACUUM that would delete a pinned version's files is refused."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from tests.utils.facts import PROFILE, RATINGS, write_facts
from timetravel import TimeTravel
from timetravel.config import Config
from timetravel.errors import MaintenanceError, StoreError
from timetravel.schedule.maintenance import find_pins, maintain, warehouse_tables
from timetravel.warehouse.layout import facts_table
from timetravel.warehouse.store import DeltaStore

pytestmark = pytest.mark.spark

FEATURES = ["ratings_count", "thumbs_up_share", "plan"]
RATINGS_TABLE = facts_table("ratings")


def labels() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "member_id": [1, 1, 2, 3],
            "label_time": pd.to_datetime(
                ["2026-06-02T00:00Z", "2026-06-12T00:00Z", "2026-06-12T00:00Z", "2026-06-12T00:00Z"]
            ),
            "y": [0, 1, 1, 0],
        }
    )


def ratings(store: DeltaStore, run: str, day: str, values: list[tuple[int, int, int]]) -> None:
    """One commit per row, so each day's partition holds several small files for OPTIMIZE to
    compact, however many tasks Spark splits a small frame into."""
    for m, up, down in values:
        write_facts(
            store,
            "ratings",
            RATINGS,
            [(m, f"2026-06-{day}T06:00:00", up, down)],
            run_id=run,
            written_at=f"2026-06-{day}T07:00:00Z",
        )


@pytest.fixture
def tt(spark, local_config: Config, tmp_path: Path) -> TimeTravel:  # type: ignore[no-untyped-def]
    """Two runs of ratings (a small commit per row) and one of profiles."""
    api = local_config.api.model_copy(update={"state_dir": str(tmp_path / "api")})
    config = local_config.model_copy(update={"api": api})
    store = DeltaStore(spark, config)
    ratings(store, "r1", "01", [(1, 1, 0), (3, 0, 1)])
    ratings(store, "r2", "08", [(1, 3, 1), (2, 2, 0)])
    write_facts(
        store,
        "member-profile",
        PROFILE,
        [(1, "2026-06-08T06:00:00", "basic", "2026-05-31T13:00:00", "active")],
        run_id="r2",
        written_at="2026-06-08T07:00:00Z",
    )
    return TimeTravel(config, spark=spark)


def rows(tt: TimeTravel, manifest: Path) -> list[dict[str, object]]:
    data = tt.rebuild(manifest).to_arrow().to_pylist()
    return sorted(data, key=lambda r: (r["member_id"], str(r["label_time"])))


def test_vacuum_spares_pinned_versions_and_rebuilds_stay_bit_for_bit(
    tt: TimeTravel, tmp_path: Path
) -> None:
    store, config = tt.store, tt.config
    pinned = tmp_path / "pinned"
    old = tt.training_set(labels(), features=FEATURES, engine="duckdb")
    old.write(str(pinned / "old"))
    old_rows = rows(tt, pinned / "old" / "manifest.json")
    ratings(store, "r3", "10", [(1, 9, 0), (3, 4, 4)])

    # Compaction and checkpoints first; the VACUUM after them would delete the files the
    # old training set's version reads: refused, naming its manifest.
    with pytest.raises(MaintenanceError) as refused:
        maintain(
            store,
            config,
            vacuum_retain=timedelta(0),
            manifest_roots=[str(pinned)],
            say=lambda _: None,
        )
    message = str(refused.value)
    pinned_versions = {
        f"'{facts_table(s)}' version {p.version}" for s, p in old.manifest.sources.items()
    }
    assert any(v in message for v in pinned_versions), message
    assert str(pinned / "old" / "manifest.json") in message and "retain at least" in message
    assert (Path(store.path(RATINGS_TABLE)) / "_delta_log" / "_last_checkpoint").exists()
    history = store.history(RATINGS_TABLE, limit=1)
    assert history[0].operation == "OPTIMIZE"
    assert rows(tt, pinned / "old" / "manifest.json") == old_rows  # nothing was deleted
    # Clustering is not redone where nothing new arrived: daily maintenance stays cheap.
    again = maintain(store, config, say=lambda _: None)
    assert [(r.files_added, r.files_removed) for r in again] == [(0, 0)] * len(again)

    # A training set built after compaction pins only compacted files: with only it
    # registered, the VACUUM goes ahead, and it still rebuilds bit for bit...
    new_root = tmp_path / "new"
    tt.training_set(labels(), features=FEATURES, engine="duckdb").write(str(new_root / "ts"))
    new_rows = rows(tt, new_root / "ts" / "manifest.json")
    shutil.move(pinned / "old", tmp_path / "unregistered")
    reports = maintain(
        store,
        config,
        optimize=False,
        vacuum_retain=timedelta(0),
        manifest_roots=[str(new_root)],
        say=lambda _: None,
    )
    vacuumed = {r.table: len(r.vacuumed) for r in reports}
    assert vacuumed[RATINGS_TABLE] == 6  # three appends of two files each, compacted away
    assert rows(tt, new_root / "ts" / "manifest.json") == new_rows
    for engine in ("spark", "duckdb"):
        again = tt.rebuild(new_root / "ts", engine=engine).to_arrow().to_pylist()  # type: ignore[arg-type]
        assert sorted(again, key=lambda r: (r["member_id"], str(r["label_time"]))) == new_rows
    # ...while the unregistered old one, whose files that VACUUM deleted, no longer does.
    with pytest.raises(Exception):  # noqa: B017 - Delta's own missing-file error
        tt.rebuild(tmp_path / "unregistered" / "manifest.json", engine="spark").to_arrow()


def test_manifests_are_found_in_api_jobs_and_roots(tt: TimeTravel, tmp_path: Path) -> None:
    config = tt.config
    manifest = tt.training_set(labels(), features=["plan"], engine="duckdb").write(
        str(tmp_path / "roots" / "a" / "b")
    )
    jobs = Path(config.api.state_dir) / "jobs"
    jobs.mkdir(parents=True)
    (jobs / "job-1.json").write_text(
        json.dumps({"id": "job-1", "manifest": json.loads(manifest.to_json())})
    )
    (jobs / "job-2.json").write_text(json.dumps({"id": "job-2", "manifest": None}))
    pins = find_pins(config, [str(tmp_path / "roots")])
    profile = facts_table("member-profile")
    assert sorted((p.table, p.version, Path(p.manifest).name) for p in pins) == [
        (profile, 1, "job-1.json"),
        (profile, 1, "manifest.json"),
    ]
    assert warehouse_tables(config) == [profile, RATINGS_TABLE]


def test_bad_maintenance_input_is_named(tt: TimeTravel, tmp_path: Path) -> None:
    store, config = tt.store, tt.config
    before = store.latest_version(RATINGS_TABLE)
    with pytest.raises(MaintenanceError, match="manifest root '.*nowhere' does not exist"):
        maintain(
            store,
            config,
            vacuum_retain=timedelta(days=1),
            manifest_roots=[str(tmp_path / "nowhere")],
        )
    assert store.latest_version(RATINGS_TABLE) == before  # refused before any work
    with pytest.raises(MaintenanceError, match="must not be negative"):
        maintain(store, config, vacuum_retain=timedelta(hours=-1))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text('{"secret": "do-not-echo"')
    with pytest.raises(MaintenanceError) as bad:
        find_pins(config, [str(broken)])
    assert "not JSON" in str(bad.value) and "do-not-echo" not in str(bad.value)
    assert isinstance(bad.value, StoreError)
