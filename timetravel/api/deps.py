"""Dependencies shared by the routers: the services object and role checks."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from timetravel.api.auth import Role, TokenTable
from timetravel.api.jobs import JobRunner, JobStore
from timetravel.api.metrics import ApiMetrics
from timetravel.facade import TimeTravel

__all__ = ["Services", "ServicesDep", "require", "ReaderDep", "AdminDep"]

_bearer = HTTPBearer(auto_error=False, description="reader or admin token")


@dataclass
class Services:
    tt: TimeTravel
    tokens: TokenTable
    jobs: JobRunner
    job_store: JobStore
    lookups: ThreadPoolExecutor
    metrics: ApiMetrics


async def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


def require(role: Role):
    # async: trivial work done on the event loop, no thread hop per request
    async def check(
        services: ServicesDep,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Role:
        granted = services.tokens.role_of(credentials.credentials if credentials else None)
        if granted is None:
            raise HTTPException(
                401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"}
            )
        if role == "admin" and granted != "admin":
            raise HTTPException(403, f"this needs the admin role; the token is {granted}")
        return granted

    return check


ReaderDep = Annotated[str, Depends(require("reader"))]
AdminDep = Annotated[str, Depends(require("admin"))]
