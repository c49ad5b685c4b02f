"""Training-set jobs: persisted state, a bounded queue, each job in its own worker process.

Each job is one JSON file under ``<api.state_dir>/jobs`` (written atomically), plus its inline
labels. Every change of status is a compare-and-set under the store's lock (a cancel that lands
while a worker starts or finishes is never overwritten). A job runs in a child process
(:mod:`timetravel.api.worker`) whose process tree's resident memory is watched: one job can
fail, the server cannot die of it, and a cancel stops the work at once. On start-up, jobs left
``queued`` or ``running`` by a previous process are run again (their output is rewritten whole,
the manifest last), at most ``api.max_job_attempts`` times.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from timetravel.errors import TimeTravelError

if TYPE_CHECKING:
    from timetravel.facade import TimeTravel

__all__ = ["JobRecord", "JobStore", "JobRunner", "JobQueueFullError", "JOB_ID", "JOB_ID_PATTERN"]

JOB_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$"
JOB_ID = re.compile(JOB_ID_PATTERN)
_ACTIVE = ("queued", "running")
_POLL_S = 0.2

log = logging.getLogger("timetravel.api.jobs")


class JobQueueFullError(TimeTravelError):
    """Raised when a job is submitted while every worker is busy and the queue is full."""


def _now() -> str:
    return datetime.now(UTC).isoformat()


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

    @property
    def built(self) -> bool:
        """Succeeded with a manifest: its rows can be read, and it can be rebuilt."""
        return self.status == "succeeded" and bool(self.manifest)

    def rebuild_request(self) -> dict[str, Any]:
        """What a rebuild of this job asks: the same engine and format (the rest, labels
        included, comes from its manifest)."""
        return {"engine": self.request.get("engine"), "format": self.request.get("format", "delta")}


class JobStore:
    """Job records as JSON files; safe to read while a worker writes."""

    def __init__(self, state_dir: str | Path) -> None:
        self.root = Path(state_dir) / "jobs"
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()

    def save(self, record: JobRecord) -> None:
        record.updated_at = _now()
        path = self.root / f"{record.id}.json"
        temporary = path.with_suffix(f".tmp-{os.getpid()}-{threading.get_ident()}")
        with self._lock:
            temporary.write_text(json.dumps(asdict(record), default=str))
            os.replace(temporary, path)

    def get(self, job_id: str) -> JobRecord | None:
        if not JOB_ID.fullmatch(job_id):
            return None
        path = self.root / f"{job_id}.json"
        if not path.is_file():
            return None
        return JobRecord(**json.loads(path.read_text()))

    def transition(
        self, job_id: str, allowed: tuple[str, ...], change: Callable[[JobRecord], None]
    ) -> JobRecord | None:
        """Apply ``change`` if the stored status is one of ``allowed`` (read, check and write
        under one lock); the changed record, or None when the status did not allow it."""
        with self._lock:
            record = self.get(job_id)
            if record is None or record.status not in allowed:
                return None
            change(record)
            self.save(record)
            return record

    def list(self) -> list[JobRecord]:
        records = [JobRecord(**json.loads(p.read_text())) for p in self.root.glob("*.json")]
        return sorted(records, key=lambda r: r.created_at, reverse=True)

    def labels_path(self, job_id: str) -> Path:
        return self.root / f"{job_id}.labels"  # not *.json: list() globs the records

    def result_path(self, job_id: str) -> Path:
        return self.root / f"{job_id}.result"

    def log_path(self, job_id: str) -> Path:
        return self.root / f"{job_id}.log"


class JobRunner:
    """Runs jobs on ``api.workers`` threads, each supervising one worker process."""

    def __init__(self, tt: TimeTravel, store: JobStore, output_root: str) -> None:
        self.tt = tt
        self.store = store
        self.output_root = output_root.rstrip("/")
        self.settings = tt.config.api
        self._pool = ThreadPoolExecutor(
            max_workers=self.settings.workers, thread_name_prefix="tt-job"
        )
        self._pending = 0  # submitted here and not finished
        self._count_lock = threading.Lock()
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        self._config_file = store.root.parent / "worker-config.json"
        self._config_file.write_text(json.dumps(tt.config.model_dump(mode="json", by_alias=True)))

    def resume(self) -> list[str]:
        """Re-queue what a previous process left unfinished (up to the attempt cap)."""
        resumed = []
        for record in self.store.list():
            if record.status not in _ACTIVE:
                continue
            if record.attempts >= self.settings.max_job_attempts:

                def give_up(r: JobRecord) -> None:
                    r.status, r.progress = "failed", "failed"
                    r.error = (
                        f"stopped after {r.attempts} attempts: the server stopped while "
                        "it ran each time (api.max_job_attempts)"
                    )

                self.store.transition(record.id, _ACTIVE, give_up)
                continue

            def requeue(r: JobRecord) -> None:
                r.status, r.progress = "queued", "resumed after a restart"

            if self.store.transition(record.id, _ACTIVE, requeue):
                self._enqueue(record.id)
                resumed.append(record.id)
        return resumed

    def submit(
        self,
        request: dict[str, Any],
        labels: list[dict[str, Any]] | None = None,
        *,
        rebuild_of: str | None = None,
    ) -> JobRecord:
        """Queue a job; raises :class:`JobQueueFullError` when the queue is full."""
        with self._count_lock:
            if self._pending >= self.settings.workers + self.settings.max_queued_jobs:
                raise JobQueueFullError(
                    f"{self._pending} training-set jobs are queued or running (at most "
                    f"{self.settings.workers} run and {self.settings.max_queued_jobs} wait); "
                    "retry later"
                )
            self._pending += 1
        job_id = "ts-job-" + uuid.uuid4().hex[:12]
        try:
            if labels is not None:
                self.store.labels_path(job_id).write_text(json.dumps(labels, default=str))
            record = JobRecord(job_id, "queued", _now(), _now(), request, rebuild_of=rebuild_of)
            self.store.save(record)
        except BaseException:
            self._finished()  # nothing was queued: give the slot back
            raise
        self._pool.submit(self._run_counted, job_id)
        return record

    def cancel(self, job_id: str) -> JobRecord | None:
        def stop(r: JobRecord) -> None:
            r.status, r.progress = "cancelled", "cancelled by request"

        record = self.store.transition(job_id, _ACTIVE, stop)
        process = self._processes.get(job_id)
        if record is not None and process is not None:
            _kill(process)
        return record or self.store.get(job_id)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        for process in list(self._processes.values()):
            _kill(process)

    # ------------------------------------------------------------------ running
    def _enqueue(self, job_id: str) -> None:
        with self._count_lock:
            self._pending += 1
        self._pool.submit(self._run_counted, job_id)

    def _run_counted(self, job_id: str) -> None:
        try:
            self._run(job_id)
        except Exception:  # noqa: BLE001 - a supervisor thread must never die silently
            log.exception("job %s: supervisor failed", job_id)
        finally:
            self._finished()

    def _finished(self) -> None:
        with self._count_lock:
            self._pending -= 1

    def _run(self, job_id: str) -> None:
        def start(r: JobRecord) -> None:
            r.status, r.progress, r.attempts = "running", "building", r.attempts + 1

        if self.store.transition(job_id, ("queued",), start) is None:
            return  # cancelled while queued
        result_path = self.store.result_path(job_id)
        result_path.unlink(missing_ok=True)
        outcome = self._supervise(job_id, result_path)

        def finish(r: JobRecord) -> None:
            r.status, r.error = outcome["status"], outcome.get("error")
            r.progress = outcome.get("progress", r.status)
            if outcome["status"] == "succeeded":
                r.output_uri, r.manifest = outcome["output_uri"], outcome["manifest"]

        self.store.transition(job_id, ("running",), finish)  # a cancel stays cancelled

    def _supervise(self, job_id: str, result_path: Path) -> dict[str, Any]:
        limit = self.settings.job_memory_mb * 1024 * 1024
        with open(self.store.log_path(job_id), "ab") as log_file:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "timetravel.api.worker",
                    "--config",
                    str(self._config_file),
                    "--state-dir",
                    str(self.store.root.parent),
                    "--job-id",
                    job_id,
                    "--output",
                    f"{self.output_root}/{job_id}",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                start_new_session=True,
            )
        self._processes[job_id] = process
        current = self.store.get(job_id)
        if current is not None and current.status == "cancelled":
            _kill(process)  # cancelled between our start and the process existing
        try:
            while process.poll() is None:
                if _tree_rss(process.pid) > limit:
                    _kill(process)
                    return {
                        "status": "failed",
                        "error": (
                            f"the job used more than api.job_memory_mb = "
                            f"{self.settings.job_memory_mb} MB and was stopped; use engine "
                            "'spark' (it spills to disk) or fewer labels"
                        ),
                    }
                time.sleep(_POLL_S)
        finally:
            self._processes.pop(job_id, None)
        if result_path.is_file():
            return dict(json.loads(result_path.read_text()))
        return {
            "status": "failed",
            "error": f"the job's worker process exited with code "
            f"{process.returncode} before finishing",
        }


def _tree_rss(pid: int) -> int:
    """Resident bytes of a process and its descendants (the JVM of a Spark job too)."""
    import psutil

    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.Error:
            continue
    return total


def _kill(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)  # the whole session: a Spark JVM too
    except ProcessLookupError:
        pass
    process.wait()
