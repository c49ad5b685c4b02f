"""One training-set job, in a process of its own (started and watched by
:class:`timetravel.api.jobs.JobRunner`): read the job, build, write, leave a result file.

The result file is the only thing the supervisor reads back: ``{"status": "succeeded",
"output_uri": ..., "manifest": ...}`` or ``{"status": "failed", "error": ...}``. Errors a user
can act on are reported as they are; anything else only by its class (the full traceback
goes to the job's log file, which the API never serves).
"""

from __future__ import annotations

import argparse
import json
import os
import traceback
from pathlib import Path
from typing import Any

from timetravel.api.jobs import JobRecord, JobStore
from timetravel.config import Config, load_config_dict
from timetravel.errors import TimeTravelError
from timetravel.facade import TimeTravel
from timetravel.training.job import parse_staleness, read_labels
from timetravel.training.label_location import LabelLocation, resolve_labels

__all__ = ["run_job", "job_config"]


def job_config(config: Config, state_dir: str) -> Config:
    """The server's configuration as a job's worker runs it: the embedded join's DuckDB
    limit at most half of ``api.job_memory_mb`` (the labels and the output need the rest),
    spilling under the state directory unless ``query.spill_directory`` says otherwise."""
    query = config.query
    spill = query.spill_directory or str(Path(state_dir) / "spill")
    Path(spill).mkdir(parents=True, exist_ok=True)
    bounded = query.model_copy(
        update={
            "embedded_memory_mb": min(query.embedded_memory_mb, config.api.job_memory_mb // 2),
            "spill_directory": spill,
        }
    )
    return config.model_copy(update={"query": bounded})


def run_job(tt: TimeTravel, store: JobStore, job_id: str, output: str) -> dict[str, Any]:
    """Build and write job ``job_id``; the result the supervisor records."""
    record = store.get(job_id)
    if record is None:
        return {"status": "failed", "error": f"job {job_id} is not in the state directory"}
    try:
        result = _build(tt, store, record)
        manifest = result.write(output, fmt=record.request.get("format", "delta"), overwrite=True)
        return {
            "status": "succeeded",
            "progress": f"{manifest.rows} rows written",
            "output_uri": output,
            "manifest": json.loads(manifest.to_json()),
        }
    except TimeTravelError as exc:  # our messages name the problem, never file content
        return {"status": "failed", "error": str(exc), "progress": "failed"}
    except Exception as exc:  # noqa: BLE001 - a job must end in a state, with a reason
        traceback.print_exc()
        return {
            "status": "failed",
            "progress": "failed",
            "error": f"internal error ({type(exc).__name__}); see the server's job log",
        }


def _build(tt: TimeTravel, store: JobStore, record: JobRecord) -> Any:
    request = record.request
    engine = request.get("engine")
    if record.rebuild_of:
        original = store.get(record.rebuild_of)
        if original is None or original.manifest is None:
            raise TimeTravelError(f"job {record.rebuild_of} has no manifest to rebuild")
        return tt.rebuild(original.manifest, engine=engine)
    labels: Any
    if request.get("labels_uri"):
        # Confined again here: what the route checked may have changed since.
        location: LabelLocation = resolve_labels(
            tt.config, request["labels_uri"], roots=tt.config.api.labels_roots
        )
        labels = read_labels(tt, location, engine)
    else:
        labels = json.loads(store.labels_path(record.id).read_text())
    return tt.training_set(
        labels,
        features=request.get("features"),
        max_staleness=parse_staleness(request.get("max_staleness"), what="max_staleness"),
        engine=engine,
        label_time=request.get("label_time", "label_time"),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", required=True)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--job-id", required=True)
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    config = load_config_dict(json.loads(Path(args.config).read_text()), source=args.config)
    store = JobStore(args.state_dir)
    result = run_job(
        TimeTravel(job_config(config, args.state_dir)), store, args.job_id, args.output
    )
    path = store.result_path(args.job_id)
    temporary = path.with_suffix(f".tmp-{os.getpid()}")
    temporary.write_text(json.dumps(result, default=str))
    os.replace(temporary, path)


if __name__ == "__main__":
    main()
