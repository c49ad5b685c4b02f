"""Training sets as asynchronous jobs: submit, poll, read rows, rebuild, cancel."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse, StreamingResponse

from timetravel.api.deps import AdminDep, ReaderDep, ServicesDep
from timetravel.api.jobs import JOB_ID_PATTERN, JobQueueFullError, JobRecord
from timetravel.api.models import JobOut, RowsOut, TrainingSetRequest
from timetravel.api.problems import PROBLEM_RESPONSES, Problem
from timetravel.training.job import parse_staleness

_RETRY_AFTER_S = 30
_QUEUE_FULL: dict[int | str, dict[str, Any]] = {
    429: {"description": "The job queue is full; retry after a while"}
}
_CHUNK_BYTES = 1 << 20  # a download is sent in pieces of about this size
JobId = Annotated[
    str, Path(pattern=JOB_ID_PATTERN, max_length=64, description="a training-set job id")
]

router = APIRouter(prefix="/v1/training-sets", tags=["training-sets"], responses=PROBLEM_RESPONSES)


def _out(record: JobRecord) -> JobOut:
    return JobOut.model_validate({name: getattr(record, name) for name in JobOut.model_fields})


def _job(services: Any, job_id: str) -> JobRecord:
    record = services.job_store.get(job_id)
    if record is None:
        raise Problem(404, "Not found", f"no training-set job {job_id!r}")
    return record


@router.post(
    "",
    status_code=202,
    response_model=JobOut,
    responses=_QUEUE_FULL,
)
def submit(body: TrainingSetRequest, services: ServicesDep, _: AdminDep) -> JSONResponse:
    """Queue a training set; poll ``GET /v1/training-sets/{id}``."""
    import pyarrow as pa

    from timetravel.training.label_location import resolve_labels
    from timetravel.training.labels import canonical_arrow

    settings = services.tt.config.api
    if (body.labels is None) == (body.labels_uri is None):
        raise Problem(422, "Invalid request", "give exactly one of labels and labels_uri")
    if body.labels is not None and len(body.labels) > settings.max_inline_labels:
        raise Problem(
            422,
            "Too many labels",
            f"{len(body.labels)} inline label rows; at most "
            f"{settings.max_inline_labels} (use labels_uri for more)",
        )
    if body.labels is not None and not body.labels:
        raise Problem(422, "Invalid labels", "labels is empty")
    if body.features is not None and not body.features:
        raise Problem(
            422, "Invalid input", "features is empty; omit it for every available feature"
        )
    request = body.model_dump(exclude={"labels"})
    if body.labels_uri is not None:
        location = resolve_labels(services.tt.config, body.labels_uri, roots=settings.labels_roots)
        request["labels_uri"] = location.uri  # the job opens exactly what was checked
    staleness = parse_staleness(body.max_staleness, what="max_staleness")
    # Fail fast on what can be checked now: features, staleness, label columns and times.
    plan = services.tt.plan(body.features, max_staleness=staleness, label_time=body.label_time)
    if body.labels is not None:
        table = canonical_arrow(
            body.labels, plan.entity, plan.label_time, {k: pa.int64() for k in plan.entity}
        )
        plan.check_labels(table.column_names)
    record = _queue(services, request, body.labels)
    return JSONResponse(_out(record).model_dump(mode="json"), status_code=202)


def _queue(
    services: Any,
    request: dict[str, Any],
    labels: list[dict[str, Any]] | None = None,
    *,
    rebuild_of: str | None = None,
) -> JobRecord:
    try:
        return services.jobs.submit(request, labels, rebuild_of=rebuild_of)
    except JobQueueFullError as exc:
        raise Problem(
            429, "Too many jobs", str(exc), headers={"Retry-After": str(_RETRY_AFTER_S)}
        ) from None


@router.get("", response_model=list[JobOut])
def list_jobs(services: ServicesDep, _: ReaderDep) -> list[JobOut]:
    return [_out(r) for r in services.job_store.list()]


@router.get("/{job_id}", response_model=JobOut)
def get_job(job_id: JobId, services: ServicesDep, _: ReaderDep) -> JobOut:
    """Status, progress, manifest and output URI."""
    return _out(_job(services, job_id))


@router.get(
    "/{job_id}/rows",
    response_model=RowsOut,
    responses={200: {"content": {"application/vnd.apache.parquet": {}, "text/csv": {}}}},
)
def rows(
    job_id: JobId,
    services: ServicesDep,
    _: ReaderDep,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
    format: Annotated[Literal["json", "parquet", "csv"], Query()] = "json",
) -> Any:
    """Rows as paginated JSON, or the whole set as a Parquet or CSV download."""
    record = _job(services, job_id)
    if not record.built:
        raise Problem(
            404, "Not found", f"training set {job_id} has no rows yet (status {record.status})"
        )
    dataset = output_dataset(services, record)
    if format != "json":
        kind = "application/vnd.apache.parquet" if format == "parquet" else "text/csv"
        return StreamingResponse(
            stream_rows(dataset, format),
            media_type=kind,
            headers={"Content-Disposition": f'attachment; filename="{job_id}.{format}"'},
        )
    limit = min(limit, services.tt.config.api.page_size_max)
    return RowsOut(
        id=job_id,
        total=dataset.count_rows(),
        offset=offset,
        limit=limit,
        rows=rows_page(dataset, offset, limit),
    )


def rows_page(dataset: Any, offset: int, limit: int) -> list[dict[str, Any]]:
    """Rows [offset, offset + limit) read batch by batch: memory bounded by the page, not by
    the training set."""
    rows: list[dict[str, Any]] = []
    skip = offset
    for batch in dataset.to_batches(use_threads=False):
        if skip >= batch.num_rows:
            skip -= batch.num_rows
            continue
        rows.extend(batch.slice(skip, limit - len(rows)).to_pylist())
        skip = 0
        if len(rows) >= limit:
            break
    return rows


def stream_rows(dataset: Any, fmt: str) -> Iterator[bytes]:
    """The whole training set as Parquet or CSV, written and sent one batch at a time."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    writer: Any = (
        pq.ParquetWriter(sink, dataset.schema)
        if fmt == "parquet"
        else pcsv.CSVWriter(sink, dataset.schema)
    )
    with writer:
        for batch in dataset.to_batches(use_threads=False):
            writer.write_table(
                pa.Table.from_batches([batch], dataset.schema)
            ) if fmt == "parquet" else writer.write_batch(batch)
            if sink.tell() >= _CHUNK_BYTES:
                yield sink.getvalue()
                sink.seek(0)
                sink.truncate()
    yield sink.getvalue()


