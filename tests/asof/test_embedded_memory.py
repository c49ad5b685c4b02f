"""The embedded join under a memory limit: same rows streamed from datasets, and a clear
error, not a crash, when even spilling cannot fit (no Spark needed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from timetravel.asof.duckdb import point_in_time_join_arrow
from timetravel.errors import AsOfError

START = datetime(2026, 1, 1, tzinfo=UTC)


def _tables(rows: int) -> tuple[pa.Table, pa.Table]:
    labels = pa.table(
        {
            "context_id": pa.array([i % 1000 for i in range(rows)], pa.int64()),
            "label_time": pa.array(
                [START + timedelta(minutes=i) for i in range(rows)], pa.timestamp("us", "UTC")
            ),
        }
    )
    snaps = pa.table(
        {
            "context_id": pa.array([i % 1000 for i in range(rows)], pa.int64()),
            "snapshot_time": pa.array(
                [START + timedelta(minutes=i + 30) for i in range(rows)], pa.timestamp("us", "UTC")
            ),
            "value": pa.array([f"v{i}" * 20 for i in range(rows)]),
        }
    )
    return labels, snaps


def test_streamed_sources_under_a_limit_give_the_same_rows(tmp_path) -> None:
    labels, snaps = _tables(20_000)
    plain = point_in_time_join_arrow(labels, {"s": snaps})
    streamed = point_in_time_join_arrow(
        labels,
        {"s": ds.dataset(snaps)},
        memory_limit_mb=64,
        spill_directory=str(tmp_path),
    )
    assert streamed.equals(plain)
    # Label i (minute i, key i % 1000) sees snapshot i - 1000 (minute i - 970): snapshot i
    # of its key is 30 minutes after it. The first 1000 labels have no history: nulls.
    assert streamed.column("s__value")[1999].as_py() == "v999" * 20
    assert streamed.column("s__value")[5].as_py() is None
    assert streamed.num_rows == 20_000
    assert list(tmp_path.iterdir()) == []  # the spill directory is removed after


def test_running_out_of_the_limit_is_a_clear_error() -> None:
    labels, snaps = _tables(200_000)
    with pytest.raises(AsOfError, match=r"memory limit \(1 MB\).*embedded_memory_mb"):
        point_in_time_join_arrow(labels, {"s": ds.dataset(snaps)}, memory_limit_mb=1)
