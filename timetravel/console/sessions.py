"""Console sign-in: a token exchanged once for a session cookie.

The cookie carries a random session id, never the token: a stolen cookie expires, and the
token is not in the browser after sign-in. Cookies are HttpOnly (no script reads them),
Secure (browsers send them over HTTPS, and to localhost), SameSite=Strict (no other site's
page can make the browser send them), and scoped to ``/ui``. Each session also holds a CSRF
token that every form posts back. Sessions live in this process's memory, bounded in number
and age: a restart signs everyone out.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from timetravel.api.auth import Role

__all__ = ["COOKIE", "Session", "SessionStore"]

COOKIE = "tt_console"


@dataclass(frozen=True)
class Session:
    role: Role
    csrf: str
    expires: float


class SessionStore:
    """Sessions by id, the oldest dropped past ``max_sessions``."""

    def __init__(self, *, ttl_s: float = 8 * 3600, max_sessions: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self.max_sessions = max_sessions
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()
        # The one session of a server without tokens (serve --insecure-local, loopback only).
        self.local = Session("admin", secrets.token_urlsafe(24), float("inf"))

    def open(self, role: Role) -> tuple[str, Session]:
        sid = secrets.token_urlsafe(32)
        session = Session(role, secrets.token_urlsafe(24), time.time() + self.ttl_s)
        with self._lock:
            self._sessions[sid] = session
            while len(self._sessions) > self.max_sessions:
                self._sessions.popitem(last=False)
        return sid, session

    def get(self, sid: str | None) -> Session | None:
        if not sid or len(sid) > 64:
            return None
        with self._lock:
            session = self._sessions.get(sid)
            if session is not None and session.expires < time.time():
                del self._sessions[sid]
                return None
            return session

    def close(self, sid: str | None) -> None:
        with self._lock:
            self._sessions.pop(sid or "", None)

    @staticmethod
    def csrf_ok(session: Session, sent: str | None) -> bool:
        return sent is not None and hmac.compare_digest(session.csrf.encode(), sent.encode())
