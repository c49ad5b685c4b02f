"""One owner of the warehouse's layout: the name of every table the jobs write.

Every path is relative to ``warehouse.root`` (a local folder or ``s3a://bucket/prefix``); the
store (:class:`timetravel.warehouse.store.DeltaStore`) and the delta-rs readers resolve it.
"""

from __future__ import annotations

__all__ = [
    "RUNS_TABLE",
    "CONTEXT_SETS_TABLE",
    "SNAPSHOT_ERRORS_TABLE",
    "QUALITY_STATS_TABLE",
    "QUALITY_CHECKS_TABLE",
    "facts_table",
]

RUNS_TABLE = "runs"  # the runs index: one row per run and stage
CONTEXT_SETS_TABLE = "context_sets"  # each run's sample, partitioned by run date
SNAPSHOT_ERRORS_TABLE = "snapshot_errors"  # every failed (context, source) fetch
QUALITY_STATS_TABLE = "quality/stats"  # per run, source, field and stratum: statistics
QUALITY_CHECKS_TABLE = "quality/checks"  # per run: every check, its value and verdict


def facts_table(source: str) -> str:
    """'facts/ratings' for source 'ratings' (dashes become underscores)."""
    return f"facts/{source.replace('-', '_')}"
