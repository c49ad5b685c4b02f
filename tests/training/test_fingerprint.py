"""The label fingerprint without Spark: order-independent, sensitive to every value, null and
column name (the Spark path computes the same number on the executors: tests/training)."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa

from timetravel.training.labels import fingerprint_arrow

T = datetime(2026, 6, 1, tzinfo=UTC)


def labels(ids: list[int | None], ys: list[int | None], *, y: str = "y") -> pa.Table:
    return pa.table(
        {
            "member_id": pa.array(ids, pa.int64()),
            "label_time": pa.array([T] * len(ids), pa.timestamp("us", tz="UTC")),
            y: pa.array(ys, pa.int64()),
        }
    )


def test_row_order_and_batching_do_not_matter() -> None:
    base = labels([1, 2, 3, 3], [0, 1, 1, 1])
    shuffled = base.take([3, 0, 2, 1])
    rebatched = pa.Table.from_batches(base.to_batches(max_chunksize=1))
    assert fingerprint_arrow(base) == fingerprint_arrow(shuffled) == fingerprint_arrow(rebatched)


def test_values_nulls_duplicates_and_names_all_count() -> None:
    base = fingerprint_arrow(labels([1, 2], [0, 1]))
    assert fingerprint_arrow(labels([1, 2], [1, 0])) != base  # a label moved rows
    assert fingerprint_arrow(labels([1, 2], [0, None])) != base  # a null is not a value
    assert fingerprint_arrow(labels([1, 2, 2], [0, 1, 1])) != base  # a duplicate counts
    assert fingerprint_arrow(labels([1, 2], [0, 1], y="z")) != base  # so does a column name
    assert fingerprint_arrow(labels([1, 2], [0, 1])) == base  # and nothing else
