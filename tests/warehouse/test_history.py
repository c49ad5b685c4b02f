"""Commit history read through delta-rs stays numbered right while writers commit."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest
from deltalake import CommitProperties, DeltaTable, write_deltalake

from timetravel.config import Config
from timetravel.errors import StoreError
from timetravel.warehouse.deltars import history_entries, table_uri

TABLE = "tagged"


def commit(config: Config, tag: str) -> None:
    write_deltalake(
        table_uri(config, TABLE),
        pa.table({"a": [1]}),
        mode="append",
        commit_properties=CommitProperties(custom_metadata={"userMetadata": tag}),
    )


def tags(entries: list[dict[str, Any]]) -> list[tuple[int, str]]:
    return [(int(e["version"]), e["userMetadata"]) for e in entries]


@pytest.fixture
def three_commits(local_config: Config) -> Config:
    for i in range(3):
        commit(local_config, f"c{i}")
    return local_config


def test_history_is_numbered_from_the_log(three_commits: Config) -> None:
    assert tags(history_entries(three_commits, TABLE)) == [(2, "c2"), (1, "c1"), (0, "c0")]
    assert tags(history_entries(three_commits, TABLE, 2)) == [(2, "c2"), (1, "c1")]
    assert tags(history_entries(three_commits, TABLE, since=1)) == [(2, "c2"), (1, "c1")]
    assert history_entries(three_commits, TABLE, since=3) == []


def test_a_commit_landing_mid_read_does_not_shift_the_numbers(
    three_commits: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    # delta-rs alone numbers down from the version its handle loaded but lists the log
    # as it is when asked: this interleaving used to label c3 as version 2.
    real = DeltaTable.history
    landed = []

    def history_after_a_commit(self: DeltaTable, limit: int | None = None) -> Any:
        if not landed:
            landed.append(True)
            commit(three_commits, "c3")
        return real(self, limit)

    monkeypatch.setattr(DeltaTable, "history", history_after_a_commit)
    assert tags(history_entries(three_commits, TABLE, since=2)) == [(3, "c3"), (2, "c2")]
    assert landed == [True]


def test_a_log_that_never_settles_is_an_error(
    three_commits: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = DeltaTable.history
    count = iter(range(1000))

    def always_racing(self: DeltaTable, limit: int | None = None) -> Any:
        commit(three_commits, f"r{next(count)}")
        return real(self, limit)

    monkeypatch.setattr(DeltaTable, "history", always_racing)
    with pytest.raises(StoreError, match="kept moving"):
        history_entries(three_commits, TABLE, 1)
