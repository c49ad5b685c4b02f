"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from timetravel.api.deps import ServicesDep
from timetravel.api.models import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
def readyz(services: ServicesDep) -> Health | JSONResponse:
    """The warehouse is readable, and Spark (when started) is alive."""
    checks: dict[str, str] = {}
    try:
        runs = services.tt.runs(limit=1)
        checks["warehouse"] = f"ok ({'runs index present' if runs else 'no runs yet'})"
    except Exception as exc:  # noqa: BLE001 - readiness reports, it does not raise
        checks["warehouse"] = f"unreachable: {type(exc).__name__}"
    spark = services.tt._spark
    if spark is None:
        checks["spark"] = "not started (starts with the first Spark job)"
    else:
        stopped = spark.sparkContext._jsc.sc().isStopped()
        checks["spark"] = "stopped" if stopped else "ok"
    ready = checks["warehouse"].startswith("ok") and checks["spark"] != "stopped"
    body = Health(status="ready" if ready else "not ready", checks=checks)
    return body if ready else JSONResponse(body.model_dump(), status_code=503)
