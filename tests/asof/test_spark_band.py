"""The band plan where Spark broadcasts the label side (small label sets): the contract suite
runs it shuffled (tests/utils/asof_engines.py), so this path is checked here by hand."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.utils.asof_engines import PitRunner, _collect
from timetravel.asof.spark import point_in_time_join

pytestmark = pytest.mark.spark

D = "2026-01-01 "
LABELS = "context_id long, label_time timestamp, y string"
SNAPS = "context_id long, snapshot_time timestamp, v long, written_at timestamp"


def test_broadcast_labels_keep_the_contract(spark) -> None:  # type: ignore[no-untyped-def]
    runner = PitRunner("spark_band", spark)
    labels = [
        (1, D + "02:00:00", "exact"),  # two snapshots at 02:00: the later written, 21
        (1, D + "02:00:00", "exact twin"),  # the same key and time: the same choice
        (1, D + "02:00:00", "exact twin"),  # a duplicate row: kept, twice
        (1, D + "04:30:00", "within"),  # 03:00 is 1.5 h old: inside the 2 h bound
        (1, D + "05:30:00", "stale"),  # 03:00 is 2.5 h old: nulls, not 02:00's
        (2, D + "01:00:00", "no history"),  # key 2's only snapshot is a second later
        (3, D + "03:00:00", "no key"),
        (None, D + "02:00:00", "null key"),
        (1, None, "null time"),
    ]
    snaps = [
        (1, D + "01:00:00", 10, D + "01:00:00"),
        (1, D + "02:00:00", 21, D + "02:20:00"),
        (1, D + "02:00:00", 20, D + "02:10:00"),
        (1, D + "03:00:00", 30, D + "03:00:00"),
        (2, D + "01:00:01", 40, D + "01:00:01"),
        (None, D + "01:00:00", 99, D + "01:00:00"),
    ]
    plans: list[str] = []
    got = _collect(
        point_in_time_join(
            runner.frame(labels, LABELS),
            {"s": runner.frame(snaps, SNAPS)},
            written_time="written_at",
            max_staleness=timedelta(hours=2),
            plan="band",
        ),
        plans=plans,
    )
    assert [(r["y"], r["s__v"], r["s__snapshot_time"]) for r in got] == [
        ("exact", 21, D + "02:00:00"),
        ("exact twin", 21, D + "02:00:00"),
        ("exact twin", 21, D + "02:00:00"),
        ("no history", None, None),
        ("no key", None, None),
        ("null key", None, None),
        ("null time", None, None),
        ("stale", None, None),
        ("within", 30, D + "03:00:00"),
    ]
    assert "BroadcastHashJoin" in plans[-1], plans[-1]
