"""Delta round trips on the local warehouse and on s3a:// against the moto server."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from tests.utils.builders import ratings, sorted_rows
from timetravel.config import Config
from timetravel.errors import StoreError, TableNotFoundError, TimeTravelRangeError
from timetravel.warehouse import store as store_module
from timetravel.warehouse.store import DeltaStore, Txn

pytestmark = pytest.mark.spark

FIRST = [(1, "Dark", True), (2, "Ozark", False)]
SECOND = [(1, "Narcos", True)]


@pytest.fixture
def store(spark, warehouse_config: Config) -> DeltaStore:  # type: ignore[no-untyped-def]
    return DeltaStore(spark, warehouse_config)


@pytest.fixture(scope="module")
def two_runs(spark, module_warehouse: Config) -> DeltaStore:  # type: ignore[no-untyped-def]
    """'ratings': v0 = create (empty), v1 = run-a, v2 = run-b; written once per warehouse and
    shared by the tests below, which only read it or check that a replay commits nothing."""
    store = DeltaStore(spark, module_warehouse)
    store.create("facts/ratings", ratings(spark).schema)
    assert (
        store.append(
            "facts/ratings", ratings(spark, *FIRST), user_metadata="run-a", txn=Txn("run-a", 0)
        )
        == 1
    )
    assert (
        store.append(
            "facts/ratings", ratings(spark, *SECOND), user_metadata="run-b", txn=Txn("run-b", 0)
        )
        == 2
    )
    return store


def test_version_as_of(two_runs: DeltaStore) -> None:
    assert two_runs.read("facts/ratings", version=0).count() == 0
    assert sorted_rows(two_runs.read("facts/ratings", version=1)) == sorted(FIRST)
    assert sorted_rows(two_runs.read("facts/ratings", version=2)) == sorted(FIRST + SECOND)
    assert sorted_rows(two_runs.read("facts/ratings")) == sorted(FIRST + SECOND)


def test_timestamp_as_of_uses_commit_times(two_runs: DeltaStore) -> None:
    commits = {c.version: c for c in two_runs.history("facts/ratings")}
    at_v1 = commits[1].timestamp
    assert sorted_rows(two_runs.read("facts/ratings", timestamp=at_v1)) == sorted(FIRST)
    assert sorted_rows(two_runs.read("facts/ratings", timestamp=commits[2].timestamp)) == sorted(
        FIRST + SECOND
    )
    # ISO strings with an offset are the same instant.
    as_text = at_v1.astimezone().isoformat()
    assert sorted_rows(two_runs.read("facts/ratings", timestamp=as_text)) == sorted(FIRST)


def test_history_shows_user_metadata(two_runs: DeltaStore) -> None:
    history = two_runs.history("facts/ratings")
    assert [(c.version, c.user_metadata) for c in history] == [
        (2, "run-b"),
        (1, "run-a"),
        (0, None),
    ]
    assert history[0].timestamp >= history[1].timestamp >= history[2].timestamp
    assert history[0].timestamp.tzinfo is not None


def test_idempotent_rewrite_commits_nothing(spark, two_runs: DeltaStore) -> None:  # type: ignore[no-untyped-def]
    replay = two_runs.append(
        "facts/ratings", ratings(spark, *FIRST), user_metadata="run-a", txn=Txn("run-a", 0)
    )
    assert replay is None
    assert two_runs.latest_version("facts/ratings") == 2
    assert two_runs.read("facts/ratings").count() == len(FIRST + SECOND)


def test_time_travel_properties_are_set(two_runs: DeltaStore) -> None:
    props = two_runs.properties("facts/ratings")
    assert props["delta.deletedFileRetentionDuration"] == "interval 3650 days"
    assert props["delta.logRetentionDuration"] == "interval 3650 days"
    assert props["delta.enableInCommitTimestamps"] == "true"
    assert props["delta.enableDeletionVectors"] == "false"


def test_out_of_range_version(two_runs: DeltaStore) -> None:
    with pytest.raises(TimeTravelRangeError, match="has no version 9"):
        two_runs.read("facts/ratings", version=9)


def test_timestamp_before_first_commit(two_runs: DeltaStore) -> None:
    with pytest.raises(TimeTravelRangeError, match="before the earliest version"):
        two_runs.read("facts/ratings", timestamp="2001-01-01T00:00:00Z")


def test_missing_table(store: DeltaStore) -> None:
    with pytest.raises(TableNotFoundError, match="no Delta table 'facts/nothing'"):
        store.read("facts/nothing")


def test_bad_table_name(store: DeltaStore) -> None:
    with pytest.raises(StoreError, match="invalid table name '../escape'"):
        store.path("../escape")


def test_create_is_idempotent(spark, two_runs: DeltaStore) -> None:  # type: ignore[no-untyped-def]
    two_runs.create("facts/ratings", ratings(spark).schema)
    assert two_runs.latest_version("facts/ratings") == 2


FIRST_COMMIT = "00000000000000000000.json"


def _winner_mid_commit(spark, config: Config, elsewhere: Path) -> Path:  # type: ignore[no-untyped-def]
    """A race winner caught mid-create, as the loser sees the location: the winner has made
    its ``_delta_log`` (with ``_staged_commits``) and written its first commit to a temporary
    file, not yet renamed into place. (The other losing interleaving, the winner's log
    appearing between the loser's existence check and its commit, cannot be forced from
    outside the JVM; it takes the same wait.)

    Returns the temporary file.
    """
    root = config.warehouse.model_copy(update={"root": str(elsewhere)})
    winner = DeltaStore(spark, config.model_copy(update={"warehouse": root}))
    winner.create("facts/ratings", ratings(spark).schema)
    log = Path(DeltaStore(spark, config).path("facts/ratings")) / "_delta_log"
    (log / "_staged_commits").mkdir(parents=True)
    temporary = log / f".{FIRST_COMMIT}.3f2a.tmp"
    shutil.copyfile(elsewhere / "facts" / "ratings" / "_delta_log" / FIRST_COMMIT, temporary)
    return temporary


def test_a_table_another_driver_creates_is_seen_after_a_miss(  # type: ignore[no-untyped-def]
    spark, local_config: Config, tmp_path: Path
) -> None:
    """Delta caches a miss per driver; ``exists`` must not keep answering from it."""
    temporary = _winner_mid_commit(spark, local_config, tmp_path / "winner")
    store = DeltaStore(spark, local_config)
    assert not store.exists("facts/ratings")
    os.rename(temporary, temporary.parent / FIRST_COMMIT)
    assert store.exists("facts/ratings")


def test_create_waits_for_a_racing_creators_first_commit(  # type: ignore[no-untyped-def]
    spark, local_config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loser of a first-creation race sees a log with no commit yet: it waits for it."""
    temporary = _winner_mid_commit(spark, local_config, tmp_path / "winner")
    waits: list[float] = []
    appears = DeltaStore._appears

    def spy(self: DeltaStore, name: str, *, within_s: float) -> bool:
        waits.append(within_s)
        return appears(self, name, within_s=within_s)

    monkeypatch.setattr(DeltaStore, "_appears", spy)
    committing = threading.Timer(1.0, os.rename, (temporary, temporary.parent / FIRST_COMMIT))
    committing.start()
    loser = DeltaStore(spark, local_config)
    loser.create("facts/ratings", ratings(spark).schema)
    committing.join()
    assert waits == [store_module._FIRST_COMMIT_WAIT_S]
    assert loser.latest_version("facts/ratings") == 0
    assert loser.read("facts/ratings").schema == ratings(spark).schema


