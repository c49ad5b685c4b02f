"""Latency and fault injection for the demo services, configurable at start and at run time."""

from __future__ import annotations

import asyncio
import random
import threading
import time

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["FaultSettings", "FaultInjector", "Fault"]


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
