"""The as-of contract, in one place: what every engine's point-in-time join checks, how it
resolves staleness per source, which columns are features and how outputs are named.

The engines implement it (DESIGN.md "Time semantics"):

- :func:`timetravel.asof.spark.point_in_time_join` on Spark,
- :func:`timetravel.asof.duckdb.point_in_time_join_arrow` on DuckDB over Arrow,
- :func:`timetravel.asof.duckdb.point_in_time_one_row` for a single label row (lookups).

Each has the signature of :class:`AsOfJoin` and gives the same rows: per source the snapshot
with the greatest ``snapshot_time <= label_time`` (ties to the greatest written time, else to
the greatest primitive feature values in column order), nulls when there is none or it is
older than the source's staleness bound, every label row exactly once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, Protocol

from timetravel.errors import AsOfError
from timetravel.times import MAX_DURATION

__all__ = [
    "Staleness",
    "AsOfJoin",
    "validate_staleness",
    "staleness_for",
    "resolve_staleness",
    "staleness_micros",
    "feature_columns",
    "tie_break_columns",
    "output_column",
    "check_inputs",
    "key_list",
]

Staleness = timedelta | Mapping[str, timedelta] | None


class AsOfJoin(Protocol):
    """The signature every engine's join has (labels and sources in the engine's own type)."""

    def __call__(
        self,
        labels: Any,
        sources: Mapping[str, Any],
        *,
        entity: str | Sequence[str] = ...,
        label_time: str = ...,
        snapshot_time: str = ...,
        written_time: str | None = ...,
        max_staleness: Staleness = ...,
    ) -> Any: ...


def key_list(entity: str | Sequence[str]) -> list[str]:
    """The entity key as a list of column names (one column, or a composite key)."""
    return [entity] if isinstance(entity, str) else list(entity)


def validate_staleness(max_staleness: Staleness, sources: Sequence[str]) -> None:
    """Per-source staleness must name known sources, not be negative, and stay in range."""
    if isinstance(max_staleness, Mapping):
        unknown = sorted(set(max_staleness) - set(sources))
        if unknown:
            raise AsOfError(
                f"max_staleness names unknown source(s) {unknown}; sources: {', '.join(sources)}"
            )
        bounds: list[tuple[str, timedelta | None]] = list(max_staleness.items())
    else:
        bounds = [("*", max_staleness)]
    bad = {name: bound for name, bound in bounds if bound is not None and bound < timedelta(0)}
    if bad:
        raise AsOfError(f"max_staleness must not be negative; got {bad}")
    if any(bound is not None and bound > MAX_DURATION for _, bound in bounds):
        raise AsOfError(f"max_staleness must be at most {MAX_DURATION.days} days")


def staleness_for(max_staleness: Staleness, source: str) -> timedelta | None:
    """The bound that applies to ``source`` (None: any age is usable)."""
    if isinstance(max_staleness, Mapping):
        return max_staleness.get(source)
    return max_staleness


def resolve_staleness(
    max_staleness: Staleness, sources: Sequence[str]
) -> dict[str, timedelta | None]:
    """The bound of every source, spelled out (checked by :func:`check_inputs`)."""
    return {name: staleness_for(max_staleness, name) for name in sources}


def staleness_micros(bound: timedelta) -> int:
    """A staleness bound in whole microseconds, the unit every engine compares times in."""
    return int(bound / timedelta(microseconds=1))


def feature_columns(
    columns: Sequence[str], *, entity: Sequence[str], snapshot_time: str, written_time: str | None
) -> list[str]:
    """A source's columns that become features: all but the key and time columns."""
    skip = {*entity, snapshot_time, *([written_time] if written_time else [])}
    return [c for c in columns if c not in skip]


# Types whose values order snapshots that tie on snapshot time (Spark's names; unsigned
# integers exist only on the Arrow side).
_ORDERABLE = frozenset(
    {
        "tinyint",
        "smallint",
        "int",
        "bigint",
        "float",
        "double",
        "string",
        "boolean",
        "date",
        "timestamp",
        "timestamp_ntz",
        "uint8",
        "uint16",
        "uint32",
        "uint64",
    }
)


def tie_break_columns(
    types: Mapping[str, str], features: Sequence[str], written_time: str | None
) -> list[str]:
    """What orders one key's snapshots at the same snapshot time (the greatest wins): the
    written time if there is one, else the primitive feature columns, in column order."""
    if written_time:
        return [written_time]
    return [c for c in features if types[c] in _ORDERABLE or types[c].startswith("decimal")]


def output_column(source: str, column: str) -> str:
    """The output name of a source's column: ``<source>__<column>``."""
    return f"{source}__{column}"


def check_inputs(
    labels: Mapping[str, str],
    sources: Mapping[str, Mapping[str, str]],
    *,
    keys: Sequence[str],
    label_time: str,
    snapshot_time: str,
    written_time: str | None,
    max_staleness: Staleness,
) -> None:
    """Labels and sources, given as ``column -> type name`` (engine types spelled the way
    Spark names them: 'timestamp', 'bigint'...), fit the contract; else an AsOfError naming
    what is wrong."""
    if not sources:
        raise AsOfError("no sources given: pass a mapping of source name -> table")
    _require(labels, [*keys, label_time], "labels")
    _timestamp(labels, label_time, "labels")
    for name, columns in sources.items():
        if "__" in name or not name:
            raise AsOfError(f"source name {name!r} must be non-empty and must not contain '__'")
        what = f"source {name!r}"
        _require(columns, [*keys, snapshot_time, *([written_time] if written_time else [])], what)
        _timestamp(columns, snapshot_time, what)
        for key in keys:
            if labels[key] != columns[key]:
                raise AsOfError(
                    f"key column {key!r} is {labels[key]} in the labels but {columns[key]} in "
                    f"{what}; cast one side so they match"
                )
    validate_staleness(max_staleness, list(sources))


def _require(columns: Mapping[str, str], wanted: list[str], what: str) -> None:
    missing = [c for c in wanted if c not in columns]
    if missing:
        raise AsOfError(f"{what} lacks column(s) {missing}; it has: {', '.join(columns)}")


def _timestamp(columns: Mapping[str, str], column: str, what: str) -> None:
    if columns[column] not in ("timestamp", "timestamp_ntz"):
        raise AsOfError(
            f"{what}: column {column!r} must be a timestamp; it is {columns[column]} "
            "(convert with to_timestamp; naive values are taken as UTC)"
        )
