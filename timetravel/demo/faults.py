"""Latency and fault injection for the demo services, configurable at start and at run time."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["FaultSettings", "FaultInjector", "Fault"]


class DataFault(BaseModel):
    """What a service gets wrong in the data it answers (the HTTP exchange is fine)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str = Field(description="a top-level field of the service's payload")
    null_share: float = Field(
        default=0.0, ge=0, le=1, description="members whose field turns null (by member id)"
    )
    scale: float | None = Field(default=None, description="numbers multiplied: a unit change")
    shift: float | None = Field(default=None, description="numbers moved by this much")
    rename_to: str | None = Field(default=None, description="the field answered under this name")

    def apply(self, payload: dict[str, Any]) -> None:
        """Corrupt ``payload`` in place (deterministic: the same members every time)."""
        if self.field not in payload:
            return
        value = payload[self.field]
        member = int(payload.get("member_id", 0))
        if self.null_share and (member * 2654435761 % 1000) < self.null_share * 1000:
            value = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            changed = value * (self.scale if self.scale is not None else 1)
            changed += self.shift if self.shift is not None else 0
            value = type(value)(changed) if isinstance(value, int) else changed
        payload[self.field] = value
        if self.rename_to is not None:
            payload[self.rename_to] = payload.pop(self.field)


class FaultSettings(BaseModel):
    """What a service does wrong. Rates are probabilities per request, applied in this order:
    rate limit (429 + Retry-After), latency, hang, error (500/503), malformed body."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    latency_ms: float = Field(default=0.0, ge=0)
    jitter_ms: float = Field(default=0.0, ge=0, description="uniform extra latency in [0, jitter]")
    error_rate: float = Field(default=0.0, ge=0, le=1)
    error_statuses: tuple[int, ...] = (500, 503)
    hang_rate: float = Field(default=0.0, ge=0, le=1)
    hang_seconds: float = Field(default=30.0, ge=0, description="how long a hung request stalls")
    malformed_rate: float = Field(default=0.0, ge=0, le=1)
    rate_limit_per_s: float | None = Field(default=None, gt=0, description="token bucket refill")
    rate_limit_burst: int = Field(default=10, ge=1)
    retry_after_s: int = Field(default=1, ge=0)
    data: list[DataFault] = Field(default_factory=list, description="wrong data, not errors")


class Fault(BaseModel):
    """The decision for one request: an early status, and/or a malformed body."""

    status: int | None = None
    retry_after_s: int | None = None
    malformed: bool = False


class FaultInjector:
    """Applies :class:`FaultSettings` to requests; settings can be swapped while serving."""

    def __init__(self, settings: FaultSettings | None = None, *, seed: int = 0) -> None:
        self.settings = settings or FaultSettings()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._tokens = float(self.settings.rate_limit_burst)
        self._refilled = time.monotonic()
        self.counts: dict[str, int] = {
            "requests": 0,
            "rate_limited": 0,
            "errors": 0,
            "hangs": 0,
            "malformed": 0,
        }

    def update(self, settings: FaultSettings) -> None:
        with self._lock:
            self.settings = settings
            self._tokens = float(settings.rate_limit_burst)
            self._refilled = time.monotonic()

    async def before(self) -> Fault:
        """Sleep for latency/hangs, then say whether to answer with an error."""
        s = self.settings
        with self._lock:
            self.counts["requests"] += 1
            if not self._take_token(s):
                self.counts["rate_limited"] += 1
                return Fault(status=429, retry_after_s=s.retry_after_s)
            delay = (
                s.latency_ms + self._rng.uniform(0, s.jitter_ms) if s.jitter_ms else s.latency_ms
            )
            hang = self._rng.random() < s.hang_rate
            error = self._rng.random() < s.error_rate
            status = self._rng.choice(s.error_statuses) if error else None
            malformed = self._rng.random() < s.malformed_rate
            self.counts["hangs"] += hang
            self.counts["errors"] += error
            self.counts["malformed"] += malformed and not error
        if delay:
            await asyncio.sleep(delay / 1000)
        if hang:
            await asyncio.sleep(s.hang_seconds)
        return Fault(status=status, malformed=malformed and not error)

    def corrupt(self, payload: Any) -> Any:
        """``payload`` (one member's answer) with the data faults applied."""
        if self.settings.data and isinstance(payload, dict):
            for fault in self.settings.data:
                fault.apply(payload)
        return payload

    def _take_token(self, s: FaultSettings) -> bool:
        if s.rate_limit_per_s is None:
            return True
        now = time.monotonic()
        self._tokens = min(
            float(s.rate_limit_burst), self._tokens + (now - self._refilled) * s.rate_limit_per_s
        )
        self._refilled = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False
