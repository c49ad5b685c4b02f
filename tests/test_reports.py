"""The CLI's plain-text tables, from hand-built results (no Spark)."""

from __future__ import annotations

from datetime import UTC, datetime

from timetravel.collect.selection import SelectionResult, StratumSummary
from timetravel.reports import runs_table, selection_table
from timetravel.warehouse.runs import RunInfo, StageRecord

T = datetime(2026, 6, 1, 6, tzinfo=UTC)


def test_selection_table_lists_strata_in_order_with_weights_and_caps() -> None:
    result = SelectionResult(
        "run-1",
        T,
        4,
        1000,
        30,
        [
            StratumSummary("NA|high", 100, 20, 10, True),
            StratumSummary("EU|low", 900, 20, 20, False),
        ],
        warnings=["stratum 'NA|high' has 10 units; all taken"],
        previous_run_id="run-0",
    )
    lines = selection_table(result).splitlines()
    assert lines[0] == (
        "run run-1 at 2026-06-01T06:00:00+00:00: 30 of 1000 contexts, "
        "context_sets version 4, panel from run-0"
    )
    assert [line.split()[0] for line in lines[2:4]] == ["EU|low", "NA|high"]
    assert "45.00" in lines[2] and "10.00  (all taken: target 20)" in lines[3]
    assert lines[-1] == "  warning: stratum 'NA|high' has 10 units; all taken"


def test_runs_table_shows_each_stage_and_the_versions_it_wrote() -> None:
    assert runs_table([]) == "no runs yet"
    stage = StageRecord("run-1", "snapshot", T, "partial", T, T, {}, {"facts/ratings": 3})
    select = StageRecord("run-1", "select", T, "ok", T, T, {}, {"context_sets": 1})
    table = runs_table([RunInfo("run-1", T, {"snapshot": stage, "select": select})])
    row = table.splitlines()[1]
    assert row.split()[:2] == ["2026-06-01T06:00:00+00:00", "run-1"]
    assert "select=ok, snapshot=partial" in row
    assert "facts/ratings@v3" in row and "context_sets@v1" in row
