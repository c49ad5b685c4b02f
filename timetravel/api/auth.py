"""Bearer tokens with two roles: ``reader`` (every GET) and ``admin`` (also submits, rebuilds
and cancels training sets).

Tokens come from ``TIMETRAVEL_API_TOKENS`` ('reader:tok1,admin:tok2') or a YAML secrets file
``{reader: [...], admin: [...]}`` named by ``api.tokens_file`` — never from the committed
YAML profiles. They are compared in constant time and never logged.
"""

from __future__ import annotations

import hmac
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml

from timetravel.errors import ConfigError

__all__ = ["Role", "TokenTable", "load_tokens", "TOKENS_ENV"]

Role = Literal["reader", "admin"]
TOKENS_ENV = "TIMETRAVEL_API_TOKENS"
_ROLES = ("reader", "admin")


@dataclass(frozen=True)
class TokenTable:
    """Known tokens and their roles; ``insecure`` grants admin to everyone (loopback only)."""

    tokens: tuple[tuple[bytes, Role], ...] = ()
    insecure: bool = False

    def role_of(self, token: str | None) -> Role | None:
        if self.insecure:
            return "admin"
        if not token:
            return None
        given = token.encode()
        found: Role | None = None
        for known, role in self.tokens:  # no early exit: time does not depend on the match
            if hmac.compare_digest(given, known):
                found = role
        return found

    def __repr__(self) -> str:  # never print tokens
        return f"TokenTable({len(self.tokens)} tokens, insecure={self.insecure})"


def load_tokens(
    tokens_file: str | None = None, *, environ: dict[str, str] | None = None
) -> TokenTable:
    """Tokens from the environment and/or the secrets file (both may be used)."""
    env = os.environ if environ is None else environ
    pairs: list[tuple[bytes, Role]] = []
    for item in filter(None, (p.strip() for p in env.get(TOKENS_ENV, "").split(","))):
        role, sep, token = item.partition(":")
        if not sep or role not in _ROLES or len(token) < 16:
            raise ConfigError(
                f"{TOKENS_ENV}: each entry must be 'reader:TOKEN' or 'admin:TOKEN' "
                "with a token of at least 16 characters"
            )
        pairs.append((token.encode(), role))  # type: ignore[arg-type]
    if tokens_file:
        path = Path(tokens_file)
        if not path.is_file():
            raise ConfigError(f"api.tokens_file {tokens_file!r} does not exist")
        raw = yaml.safe_load(path.read_text()) or {}
        if not isinstance(raw, dict) or set(raw) - set(_ROLES):
            raise ConfigError(f"{tokens_file}: expected {{reader: [tokens], admin: [tokens]}}")
        for role, tokens in raw.items():
            for token in tokens or []:
                if not isinstance(token, str) or len(token) < 16:
                    raise ConfigError(
                        f"{tokens_file}: tokens must be strings of at least 16 characters"
                    )
                pairs.append((token.encode(), role))
    return TokenTable(tuple(pairs))
