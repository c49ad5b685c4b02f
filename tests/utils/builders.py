"""Small explicit builders for test data."""

from __future__ import annotations

from typing import Any

RATING_SCHEMA = "context_id long, title string, thumbs_up boolean"


def ratings(spark: Any, *rows: tuple[int, str, bool]):  # type: ignore[no-untyped-def]
    """A ratings DataFrame: ratings(spark, (1, "Dark", True), ...)."""
    return spark.createDataFrame(list(rows), RATING_SCHEMA)


def sorted_rows(df: Any) -> list[tuple[Any, ...]]:
    """All rows as plain tuples, in a stable order."""
    return sorted(tuple(r) for r in df.collect())
