"""Table maintenance that keeps time travel valid: compact, checkpoint, VACUUM what no one pins.

OPTIMIZE and checkpoints only add to a table's log, so every earlier version still reads the
same rows afterwards. VACUUM is the one step that deletes: it removes files that no version
newer than the retention still references, and an old version whose files are gone can no
longer be read. Training sets pin versions in their manifests, so before any VACUUM this
module gathers every manifest it can find (the API's jobs, the API's output root, and
``maintenance.manifest_roots``), asks Delta which files the VACUUM would delete (a dry run),
and refuses the whole VACUUM, naming the manifest, if any of them belongs to a pinned version.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from timetravel.config import Config
from timetravel.errors import MaintenanceError, ManifestError, StoreError
from timetravel.training.manifest import Manifest
from timetravel.warehouse.files import filesystem, read_text
from timetravel.warehouse.leases import Lease

if TYPE_CHECKING:
    from timetravel.warehouse.store import DeltaStore

__all__ = ["Pin", "TableReport", "find_pins", "warehouse_tables", "maintain"]

MANIFEST_FILE = "manifest.json"


@dataclass(frozen=True)
class Pin:
    """One table version a training set was built from, and where its manifest lives."""

    table: str
    version: int
    manifest: str


@dataclass
class TableReport:
    """What maintenance did to one table."""

    table: str
    files_added: int = 0
    files_removed: int = 0
    checkpoint: bool = False
    vacuumed: list[str] = field(default_factory=list)


def find_pins(config: Config, roots: Iterable[str] = ()) -> list[Pin]:
    """Every (table, version) a known manifest pins.

    Manifests come from the API's job records, from ``manifest.json`` files under the API's
    output root, and from ``roots`` (plus ``maintenance.manifest_roots``), searched whole. A
    root that does not exist is an error: a typo must not make pinned versions invisible.
    """
    from pyarrow import fs as pafs

    pins: list[Pin] = []
    jobs = Path(config.api.state_dir) / "jobs"
    for job_file in sorted(jobs.glob("*.json")) if jobs.is_dir() else []:
        try:
            raw = json.loads(job_file.read_text()).get("manifest")
        except (OSError, ValueError, AttributeError):
            raise MaintenanceError(f"API job record {job_file} is not readable JSON") from None
        if raw:
            pins += _pins_of(_parse(raw, str(job_file)), str(job_file))
    output_root = config.api.output_root or f"{config.warehouse.root}/training_sets"
    searched = [
        (output_root, False),
        *((r, True) for r in [*config.maintenance.manifest_roots, *roots]),
    ]
    for root, required in searched:
        fs, path = filesystem(config, root)
        if fs.get_file_info(path).type != pafs.FileType.Directory:
            if required:
                raise MaintenanceError(
                    f"manifest root {root!r} does not exist (or is not a folder)"
                )
            continue
        found = fs.get_file_info(pafs.FileSelector(path, recursive=True))
        for info in sorted(found, key=lambda i: i.path):
            if info.type == pafs.FileType.File and info.base_name == MANIFEST_FILE:
                where = _uri_like(root, path, info.path)
                pins += _pins_of(_parse(read_text(config, where), where), where)
    return pins


def warehouse_tables(config: Config) -> list[str]:
    """Names of the Delta tables under the warehouse root (one or two folders deep)."""
    from pyarrow import fs as pafs

    fs, root = filesystem(config, config.warehouse.root)
    if fs.get_file_info(root).type != pafs.FileType.Directory:
        raise MaintenanceError(f"no warehouse at {config.warehouse.root}")
    tables = []
    for top in fs.get_file_info(pafs.FileSelector(root)):
        if top.type != pafs.FileType.Directory or top.base_name.startswith(("_", ".")):
            continue
        if fs.get_file_info(f"{top.path}/_delta_log").type == pafs.FileType.Directory:
            tables.append(top.base_name)
            continue
        for sub in fs.get_file_info(pafs.FileSelector(top.path)):
            log = f"{sub.path}/_delta_log"
            if (
                sub.type == pafs.FileType.Directory
                and fs.get_file_info(log).type == pafs.FileType.Directory
            ):
                tables.append(f"{top.base_name}/{sub.base_name}")
    return sorted(tables)


def maintain(
    store: DeltaStore,
    config: Config,
    *,
    optimize: bool = True,
    vacuum_retain: timedelta | None = None,
    manifest_roots: Iterable[str] = (),
    now: datetime | None = None,
    say: Callable[[str], None] = print,
) -> list[TableReport]:
    """Compact and checkpoint every table; VACUUM files older than ``vacuum_retain`` unless a
    pinned version needs them (then nothing is vacuumed and :class:`MaintenanceError` names
    the manifest)."""
    if vacuum_retain is not None and vacuum_retain < timedelta(0):
        raise MaintenanceError(f"VACUUM retention must not be negative; got {vacuum_retain}")
    tables = warehouse_tables(config)
    if vacuum_retain is not None:
        find_pins(config, manifest_roots)  # a bad manifest root fails before any work
    facts = {t for t in tables if t.startswith("facts/")}
    reports = {t: TableReport(t) for t in tables}
    with Lease(config, "maintenance", holder="timetravel maintain", ttl_s=3600):
        if optimize:
            for table in tables:
                _compact(store, config, reports[table], table in facts, say)
        if vacuum_retain is not None:
            # Read again: a training set built while compaction ran pins what it read.
            pins = find_pins(config, manifest_roots)
            hours = vacuum_retain.total_seconds() / 3600
            doomed = {t: store.vacuum(t, hours, dry_run=True) for t in tables}
            _refuse_if_pinned(store, doomed, pins, now or datetime.now(UTC), vacuum_retain)
            for table in tables:
                if doomed[table]:
                    store.vacuum(table, hours, dry_run=False)
                reports[table].vacuumed = doomed[table]
                say(f"{table}: vacuumed {len(doomed[table])} files (retain {vacuum_retain})")
            say(f"{len(pins)} pinned versions in {len({p.manifest for p in pins})} manifests kept")
    return list(reports.values())


def _compact(
    store: DeltaStore,
    config: Config,
    report: TableReport,
    is_facts: bool,
    say: Callable[[str], None],
) -> None:
    """OPTIMIZE one table, then checkpoint it."""
    table = report.table
    # Point lookups read one key: files clustered by key let min/max stats skip the rest.
    by = config.selection.entity if is_facts else []
    if not by:
        counts = store.optimize(table)
    elif (where := _partitions_to_cluster(config, table)) is not None:
        counts = store.optimize(table, zorder_by=by, where=where or None)
    else:
        counts = {"files_added": 0, "files_removed": 0}
    report.files_added, report.files_removed = counts["files_added"], counts["files_removed"]
    store.checkpoint(table)
    report.checkpoint = True
    clustered = f", clustered by {', '.join(by)}" if by and report.files_added else ""
    say(
        f"{table}: optimized ({report.files_removed} files -> {report.files_added}{clustered}), "
        "checkpoint written"
    )


def _refuse_if_pinned(
    store: DeltaStore,
    doomed: dict[str, list[str]],
    pins: list[Pin],
    now: datetime,
    retain: timedelta,
) -> None:
    from timetravel.warehouse.deltars import open_table
    from timetravel.warehouse.store import table_relative

    for pin in sorted(pins, key=lambda p: (p.table, p.version)):
        if not doomed.get(pin.table):
            continue
        try:
            uris = open_table(store.config, pin.table, pin.version).file_uris()
        except StoreError:
            raise MaintenanceError(
                f"{pin.manifest} pins {pin.table!r} version {pin.version}, which this "
                "warehouse does not have (a manifest of another warehouse?); refusing VACUUM"
            ) from None
        needed = {table_relative(u, store.path(pin.table)) for u in uris}
        lost = needed & set(doomed[pin.table])
        if not lost:
            continue
        committed = next(
            (c.timestamp for c in store.history(pin.table) if c.version == pin.version), None
        )
        at_least = (
            f"; retain at least {math.ceil((now - committed).total_seconds() / 3600)}h to keep it"
            if committed is not None
            else ""
        )
        raise MaintenanceError(
            f"refusing VACUUM (retain {retain}): it would delete {len(lost)} files of "
            f"{pin.table!r} version {pin.version}, pinned by {pin.manifest}{at_least}"
        )


def _partitions_to_cluster(config: Config, table: str) -> str | None:
    """A predicate on the partitions of ``table`` with more than one file ('' for all of an
    unpartitioned table), or None if there is nothing to cluster.

    Z-ordering rewrites even a partition that is one clustered file already; the snapshot
    job writes one key-sorted file per run and partition, so only a partition several runs
    wrote to gains from it. Restricting OPTIMIZE to those keeps daily maintenance from
    rewriting (and later vacuuming) the whole history every day.
    """
    from timetravel.warehouse.deltars import open_table

    handle = open_table(config, table)
    adds = handle.get_add_actions(flatten=True)
    columns = handle.metadata().partition_columns
    if not columns:
        return "" if adds.num_rows > 1 else None
    keys = list(zip(*(adds.column(f"partition.{c}").to_pylist() for c in columns), strict=True))
    crowded = sorted((k for k, n in Counter(keys).items() if n > 1), key=str)
    if not crowded:
        return None
    terms = [
        "(" + " AND ".join(_equals(c, v) for c, v in zip(columns, k, strict=True)) + ")"
        for k in crowded
    ]
    return " OR ".join(terms)


def _equals(column: str, value: object) -> str:
    if value is None:
        return f"`{column}` IS NULL"
    return f"`{column}` = '" + str(value).replace("'", "''") + "'"


def _parse(raw: object, where: str) -> Manifest:
    try:
        return Manifest.from_json(raw if isinstance(raw, (str, dict)) else str(raw))
    except ManifestError as exc:
        raise MaintenanceError(f"{where}: {exc}") from None


def _pins_of(manifest: Manifest, where: str) -> list[Pin]:
    return [Pin(s.table, s.version, where) for s in manifest.sources.values()]


def _uri_like(root: str, root_path: str, found: str) -> str:
    """``found`` (a file system path) spelt like ``root`` (a URI or a local path)."""
    return root.rstrip("/") + found[len(root_path.rstrip("/")) :]
