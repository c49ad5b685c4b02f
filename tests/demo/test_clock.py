import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from timetravel.demo.clock import Clock


def test_real_time_without_file(tmp_path: Path) -> None:
    before = datetime.now(UTC)
    assert before <= Clock(tmp_path / "absent.json").now() <= datetime.now(UTC)


def test_frozen_clock(tmp_path: Path) -> None:
    clock = Clock(tmp_path / "clock.json")
    clock.set("2026-03-01T00:00:00Z")
    time.sleep(0.05)
    assert clock.now() == datetime(2026, 3, 1, tzinfo=UTC)


def test_advance_and_shared_file(tmp_path: Path) -> None:
    writer, reader = Clock(tmp_path / "c.json"), Clock(tmp_path / "c.json")
    writer.set("2026-03-01T00:00:00Z")
    writer.advance(timedelta(days=2))
    assert reader.now() == datetime(2026, 3, 3, tzinfo=UTC)


def test_reset_returns_to_real_time(tmp_path: Path) -> None:
    clock = Clock(tmp_path / "c.json")
    clock.set("2001-01-01")
    clock.reset()
    assert clock.now().year >= 2026


def test_real_clock_cannot_be_set() -> None:
    with pytest.raises(ValueError, match="this clock is real time"):
        Clock().set("2026-01-01")
