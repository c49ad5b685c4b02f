"""What every request passes before any route sees it: no token in the URL, a valid bearer
token (checked before the body is read, so an anonymous caller cannot make the server parse
megabytes), and a bounded body (refused from ``Content-Length`` up front, or as soon as a
chunked body passes the limit).

A plain ASGI middleware: it runs before FastAPI reads and parses the body.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from timetravel.api.auth import TokenTable
from timetravel.api.problems import problem_response

__all__ = ["RequestGuard", "PUBLIC_PATHS", "TOKEN_PARAMETERS"]

PUBLIC_PATHS = ("/healthz", "/readyz", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json")
CONSOLE_PREFIX = "/ui"
TOKEN_PARAMETERS = {"token", "access_token", "api_key", "apikey", "bearer", "auth", "authorization"}


class _TooLarge(Exception):
    pass


class RequestGuard:
    """Refuse tokens in query strings (400), unauthenticated calls (401), large bodies (413)."""

    def __init__(self, app: ASGIApp, *, tokens: TokenTable, max_body_bytes: int) -> None:
        self.app = app
        self.tokens = tokens
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"").decode("latin-1")
        names = {name.lower() for name, _ in parse_qsl(query, keep_blank_values=True)}
        if names & TOKEN_PARAMETERS:
            # Blank the query in place: the server's access log reads it from this scope.
            scope["query_string"] = b""
            await _problem(
                send,
                400,
                "Token in URL",
                "credentials are refused in the query string (URLs are logged and "
                "cached); send 'Authorization: Bearer <token>'",
            )
            return
        if (
            scope["path"] not in PUBLIC_PATHS
            and not _is_console(scope["path"])
            and self.tokens.role_of(_bearer(scope)) is None
        ):
            await _problem(
                send,
                401,
                "Unauthorized",
                "a valid bearer token is required",
                {"www-authenticate": "Bearer"},
            )
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await _problem(send, 413, "Body too large", self._limit_text(declared))
            return
        try:
            body = await self._read_body(receive)
        except _TooLarge:
            await _problem(send, 413, "Body too large", self._limit_text(None))
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # e.g. http.disconnect

        await self.app(scope, replay, send)

    async def _read_body(self, receive: Receive) -> bytes:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    def _limit_text(self, declared: int | None) -> str:
        size = f"{declared} bytes" if declared is not None else "the body"
        return (
            f"{size} is over the limit of {self.max_body_bytes} bytes (api.max_body_bytes); "
            "for large label sets use labels_uri"
        )


def _is_console(path: str) -> bool:
    """The console's pages authenticate by their session cookie (timetravel.console)."""
    return path == CONSOLE_PREFIX or path.startswith(CONSOLE_PREFIX + "/")


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" else None
    return None


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _problem(
    send: Send, status: int, title: str, detail: str, headers: dict[str, str] | None = None
) -> None:
    async def nothing() -> Message:
        return {"type": "http.disconnect"}

    response = problem_response(status, title, detail, headers=headers)
    await response({"type": "http"}, nothing, send)
