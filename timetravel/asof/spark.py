"""Point-in-time ("as of") join on Spark: every label row, with each source's latest snapshot
at or before the label's time.

Contract (DESIGN.md, kept by every engine and both plans):

- per source, the row with the greatest ``snapshot_time <= label_time`` (a snapshot taken
  exactly at the label time is visible); among equal snapshot times the greatest
  ``written_time`` wins (without a written-time column, the greatest values of the
  primitive feature columns, compared in column order, win: deterministic on every engine);
- ``label_time - max_staleness <= snapshot_time`` (inclusive), else that source's columns
  are all null; no snapshot at all also gives nulls;
- values come from ONE snapshot row (a null inside the chosen row stays null);
- every label row appears exactly once (duplicates too), with all its columns; a null key
  or null label time gives nulls, not an error.

Two plans keep it, one pass per source each:

- the sweep (:mod:`.spark_sweep`): labels and snapshots sorted together by key and time, the
  latest snapshot carried forward to each label row; the label rows shuffled by key once;
  linear in rows per key, hot keys too;
- the band (:mod:`.spark_band`): each (key, label time) joined to its key's earlier
  snapshots, the latest kept and joined back to the label rows; Spark may broadcast the
  label side; faster when keys have few snapshots, quadratic on a hot key.

``plan="auto"`` (the default) chooses from a sample of the keys (:mod:`.spark_plan`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from timetravel.asof import spark_band, spark_sweep
from timetravel.asof.contract import (
    Staleness,
    check_inputs,
    feature_columns,
    key_list,
    resolve_staleness,
)
from timetravel.asof.spark_plan import PLANS, Plan, choose_plan
from timetravel.asof.spark_rows import SourcePass, partitions, types, unpacked
from timetravel.errors import AsOfError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["point_in_time_join"]


def point_in_time_join(
    labels: DataFrame,
    sources: Mapping[str, DataFrame],
    *,
    entity: str | Sequence[str] = "context_id",
    label_time: str = "label_time",
    snapshot_time: str = "snapshot_time",
    written_time: str | None = None,
    max_staleness: Staleness = None,
    plan: Plan = "auto",
) -> DataFrame:
    """Join each label row with every source's latest snapshot at or before its time.

    Output: the label columns, then per source ``N`` and feature column ``c`` a column
    ``N__c``, and ``N__<snapshot_time>`` naming the snapshot used. ``plan`` picks how
    (``sweep``, ``band`` or ``auto``); every plan gives the same rows.

    Example:
        >>> point_in_time_join(labels, {"ratings": ratings}, entity="member_id",
        ...                    max_staleness=timedelta(days=7))          # doctest: +SKIP
    """
    keys = key_list(entity)
    check_inputs(
        types(labels),
        {name: types(frame) for name, frame in sources.items()},
        keys=keys,
        label_time=label_time,
        snapshot_time=snapshot_time,
        written_time=written_time,
        max_staleness=max_staleness,
    )
    if plan not in PLANS:
        raise AsOfError(f"plan must be one of {', '.join(PLANS)}; got {plan!r}")
    if plan == "auto":
        plan = choose_plan(labels, sources, keys=keys).plan
    staleness = resolve_staleness(max_staleness, list(sources))
    passes = [
        SourcePass(
            frame=frame,
            source=name,
            keys=keys,
            features=feature_columns(
                frame.columns, entity=keys, snapshot_time=snapshot_time, written_time=written_time
            ),
            snapshot_time=snapshot_time,
            written_time=written_time,
            staleness=staleness.get(name),
        )
        for name, frame in sources.items()
    ]
    if plan == "band":
        carried = spark_band.join(labels, passes, keys=keys, label_time=label_time)
    else:
        count = partitions([labels, *sources.values()])
        carried = spark_sweep.join(
            labels, passes, keys=keys, label_time=label_time, partitions=count
        )
    return unpacked(carried)
