"""The fleet's clock: real time by default, or simulated time shared through a clock file.

The file holds ``{"at": ISO, "wall": epoch_seconds, "rate": r}``: simulated now is
``at + r * (wall_now - wall)``. ``rate=0`` freezes time (tests), ``rate=3600`` runs an hour
per second (demos). Every service of a fleet reads the same file, so they agree on "now".
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from timetravel.times import to_utc

__all__ = ["Clock"]


class Clock:
    """``Clock(None)`` is real time; ``Clock(path)`` follows the clock file when it exists."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._cache: tuple[int, dict[str, float | str]] | None = None

    def now(self) -> datetime:
        setting = self._read()
        if setting is None:
            return datetime.now(UTC)
        elapsed = time.time() - float(setting["wall"])
        return to_utc(str(setting["at"])) + timedelta(seconds=float(setting["rate"]) * elapsed)

    def set(self, at: datetime | str, *, rate: float = 0.0) -> datetime:
        """Jump to ``at``; time then moves at ``rate`` simulated seconds per real second."""
        if self.path is None:
            raise ValueError("this clock is real time; give it a clock file to control it")
        instant = to_utc(at)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"at": instant.isoformat(), "wall": time.time(), "rate": rate}))
        os.replace(tmp, self.path)  # atomic: readers never see half a file
        return instant

    def advance(self, delta: timedelta) -> datetime:
        """Move simulated time forward by ``delta`` (keeping the current rate)."""
        setting = self._read()
        rate = float(setting["rate"]) if setting else 0.0
        return self.set(self.now() + delta, rate=rate)

    def reset(self) -> None:
        """Back to real time."""
        if self.path is not None and self.path.exists():
            self.path.unlink()

    def _read(self) -> dict[str, float | str] | None:
        if self.path is None:
            return None
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return None
        if self._cache is None or self._cache[0] != mtime:
            self._cache = (mtime, json.loads(self.path.read_text()))
        return self._cache[1]
