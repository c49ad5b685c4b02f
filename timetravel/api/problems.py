"""Errors as RFC 9457 problem details: every 4xx has a type, title and detail, never a trace."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from timetravel.errors import (
    FeatureError,
    LabelError,
    ManifestError,
    RunNotFoundError,
    TableNotFoundError,
    TimeTravelError,
    TimeTravelRangeError,
)

__all__ = ["Problem", "install_handlers", "PROBLEM_RESPONSES"]

log = logging.getLogger("timetravel.api")
_TYPES = "https://timetravel.dev/problems/"


class Problem(Exception):
    """Raised by routes to answer with a problem-details body."""

    def __init__(
        self, status: int, title: str, detail: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail
        self.headers = headers or {}


def problem_response(
    status: int, title: str, detail: str, *, headers: dict[str, str] | None = None
) -> JSONResponse:
    slug = title.lower().replace(" ", "-")
    return JSONResponse(
        {"type": _TYPES + slug, "title": title, "status": status, "detail": detail},
        status_code=status,
        media_type="application/problem+json",
        headers=headers,
    )


_STATUS: list[tuple[type[Exception], int, str]] = [
    (RunNotFoundError, 404, "Not found"),
    (TableNotFoundError, 404, "Not found"),
    (FeatureError, 422, "Unknown or unavailable feature"),
    (LabelError, 422, "Invalid labels"),
    (ManifestError, 422, "Invalid manifest"),
    (TimeTravelRangeError, 422, "Out of range"),
    (ValueError, 422, "Invalid input"),
    (TimeTravelError, 400, "Bad request"),
]


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(_: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc.status, exc.title, exc.detail, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        return problem_response(422, "Invalid request", details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        titles = {
            401: "Unauthorized",
            403: "Forbidden",
            404: "Not found",
            405: "Method not allowed",
            413: "Body too large",
        }
        response = problem_response(
            exc.status_code, titles.get(exc.status_code, "Error"), str(exc.detail)
        )
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(TimeTravelError)
    async def _library(_: Request, exc: TimeTravelError) -> JSONResponse:
        return _map(exc)

    @app.exception_handler(ValueError)
    async def _value(_: Request, exc: ValueError) -> JSONResponse:
        return _map(exc)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return problem_response(
            500, "Internal error", "an unexpected error happened; it has been logged"
        )


def _map(exc: Exception) -> JSONResponse:
    for kind, status, title in _STATUS:
        if isinstance(exc, kind):
            return problem_response(status, title, str(exc))
    return problem_response(400, "Bad request", str(exc))


_PROBLEM = {
    "content": {
        "application/problem+json": {
            "schema": {
                "type": "object",
                "properties": {
                    "type": {"type": "string"},
                    "title": {"type": "string"},
                    "status": {"type": "integer"},
                    "detail": {"type": "string"},
                },
            }
        }
    }
}
PROBLEM_RESPONSES: dict[int | str, dict[str, object]] = {
    401: {"description": "No or unknown bearer token", **_PROBLEM},
    403: {"description": "The token's role may not do this", **_PROBLEM},
    404: {"description": "Not found", **_PROBLEM},
    413: {"description": "The request body is too large", **_PROBLEM},
    422: {"description": "Invalid input", **_PROBLEM},
    429: {"description": "Too many jobs queued; see Retry-After", **_PROBLEM},
}
