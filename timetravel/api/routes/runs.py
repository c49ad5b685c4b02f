"""Snapshot runs: status, coverage per source, Delta versions."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Query

from timetravel.api.deps import ReaderDep, ServicesDep
from timetravel.api.models import CheckOut, FieldStatsOut, QualityOut, RunOut, StageOut
from timetravel.api.problems import PROBLEM_RESPONSES, Problem
from timetravel.warehouse.runs import RunInfo

router = APIRouter(prefix="/v1/runs", tags=["runs"], responses=PROBLEM_RESPONSES)


def _out(run: RunInfo, *, stages: bool) -> RunOut:
    versions: dict[str, int] = {}
    for record in run.stages.values():
        versions.update(record.table_versions)
    return RunOut(
        run_id=run.run_id,
        run_time=run.run_time,
        status={s: r.status for s, r in run.stages.items()},
        coverage=run.coverage(),
        table_versions=versions,
        stages={
            s: StageOut(
                status=r.status,
                updated_at=r.updated_at,
                table_versions=r.table_versions,
                details=r.details,
            )
            for s, r in run.stages.items()
        }
        if stages
        else None,
    )


@router.get("", response_model=list[RunOut])
def list_runs(
    services: ServicesDep, _: ReaderDep, limit: int = Query(50, ge=1, le=1000)
) -> list[RunOut]:
    """Runs, newest first."""
    return [_out(r, stages=False) for r in services.tt.runs(limit=limit)]


@router.get("/{run_id}", response_model=RunOut)
def get_run(run_id: str, services: ServicesDep, _: ReaderDep) -> RunOut:
    """One run with its stages' details."""
    for run in services.tt.runs():
        if run.run_id == run_id:
            return _out(run, stages=True)
    raise Problem(404, "Not found", f"no run {run_id!r}")


@router.get("/{run_id}/quality", response_model=QualityOut)
def get_quality(
    run_id: str,
    services: ServicesDep,
    _: ReaderDep,
    strata: bool = Query(False, description="also each stratum's rows, not only the whole sample"),
) -> QualityOut:
    """The run's quality stage: every check with its value and verdict, and the statistics
    of each source's fields (with the design-weighted population estimates)."""
    from timetravel.errors import RunNotFoundError
    from timetravel.quality.profile import OVERALL, read_quality

    try:
        result = read_quality(services.tt.config, run_id)
    except RunNotFoundError as exc:
        raise Problem(404, "Not found", str(exc)) from None
    return QualityOut(
        run_id=run_id,
        status=result.status,
        stats_version=result.version,
        checks=[CheckOut(**asdict(c)) for c in result.checks],
        stats=[FieldStatsOut(**asdict(s)) for s in result.stats if strata or s.stratum == OVERALL],
    )
