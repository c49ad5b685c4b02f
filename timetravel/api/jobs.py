"""Training-set jobs: persisted state, a bounded worker pool, resume after a restart.

Each job is one JSON file under ``<api.state_dir>/jobs`` (written atomically), plus its inline
labels. On start-up, jobs left ``queued`` or ``running`` by a previous process are run again:
their output folder is rewritten whole and the manifest goes last, so a re-run cannot leave
a half-written training set behind.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from timetravel.errors import TimeTravelError
from timetravel.training_job import parse_staleness

if TYPE_CHECKING:
    from timetravel.facade import TimeTravel

__all__ = ["JobRecord", "JobStore", "JobRunner"]

log = logging.getLogger("timetravel.api.jobs")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


@dataclass
class JobRecord:
    id: str
    status: str
    created_at: str
    updated_at: str
    request: dict[str, Any]
    progress: str = "queued"
    error: str | None = None
    output_uri: str | None = None
    manifest: dict[str, Any] | None = None
    rebuild_of: str | None = None
    attempts: int = 0


class JobStore:
    """Job records as JSON files; safe to read while a worker writes."""

    def __init__(self, state_dir: str | Path) -> None:
        self.root = Path(state_dir) / "jobs"
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def save(self, record: JobRecord) -> None:
        record.updated_at = _now()
        path = self.root / f"{record.id}.json"
        temporary = path.with_suffix(f".tmp-{os.getpid()}-{threading.get_ident()}")
        with self._lock:
            temporary.write_text(json.dumps(asdict(record), default=str))
            os.replace(temporary, path)

    def get(self, job_id: str) -> JobRecord | None:
        path = self.root / f"{job_id}.json"
        if not job_id.replace("-", "").isalnum() or not path.is_file():
            return None
        return JobRecord(**json.loads(path.read_text()))

    def list(self) -> list[JobRecord]:
        records = [JobRecord(**json.loads(p.read_text())) for p in self.root.glob("*.json")]
        return sorted(records, key=lambda r: r.created_at, reverse=True)

    def labels_path(self, job_id: str) -> Path:
        return self.root / f"{job_id}.labels"   # not *.json: list() globs the records


class JobRunner:
    """Runs jobs on ``workers`` threads over one shared TimeTravel (and SparkSession)."""

    def __init__(self, tt: "TimeTravel", store: JobStore, output_root: str, workers: int) -> None:
        self.tt = tt
        self.store = store
        self.output_root = output_root.rstrip("/")
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tt-job")
        self._cancelled: set[str] = set()

    def resume(self) -> list[str]:
        """Re-queue what a previous process left unfinished."""
        resumed = []
        for record in self.store.list():
            if record.status in ("queued", "running"):
                record.status, record.progress = "queued", "resumed after a restart"
                self.store.save(record)
                self._pool.submit(self._run, record.id)
                resumed.append(record.id)
        return resumed

    def submit(self, request: dict[str, Any], labels: list[dict[str, Any]] | None = None, *,
               rebuild_of: str | None = None) -> JobRecord:
        job_id = "ts-job-" + uuid.uuid4().hex[:12]
        if labels is not None:
            self.store.labels_path(job_id).write_text(json.dumps(labels, default=str))
        record = JobRecord(job_id, "queued", _now(), _now(), request, rebuild_of=rebuild_of)
        self.store.save(record)
        self._pool.submit(self._run, job_id)
        return record

    def cancel(self, job_id: str) -> JobRecord | None:
        record = self.store.get(job_id)
        if record is None or record.status not in ("queued", "running"):
            return record
        self._cancelled.add(job_id)
        if record.status == "running" and self.tt._spark is not None:
            self.tt._spark.sparkContext.cancelJobGroup(job_id)
        record.status, record.progress = "cancelled", "cancelled by request"
        self.store.save(record)
        return record

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self, job_id: str) -> None:
        record = self.store.get(job_id)
        if record is None or job_id in self._cancelled or record.status == "cancelled":
            return
        record.status, record.progress, record.attempts = "running", "building", record.attempts + 1
        self.store.save(record)
        try:
            if self.tt._spark is not None:
                self.tt._spark.sparkContext.setJobGroup(job_id, "timetravel API training set",
                                                        interruptOnCancel=True)
            out = f"{self.output_root}/{job_id}"
            result = self._build(record)
            if job_id in self._cancelled:
                return
            record.progress = f"writing {result.manifest.rows} rows"
            self.store.save(record)
            manifest = result.write(out, fmt=record.request.get("format", "delta"),
                                    overwrite=True)
            record.status, record.progress = "succeeded", f"{manifest.rows} rows written"
            record.output_uri, record.manifest = out, json.loads(manifest.to_json())
        except TimeTravelError as exc:
            record.status, record.error, record.progress = "failed", str(exc), "failed"
        except Exception as exc:  # noqa: BLE001 - a job must end in a state, with a reason
            log.exception("job %s failed", job_id)
            if job_id in self._cancelled:
                return
            record.status, record.progress = "failed", "failed"
            record.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        if job_id not in self._cancelled:
            self.store.save(record)

    def _build(self, record: JobRecord):  # type: ignore[no-untyped-def]
        request = record.request
        engine = request.get("engine")
        if record.rebuild_of:
            original = self.store.get(record.rebuild_of)
            if original is None or original.manifest is None:
                raise TimeTravelError(f"job {record.rebuild_of} has no manifest to rebuild")
            return self.tt.rebuild(original.manifest, engine=engine)
        if request.get("labels_uri"):
            from timetravel.embedded import storage_options
            from timetravel.labels import read_labels_arrow, read_labels_spark

            uri = request["labels_uri"]
            labels: Any = read_labels_spark(self.tt.spark, uri) if engine == "spark" else \
                read_labels_arrow(uri, storage_options=storage_options(self.tt.config))
        else:
            labels = json.loads(self.store.labels_path(record.id).read_text())
        return self.tt.training_set(labels, features=request.get("features"),
                                    max_staleness=parse_staleness(request.get("max_staleness")),
                                    engine=engine,
                                    label_time=request.get("label_time", "label_time"))
