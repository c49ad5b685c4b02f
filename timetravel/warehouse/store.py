"""Versioned Delta tables under the warehouse root: create, write idempotently, time travel.

Every table is created with the properties time travel depends on:

- ``delta.logRetentionDuration`` / ``delta.deletedFileRetentionDuration``: long, because
  Delta 4.1+ refuses to time travel past the deleted-file retention even without VACUUM;
- ``delta.enableInCommitTimestamps``: commit times live in the log, so ``timestampAsOf``
  does not depend on file modification times (which object stores rewrite or truncate);
- ``delta.enableDeletionVectors=false``: keeps tables readable by every engine we use.

Writes carry ``userMetadata`` (the run id) and a transaction id (``txnAppId``/``txnVersion``),
so replaying a write that already committed commits nothing.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

from timetravel.config import Config
from timetravel.errors import StoreError, TableNotFoundError, TimeTravelRangeError
from timetravel.times import format_spark_timestamp, from_micros
from timetravel.warehouse.conflicts import retry_conflicts
from timetravel.warehouse.leases import Lease

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

__all__ = [
    "DeltaStore",
    "Txn",
    "Commit",
    "time_travel_properties",
    "latest_snapshot",
    "table_relative",
]

# What a creator that lost the race says when it finds the winner's ``_delta_log`` before
# the winner's first commit: seen before its own existence check, or between that check and
# its own commit.
_MID_CREATION_ERRORS = ("DELTA_TABLE_NOT_FOUND", "DELTA_CREATE_TABLE_WITH_NON_EMPTY_LOCATION")
_FIRST_COMMIT_WAIT_S = 10.0
_NOT_DELTA = "DELTA_MISSING_DELTA_TABLE"  # files at the location, and no _delta_log at all
_TABLE_NAME = re.compile(r"[a-z][a-z0-9_]*(/[a-z][a-z0-9_]*)*")


@dataclass(frozen=True)
class Txn:
    """An idempotency token: Delta commits a write at most once per (app_id, version)."""

    app_id: str
    version: int


@dataclass(frozen=True)
class Commit:
    """One entry of a table's history."""

    version: int
    timestamp: datetime
    operation: str
    user_metadata: str | None


def time_travel_properties(config: Config, *, in_commit_timestamps: bool = True) -> dict[str, str]:
    """Table properties every timetravel table is created with.

    ``in_commit_timestamps`` is off only for tables written by delta-rs (the runs index),
    which cannot write that table feature; those tables are never read by timestamp.
    """
    properties = {
        "delta.logRetentionDuration": config.tables.log_retention,
        "delta.deletedFileRetentionDuration": config.tables.deleted_file_retention,
        "delta.enableDeletionVectors": "false",
    }
    if in_commit_timestamps:
        properties["delta.enableInCommitTimestamps"] = "true"
    return properties


