"""The embedded join's ASOF order values at the edges of time, hand-computed (no Spark needed).

The DuckDB join orders one key's snapshots by a single value: a BIGINT of the time when
nothing breaks ties, a HUGEINT of the time and the written time when that is the tie-break,
a struct otherwise (``timetravel.asof.duckdb._orders``). These cases put every one of them
at year 1 and year 9999, exact-time equality and one-microsecond steps, on UTC and on naive
timestamps (taken as UTC).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest

from timetravel.asof.duckdb import point_in_time_join_arrow
from timetravel.times import MAX_DURATION

FIRST = datetime(1, 1, 1, tzinfo=UTC)
LAST = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
US = timedelta(microseconds=1)


@pytest.fixture(params=["UTC", None], ids=["utc", "naive"])
def zone(request: pytest.FixtureRequest) -> str | None:
    return request.param  # type: ignore[no-any-return]


def _stamps(values: list[datetime | None], zone: str | None) -> pa.Array:
    if zone is None:
        values = [v.replace(tzinfo=None) if v else None for v in values]
    return pa.array(values, pa.timestamp("us", zone))


def _labels(zone: str | None) -> pa.Table:
    return pa.table(
        {
            "context_id": pa.array([1, 2, 2, 1], pa.int64()),
            "label_time": _stamps([LAST, FIRST, FIRST + US, LAST], zone),
            "y": ["last", "first", "first + 1us", "last again"],
        }
    )


def _chosen(out: pa.Table, column: str) -> list[Any]:
    return out.column(column).to_pylist()


@pytest.mark.parametrize("staleness", [None, MAX_DURATION], ids=["unbounded", "longest"])
def test_written_time_ties_at_the_edges_of_time(
    zone: str | None, staleness: timedelta | None
) -> None:
    snaps = pa.table(
        {
            "context_id": pa.array([1, 1, 1, 1, 2, 2, 2], pa.int64()),
            "snapshot_time": _stamps([LAST, LAST, LAST, LAST - US, FIRST, FIRST, FIRST + US], zone),
            "written_at": _stamps([FIRST, LAST, None, LAST, FIRST, FIRST + US, FIRST], zone),
            "v": pa.array([1, 2, 3, 4, 5, 6, 7], pa.int64()),
        }
    )
    out = point_in_time_join_arrow(
        _labels(zone), {"s": snaps}, written_time="written_at", max_staleness=staleness
    )
    # Key 1 at the last instant: three snapshots at exactly that time, the latest write (v=2)
    # wins over year 1's and over an unknown one; v=4 is a microsecond older. Key 2 at the
    # first instant: the later of two writes (v=6); a microsecond on, v=7's newer snapshot.
    assert _chosen(out, "s__v") == [2, 6, 7, 2]
    assert _chosen(out, "y") == ["last", "first", "first + 1us", "last again"]
    times = [t.replace(tzinfo=UTC) if zone is None else t for t in _chosen(out, "s__snapshot_time")]
    assert times == [LAST, FIRST, FIRST + US, LAST]


def test_feature_ties_at_the_edges_of_time(zone: str | None) -> None:
    snaps = pa.table(
        {
            "context_id": pa.array([1, 1, 1, 2, 2], pa.int64()),
            "snapshot_time": _stamps([LAST, LAST, LAST, FIRST, FIRST + US], zone),
            "v": pa.array([9, None, 8, 5, 7], pa.int64()),
        }
    )
    out = point_in_time_join_arrow(_labels(zone), {"s": snaps})
    # No written time: the greatest v wins a tie, a null v loses.
    assert _chosen(out, "s__v") == [9, 5, 7, 9]


def test_unorderable_features_order_by_time_alone(zone: str | None) -> None:
    snaps = pa.table(
        {
            "context_id": pa.array([1, 1, 2, 2], pa.int64()),
            "snapshot_time": _stamps([LAST - US, LAST, FIRST, FIRST + US], zone),
            "tags": pa.array([["older"], ["last"], ["first"], ["later"]], pa.list_(pa.string())),
        }
    )
    out = point_in_time_join_arrow(_labels(zone), {"s": snaps})
    assert _chosen(out, "s__tags") == [["last"], ["first"], ["later"], ["last"]]


def test_staleness_counts_microseconds_at_the_edges(zone: str | None) -> None:
    snaps = pa.table(
        {
            "context_id": pa.array([1, 2], pa.int64()),
            "snapshot_time": _stamps([LAST - timedelta(days=1), FIRST], zone),
            "v": pa.array([1, 2], pa.int64()),
        }
    )
    one_day = point_in_time_join_arrow(_labels(zone), {"s": snaps}, max_staleness=timedelta(days=1))
    assert _chosen(one_day, "s__v") == [1, 2, 2, 1]
    # A microsecond less than a day: the snapshot a day before the last instant is too old;
    # year 1's label a microsecond after its snapshot is still fresh.
    tight = point_in_time_join_arrow(
        _labels(zone), {"s": snaps}, max_staleness=timedelta(days=1) - US
    )
    assert _chosen(tight, "s__v") == [None, 2, 2, None]