def output_dataset(services: Any, record: JobRecord) -> Any:
    """A built job's training set as an Arrow dataset (Delta or Parquet), read lazily."""
    import pyarrow.dataset as ds

    from timetravel.warehouse.files import filesystem
    from timetravel.warehouse.s3 import delta_rs_options, rs_uri

    manifest = record.manifest or {}
    uri, fmt = manifest["output_uri"], manifest.get("output_format", "delta")
    config = services.tt.config
    if fmt == "delta":
        from deltalake import DeltaTable

        return DeltaTable(
            rs_uri(uri), storage_options=delta_rs_options(config)
        ).to_pyarrow_dataset()
    fs, path = filesystem(config, uri)
    return ds.dataset(path, filesystem=fs, format="parquet")


@router.post(
    "/{job_id}/rebuild",
    status_code=202,
    response_model=JobOut,
    responses=_QUEUE_FULL,
)
def rebuild(job_id: JobId, services: ServicesDep, _: AdminDep) -> JSONResponse:
    """Rebuild from the job's manifest (same Delta versions, encoders, labels)."""
    record = _job(services, job_id)
    if not record.built:
        raise Problem(
            422,
            "Not rebuildable",
            f"training set {job_id} has no manifest (status {record.status})",
        )
    new = _queue(services, record.rebuild_request(), rebuild_of=job_id)
    return JSONResponse(_out(new).model_dump(mode="json"), status_code=202)


@router.delete("/{job_id}", response_model=JobOut)
def cancel(job_id: JobId, services: ServicesDep, _: AdminDep) -> JobOut:
    """Cancel a queued or running job (finished jobs are left as they are)."""
    _job(services, job_id)
    record = services.jobs.cancel(job_id)
    assert record is not None
    return _out(record)