class DeltaStore:
    """The tables of one warehouse. Table names are relative paths like ``facts/ratings``.

    Example:
        >>> store = DeltaStore(spark, config)                      # doctest: +SKIP
        >>> store.create("events", df.schema)                      # doctest: +SKIP
        >>> store.append("events", df, user_metadata="run-1", txn=Txn("run-1", 0))  # doctest: +SKIP
        0
        >>> store.read("events", version=0).count()                # doctest: +SKIP
    """

    def __init__(self, spark: SparkSession, config: Config) -> None:
        self.spark = spark
        self.config = config
        self.root = config.warehouse.root

    def path(self, name: str) -> str:
        """The table's location under the warehouse root."""
        if not _TABLE_NAME.fullmatch(name):
            raise StoreError(
                f"invalid table name {name!r}: use lower-case words, digits and "
                "'_', separated by '/' (e.g. 'facts/ratings')"
            )
        return f"{self.root}/{name}"

    def exists(self, name: str) -> bool:
        """Whether ``name`` is a Delta table, also when another driver created it since this
        one last looked."""
        from delta.tables import DeltaTable

        path = self.path(name)
        if DeltaTable.isDeltaTable(self.spark, path):
            return True
        # Delta caches each table's log per driver and answers "not a table" from the cached
        # snapshot without listing again: forget it, or a long-lived driver (the API, the
        # scheduler, a creator that lost the race) never sees the table appear.
        jvm = self.spark.sparkContext._jvm
        assert jvm is not None
        jvm.org.apache.spark.sql.delta.DeltaLog.invalidateCache(
            self.spark._jsparkSession, jvm.org.apache.hadoop.fs.Path(path)
        )
        return bool(DeltaTable.isDeltaTable(self.spark, path))

    def create(
        self,
        name: str,
        schema: StructType,
        *,
        partition_by: Sequence[str] = (),
        comment: str | None = None,
    ) -> None:
        """Create the table if it does not exist yet (an existing table is left as it is)."""
        from delta.tables import DeltaTable

        unknown = [c for c in partition_by if c not in schema.fieldNames()]
        if unknown:
            raise StoreError(
                f"cannot partition {name!r} by {unknown}: not in the schema "
                f"(columns: {', '.join(schema.fieldNames())})"
            )
        builder = DeltaTable.createIfNotExists(self.spark).location(self.path(name))
        builder = builder.addColumns(schema)
        if partition_by:
            builder = builder.partitionedBy(*partition_by)
        if comment:
            builder = builder.comment(comment)
        for key, value in time_travel_properties(self.config).items():
            builder = builder.property(key, value)

        def create() -> None:
            with self._commit_guard(name):
                builder.execute()

        try:
            retry_conflicts(create, what=f"create table {name!r}")
        except Exception as exc:
            # Two first writers: the one that lost the race to create finds it created. It
            # may see the winner's log before the winner's first commit is in it: that commit
            # lands in moments.
            message = str(exc)
            mid_creation = any(code in message for code in _MID_CREATION_ERRORS)
            settling_s = _FIRST_COMMIT_WAIT_S if mid_creation else 0.0
            if self._appears(name, within_s=settling_s):
                return
            if mid_creation or _NOT_DELTA in message:
                raise StoreError(
                    f"cannot create table {name!r}: {self.path(name)} holds files but no "
                    f"Delta commit (waited {settling_s:g} s; left by a creator that crashed, "
                    "or not a Delta table): remove them or use another warehouse root"
                ) from None
            raise

    def _appears(self, name: str, *, within_s: float) -> bool:
        """Whether ``name`` is a Delta table now or becomes one within ``within_s``."""
        deadline = time.monotonic() + within_s
        while not self.exists(name):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)
        return True

    def append(
        self,
        name: str,
        df: DataFrame,
        *,
        user_metadata: str | None = None,
        txn: Txn | None = None,
        merge_schema: bool = False,
    ) -> int | None:
        """Append ``df``; return the new version, or None if ``txn`` had already committed."""
        self._require(name)
        before = self.latest_version(name)
        writer = df.write.format("delta").mode("append")
        if user_metadata is not None:
            writer = writer.option("userMetadata", user_metadata)
        if txn is not None:
            writer = writer.option("txnAppId", txn.app_id).option("txnVersion", txn.version)
        if merge_schema:
            writer = writer.option("mergeSchema", "true")

        def save() -> None:
            # A lost race did not commit, so saving again is safe; the txn id makes it
            # idempotent besides.
            with self._commit_guard(name):
                writer.save(self.path(name))

        retry_conflicts(save, what=f"append to {name!r}")
        if user_metadata is None:
            # Untagged appends are single-writer (tests, demo exports): a moved version is ours.
            after = self.latest_version(name)
            return after if after != before else None
        # Shared tables take concurrent writers: ours is the commit after ``before`` that
        # carries our tag, not whatever the table's latest version is by now.
        ours = [
            c.version
            for c in self.history(name, since=before + 1)
            if c.user_metadata == user_metadata
        ]
        return min(ours) if ours else None

    @contextmanager
    def _commit_guard(self, name: str) -> Iterator[None]:
        """Around a Spark commit to ``name``: on S3, a per-table lease.

        Delta on Spark makes commits atomic on local disk (rename without overwrite) and
        between threads of one driver on S3, but not between drivers on S3 without a commit
        coordinator; the lease serialises commits to a table across processes and hosts.
        """
        if not self.config.warehouse.is_s3:
            yield
            return
        slug = re.sub(r"[^a-z0-9_]", "_", name)
        lease = Lease(self.config, f"commit-{slug}", holder=f"commit:{name}", ttl_s=120)
        lease.acquire_waiting(self.config.tables.commit_wait_s)
        try:
            yield
        finally:
            lease.release()

    def optimize(
        self, name: str, zorder_by: Sequence[str] = (), *, where: str | None = None
    ) -> dict[str, int]:
        """Compact small files (clustered by ``zorder_by``; only partitions matching the
        SQL predicate ``where``); the files it replaced stay on storage, so every earlier
        version still reads, until a VACUUM removes them."""
        self._require(name)
        order = f" ZORDER BY ({', '.join(f'`{c}`' for c in zorder_by)})" if zorder_by else ""
        condition = f" WHERE {where}" if where else ""
        sql = f"OPTIMIZE {self._sql_table(name)}{condition}{order}"
        rows: list = []

        def run() -> None:
            with self._commit_guard(name):
                rows[:] = self.spark.sql(sql).collect()

        retry_conflicts(run, what=f"optimize {name!r}")
        metrics = rows[0]["metrics"] if rows else None
        if metrics is None:
            return {"files_added": 0, "files_removed": 0}
        return {
            "files_added": metrics["numFilesAdded"],
            "files_removed": metrics["numFilesRemoved"],
        }

    def _sql_table(self, name: str) -> str:
        """The table as Spark SQL names it by path: ``delta.`/abs/path```."""
        path = self.path(name)
        if not self.config.warehouse.is_s3:
            path = os.path.abspath(path.removeprefix("file://"))
        return "delta.`" + path.replace("`", "``") + "`"

    def checkpoint(self, name: str) -> None:
        """Write a checkpoint of the table's latest version: readers replay less log."""
        self._require(name)
        jvm = self.spark.sparkContext._jvm
        assert jvm is not None
        log = jvm.org.apache.spark.sql.delta.DeltaLog.forTable(
            self.spark._jsparkSession, self.path(name)
        )
        log.checkpoint()

    def vacuum(self, name: str, retain_hours: float, *, dry_run: bool) -> list[str]:
        """Files VACUUM deletes (or would, with ``dry_run``), relative to the table's root.

        Delta's own retention check (the table's deleted-file retention) is switched off for
        this call: :mod:`timetravel.schedule.maintenance` checks pinned versions instead.
        """
        from timetravel.runtime.spark import session_settings

        self._require(name)
        root = self.path(name)
        sql = f"VACUUM {self._sql_table(name)} RETAIN {retain_hours:.6f} HOURS" + (
            " DRY RUN" if dry_run else ""
        )
        settings = {
            "spark.databricks.delta.retentionDurationCheck.enabled": "false",
            # VACUUM lists the table with this many tasks (default 10000: a minute on a
            # small table); a task per shuffle partition is plenty for our tables.
            "spark.sql.sources.parallelPartitionDiscovery.parallelism": str(
                self.config.spark.shuffle_partitions
            ),
        }
        with session_settings(self.spark, settings), self._commit_guard(name):
            rows = self.spark.sql(sql).collect()
        return [table_relative(r["path"], root) for r in rows] if dry_run else []

    def read(
        self,
        name: str,
        *,
        version: int | None = None,
        timestamp: datetime | date | str | None = None,
    ) -> DataFrame:
        """The table now, at a Delta ``version``, or as of a commit ``timestamp`` (UTC)."""
        from pyspark.errors import AnalysisException

        if version is not None and timestamp is not None:
            raise StoreError("pass version or timestamp, not both")
        self._require(name)
        reader = self.spark.read.format("delta")
        if version is not None:
            if version < 0:
                raise TimeTravelRangeError(f"version must be >= 0; got {version}")
            reader = reader.option("versionAsOf", version)
        if timestamp is not None:
            reader = reader.option("timestampAsOf", format_spark_timestamp(timestamp))
        try:
            return reader.load(self.path(name))
        except AnalysisException as exc:
            raise _as_range_error(name, exc, version, timestamp) from None

    def latest_version(self, name: str) -> int:
        """The table's newest version, read from its log by delta-rs: no Spark job (this is
        asked before and after every commit)."""
        from timetravel.warehouse.deltars import open_table

        return int(open_table(self.config, name).version())

    def history(
        self, name: str, limit: int | None = None, *, since: int | None = None
    ) -> list[Commit]:
        """Commits, newest first (the ``limit`` newest, or those from version ``since`` on).

        Read from the log by delta-rs: no Spark job, so a writer can ask after each commit.
        """
        from timetravel.warehouse.deltars import history_entries

        commits = []
        for entry in history_entries(self.config, name, limit, since=since):
            # With in-commit timestamps on, that is the commit's time (not the file's mtime).
            millis = entry.get("inCommitTimestamp") or entry["timestamp"]
            commits.append(
                Commit(
                    int(entry["version"]),
                    from_micros(int(millis) * 1000),
                    str(entry.get("operation", "")),
                    entry.get("userMetadata"),
                )
            )
        return commits

    def versions_tagged(self, name: str, user_metadata: str) -> list[int]:
        """The versions of the commits tagged ``user_metadata``, oldest first (from the log,
        no Spark job); their count is how many attempts of a run have committed."""
        return sorted(c.version for c in self.history(name) if c.user_metadata == user_metadata)

    def version_written_by(self, name: str, user_metadata: str) -> int | None:
        """The version of the (first) commit tagged ``user_metadata``, or None."""
        versions = self.versions_tagged(name, user_metadata)
        return versions[0] if versions else None

    def properties(self, name: str) -> dict[str, str]:
        self._require(name)
        detail = self.spark.sql(f"DESCRIBE DETAIL delta.`{self.path(name)}`").first()
        assert detail is not None
        return dict(detail["properties"])

    def _require(self, name: str) -> None:
        if not self.exists(name):
            raise TableNotFoundError(
                f"no Delta table {name!r} at {self.path(name)}; "
                "has the job that writes it run against this warehouse?"
            )


