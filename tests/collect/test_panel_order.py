"""Which run's sample is the panel when runs select side by side (runs index only, no Spark)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from timetravel.collect.selection import _previous_selected
from timetravel.config import Config
from timetravel.errors import SelectionError
from timetravel.warehouse.runs import RunsIndex

T1, T2, T3 = (datetime(2026, 6, d, 6, tzinfo=UTC) for d in (1, 2, 3))


def test_waits_for_an_earlier_run_still_selecting(local_config: Config) -> None:
    index = RunsIndex(local_config)
    index.record("r1", T1, "select", "ok")
    index.record("r2", T2, "select", "running")
    finish = threading.Timer(1.0, lambda: index.record("r2", T2, "select", "ok"))
    finish.start()
    try:
        chosen = _previous_selected(index, T3, "r3", wait_s=30)
    finally:
        finish.join()
    assert chosen is not None and chosen.run_id == "r2"  # not r1, which was done earlier


def test_a_failed_earlier_run_is_passed_over(local_config: Config) -> None:
    index = RunsIndex(local_config)
    index.record("r1", T1, "select", "ok")
    index.record("r2", T2, "select", "failed")
    index.record("r4", datetime(2026, 6, 4, tzinfo=UTC), "select", "running")  # later: ignored
    chosen = _previous_selected(index, T3, "r3", wait_s=0)
    assert chosen is not None and chosen.run_id == "r1"


def test_first_run_has_no_panel(local_config: Config) -> None:
    assert _previous_selected(RunsIndex(local_config), T1, "r1", wait_s=0) is None


def test_a_run_stuck_selecting_is_named_after_the_wait(local_config: Config) -> None:
    index = RunsIndex(local_config)
    index.record("r2", T2, "select", "running")
    with pytest.raises(SelectionError, match=r"run r2 \(2026-06-02T06:00:00\+00:00\) is still"):
        _previous_selected(index, T3, "r3", wait_s=0.6)
