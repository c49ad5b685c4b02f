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


def population(
    store: Any,
    strata: dict[tuple[str, str], int],
    *,
    table: str = "population",
    start_id: int = 0,
    hours: float = 5.0,
) -> dict[str, int]:
    """Write a plain population table: ``strata[(region, device)] = count`` members each.

    Member ids are consecutive from ``start_id`` in the order given. Returns stratum sizes
    keyed like the sampler's stratum column ('region|device').
    """
    rows = []
    member = start_id
    for (region, device), count in strata.items():
        for _ in range(count):
            rows.append((member, region, device, hours + (member % 10)))
            member += 1
    frame = store.spark.createDataFrame(
        rows, "member_id long, region string, primary_device string, viewing_hours double"
    )
    store.create(table, frame.schema)
    store.append(table, frame)
    return {f"{r}|{d}": n for (r, d), n in strata.items()}