def table_relative(path: str, root: str) -> str:
    """``path`` (as Spark prints it: 'file:/...', 's3a://...') relative to the table ``root``."""
    bare_root = root.split("://", 1)[-1].removeprefix("file:").rstrip("/")
    bare = path.split("://", 1)[-1].removeprefix("file:")
    at = bare.find(bare_root + "/")
    return bare[at + len(bare_root) + 1 :] if at >= 0 else bare


def _as_range_error(
    name: str, exc: Exception, version: int | None, timestamp: object
) -> StoreError:
    text = str(exc)
    asked = f"version {version}" if version is not None else f"timestamp {timestamp}"
    if re.search(r"earliest|latest|before|after|Cannot time travel|not available", text, re.I):
        first_line = text.strip().splitlines()[0]
        return TimeTravelRangeError(f"table {name!r} has no {asked}: {first_line}")
    return StoreError(f"cannot read table {name!r} at {asked}: {text.strip().splitlines()[0]}")


def latest_snapshot(frame: DataFrame, column: str, at: datetime | date | str) -> DataFrame:
    """The rows of the latest snapshot tagged ``column <= at`` (at-or-before; empty if none).

    For tables that append whole snapshots tagged with their instant (e.g. the population).
    """
    from pyspark.sql import functions as F

    from timetravel.times import spark_instant

    eligible = frame.where(F.col(column) <= spark_instant(at))
    latest = eligible.agg(F.max(F.unix_micros(column)).alias("m")).first()
    if latest is None or latest["m"] is None:
        return eligible.limit(0)
    return eligible.where(F.unix_micros(column) == F.lit(latest["m"]))
