"""One demo microservice as a FastAPI app: it only ever answers "what is true now".

Each service (viewing-history, my-list, ratings, member-profile) offers:

- ``GET /v1/members/{member_id}`` — one member's facts now (404 if unknown at this instant);
- ``POST /v1/members/batch`` with ``{"member_ids": [...]}`` (at most 500) — many at once;
- ``GET /healthz``; ``GET``/``PUT /admin/faults`` (bearer admin token) to inspect or change
  latency and faults at run time.

Every answer carries ``as_of``: the service clock's now.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Header, HTTPException
from fastapi.responses import Response
from pydantic import BaseModel, Field

from timetravel.demo.clock import Clock
from timetravel.demo.faults import Fault, FaultInjector, FaultSettings
from timetravel.demo.world import SERVICES, World

__all__ = ["create_service_app", "BATCH_LIMIT", "BatchRequest"]

BATCH_LIMIT = 500


class BatchRequest(BaseModel):
    member_ids: list[Annotated[int, Field(ge=0)]] = Field(min_length=1, max_length=BATCH_LIMIT)


class Play(BaseModel):
    title_id: int
    genre: str
    started_at: str
    duration_min: int
    device: str


class ViewingHistory(BaseModel):
    member_id: int
    as_of: str
    total_plays: int
    total_minutes: int
    plays: list[Play]


class ListedTitle(BaseModel):
    title_id: int
    added_at: str


class MyList(BaseModel):
    member_id: int
    as_of: str
    size: int
    titles: list[ListedTitle]


class Rating(BaseModel):
    title_id: int
    thumbs_up: bool
    rated_at: str


class Ratings(BaseModel):
    member_id: int
    as_of: str
    thumbs_up: int
    thumbs_down: int
    ratings: list[Rating]


class MemberProfile(BaseModel):
    member_id: int
    as_of: str
    country: str
    region: str
    plan: str
    primary_device: str
    member_since: str
    tenure_days: int
    status: str


PAYLOADS: dict[str, type[BaseModel]] = {
    "viewing-history": ViewingHistory,
    "my-list": MyList,
    "ratings": Ratings,
    "member-profile": MemberProfile,
}


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


def _problem(status: int, title: str, detail: str, **headers: str) -> Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return Response(
        orjson.dumps(body),
        status_code=status,
        media_type="application/problem+json",
        headers=headers or None,
    )


def _faulty(fault: Fault) -> Response | None:
    if fault.status == 429:
        return _problem(
            429,
            "Too Many Requests",
            "rate limit exceeded; retry later",
            **{"Retry-After": str(fault.retry_after_s)},
        )
    if fault.status is not None:
        return _problem(fault.status, "Injected failure", "fault injection")
    return None


def _body(payload: Any, fault: Fault, status: int = 200) -> Response:
    if fault.malformed:
        # Truncated JSON with a JSON content type: what a crashing proxy sends.
        return Response(
            orjson.dumps(payload)[:25], status_code=status, media_type="application/json"
        )
    return _json(payload, status)


def create_service_app(
    service: str,
    world: World,
    *,
    clock: Clock | None = None,
    faults: FaultSettings | None = None,
    admin_token: str | None = None,
    seed: int = 0,
) -> FastAPI:
    """Build the app of one ``service`` over ``world``, answering at ``clock``'s now."""
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}; known: {', '.join(SERVICES)}")
    clock = clock or Clock()
    injector = FaultInjector(faults, seed=seed)
    app = FastAPI(
        title=f"demo {service}",
        version="1",
        description=f"Demo '{service}' microservice: facts about members, now.",
    )
    app.state.injector = injector
    payload = PAYLOADS[service]

    def require_admin(authorization: Annotated[str | None, Header()] = None) -> None:
        expected = f"Bearer {admin_token}" if admin_token else None
        if (
            expected is None
            or authorization is None
            or not hmac.compare_digest(authorization.encode(), expected.encode())
        ):
            raise HTTPException(status_code=401, detail="admin token required")

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"service": service, "now": clock.now().isoformat()}

    @app.get("/v1/members/{member_id}", responses={200: {"model": payload}, 404: {}})
    async def one_member(member_id: int) -> Response:
        fault = await injector.before()
        if (early := _faulty(fault)) is not None:
            return early
        if not 0 <= member_id < world.members:
            return _problem(404, "Unknown member", f"no member {member_id}")
        answer = world.answer(service, [member_id], clock.now())[0]
        if answer is None:
            return _problem(404, "Unknown member", f"member {member_id} has not joined yet")
        return _body(injector.corrupt(answer), fault)

    @app.post(
        "/v1/members/batch",
        responses={
            200: {"description": f"results: list of {payload.__name__}; missing: ids unknown now"}
        },
    )
    async def many_members(request: BatchRequest) -> Response:
        fault = await injector.before()
        if (early := _faulty(fault)) is not None:
            return early
        now = clock.now()
        known = [m for m in request.member_ids if m < world.members]
        answers = world.answer(service, known, now)
        results = [injector.corrupt(a) for a in answers if a is not None]
        found = {a["member_id"] for a in results}
        missing = [m for m in request.member_ids if m not in found]
        return _body(
            {"service": service, "as_of": now.isoformat(), "results": results, "missing": missing},
            fault,
        )

    @app.get("/admin/faults", dependencies=[Depends(require_admin)])
    def get_faults() -> dict[str, Any]:
        return {"settings": injector.settings.model_dump(), "counts": injector.counts}

    @app.put("/admin/faults", dependencies=[Depends(require_admin)])
    def put_faults(settings: FaultSettings) -> dict[str, Any]:
        injector.update(settings)
        return {"settings": settings.model_dump()}

    return app