def test_create_over_a_log_that_never_commits_still_fails(  # type: ignore[no-untyped-def]
    spark, local_config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No commit ever comes (a crashed creator's leftovers): after the wait, a clear error."""
    monkeypatch.setattr(store_module, "_FIRST_COMMIT_WAIT_S", 0.5)
    _winner_mid_commit(spark, local_config, tmp_path / "winner")
    started = time.monotonic()
    with pytest.raises(
        StoreError,
        match=r"cannot create table 'facts/ratings': .* holds files but no Delta commit "
        r"\(waited 0.5 s;",
    ):
        DeltaStore(spark, local_config).create("facts/ratings", ratings(spark).schema)
    assert time.monotonic() - started >= 0.5


def test_create_over_files_that_are_not_delta_fails_at_once(  # type: ignore[no-untyped-def]
    spark, local_config: Config
) -> None:
    location = Path(DeltaStore(spark, local_config).path("facts/ratings"))
    location.mkdir(parents=True)
    (location / "part-00000.parquet").write_bytes(b"not ours")
    with pytest.raises(StoreError, match=r"holds files but no Delta commit \(waited 0 s;"):
        DeltaStore(spark, local_config).create("facts/ratings", ratings(spark).schema)


def test_unknown_partition_column(spark, store: DeltaStore) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(StoreError, match=r"cannot partition 'x' by \['day'\]: not in the schema"):
        store.create("x", ratings(spark).schema, partition_by=["day"])


def test_long_retention_is_what_keeps_old_versions_readable(spark, local_config: Config) -> None:  # type: ignore[no-untyped-def]
    """Delta 4.1+ refuses time travel past deletedFileRetentionDuration even without VACUUM.

    A control table with a zero retention shows the refusal is real; ours (3650 days) reads
    the same version fine.
    """
    tables = local_config.tables.model_copy(update={"deleted_file_retention": "interval 0 hours"})
    short = DeltaStore(spark, local_config.model_copy(update={"tables": tables}))
    ours = DeltaStore(spark, local_config)
    for store, name in ((short, "short"), (ours, "long")):
        store.create(name, ratings(spark).schema)
        store.append(name, ratings(spark, *FIRST))
        store.append(name, ratings(spark, *SECOND))
    time.sleep(1.1)
    with pytest.raises(TimeTravelRangeError, match="deletedFileRetentionDuration"):
        short.read("short", version=1)
    assert sorted_rows(ours.read("long", version=1)) == sorted(FIRST)
