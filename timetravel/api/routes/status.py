"""Run health (is the schedule keeping up?) and Prometheus metrics."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from timetravel.api.deps import ReaderDep, ServicesDep
from timetravel.api.models import StatusOut
from timetravel.api.problems import PROBLEM_RESPONSES
from timetravel.schedule.health import assess

router = APIRouter(tags=["status"], responses=PROBLEM_RESPONSES)


@router.get("/v1/status", response_model=StatusOut)
def status(
    services: ServicesDep,
    _: ReaderDep,
    last: Annotated[int, Query(ge=1, le=1000, description="runs the coverage covers")] = 7,
) -> StatusOut:
    """The schedule's health: lag behind it, last successful run per stage, missed run
    times, coverage per source over the last runs; ``healthy`` false names the problems."""
    tt = services.tt
    health = assess(tt.config.schedule, tt.runs(), datetime.now(UTC), last_runs=last)
    return StatusOut(**health.as_dict())


@router.get("/metrics", include_in_schema=False)
def metrics(services: ServicesDep, _: ReaderDep) -> Response:
    """Prometheus text format (scrape with a reader token: `authorization: credentials`)."""
    return Response(services.metrics.render(), media_type=CONTENT_TYPE_LATEST)
